package lake

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// sampleQueries are CloudTrail Lake sample queries in the style AWS publishes
// (console samples and the documentation), placeholders filled in, plus Athena
// queries as people paste them. $EDS is replaced by the store ID.
var sampleQueries = []string{
	`SELECT * FROM $EDS WHERE eventtime >='2023-01-05 13:51:00' and eventtime < ='2025-01-19 13:51:00'`,
	`SELECT eventID, eventName, eventSource, eventTime FROM $EDS WHERE eventName = 'PutBucketPolicy' AND eventTime > '2022-01-01 00:00:00'`,
	`SELECT eventSource, eventName, COUNT(*) AS apiCount FROM $EDS WHERE eventTime > DATE_ADD('week', -1, CURRENT_TIMESTAMP) GROUP BY eventSource, eventName ORDER BY apiCount DESC`,
	`SELECT userIdentity.arn AS user, sourceIPAddress, COUNT(*) AS logins FROM $EDS WHERE eventName = 'ConsoleLogin' AND element_at(additionalEventData, 'MFAUsed') = 'No' GROUP BY userIdentity.arn, sourceIPAddress`,
	`SELECT eventTime, userIdentity.arn, element_at(responseElements, 'ConsoleLogin') AS result FROM $EDS WHERE eventName = 'ConsoleLogin' AND element_at(responseElements, 'ConsoleLogin') = 'Failure'`,
	`SELECT COUNT(*) AS eventCount, eventName, errorCode FROM $EDS WHERE errorCode IS NOT NULL AND eventTime > date_add('day', -3650, now()) GROUP BY eventName, errorCode ORDER BY eventCount DESC LIMIT 10`,
	`SELECT tlsDetails.tlsVersion, COUNT(*) AS numOfCalls FROM $EDS WHERE tlsDetails.tlsVersion IS NOT NULL GROUP BY tlsDetails.tlsVersion`,
	`SELECT eventSource, tlsDetails.tlsVersion, tlsDetails.cipherSuite, tlsDetails.clientProvidedHostHeader FROM $EDS WHERE tlsDetails.tlsVersion LIKE 'TLSv1.%' ORDER BY eventTime DESC`,
	`SELECT userIdentity.sessionContext.sessionIssuer.arn, COUNT(*) FROM $EDS WHERE userIdentity.type = 'AssumedRole' GROUP BY 1 ORDER BY 2 DESC`,
	`SELECT eventName, requestParameters['bucketName'] AS bucket FROM $EDS WHERE eventSource = 's3.amazonaws.com' AND requestParameters['bucketName'] IS NOT NULL`,
	`SELECT DISTINCT userIdentity.principalId FROM $EDS WHERE sessionCredentialFromConsole = 'true'`,
	`SELECT date_trunc('hour', eventTime) AS hour, count(*) FROM $EDS GROUP BY 1 ORDER BY 1`,
	`SELECT eventName, count_if(readOnly) AS reads, count_if(NOT readOnly) AS writes, approx_distinct(sourceIPAddress) FROM $EDS GROUP BY eventName`,
	`SELECT eventID FROM $EDS WHERE regexp_like(eventName, '^(Delete|Put).*Policy$')`,
	`SELECT split_part(userIdentity.arn, '/', 2), cardinality(resources), cardinality(requestParameters) FROM $EDS`,
	`SELECT r.arn, r.type FROM $EDS CROSS JOIN UNNEST(resources) AS t(r) WHERE r.type = 'AWS::Lambda::Function'`,
	`SELECT element_at(resources, 1).arn, resources[1].accountId FROM $EDS WHERE cardinality(resources) > 0`,
	`SELECT eventTime FROM $EDS WHERE eventTime BETWEEN timestamp '2020-01-01 00:00:00' AND from_iso8601_timestamp('2030-01-01T00:00:00Z')`,
	`SELECT date_format(eventTime, '%Y-%m-%d %H:%i:%s'), format_datetime(eventTime, 'yyyy-MM-dd HH:mm'), to_iso8601(eventTime) FROM $EDS LIMIT 3`,
	`SELECT date_diff('day', eventTime, now()), date(eventTime), day_of_week(eventTime), hour(eventTime) FROM $EDS LIMIT 5`,
	`SELECT from_unixtime(1700000000), to_unixtime(eventTime) FROM $EDS LIMIT 1`,
	`SELECT lower(eventName), upper(eventSource), length(eventID), substr(eventName, 1, 3), strpos(eventName, 'e') FROM $EDS LIMIT 3`,
	`SELECT try_cast(eventVersion AS double), CAST(readOnly AS varchar), coalesce(errorCode, 'none') FROM $EDS LIMIT 3`,
	`SELECT array_agg(DISTINCT eventName) FROM $EDS`,
	`SELECT eventName, arbitrary(eventID), max_by(eventTime, eventID), min(eventTime) FROM $EDS GROUP BY eventName`,
	`SELECT json_extract_scalar(additionalEventData, '$.MFAUsed'), json_extract(requestParameters, '$.functionName') FROM $EDS`,
	`SELECT json_extract(additionaleventdata, '$.customerEniId') eniId, COUNT(*) cnt FROM $EDS WHERE json_extract(additionaleventdata, '$.customerEniId') IS NOT NULL GROUP BY 1`,
	`WITH logins AS (SELECT userIdentity.arn AS who, eventTime FROM $EDS WHERE eventName = 'ConsoleLogin') SELECT who, count(*) FROM logins GROUP BY who`,
	`SELECT eventName FROM $EDS WHERE eventName IN (SELECT eventName FROM $EDS WHERE errorCode = 'AccessDenied') LIMIT 5`,
	`SELECT a.eventID FROM $EDS a JOIN $EDS b ON a.eventID = b.eventID LIMIT 3`,
	`SELECT eventId, eventName FROM $EDS UNION SELECT eventId, eventName FROM $EDS`,
	`SELECT "eventName", ` + "`eventSource`" + ` FROM "$EDS" LIMIT 1`,
	`SELECT EVENTNAME, EventSource, userIdentity.SessionContext.SessionIssuer.UserName FROM $EDS LIMIT 1`,
	`SELECT eventName, count(*) FROM $EDS WHERE eventTime > current_date - INTERVAL '7' DAY GROUP BY eventName`,
	`SELECT regexp_extract(userAgent, '^([a-z-]+)/', 1), regexp_replace(eventName, '([A-Z])', '_$1') FROM $EDS LIMIT 3`,
	`SELECT if(errorCode IS NULL, 'ok', 'failed'), greatest(1, 2), nullif(eventName, '') FROM $EDS LIMIT 1`,
	`SELECT map_keys(requestParameters) FROM $EDS WHERE requestParameters IS NOT NULL LIMIT 1`,
	`SELECT eventName, contains(array_agg(awsRegion), 'us-east-1') FROM $EDS GROUP BY eventName`,
	`SELECT userIdentity, resources, tlsDetails, readOnly, eventTime FROM $EDS LIMIT 5`,
	`SELECT eventName FROM $EDS ORDER BY eventTime DESC NULLS LAST LIMIT 10 OFFSET 2`,
	`SELECT eventName, approx_percentile(length(eventJson), 0.5) FROM $EDS GROUP BY eventName`,
	`SELECT any_match(resources, r -> r.type = 'AWS::Lambda::Function'), transform(resources, r -> r.arn) FROM $EDS LIMIT 3`,
	`SELECT insightDetails.state, insightDetails.insightContext.statistics.baseline.average FROM $EDS WHERE eventCategory = 'Insight'`,
	`SELECT eventJsonChecksum, eventJson FROM $EDS LIMIT 1`,
	`SELECT count(*) FROM $EDS WHERE eventtime > '2021-12-04T00:00:00Z'`,
	`SELECT vpcEndpointId, vpcEndpointAccountId, sharedEventID, apiVersion, managementEvent, recipientAccountId, edgeDeviceDetails, serviceEventDetails, addendum FROM $EDS LIMIT 1`,
}

