package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/detect"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

// FindingsRequest is the body of POST /v1/findings; every member is optional.
type FindingsRequest struct {
	StartTime  *float64 `json:"StartTime,omitempty"` // epoch seconds, inclusive
	EndTime    *float64 `json:"EndTime,omitempty"`
	RuleId     string   `json:"RuleId,omitempty"`
	Region     string   `json:"Region,omitempty"` // only findings of this region; "" = every region
	MinLevel   string   `json:"MinLevel,omitempty"`
	MaxResults *int     `json:"MaxResults,omitempty"` // 1..1000, default 50
	NextToken  string   `json:"NextToken,omitempty"`
}

// Finding is one finding as POST /v1/findings returns it.
type Finding struct {
	FindingId string            `json:"FindingId"`
	RuleId    string            `json:"RuleId"`
	RuleTitle string            `json:"RuleTitle"`
	Level     string            `json:"Level"`
	Tags      []string          `json:"Tags"`
	Time      float64           `json:"Time"` // epoch seconds, as CloudTrail's timestamps
	AccountId string            `json:"AccountId"`
	Region    string            `json:"Region"`
	EventIds  []string          `json:"EventIds"`
	GroupBy   map[string]string `json:"GroupBy,omitempty"`
}

// FindingsResponse is the answer of POST /v1/findings.
type FindingsResponse struct {
	Findings  []Finding `json:"Findings"`
	NextToken string    `json:"NextToken,omitempty"`
}

// Limits of POST /v1/findings.
const (
	findingsDefaultMax = 50
	findingsMaxMax     = 1000
	ruleIDMax          = 256
	nextTokenMax       = 1024
)

// findingsAPI lists the caller's account's findings, newest first. Writer
// keys only send records; reading findings takes a reader, admin or root key.
func (s *Server) findingsAPI(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	out, err := s.listFindings(rq, body)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

// listFindings answers one findings query of rq's account (POST /v1/findings,
// and the console through Invoke("opentrail", "ListFindings")).
func (s *Server) listFindings(rq *request, body []byte) (FindingsResponse, error) {
	if !s.allowed(rq, "opentrail:ListFindings", true) {
		return FindingsResponse{}, denied(rq.key, rq.op)
	}
	q, err := findingsQuery(rq, body)
	if err != nil {
		return FindingsResponse{}, err
	}
	if s.detect == nil {
		return FindingsResponse{Findings: []Finding{}}, nil
	}
	page, err := s.detect.Findings(q)
	if errors.Is(err, detect.ErrBadToken) {
		return FindingsResponse{}, awsapi.Errorf("InvalidNextTokenException", "The NextToken is invalid: it was not issued for this query.")
	}
	if err != nil {
		return FindingsResponse{}, err
	}
	out := FindingsResponse{Findings: make([]Finding, len(page.Findings)), NextToken: page.NextToken}
	for i, f := range page.Findings {
		out.Findings[i] = findingOf(&f)
	}
	return out, nil
}

// findingOf is f as the API shows it.
func findingOf(f *detect.Finding) Finding {
	tags := f.Tags
	if tags == nil {
		tags = []string{}
	}
	return Finding{FindingId: f.FindingID, RuleId: f.RuleID, RuleTitle: f.RuleTitle, Level: f.Level, Tags: tags,
		Time: float64(f.Time.UnixNano()) / 1e9, AccountId: f.AccountID, Region: f.Region, EventIds: f.EventIDs, GroupBy: f.GroupBy}
}

// findingsQuery validates a POST /v1/findings body.
func findingsQuery(rq *request, body []byte) (detect.Query, error) {
	var in FindingsRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return detect.Query{}, awsapi.Errorf("SerializationException", "could not read the request: %v", err)
		}
	}
	q := detect.Query{Account: rq.key.Account, Region: in.Region, RuleID: in.RuleId, Max: findingsDefaultMax, NextToken: in.NextToken}
	if in.Region != "" && !regionRE.MatchString(in.Region) {
		return q, awsapi.Errorf("InvalidParameterException", "Region %q is not a region name such as us-east-1.", trimParam(in.Region))
	}
	for _, t := range []struct {
		name string
		v    *float64
		dst  *time.Time
	}{{"StartTime", in.StartTime, &q.Start}, {"EndTime", in.EndTime, &q.End}} {
		if t.v == nil {
			continue
		}
		if math.IsNaN(*t.v) || math.IsInf(*t.v, 0) || *t.v < 0 || *t.v > 253402300799 {
			return q, awsapi.Errorf("InvalidParameterException", "%s must be epoch seconds between 0 and 253402300799 (year 9999).", t.name)
		}
		sec, frac := math.Modf(*t.v)
		*t.dst = time.Unix(int64(sec), int64(frac*1e9))
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.Start.After(q.End) {
		return q, awsapi.Errorf("InvalidParameterException", "StartTime (%s) is after EndTime (%s).",
			q.Start.UTC().Format(time.RFC3339), q.End.UTC().Format(time.RFC3339))
	}
	if len(in.RuleId) > ruleIDMax {
		return q, awsapi.Errorf("InvalidParameterException", "RuleId is %d characters long; at most %d are allowed.", len(in.RuleId), ruleIDMax)
	}
	if in.MinLevel != "" {
		if dest.LevelRank(in.MinLevel) < 0 {
			return q, awsapi.Errorf("InvalidParameterException", "MinLevel %q is not one of %s.", trimParam(in.MinLevel), strings.Join(dest.Levels, ", "))
		}
		q.MinLevel = strings.ToLower(in.MinLevel)
	}
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > findingsMaxMax {
			return q, awsapi.Errorf("InvalidParameterException", "MaxResults %d is out of range: it must be between 1 and %d.", *in.MaxResults, findingsMaxMax)
		}
		q.Max = *in.MaxResults
	}
	if len(in.NextToken) > nextTokenMax {
		return q, awsapi.Errorf("InvalidNextTokenException", "The NextToken is invalid: it was not issued for this query.")
	}
	return q, nil
}

func trimParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// RulesResponse is the answer of POST /v1/rules.
type RulesResponse struct {
	Rules []detect.RuleStatus `json:"Rules"`
}

// rulesAPI lists the loaded detection rules with their status and how often
// each matched the caller's account's events (rules are the server's; match
// counts, like every read, are the account's own).
func (s *Server) rulesAPI(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	if !s.allowed(rq, "opentrail:ListRules", true) {
		s.fail(w, rq, denied(rq.key, rq.op))
		return
	}
	out := RulesResponse{Rules: []detect.RuleStatus{}}
	if s.detect != nil {
		out.Rules = s.detect.Rules(rq.key.Account)
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}
