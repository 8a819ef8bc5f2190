package lake

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// ---- Storage format: the DuckDB schema. Part of the on-disk format; change it only with formatVersion (blocks.go). ----
//
// lake.state(k, v)        k = 'position': the next journal seq to load (authoritative); k = 'format': formatVersion
// lake.stores(sid, id, events, bytes)
// lake.s_<sid>            one table per event data store: seq, storeColumns but eventJson, then jb, jl, ji
//
// A store's rows are the record's fields as typed columns (nested objects as
// STRUCTs, which DuckDB stores column by column), the map-like objects as JSON
// text, and where the record itself (eventJson, byte for byte as ingested)
// lies in the store's block file (see blocks.go).

// storeColumns are the columns of a store as queries see them, in CloudTrail
// Lake's order; each is the record's top-level member of that name: VARCHAR
// columns its string value or JSON text, the others typed by json_transform,
// except eventTime (from the parsed time) and eventJson (the record).
var storeColumns = []struct{ name, typ string }{
	{"eventVersion", "VARCHAR"},
	{"userIdentity", `STRUCT("type" VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR, accessKeyId VARCHAR,
		userName VARCHAR, sessionContext STRUCT(attributes STRUCT(creationDate VARCHAR, mfaAuthenticated VARCHAR),
		sessionIssuer STRUCT("type" VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR, userName VARCHAR),
		webIdFederationData STRUCT(federatedProvider VARCHAR, attributes VARCHAR), sourceIdentity VARCHAR,
		ec2RoleDelivery VARCHAR, ec2IssuedInVPC VARCHAR, assumedRoot VARCHAR), invokedBy VARCHAR,
		identityProvider VARCHAR, credentialId VARCHAR, onBehalfOf STRUCT(userId VARCHAR, identityStoreArn VARCHAR),
		inScopeOf STRUCT(issuerType VARCHAR, credentialsIssuedTo VARCHAR, sourceArn VARCHAR, sourceAccount VARCHAR))`},
	{"eventTime", "TIMESTAMP"},
	{"eventSource", "VARCHAR"},
	{"eventName", "VARCHAR"},
	{"awsRegion", "VARCHAR"},
	{"sourceIPAddress", "VARCHAR"},
	{"userAgent", "VARCHAR"},
	{"errorCode", "VARCHAR"},
	{"errorMessage", "VARCHAR"},
	{"requestParameters", "VARCHAR"},
	{"responseElements", "VARCHAR"},
	{"additionalEventData", "VARCHAR"},
	{"requestID", "VARCHAR"},
	{"eventID", "VARCHAR"},
	{"readOnly", "BOOLEAN"},
	{"resources", `STRUCT(accountId VARCHAR, "type" VARCHAR, ARN VARCHAR, arnPrefix VARCHAR)[]`},
	{"eventType", "VARCHAR"},
	{"apiVersion", "VARCHAR"},
	{"managementEvent", "BOOLEAN"},
	{"recipientAccountId", "VARCHAR"},
	{"sharedEventID", "VARCHAR"},
	{"annotation", "VARCHAR"},
	{"vpcEndpointId", "VARCHAR"},
	{"vpcEndpointAccountId", "VARCHAR"},
	{"serviceEventDetails", "VARCHAR"},
	{"addendum", "STRUCT(reason VARCHAR, updatedFields VARCHAR, originalRequestID VARCHAR, originalEventID VARCHAR, originalUID VARCHAR)"},
	{"edgeDeviceDetails", "VARCHAR"},
	{"insightDetails", `STRUCT(state VARCHAR, eventSource VARCHAR, eventName VARCHAR, insightType VARCHAR, errorCode VARCHAR,
		insightContext STRUCT(statistics STRUCT(baseline STRUCT(average DOUBLE), insight STRUCT(average DOUBLE),
		insightDuration DOUBLE, baselineDuration DOUBLE), attributions STRUCT(attribute VARCHAR, insight VARCHAR, baseline VARCHAR)[]))`},
	{"eventCategory", "VARCHAR"},
	{"tlsDetails", "STRUCT(tlsVersion VARCHAR, cipherSuite VARCHAR, clientProvidedHostHeader VARCHAR)"},
	{"sessionCredentialFromConsole", "VARCHAR"},
	{"metadata", "STRUCT(ingestionTime VARCHAR, channelARN VARCHAR)"},
	{"eventData", `STRUCT(version VARCHAR, userIdentity STRUCT("type" VARCHAR, principalId VARCHAR, details VARCHAR),
		userAgent VARCHAR, eventSource VARCHAR, eventName VARCHAR, eventTime VARCHAR, UID VARCHAR,
		requestParameters VARCHAR, responseElements VARCHAR, errorCode VARCHAR, errorMessage VARCHAR,
		sourceIPAddress VARCHAR, recipientAccountId VARCHAR, additionalEventData VARCHAR)`},
	{"eventJson", "VARCHAR"},
}