func TestSampleQueries(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, fixtureRecords(t)...)
	for _, q := range sampleQueries {
		q = strings.ReplaceAll(q, "$EDS", edsID)
		if _, err := v.e.Query(context.Background(), acct, q); err != nil {
			t.Errorf("%s\n  -> %v", q, err)
		}
	}
}

func TestRendering(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, lambdaInvoke("fn", "eni-1", "55555555-0000-0000-0000-000000000001", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)))
	for _, c := range []struct{ sql, want string }{
		{`SELECT eventTime, readOnly, managementEvent FROM $EDS`, "eventTime | readOnly | managementEvent\n2024-01-02 03:04:05.000 | false | false"},
		{`SELECT resources FROM $EDS`, "resources\n[{accountid=123456789012, type=AWS::Lambda::Function, arn=arn:aws:lambda:ap-northeast-1:123456789012:function:fn, arnprefix=null}]"},
		{`SELECT userIdentity.sessionContext.attributes FROM $EDS`, "attributes\n{creationdate=2021-12-04T03:12:23Z, mfaauthenticated=true}"},
		{`SELECT requestParameters['functionName'], element_at(additionalEventData, 'customerEniId'), responseElements FROM $EDS`,
			"_col0 | _col1 | responseElements\narn:aws:lambda:ap-northeast-1:123456789012:function:fn | eni-1 | NULL"},
		{`SELECT json_extract(additionaleventdata, '$.customerEniId') AS eni, json_extract_scalar(additionaleventdata, '$.customerEniId') s FROM $EDS`, "eni | s\n\"eni-1\" | eni-1"},
		{`SELECT 7/2, 1.5e0 * 2, count(*) FROM $EDS`, "_col0 | _col1 | _col2\n3 | 3.0 | 1"},
		{`SELECT date_add('day', 1, eventTime), date_diff('hour', eventTime, timestamp '2024-01-02 05:04:04') FROM $EDS`, "_col0 | _col1\n2024-01-03 03:04:05.000 | 1"},
		{`SELECT date_format(eventTime, '%Y/%m/%d %H:%i'), format_datetime(eventTime, 'yyyy-MM-dd''T''HH') FROM $EDS`, "_col0 | _col1\n2024/01/02 03:04 | 2024-01-02T03"},
		{`SELECT now(), current_timestamp > eventTime FROM $EDS`, "_col0 | _col1\n2024-03-01 12:00:00.000 | true"},
	} {
		res := v.query(acct, strings.ReplaceAll(c.sql, "$EDS", edsID))
		if got := table(res); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.sql, got, c.want)
		}
	}
}

