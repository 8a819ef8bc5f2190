package lake

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Eager aggregation. Queries that count events by values read out of the
// map-like JSON columns, as seed 000 does,
//
//	SELECT json_extract(additionaleventdata, '$.customerEniId') eniId,
//	       json_extract(requestParameters, '$.functionName') functionName, COUNT(*) cnt
//	FROM store WHERE json_extract(additionaleventdata, '$.customerEniId') IS NOT NULL
//	GROUP BY 1, 2
//
// spend nearly all their time parsing the same few JSON texts again for every
// row. Such a query is run in two steps instead: first the rows that pass
// WHERE are counted by the raw texts the grouping reads (DuckDB hashes
// dictionary-compressed strings cheaply), then the original grouping runs
// over those few rows, summing the counts:
//
//	SELECT <same list, count(*) → sum(n)> FROM
//	  (SELECT additionaleventdata, requestparameters, count(*) AS n
//	   FROM store WHERE <same> GROUP BY additionaleventdata, requestparameters)
//	GROUP BY <same> HAVING <same, count(*) → sum(n)> ORDER BY <same> LIMIT <same>
//
// Every grouping key is a function of the raw columns, so rows with equal raw
// values share a group and the sums are the counts: the answer is the same.
// It is done only where that argument holds and pays: one relation in FROM;
// count(*) the only aggregate (no FILTER, DISTINCT, window, subquery or
// volatile function); at least one grouping key a function of a map column;
// and every column read outside WHERE a map column or one of the few columns
// with a small set of values (eagerColumns) — never eventTime or eventID,
// whose every row differs. The transformation works on DuckDB's own syntax tree
// (json_serialize_sql / json_deserialize_sql), after the sandbox check.

// eagerColumns may be grouped by their raw value (lower-case names): the map
// columns and columns whose values repeat.
var eagerColumns = func() map[string]bool {
	m := map[string]bool{}
	for c := range mapColumns {
		m[c] = true
	}
	for _, c := range []string{"eventsource", "eventname", "awsregion", "eventtype", "eventcategory", "recipientaccountid",
		"errorcode", "readonly", "managementevent", "eventversion", "apiversion", "vpcendpointid", "vpcendpointaccountid"} {
		m[c] = true
	}
	return m
}()

// countColumn is the partial count the first step adds; no store column has
// a name like it.
const countColumn = "ct$n"

// volatileFuncs must see every row.
var volatileFuncs = map[string]bool{"random": true, "uuid": true, "gen_random_uuid": true, "nextval": true, "setseed": true, "currval": true}

var (
	aggMu  sync.Mutex
	aggSet map[string]bool // DuckDB's aggregate functions, once read
)

