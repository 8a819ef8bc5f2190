package event

import (
	"errors"
	"math"
	"testing"
	"time"
)

// Issue 11 §7: an eventTime outside what int64 nanoseconds hold wrapped
// (9999-12-31 was stored, and shown by LookupEvents, as 1816-03-30). Such a
// time is refused, naming the field; every time inside the range is kept exactly.
func TestEventTimeRange(t *testing.T) {
	tests := []struct {
		time  string
		nanos int64 // want, when accepted
		ok    bool
	}{
		{"9999-12-31T00:00:00Z", 0, false},
		{"0001-01-01T00:00:00Z", 0, false},
		{"1600-06-01T12:00:00Z", 0, false},
		{"2262-04-11T23:47:16.854775808Z", 0, false}, // one nanosecond past the last
		{"1677-09-21T00:12:43.145224191Z", 0, false}, // one nanosecond before the first
		{"2262-04-11T23:47:16.854775807Z", math.MaxInt64, true},
		{"1677-09-21T00:12:43.145224192Z", math.MinInt64, true},
		{"2262-04-12T01:47:16.854775807+02:00", math.MaxInt64, true}, // the same instant in another zone
		{"1970-01-01T00:00:00Z", 0, true},
		{"2024-01-02T03:04:05.123456789Z", time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC).UnixNano(), true},
	}
	for _, tt := range tests {
		t.Run(tt.time, func(t *testing.T) {
			rec, err := Normalize([]byte(`{"eventTime":"`+tt.time+`","eventName":"X","eventSource":"x.amazonaws.com"}`), defaults)
			if !tt.ok {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "eventTime" {
					t.Fatalf("Normalize = %v (stored as %s), want a FieldError on eventTime", err, time.Unix(0, rec.Meta.EventTime).UTC())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Meta.EventTime != tt.nanos {
				t.Errorf("EventTime = %d, want %d", rec.Meta.EventTime, tt.nanos)
			}
		})
	}
}