func TestInvalidStatements(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, fixtureRecords(t)[:3]...)
	for _, c := range []struct{ sql, want string }{
		{"SELECT nosuchcolumn FROM $EDS", `line 1:8: Referenced column "nosuchcolumn" not found`},
		{"SELECT eventName\nFROM $EDS\nWHERE eventName = 1 +", "line 3"},
		{"SELEC 1", "only SELECT statements are allowed"},
		{"", "empty"},
		{"SELECT 'unterminated FROM $EDS", "unterminated string literal"},
	} {
		_, err := v.e.Query(context.Background(), acct, strings.ReplaceAll(c.sql, "$EDS", edsID))
		var qe *QueryError
		if !errors.As(err, &qe) || !strings.Contains(qe.Message, c.want) {
			t.Errorf("%q: err %v, want a QueryError containing %q", c.sql, err, c.want)
		}
	}
}

// TestSandbox tries to reach what user SQL must never reach: other tables, the
// catalog, files, settings, extensions, and statements other than one SELECT.
func TestSandbox(t *testing.T) {
	const otherID = "EXAMPLE2-aaaa-4e8f-8bd1-bcf6cEXAMPLE"
	v := newEnv(t, allEvents(acct, edsID), allEvents(other, otherID))
	v.ingest(acct, fixtureRecords(t)[:3]...)
	v.ingest(other, []byte(strings.ReplaceAll(string(lambdaInvoke("secret", "eni-1", "66666666-0000-0000-0000-000000000001", time.Now())), acct, other)))
	attacks := []string{
		"DELETE FROM $EDS",
		"DROP TABLE lake.s_1",
		"INSERT INTO lake.s_1 SELECT * FROM lake.s_2",
		"UPDATE lake.stores SET id = 'x'",
		"CREATE TABLE x AS SELECT 1",
		"ATTACH 'other.db' AS o",
		"COPY (SELECT 1) TO '/tmp/x.csv'",
		"PRAGMA database_list",
		"SET enable_external_access = true",
		"INSTALL httpfs",
		"LOAD httpfs",
		"CALL duckdb_tables()",
		"EXPORT DATABASE '/tmp/x'",
		"CHECKPOINT",
		"SELECT 1; DROP TABLE lake.s_1",
		"SELECT 1; SELECT 2",
		"SELECT * FROM lake.s_1",
		"SELECT * FROM lake.s_2",
		"SELECT * FROM s_2",
		"SELECT * FROM lake.template",
		"SELECT * FROM store.lake.s_2",
		"SELECT * FROM main.lake_ref_x",
		"SELECT * FROM information_schema.tables",
		"SELECT * FROM duckdb_tables()",
		"SELECT * FROM duckdb_tables",
		"SELECT * FROM pg_catalog.pg_tables",
		"SELECT * FROM pg_tables",
		"SELECT * FROM duckdb_settings()",
		"SELECT current_setting('enable_external_access')",
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM read_text('/etc/passwd')",
		"SELECT * FROM '/etc/passwd'",
		"SELECT * FROM glob('/*')",
		"SELECT * FROM query('SELECT * FROM lake.s_2')",
		"SELECT * FROM query_table('lake.s_2')",
		"SELECT * FROM $EDS, lake.s_2",
		"SELECT (SELECT count(*) FROM lake.s_2) FROM $EDS",
		"WITH x AS (SELECT * FROM lake.s_2) SELECT * FROM x",
		"WITH pg_tables AS (SELECT 1) SELECT * FROM pg_tables",
		"WITH a AS (SELECT * FROM s_2), s_2 AS (SELECT 1) SELECT * FROM a",
		"SELECT * FROM (DESCRIBE lake.s_2)",
		"SELECT * FROM (SHOW TABLES)",
		"SELECT * FROM (FROM lake.s_2)",
		"FROM lake.s_2",
		"SELECT * FROM (PIVOT lake.s_2 ON eventName USING count(*))",
		"SELECT * FROM $EDS AT (VERSION => 1)",
		"SELECT * FROM $EDS WHERE eventName = getenv('HOME')",
		"SELECT system.main.version()",
		"SELECT * FROM lake_ref_0000000000000000_0",
		`SELECT * FROM "lake"."s_2"`,
		"SELECT * FROM " + otherID,
		"SELECT * FROM sqlite_scan('x.db', 't')",
		"SELECT * FROM parquet_scan('x.parquet')",
		"SELECT * FROM iceberg_scan('x')",
		"SELECT * FROM $EDS WHERE eventName = ?",
		"VALUES (1); SELECT 1",
	}
	for _, a := range attacks {
		q := strings.ReplaceAll(a, "$EDS", edsID)
		res, err := v.e.Query(context.Background(), acct, q)
		if err == nil {
			t.Errorf("%s: ran and returned %d rows; want refused", q, len(res.Rows))
			continue
		}
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("%s: %v; want a QueryError", q, err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error leaks data: %v", q, err)
		}
	}
	// Still usable, and the other account's store untouched.
	if got := str(v.query(other, "SELECT count(*) FROM "+otherID).Rows[0][0]); got != "1" {
		t.Fatalf("other account's store holds %s rows", got)
	}
}

func TestCancelAndTimeout(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, fixtureRecords(t)[:3]...)
	heavy := "SELECT count(*) FROM range(1000000000) a, range(1000) b WHERE a.range * b.range = -1"
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := v.e.Query(ctx, acct, heavy)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("cancel took %s", time.Since(start))
	}
	v.e.o.QueryTimeout = 200 * time.Millisecond
	if _, err := v.e.Query(context.Background(), acct, heavy); !errors.Is(err, ErrQueryTimeout) {
		t.Fatalf("query past its time limit: %v", err)
	}
}

// TestManyStoreReferences: eleven references to stores, so that one table
// placeholder is the start of another (…_1 and …_10).
func TestManyStoreReferences(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, lambdaInvoke("fn", "eni-1", "99999999-0000-0000-0000-000000000001", time.Now()))
	parts := make([]string, 11)
	for i := range parts {
		parts[i] = "SELECT count(*) AS n FROM " + edsID
	}
	res := v.query(acct, "SELECT sum(n) FROM ("+strings.Join(parts, " UNION ALL ")+")")
	if got := str(res.Rows[0][0]); got != "11" {
		t.Fatalf("sum %s, want 11", got)
	}
}
