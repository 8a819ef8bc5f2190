package lake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/archive/archivetest"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/selector"
)

const (
	acct  = "123456789012"
	other = "210987654321"
	edsID = "EXAMPLE1-f852-4e8f-8bd1-bcf6cEXAMPLE"
)

func edsARN(account, id string) string {
	return "arn:aws:cloudtrail:us-east-1:" + account + ":eventdatastore/" + id
}

// env is a journal and an engine over a temp dir.
type env struct {
	t     testing.TB
	dir   string
	db    *pebble.DB
	j     *journal.Journal
	e     *Engine
	mu    sync.Mutex
	defs  []StoreDef
	now   time.Time
	added []event.Record
}

func newEnv(t testing.TB, defs ...StoreDef) *env {
	t.Helper()
	v := newEnvKeep(t, defs...)
	t.Cleanup(func() {
		if v.e != nil {
			v.e.Close()
		}
		v.j.Close()
		v.db.Close()
		os.RemoveAll(v.dir)
	})
	return v
}

// newEnvKeep is newEnv whose resources live until the process ends.
func newEnvKeep(t testing.TB, defs ...StoreDef) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "lake-test-")
	if err != nil {
		t.Fatal(err)
	}
	v := &env{t: t, dir: dir, defs: defs, now: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
	if v.db, err = kv.Open(filepath.Join(v.dir, "db"), kv.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Fatal(err)
	}
	if v.j, err = journal.Open(v.db, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	v.open()
	return v
}

func (v *env) open() {
	v.t.Helper()
	e, err := Open(filepath.Join(v.dir, "lake"), v.j, v.db, v.stores, slog.New(slog.NewTextHandler(io.Discard, nil)),
		Options{Threads: 2, MemoryLimitMiB: 512, Now: func() time.Time { return v.now }})
	if err != nil {
		v.t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		v.t.Fatal(err)
	}
	v.e = e
}

func (v *env) stores() []StoreDef {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]StoreDef(nil), v.defs...)
}

func (v *env) setStores(defs ...StoreDef) {
	v.mu.Lock()
	v.defs = defs
	v.mu.Unlock()
}

