package lake

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The sandbox. Besides the database settings (no external access, no extension
// loading, configuration locked; see sandboxDSN), every statement is parsed by
// DuckDB itself (json_serialize_sql, which accepts only SELECT statements) after
// the rewrite and before it runs, and refused unless:
//   - it is exactly one SELECT statement;
//   - every table it reads is a store of the account (a placeholder the rewrite
//     put there) or a CTE in scope whose name shadows nothing in the catalog;
//     no schema- or catalog-qualified names, no table functions but UNNEST and
//     range/generate_series, no SHOW/DESCRIBE/time-travel references;
//   - it calls no function that inspects the database or its settings.
// Internal tables live in schema "lake", which no unqualified name reaches.

var allowedTableFuncs = map[string]bool{"unnest": true, "range": true, "generate_series": true}

var deniedFuncPrefixes = []string{"duckdb_", "pragma_", "read_", "current_setting", "getvariable", "getenv", "sniff_",
	"glob", "query", "parquet_", "json_serialize", "json_deserialize", "checkpoint", "force_checkpoint", "enable_",
	"disable_", "which_secret", "current_database", "current_catalog", "current_schema", "in_search_path", "has_",
	"pg_", "col_description", "obj_description", "shobj_description", "format_pg_type", "format_type", "sql_auto",
	"icu_", "set_", "summary", "iceberg", "delta", "test_", "sqlsmith", "tpch", "tpcds", "load_", "install_",
	"repeat_row", "finalize", "export_", "combine", "make_type", "nextval", "currval", "setseed", "txid_",
	"version", "platform", "current_query", "current_user", "user", "session_user", "current_role", "lake_"}

// check parses rw.sql with DuckDB, applies the rules above and returns the
// Trino-style column names (_colN for unnamed expressions; "" keeps DuckDB's).
func check(ctx context.Context, db *sql.DB, src string, rw *rewritten, allowed, views map[string]bool) ([]string, json.RawMessage, error) {
	var text string
	if err := db.QueryRowContext(ctx, `SELECT CAST(json_serialize_sql(`+quoteString(rw.sql)+`) AS VARCHAR)`).Scan(&text); err != nil {
		return nil, nil, fmt.Errorf("lake: parse: %w", duckError(err))
	}
	var doc struct {
		Error      bool              `json:"error"`
		Message    string            `json:"error_message"`
		Position   string            `json:"position"`
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, nil, fmt.Errorf("lake: parse: %w", err)
	}
	if doc.Error {
		msg := doc.Message
		if strings.Contains(msg, "Only SELECT statements") {
			msg = "only SELECT statements are allowed"
		}
		if doc.Position != "" {
			pos, _ := strconv.Atoi(doc.Position)
			return nil, nil, newQueryError(src, rw.inputPos(pos), msg)
		}
		return nil, nil, &QueryError{Message: msg}
	}
	if len(doc.Statements) != 1 {
		return nil, nil, &QueryError{Message: "only one statement is allowed"}
	}
	var stmt any
	if err := json.Unmarshal(doc.Statements[0], &stmt); err != nil {
		return nil, nil, fmt.Errorf("lake: parse: %w", err)
	}
	c := &checker{src: src, rw: rw, allowed: allowed, views: views}
	c.walk(stmt, nil)
	if c.err != nil {
		return nil, nil, c.err
	}
	return columnNames(stmt), doc.Statements[0], nil
}

type checker struct {
	src     string
	rw      *rewritten
	allowed map[string]bool
	views   map[string]bool
	err     *QueryError
}

func (c *checker) fail(node map[string]any, format string, args ...any) {
	if c.err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if loc, ok := node["query_location"].(float64); ok && loc < 1e15 {
		c.err = newQueryError(c.src, c.rw.inputPos(int(loc)), msg)
		return
	}
	c.err = &QueryError{Message: msg}
}

// walk visits every node; ctes are the CTE names in scope.
func (c *checker) walk(v any, ctes map[string]bool) {
	if c.err != nil {
		return
	}
	switch n := v.(type) {
	case []any:
		for _, x := range n {
			c.walk(x, ctes)
		}
	case map[string]any:
		if cm, ok := n["cte_map"].(map[string]any); ok {
			if entries, ok := cm["map"].([]any); ok && len(entries) > 0 {
				scope := map[string]bool{}
				for k := range ctes {
					scope[k] = true
				}
				for _, e := range entries {
					em, _ := e.(map[string]any)
					name, _ := em["key"].(string)
					name = strings.ToLower(name)
					if c.views[name] || strings.HasPrefix(name, "lake_ref_") {
						c.fail(n, "the name %s is reserved", name)
						return
					}
					scope[name] = true
				}
				ctes = scope
			}
		}
		_, isExpr := n["class"]
		typ, _ := n["type"].(string)
		if !isExpr {
			switch typ {
			case "BASE_TABLE":
				name, _ := n["table_name"].(string)
				schema, _ := n["schema_name"].(string)
				catalog, _ := n["catalog_name"].(string)
				lname := strings.ToLower(name)
				switch {
				case schema != "" || catalog != "":
					c.fail(n, "EventDataStore %s not found", strings.Trim(strings.Join([]string{catalog, schema, name}, "."), "."))
					c.err.NotFound = name
				case c.allowed[lname] || ctes[lname]:
				default:
					c.fail(n, "EventDataStore %s not found", name)
					c.err.NotFound = name
				}
				if n["at_clause"] != nil {
					c.fail(n, "time travel is not supported")
				}
			case "TABLE_FUNCTION":
				fn, _ := n["function"].(map[string]any)
				name, _ := fn["function_name"].(string)
				if fn != nil {
					fn[tableFuncMark] = true // range() here streams rows: no list to bound
				}
				if !allowedTableFuncs[strings.ToLower(name)] {
					c.fail(n, "table function %s is not allowed", name)
				}
			case "RECURSIVE_CTE_NODE":
				c.fail(n, "WITH RECURSIVE is not allowed")
			case "SHOW_REF", "COLUMN_DATA", "DELIM_GET", "BOUND_REF":
				c.fail(n, "this statement is not allowed")
			}
		} else if typ == "FUNCTION" || n["class"] == "FUNCTION" {
			name, _ := n["function_name"].(string)
			lname := strings.ToLower(name)
			schema, _ := n["schema"].(string)
			catalog, _ := n["catalog"].(string)
			if schema != "" || catalog != "" {
				c.fail(n, "function %s.%s is not allowed", schema, name)
			}
			c.checkLimits(n, lname)
			for _, p := range deniedFuncPrefixes {
				if strings.HasPrefix(lname, p) {
					c.fail(n, "function %s is not allowed", name)
					break
				}
			}
		}
		for k, x := range n {
			if k == "cte_map" {
				// CTE bodies see the CTEs (recursive ones see themselves).
				c.walk(x, ctes)
				continue
			}
			c.walk(x, ctes)
		}
	}
}

// columnNames names the statement's output columns as Trino does: an unnamed
// expression is _colN (N from 0), a column reference its last name part.
func columnNames(stmt any) []string {
	node, _ := stmt.(map[string]any)["node"].(map[string]any)
	for node != nil && node["type"] == "SET_OPERATION_NODE" {
		node, _ = node["left"].(map[string]any)
	}
	if node == nil || node["type"] != "SELECT_NODE" {
		return nil
	}
	list, _ := node["select_list"].([]any)
	names := make([]string, len(list))
	for i, x := range list {
		e, _ := x.(map[string]any)
		if alias, _ := e["alias"].(string); alias != "" {
			continue
		}
		switch e["class"] {
		case "STAR":
			return nil // the expansion's width is unknown here
		case "COLUMN_REF":
			continue
		}
		names[i] = "_col" + strconv.Itoa(i)
	}
	return names
}
