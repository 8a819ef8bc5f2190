// Package digest is CloudTrail log file integrity validation: the digest files a trail
// delivers next to its log files, the RSA keys that sign them, and the check that
// "aws cloudtrail validate-logs" runs over them.
//
// Every hour (and when logging stops) a trail writes, per region, a gzipped JSON digest
// listing the log files delivered since the previous digest with the SHA-256 of each,
// and naming the previous digest with its hash and signature. The digest is signed
// (SHA256withRSA) with the region's current key; the signature travels in the object's
// metadata. ListPublicKeys hands out the public halves, so anyone can walk the chain
// backwards and prove that no log file or digest was altered or removed.
//
// What is written here must be accepted by the real AWS CLI, so the format block below
// follows AWS byte for byte where it matters, and Validate follows the CLI's
// algorithm (awscli/customizations/cloudtrail/validation.py) and prints what it prints.
package digest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/gzip"
)

// ---------------------------------------------------------------------------------------
// Part of the format, never to change: the AWS CLI and every digest already written
// depend on these names, layouts and the signing string.
// ---------------------------------------------------------------------------------------

const (
	// SignatureAlgorithm is the value of digestSignatureAlgorithm and of the
	// signature-algorithm metadata.
	SignatureAlgorithm = "SHA256withRSA"
	// HashAlgorithm is the value of hashAlgorithm and previousDigestHashAlgorithm.
	HashAlgorithm = "SHA-256"
	// MetaSignature and MetaSignatureAlgorithm are the object metadata (x-amz-meta-*)
	// names under which a digest's signature (hex) and its algorithm are stored.
	MetaSignature          = "signature"
	MetaSignatureAlgorithm = "signature-algorithm"
	// metaBackfillTimestamp marks a backfill digest (written by AWS only; read by Validate).
	metaBackfillTimestamp = "backfill-generation-timestamp"

	timeLayout       = "2006-01-02T15:04:05Z" // times inside digests
	digestTimeLayout = "20060102T150405Z"     // digest object names (end time, seconds)
	logTimeLayout    = "20060102T1504Z"       // log file object names (minutes)
)

// Time is a time in a digest, written in UTC to the second as AWS writes it,
// "2024-01-02T03:04:05Z". The zero Time is written as null.
type Time time.Time

// MarshalJSON writes t as AWS does, or null when t is zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.String() + `"`), nil
}

// UnmarshalJSON reads a time written by MarshalJSON.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("digest: time: %w", err)
	}
	v, err := time.Parse(timeLayout, s)
	if err != nil {
		return fmt.Errorf("digest: time %q: want form %s", s, timeLayout)
	}
	*t = Time(v)
	return nil
}

// String formats t as it appears in a digest.
func (t Time) String() string { return time.Time(t).UTC().Format(timeLayout) }

// LogFile is one log file listed in a digest. Members, names and order are AWS's.
type LogFile struct {
	S3Bucket        string `json:"s3Bucket"`
	S3Object        string `json:"s3Object"`
	HashValue       string `json:"hashValue"`     // hex SHA-256 of the uncompressed file
	HashAlgorithm   string `json:"hashAlgorithm"` // HashAlgorithm
	NewestEventTime Time   `json:"newestEventTime"`
	OldestEventTime Time   `json:"oldestEventTime"`
}

// Digest is a digest file. Members, names, types and order are AWS's; the previous*
// members are all nil (null) in a starting digest, and the event times are null when
// the digest lists no log file.
type Digest struct {
	AWSAccountID                string    `json:"awsAccountId"`
	DigestStartTime             Time      `json:"digestStartTime"`
	DigestEndTime               Time      `json:"digestEndTime"`
	DigestS3Bucket              string    `json:"digestS3Bucket"`
	DigestS3Object              string    `json:"digestS3Object"`
	DigestPublicKeyFingerprint  string    `json:"digestPublicKeyFingerprint"`
	DigestSignatureAlgorithm    string    `json:"digestSignatureAlgorithm"`
	NewestEventTime             Time      `json:"newestEventTime"`
	OldestEventTime             Time      `json:"oldestEventTime"`
	PreviousDigestS3Bucket      *string   `json:"previousDigestS3Bucket"`
	PreviousDigestS3Object      *string   `json:"previousDigestS3Object"`
	PreviousDigestHashValue     *string   `json:"previousDigestHashValue"`
	PreviousDigestHashAlgorithm *string   `json:"previousDigestHashAlgorithm"`
	PreviousDigestSignature     *string   `json:"previousDigestSignature"`
	LogFiles                    []LogFile `json:"logFiles"`
}