// ingest normalises and appends raw records as account and waits until the engine has them.
func (v *env) ingest(account string, raws ...[]byte) {
	v.t.Helper()
	var entries []journal.Entry
	for _, raw := range raws {
		rec, err := event.Normalize(raw, event.Defaults{Account: account, Region: "us-east-1", Now: v.now})
		if err != nil {
			v.t.Fatalf("normalize %s: %v", raw, err)
		}
		v.added = append(v.added, rec)
		entries = append(entries, journal.Entry{ID: kv.EventIDKey(rec.Meta.Account, rec.Meta.EventID), Value: event.Encode(nil, &rec)})
	}
	res, err := v.j.Append(context.Background(), entries)
	if err != nil {
		v.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.e.WaitApplied(ctx, res[len(res)-1].Seq); err != nil {
		v.t.Fatal(err)
	}
}

func (v *env) query(account, sql string) *Result {
	v.t.Helper()
	res, err := v.e.Query(context.Background(), account, sql)
	if err != nil {
		v.t.Fatalf("query %s: %v", sql, err)
	}
	return res
}

func allEvents(account, id string) StoreDef {
	return StoreDef{ID: id, ARN: edsARN(account, id), Account: account, HomeRegion: "us-east-1", MultiRegion: true,
		Ingesting: true,
		Selectors: []selector.AdvancedEventSelector{
			{FieldSelectors: []selector.AdvancedFieldSelector{{Field: "eventCategory", Equals: []string{"Management"}}}},
			{FieldSelectors: []selector.AdvancedFieldSelector{{Field: "eventCategory", Equals: []string{"Data"}}, {Field: "resources.type", Equals: []string{"AWS::Lambda::Function"}}}},
		}}
}

func str(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}

func table(r *Result) string {
	var b strings.Builder
	b.WriteString(strings.Join(r.Columns, " | "))
	for _, row := range r.Rows {
		b.WriteString("\n")
		for i, c := range row {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(str(c))
		}
	}
	return b.String()
}

// fixtureRecords are the fixture records that have an eventTime, with the
// account rewritten so they all belong to acct (archivetest.BenchAccount).
var fixtureRecords = archivetest.FixtureRecords

func TestLoadFixturesAndEventJSON(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	recs := fixtureRecords(t)
	v.ingest(acct, recs...)
	want := 0
	seen := map[string]bool{} // the journal keeps the first record of an eventID
	for _, r := range v.added {
		if seen[r.Meta.EventID] {
			continue
		}
		seen[r.Meta.EventID] = true
		if r.Meta.Category == "Management" || (r.Meta.Category == "Data" && strings.Contains(string(r.Raw), "AWS::Lambda::Function")) {
			want++
		}
	}
	res := v.query(acct, "SELECT count(*) FROM "+edsID)
	if got := str(res.Rows[0][0]); got != fmt.Sprint(want) || res.Columns[0] != "_col0" {
		t.Fatalf("count = %s (%v), want %d", got, res.Columns, want)
	}
	// eventJson is byte-identical to the ingested record.
	res = v.query(acct, "SELECT eventID, eventJson, eventJsonChecksum FROM "+edsID)
	byID := map[string]string{}
	for _, r := range v.added {
		if _, ok := byID[r.Meta.EventID]; !ok {
			byID[r.Meta.EventID] = string(r.Raw)
		}
	}
	for _, row := range res.Rows {
		if got, want := str(row[1]), byID[str(row[0])]; got != want {
			t.Fatalf("eventJson of %s:\n got %s\nwant %s", str(row[0]), got, want)
		}
	}
	events, bytes, err := v.e.StoreStats(edsID)
	if err != nil || events != int64(want) || bytes == 0 {
		t.Fatalf("StoreStats = %d, %d, %v; want %d events", events, bytes, err, want)
	}
	// Typed columns agree with the journal's own parse.
	res = v.query(acct, `SELECT eventID, eventName, eventSource, awsRegion, eventTime, readOnly, userIdentity.arn, element_at(resources, 1).arn FROM `+edsID)
	metas := map[string]event.Meta{}
	for _, r := range v.added {
		if _, ok := metas[r.Meta.EventID]; !ok {
			metas[r.Meta.EventID] = r.Meta
		}
	}
	for _, row := range res.Rows {
		m := metas[str(row[0])]
		if str(row[1]) != m.Name || str(row[2]) != m.Source || str(row[3]) != m.Region {
			t.Fatalf("row %v vs meta %+v", row, m)
		}
		if want := time.Unix(0, m.EventTime).UTC().Format("2006-01-02 15:04:05.000"); str(row[4]) != want {
			t.Fatalf("eventTime %s, want %s", str(row[4]), want)
		}
		if m.ReadOnly >= 0 && str(row[5]) != fmt.Sprint(m.ReadOnly == 1) {
			t.Fatalf("readOnly %s for %+v", str(row[5]), m)
		}
		if m.UserARN != "" && str(row[6]) != m.UserARN {
			t.Fatalf("userIdentity.arn %s, want %s", str(row[6]), m.UserARN)
		}
		if len(m.Resources) > 0 && m.Resources[0].ARN != "" && str(row[7]) != m.Resources[0].ARN {
			t.Fatalf("resources[1].arn %s, want %s", str(row[7]), m.Resources[0].ARN)
		}
	}
}

// lambdaInvoke is the seed 000 record with its function, ENI and ID varied.
var lambdaInvoke = archivetest.LambdaInvoke

// seedQuery is seed 000's Athena query, as written, with the table name left to fill in.
const seedQuery = `SELECT
  json_extract(additionaleventdata, '$.customerEniId') eniId,
	json_extract(requestParameters, '$.functionName') functionName,
	COUNT(*) cnt
FROM
  %s
WHERE
  json_extract(additionaleventdata, '$.customerEniId') IS NOT NULL
GROUP BY
  json_extract(requestParameters, '$.functionName'),
	json_extract(additionaleventdata, '$.customerEniId')`

func TestSeedENIQuery(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	want := map[string]int{}
	var recs [][]byte
	base := time.Date(2021, 12, 4, 3, 25, 21, 0, time.UTC)
	for i := range 997 {
		fn := fmt.Sprintf("vpc-lambda-%d", i%7)
		eni := fmt.Sprintf("eni-%017x", (i%7)/3) // functions share ENIs, as in the seed
		if i%11 == 0 {
			eni = "" // a Lambda outside a VPC: no customerEniId
		} else {
			want[`"`+eni+`" "arn:aws:lambda:ap-northeast-1:123456789012:function:`+fn+`"`]++
		}
		recs = append(recs, lambdaInvoke(fn, eni, fmt.Sprintf("00000000-0000-0000-0000-%012d", i), base.Add(time.Duration(i)*time.Second)))
	}
	v.ingest(acct, recs...)
	var mgmt [][]byte
	for _, r := range fixtureRecords(t) {
		if !strings.Contains(string(r), "customerEniId") { // the seed's own Invoke is counted above
			mgmt = append(mgmt, r)
		}
	}
	v.ingest(acct, mgmt...)
	for _, from := range []string{edsID, edsARN(acct, edsID), "`" + edsID + "`", `"` + edsID + `"`, strings.ToLower(edsID)} {
		res := v.query(acct, fmt.Sprintf(seedQuery, from))
		if strings.Join(res.Columns, ",") != "eniId,functionName,cnt" {
			t.Fatalf("columns %v", res.Columns)
		}
		got := map[string]int{}
		for _, row := range res.Rows {
			var n int
			fmt.Sscan(str(row[2]), &n)
			got[str(row[0])+" "+str(row[1])] = n
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("FROM %s:\n got %v\nwant %v", from, got, want)
		}
	}
}

func TestOtherAccountsStoresUnreachable(t *testing.T) {
	const otherID = "EXAMPLE2-aaaa-4e8f-8bd1-bcf6cEXAMPLE"
	v := newEnv(t, allEvents(acct, edsID), allEvents(other, otherID))
	v.ingest(other, []byte(strings.ReplaceAll(string(lambdaInvoke("secret-fn", "eni-1", "11111111-0000-0000-0000-000000000001", time.Now())), acct, other)))
	v.ingest(acct, lambdaInvoke("mine", "eni-2", "11111111-0000-0000-0000-000000000002", time.Now()))
	for _, q := range []string{
		"SELECT * FROM " + otherID,
		"SELECT * FROM " + edsARN(other, otherID),
		"SELECT * FROM " + edsARN(acct, otherID),
		"SELECT * FROM " + edsID + " UNION ALL SELECT * FROM " + otherID,
		"SELECT eventName FROM " + edsID + " WHERE eventID IN (SELECT eventID FROM \"" + otherID + "\")",
	} {
		_, err := v.e.Query(context.Background(), acct, q)
		qe, ok := err.(*QueryError)
		if !ok || qe.NotFound == "" {
			t.Errorf("%s: err %v, want a not-found QueryError", q, err)
		}
	}
	res := v.query(other, "SELECT eventName, requestParameters['functionName'] FROM "+otherID)
	if len(res.Rows) != 1 || !strings.Contains(str(res.Rows[0][1]), "secret-fn") {
		t.Fatalf("owner cannot read its store: %s", table(res))
	}
}

func TestRestartNeitherLosesNorDuplicates(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, fixtureRecords(t)[:100]...)
	before := str(v.query(acct, "SELECT count(*) FROM "+edsID).Rows[0][0])
	v.e.Close()
	// Entries appended while the engine is down are loaded after it starts again.
	var entries []journal.Entry
	for i := range 50 {
		rec, err := event.Normalize(lambdaInvoke("f", "eni-9", fmt.Sprintf("22222222-0000-0000-0000-%012d", i), time.Now()),
			event.Defaults{Account: acct, Region: "us-east-1", Now: v.now})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, journal.Entry{Value: event.Encode(nil, &rec)})
	}
	res, err := v.j.Append(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	v.open()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.e.WaitApplied(ctx, res[len(res)-1].Seq); err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(before, &n)
	if got := str(v.query(acct, "SELECT count(*) FROM "+edsID).Rows[0][0]); got != fmt.Sprint(n+50) {
		t.Fatalf("after restart count = %s, want %d", got, n+50)
	}
	if got := str(v.query(acct, "SELECT count(DISTINCT eventID) = count(*) FROM "+edsID).Rows[0][0]); got != "true" {
		t.Fatal("duplicate rows after restart")
	}
	cur, err := v.j.Cursor(kv.CursorLake)
	if err != nil || cur != v.e.Applied()+1 {
		t.Fatalf("journal cursor %d (%v), applied %d", cur, err, v.e.Applied())
	}
}

