package lake

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/opentrail/opentrail/internal/archive"
)

// Time pruning for log queries. CloudTrail names each log file after the
// minute it was delivered, and a file holds only events from before that
// minute; Athena users partition by that date for the same reason. A query
// over cloudtrail_logs whose WHERE clause bounds eventTime (a top-level AND
// of comparisons or BETWEEN against expressions without columns, such as
// '2024-01-01 00:00:00' or current_timestamp - interval '1' day) reads only the
// files that can hold such events: none delivered before the lower bound, and
// none delivered more than logsLate after the upper bound. Each bound is
// computed by DuckDB itself (TRY_CAST(expression AS TIMESTAMP)), so it means
// what the comparison means.

// logsLate is how long after an event its file may still arrive. CloudTrail
// delivers within minutes on average but does not promise it; a day leaves
// room for stragglers, and a query bounded above is answered from the files
// named up to a day after its bound.
const logsLate = 24 * time.Hour

// timeFilter returns the eventTime range that the checked statement stmt
// (one element of json_serialize_sql's "statements") restricts its single
// table to; zero bounds where it does not.
func timeFilter(ctx context.Context, db *sql.DB, stmt json.RawMessage) archive.Filter {
	f := archive.Filter{Late: logsLate}
	dec := json.NewDecoder(bytes.NewReader(stmt))
	dec.UseNumber()
	var doc map[string]any
	if dec.Decode(&doc) != nil {
		return f
	}
	node, _ := doc["node"].(map[string]any)
	if node == nil || node["type"] != "SELECT_NODE" {
		return f // a set operation: its parts may read other ranges
	}
	if ctes, _ := node["cte_map"].(map[string]any); ctes != nil {
		if m, _ := ctes["map"].([]any); len(m) > 0 {
			return f
		}
	}
	from, _ := node["from_table"].(map[string]any)
	if from == nil || from["type"] != "BASE_TABLE" {
		return f // a join or a subquery
	}
	names := map[string]bool{strings.ToLower(asString(from["table_name"])): true}
	if a := asString(from["alias"]); a != "" {
		names = map[string]bool{strings.ToLower(a): true}
	}
	isTime := func(e any) bool {
		m, _ := e.(map[string]any)
		if m == nil || m["class"] != "COLUMN_REF" {
			return false
		}
		parts, _ := m["column_names"].([]any)
		switch len(parts) {
		case 1:
			return strings.EqualFold(asString(parts[0]), "eventTime")
		case 2:
			return names[strings.ToLower(asString(parts[0]))] && strings.EqualFold(asString(parts[1]), "eventTime")
		}
		return false
	}
	lower := func(e any) {
		if t, ok := constantTime(ctx, db, e); ok && (f.Start.IsZero() || t.After(f.Start)) {
			f.Start = t
		}
	}
	upper := func(e any) {
		if t, ok := constantTime(ctx, db, e); ok && (f.End.IsZero() || t.Before(f.End)) {
			f.End = t
		}
	}
	var conjunct func(e any)
	conjunct = func(e any) {
		m, _ := e.(map[string]any)
		if m == nil {
			return
		}
		switch m["type"] {
		case "CONJUNCTION_AND":
			children, _ := m["children"].([]any)
			for _, c := range children {
				conjunct(c)
			}
			return
		case "COMPARE_BETWEEN":
			if isTime(m["input"]) {
				lower(m["lower"])
				upper(m["upper"])
			}
			return
		}
		if m["class"] != "COMPARISON" {
			return
		}
		op, l, r := asString(m["type"]), m["left"], m["right"]
		if !isTime(l) {
			if !isTime(r) {
				return
			}
			l, r = r, l
			op = map[string]string{"COMPARE_GREATERTHAN": "COMPARE_LESSTHAN", "COMPARE_GREATERTHANOREQUALTO": "COMPARE_LESSTHANOREQUALTO",
				"COMPARE_LESSTHAN": "COMPARE_GREATERTHAN", "COMPARE_LESSTHANOREQUALTO": "COMPARE_GREATERTHANOREQUALTO", "COMPARE_EQUAL": "COMPARE_EQUAL"}[op]
		}
		switch op {
		case "COMPARE_GREATERTHAN", "COMPARE_GREATERTHANOREQUALTO":
			lower(r)
		case "COMPARE_LESSTHAN", "COMPARE_LESSTHANOREQUALTO":
			upper(r)
		case "COMPARE_EQUAL":
			lower(r)
			upper(r)
		}
	}
	conjunct(node["where_clause"])
	return f
}

// constantTime evaluates e, an expression without columns, as a TIMESTAMP.
func constantTime(ctx context.Context, db *sql.DB, e any) (time.Time, bool) {
	if !columnFree(e) {
		return time.Time{}, false
	}
	cast := map[string]any{"class": "CAST", "type": "OPERATOR_CAST", "alias": "", "child": e,
		"cast_type": map[string]any{"id": "TIMESTAMP", "type_info": nil}, "try_cast": true}
	node := map[string]any{
		"type": "SELECT_NODE", "modifiers": []any{}, "cte_map": map[string]any{"map": []any{}},
		"select_list": []any{cast}, "from_table": map[string]any{"type": "EMPTY", "alias": "", "sample": nil},
		"where_clause": nil, "group_expressions": []any{}, "group_sets": []any{}, "aggregate_handling": "STANDARD_HANDLING",
		"having": nil, "sample": nil, "qualify": nil,
	}
	text, err := deserialize(ctx, db, node)
	if err != nil {
		return time.Time{}, false
	}
	var t sql.NullTime
	if err := db.QueryRowContext(ctx, text).Scan(&t); err != nil || !t.Valid {
		return time.Time{}, false
	}
	return t.Time.UTC(), true
}

// columnFree reports whether e reads no column, subquery or volatile function.
func columnFree(e any) bool {
	switch x := e.(type) {
	case []any:
		for _, c := range x {
			if !columnFree(c) {
				return false
			}
		}
	case map[string]any:
		switch x["class"] {
		case "COLUMN_REF", "SUBQUERY", "STAR", "PARAMETER", "POSITIONAL_REFERENCE", "WINDOW", "LAMBDA":
			return false
		case "FUNCTION":
			if volatileFuncs[strings.ToLower(asString(x["function_name"]))] {
				return false
			}
		}
		for _, c := range x {
			if !columnFree(c) {
				return false
			}
		}
	}
	return true
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}