// LogFileKey is the object key of a log file delivered at t:
// [prefix/]AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz
func LogFileKey(prefix, account, region string, t time.Time, unique string) string {
	return fileKey(prefix, account, "CloudTrail", region, t, unique)
}

// InsightFileKey is LogFileKey for Insights events, under CloudTrail-Insight.
func InsightFileKey(prefix, account, region string, t time.Time, unique string) string {
	return fileKey(prefix, account, "CloudTrail-Insight", region, t, unique)
}

func fileKey(prefix, account, kind, region string, t time.Time, unique string) string {
	t = t.UTC()
	return withPrefix(prefix, fmt.Sprintf("AWSLogs/%s/%s/%s/%s/%s_%s_%s_%s_%s.json.gz",
		account, kind, region, t.Format("2006/01/02"), account, kind, region, t.Format(logTimeLayout), unique))
}

// DigestKey is the object key of the digest for region ending at end:
// [prefix/]AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<homeRegion>_<YYYYMMDDTHHMMSSZ>.json.gz
// The CLI finds digests by this name and reads their end time from its last 24 bytes.
func DigestKey(prefix, account, region, trailName, homeRegion string, end time.Time) string {
	end = end.UTC()
	return withPrefix(prefix, fmt.Sprintf("AWSLogs/%s/CloudTrail-Digest/%s/%s/%s_CloudTrail-Digest_%s_%s_%s_%s.json.gz",
		account, region, end.Format("2006/01/02"), account, region, trailName, homeRegion, end.Format(digestTimeLayout)))
}

// withPrefix joins as the CLI does: prefix + "/" + key, nothing trimmed.
func withPrefix(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "/" + key
}

// SigningString is the text a digest's signature covers, as the CLI rebuilds it:
// digestEndTime, digestS3Bucket/digestS3Object, the hex SHA-256 of the uncompressed digest
// and previousDigestSignature (the literal null for a starting digest), joined by newlines.
func SigningString(d *Digest, uncompressed []byte) string {
	prev := "null"
	if d.PreviousDigestSignature != nil {
		prev = *d.PreviousDigestSignature
	}
	return signingString(d.DigestEndTime.String(), d.DigestS3Bucket, d.DigestS3Object, HashValue(uncompressed), prev)
}

func signingString(end, bucket, object, hash, prevSig string) string {
	return end + "\n" + bucket + "/" + object + "\n" + hash + "\n" + prevSig
}

// Marshal returns the uncompressed JSON of d, compact, members in AWS's order, with "/"
// escaped as "\/" as AWS's writer does (any JSON reader takes it either way). The
// signature and previousDigestHashValue cover exactly these bytes.
func (d *Digest) Marshal() ([]byte, error) {
	switch {
	case time.Time(d.DigestStartTime).IsZero() || time.Time(d.DigestEndTime).IsZero():
		return nil, errors.New("digest: marshal: digestStartTime and digestEndTime are required")
	case d.DigestS3Bucket == "" || d.DigestS3Object == "":
		return nil, errors.New("digest: marshal: digestS3Bucket and digestS3Object are required")
	case d.DigestPublicKeyFingerprint == "":
		return nil, errors.New("digest: marshal: digestPublicKeyFingerprint is required")
	}
	c := *d
	if c.LogFiles == nil {
		c.LogFiles = []LogFile{} // AWS writes [], and the CLI reads the member unconditionally
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("digest: marshal: %w", err)
	}
	// The encoder never writes a backslash before "/", and "/" only occurs inside strings.
	return bytes.ReplaceAll(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("/"), []byte(`\/`)), nil
}

