package digest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/objstore"
)

// memBucket is an in-memory objstore.Bucket for unit tests.
type memBucket struct {
	name string
	mu   sync.Mutex
	objs map[string]memObject
}

type memObject struct {
	body []byte
	meta map[string]string
	mod  time.Time
}

func newMemBucket(name string) *memBucket {
	return &memBucket{name: name, objs: map[string]memObject{}}
}

func (b *memBucket) Name() string { return b.name }

func (b *memBucket) Put(_ context.Context, key string, body []byte, meta map[string]string) error {
	m := map[string]string{}
	for k, v := range meta {
		m[strings.ToLower(k)] = v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objs[key] = memObject{body: bytes.Clone(body), meta: m, mod: time.Now()}
	return nil
}

func (b *memBucket) Get(_ context.Context, key string) ([]byte, map[string]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objs[key]
	if !ok {
		return nil, nil, objstore.ErrNotFound
	}
	m := map[string]string{}
	for k, v := range o.meta {
		m[k] = v
	}
	return o.body, m, nil
}

func (b *memBucket) Head(ctx context.Context, key string) (objstore.Object, map[string]string, error) {
	body, meta, err := b.Get(ctx, key)
	if err != nil {
		return objstore.Object{}, nil, err
	}
	return objstore.Object{Key: key, Size: int64(len(body)), LastModified: b.objs[key].mod}, meta, nil
}

func (b *memBucket) List(_ context.Context, prefix, startAfter string, max int) ([]objstore.Object, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []objstore.Object
	for k, o := range b.objs {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			out = append(out, objstore.Object{Key: k, Size: int64(len(o.body)), LastModified: o.mod})
		}
	}
	slices.SortFunc(out, func(a, b objstore.Object) int { return strings.Compare(a.Key, b.Key) })
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, nil
}

func (b *memBucket) Delete(_ context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objs, key)
	return nil
}

// t0 is when every scenario's trail starts logging.
var t0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

const (
	testAccount = "123456789012"
	testTrail   = "audit"
	testHome    = "us-east-1"
	testBucket  = "trail-bucket"
)

var testARN = "arn:aws:cloudtrail:" + testHome + ":" + testAccount + ":trail/" + testTrail

// trail writes log files and digests as a deliverer would, for one region.
type trail struct {
	t      testing.TB
	bucket *memBucket
	ring   *KeyRing
	prefix string
	region string
	prev   *Sealed
	end    time.Time // the last digest's end

	digests []string // keys, oldest first
	logs    []string
	rng     *rand.Rand
}

func newTrail(t testing.TB, prefix string, period time.Duration) *trail {
	ring, err := OpenKeyRing(FileKeyStore(filepath.Join(t.TempDir(), "keys.json")), period)
	if err != nil {
		t.Fatal(err)
	}
	return newTrailWithRing(t, prefix, ring)
}