func TestStoreScope(t *testing.T) {
	v := newEnv(t)
	later := StoreDef{ID: "later-store", ARN: edsARN(acct, "later-store"), Account: acct, HomeRegion: "us-east-1", Ingesting: true,
		CreatedAt: v.now.Add(time.Hour)}
	home := StoreDef{ID: "home-only", ARN: edsARN(acct, "home-only"), Account: acct, HomeRegion: "eu-west-1", Ingesting: true}
	stopped := StoreDef{ID: "stopped", ARN: edsARN(acct, "stopped"), Account: acct, HomeRegion: "us-east-1", MultiRegion: true}
	mgmt := StoreDef{ID: "mgmt", ARN: edsARN(acct, "mgmt"), Account: acct, HomeRegion: "us-east-1", MultiRegion: true, Ingesting: true}
	v.setStores(later, home, stopped, mgmt)
	v.ingest(acct, fixtureRecords(t)...)
	count := func(id string) string { return str(v.query(acct, "SELECT count(*) FROM "+id).Rows[0][0]) }
	if count("later-store") != "0" || count("stopped") != "0" {
		t.Fatal("a store took events ingested before it was created or while not ingesting")
	}
	if got := str(v.query(acct, "SELECT count(*) FROM home-only WHERE awsRegion <> 'eu-west-1'").Rows[0][0]); got != "0" {
		t.Fatalf("single-region store took %s events of other regions", got)
	}
	if got := str(v.query(acct, "SELECT count(*) FROM mgmt WHERE eventCategory <> 'Management'").Rows[0][0]); got != "0" {
		t.Fatalf("default selectors took %s non-management events", got)
	}
	if count("mgmt") == "0" {
		t.Fatal("management store is empty")
	}
}

