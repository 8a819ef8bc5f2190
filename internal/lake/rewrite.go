package lake

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// The rewrite turns a statement in the CloudTrail Lake / Athena (Trino) dialect
// into DuckDB SQL. It works on tokens, never on raw text, so string literals
// and quoted identifiers are never altered, and it keeps the text between
// tokens so that DuckDB's error positions map back to the user's statement.

// mapColumns hold JSON objects that CloudTrail Lake exposes as map<string,string>
// and Athena as JSON strings: subscripts and element_at read a key.
var mapColumns = map[string]bool{
	"requestparameters": true, "responseelements": true, "additionaleventdata": true,
	"serviceeventdetails": true, "edgedevicedetails": true,
}

// renames are Trino functions DuckDB has under another name (or as one of our
// ct_ macros, see macros.go) with the same arguments.
var renames = map[string]string{
	"regexp_like":            "regexp_matches",
	"approx_distinct":        "approx_count_distinct",
	"approx_percentile":      "approx_quantile",
	"date_diff":              "date_sub", // Trino counts whole units elapsed, as date_sub does
	"day_of_week":            "isodow",
	"dow":                    "isodow",
	"day_of_year":            "dayofyear",
	"doy":                    "dayofyear",
	"day_of_month":           "day",
	"year_of_week":           "isoyear",
	"yow":                    "isoyear",
	"week_of_year":           "week",
	"to_unixtime":            "epoch",
	"array_join":             "array_to_string",
	"array_distinct":         "list_distinct",
	"array_max":              "list_max",
	"array_min":              "list_min",
	"array_sort":             "list_sort",
	"arrays_overlap":         "list_has_any",
	"contains":               "list_contains",
	"split":                  "string_split",
	"regexp_split":           "string_split_regex",
	"format":                 "printf",
	"transform":              "list_transform",
	"filter":                 "list_filter",
	"levenshtein_distance":   "levenshtein",
	"hamming_distance":       "hamming",
	"is_nan":                 "isnan",
	"date_add":               "ct_date_add",
	"from_iso8601_timestamp": "ct_from_iso8601_timestamp",
	"from_iso8601_date":      "ct_from_iso8601_date",
	"from_unixtime":          "ct_from_unixtime",
	"to_iso8601":             "ct_to_iso8601",
	"date":                   "ct_date",
	"json_extract":           "ct_json_extract",
	"json_extract_scalar":    "ct_json_extract_scalar",
	"json_format":            "ct_json_format",
	"json_parse":             "ct_json_parse",
	"json_size":              "ct_json_size",
	"regexp_extract":         "ct_regexp_extract",
	"regexp_replace":         "ct_regexp_replace",
	"to_utf8":                "encode",
	"from_utf8":              "decode",
	"to_hex":                 "ct_to_hex",
}

// fromEnders end a FROM clause at the current nesting level.
var fromEnders = map[string]bool{
	"WHERE": true, "GROUP": true, "HAVING": true, "ORDER": true, "LIMIT": true, "OFFSET": true,
	"UNION": true, "EXCEPT": true, "INTERSECT": true, "WINDOW": true, "QUALIFY": true,
	"ON": true, "USING": true, "FETCH": true, "SELECT": true,
}

// storeRefRE matches an event data store named in FROM: an ARN, or an ID,
// which (unquoted) may contain hyphens.
var storeRefRE = regexp.MustCompile(`^(?:arn:aws[a-zA-Z-]*:cloudtrail:[a-z0-9-]+:[0-9]{12}:eventdatastore/[A-Za-z0-9._-]+|[A-Za-z0-9_][A-Za-z0-9_-]*)`)

// looksLikeStoreRE tells an event data store ID or ARN from a CTE name.
var looksLikeStoreRE = regexp.MustCompile(`^(?:arn:aws[a-zA-Z-]*:cloudtrail:.*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+|[A-Za-z0-9]{32,})$`)

// resolver maps a name written in FROM to the SQL that replaces it; ok is false
// when the name is not a table of this query.
type resolver func(name string) (sql string, ok bool)

