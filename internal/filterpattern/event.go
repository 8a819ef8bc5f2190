package filterpattern

import "sync"

// Event is one log event prepared for matching. Build it once with NewEvent and
// match every filter against it: its JSON is parsed at most once, and only if a
// JSON pattern asks; its space-delimited fields are split at most once, and only
// if a space-delimited pattern asks. An Event is safe for concurrent use.
type Event struct {
	msg string

	jsonOnce sync.Once
	json     *jsonDoc // nil when msg is not a JSON object

	tokensOnce sync.Once
	tokens     []token
}

// NewEvent prepares message for matching. It copies message, so the caller may
// reuse the slice.
func NewEvent(message []byte) *Event {
	return &Event{msg: string(message)}
}

// doc returns the parsed JSON object, or nil if the message is not one.
func (e *Event) doc() *jsonDoc {
	e.jsonOnce.Do(func() { e.json = parseJSON(e.msg) })
	return e.json
}

// token is one field of a space-delimited line.
type token struct {
	text  string // the field, without enclosing quotes or brackets
	start int    // offset of the field in the message, enclosing characters included
}

// fields returns the message split into space-delimited fields.
func (e *Event) fields() []token {
	e.tokensOnce.Do(func() { e.tokens = splitFields(e.msg) })
	return e.tokens
}

// splitFields splits a log line at runs of white space. Text between double
// quotes or between square brackets is one field, without the quotes or
// brackets; inside quotes a backslash escapes the next character. A quote or
// bracket left open runs to the end of the line.
func splitFields(s string) []token {
	var toks []token
	i := 0
	for {
		for i < len(s) && isSpaceByte(s[i]) {
			i++
		}
		if i >= len(s) {
			return toks
		}
		start := i
		switch s[i] {
		case '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j > len(s) {
				j = len(s)
			}
			toks = append(toks, token{text: s[i+1 : j], start: start})
			i = j + 1
		case '[':
			j := i + 1
			for j < len(s) && s[j] != ']' {
				j++
			}
			toks = append(toks, token{text: s[i+1 : j], start: start})
			i = j + 1
		default:
			j := i
			for j < len(s) && !isSpaceByte(s[j]) {
				j++
			}
			toks = append(toks, token{text: s[i:j], start: start})
			i = j
		}
	}
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
