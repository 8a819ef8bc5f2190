package filterpattern

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// item is a token returned by the lexer.
type item struct {
	typ itemType // the type of this item
	pos int      // byte offset of the item in the pattern
	val string   // the text of the item
}

func (i item) String() string {
	switch i.typ {
	case itemEOF:
		return "end of pattern"
	case itemError:
		return i.val
	}
	if len(i.val) > 20 {
		return fmt.Sprintf("%.20q...", i.val)
	}
	return fmt.Sprintf("%q", i.val)
}

// itemType identifies the type of a lexed item.
type itemType int

const (
	itemError          itemType = iota // error occurred; val is the message
	itemEOF                            // end of the pattern
	itemLeftBrace                      // '{' opening a JSON pattern
	itemRightBrace                     // '}' closing a JSON pattern
	itemLeftBracket                    // '[' opening a space-delimited pattern
	itemRightBracket                   // ']' closing a space-delimited pattern
	itemLeftParen                      // '('
	itemRightParen                     // ')'
	itemComma                          // ',' between space-delimited fields
	itemAnd                            // '&&'
	itemOr                             // '||'
	itemOp                             // comparison: = != < <= > >=
	itemString                         // double-quoted string, quotes included
	itemRegex                          // %regex%, percent signs included
	itemWord                           // unquoted run: a value, keyword, field name or term
	itemRoot                           // '$' starting a property selector
	itemProperty                       // .name in a selector; val is the name
	itemQuotedProperty                 // .['name'] in a selector; val is the raw text
	itemIndex                          // [n] in a selector; val is the digits
	itemWildcard                       // .* or [*] in a selector
	itemQuestion                       // '?' before an optional term
	itemMinus                          // '-' before an excluded term
)

const eof = -1

// lexMode says where the lexer resumes when the parser asks for the next item.
type lexMode int

const (
	modeStart     lexMode = iota // nothing read yet: the first character picks the kind
	modeJSON                     // inside { }
	modeSelector                 // inside a property selector, after '$'
	modeDelimited                // inside [ ]
	modeTerms                    // unstructured terms, or a standalone regex
)

// stateFn represents the state of the lexer as a function that returns the next state.
type stateFn func(*lexer) stateFn

// lexer holds the state of the scanner. Like text/template's, it is driven by the
// parser: nextItem runs state functions until one of them produces an item.
type lexer struct {
	input string // the pattern being scanned
	start int    // start position of the current item
	pos   int    // current position in the input
	atEOF bool   // next has returned eof
	mode  lexMode
	item  item // item to return to the parser
}

func lex(input string) *lexer {
	return &lexer{input: input}
}

// nextItem returns the next item from the input.
func (l *lexer) nextItem() item {
	l.item = item{itemEOF, len(l.input), ""}
	var state stateFn
	switch l.mode {
	case modeStart:
		state = lexPattern
	case modeJSON:
		state = lexJSON
	case modeSelector:
		state = lexSelector
	case modeDelimited:
		state = lexDelimited
	case modeTerms:
		state = lexTerms
	}
	for state != nil {
		state = state(l)
	}
	return l.item
}

// next returns the next rune in the input.
func (l *lexer) next() rune {
	if l.pos >= len(l.input) {
		l.atEOF = true
		return eof
	}
	r, w := utf8.DecodeRuneInString(l.input[l.pos:])
	l.pos += w
	return r
}

// peek returns but does not consume the next rune in the input.
func (l *lexer) peek() rune {
	if l.pos >= len(l.input) {
		return eof
	}
	r, _ := utf8.DecodeRuneInString(l.input[l.pos:])
	return r
}

// backup steps back one rune.
func (l *lexer) backup() {
	if !l.atEOF && l.pos > 0 {
		_, w := utf8.DecodeLastRuneInString(l.input[:l.pos])
		l.pos -= w
	}
	l.atEOF = false
}

// emit passes the pending text as an item to the parser.
func (l *lexer) emit(t itemType) stateFn {
	l.item = item{t, l.start, l.input[l.start:l.pos]}
	l.start = l.pos
	return nil
}

