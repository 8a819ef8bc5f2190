package console

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// The region picker: a session acts in one region at a time, kept on the server with the
// session (so it survives a reload and every page's calls and streams use it).

// regionChoices is what the picker offers.
type regionChoices struct {
	Region  string   `json:"region"`  // the session's region
	Regions []string `json:"regions"` // the choices, sorted
	Other   bool     `json:"other"`   // other names may be typed (the server accepts any region name)
}

// maxAccountRegions bounds the regions the picker lists from an account's data.
const maxAccountRegions = 50

func (c *Console) regionChoices(s *session) regionChoices {
	cur := s.region()
	if len(c.o.Regions) > 0 {
		list := slices.Clone(c.o.Regions)
		slices.Sort(list)
		return regionChoices{Region: cur, Regions: slices.Compact(list)}
	}
	list := []string{c.o.Region, cur}
	if c.o.AccountRegions != nil {
		more, err := c.o.AccountRegions(s.key.Account)
		if err != nil {
			c.log.Error("list the regions of an account", "account", s.key.Account, "err", err)
		}
		list = append(list, more[:min(len(more), maxAccountRegions)]...)
	}
	slices.Sort(list)
	return regionChoices{Region: cur, Regions: slices.Compact(list), Other: true}
}

// setRegion serves POST /console/api/region {"region": "eu-west-1"}: the session acts in that
// region from now on, if the server accepts it.
func (c *Console) setRegion(w http.ResponseWriter, r *http.Request, s *session) {
	var in struct {
		Region string `json:"region"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "Send {\"region\": \"us-east-1\"}.")
		return
	}
	region := strings.TrimSpace(in.Region)
	if err := c.b.CheckRegion(region); err != nil || len(c.o.Regions) > 0 && !slices.Contains(c.o.Regions, region) {
		if len(region) > 64 {
			region = region[:64] + "…"
		}
		msg := "Region " + strings.ToValidUTF8(region, "") + " is not a region name such as us-east-1."
		if len(c.o.Regions) > 0 {
			msg = "Region " + strings.ToValidUTF8(region, "") + " is not one this server accepts: " + strings.Join(c.o.Regions, ", ") + "."
		}
		writeError(w, http.StatusBadRequest, "InvalidParameterException", msg)
		return
	}
	s.setRegion(region)
	writeJSON(w, http.StatusOK, s.info())
}
