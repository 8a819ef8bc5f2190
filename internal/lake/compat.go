package lake

import "strings"

// Compatibility with Trino functions that AWS's published CloudTrail Lake
// sample queries use and that the base rewrite (rewrite.go, schema.go) did
// not cover: json_array_get failed resourceCompliance.sql; two-argument
// replace and CAST of JSON to MAP, ARRAY and VARCHAR are what the AWS Config
// sample queries (ssm-patch-compliance-*.sql) rely on. compat_test.go holds a
// regression test per entry.
//
// The entries are added to renames and macros at package initialisation so
// that this file is the only place that knows about them.

func init() {
	for name, to := range compatRenames {
		renames[name] = to
	}
	macros = append(macros, compatMacros...)
}

// compatRenames are Trino functions mapped to the ct_ macros below.
var compatRenames = map[string]string{
	"json_array_get": "ct_json_array_get",
	"replace":        "ct_replace",
}

// jsonCalls are the Trino functions whose result is of type JSON, which here is
// JSON text in a VARCHAR.
var jsonCalls = map[string]bool{"json_extract": true, "json_parse": true, "json_array_get": true}

// compatMacros implement the Trino functions DuckDB lacks or spells differently.
var compatMacros = []string{
	// json_array_get(array, i): element i (0-based; negative counts from the
	// end) of a JSON array, as JSON text; NULL when the value is not an array
	// or i is out of range.
	`ct_json_array_get(j, i) AS CASE WHEN json_type(j) = 'ARRAY' THEN
		CAST(json_extract(j, CASE WHEN i >= 0 THEN '$[' || CAST(i AS BIGINT) || ']'
			ELSE '$[#' || CAST(i AS BIGINT) || ']' END) AS VARCHAR) END`,
	// replace(s, search) removes every occurrence of search; DuckDB's replace
	// always takes the replacement.
	`ct_replace(s, f) AS replace(s, f, ''), (s, f, r) AS replace(s, f, r)`,
	// CAST(json AS VARCHAR): a JSON string becomes its value, unquoted; numbers
	// and booleans their text; JSON null is NULL.
	`ct_json_to_varchar(j) AS json_extract_string(j, '$')`,
}

// castFromJSON rewrites the casts whose meaning depends on the source being of
// type JSON, which here is text, token i being CAST or TRY_CAST:
//   - CAST(x AS MAP(...)) and CAST(x AS ARRAY(...)): Trino parses the JSON;
//     DuckDB would read text as its own literal syntax, so x goes through JSON;
//   - CAST(json_extract(...) AS VARCHAR) (or another call returning JSON): Trino
//     gives a JSON string's value without its quotes.
//
// It returns the tokens consumed, 0 if the call is not such a cast.
func (rw *rewriter) castFromJSON(i int, ranges [][2]int, close int) int {
	if len(ranges) != 1 {
		return 0
	}
	a, b := ranges[0][0], ranges[0][1]
	as, depth := -1, 0
	for k := a; k < b; k++ {
		t := rw.toks[k]
		switch {
		case t.is("(") || t.is("["):
			depth++
		case t.is(")") || t.is("]"):
			depth--
		case depth == 0 && t.upper() == "AS":
			as = k
		}
	}
	if as <= a || as+1 >= b {
		return 0
	}
	if typ := rw.toks[as+1]; typ.upper() == "VARCHAR" && rw.jsonCall(a, as) {
		rw.gap(i)
		rw.put(rw.toks[i].pos, "ct_json_to_varchar(")
		rw.emitRange(a, as)
		rw.put(rw.toks[close].pos, ")")
		return close - i + 1
	}
	if as+2 >= b || !rw.toks[as+2].is("(") {
		return 0
	}
	if typ := rw.toks[as+1].upper(); typ != "MAP" && typ != "ARRAY" {
		return 0
	}
	t := rw.toks[i]
	rw.gap(i)
	rw.put(t.pos, t.text+"(CAST(")
	rw.emitRange(a, as)
	rw.put(rw.toks[as].pos, " AS JSON) AS ")
	if rw.toks[as+1].upper() == "ARRAY" {
		// ARRAY(T) is T[]; its "(" would otherwise be read as a call.
		if !rw.toks[b-1].is(")") {
			rw.err = newQueryError(rw.src, rw.toks[as+1].pos, "malformed ARRAY type")
			return close - i + 1
		}
		rw.emitRange(as+3, b-1)
		rw.put(rw.toks[b-1].pos, "[]")
	} else {
		rw.emitRange(as+1, b)
	}
	rw.put(rw.toks[close].pos, ")")
	return close - i + 1
}

// jsonCall reports whether tokens [a, b) are one call of a function returning JSON.
func (rw *rewriter) jsonCall(a, b int) bool {
	if b-a < 3 || rw.toks[a].kind != tokIdent || !jsonCalls[strings.ToLower(rw.toks[a].text)] || !rw.toks[a+1].is("(") {
		return false
	}
	_, close, ok := rw.args(a+1, b)
	return ok && close == b-1
}
