package lake

import (
	"fmt"
	"strings"
)

// tokKind is the kind of a lexical token of the Trino/Presto dialect.
type tokKind uint8

const (
	tokIdent  tokKind = iota // bare identifier or keyword
	tokQuoted                // "identifier" or `identifier`; text holds the unquoted name
	tokString                // 'literal'; text holds the unescaped value
	tokNumber
	tokOp    // operator or punctuation: ( ) , . [ ] ; + - * / % || = <> != < <= > >= -> :: ?
	tokParam // ? or $1: parameters are not allowed in a query statement
)

// token is one lexeme; pos and end are byte offsets into the statement.
type token struct {
	kind     tokKind
	text     string // identifier as written, unquoted name, unescaped string, operator
	pos, end int
}

// upper is an identifier's text in upper case, for keyword tests.
func (t token) upper() string {
	if t.kind != tokIdent {
		return ""
	}
	return strings.ToUpper(t.text)
}

func (t token) is(op string) bool { return t.kind == tokOp && t.text == op }

// lexError is a lexical error at a byte offset.
type lexError struct {
	pos int
	msg string
}

func (e *lexError) Error() string { return e.msg }

// lex splits a statement into tokens, dropping whitespace and comments.
// It understands what could otherwise hide a token boundary: string literals
// with doubled quotes, double-quoted and backquoted identifiers, line and
// block comments.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, &lexError{i, "unterminated comment"}
			}
			i += end + 4
		case c == '\'':
			s, n, ok := quoted(src[i:], '\'')
			if !ok {
				return nil, &lexError{i, "unterminated string literal"}
			}
			toks = append(toks, token{tokString, s, i, i + n})
			i += n
		case c == '"' || c == '`':
			s, n, ok := quoted(src[i:], c)
			if !ok {
				return nil, &lexError{i, "unterminated quoted identifier"}
			}
			if s == "" {
				return nil, &lexError{i, "zero-length delimited identifier"}
			}
			toks = append(toks, token{tokQuoted, s, i, i + n})
			i += n
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j], i, j})
			i = j
		case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			if j < len(src) && src[j] == '.' {
				j++
				for j < len(src) && isDigit(src[j]) {
					j++
				}
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				k := j + 1
				if k < len(src) && (src[k] == '+' || src[k] == '-') {
					k++
				}
				if k < len(src) && isDigit(src[k]) {
					for k < len(src) && isDigit(src[k]) {
						k++
					}
					j = k
				}
			}
			toks = append(toks, token{tokNumber, src[i:j], i, j})
			i = j
		case c == '?':
			toks = append(toks, token{tokParam, "?", i, i + 1})
			i++
		case c == '$' && i+1 < len(src) && isDigit(src[i+1]):
			j := i + 1
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			toks = append(toks, token{tokParam, src[i:j], i, j})
			i = j
		default:
			op := ""
			for _, o := range twoCharOps {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if !strings.ContainsRune("(),.[];+-*/%=<>:{}|&^~!@#$", rune(c)) {
					if c >= 0x80 {
						return nil, &lexError{i, "unexpected character outside a string or quoted identifier"}
					}
					return nil, &lexError{i, fmt.Sprintf("unexpected character %q", c)}
				}
				op = src[i : i+1]
			}
			// "< =" (seen in AWS's own examples) is "<=".
			if n := len(toks); op == "=" && n > 0 && toks[n-1].kind == tokOp && strings.Contains("<>!", toks[n-1].text) {
				toks[n-1].text += "="
				toks[n-1].end = i + 1
				i++
				continue
			}
			toks = append(toks, token{tokOp, op, i, i + len(op)})
			i += len(op)
		}
	}
	return toks, nil
}

var twoCharOps = []string{"||", "<>", "!=", "<=", ">=", "->", "::", "=>"}

// quoted reads a literal delimited by q at the start of s, where a doubled q
// stands for one. It returns the unescaped text and the bytes consumed.
func quoted(s string, q byte) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] == q {
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i++
				continue
			}
			return b.String(), i + 1, true
		}
		b.WriteByte(s[i])
	}
	return "", 0, false
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quoteIdent renders name as a DuckDB double-quoted identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteString renders s as a SQL string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
