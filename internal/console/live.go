package console

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/server"
)

// Live streams use server-sent events: EventSource reconnects by itself, and a GET
// carries the SameSite=Strict cookie only from the console's own pages.

// liveFilter is the lookup attribute a live stream matches, as LookupEvents would.
type liveFilter struct {
	attr, value string
	insight     bool
}

// match reports whether LookupEvents with this filter would return m.
func (f liveFilter) match(m *event.Meta) bool {
	if (m.Category == event.CategoryInsight) != f.insight {
		return false
	}
	v := f.value
	switch f.attr {
	case "":
		return true
	case "EventId":
		return m.EventID == v
	case "EventName":
		return m.Name == v
	case "EventSource":
		return m.Source == v
	case "Username":
		return m.Username == v
	case "AccessKeyId":
		return m.AccessKeyID == v
	case "ReadOnly":
		return (v == "true" && m.ReadOnly == 1) || (v == "false" && m.ReadOnly == 0)
	case "ResourceType", "ResourceName":
		for _, r := range m.Resources {
			if f.attr == "ResourceType" && r.Type == v || f.attr == "ResourceName" && r.ARN == v {
				return true
			}
		}
	}
	return false
}

var liveAttrs = map[string]bool{"": true, "EventId": true, "EventName": true, "EventSource": true, "Username": true,
	"AccessKeyId": true, "ReadOnly": true, "ResourceType": true, "ResourceName": true}

// sse writes server-sent events.
type sse struct {
	w  *bufio.Writer
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sse{w: bufio.NewWriterSize(w, 32<<10), rc: http.NewResponseController(w)}
}

// send writes one event of type name with v as its JSON data; nil v is a comment (keep-alive).
func (s *sse) send(name string, v any) error {
	if v == nil {
		s.w.WriteString(": keep-alive\n\n")
	} else {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		s.w.WriteString("event: " + name + "\ndata: ")
		s.w.Write(b)
		s.w.WriteString("\n\n")
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sse) fail(err error) {
	var ae *awsapi.Error
	if !errors.As(err, &ae) || ae == nil {
		ae = &awsapi.Error{Code: "InternalFailure", Message: "An internal error occurred."}
	}
	s.send("failure", map[string]string{"__type": ae.Code, "message": ae.Message})
}

// live serves GET /console/api/live?attr=&value=&category=: the account's new events that match.
func (c *Console) live(w http.ResponseWriter, r *http.Request, p server.Principal) {
	q := r.URL.Query()
	f := liveFilter{attr: q.Get("attr"), value: q.Get("value"), insight: q.Get("category") == "insight"}
	if !liveAttrs[f.attr] {
		writeError(w, http.StatusBadRequest, "InvalidLookupAttributesException", "Unknown lookup attribute "+f.attr+".")
		return
	}
	var out *sse
	err := c.b.LiveEvents(r.Context(), p, func(recs []event.Record) error {
		if out == nil {
			out = startSSE(w)
		}
		var evs []cloudtrail.LookupEvent
		for i := range recs {
			if f.match(&recs[i].Meta) {
				evs = append(evs, cloudtrail.LookupEventOf(&recs[i]))
			}
		}
		if len(evs) == 0 {
			return out.send("", nil)
		}
		return out.send("events", evs)
	})
	c.endStream(w, r, out, err)
}

// tail serves GET /console/api/tail?group=&pattern=: a log group's new events that match.
func (c *Console) tail(w http.ResponseWriter, r *http.Request, p server.Principal) {
	q := r.URL.Query()
	group := strings.TrimSpace(q.Get("group"))
	if group == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "Name the log group to tail.")
		return
	}
	out := startSSE(w)
	out.send("", nil)
	err := c.b.TailLogGroup(r.Context(), p, group, q.Get("pattern"), func(lines []server.TailLine) error {
		return out.send("lines", lines)
	})
	c.endStream(w, r, out, err)
}

func (c *Console) endStream(w http.ResponseWriter, r *http.Request, out *sse, err error) {
	if err == nil || r.Context().Err() != nil {
		return
	}
	if out == nil {
		var ae *awsapi.Error
		if errors.As(err, &ae) && ae != nil {
			writeError(w, ae.Status, ae.Code, ae.Message)
			return
		}
		c.log.Error("console stream failed", "err", err)
		writeError(w, http.StatusInternalServerError, "InternalFailure", "An internal error occurred.")
		return
	}
	var ae *awsapi.Error
	if !errors.As(err, &ae) {
		c.log.Error("console stream failed", "err", err)
	}
	out.fail(err)
}
