package lake

import (
	"fmt"
	"regexp"
	"strings"
)

// Limits on what one statement may allocate outside DuckDB's memory limit.
//
// DuckDB's memory_limit bounds its buffer pool (tables, hash tables, sorts),
// not the strings and lists a function builds in a vector: repeat('a', 2e9)
// in two queries took the process to 8.5 GiB (issue 11 §4). So the functions
// whose result size a caller chooses are capped per value: repeat, lpad, rpad,
// list_resize and bar fail at run time past maxValueSize (the rewrite sends
// them to the ct_ macros below, and the sandbox refuses them spelled in a way
// the rewrite does not see), range/generate_series take only integer
// constants spanning at most maxSeriesLength, printf/format no width past
// maxValueSize, and WITH RECURSIVE (which can double a string per step) is
// refused. With 2,048 values to a vector, a thread holds at most 2,048 ×
// maxValueSize characters of such values at once.
const (
	maxValueSize    = 65536
	maxSeriesLength = 1_000_000
)

func init() {
	for name, to := range limitRenames {
		renames[name] = to
	}
	macros = append(macros, limitMacros...)
}

// limitRenames send the size-choosing functions to their capped forms.
var limitRenames = map[string]string{
	"repeat": "ct_repeat", "lpad": "ct_lpad", "rpad": "ct_rpad",
	"list_resize": "ct_list_resize", "array_resize": "ct_list_resize", "bar": "ct_bar",
}

// tooLong is the CASE that passes n through, or fails the query when the
// value it sizes would exceed maxValueSize.
func tooLong(size, n, fn string) string {
	return fmt.Sprintf(`CASE WHEN %s > %d THEN error('%s: the result would have more than %d characters or elements, more than this OpenTrail node allows per value') ELSE %s END`,
		size, maxValueSize, fn, maxValueSize, n)
}

// The check sits inside the call's argument, never around it, so that DuckDB
// cannot fold a constant call (and allocate its result) while planning.
var limitMacros = []string{
	`ct_repeat(s, n) AS repeat(s, ` + tooLong("length(s) * n", "n", "repeat") + `)`,
	`ct_lpad(s, n, p) AS lpad(s, ` + tooLong("n", "n", "lpad") + `, p)`,
	`ct_rpad(s, n, p) AS rpad(s, ` + tooLong("n", "n", "rpad") + `, p)`,
	`ct_list_resize(l, n) AS list_resize(l, ` + tooLong("n", "n", "list_resize") + `), ` +
		`(l, n, v) AS list_resize(l, ` + tooLong("n", "n", "list_resize") + `, v)`,
	`ct_bar(x, a, b) AS bar(x, a, b), (x, a, b, w) AS bar(x, a, b, ` + tooLong("w", "w", "bar") + `)`,
}

// tableFuncMark marks the function node of a table function while checking.
const tableFuncMark = "\x00table"

// formatWidthRE finds a width or precision of six digits or more in a format string.
var formatWidthRE = regexp.MustCompile(`[0-9]{6,}`)

// checkLimits applies the limits above to one function node of a parsed statement.
func (c *checker) checkLimits(n map[string]any, lname string) {
	args, _ := n["children"].([]any)
	switch lname {
	case "repeat", "lpad", "rpad", "list_resize", "array_resize", "bar":
		// Only reachable spelled as the rewrite does not rename, e.g. quoted.
		c.fail(n, "function %s is not allowed spelled this way; write it unquoted", lname)
	case "range", "generate_series":
		if n[tableFuncMark] == true {
			return
		}
		var v [3]int64
		v[2] = 1
		for i, a := range args {
			x, ok := intConst(a)
			if !ok || i > 2 {
				c.fail(n, "%s takes only integer constants here", lname)
				return
			}
			v[i] = x
		}
		if len(args) == 1 {
			v[0], v[1] = 0, v[0]
		}
		if v[2] == 0 || (v[1]-v[0])/v[2] > maxSeriesLength {
			c.fail(n, "%s may produce at most %d values", lname, maxSeriesLength)
		}
	case "printf", "format":
		if len(args) == 0 {
			return
		}
		f, ok := stringConst(args[0])
		if !ok {
			c.fail(n, "%s takes only a constant format string here", lname)
		} else if formatWidthRE.MatchString(f) {
			c.fail(n, "%s: widths and numbers in the format string must have fewer than 6 digits", lname)
		}
	}
}

// intConst is the value of an integer constant node.
func intConst(v any) (int64, bool) {
	m, _ := v.(map[string]any)
	if m["class"] != "CONSTANT" {
		return 0, false
	}
	val, _ := m["value"].(map[string]any)
	typ, _ := val["type"].(map[string]any)
	id, _ := typ["id"].(string)
	x, ok := val["value"].(float64)
	if !ok || !strings.Contains(id, "INT") {
		return 0, false
	}
	return int64(x), true
}

// stringConst is the value of a string constant node.
func stringConst(v any) (string, bool) {
	m, _ := v.(map[string]any)
	if m["class"] != "CONSTANT" {
		return "", false
	}
	val, _ := m["value"].(map[string]any)
	s, ok := val["value"].(string)
	return s, ok
}
