package lake

import (
	stdjson "encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Values are rendered as CloudTrail Lake (Trino) renders them in
// GetQueryResults: timestamps "2024-01-01 00:00:00.000", booleans true/false,
// arrays [a, b], maps and rows {k=v, k2=v2} (rows with their fields in schema
// order, names in lower case as in the Lake schema), NULL inside them as null.

// typeNode is a parsed DuckDB type name.
type typeNode struct {
	name   string      // upper-case base name: VARCHAR, STRUCT, LIST, MAP, TIMESTAMP, ...
	fields []typeField // STRUCT
	elem   *typeNode   // LIST/ARRAY element, MAP value
}

type typeField struct {
	name string
	typ  *typeNode
}

// parseType parses names like STRUCT("type" VARCHAR, arn VARCHAR)[] or MAP(VARCHAR, BIGINT).
func parseType(s string) *typeNode {
	p := &typeParser{s: s}
	return p.parse()
}

type typeParser struct {
	s string
	i int
}

func (p *typeParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *typeParser) parse() *typeNode {
	p.space()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != '(' && p.s[p.i] != '[' && p.s[p.i] != ',' && p.s[p.i] != ')' {
		p.i++
	}
	t := &typeNode{name: strings.ToUpper(strings.TrimSpace(p.s[start:p.i]))}
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		switch t.name {
		case "STRUCT":
			for p.i < len(p.s) && p.s[p.i] != ')' {
				p.space()
				name := p.name()
				t.fields = append(t.fields, typeField{name, p.parse()})
				p.space()
				if p.i < len(p.s) && p.s[p.i] == ',' {
					p.i++
				}
			}
		case "MAP":
			p.parse()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
			}
			t.elem = p.parse()
		default: // DECIMAL(18,3) and the like
			for p.i < len(p.s) && p.s[p.i] != ')' {
				p.i++
			}
		}
		if p.i < len(p.s) && p.s[p.i] == ')' {
			p.i++
		}
	}
	for p.i < len(p.s) && p.s[p.i] == '[' {
		for p.i < len(p.s) && p.s[p.i] != ']' {
			p.i++
		}
		p.i++
		t = &typeNode{name: "LIST", elem: t}
	}
	return t
}

func (p *typeParser) name() string {
	if p.i < len(p.s) && p.s[p.i] == '"' {
		var b strings.Builder
		p.i++
		for p.i < len(p.s) {
			if p.s[p.i] == '"' {
				if p.i+1 < len(p.s) && p.s[p.i+1] == '"' {
					b.WriteByte('"')
					p.i += 2
					continue
				}
				p.i++
				break
			}
			b.WriteByte(p.s[p.i])
			p.i++
		}
		return b.String()
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' {
		p.i++
	}
	return p.s[start:p.i]
}

// render formats one non-NULL value of type t.
func render(v any, t *typeNode) string {
	var b strings.Builder
	renderTo(&b, v, t)
	return b.String()
}

func renderTo(b *strings.Builder, v any, t *typeNode) {
	if v == nil {
		b.WriteString("null")
		return
	}
	if t == nil {
		t = &typeNode{}
	}
	switch x := v.(type) {
	case string:
		b.WriteString(x)
	case []byte:
		b.WriteString(string(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64, int, uint:
		fmt.Fprint(b, x)
	case *big.Int:
		b.WriteString(x.String())
	case float32:
		b.WriteString(formatDouble(float64(x), 32))
	case float64:
		b.WriteString(formatDouble(x, 64))
	case duckdb.Decimal:
		b.WriteString(x.String())
	case time.Time:
		switch t.name {
		case "DATE":
			b.WriteString(x.UTC().Format("2006-01-02"))
		case "TIME":
			b.WriteString(x.UTC().Format("15:04:05.000"))
		case "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ":
			b.WriteString(x.UTC().Format("2006-01-02 15:04:05.000 UTC"))
		default:
			b.WriteString(x.UTC().Format("2006-01-02 15:04:05.000"))
		}
	case duckdb.Interval:
		d := time.Duration(x.Micros) * time.Microsecond
		days := int64(x.Days) + int64(x.Months)*30 + int64(d/(24*time.Hour))
		d %= 24 * time.Hour
		sign := ""
		if d < 0 {
			sign, d = "-", -d
		}
		fmt.Fprintf(b, "%s%d %02d:%02d:%02d.%03d", sign, days, int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60, d.Milliseconds()%1000)
	case duckdb.UUID:
		b.WriteString(x.String())
	case []any:
		var elem *typeNode
		if t.name == "LIST" {
			elem = t.elem
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			renderTo(b, e, elem)
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		if t.name == "STRUCT" {
			for i, f := range t.fields {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(strings.ToLower(f.name))
				b.WriteByte('=')
				renderTo(b, x[f.name], f.typ)
			}
		} else {
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i, k := range keys {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(k)
				b.WriteByte('=')
				renderTo(b, x[k], nil)
			}
		}
		b.WriteByte('}')
	case duckdb.Map:
		keys := make([]string, 0, len(x))
		vals := map[string]any{}
		for k, v := range x {
			ks := render(k, nil)
			keys = append(keys, ks)
			vals[ks] = v
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteByte('=')
			renderTo(b, vals[k], t.elem)
		}
		b.WriteByte('}')
	default:
		if j, err := stdjson.Marshal(x); err == nil {
			b.Write(j)
		} else {
			fmt.Fprint(b, x)
		}
	}
}

// formatDouble renders a double as Java (Trino) does: 1.0, 0.25, 1.0E10, NaN, Infinity.
func formatDouble(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	a := math.Abs(f)
	if a == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, bits)
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	n, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(n)
}