// emitVal passes an item whose value differs from its source text.
func (l *lexer) emitVal(t itemType, val string) stateFn {
	l.item = item{t, l.start, val}
	l.start = l.pos
	return nil
}

// ignore skips the pending input.
func (l *lexer) ignore() {
	l.start = l.pos
}

// skipSpace skips white space before an item.
func (l *lexer) skipSpace() {
	for isSpace(l.peek()) {
		l.next()
	}
	l.ignore()
}

// errorf returns an error item at pos and stops the scan.
func (l *lexer) errorf(pos int, format string, args ...any) stateFn {
	l.item = item{itemError, pos, fmt.Sprintf(format, args...)}
	l.input = l.input[:0]
	l.start, l.pos = 0, 0
	return nil
}

// lexPattern picks the kind of pattern from its first non-space character.
func lexPattern(l *lexer) stateFn {
	l.skipSpace()
	switch l.peek() {
	case eof:
		return nil
	case '{':
		l.next()
		l.mode = modeJSON
		return l.emit(itemLeftBrace)
	case '[':
		l.next()
		l.mode = modeDelimited
		return l.emit(itemLeftBracket)
	case '%':
		// A pattern that starts with '%' is a regex, even if the closing '%' is missing.
		l.next()
		l.mode = modeTerms
		return lexRegex(l)
	}
	l.mode = modeTerms
	return lexTerms
}

// lexJSON scans the inside of a JSON pattern.
func lexJSON(l *lexer) stateFn {
	l.skipSpace()
	switch r := l.next(); {
	case r == eof:
		return nil
	case r == '}':
		return l.emit(itemRightBrace)
	case r == '(':
		return l.emit(itemLeftParen)
	case r == ')':
		return l.emit(itemRightParen)
	case r == '&' || r == '|':
		return lexLogical(l, r)
	case r == '=' || r == '!' || r == '<' || r == '>':
		return lexOp(l, r)
	case r == '"':
		return lexQuote(l)
	case r == '%':
		return lexRegex(l)
	case r == '$':
		l.mode = modeSelector
		return l.emit(itemRoot)
	case isWordRune(r, jsonStops):
		return lexWord(l, jsonStops)
	default:
		return l.errorf(l.start, "unexpected %q in JSON pattern", r)
	}
}

// lexSelector scans one step of a property selector. The selector ends at the
// first character that cannot continue it.
func lexSelector(l *lexer) stateFn {
	switch l.peek() {
	case '.':
		l.next()
		switch r := l.peek(); {
		case r == '*':
			l.next()
			return l.emit(itemWildcard)
		case r == '[':
			l.next()
			if l.peek() != '\'' {
				return l.errorf(l.pos, "expected quoted property name after '.['")
			}
			return lexQuotedProperty(l)
		case isNameRune(r):
			l.ignore() // the dot is not part of the name
			for isNameRune(l.peek()) {
				l.next()
			}
			return l.emit(itemProperty)
		default:
			return l.errorf(l.pos, "expected property name after '.'")
		}
	case '[':
		l.next()
		switch r := l.peek(); {
		case r == '*':
			l.next()
			if l.next() != ']' {
				l.backup()
				return l.errorf(l.pos, "expected ']' after '[*'")
			}
			return l.emit(itemWildcard)
		case r == '\'':
			return lexQuotedProperty(l)
		case isDigit(r):
			l.ignore()
			for isDigit(l.peek()) {
				l.next()
			}
			digits := l.input[l.start:l.pos]
			if l.next() != ']' {
				l.backup()
				return l.errorf(l.pos, "expected ']' after array index")
			}
			l.start-- // the item starts at '['
			return l.emitVal(itemIndex, digits)
		default:
			return l.errorf(l.pos, "expected array index, '*' or quoted property name after '['")
		}
	}
	l.mode = modeJSON
	return lexJSON
}

// lexQuotedProperty scans 'name'] after '[' or '.['. Inside the quotes a backslash
// escapes the next character.
func lexQuotedProperty(l *lexer) stateFn {
	l.next() // opening quote
	for {
		switch l.next() {
		case '\\':
			if l.next() == eof {
				return l.errorf(l.start, "unterminated quoted property name")
			}
		case eof:
			return l.errorf(l.start, "unterminated quoted property name")
		case '\'':
			if l.next() != ']' {
				l.backup()
				return l.errorf(l.pos, "expected ']' after quoted property name")
			}
			return l.emit(itemQuotedProperty)
		}
	}
}

