package dest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// summary is what a person is told about one log event.
type summary struct {
	Text string // set when the message is not a JSON object: shown as is

	Time        string // eventTime, or the log event's timestamp
	User        string // long form: userName, ARN, or type and principal
	ShortUser   string // for subjects: userName, or the ARN's resource part
	EventName   string
	EventSource string
	SourceIP    string
	UserAgent   string
	ErrorCode   string
	Region      string
	Link        string // empty when the record has no eventID
}

// record is the part of a CloudTrail record that notifications show.
type record struct {
	EventTime       string `json:"eventTime"`
	EventSource     string `json:"eventSource"`
	EventName       string `json:"eventName"`
	AWSRegion       string `json:"awsRegion"`
	SourceIPAddress string `json:"sourceIPAddress"`
	UserAgent       string `json:"userAgent"`
	ErrorCode       string `json:"errorCode"`
	EventID         string `json:"eventID"`
	RecipientAcct   string `json:"recipientAccountId"`
	UserIdentity    *struct {
		Type        string `json:"type"`
		PrincipalID string `json:"principalId"`
		ARN         string `json:"arn"`
		AccountID   string `json:"accountId"`
		UserName    string `json:"userName"`
		InvokedBy   string `json:"invokedBy"`
	} `json:"userIdentity"`
}

func (c *Config) summarize(b *Batch) []summary {
	out := make([]summary, len(b.Events))
	for i, e := range b.Events {
		out[i] = c.summarizeEvent(b, e)
	}
	return out
}

func (c *Config) summarizeEvent(b *Batch, e LogEvent) summary {
	var r record
	msg := strings.TrimSpace(e.Message)
	if !strings.HasPrefix(msg, "{") || json.Unmarshal([]byte(msg), &r) != nil {
		return summary{Text: e.Message, Time: msTime(e.Timestamp), Region: b.Region}
	}
	s := summary{
		Time:        r.EventTime,
		EventName:   r.EventName,
		EventSource: r.EventSource,
		SourceIP:    r.SourceIPAddress,
		UserAgent:   r.UserAgent,
		ErrorCode:   r.ErrorCode,
		Region:      r.AWSRegion,
	}
	if s.Time == "" {
		s.Time = msTime(e.Timestamp)
	}
	if s.Region == "" {
		s.Region = b.Region
	}
	if s.EventName == "" {
		s.EventName = "(no eventName)"
	}
	s.User, s.ShortUser = userOf(&r)
	if r.EventID != "" {
		account := r.RecipientAcct
		if account == "" {
			account = b.Owner
		}
		s.Link = c.eventLink(s.Region, r.EventID, account)
	}
	return s
}

// userOf names who acted: userIdentity.userName, else the ARN, else (roles
// without an ARN, AWS services, other accounts) the type and principal.
func userOf(r *record) (long, short string) {
	u := r.UserIdentity
	switch {
	case u == nil:
		return "unknown", "unknown"
	case u.UserName != "":
		return u.UserName, u.UserName
	case u.ARN != "":
		short = u.ARN
		if p := strings.SplitN(u.ARN, ":", 6); len(p) == 6 && p[5] != "" {
			short = p[5] // "assumed-role/Admin/alice", "root"
		}
		return u.ARN, short
	case u.Type == "AWSService" && u.InvokedBy != "":
		return "AWSService " + u.InvokedBy, u.InvokedBy
	case u.Type == "AWSAccount" && u.AccountID != "":
		return "AWSAccount " + u.AccountID, "account " + u.AccountID
	case u.PrincipalID != "":
		if u.Type != "" {
			return u.Type + " " + u.PrincipalID, u.PrincipalID
		}
		return u.PrincipalID, u.PrincipalID
	case u.Type != "":
		return u.Type, u.Type
	}
	return "unknown", "unknown"
}

func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func (c *Config) eventLink(region, eventID, account string) string {
	tmpl := c.EventLink
	if tmpl == "" {
		tmpl = DefaultEventLink
	}
	return strings.NewReplacer(
		"{region}", url.PathEscape(region),
		"{eventID}", url.PathEscape(eventID),
		"{account}", url.PathEscape(account),
	).Replace(tmpl)
}

// action is "DeleteBucket (s3.amazonaws.com)".
func (s *summary) action() string {
	if s.EventSource == "" {
		return s.EventName
	}
	return fmt.Sprintf("%s (%s)", s.EventName, s.EventSource)
}

// headline is one line about the event: "alice: DeleteBucket (s3.amazonaws.com)".
func (s *summary) headline() string {
	if s.Text != "" {
		return oneLine(s.Text, 80)
	}
	h := s.ShortUser + ": " + s.action()
	if s.ErrorCode != "" {
		h += " [" + s.ErrorCode + "]"
	}
	return h
}

// subject is the notification's subject for the whole batch.
func subject(sums []summary) string {
	switch len(sums) {
	case 0:
		return "[OpenTrail] no events"
	case 1:
		return "[OpenTrail] " + sums[0].headline()
	}
	return fmt.Sprintf("[OpenTrail] %d events: %s and %d more", len(sums), sums[0].headline(), len(sums)-1)
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	return truncateRunes(s, n)
}

func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return strings.TrimRight(s[:j], " ") + "…"
		}
		i++
	}
	return s
}

// plainText is the text/plain rendering used by email.
func plainText(b *Batch, sums []summary) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d %s from log group %s, stream %s (account %s, %s), subscription filter %s.\n",
		len(sums), plural(len(sums), "event", "events"), b.LogGroup, b.LogStream, b.Owner, b.Region,
		strings.Join(b.SubscriptionFilters, ", "))
	for i, s := range sums {
		sb.WriteString("\n")
		if len(sums) > 1 {
			fmt.Fprintf(&sb, "#%d\n", i+1)
		}
		if s.Text != "" {
			fmt.Fprintf(&sb, "Time:       %s\nMessage:\n%s\n", s.Time, strings.TrimRight(s.Text, "\r\n"))
			continue
		}
		fmt.Fprintf(&sb, "Time:       %s\n", s.Time)
		fmt.Fprintf(&sb, "User:       %s\n", s.User)
		fmt.Fprintf(&sb, "Event:      %s\n", s.action())
		fmt.Fprintf(&sb, "Source IP:  %s\n", s.SourceIP)
		fmt.Fprintf(&sb, "User agent: %s\n", s.UserAgent)
		if s.ErrorCode != "" {
			fmt.Fprintf(&sb, "Error:      %s\n", s.ErrorCode)
		}
		fmt.Fprintf(&sb, "Region:     %s\n", s.Region)
		if s.Link != "" {
			fmt.Fprintf(&sb, "Link:       %s\n", s.Link)
		}
	}
	return sb.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