// openTestRing opens a copy of testdata/keyring.json: one us-east-1 key valid from
// 2024-02-20 to 2024-03-21, for tests that must not generate keys.
func openTestRing(t testing.TB) *KeyRing {
	b, err := os.ReadFile(filepath.Join("testdata", "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys.json")
	os.WriteFile(path, b, 0o600)
	ring, err := OpenKeyRing(FileKeyStore(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func newTrailWithRing(t testing.TB, prefix string, ring *KeyRing) *trail {
	return &trail{t: t, bucket: newMemBucket(testBucket), ring: ring, prefix: prefix, region: testHome, end: t0,
		rng: rand.New(rand.NewPCG(1, 2))}
}

// records renders n CloudTrail records around at, in the shape (and entropy) of real ones.
func (tr *trail) records(n int, at time.Time) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDA%016X","arn":"arn:aws:iam::%s:user/u%d","accountId":"%s","accessKeyId":"AKIA%016X","userName":"u%d"},`+
			`"eventTime":"%s","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"%s","sourceIPAddress":"203.0.113.%d","userAgent":"aws-sdk-go-v2/1.30.0 os/linux lang/go#1.26",`+
			`"requestParameters":{"bucketName":"data-%d","key":"obj/%016x/%08x.parquet"},"responseElements":null,"requestID":"%016X","eventID":"%08x-%04x-%04x-%04x-%012x",`+
			`"readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"%s","eventCategory":"Data"}`,
			tr.rng.Uint64(), testAccount, tr.rng.IntN(50), testAccount, tr.rng.Uint64(), tr.rng.IntN(50),
			at.Add(time.Duration(i)*time.Second).UTC().Format(timeLayout), tr.region, tr.rng.IntN(255),
			tr.rng.IntN(20), tr.rng.Uint64(), tr.rng.Uint32(), tr.rng.Uint64(),
			tr.rng.Uint32(), tr.rng.Uint32()&0xffff, tr.rng.Uint32()&0xffff, tr.rng.Uint32()&0xffff, tr.rng.Uint64()&0xffffffffffff,
			testAccount)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// logFile delivers a log file of n records at t and returns its digest entry.
func (tr *trail) logFile(t time.Time, n int) LogFile {
	raw := tr.records(n, t)
	gz, err := Gzip(raw)
	if err != nil {
		tr.t.Fatal(err)
	}
	key := LogFileKey(tr.prefix, testAccount, tr.region, t, RandomUnique())
	if err := tr.bucket.Put(context.Background(), key, gz, nil); err != nil {
		tr.t.Fatal(err)
	}
	tr.logs = append(tr.logs, key)
	return LogFile{S3Bucket: tr.bucket.Name(), S3Object: key, HashValue: HashValue(raw), HashAlgorithm: HashAlgorithm,
		OldestEventTime: Time(t), NewestEventTime: Time(t.Add(time.Duration(n-1) * time.Second))}
}

// hour delivers nlogs log files and then the digest covering them, an hour after the last.
func (tr *trail) hour(nlogs, records int) *Digest {
	start, end := tr.end, tr.end.Add(time.Hour)
	d := &Digest{AWSAccountID: testAccount, DigestStartTime: Time(start), DigestEndTime: Time(end), DigestS3Bucket: tr.bucket.Name(),
		DigestS3Object: DigestKey(tr.prefix, testAccount, tr.region, testTrail, testHome, end)}
	for i := range nlogs {
		d.AddLogFile(tr.logFile(start.Add(time.Duration(i+1)*time.Minute), records))
	}
	tr.seal(d)
	return d
}

// seal chains, signs and stores d.
func (tr *trail) seal(d *Digest) *Sealed {
	d.Chain(tr.prev)
	key, err := tr.ring.Current(tr.region, time.Time(d.DigestEndTime))
	if err != nil {
		tr.t.Fatal(err)
	}
	s, err := Seal(d, key)
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := tr.bucket.Put(context.Background(), s.Key, s.Body, s.Meta); err != nil {
		tr.t.Fatal(err)
	}
	tr.prev, tr.end = s, time.Time(d.DigestEndTime)
	tr.digests = append(tr.digests, s.Key)
	return s
}

// pause stops logging for a while: the next digest starts a new chain.
func (tr *trail) pause(d time.Duration) {
	tr.prev = nil
	tr.end = tr.end.Add(d)
}

func (tr *trail) options(start, end time.Time) ValidateOptions {
	return ValidateOptions{
		TrailARN: testARN, Bucket: tr.bucket, Prefix: tr.prefix, Start: start, End: end, Verbose: true,
		Regions: []string{tr.region},
		PublicKeys: func(_ context.Context, region string, start, end time.Time) ([]PublicKey, error) {
			return tr.ring.PublicKeys(region, start, end), nil
		},
	}
}

// regzip replaces an object's body with f(uncompressed), keeping its metadata.
func (tr *trail) regzip(key string, f func([]byte) []byte) {
	body, meta, err := tr.bucket.Get(context.Background(), key)
	if err != nil {
		tr.t.Fatal(err)
	}
	raw, err := gunzip(body)
	if err != nil {
		tr.t.Fatal(err)
	}
	gz, _ := Gzip(f(raw))
	tr.bucket.Put(context.Background(), key, gz, meta)
}

// scenario is a trail's history and the range to validate. Every scenario runs through
// Validate and, in TestCLIAgrees, through the AWS CLI's own validation code.
type scenario struct {
	name       string
	period     time.Duration // key rotation; zero: default
	prefix     string
	build      func(tr *trail) (start, end time.Time)
	want       counts
	wantLines  []string // lines that must be in the report, s3://<bucket>/ and times filled in by the test
	stricter   bool     // the CLI accepts what we reject (our link check)
	cliVerbose bool
}

type counts struct{ validDigests, invalidDigests, validLogs, invalidLogs int }

// wantRC is the exit status the CLI must give the scenario.
func (sc scenario) wantRC() int {
	if sc.want.invalidDigests > 0 || sc.want.invalidLogs > 0 {
		return 1
	}
	return 0
}

// wantSummary is the CLI's summary of the digests the scenario expects.
func (sc scenario) wantSummary() string {
	w := sc.want
	switch n := w.validDigests + w.invalidDigests; {
	case n == 0:
		return "No digests found\n"
	case w.invalidDigests == 0:
		return fmt.Sprintf("\n%d/%d digest files valid\n", w.validDigests, n)
	default:
		return fmt.Sprintf("\n%d/%d digest files valid, %d/%d digest files INVALID\n", w.validDigests, n, w.invalidDigests, n)
	}
}

var scenarios = []scenario{
	{
		name: "all valid",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 4 {
				tr.hour(2, 20)
			}
			return t0, tr.end
		},
		want: counts{4, 0, 8, 0},
	},
	{
		name:   "all valid with prefix",
		prefix: "org/trails",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 3 {
				tr.hour(1, 5)
			}
			return t0, tr.end
		},
		want: counts{3, 0, 3, 0},
	},
	{
		name: "log file altered",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 3 {
				tr.hour(2, 10)
			}
			tr.regzip(tr.logs[2], func(b []byte) []byte { return bytes.Replace(b, []byte("GetObject"), []byte("PutObject"), 1) })
			return t0, tr.end
		},
		want:      counts{3, 0, 5, 1},
		wantLines: []string{"Log file\ts3://{bucket}/{log2}\tINVALID: hash value doesn't match"},
	},
	{
		name: "log file deleted",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 3 {
				tr.hour(2, 10)
			}
			tr.bucket.Delete(context.Background(), tr.logs[4])
			return t0, tr.end
		},
		want:      counts{3, 0, 5, 1},
		wantLines: []string{"Log file\ts3://{bucket}/{log4}\tINVALID: not found"},
	},
	{
		name: "log file with a second gzip member",
		build: func(tr *trail) (time.Time, time.Time) {
			tr.hour(2, 10)
			body, meta, _ := tr.bucket.Get(context.Background(), tr.logs[1])
			extra, _ := Gzip([]byte(`{"Records":[]}`))
			tr.bucket.Put(context.Background(), tr.logs[1], append(bytes.Clone(body), extra...), meta)
			return t0, tr.end
		},
		want: counts{1, 0, 2, 0}, // the CLI inflates the first member only, and so do we
	},
	{
		name: "log file truncated",
		build: func(tr *trail) (time.Time, time.Time) {
			tr.hour(2, 50)
			body, meta, _ := tr.bucket.Get(context.Background(), tr.logs[0])
			tr.bucket.Put(context.Background(), tr.logs[0], body[:len(body)/2], meta)
			return t0, tr.end
		},
		want:      counts{1, 0, 1, 1},
		wantLines: []string{"Log file\ts3://{bucket}/{log0}\tINVALID: hash value doesn't match"},
	},
	{
		name: "log file not gzip",
		build: func(tr *trail) (time.Time, time.Time) {
			tr.hour(2, 5)
			tr.bucket.Put(context.Background(), tr.logs[1], []byte(`{"Records":[]}`), nil)
			return t0, tr.end
		},
		want:      counts{1, 0, 1, 1},
		wantLines: []string{"Log file\ts3://{bucket}/{log1}\tINVALID: invalid format"},
	},
	{
		name: "digest deleted",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 4 {
				tr.hour(1, 5)
			}
			tr.bucket.Delete(context.Background(), tr.digests[1])
			return t0, tr.end
		},
		want:      counts{3, 1, 3, 0},
		wantLines: []string{"Digest file\ts3://{bucket}/{digest1}\tINVALID: not found"},
	},
	{
		name: "newest digest deleted is not noticed",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 3 {
				tr.hour(1, 5)
			}
			tr.bucket.Delete(context.Background(), tr.digests[2])
			return t0, tr.end
		},
		want: counts{2, 0, 2, 0},
	},
	{
		name: "digest altered",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 3 {
				tr.hour(1, 5)
			}
			tr.regzip(tr.digests[1], func(b []byte) []byte { return bytes.Replace(b, []byte(`"hashValue":"`), []byte(`"hashValue":"0`), 1) })
			return t0, tr.end
		},
		want:      counts{2, 1, 2, 0},
		wantLines: []string{"Digest file\ts3://{bucket}/{digest1}\tINVALID: signature verification failed"},
	},
	{
		name: "digest without signature",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 2 {
				tr.hour(1, 5)
			}
			body, _, _ := tr.bucket.Get(context.Background(), tr.digests[1])
			tr.bucket.Put(context.Background(), tr.digests[1], body, nil)
			return t0, tr.end
		},
		want:      counts{1, 1, 1, 0},
		wantLines: []string{"Digest file\ts3://{bucket}/{digest1}\tINVALID: signature verification failed"},
	},
	{
		name: "digest moved",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 2 {
				tr.hour(1, 5)
			}
			body, meta, _ := tr.bucket.Get(context.Background(), tr.digests[1])
			moved := DigestKey(tr.prefix, testAccount, tr.region, testTrail, testHome, tr.end.Add(time.Minute))
			tr.bucket.Put(context.Background(), moved, body, meta)
			tr.digests = append(tr.digests, moved)
			return t0, tr.end
		},
		want:      counts{2, 1, 2, 0},
		wantLines: []string{"Digest file\ts3://{bucket}/{digest2}\tINVALID: has been moved from its original location"},
	},
	{
		name: "starting digests and a gap",
		build: func(tr *trail) (time.Time, time.Time) {
			tr.hour(1, 5)
			tr.hour(0, 0) // an hour without log files: null event times
			tr.pause(3 * time.Hour)
			tr.hour(1, 5)
			tr.hour(1, 5)
			return t0, tr.end
		},
		want:      counts{4, 0, 3, 0},
		wantLines: []string{"No log files were delivered by CloudTrail between 2024-03-01T02:00:00Z and 2024-03-01T05:00:00Z"},
	},
	{
		name:   "keys rotated within the range",
		period: 150 * time.Minute,
		build: func(tr *trail) (time.Time, time.Time) {
			for range 7 {
				tr.hour(1, 3)
			}
			return t0, tr.end
		},
		want: counts{7, 0, 7, 0},
	},
	{
		name: "part of the range",
		build: func(tr *trail) (time.Time, time.Time) {
			for range 8 {
				tr.hour(1, 3)
			}
			return t0.Add(3*time.Hour + 30*time.Minute), t0.Add(5*time.Hour + 10*time.Minute)
		},
		// Listed: digests ending 04:00 to 06:10 (end + 1h), so 04:00, 05:00, 06:00; the walk
		// from 06:00 stops after the digest starting before 03:30, the one ending 04:00.
		want: counts{3, 0, 3, 0},
	},
	{
		name: "no digests in range",
		build: func(tr *trail) (time.Time, time.Time) {
			tr.hour(1, 3)
			return t0.Add(5 * time.Hour), t0.Add(6 * time.Hour)
		},
		want:      counts{0, 0, 0, 0},
		wantLines: []string{},
	},
	{
		name: "chain link does not match",
		build: func(tr *trail) (time.Time, time.Time) {
			tr.hour(1, 3)
			tr.hour(1, 3)
			// A properly signed digest whose link names the right object with a wrong hash:
			// the CLI follows the name only.
			tr.prev.Hash = strings.Repeat("0", 64)
			tr.hour(1, 3)
			return t0, tr.end
		},
		stricter:  true,
		want:      counts{2, 1, 2, 0},
		wantLines: []string{"Digest file\ts3://{bucket}/{digest1}\tINVALID: hash value doesn't match the previousDigestHashValue of s3://{bucket}/{digest2}"},
	},
}

// fill replaces {bucket}, {logN} and {digestN} in a wanted line.
func (tr *trail) fill(line string) string {
	r := []string{"{bucket}", tr.bucket.Name()}
	for i, k := range tr.logs {
		r = append(r, fmt.Sprintf("{log%d}", i), k)
	}
	for i, k := range tr.digests {
		r = append(r, fmt.Sprintf("{digest%d}", i), k)
	}
	return strings.NewReplacer(r...).Replace(line)
}
