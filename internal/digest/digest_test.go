package digest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

func TestKeyNames(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, got, want string
	}{
		{"log", LogFileKey("", "111122223333", "us-east-2", at, "AbCdEfGh01234567"),
			"AWSLogs/111122223333/CloudTrail/us-east-2/2024/01/02/111122223333_CloudTrail_us-east-2_20240102T0304Z_AbCdEfGh01234567.json.gz"},
		{"log with prefix", LogFileKey("p/q", "111122223333", "us-east-2", at, "u"),
			"p/q/AWSLogs/111122223333/CloudTrail/us-east-2/2024/01/02/111122223333_CloudTrail_us-east-2_20240102T0304Z_u.json.gz"},
		{"log in another zone", LogFileKey("", "1", "r", at.In(time.FixedZone("x", -5*3600)), "u"),
			"AWSLogs/1/CloudTrail/r/2024/01/02/1_CloudTrail_r_20240102T0304Z_u.json.gz"},
		{"insight", InsightFileKey("", "111122223333", "eu-west-1", at, "u"),
			"AWSLogs/111122223333/CloudTrail-Insight/eu-west-1/2024/01/02/111122223333_CloudTrail-Insight_eu-west-1_20240102T0304Z_u.json.gz"},
		{"digest", DigestKey("", "111122223333", "us-east-2", "your-trail-name", "us-east-2", time.Date(2015, 8, 17, 15, 1, 31, 0, time.UTC)),
			"AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"},
		{"digest with prefix, other region", DigestKey("logs", "111122223333", "eu-west-1", "t", "us-east-1", at),
			"logs/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2024/01/02/111122223333_CloudTrail-Digest_eu-west-1_t_us-east-1_20240102T030405Z.json.gz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
		})
	}
	// The CLI reads a digest's end time from the 16 bytes before ".json.gz".
	if got := keyDate(DigestKey("x", "1", "r", "t", "r", at)); got != "20240102T030405Z" {
		t.Errorf("keyDate = %q", got)
	}
}