func TestRetentionAndDrop(t *testing.T) {
	d := allEvents(acct, edsID)
	d.RetentionDays = 30
	v := newEnv(t, d)
	old := lambdaInvoke("f", "eni-1", "33333333-0000-0000-0000-000000000001", v.now.Add(-40*24*time.Hour))
	recent := lambdaInvoke("f", "eni-1", "33333333-0000-0000-0000-000000000002", v.now.Add(-1*time.Hour))
	v.ingest(acct, old, recent)
	if err := v.e.Expire(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := v.query(acct, "SELECT eventID FROM "+edsID)
	if len(res.Rows) != 1 || str(res.Rows[0][0]) != "33333333-0000-0000-0000-000000000002" {
		t.Fatalf("after retention: %s", table(res))
	}
	if n, _, _ := v.e.StoreStats(edsID); n != 1 {
		t.Fatalf("stats after retention: %d events", n)
	}
	v.setStores()
	if err := v.e.DropStore(context.Background(), edsID); err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := v.e.db.QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'lake' AND table_name LIKE 's\_%' ESCAPE '\'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("tables after drop: %d, %v", tables, err)
	}
}

func TestChannelEvents(t *testing.T) {
	const ch = "arn:aws:cloudtrail:us-east-1:123456789012:channel/01234567-89ab-cdef-0123-456789abcdef"
	chStore := StoreDef{ID: "chan-store", ARN: edsARN(acct, "chan-store"), Account: acct, HomeRegion: "us-east-1", Ingesting: true,
		ChannelARNs: []string{ch},
		Selectors:   []selector.AdvancedEventSelector{{FieldSelectors: []selector.AdvancedFieldSelector{{Field: "eventCategory", Equals: []string{"ActivityAuditLog"}}}}}}
	v := newEnv(t, chStore, allEvents(acct, edsID))
	rec := `{"eventVersion":"0.02","eventCategory":"ActivityAuditLog","eventType":"ActivityLog","eventID":"44444444-0000-0000-0000-000000000001","eventTime":"2024-02-01T10:00:00Z","awsRegion":"us-east-1","recipientAccountId":"123456789012",` +
		`"metadata":{"ingestionTime":"2024-02-01T10:00:01Z","channelARN":"` + ch + `"},` +
		`"eventData":{"version":"1.0","userIdentity":{"type":"CustomUser","principalId":"alice","details":{"team":"red"}},"userAgent":"app/1","eventSource":"myapp.example.com","eventName":"Login","eventTime":"2024-02-01T10:00:00Z","UID":"u-1","requestParameters":{"realm":"corp"},"responseElements":{"ok":true},"sourceIPAddress":"10.0.0.1","recipientAccountId":"123456789012","additionalEventData":{"mfa":"yes"}}}`
	v.ingest(acct, []byte(rec))
	v.ingest(acct, fixtureRecords(t)[:5]...)
	res := v.query(acct, "SELECT eventData.eventName, metadata.channelARN, eventData.userIdentity.principalId, json_extract_scalar(eventData.requestParameters, '$.realm'), eventData.additionalEventData['mfa'] FROM chan-store")
	if table(res) != "eventName | channelARN | principalId | _col3 | _col4\nLogin | "+ch+" | alice | corp | yes" {
		t.Fatalf("channel query:\n%s", table(res))
	}
	if got := str(v.query(acct, "SELECT count(*) FROM "+edsID+" WHERE eventCategory = 'ActivityAuditLog'").Rows[0][0]); got != "0" {
		t.Fatal("a CloudTrail store took a channel event")
	}
}

