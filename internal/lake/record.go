package lake

import (
	"bytes"
	"database/sql/driver"
	"slices"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/go-json-experiment/json/jsontext"
)

// Records are split into their columns in Go, without a JSON tree: one pass
// finds each top-level member's value, and the value's bytes go to the column
// as they are (JSON text columns, STRUCT columns that DuckDB's json_transform
// then types) or unquoted (VARCHAR columns). Records come from the journal or
// from archive.Split, so they are valid JSON.

// colKind is how a staged column's value is made from the member's JSON.
type colKind uint8

const (
	kindText colKind = iota // VARCHAR: a string's value, any other value's JSON text
	kindJSON                // typed by json_transform in SQL: the value's JSON text
)

// splitRecord calls fn with each top-level member of the JSON object rec: its
// (unescaped) name and its value's bytes. Members of other types are skipped.
func splitRecord(rec []byte, fn func(name, val []byte)) {
	i := skipSpace(rec, 0)
	if i >= len(rec) || rec[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(rec, i)
		if i >= len(rec) || rec[i] != '"' {
			return
		}
		end := skipValue(rec, i)
		if end < 0 {
			return
		}
		key := rec[i+1 : end-1]
		var name []byte
		if bytes.IndexByte(key, '\\') >= 0 {
			name = []byte(unquote(rec[i:end]))
		} else {
			name = key
		}
		i = skipSpace(rec, end)
		if i >= len(rec) || rec[i] != ':' {
			return
		}
		i = skipSpace(rec, i+1)
		vend := skipValue(rec, i)
		if vend < 0 {
			return
		}
		fn(name, rec[i:vend])
		i = skipSpace(rec, vend)
		if i >= len(rec) || rec[i] != ',' {
			return
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		// The closing quote is the first not escaped by an odd run of backslashes.
		for j := i + 1; j < len(b); {
			k := bytes.IndexByte(b[j:], '"')
			if k < 0 {
				return -1
			}
			j += k
			n := 0
			for p := j - 1; p > i && b[p] == '\\'; p-- {
				n++
			}
			if n%2 == 0 {
				return j + 1
			}
			j++
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			case '"':
				e := skipValue(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
			j++
		}
		return j
	}
}

// unquote returns the value of the JSON string s (quotes included).
func unquote(s []byte) string {
	v, err := jsontext.AppendUnquote(nil, s)
	if err != nil {
		return string(s[1 : len(s)-1])
	}
	return string(v)
}

// textValue is a VARCHAR column's value for the member value v, as json_transform
// gives it: a string's value, null as NULL, anything else as its JSON text.
func textValue(v []byte) (string, bool) {
	switch {
	case len(v) == 0 || string(v) == "null":
		return "", false
	case v[0] == '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return string(v[1 : len(v)-1]), true
		}
		return unquote(v), true
	}
	return string(v), true
}

// jsonValue is the JSON text of a STRUCT/LIST/BOOLEAN column, NULL for null.
func jsonValue(v []byte) (string, bool) {
	if len(v) == 0 || string(v) == "null" {
		return "", false
	}
	return string(v), true
}

// quoteJSONType quotes a column type for json_transform's structure argument.
func quoteJSONType(typ string) string {
	return `"` + strings.ReplaceAll(squash(typ), `"`, `\"`) + `"`
}

// stager makes the staged values (see stageNames) of records.
type stager struct {
	pos   []int // by storeColumns index: the column's place in args, -1 if not staged
	args  []driver.Value
	names []string          // the staged columns' names,
	types []duckdb.TypeInfo // and types, for the appender
}

// newStager stages the columns in only (lower-case names): a log query's
// appender gets just those (an unused column would still cost a NULL per
// row). With only nil it stages every column, in stageNames' layout.
func newStager(only map[string]bool) *stager {
	s := &stager{pos: make([]int, len(storeColumns))}
	if only == nil {
		s.names, s.types = stageNames, stageTypes
	} else {
		s.names, s.types = slices.Clone(stageNames[:stageFixed]), slices.Clone(stageTypes[:stageFixed])
	}
	for i, c := range storeColumns {
		s.pos[i] = -1
		need := c.name != "eventTime" && c.name != "eventJson" && (only == nil || only[strings.ToLower(c.name)])
		switch {
		case only == nil && need:
			s.pos[i] = stageFixed + i
		case need:
			s.pos[i] = len(s.names)
			s.names, s.types = append(s.names, stageNames[stageFixed+i]), append(s.types, stageTypes[stageFixed+i])
		}
	}
	s.args = make([]driver.Value, len(s.names))
	return s
}

// row returns the staged values of rec; they are valid until the next call.
// ej is the record for a log query's eventJson column, nil for stores.
func (s *stager) row(seq uint64, et int64, r ref, ej any, rec []byte) []driver.Value {
	a := s.args
	clear(a)
	a[0], a[1], a[2], a[3], a[4], a[5] = seq, et, r.jb, r.jl, r.ji, ej
	splitRecord(rec, func(name, val []byte) {
		i, ok := columnIndex[string(name)]
		if !ok || s.pos[i] < 0 {
			return
		}
		var v string
		if kindOf(storeColumns[i].typ) == kindText {
			v, ok = textValue(val)
		} else {
			v, ok = jsonValue(val)
		}
		if ok {
			a[s.pos[i]] = v
		} else {
			a[s.pos[i]] = nil
		}
	})
	return a
}

// columnIndex maps a top-level member name to its storeColumns index.
var columnIndex = func() map[string]int {
	m := map[string]int{}
	for i, c := range storeColumns {
		m[c.name] = i
	}
	return m
}()

func kindOf(typ string) colKind {
	if typ == "VARCHAR" {
		return kindText
	}
	return kindJSON
}
