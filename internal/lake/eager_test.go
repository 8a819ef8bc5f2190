package lake

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEagerAggregation runs statements both in the two-step form and as
// written and requires the same rows, and checks which shapes take the
// two-step form at all.
func TestEagerAggregation(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	var recs [][]byte
	base := time.Date(2021, 12, 4, 3, 25, 21, 0, time.UTC)
	for i := range 600 {
		eni := fmt.Sprintf("eni-%017x", i%5)
		if i%13 == 0 {
			eni = ""
		}
		recs = append(recs, lambdaInvoke(fmt.Sprintf("fn-%d", i%4), eni, fmt.Sprintf("00000000-0000-0000-0000-%012d", i), base.Add(time.Duration(i)*time.Minute)))
	}
	for i := range 100 { // every one calls another function: no two requestParameters alike
		recs = append(recs, lambdaInvoke(fmt.Sprintf("unique-%d", i), "eni-1", fmt.Sprintf("11111111-0000-0000-0000-%012d", i), base))
	}
	v.ingest(acct, recs...)
	v.ingest(acct, fixtureRecords(t)...)
	sid := v.e.sids[edsID]
	resolve := func(name string) (string, bool) {
		if !strings.EqualFold(name, edsID) {
			return "", false
		}
		return storeSelect(tableName(sid), sid), true
	}
	ctx := context.Background()
	for _, c := range []struct {
		sql   string
		eager bool
	}{
		{fmt.Sprintf(seedQuery, edsID), true},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId') eni, COUNT(*) FROM " + edsID + " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3", true},
		{"SELECT element_at(requestParameters, 'functionName') fn, eventName, count(*) AS n FROM " + edsID + " WHERE eventSource = 'lambda.amazonaws.com' GROUP BY 1, 2 HAVING count(*) > 100 ORDER BY n", true},
		{"SELECT json_extract_scalar(requestparameters, '$.logType') b, awsRegion, count(*) FROM " + edsID + " t WHERE t.eventTime > '2000-01-01' AND t.eventID LIKE '0%' GROUP BY json_extract_scalar(requestparameters, '$.logType'), t.awsRegion", true},
		{"SELECT requestParameters['functionName'], count(*) * 2 FROM " + edsID + " WHERE eventName = 'Invoke' GROUP BY requestParameters['functionName']", true},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId') AS eni, count(*) AS n FROM " + edsID + " GROUP BY eni ORDER BY n DESC", true},
		{"SELECT json_extract(requestParameters, '$.invocationType'), count(*) FROM " + edsID + " WHERE eventID LIKE '00000000%' GROUP BY 1", true},
		// Shapes it leaves alone: the answer would change or the first step would not pay.
		{"SELECT json_extract(requestParameters, '$.invocationType'), count(*) FROM " + edsID + " WHERE eventID LIKE '11111111%' GROUP BY 1", false},
		{"SELECT eventName, count(*) FROM " + edsID + " GROUP BY eventName", false},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId'), sum(1) FROM " + edsID + " GROUP BY 1", false},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId'), count(DISTINCT eventID) FROM " + edsID + " GROUP BY 1", false},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId'), count(*) FILTER (WHERE readOnly) FROM " + edsID + " GROUP BY 1", false},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId'), date_trunc('hour', eventTime), count(*) FROM " + edsID + " GROUP BY 1, 2", false},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId'), userIdentity.arn, count(*) FROM " + edsID + " GROUP BY 1, 2", false},
		{"SELECT json_extract(additionaleventdata, '$.customerEniId'), count(*), rank() OVER (ORDER BY count(*)) FROM " + edsID + " GROUP BY 1", false},
		{"SELECT DISTINCT json_extract(additionaleventdata, '$.customerEniId'), count(*) FROM " + edsID + " GROUP BY 1", false},
		{"SELECT json_extract(a.additionaleventdata, '$.customerEniId'), count(*) FROM " + edsID + " a JOIN " + edsID + " b USING (eventID) GROUP BY 1", false},
		{"WITH x AS (SELECT * FROM " + edsID + ") SELECT json_extract(additionaleventdata, '$.customerEniId'), count(*) FROM x GROUP BY 1", false},
		{"SELECT count(*) FROM " + edsID + " WHERE json_extract(additionaleventdata, '$.customerEniId') IS NOT NULL", false},
	} {
		p, err := prepare(ctx, v.e.db, c.sql, resolve, v.e.views, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if p.eager != c.eager {
			t.Errorf("%s: two-step form %v, want %v (%s)", c.sql, p.eager, c.eager, p.sql)
			continue
		}
		got, err := runQuery(ctx, v.e.db, c.sql, p, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		plain := *p
		plain.sql, plain.eager = p.rw.final(), false
		want, err := runQuery(ctx, v.e.db, c.sql, &plain, time.Minute)
		if err != nil {
			t.Fatalf("%s as written: %v", c.sql, err)
		}
		if g, w := sortedRows(got), sortedRows(want); g != w || len(want.Rows) == 0 || strings.Join(got.Columns, ",") != strings.Join(want.Columns, ",") {
			t.Errorf("%s:\n two-step %v %s\n as written %v %s", c.sql, got.Columns, g, want.Columns, w)
		}
	}
}

// sortedRows is r's rows as table shows them, in sorted order.
func sortedRows(r *Result) string {
	rows := strings.Split(table(r), "\n")[1:]
	slices.Sort(rows)
	return strings.Join(rows, "\n")
}
