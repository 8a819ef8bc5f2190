package filterpattern

import (
	"errors"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// Characters AWS allows in a filter-pattern regex, besides letters and digits.
// Space is not on AWS's list, but its own example %^starting|^initializing|^shutting down%
// uses one, so it is allowed.
const (
	regexSymbols   = ":_#=@/;,- "
	regexOperators = `^$?[]{}|\*+.`
	maxRepeat      = 1000 // RE2's limit on {m,n}
)

// compileRegex checks src, the text between a regex's percent signs, against the
// subset of regular expressions AWS documents and compiles it. pos is the offset
// of src in the pattern. The subset:
//
//	letters, digits, the symbols : _ # = @ / ; , - and space
//	^ $ . | ? * +   anchors, any character, alternation, repetition
//	[abc] [a-z] [^c] character classes
//	{m,n} {m,} {,n} {m}   bounded repetition (spaces inside are allowed)
//	\d \D \s \S \w \W     character class escapes
//	\xhh                  the ASCII character with hex code hh
//	\ before an operator or symbol: that character literally
//
// Parentheses, other punctuation and multi-byte characters are rejected. A match
// is a search: the expression may match anywhere in the text.
func compileRegex(t *parser, src string, pos int) *regexp.Regexp {
	if src == "" {
		t.errorf(pos, "empty regular expression")
	}
	var b strings.Builder
	inClass := false // inside [...]
	classStart := 0  // offset just after '[' or '[^'
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c >= 0x80:
			t.errorf(pos+i, "multi-byte characters are not supported in regular expressions")
		case isAlnum(c) || strings.IndexByte(regexSymbols, c) >= 0:
			b.WriteByte(c)
		case c == '\\':
			if i+1 == len(src) {
				t.errorf(pos+i, "regular expression ends with '\\'")
			}
			e := src[i+1]
			switch {
			case strings.IndexByte("dDsSwW", e) >= 0:
				b.WriteString(src[i : i+2])
				i++
			case e == 'x':
				if i+3 >= len(src) || !isHex(src[i+2]) || !isHex(src[i+3]) {
					t.errorf(pos+i, `expected two hexadecimal digits after \x`)
				}
				if src[i+2] > '7' {
					t.errorf(pos+i, `\x%s is not an ASCII character`, src[i+2:i+4])
				}
				b.WriteString(src[i : i+4])
				i += 3
			case strings.IndexByte(regexOperators, e) >= 0 || strings.IndexByte(regexSymbols, e) >= 0 && e != ' ':
				b.WriteString(src[i : i+2])
				i++
			default:
				t.errorf(pos+i, "unsupported escape sequence \\%c in regular expression", e)
			}
		case c == '(' || c == ')':
			t.errorf(pos+i, "parentheses are not supported in regular expressions")
		case inClass:
			switch {
			case c == ']' && i > classStart:
				inClass = false
				b.WriteByte(c)
			case strings.IndexByte(regexOperators, c) >= 0:
				b.WriteByte(c)
			default:
				t.errorf(pos+i, "character %q is not supported in regular expressions", c)
			}
		case c == '[':
			inClass = true
			b.WriteByte(c)
			classStart = i + 1
			if classStart < len(src) && src[classStart] == '^' {
				b.WriteByte('^')
				i++
				classStart++
			}
		case c == '{':
			n := repetition(t, &b, src[i:], pos+i)
			i += n - 1
		case c == '}':
			t.errorf(pos+i, "unmatched '}' in regular expression")
		case strings.IndexByte(regexOperators, c) >= 0:
			b.WriteByte(c)
		default:
			t.errorf(pos+i, "character %q is not supported in regular expressions", c)
		}
	}
	if inClass {
		t.errorf(pos+len(src), "missing ']' in regular expression")
	}
	tree, err := syntax.Parse(b.String(), syntax.Perl)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			t.errorf(pos, "invalid regular expression: %s: %q", se.Code, se.Expr)
		}
		t.errorf(pos, "invalid regular expression: %v", err)
	}
	// AWS documents no bound on a regex's size, but every event runs through it:
	// refuse expressions whose repetitions expand beyond a few thousand steps.
	if regexSize(tree) > maxRegexSize {
		t.errorf(pos, "regular expression is too complex: its repetitions expand beyond %d steps", maxRegexSize)
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		t.errorf(pos, "invalid regular expression: %v", err)
	}
	return re
}

// maxRegexSize bounds regexSize. \d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3} is 16.
const maxRegexSize = 5000

// regexSize estimates the size of re's compiled program: repetitions multiply
// the size of what they repeat. It saturates instead of overflowing.
func regexSize(re *syntax.Regexp) int {
	n := 1
	for _, sub := range re.Sub {
		n += regexSize(sub)
	}
	if re.Op == syntax.OpRepeat {
		times := re.Max
		if times < 0 {
			times = re.Min + 1
		}
		n *= max(times, 1)
	}
	return min(n, maxRegexSize+1)
}

// repetition translates a bounded repetition at the start of s ("{m,n}" with
// either bound optional and spaces allowed) into RE2's form and returns the
// number of bytes it used.
func repetition(t *parser, b *strings.Builder, s string, pos int) int {
	end := strings.IndexByte(s, '}')
	if end < 0 {
		t.errorf(pos, "missing '}' in regular expression")
	}
	body := strings.ReplaceAll(s[1:end], " ", "")
	lo, hi, comma := body, "", false
	if k := strings.IndexByte(body, ','); k >= 0 {
		lo, hi, comma = body[:k], body[k+1:], true
	}
	bound := func(d string) int {
		if d == "" {
			return -1
		}
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > maxRepeat || strings.ContainsAny(d, "+-") {
			t.errorf(pos, "invalid repetition %q: bounds are numbers up to %d", s[:end+1], maxRepeat)
		}
		return n
	}
	m, n := bound(lo), bound(hi)
	switch {
	case m < 0 && n < 0, !comma && m < 0:
		t.errorf(pos, "invalid repetition %q", s[:end+1])
	case m >= 0 && n >= 0 && m > n:
		t.errorf(pos, "invalid repetition %q: minimum is above maximum", s[:end+1])
	}
	switch {
	case !comma:
		b.WriteString("{" + strconv.Itoa(m) + "}")
	case m < 0:
		b.WriteString("{0," + strconv.Itoa(n) + "}")
	case n < 0:
		b.WriteString("{" + strconv.Itoa(m) + ",}")
	default:
		b.WriteString("{" + strconv.Itoa(m) + "," + strconv.Itoa(n) + "}")
	}
	return end + 1
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