// ---------------------------------------------------------------------------------------
// End of the format block.
// ---------------------------------------------------------------------------------------

// AddLogFile lists f in d and widens d's event time range to cover it.
func (d *Digest) AddLogFile(f LogFile) {
	d.LogFiles = append(d.LogFiles, f)
	if o := time.Time(f.OldestEventTime); !o.IsZero() && (time.Time(d.OldestEventTime).IsZero() || o.Before(time.Time(d.OldestEventTime))) {
		d.OldestEventTime = f.OldestEventTime
	}
	if n := time.Time(f.NewestEventTime); !n.IsZero() && n.After(time.Time(d.NewestEventTime)) {
		d.NewestEventTime = f.NewestEventTime
	}
}

// Sealed is a signed digest ready to store, and what the next digest chains to. A
// deliverer keeps the last Sealed per trail and region (Bucket, Key, Hash, Signature;
// Body and Meta may be dropped) to chain across restarts.
type Sealed struct {
	Bucket, Key string
	Body        []byte            // gzip, one member
	Meta        map[string]string // MetaSignature, MetaSignatureAlgorithm
	Hash        string            // hex SHA-256 of the uncompressed digest
	Signature   string            // hex
}

// Chain makes d follow prev, or makes d a starting digest (previous* all null) when prev
// is nil: after the first digest, and whenever logging or validation was off in between.
func (d *Digest) Chain(prev *Sealed) {
	if prev == nil {
		d.PreviousDigestS3Bucket, d.PreviousDigestS3Object = nil, nil
		d.PreviousDigestHashValue, d.PreviousDigestHashAlgorithm, d.PreviousDigestSignature = nil, nil, nil
		return
	}
	s := func(v string) *string { return &v }
	d.PreviousDigestS3Bucket, d.PreviousDigestS3Object = s(prev.Bucket), s(prev.Key)
	d.PreviousDigestHashValue, d.PreviousDigestHashAlgorithm = s(prev.Hash), s(HashAlgorithm)
	d.PreviousDigestSignature = s(prev.Signature)
}

// Seal signs d with key: it fills in the fingerprint and algorithm, marshals, signs
// the signing string and gzips. Sign with the key valid at the digest's end time
// (KeyRing.Current(region, end)), so that ListPublicKeys over the CLI's range finds it.
func Seal(d *Digest, key *Key) (*Sealed, error) {
	d.DigestPublicKeyFingerprint = key.Fingerprint
	d.DigestSignatureAlgorithm = SignatureAlgorithm
	raw, err := d.Marshal()
	if err != nil {
		return nil, err
	}
	sig, err := Sign(key.Private, SigningString(d, raw))
	if err != nil {
		return nil, err
	}
	body, err := Gzip(raw)
	if err != nil {
		return nil, err
	}
	return &Sealed{
		Bucket: d.DigestS3Bucket, Key: d.DigestS3Object,
		Body:      body,
		Meta:      map[string]string{MetaSignature: sig, MetaSignatureAlgorithm: SignatureAlgorithm},
		Hash:      HashValue(raw),
		Signature: sig,
	}, nil
}

// Gzip compresses b as a single gzip member: the CLI inflates only the first member and
// ignores anything after it, so a second member would break the file's hash.
func Gzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("digest: gzip: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("digest: gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// HashValue is the hex SHA-256 of uncompressed bytes: a log file's hashValue, a digest's
// previousDigestHashValue.
func HashValue(uncompressed []byte) string {
	sum := sha256.Sum256(uncompressed)
	return hex.EncodeToString(sum[:])
}

// RandomUnique returns the 16 random letters and digits that end a log file's name.
func RandomUnique() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, 16)
	var buf [32]byte
	for len(out) < 16 {
		rand.Read(buf[:]) // never fails (crypto/rand panics rather)
		for _, c := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character equally likely.
			if c < 248 && len(out) < 16 {
				out = append(out, alphabet[c%62])
			}
		}
	}
	return string(out)
}