// rewritten is a statement translated to DuckDB.
type rewritten struct {
	sql     string            // with placeholders for the tables
	tables  map[string]string // placeholder → SQL that replaces it
	anchors []anchor          // output offset → input offset, ascending
	now     string            // the timestamp literal current_timestamp became
}

type anchor struct{ out, in int }

// final is the statement to run: placeholders replaced by their tables.
func (r *rewritten) final() string { return r.fill(r.sql) }

// fill replaces the table placeholders in s, a form of r.sql, quoted or not
// (DuckDB's printer leaves plain names unquoted); the longest first, so that
// no placeholder is taken for the start of a longer one (…_1 in …_10).
func (r *rewritten) fill(s string) string {
	phs := slices.SortedFunc(maps.Keys(r.tables), func(a, b string) int { return len(b) - len(a) })
	for _, ph := range phs {
		s = strings.ReplaceAll(s, ph, r.tables[ph])
	}
	for _, ph := range phs {
		s = strings.ReplaceAll(s, strings.Trim(ph, `"`), r.tables[ph])
	}
	return s
}

// inputPos maps a byte offset of r.sql back to the user's statement.
func (r *rewritten) inputPos(out int) int {
	i := sort.Search(len(r.anchors), func(i int) bool { return r.anchors[i].out > out }) - 1
	if i < 0 {
		return 0
	}
	return r.anchors[i].in + out - r.anchors[i].out
}

type rewriter struct {
	src     string
	toks    []token
	out     strings.Builder
	anchors []anchor
	resolve resolver
	nonce   string
	tables  map[string]string
	now     string
	err     *QueryError
}

// rewrite translates src. now is the query's current time as a literal.
func rewrite(src string, resolve resolver, nonce, now string) (*rewritten, error) {
	toks, err := lex(src)
	if err != nil {
		le := err.(*lexError)
		return nil, newQueryError(src, le.pos, le.msg)
	}
	if len(toks) > 0 && toks[len(toks)-1].is(";") {
		toks = toks[:len(toks)-1]
	}
	if len(toks) == 0 {
		return nil, newQueryError(src, 0, "the query statement is empty")
	}
	if first := toks[0].upper(); first != "SELECT" && first != "WITH" && !toks[0].is("(") && first != "VALUES" {
		return nil, newQueryError(src, toks[0].pos, fmt.Sprintf("only SELECT statements are allowed, not %s", strings.ToUpper(tokenText(src, toks[0]))))
	}
	for _, t := range toks {
		switch {
		case t.is(";"):
			return nil, newQueryError(src, t.pos, "only one statement is allowed")
		case t.kind == tokParam:
			return nil, newQueryError(src, t.pos, "parameters are not allowed")
		}
	}
	rw := &rewriter{src: src, toks: toks, resolve: resolve, nonce: nonce, tables: map[string]string{}, now: now}
	rw.emitRange(0, len(toks))
	if rw.err != nil {
		return nil, rw.err
	}
	return &rewritten{sql: rw.out.String(), tables: rw.tables, anchors: rw.anchors, now: now}, nil
}

func tokenText(src string, t token) string { return src[t.pos:t.end] }

// emitTok copies token i as written, with the text before it.
func (rw *rewriter) emitTok(i int) {
	rw.gap(i)
	t := rw.toks[i]
	switch t.kind {
	case tokQuoted:
		rw.put(t.pos, quoteIdent(t.text)) // backquotes too
	case tokOp:
		rw.put(t.pos, t.text)
	default:
		rw.put(t.pos, rw.src[t.pos:t.end])
	}
}

// gap writes the whitespace and comments between token i-1 and token i as one space
// (comments may not survive reordering, and a space is always safe).
func (rw *rewriter) gap(i int) {
	if i == 0 {
		return
	}
	if rw.toks[i].pos > rw.toks[i-1].end {
		rw.out.WriteByte(' ')
	}
}

// put writes text that stands for input at offset in.
func (rw *rewriter) put(in int, text string) {
	rw.anchors = append(rw.anchors, anchor{rw.out.Len(), in})
	rw.out.WriteString(text)
}

