package console

import (
	"math"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
)

// ProjectionLag is how far one projection of the journal (event history, the Lake, trail
// delivery, ...) is behind it.
type ProjectionLag struct {
	Name    string        // the projection, as the metrics name it: event_history, lake, ...
	Entries uint64        // journal entries it has yet to apply
	Behind  time.Duration // how long the oldest of those has waited; 0 when none waits
}

// What a session may learn of the lag: it is node-wide, so the number of entries waiting
// measures every account's activity together. Only the operator (the root key) sees entries
// and exact seconds; every other key, admins included (an admin is one tenant's), sees
// whether each projection is caught up and, if not, how far behind it is in coarse steps,
// which tells how fresh its own pages are and little about anyone else.

// lagView is one projection's lag as GET /console/api/lag answers it.
type lagView struct {
	Name          string  `json:"name"`
	CaughtUp      bool    `json:"caughtUp"`
	BehindSeconds float64 `json:"behindSeconds"`
	Entries       *uint64 `json:"entries,omitempty"` // root only
}

type lagAnswer struct {
	Reported    bool      `json:"reported"` // false: this server does not report lag to the console
	Detail      bool      `json:"detail"`   // entries and exact seconds (root)
	Projections []lagView `json:"projections"`
}

// caughtUpWithin is how far behind a projection may be and still count as caught up for a
// tenant: a projection applies new entries within milliseconds when it keeps up.
const caughtUpWithin = 5 * time.Second

func (c *Console) lag(role string) lagAnswer {
	out := lagAnswer{Projections: []lagView{}}
	if c.o.Lag == nil {
		return out
	}
	out.Reported, out.Detail = true, role == auth.RoleRoot
	for _, l := range c.o.Lag() {
		v := lagView{Name: l.Name}
		if out.Detail {
			n := l.Entries
			v.Entries = &n
			v.CaughtUp = l.Entries == 0
			v.BehindSeconds = math.Round(l.Behind.Seconds()*10) / 10
		} else {
			v.BehindSeconds = coarse(l.Behind).Seconds()
			v.CaughtUp = v.BehindSeconds == 0
		}
		out.Projections = append(out.Projections, v)
	}
	return out
}

// coarse rounds a lag up to a step that grows with it: 0 below caughtUpWithin, then tens of
// seconds, minutes, hours.
func coarse(d time.Duration) time.Duration {
	step := time.Hour
	switch {
	case d < caughtUpWithin:
		return 0
	case d < time.Minute:
		step = 10 * time.Second
	case d < time.Hour:
		step = time.Minute
	}
	return (d + step - 1).Truncate(step)
}