// aggregates are the names of DuckDB's aggregate functions.
func aggregates(ctx context.Context, db *sql.DB) (map[string]bool, error) {
	aggMu.Lock()
	defer aggMu.Unlock()
	if aggSet != nil {
		return aggSet, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		set[strings.ToLower(n)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	aggSet = set
	return set, nil
}

// eagerSQL returns the two-step form of the checked statement stmt (one
// element of json_serialize_sql's "statements") with its tables filled in by
// fill, or "" when it does not apply or would not pay: a 1% sample of the
// stores must show the raw texts repeating (at most one distinct combination
// in eagerMaxDistinct rows); where every row differs the first step only adds
// a hash table of all of them (3 times slower than parsing each row).
func eagerSQL(ctx context.Context, db *sql.DB, stmt json.RawMessage, fill func(string) string) (string, error) {
	aggs, err := aggregates(ctx, db)
	if err != nil {
		return "", err
	}
	dec := json.NewDecoder(bytes.NewReader(stmt))
	dec.UseNumber() // constants and locations are exact integers
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return "", err
	}
	node, _ := doc["node"].(map[string]any)
	phase1, cols, ok := eagerSplit(node, aggs)
	if !ok {
		return "", nil
	}
	// The probe: how many rows of the sample pass WHERE, in how many distinct
	// combinations, out of how many sampled.
	probe := maps.Clone(phase1)
	var keys []any
	for _, c := range cols {
		keys = append(keys, colRef(c))
	}
	passing, combos := funcNode("count_star", false), funcNode("count", true, funcNode("row", false, keys...))
	passing["filter"], combos["filter"] = phase1["where_clause"], phase1["where_clause"]
	probe["select_list"] = []any{passing, combos, funcNode("count_star", false)}
	probe["where_clause"], probe["group_expressions"], probe["group_sets"] = nil, []any{}, []any{}
	text, err := deserialize(ctx, db, probe)
	if err != nil {
		return "", err
	}
	full := fill(text)
	sampled := sampleStores(full)
	if sampled == full {
		return "", nil // no store to sample
	}
	var rows, distinct, seen int64
	if err := db.QueryRowContext(ctx, sampled).Scan(&rows, &distinct, &seen); err != nil {
		return "", err
	}
	if seen == 0 {
		// A store too small for a 1% sample of whole vectors: all of it.
		if err := db.QueryRowContext(ctx, full).Scan(&rows, &distinct, &seen); err != nil {
			return "", err
		}
	}
	if distinct*eagerMaxDistinct > rows {
		return "", nil
	}
	eagerCounts(node, phase1)
	text, err = deserialize(ctx, db, node)
	if err != nil {
		return "", err
	}
	return fill(text), nil
}

// eagerMaxDistinct: the two-step form runs when the sample's rows are at
// least this many times its distinct raw combinations.
const eagerMaxDistinct = 4

// deserialize prints a SELECT node as SQL.
func deserialize(ctx context.Context, db *sql.DB, node map[string]any) (string, error) {
	out, err := json.Marshal(map[string]any{"error": false, "statements": []any{map[string]any{"node": node, "named_param_map": []any{}}}})
	if err != nil {
		return "", err
	}
	var text string
	if err := db.QueryRowContext(ctx, `SELECT json_deserialize_sql(CAST(? AS JSON))`, string(out)).Scan(&text); err != nil {
		return "", err
	}
	return text, nil
}

// eagerCounts makes node the second step: it reads phase1, has no WHERE, and
// sums phase1's counts where it counted rows.
func eagerCounts(node, phase1 map[string]any) {
	node["from_table"] = map[string]any{"type": "SUBQUERY", "alias": alias(node["from_table"]), "sample": nil,
		"subquery": map[string]any{"node": phase1, "named_param_map": []any{}}, "column_name_alias": []any{}}
	node["where_clause"] = nil
	sumCounts(node["select_list"], node["having"], node["modifiers"])
}

// sumCounts turns every count(*) under roots into ct_sum_counts(ct$n).
func sumCounts(roots ...any) {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, c := range x {
				walk(c)
			}
		case map[string]any:
			if x["class"] == "FUNCTION" && x["function_name"] == "count_star" {
				sum := funcNode("ct_sum_counts", false, colRef(countColumn))
				sum["alias"], sum["query_location"] = x["alias"], x["query_location"]
				clear(x)
				for k, v := range sum {
					x[k] = v
				}
				return
			}
			for _, c := range x {
				walk(c)
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
}

func funcNode(name string, distinct bool, children ...any) map[string]any {
	if children == nil {
		children = []any{}
	}
	return map[string]any{"class": "FUNCTION", "type": "FUNCTION", "alias": "", "function_name": name, "schema": "", "catalog": "",
		"children": children, "filter": nil, "distinct": distinct, "is_operator": false, "export_state": false,
		"order_bys": map[string]any{"type": "ORDER_MODIFIER", "orders": []any{}}}
}

// sampleStores makes every store in s, a statement filled with storeSelect's
// text, read a 1% sample of its table (DuckDB samples whole vectors in the scan).
func sampleStores(s string) string {
	return storeTableRE.ReplaceAllString(s, "FROM (SELECT * FROM $1 USING SAMPLE 1 PERCENT (system))))")
}

func alias(from any) string {
	m, _ := from.(map[string]any)
	return asString(m["alias"])
}

// eagerSplit checks node and, where eager aggregation applies, returns the
// first step and the raw columns it groups by.
func eagerSplit(node map[string]any, aggs map[string]bool) (map[string]any, []string, bool) {
	if node == nil || node["type"] != "SELECT_NODE" || node["sample"] != nil || node["qualify"] != nil ||
		node["aggregate_handling"] != "STANDARD_HANDLING" {
		return nil, nil, false
	}
	if ctes, _ := node["cte_map"].(map[string]any); ctes != nil {
		if m, _ := ctes["map"].([]any); len(m) > 0 {
			return nil, nil, false
		}
	}
	from, _ := node["from_table"].(map[string]any)
	if from == nil || (from["type"] != "SUBQUERY" && from["type"] != "BASE_TABLE") || from["sample"] != nil {
		return nil, nil, false
	}
	if cols, _ := from["column_name_alias"].([]any); len(cols) > 0 {
		return nil, nil, false
	}
	fromAlias := strings.ToLower(alias(from))
	groups, _ := node["group_expressions"].([]any)
	sets, _ := node["group_sets"].([]any)
	if len(groups) == 0 || len(sets) != 1 {
		return nil, nil, false
	}
	selects, _ := node["select_list"].([]any)
	modifiers, _ := node["modifiers"].([]any)
	for _, m := range modifiers {
		switch m.(map[string]any)["type"] {
		case "ORDER_MODIFIER", "LIMIT_MODIFIER", "LIMIT_PERCENT_MODIFIER":
		default:
			return nil, nil, false // DISTINCT
		}
	}

	w := &eagerWalk{aggs: aggs, fromAlias: fromAlias, cols: map[string]bool{}}
	// A grouping key of a map column: directly, by position in the select
	// list, or by a select-list alias that is not a column's name.
	aliases := map[string]any{}
	for _, x := range selects {
		if m, ok := x.(map[string]any); ok {
			if a := strings.ToLower(asString(m["alias"])); a != "" && !isStoreColumn(a) {
				aliases[a] = m
			}
		}
	}
	for _, g := range groups {
		if c, ok := g.(map[string]any); ok && c["class"] == "CONSTANT" {
			if k, ok := constInt(c); ok && k >= 1 && int(k) <= len(selects) {
				g = selects[k-1]
			}
		}
		if c, ok := g.(map[string]any); ok && c["class"] == "COLUMN_REF" {
			if names, _ := c["column_names"].([]any); len(names) == 1 && aliases[strings.ToLower(asString(names[0]))] != nil {
				g = aliases[strings.ToLower(asString(names[0]))]
			}
		}
		if readsMap(g) {
			w.mapKey = true
		}
	}
	for _, part := range []any{selects, groups, node["having"], modifiers} {
		w.visit(part)
	}
	if w.bad || !w.mapKey || w.counts == 0 || len(w.cols) == 0 {
		return nil, nil, false
	}
	cols := slices.Sorted(maps.Keys(w.cols))
	var list, keys, set []any
	for i, c := range cols {
		list = append(list, colRef(c))
		keys = append(keys, colRef(c))
		set = append(set, json.Number(strconv.Itoa(i)))
	}
	count := funcNode("count_star", false)
	count["alias"] = countColumn
	list = append(list, count)
	return map[string]any{
		"type": "SELECT_NODE", "modifiers": []any{}, "cte_map": map[string]any{"map": []any{}},
		"select_list": list, "from_table": from, "where_clause": node["where_clause"],
		"group_expressions": keys, "group_sets": []any{set}, "aggregate_handling": "STANDARD_HANDLING",
		"having": nil, "sample": nil, "qualify": nil,
	}, cols, true
}

func colRef(name string) map[string]any {
	return map[string]any{"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": "", "column_names": []any{name}}
}

func constInt(c map[string]any) (int64, bool) {
	v, _ := c["value"].(map[string]any)
	if v == nil || v["is_null"] == true {
		return 0, false
	}
	n, ok := v["value"].(json.Number)
	if !ok {
		return 0, false
	}
	k, err := n.Int64()
	return k, err == nil
}

// readsMap reports whether expression e applies a function to a map column.
func readsMap(e any) bool {
	found := false
	var walk func(v any, inFunc bool)
	walk = func(v any, inFunc bool) {
		switch x := v.(type) {
		case map[string]any:
			if x["class"] == "COLUMN_REF" {
				names, _ := x["column_names"].([]any)
				if inFunc && len(names) > 0 {
					if n, ok := names[len(names)-1].(string); ok && mapColumns[strings.ToLower(n)] {
						found = true
					}
				}
				return
			}
			f := inFunc || x["class"] == "FUNCTION"
			for _, c := range x {
				walk(c, f)
			}
		case []any:
			for _, c := range x {
				walk(c, inFunc)
			}
		}
	}
	walk(e, false)
	return found
}

// eagerWalk collects what the second step reads and rules out what it cannot do.
type eagerWalk struct {
	aggs      map[string]bool
	fromAlias string
	cols      map[string]bool // raw columns read outside WHERE
	counts    int
	mapKey    bool
	bad       bool
}

func (w *eagerWalk) visit(v any) {
	if w.bad {
		return
	}
	switch x := v.(type) {
	case []any:
		for _, c := range x {
			w.visit(c)
		}
	case map[string]any:
		switch x["class"] {
		case "SUBQUERY", "WINDOW", "STAR", "LAMBDA", "PARAMETER", "DEFAULT", "POSITIONAL_REFERENCE":
			w.bad = true
			return
		case "COLUMN_REF":
			w.column(x)
			return
		case "FUNCTION":
			name := strings.ToLower(x["function_name"].(string))
			if volatileFuncs[name] {
				w.bad = true
				return
			}
			if name == "count_star" {
				if x["filter"] != nil || x["distinct"] == true {
					w.bad = true
					return
				}
				w.counts++
				return
			}
			if w.aggs[name] {
				w.bad = true
				return
			}
		}
		for k, c := range x {
			if k == "order_bys" {
				// A function's ORDER BY (only aggregates have one).
				if o, _ := c.(map[string]any); o != nil {
					if l, _ := o["orders"].([]any); len(l) > 0 {
						w.bad = true
						return
					}
				}
				continue
			}
			w.visit(c)
		}
	}
}

// column records a column reference: a raw column the first step must keep,
// or a select-list alias, which it ignores.
func (w *eagerWalk) column(x map[string]any) {
	names, _ := x["column_names"].([]any)
	var parts []string
	for _, n := range names {
		s, _ := n.(string)
		parts = append(parts, strings.ToLower(s))
	}
	if len(parts) == 2 && parts[0] == w.fromAlias && w.fromAlias != "" {
		parts = parts[1:]
	}
	if len(parts) != 1 {
		w.bad = true // a struct field or another relation's column
		return
	}
	if parts[0] == strings.ToLower(countColumn) {
		w.bad = true
		return
	}
	if !isStoreColumn(parts[0]) {
		return // an alias of the select list
	}
	if !eagerColumns[parts[0]] {
		w.bad = true
		return
	}
	w.cols[parts[0]] = true
}

var storeColumnSet = func() map[string]bool {
	m := map[string]bool{"eventjsonchecksum": true}
	for _, c := range storeColumns {
		m[strings.ToLower(c.name)] = true
	}
	return m
}()

func isStoreColumn(name string) bool { return storeColumnSet[name] }