// emitRange rewrites tokens [i, j).
func (rw *rewriter) emitRange(i, j int) {
	// inFrom[d] is whether the FROM clause of the query at paren depth d is open.
	inFrom := []bool{false}
	prevKw := "" // the last significant token, upper-cased, or the operator
	for i < j && rw.err == nil {
		t := rw.toks[i]
		depth := len(inFrom) - 1
		tableSlot := prevKw == "FROM" || prevKw == "JOIN" || (prevKw == "," && inFrom[depth])
		switch {
		case t.is("(") || t.is("["):
			inFrom = append(inFrom, false)
		case t.is(")") || t.is("]"):
			if len(inFrom) > 1 {
				inFrom = inFrom[:len(inFrom)-1]
			}
		case t.kind == tokIdent:
			u := t.upper()
			if u == "FROM" || u == "JOIN" {
				inFrom[depth] = true
			} else if fromEnders[u] {
				inFrom[depth] = false
			}
		}
		if tableSlot && (t.kind == tokIdent || t.kind == tokQuoted || t.kind == tokNumber) {
			if n := rw.tableRef(i, j); n > 0 {
				prevKw = "table"
				i += n
				continue
			}
		}
		n := rw.special(i, j)
		if n == 0 {
			rw.emitTok(i)
			n = 1
		}
		last := rw.toks[i+n-1]
		if last.kind == tokOp {
			prevKw = last.text
		} else {
			prevKw = last.upper()
			if prevKw == "" {
				prevKw = "x"
			}
		}
		i += n
	}
}

// tableRef handles a table named in FROM at token i: an event data store by ID
// or ARN (unquoted ones span several tokens), or a name left for DuckDB to resolve
// (a CTE). It returns the tokens consumed, 0 to leave token i to the caller.
func (rw *rewriter) tableRef(i, j int) int {
	t := rw.toks[i]
	name, n := t.text, 1
	if t.kind != tokQuoted {
		m := storeRefRE.FindString(rw.src[t.pos:])
		if m == "" {
			return 0
		}
		end := t.pos + len(m)
		// The reference must end on a token boundary with nothing between its tokens.
		k := i
		for k < j && rw.toks[k].end < end && (k+1 >= j || rw.toks[k+1].pos == rw.toks[k].end) {
			k++
		}
		if k >= j || rw.toks[k].end != end {
			return 0
		}
		if k+1 < j && rw.toks[k+1].is("(") {
			return 0 // a table function, e.g. UNNEST(...)
		}
		name, n = m, k-i+1
	}
	if i+n < j && rw.toks[i+n].is(".") {
		return 0 // schema-qualified: left to the sandbox check, which refuses it
	}
	repl, ok := rw.resolve(name)
	if !ok {
		if looksLikeStoreRE.MatchString(name) {
			rw.err = newQueryError(rw.src, t.pos, fmt.Sprintf("EventDataStore %s not found", name))
			rw.err.NotFound = name
			return n
		}
		return 0
	}
	ph := fmt.Sprintf(`"lake_ref_%s_%d"`, rw.nonce, len(rw.tables))
	rw.tables[ph] = repl
	rw.gap(i)
	rw.put(t.pos, ph)
	return n
}

// args splits the argument list of a call whose "(" is token open; it returns
// the [start, end) token ranges of the arguments and the index of the ")".
func (rw *rewriter) args(open, j int) (ranges [][2]int, close int, ok bool) {
	depth := 0
	start := open + 1
	caseDepth := 0
	for k := open; k < j; k++ {
		t := rw.toks[k]
		switch {
		case t.is("(") || t.is("[") || t.is("{"):
			depth++
		case t.is(")") || t.is("]") || t.is("}"):
			depth--
			if depth == 0 {
				if k > start || len(ranges) > 0 {
					ranges = append(ranges, [2]int{start, k})
				}
				return ranges, k, true
			}
		case t.upper() == "CASE":
			caseDepth++
		case t.upper() == "END" && caseDepth > 0:
			caseDepth--
		case t.is(",") && depth == 1 && caseDepth == 0:
			ranges = append(ranges, [2]int{start, k})
			start = k + 1
		}
	}
	return nil, 0, false
}

