package dest

import (
	"fmt"
	"strings"
)

// Alert makes a Batch a detection finding instead of log events. Webhooks
// and Lambda functions receive Body, the finding as JSON with its records
// ({"finding":{...},"records":[...]}); people (Slack, mail, SNS subjects)
// get Subject and Lines above the usual summary of each record, which the
// Batch carries as Events.
type Alert struct {
	Body    []byte
	Subject string   // e.g. "[OpenTrail] high: AWS Console Login Failed (3 events)"
	Lines   []string // "Rule: ...", "Level: ...", "Group: ..."
}

// FindingRoute sends findings of at least MinLevel to Destination (a
// destinationArn as subscription filters take it, or a URL).
type FindingRoute struct {
	Destination string `json:"destination"`
	MinLevel    string `json:"minLevel,omitempty"` // informational (default), low, medium, high, critical
}

// Levels are Sigma's rule levels, lowest first.
var Levels = []string{"informational", "low", "medium", "high", "critical"}

// LevelRank is a level's place in Levels, or -1 when it is none of them.
func LevelRank(level string) int {
	for i, l := range Levels {
		if strings.EqualFold(l, level) {
			return i
		}
	}
	return -1
}

func validRoute(r FindingRoute) error {
	if r.Destination == "" {
		return fmt.Errorf("destination is empty")
	}
	if r.MinLevel != "" && LevelRank(r.MinLevel) < 0 {
		return fmt.Errorf("minLevel %q is not one of %s", trimForError(r.MinLevel), strings.Join(Levels, ", "))
	}
	return nil
}

// alertText is the plain-text rendering of an alert: its lines, then each record.
func alertText(a *Alert, b *Batch, sums []summary) string {
	var sb strings.Builder
	for _, l := range a.Lines {
		sb.WriteString(l)
		sb.WriteString("\n")
	}
	b2 := *b
	b2.LogGroup, b2.LogStream = "(detection)", "-"
	sb.WriteString("\n")
	sb.WriteString(plainText(&b2, sums))
	return sb.String()
}