// TestRetentionReleasesBlockSpace: once expired records are past, the disk
// space they held in the block file goes back to the file system (a hole is
// punched at the expiry after the one that deleted them), and what remains
// reads as before.
func TestRetentionReleasesBlockSpace(t *testing.T) {
	d := allEvents(acct, edsID)
	d.RetentionDays = 30
	v := newEnv(t, d)
	rng := rand.New(rand.NewPCG(3, 4))
	rec := func(i int, at time.Time) []byte {
		noise := make([]byte, 1500) // incompressible, so that the records take real space
		for k := range noise {
			noise[k] = "0123456789abcdef"[rng.IntN(16)]
		}
		r := lambdaInvoke("f", "eni-1", fmt.Sprintf("44444444-0000-0000-0000-%012d", i), at)
		return bytes.Replace(r, []byte(`"userAgent":"Mozilla`), []byte(`"userAgent":"`+string(noise)+` Mozilla`), 1)
	}
	var old, recent [][]byte
	for i := range 3000 {
		old = append(old, rec(i, v.now.Add(-40*24*time.Hour)))
	}
	v.ingest(acct, old...)
	for i := range 100 {
		recent = append(recent, rec(10000+i, v.now.Add(-time.Hour)))
	}
	v.ingest(acct, recent...)
	path := v.e.blocks.path(v.e.sids[edsID])
	allocated := func() (size, disk int64) {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Size, st.Blocks * 512
	}
	size0, disk0 := allocated()
	for range 2 { // the first run deletes the rows, the second releases their space
		if err := v.e.Expire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	size1, disk1 := allocated()
	if size1 != size0 {
		t.Fatalf("the file's size changed: %d → %d", size0, size1)
	}
	if v.e.blocks.noHole {
		t.Skip("this file system cannot punch holes")
	}
	if disk1 > disk0/5 {
		t.Fatalf("disk use %d → %d bytes: the expired records' space was not released", disk0, disk1)
	}
	res := v.query(acct, "SELECT count(*), count(DISTINCT eventJsonChecksum), min(json_extract_scalar(eventJson, '$.eventID')) FROM "+edsID)
	if got := table(res); !strings.Contains(got, "100 | 100 | 44444444-0000-0000-0000-000000010000") {
		t.Fatalf("after release: %s", got)
	}
}