// mapPath reports whether tokens [a, b) are a column path ending in a map column.
func (rw *rewriter) mapPath(a, b int) bool {
	if b-a < 1 || (b-a)%2 == 0 {
		return false
	}
	for k := a; k < b; k++ {
		t := rw.toks[k]
		if (k-a)%2 == 0 {
			if t.kind != tokIdent && t.kind != tokQuoted {
				return false
			}
		} else if !t.is(".") {
			return false
		}
	}
	return mapColumns[strings.ToLower(rw.toks[b-1].text)]
}

// pathEnd returns the end of the column path starting at token i.
func (rw *rewriter) pathEnd(i, j int) int {
	k := i + 1
	for k+1 < j && rw.toks[k].is(".") && (rw.toks[k+1].kind == tokIdent || rw.toks[k+1].kind == tokQuoted) {
		k += 2
	}
	return k
}

// special rewrites a construct starting at token i that differs between the
// dialects; it returns the tokens consumed, 0 if there is nothing to do.
func (rw *rewriter) special(i, j int) int {
	t := rw.toks[i]
	if t.kind != tokIdent && t.kind != tokQuoted {
		return 0
	}
	afterDot := i > 0 && rw.toks[i-1].is(".")
	call := t.kind == tokIdent && i+1 < j && rw.toks[i+1].is("(") && !afterDot
	lower := strings.ToLower(t.text)
	if t.kind == tokIdent && !afterDot && !call {
		switch lower {
		case "current_timestamp", "localtimestamp":
			rw.gap(i)
			rw.put(t.pos, "TIMESTAMP "+quoteString(rw.now))
			return 1
		case "current_date":
			rw.gap(i)
			rw.put(t.pos, "DATE "+quoteString(rw.now[:10]))
			return 1
		}
	}
	// X['key'] on a map column: a JSON object read by key.
	if !afterDot && !call {
		end := rw.pathEnd(i, j)
		if end < j && rw.toks[end].is("[") && rw.mapPath(i, end) {
			ranges, close, ok := rw.args(end, j)
			if ok && len(ranges) == 1 {
				rw.gap(i)
				rw.put(t.pos, "json_extract_string(")
				rw.emitRange(i, end)
				rw.put(rw.toks[end].pos, ", ")
				rw.emitKey(ranges[0][0], ranges[0][1])
				rw.put(rw.toks[close].pos, ")")
				return close - i + 1
			}
		}
	}
	if !call {
		// CAST(x AS ARRAY(T)) and ROW(...) types.
		if t.kind == tokIdent && i > 0 && rw.toks[i-1].upper() == "AS" && lower == "array" && i+1 < j && rw.toks[i+1].is("(") {
			ranges, close, ok := rw.args(i+1, j)
			if ok && len(ranges) == 1 {
				rw.gap(i)
				rw.emitRange(ranges[0][0], ranges[0][1])
				rw.put(rw.toks[close].pos, "[]")
				return close - i + 1
			}
		}
		return 0
	}
	ranges, close, ok := rw.args(i+1, j)
	if !ok {
		return 0
	}
	emitCall := func(name string, argFn func(k int)) int {
		rw.gap(i)
		rw.put(t.pos, name+"(")
		for k := range ranges {
			if k > 0 {
				rw.put(rw.toks[ranges[k][0]].pos, ", ")
			}
			if argFn != nil {
				argFn(k)
			} else {
				rw.emitRange(ranges[k][0], ranges[k][1])
			}
		}
		rw.put(rw.toks[close].pos, ")")
		return close - i + 1
	}
	isMap := len(ranges) > 0 && rw.mapPath(ranges[0][0], ranges[0][1])
	switch lower {
	case "cast", "try_cast":
		if n := rw.castFromJSON(i, ranges, close); n > 0 {
			return n
		}
	case "now", "current_timestamp", "localtimestamp":
		if len(ranges) == 0 {
			rw.gap(i)
			rw.put(t.pos, "TIMESTAMP "+quoteString(rw.now))
			return close - i + 1
		}
	case "element_at":
		if len(ranges) == 2 {
			if isMap {
				return emitCall("json_extract_string", func(k int) {
					if k == 1 {
						rw.emitKey(ranges[1][0], ranges[1][1])
					} else {
						rw.emitRange(ranges[k][0], ranges[k][1])
					}
				})
			}
			rw.gap(i)
			rw.put(t.pos, "(")
			rw.emitRange(ranges[0][0], ranges[0][1])
			rw.put(rw.toks[ranges[1][0]].pos, ")[")
			rw.emitRange(ranges[1][0], ranges[1][1])
			rw.put(rw.toks[close].pos, "]")
			return close - i + 1
		}
	case "any_match", "all_match", "none_match":
		if len(ranges) == 2 {
			agg := map[string]string{"any_match": "list_bool_or", "all_match": "list_bool_and", "none_match": "NOT list_bool_or"}[lower]
			rw.gap(i)
			rw.put(t.pos, "("+agg+"(list_transform(")
			rw.emitRange(ranges[0][0], ranges[0][1])
			rw.put(rw.toks[ranges[1][0]].pos, ", ")
			rw.emitRange(ranges[1][0], ranges[1][1])
			rw.put(rw.toks[close].pos, ")))")
			return close - i + 1
		}
	case "cardinality":
		if isMap {
			return emitCall("ct_json_size", nil)
		}
		return emitCall("len", nil)
	case "map_keys":
		if isMap {
			return emitCall("json_keys", nil)
		}
	case "map_values":
		if isMap {
			return emitCall("ct_json_values", nil)
		}
	case "date_format", "format_datetime", "date_parse", "parse_datetime":
		if len(ranges) == 2 && ranges[1][1]-ranges[1][0] == 1 && rw.toks[ranges[1][0]].kind == tokString {
			var conv func(string) (string, error)
			name := "strftime"
			if lower == "date_parse" || lower == "parse_datetime" {
				name = "strptime"
			}
			if lower == "date_format" || lower == "date_parse" {
				conv = mysqlFormat
			} else {
				conv = jodaFormat
			}
			ft := rw.toks[ranges[1][0]]
			f, err := conv(ft.text)
			if err != nil {
				rw.err = newQueryError(rw.src, ft.pos, err.Error())
				return close - i + 1
			}
			return emitCall(name, func(k int) {
				if k == 1 {
					rw.put(ft.pos, quoteString(f))
				} else {
					rw.emitRange(ranges[k][0], ranges[k][1])
				}
			})
		}
	case "regexp_replace":
		// Trino's replacement refers to groups as $1; DuckDB's as \1.
		if len(ranges) == 3 && ranges[2][1]-ranges[2][0] == 1 && rw.toks[ranges[2][0]].kind == tokString {
			rt := rw.toks[ranges[2][0]]
			return emitCall("ct_regexp_replace", func(k int) {
				if k == 2 {
					rw.put(rt.pos, quoteString(dollarGroupRE.ReplaceAllString(rt.text, `\$1`)))
				} else {
					rw.emitRange(ranges[k][0], ranges[k][1])
				}
			})
		}
	}
	if to, ok := renames[lower]; ok {
		if lower == "filter" && i > 0 && rw.toks[i-1].is(")") {
			return 0 // an aggregate's FILTER (WHERE ...) clause, not Trino's filter(array, function)
		}
		return emitCall(to, nil)
	}
	return 0
}

var dollarGroupRE = regexp.MustCompile(`\$(\d)`)

// emitKey writes a map key for json_extract_string: a literal key becomes a
// JSON path that takes it verbatim, whatever characters it holds.
func (rw *rewriter) emitKey(a, b int) {
	if b-a == 1 && rw.toks[a].kind == tokString {
		k := rw.toks[a]
		rw.put(k.pos, quoteString(`$."`+strings.ReplaceAll(k.text, `"`, `\"`)+`"`))
		return
	}
	rw.put(rw.toks[a].pos, `'$."' || replace(`)
	rw.emitRange(a, b)
	rw.put(rw.toks[b-1].end, `, '"', '\"') || '"'`)
}
