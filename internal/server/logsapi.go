package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/filterpattern"
	"github.com/opentrail/opentrail/internal/logs"
)

// TailRequest is the body of POST /v1/tail.
type TailRequest struct {
	// LogGroupName tails a log group; empty tails the account's journal (every record).
	LogGroupName  string `json:"LogGroupName,omitempty"`
	FilterPattern string `json:"FilterPattern,omitempty"`
	StartTime     int64  `json:"StartTime,omitempty"` // ms; events at or after it
	Follow        bool   `json:"Follow,omitempty"`
}

// TailLine is one line of the newline-delimited JSON a tail streams.
type TailLine struct {
	LogGroupName  string `json:"logGroupName,omitempty"`
	LogStreamName string `json:"logStreamName,omitempty"`
	Timestamp     int64  `json:"timestamp"`
	EventID       string `json:"eventId,omitempty"`
	Message       string `json:"message"`
	// Dropped, on a line of its own, tells a follower how many events it was too slow to receive.
	Dropped int64 `json:"dropped,omitempty"`
}

// tail serves POST /v1/tail: history, then (Follow) live events, as
// newline-delimited JSON flushed batch by batch.
func (s *Server) tail(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	if !s.allowed(rq, "logs:StartLiveTail", true) {
		s.fail(w, rq, denied(rq.key, rq.op))
		return
	}
	var in TailRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			s.fail(w, rq, awsapi.Errorf("SerializationException", "%v", err))
			return
		}
	}
	if in.LogGroupName == "" {
		if _, err := filterpattern.Parse(in.FilterPattern); err != nil {
			s.fail(w, rq, awsapi.Errorf("InvalidParameterException", "Invalid filter pattern: %v", err))
			return
		}
	}
	started := false
	bw := bufio.NewWriterSize(w, 64<<10)
	rc := http.NewResponseController(w)
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("x-amzn-RequestId", rq.id)
			w.WriteHeader(http.StatusOK)
		}
	}
	emit := func(lines []TailLine) error {
		start()
		enc := json.NewEncoder(bw)
		for i := range lines {
			if err := enc.Encode(&lines[i]); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	ctx := r.Context()
	var err error
	var dropped int64
	if in.LogGroupName != "" {
		if s.logs == nil {
			s.fail(w, rq, awsapi.Errorf("ResourceNotFoundException", "The specified log group does not exist."))
			return
		}
		dropped, err = s.logs.Tail(ctx, rq.caller(), in.LogGroupName, in.FilterPattern, in.StartTime, in.Follow, func(evs []logs.TailEvent) error {
			lines := make([]TailLine, len(evs))
			for i, e := range evs {
				lines[i] = TailLine{LogGroupName: in.LogGroupName, LogStreamName: e.LogStreamName, Timestamp: e.Timestamp, EventID: e.EventID, Message: e.Message}
			}
			return emit(lines)
		})
	} else {
		err = s.tailJournal(ctx, rq, in, emit)
	}
	if dropped > 0 {
		emit([]TailLine{{Dropped: dropped, Timestamp: s.now().UnixMilli()}})
	}
	if err != nil && !started && !errors.Is(err, context.Canceled) {
		s.fail(w, rq, err)
	}
}

// tailJournal streams the caller's account's records from the journal: from
// the first one ingested at or after StartTime, then live.
func (s *Server) tailJournal(ctx context.Context, rq *request, in TailRequest, emit func([]TailLine) error) error {
	pat, _ := filterpattern.Parse(in.FilterPattern)
	next, err := s.firstIngestedAt(in.StartTime)
	if err != nil {
		return err
	}
	if err := emit(nil); err != nil {
		return err
	}
	var lines []TailLine
	for ctx.Err() == nil {
		lines = lines[:0]
		n, err := s.j.Scan(next, 1000, func(seq uint64, v []byte) error {
			rec, err := event.Decode(v)
			if err != nil || rec.Meta.Account != rq.key.Account || rec.Meta.IngestTime < in.StartTime*1e6 {
				return nil
			}
			if !pat.Match(filterpattern.NewEvent(rec.Raw)) {
				return nil
			}
			lines = append(lines, TailLine{LogStreamName: rec.Meta.Account + "_CloudTrail_" + rec.Meta.Region,
				Timestamp: rec.Meta.EventTime / 1e6, EventID: rec.Meta.EventID, Message: string(rec.Raw)})
			return nil
		})
		if err != nil {
			return err
		}
		if len(lines) > 0 {
			if err := emit(lines); err != nil {
				return err
			}
		}
		if n == next {
			if !in.Follow {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := s.j.Wait(wctx, next-1)
			cancel()
			if err != nil && ctx.Err() == nil {
				if err := emit(nil); err != nil { // keeps idle connections open through proxies
					return err
				}
			}
		}
		next = n
	}
	return nil
}

// firstIngestedAt finds the first journal entry ingested at or after ms, by
// binary search over sequence numbers (ingest times rise with them, give or
// take one commit group).
func (s *Server) firstIngestedAt(ms int64) (uint64, error) {
	first, err := s.j.First()
	if err != nil {
		return 0, err
	}
	lo, hi := first, s.j.Last()+1
	target := ms*1e6 - int64(2*time.Second)
	for lo < hi {
		mid := lo + (hi-lo)/2
		v, found, err := s.j.Get(mid)
		if err != nil {
			return 0, err
		}
		if !found {
			lo = mid + 1
			continue
		}
		rec, err := event.Decode(v)
		if err != nil || rec.Meta.IngestTime < target {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}
