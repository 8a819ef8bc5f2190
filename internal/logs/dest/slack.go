package dest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// slackEndpoint posts to a Slack-compatible incoming webhook. The webhook's
// path is its secret, so only the host is ever shown.
type slackEndpoint struct {
	url    *url.URL
	client *http.Client
}

func (e *slackEndpoint) String() string { return "slack " + e.url.Host }

// Slack's limits (https://api.slack.com/reference/block-kit/blocks).
const (
	slackTextMax    = 40000 // top-level text
	slackBlocksMax  = 50
	slackSectionMax = 3000 // a section's text
	slackHeaderMax  = 150  // a header's plain_text
)

type slackText struct {
	Type string `json:"type"` // "mrkdwn" or "plain_text"
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"` // "header", "section", "context"
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

func (e *slackEndpoint) send(ctx context.Context, n *notification) error {
	body, err := marshalNoHTML(slackPayload(n))
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	what := "slack webhook at " + e.url.Host
	return post(ctx, e.client, e.url, what, body, h, nil)
}

// slackPayload renders a notification as an incoming-webhook message: a
// header, a context line naming the log group, one section per event, and
// "…and N more" when the events do not fit in 50 blocks.
func slackPayload(n *notification) slackMessage {
	if n.msg != nil {
		return slackMessagePayload(n.msg)
	}
	b, sums := n.batch, n.sums
	title := fmt.Sprintf("OpenTrail: %d CloudTrail %s", len(sums), plural(len(sums), "event", "events"))
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncateRunes(title, slackHeaderMax-1)}},
		{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: truncateBytes(fmt.Sprintf(
			"Log group `%s` · stream `%s` · filter `%s` · account %s (%s)",
			slackEscape(b.LogGroup), slackEscape(b.LogStream), slackEscape(strings.Join(b.SubscriptionFilters, ", ")),
			slackEscape(b.Owner), slackEscape(b.Region)), slackSectionMax)}}},
	}
	room := slackBlocksMax - len(blocks)
	shown := len(sums)
	if shown > room {
		shown = room - 1 // keep one block for "…and N more"
	}
	for _, s := range sums[:shown] {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncateBytes(slackEvent(&s), slackSectionMax)}})
	}
	if shown < len(sums) {
		blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn",
			Text: fmt.Sprintf("…and %d more", len(sums)-shown)}}})
	}

	// The text is what notifications and clients without blocks show.
	var sb strings.Builder
	sb.WriteString(slackEscape(n.subject))
	for i, s := range sums {
		line := "\n• " + slackEscape(s.headline())
		if s.Text == "" {
			line += " — " + slackEscape(s.Time) + " from " + slackEscape(s.SourceIP)
		}
		more := fmt.Sprintf("\n…and %d more", len(sums)-i)
		if sb.Len()+len(line)+len(more) > slackTextMax {
			sb.WriteString(more)
			break
		}
		sb.WriteString(line)
	}
	return slackMessage{Text: truncateBytes(sb.String(), slackTextMax), Blocks: blocks}
}

// slackMessagePayload renders a Message: its title as the header, its text
// (or body) as one preformatted section.
func slackMessagePayload(m *Message) slackMessage {
	title := m.Title
	if title == "" {
		title = "OpenTrail notification"
	}
	text := m.Text
	if text == "" {
		text = m.Body
	}
	quoted := truncateBytes(strings.ReplaceAll(slackEscape(text), "```", "``\u200b`"), slackSectionMax-10)
	return slackMessage{Text: truncateBytes(slackEscape(title)+"\n"+slackEscape(text), slackTextMax), Blocks: []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncateRunes(title, slackHeaderMax-1)}},
		{Type: "section", Text: &slackText{Type: "mrkdwn", Text: "```" + quoted + "```"}},
	}}
}

func slackEvent(s *summary) string {
	var sb strings.Builder
	if s.Text != "" {
		// Cut before quoting so that the closing ``` survives the section limit.
		text := truncateBytes(strings.ReplaceAll(slackEscape(s.Text), "```", "``\u200b`"), slackSectionMax-100)
		fmt.Fprintf(&sb, "*Log event* at %s\n```%s```", slackEscape(s.Time), text)
		return sb.String()
	}
	fmt.Fprintf(&sb, "*%s* (%s)\n", slackEscape(s.EventName), slackEscape(s.EventSource))
	fmt.Fprintf(&sb, "*User:* %s\n", slackEscape(s.User))
	fmt.Fprintf(&sb, "*Time:* %s\n", slackEscape(s.Time))
	fmt.Fprintf(&sb, "*Source IP:* %s\n", slackEscape(s.SourceIP))
	fmt.Fprintf(&sb, "*User agent:* %s\n", slackEscape(s.UserAgent))
	if s.ErrorCode != "" {
		fmt.Fprintf(&sb, "*Error:* %s\n", slackEscape(s.ErrorCode))
	}
	fmt.Fprintf(&sb, "*Region:* %s", slackEscape(s.Region))
	if s.Link != "" {
		fmt.Fprintf(&sb, "\n<%s|View event in CloudTrail>", strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(s.Link))
	}
	return sb.String()
}

// slackEscape escapes the three characters mrkdwn gives meaning to as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncateBytes cuts s to at most n bytes at a rune boundary, marking the cut.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + mark
}