// blockColumns locate a row's record in the block file.
const blockColumns = "jb UBIGINT, jl UINTEGER, ji USMALLINT"

// ---- End of storage format. ----

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// createStoreSQL creates the table of a store.
func createStoreSQL(table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (seq UBIGINT", table)
	for _, c := range storeColumns {
		if c.name != "eventJson" {
			fmt.Fprintf(&b, ", %s %s", quoteIdent(c.name), squash(c.typ))
		}
	}
	b.WriteString(", " + blockColumns + ")")
	return b.String()
}

// Rows are staged for the INSERT as appended_data(seq, et, jb, jl, ji, ej, c_<i>...):
// the journal seq, eventTime in unix microseconds, the record's place in the
// block file (stores) or the record (log queries), and one VARCHAR per
// storeColumns entry (see stageRow).
var stageNames, stageTypes = func() ([]string, []duckdb.TypeInfo) {
	names := []string{"seq", "et", "jb", "jl", "ji", "ej"}
	kinds := []duckdb.Type{duckdb.TYPE_UBIGINT, duckdb.TYPE_BIGINT, duckdb.TYPE_UBIGINT, duckdb.TYPE_UINTEGER, duckdb.TYPE_USMALLINT, duckdb.TYPE_VARCHAR}
	for i := range storeColumns {
		names = append(names, fmt.Sprintf("c_%d", i))
		kinds = append(kinds, duckdb.TYPE_VARCHAR)
	}
	var ts []duckdb.TypeInfo
	for _, k := range kinds {
		ti, err := duckdb.NewTypeInfo(k)
		if err != nil {
			panic(err)
		}
		ts = append(ts, ti)
	}
	return names, ts
}()

const stageFixed = 6 // staged columns before the c_<i>

// transformSQL inserts staged rows into a store's table.
func transformSQL(table string) string { return transformSQLCols(table, nil) }

// transformSQLCols inserts staged rows into table: a store's (only nil) or a
// log query's, which has only the columns in only (lower-case names) and
// eventJson as a column.
func transformSQLCols(table string, only map[string]bool) string {
	var cols strings.Builder
	for i, c := range storeColumns {
		if only != nil && !only[strings.ToLower(c.name)] {
			continue
		}
		switch {
		case c.name == "eventTime":
			cols.WriteString(", make_timestamp(et)")
		case c.name == "eventJson":
			if only != nil {
				cols.WriteString(", ej")
			}
		case kindOf(c.typ) == kindText:
			fmt.Fprintf(&cols, ", c_%d", i)
		default:
			fmt.Fprintf(&cols, ", json_transform(c_%d, %s)", i, quoteString(quoteJSONType(c.typ)))
		}
	}
	if only == nil {
		cols.WriteString(", jb, jl, ji")
	}
	return fmt.Sprintf("INSERT INTO %s SELECT seq%s FROM appended_data", table, cols.String())
}

// macros implement the Trino functions DuckDB lacks; the rewrite calls them by
// their ct_ names.
var macros = []string{
	`ct_date_add(u, n, t) AS t + CASE lower(u)
		WHEN 'millisecond' THEN to_milliseconds(CAST(n AS BIGINT)) WHEN 'second' THEN to_seconds(CAST(n AS BIGINT))
		WHEN 'minute' THEN to_minutes(CAST(n AS BIGINT)) WHEN 'hour' THEN to_hours(CAST(n AS BIGINT))
		WHEN 'day' THEN to_days(CAST(n AS INTEGER)) WHEN 'week' THEN to_weeks(CAST(n AS INTEGER))
		WHEN 'month' THEN to_months(CAST(n AS INTEGER)) WHEN 'quarter' THEN to_months(CAST(3 * n AS INTEGER))
		WHEN 'year' THEN to_years(CAST(n AS INTEGER)) END`,
	`ct_from_iso8601_timestamp(s) AS CAST(CAST(s AS TIMESTAMPTZ) AS TIMESTAMP)`,
	`ct_from_iso8601_date(s) AS CAST(s AS DATE)`,
	`ct_from_unixtime(x) AS make_timestamp(CAST(CAST(x AS DOUBLE) * 1000000 AS BIGINT))`,
	`ct_to_iso8601(t) AS strftime(t, '%Y-%m-%dT%H:%M:%S.%gZ')`,
	`ct_date(x) AS CAST(x AS DATE)`,
	// A path that starts with a plain key ($.customerEniId...) can only select
	// something when the JSON text holds that key in quotes: a substring test
	// (on a pattern DuckDB folds once per query) spares parsing the rows that
	// cannot match. The text is the record as ingested; a key spelled with \u
	// escapes there would be missed (JSON writers, CloudTrail's included, do
	// not escape plain letters).
	`ct_json_may_have(j, p) AS (regexp_extract(p, '^\$\.([A-Za-z0-9_]+)(?:$|[.\[])', 1) = ''
		OR contains(j, '"' || regexp_extract(p, '^\$\.([A-Za-z0-9_]+)(?:$|[.\[])', 1) || '"'))`,
	`ct_json_extract(j, p) AS CASE WHEN ct_json_may_have(j, p) THEN CAST(json_extract(j, p) AS VARCHAR) END`,
	`ct_json_extract_scalar(j, p) AS CASE WHEN NOT ct_json_may_have(j, p) OR json_type(j, p) IN ('OBJECT', 'ARRAY') THEN NULL ELSE json_extract_string(j, p) END`,
	`ct_json_format(j) AS CAST(j AS VARCHAR)`,
	`ct_json_parse(s) AS CAST(json(s) AS VARCHAR)`,
	`ct_json_size(j) AS CASE json_type(j) WHEN 'OBJECT' THEN len(json_keys(j)) WHEN 'ARRAY' THEN json_array_length(j) ELSE 0 END`,
	`ct_json_values(j) AS list_transform(json_keys(j), lambda k: json_extract_string(j, '$."' || replace(k, '"', '\"') || '"'))`,
	`ct_regexp_extract(s, p) AS CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p) END,
		(s, p, g) AS CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p, g) END`,
	`ct_regexp_replace(s, p) AS regexp_replace(s, p, '', 'g'), (s, p, r) AS regexp_replace(s, p, r, 'g')`,
	`ct_to_hex(b) AS upper(hex(b))`,
	// The second step of eager aggregation (eager.go) sums the first's counts.
	`ct_sum_counts(n) AS CAST(sum(n) AS BIGINT)`,
}

// storeSelect is what a store named in FROM stands for. DuckDB drops the
// lake_event_json call from queries that do not use eventJson. It ends in
// "FROM <table>))", which storeTableRE finds.
func storeSelect(table string, sid int) string {
	return fmt.Sprintf("(SELECT *, sha256(eventJson) AS eventJsonChecksum FROM (SELECT * EXCLUDE (seq, jb, jl, ji), lake_event_json(%d, jb, jl, ji) AS eventJson FROM %s))", sid, table)
}

// storeTableRE finds the table in storeSelect's text (user SQL cannot name lake.s_ tables).
var storeTableRE = regexp.MustCompile(`FROM (lake\.(?:s_\d+|template))\)\)`)
