package server

import (
	"context"
	"net/http"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/logs"
)

// What the web console (internal/console) needs from the server besides Invoke,
// Authenticate and RecordSignIn: live streams. They authorise like POST /v1/tail
// (writer keys only send events) and read only the principal's account.

// SetConsole mounts h at /console/ (and GET / redirects there); nil unmounts it.
func (s *Server) SetConsole(h http.Handler) { s.console = h }

// CloseStreams ends the console's live streams, so that a shutting-down server is not held open
// by browser tabs (serve registers it with http.Server.RegisterOnShutdown).
func (s *Server) CloseStreams() {
	if c, ok := s.console.(interface{ Close() }); ok {
		c.Close()
	}
}

// serveConsole answers GET / and /console/... when a console is mounted.
func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) bool {
	if s.console == nil {
		return false
	}
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		http.Redirect(w, r, "/console/", http.StatusFound)
		return true
	case r.URL.Path == "/console" || len(r.URL.Path) >= 9 && r.URL.Path[:9] == "/console/":
		s.console.ServeHTTP(w, r)
		return true
	}
	return false
}

// LiveEvents streams the records of p's account and region that are appended
// from now on, until ctx ends. emit(nil) is called at the start and about every
// 15 s while idle, so that a caller can keep its connection alive.
func (s *Server) LiveEvents(ctx context.Context, p Principal, emit func([]event.Record) error) error {
	if !auth.Allowed(p.Key.Role, "cloudtrail:LookupEvents", true) {
		return denied(p.Key, "cloudtrail:LookupEvents")
	}
	next := s.j.Last() + 1
	if err := emit(nil); err != nil {
		return err
	}
	var recs []event.Record
	for ctx.Err() == nil {
		recs = recs[:0]
		n, err := s.j.Scan(next, 1000, func(seq uint64, v []byte) error {
			rec, err := event.Decode(v)
			if err != nil || rec.Meta.Account != p.Key.Account || rec.Meta.Region != p.Region {
				return nil
			}
			rec.Raw = append([]byte(nil), rec.Raw...)
			recs = append(recs, rec)
			return nil
		})
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := emit(recs); err != nil {
				return err
			}
		}
		if n == next {
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := s.j.Wait(wctx, next-1)
			cancel()
			if err != nil && ctx.Err() == nil {
				if err := emit(nil); err != nil {
					return err
				}
			}
		}
		next = n
	}
	return nil
}

// TailLogGroup streams the events of p's log group that match pattern from now on, until ctx ends.
func (s *Server) TailLogGroup(ctx context.Context, p Principal, group, pattern string, emit func([]TailLine) error) error {
	if !auth.Allowed(p.Key.Role, "logs:StartLiveTail", true) {
		return denied(p.Key, "logs:StartLiveTail")
	}
	if s.logs == nil {
		return awsapi.Errorf("ResourceNotFoundException", "The specified log group does not exist.")
	}
	rq := s.principalRequest(p)
	dropped, err := s.logs.Tail(ctx, rq.caller(), group, pattern, s.now().UnixMilli(), true, func(evs []logs.TailEvent) error {
		lines := make([]TailLine, len(evs))
		for i, e := range evs {
			lines[i] = TailLine{LogGroupName: group, LogStreamName: e.LogStreamName, Timestamp: e.Timestamp, EventID: e.EventID, Message: e.Message}
		}
		return emit(lines)
	})
	if dropped > 0 {
		emit([]TailLine{{Dropped: dropped, Timestamp: s.now().UnixMilli()}})
	}
	return err
}

// principalRequest is the request a console stream or sign-in acts as.
func (s *Server) principalRequest(p Principal) *request {
	return &request{id: newRequestID(), start: s.now().UTC(), key: p.Key, region: p.Region, ip: p.SourceIP, agent: p.UserAgent}
}