// lexDelimited scans the inside of a space-delimited pattern.
func lexDelimited(l *lexer) stateFn {
	l.skipSpace()
	switch r := l.next(); {
	case r == eof:
		return nil
	case r == ']':
		return l.emit(itemRightBracket)
	case r == ',':
		return l.emit(itemComma)
	case r == '&' || r == '|':
		return lexLogical(l, r)
	case r == '=' || r == '!' || r == '<' || r == '>':
		return lexOp(l, r)
	case r == '"':
		return lexQuote(l)
	case r == '%':
		return lexRegex(l)
	case isWordRune(r, delimitedStops):
		return lexWord(l, delimitedStops)
	default:
		return l.errorf(l.start, "unexpected %q in space-delimited pattern", r)
	}
}

// lexTerms scans unstructured terms. A '?' or '-' at the start of a term is an
// operator; elsewhere it is part of the term.
func lexTerms(l *lexer) stateFn {
	l.skipSpace()
	switch r := l.next(); r {
	case eof:
		return nil
	case '?':
		return l.emit(itemQuestion)
	case '-':
		return l.emit(itemMinus)
	case '"':
		return lexQuote(l)
	case '%':
		if strings.IndexByte(l.input[l.pos:], '%') >= 0 {
			return lexRegex(l)
		}
		return lexWord(l, termStops)
	default:
		return lexWord(l, termStops)
	}
}

// lexLogical scans '&&' or '||'; the first character has been read.
func lexLogical(l *lexer, r rune) stateFn {
	if l.next() != r {
		l.backup()
		return l.errorf(l.start, "expected %q", string([]rune{r, r}))
	}
	if r == '&' {
		return l.emit(itemAnd)
	}
	return l.emit(itemOr)
}

// lexOp scans a comparison operator; the first character has been read.
func lexOp(l *lexer, r rune) stateFn {
	switch r {
	case '!':
		if l.next() != '=' {
			l.backup()
			return l.errorf(l.start, "expected '=' after '!'")
		}
	case '<', '>':
		if l.peek() == '=' {
			l.next()
		}
	}
	return l.emit(itemOp)
}

// lexQuote scans a double-quoted string; the opening quote has been read.
// A backslash escapes the next character.
func lexQuote(l *lexer) stateFn {
	for {
		switch l.next() {
		case '\\':
			if l.next() == eof {
				return l.errorf(l.start, "unterminated quoted string")
			}
		case eof:
			return l.errorf(l.start, "unterminated quoted string")
		case '"':
			return l.emit(itemString)
		}
	}
}

// lexRegex scans a regular expression; the opening '%' has been read. The
// expression cannot contain '%' (AWS offers \x25 for that), so it ends at the next one.
func lexRegex(l *lexer) stateFn {
	i := strings.IndexByte(l.input[l.pos:], '%')
	if i < 0 {
		return l.errorf(l.start, "unterminated regular expression: missing closing '%%'")
	}
	l.pos += i + 1
	return l.emit(itemRegex)
}

// lexWord scans an unquoted run; its first rune has been read.
func lexWord(l *lexer, stops string) stateFn {
	for {
		r := l.next()
		if r == eof || !isWordRune(r, stops) {
			l.backup()
			return l.emit(itemWord)
		}
	}
}

// Characters that end an unquoted word, besides white space.
const (
	jsonStops      = `(){}[]"&|,=!<>%`
	delimitedStops = `()[]"&|,=!<>%`
	termStops      = `"`
)

func isWordRune(r rune, stops string) bool {
	return r != eof && !isSpace(r) && !strings.ContainsRune(stops, r)
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v'
}

func isDigit(r rune) bool {
	return '0' <= r && r <= '9'
}

// isNameRune reports whether r can appear in an unquoted property name: AWS allows
// alphanumerics, '-' and '_'.
func isNameRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || isDigit(r) || r == '_' || r == '-'
}
