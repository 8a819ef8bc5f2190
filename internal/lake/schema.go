package lake

import (
	"fmt"
	"strings"
)

// ---- Storage format: the DuckDB schema. Part of the on-disk format; change it only with a migration. ----
//
// lake.state(k, v)        k = 'position': the next journal seq to load (authoritative)
// lake.stores(sid, id, events, bytes)
// lake.s_<sid>            one table per event data store, columns storeColumns
//
// A store's rows are the record's fields as typed columns (nested objects as
// STRUCTs, which DuckDB stores column by column), the map-like objects as JSON
// text, and the record itself (eventJson) byte for byte as ingested.

// storeColumns are the columns of a store table after seq, in CloudTrail Lake's
// order; each is read from the record by json_transform with the same type, except
// eventTime (from the journal's parsed time) and eventJson (the record).
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

// ---- End of storage format. ----

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// createStoreSQL creates the table of store sid.
func createStoreSQL(table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (seq UBIGINT", table)
	for _, c := range storeColumns {
		fmt.Fprintf(&b, ", %s %s", quoteIdent(c.name), squash(c.typ))
	}
	b.WriteString(")")
	return b.String()
}

// transformSQL inserts records staged as appended_data(seq, et, raw) into table:
// one JSON parse per record, into every column at once.
func transformSQL(table string) string { return transformSQLCols(table, nil) }

// transformSQLCols is transformSQL for a table with only the columns in only
// (lower-case names; nil = all).
func transformSQLCols(table string, only map[string]bool) string {
	var spec, cols strings.Builder
	spec.WriteString("{")
	first := true
	for _, c := range storeColumns {
		if only != nil && !only[strings.ToLower(c.name)] {
			continue
		}
		switch c.name {
		case "eventTime":
			cols.WriteString(", make_timestamp(et)")
			continue
		case "eventJson":
			cols.WriteString(", raw")
			continue
		}
		if !first {
			spec.WriteString(",")
		}
		first = false
		fmt.Fprintf(&spec, "%q:%q", c.name, squash(c.typ))
		fmt.Fprintf(&cols, ", j.%s", quoteIdent(c.name))
	}
	spec.WriteString("}")
	return fmt.Sprintf("INSERT INTO %s SELECT seq%s FROM (SELECT seq, et, raw, json_transform(raw, %s) AS j FROM appended_data)",
		table, cols.String(), quoteString(spec.String()))
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
	`ct_json_extract(j, p) AS CAST(json_extract(j, p) AS VARCHAR)`,
	`ct_json_extract_scalar(j, p) AS CASE WHEN json_type(j, p) IN ('OBJECT', 'ARRAY') THEN NULL ELSE json_extract_string(j, p) END`,
	`ct_json_format(j) AS CAST(j AS VARCHAR)`,
	`ct_json_parse(s) AS CAST(json(s) AS VARCHAR)`,
	`ct_json_size(j) AS CASE json_type(j) WHEN 'OBJECT' THEN len(json_keys(j)) WHEN 'ARRAY' THEN json_array_length(j) ELSE 0 END`,
	`ct_json_values(j) AS list_transform(json_keys(j), lambda k: json_extract_string(j, '$."' || replace(k, '"', '\"') || '"'))`,
	`ct_regexp_extract(s, p) AS CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p) END,
		(s, p, g) AS CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p, g) END`,
	`ct_regexp_replace(s, p) AS regexp_replace(s, p, '', 'g'), (s, p, r) AS regexp_replace(s, p, r, 'g')`,
	`ct_to_hex(b) AS upper(hex(b))`,
}

// storeSelect is what a store named in FROM stands for.
func storeSelect(table string) string {
	return fmt.Sprintf("(SELECT * EXCLUDE (seq), sha256(eventJson) AS eventJsonChecksum FROM %s)", table)
}