func TestRandomUnique(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9]{16}$`)
	seen := map[string]bool{}
	for range 1000 {
		u := RandomUnique()
		if !re.MatchString(u) {
			t.Fatalf("RandomUnique() = %q", u)
		}
		if seen[u] {
			t.Fatalf("RandomUnique() repeated %q", u)
		}
		seen[u] = true
	}
}

func sp(s string) *string { return &s }

// TestMarshal pins the uncompressed digest: AWS's member order, compact, "\/", nulls.
func TestMarshal(t *testing.T) {
	start := time.Date(2015, 8, 17, 14, 1, 31, 0, time.UTC)
	for _, tc := range []struct {
		name string
		d    Digest
		want string
	}{
		{
			name: "starting digest without log files",
			d: Digest{AWSAccountID: "111122223333", DigestStartTime: Time(start), DigestEndTime: Time(start.Add(time.Hour)),
				DigestS3Bucket: "b", DigestS3Object: "AWSLogs/x.json.gz", DigestPublicKeyFingerprint: "31e8b5433410dfb61a9dc45cc65b22ff",
				DigestSignatureAlgorithm: SignatureAlgorithm},
			want: `{"awsAccountId":"111122223333","digestStartTime":"2015-08-17T14:01:31Z","digestEndTime":"2015-08-17T15:01:31Z",` +
				`"digestS3Bucket":"b","digestS3Object":"AWSLogs\/x.json.gz","digestPublicKeyFingerprint":"31e8b5433410dfb61a9dc45cc65b22ff",` +
				`"digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,` +
				`"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}`,
		},
		{
			name: "chained digest with a log file",
			d: Digest{AWSAccountID: "1", DigestStartTime: Time(start), DigestEndTime: Time(start.Add(time.Hour)),
				DigestS3Bucket: "b", DigestS3Object: "k", DigestPublicKeyFingerprint: "f", DigestSignatureAlgorithm: SignatureAlgorithm,
				NewestEventTime: Time(start.Add(2 * time.Minute)), OldestEventTime: Time(start.Add(time.Minute)),
				PreviousDigestS3Bucket: sp("b"), PreviousDigestS3Object: sp("a/p"), PreviousDigestHashValue: sp("aa"),
				PreviousDigestHashAlgorithm: sp(HashAlgorithm), PreviousDigestSignature: sp("bb"),
				LogFiles: []LogFile{{S3Bucket: "b", S3Object: "l&<>", HashValue: "cc", HashAlgorithm: HashAlgorithm,
					NewestEventTime: Time(start.Add(2 * time.Minute)), OldestEventTime: Time(start.Add(time.Minute))}}},
			want: `{"awsAccountId":"1","digestStartTime":"2015-08-17T14:01:31Z","digestEndTime":"2015-08-17T15:01:31Z",` +
				`"digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA",` +
				`"newestEventTime":"2015-08-17T14:03:31Z","oldestEventTime":"2015-08-17T14:02:31Z","previousDigestS3Bucket":"b",` +
				`"previousDigestS3Object":"a\/p","previousDigestHashValue":"aa","previousDigestHashAlgorithm":"SHA-256","previousDigestSignature":"bb",` +
				`"logFiles":[{"s3Bucket":"b","s3Object":"l&<>","hashValue":"cc","hashAlgorithm":"SHA-256",` +
				`"newestEventTime":"2015-08-17T14:03:31Z","oldestEventTime":"2015-08-17T14:02:31Z"}]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			var back Digest
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if tc.d.LogFiles == nil {
				back.LogFiles = nil
			}
			if !reflect.DeepEqual(back, tc.d) {
				t.Fatalf("round trip:\n%+v\nwant\n%+v", back, tc.d)
			}
		})
	}
	if _, err := (&Digest{DigestStartTime: Time(start)}).Marshal(); err == nil {
		t.Error("Marshal of a digest without end time: no error")
	}
}

func TestSigningString(t *testing.T) {
	// The AWS CLI's own vector (test_properly_signs_when_no_previous_signature).
	if got, want := signingString("a", "b", "c", HashValue([]byte("abc")), "null"),
		"a\nb/c\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nnull"; got != want {
		t.Errorf("signingString = %q, want %q", got, want)
	}
	end := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &Digest{DigestEndTime: Time(end), DigestS3Bucket: "bkt", DigestS3Object: "AWSLogs/1/k.json.gz"}
	for _, tc := range []struct {
		name string
		prev *string
		want string
	}{
		{"starting digest", nil, "2024-01-02T03:04:05Z\nbkt/AWSLogs/1/k.json.gz\n" + HashValue([]byte("{}")) + "\nnull"},
		{"chained", sp("00ff"), "2024-01-02T03:04:05Z\nbkt/AWSLogs/1/k.json.gz\n" + HashValue([]byte("{}")) + "\n00ff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.PreviousDigestSignature = tc.prev
			if got := SigningString(d, []byte("{}")); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

var (
	testKeyOnce sync.Once
	testKeys    [2]*rsa.PrivateKey
)

func twoKeys(t testing.TB) [2]*rsa.PrivateKey {
	testKeyOnce.Do(func() {
		for i := range testKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			testKeys[i] = k
		}
	})
	return testKeys
}

func TestSignVerify(t *testing.T) {
	keys := twoKeys(t)
	sig, err := Sign(keys[0], "message")
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 512 || strings.ToLower(sig) != sig {
		t.Errorf("signature %q: want 512 lower-case hex digits", sig)
	}
	for _, tc := range []struct {
		name string
		pub  *rsa.PublicKey
		s    string
		sig  string
		want error
	}{
		{"valid", &keys[0].PublicKey, "message", sig, nil},
		{"valid upper-case hex", &keys[0].PublicKey, "message", strings.ToUpper(sig), nil},
		{"other message", &keys[0].PublicKey, "messagE", sig, ErrSignature},
		{"other key", &keys[1].PublicKey, "message", sig, ErrSignature},
		{"truncated", &keys[0].PublicKey, "message", sig[:510], ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.pub, tc.s, tc.sig); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if err := Verify(&keys[0].PublicKey, "message", "zz"); err == nil || errors.Is(err, ErrSignature) {
		t.Errorf("Verify of non-hex = %v, want a hex error", err)
	}
}

func TestGzipIsOneMember(t *testing.T) {
	raw := bytes.Repeat([]byte(`{"Records":[]}`), 100000)
	gz, err := Gzip(raw)
	if err != nil {
		t.Fatal(err)
	}
	br := bytes.NewReader(gz)
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("first member: %d bytes, %v; want all %d", len(got), err, len(raw))
	}
	if br.Len() != 0 {
		t.Fatalf("%d bytes after the first member", br.Len())
	}
}

func TestAddLogFile(t *testing.T) {
	at := func(m int) Time { return Time(t0.Add(time.Duration(m) * time.Minute)) }
	var d Digest
	d.AddLogFile(LogFile{OldestEventTime: at(5), NewestEventTime: at(9)})
	d.AddLogFile(LogFile{OldestEventTime: at(2), NewestEventTime: at(7)})
	d.AddLogFile(LogFile{OldestEventTime: at(6), NewestEventTime: at(12)})
	if d.OldestEventTime != at(2) || d.NewestEventTime != at(12) || len(d.LogFiles) != 3 {
		t.Fatalf("oldest %v newest %v files %d", d.OldestEventTime, d.NewestEventTime, len(d.LogFiles))
	}
}

// TestSealVerifies checks a sealed digest by hand: gunzip, rebuild the signing string
// from its own JSON, verify with the public key.
func TestSealVerifies(t *testing.T) {
	tr := newTrail(t, "", 0)
	tr.hour(1, 2)
	d := tr.hour(2, 2)
	body, meta, err := tr.bucket.Get(t.Context(), tr.digests[1])
	if err != nil {
		t.Fatal(err)
	}
	if meta[MetaSignatureAlgorithm] != "SHA256withRSA" || meta[MetaSignature] == "" {
		t.Fatalf("meta = %v", meta)
	}
	raw, err := gunzip(body)
	if err != nil {
		t.Fatal(err)
	}
	var back Digest
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if *back.PreviousDigestS3Object != tr.digests[0] || *back.PreviousDigestHashAlgorithm != "SHA-256" {
		t.Fatalf("chain: %+v", back)
	}
	key, _ := tr.ring.Current(testHome, time.Time(d.DigestEndTime))
	if err := Verify(&key.Private.PublicKey, SigningString(&back, raw), meta[MetaSignature]); err != nil {
		t.Fatal(err)
	}
}
