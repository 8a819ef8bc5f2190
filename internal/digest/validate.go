package digest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"

	"github.com/opentrail/opentrail/internal/objstore"
)

// ValidateOptions says what Validate checks. The fields mirror the CLI's arguments.
type ValidateOptions struct {
	// TrailARN names the trail: its home region, account and name come from it.
	TrailARN string
	// Bucket holds the trail's digests (and usually its log files).
	Bucket objstore.Bucket
	// Buckets opens other buckets named by digests (a chain that moved buckets, log
	// files elsewhere). Nil: only Bucket is reachable, and files elsewhere are not found.
	Buckets func(ctx context.Context, name string) (objstore.Bucket, error)
	// Account whose digests to check; empty: the ARN's account.
	Account string
	// Regions whose digests to check, each as one CLI run with --region would; empty:
	// the trail's home region.
	Regions []string
	// Prefix is the trail's S3 key prefix.
	Prefix string
	// Start and End bound the digests checked; a zero End is now.
	Start, End time.Time
	// PublicKeys is ListPublicKeys in region: the keys whose validity meets [start, end].
	PublicKeys func(ctx context.Context, region string, start, end time.Time) ([]PublicKey, error)
	// Verbose makes Report.Print list valid files too.
	Verbose bool
	// Workers bounds the log files hashed at once; zero: GOMAXPROCS.
	Workers int
}

// Validate checks a trail's digests and log files as "aws cloudtrail validate-logs" does,
// region by region: list the digests whose names date in [Start, End+1h], walk back from
// the newest following previousDigestS3Object while digests start at or after Start,
// verify each digest (location, key, signature) and then the SHA-256 of every log file a
// valid digest lists. A missing or invalid digest is reported and the walk resumes at
// the next older listed digest; a starting digest with older ones listed is a gap.
//
// Beyond the CLI, Validate also checks each link: a digest must hash to the
// previousDigestHashValue, and carry the signature in previousDigestSignature, that the
// digest after it recorded.
//
// An error means the check could not run (no public keys, a storage failure); what was
// found is in the Report, whose Valid says whether everything checked was valid.
func Validate(ctx context.Context, o ValidateOptions) (Report, error) {
	rep := Report{TrailARN: o.TrailARN, Start: o.Start.UTC(), End: o.End.UTC(), Verbose: o.Verbose}
	if o.End.IsZero() {
		rep.End = time.Now().UTC()
	}
	if !trailARN.MatchString(o.TrailARN) {
		return rep, fmt.Errorf("digest: invalid trail ARN provided: %s", o.TrailARN)
	}
	if rep.Start.After(rep.End) {
		return rep, errors.New("digest: invalid time range specified: start-time must occur before end-time")
	}
	if o.Bucket == nil || o.PublicKeys == nil {
		return rep, errors.New("digest: validate: Bucket and PublicKeys are required")
	}
	parts := strings.Split(o.TrailARN, ":")
	v := &validator{
		o: o, rep: &rep,
		home:    parts[3],
		account: parts[4],
		trail:   o.TrailARN[strings.LastIndex(o.TrailARN, "/")+1:],
		buckets: map[string]objstore.Bucket{o.Bucket.Name(): o.Bucket},
		lists:   map[listKey]*digestLists{},
	}
	if o.Account != "" {
		v.account = o.Account
	}
	if v.o.Workers <= 0 {
		v.o.Workers = runtime.GOMAXPROCS(0)
	}
	regions := o.Regions
	if len(regions) == 0 {
		regions = []string{v.home}
	}
	for _, region := range regions {
		for _, backfill := range []bool{false, true} {
			if err := v.traverse(ctx, region, backfill); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// trailARN is the CLI's check of --trail-arn (matched at the start only, as re.match does).
var trailARN = regexp.MustCompile(`^arn:.+:cloudtrail:.+:\d{12}:trail/.+`)

type validator struct {
	o                    ValidateOptions
	rep                  *Report
	home, account, trail string

	mu      sync.Mutex // guards buckets: log files are checked concurrently
	buckets map[string]objstore.Bucket
	lists   map[listKey]*digestLists
}

// listKey and digestLists are the CLI's cache of digest listings. The lists are consumed
// from the end as the walk goes, and shared by every later walk over the same listing.
type listKey struct {
	region, bucket string
	end            time.Time
}

type digestLists struct{ standard, backfill []string }

// link is what a digest says of the one before it, checked when the walk reaches it.
type link struct {
	hash, signature any
	from            string
}

// loaded is a digest that passed every check.
type loaded struct {
	bucket, key         string
	start, end          time.Time
	prevBucket, prevKey *string
	link                *link
	logFiles            []any
}

// invalid is a digest found invalid, with the CLI's words after "INVALID: ".
type invalid struct{ reason string }

func (e *invalid) Error() string { return e.reason }

// errMissing is a digest, log file or bucket that is not there.
var errMissing = errors.New("not found")

// traverse is the CLI's DigestTraverser.traverse_digests for one region.
func (v *validator) traverse(ctx context.Context, region string, backfill bool) error {
	bucket := v.o.Bucket.Name()
	list, err := v.digestKeys(ctx, region, bucket, v.rep.End, backfill)
	if err != nil {
		return err
	}
	keys := map[string]PublicKey{}
	if !backfill {
		// The CLI loads keys for the whole range first and gives up when there are none.
		if keys, err = v.loadKeys(ctx, region, v.rep.Start, v.rep.End.Add(2*time.Hour)); err != nil {
			return fmt.Errorf("digest: %s: %w", region, err)
		}
	}
	kind, label := KindDigest, ""
	if backfill {
		kind, label = KindBackfillDigest, "(backfill) "
	}
	key, lastStart := popLast(list)
	var next *link
	for key != "" && !v.rep.Start.After(lastStart) {
		d, err := v.loadDigest(ctx, region, keys, bucket, key, backfill, next)
		next = nil
		var inv *invalid
		switch {
		case err == nil:
		case errors.Is(err, errMissing), errors.As(err, &inv):
			reason := "not found"
			if inv != nil {
				reason = inv.reason
			}
			v.add(Result{Kind: kind, Bucket: bucket, Key: key, Reason: reason,
				Line: fmt.Sprintf("%sDigest file\ts3://%s/%s\tINVALID: %s", label, bucket, key, reason)})
			key, _ = popBefore(list, key)
			continue
		default:
			return err
		}
		lastStart = d.start
		if err := v.validDigest(ctx, d, kind, label); err != nil {
			return err
		}
		if d.prevBucket == nil || d.prevKey == nil {
			var nextEnd time.Time
			key, nextEnd = popBefore(list, key)
			if key != "" {
				v.add(Result{Kind: KindGap, Valid: true, Line: fmt.Sprintf("%sNo log files were delivered by CloudTrail between %s and %s",
					label, display(nextEnd), display(lastStart))})
			}
			continue
		}
		key, next = *d.prevKey, d.link
		if *d.prevBucket != bucket {
			bucket = *d.prevBucket
			if list, err = v.digestKeys(ctx, region, bucket, d.end, backfill); err != nil {
				return err
			}
		}
	}
	return nil
}

// digestKeys is the CLI's DigestProvider.load_digest_keys_in_range: the keys of the
// trail's digests for region in bucket whose names date in [Start, end+1h], in key
// order, found by listing from the key a digest ending a minute before Start would have.
func (v *validator) digestKeys(ctx context.Context, region, bucket string, end time.Time, backfill bool) (*[]string, error) {
	lk := listKey{region, bucket, end}
	l, ok := v.lists[lk]
	if !ok {
		b, err := v.bucket(ctx, bucket)
		if errors.Is(err, errMissing) {
			// A chain leading to a bucket we cannot open: its digests are not found (where
			// the CLI would stop with an S3 error).
			v.lists[lk] = &digestLists{}
			return v.digestKeys(ctx, region, bucket, end, backfill)
		} else if err != nil {
			return nil, fmt.Errorf("digest: list digests in %s: %w", bucket, err)
		}
		q := regexp.QuoteMeta
		pattern := "^AWSLogs/" + q(v.account) + `/CloudTrail-Digest/` + q(region) + `/\d+/\d+/\d+/` + q(v.account) + `_CloudTrail-Digest_` +
			q(region) + "_" + q(v.trail) + "_" + q(v.home) + `_.+(?:_backfill)?\.json\.gz$`
		if v.o.Prefix != "" {
			pattern = "^" + q(v.o.Prefix) + "/" + pattern[1:]
		}
		re := regexp.MustCompile(pattern)
		prefix := withPrefix(v.o.Prefix, "AWSLogs/"+v.account+"/CloudTrail-Digest/"+region)
		after := DigestKey(v.o.Prefix, v.account, region, v.trail, v.home, v.rep.Start.Add(-time.Minute))
		from := v.rep.Start.Format(digestTimeLayout)
		to := end.Add(time.Hour).UTC().Format(digestTimeLayout)
		l = &digestLists{}
		const page = 1000
	list:
		for {
			objs, err := b.List(ctx, prefix, after, page)
			if err != nil {
				return nil, fmt.Errorf("digest: list digests in %s: %w", bucket, err)
			}
			for _, o := range objs {
				after = o.Key
				if !re.MatchString(o.Key) {
					continue
				}
				date := keyDate(o.Key)
				if date > to { // names sort by date within a trail, so nothing later is in range
					break list
				}
				if _, ok := parseKeyDate(o.Key); !ok || date < from {
					continue
				}
				if isBackfill(o.Key) {
					l.backfill = append(l.backfill, o.Key)
				} else {
					l.standard = append(l.standard, o.Key)
				}
			}
			if len(objs) < page {
				break
			}
		}
		v.lists[lk] = l
	}
	if backfill {
		return &l.backfill, nil
	}
	return &l.standard, nil
}

func isBackfill(key string) bool { return strings.HasSuffix(key, "_backfill.json.gz") }

// keyDate is the end time in a digest's name, "YYYYMMDDTHHMMSSZ".
func keyDate(key string) string {
	n := len(key)
	if isBackfill(key) {
		if n < 33 {
			return ""
		}
		return key[n-33 : n-17]
	}
	if n < 24 {
		return ""
	}
	return key[n-24 : n-8]
}

func parseKeyDate(key string) (time.Time, bool) {
	t, err := time.Parse(digestTimeLayout, keyDate(key))
	return t, err == nil
}

// popLast takes the newest key off list (the CLI's _get_last_digest without a key).
func popLast(list *[]string) (string, time.Time) {
	l := *list
	if len(l) == 0 {
		return "", time.Time{}
	}
	key := l[len(l)-1]
	*list = l[:len(l)-1]
	t, _ := parseKeyDate(key)
	return key, t
}

// popBefore takes keys off list until one dated before key's date, and returns it.
func popBefore(list *[]string, key string) (string, time.Time) {
	before, ok := parseKeyDate(key)
	if !ok {
		return "", time.Time{}
	}
	for len(*list) > 0 {
		k, t := popLast(list)
		if t.Before(before) {
			return k, t
		}
	}
	return "", time.Time{}
}

// requiredMembers must be present (null allowed) before a digest is looked at.
var requiredMembers = []string{"digestPublicKeyFingerprint", "digestS3Bucket", "digestS3Object",
	"previousDigestSignature", "digestEndTime", "digestStartTime"}

// loadDigest fetches and checks one digest, in the CLI's order of checks so that a digest
// wrong in several ways gets the CLI's reason.
func (v *validator) loadDigest(ctx context.Context, region string, keys map[string]PublicKey, bucket, key string, backfill bool, next *link) (*loaded, error) {
	b, err := v.bucket(ctx, bucket)
	if err != nil {
		return nil, err
	}
	body, meta, err := b.Get(ctx, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, errMissing
	} else if err != nil {
		return nil, fmt.Errorf("digest: get %s/%s: %w", bucket, key, err)
	}
	raw, err := gunzip(body)
	if err != nil || !utf8.Valid(raw) {
		return nil, &invalid{"invalid format"}
	}
	m, err := decodeObject(raw)
	if err != nil {
		return nil, &invalid{"invalid format"}
	}
	sigHex, ok1 := meta[MetaSignature]
	_, ok2 := meta[MetaSignatureAlgorithm]
	if !ok1 || !ok2 {
		return nil, &invalid{"signature verification failed"}
	}
	generated, ok := meta[metaBackfillTimestamp]
	if isBackfill(key) && !ok {
		return nil, &invalid{"invalid format"}
	}
	for _, name := range requiredMembers {
		if _, ok := m[name]; !ok {
			return nil, &invalid{"invalid format"}
		}
	}
	if m["digestS3Bucket"] != bucket || m["digestS3Object"] != key {
		return nil, &invalid{"has been moved from its original location"}
	}
	fp := pyStr(m["digestPublicKeyFingerprint"])
	if _, ok := keys[fp]; !ok && backfill {
		// Backfill digests are signed later than they date: the CLI asks for the keys of
		// the hour around the time written in their metadata.
		at, err := parseDate(generated)
		if err != nil {
			return nil, &invalid{err.Error()}
		}
		more, err := v.loadKeys(ctx, region, at.Add(-time.Hour), at.Add(time.Hour))
		if err != nil {
			return nil, err // none found is *invalid: this digest is invalid, the walk goes on
		}
		for f, k := range more {
			keys[f] = k
		}
	}
	pk, ok := keys[fp]
	if !ok {
		return nil, &invalid{fmt.Sprintf("public key not found in region %s for fingerprint %s", v.home, fp)}
	}
	pub, err := x509.ParsePKCS1PublicKey(pk.Value)
	if err != nil {
		return nil, &invalid{"Unable to load PKCS #1 key with fingerprint " + fp}
	}
	prevSig := "null"
	if s := m["previousDigestSignature"]; s != nil {
		prevSig = pyStr(s)
	}
	hash := HashValue(raw)
	signed := signingString(pyStr(m["digestEndTime"]), pyStr(m["digestS3Bucket"]), pyStr(m["digestS3Object"]), hash, prevSig)
	sig, err := unhexlify(sigHex)
	if err != nil {
		return nil, &invalid{err.Error()}
	}
	sum := sha256.Sum256([]byte(signed))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return nil, &invalid{"signature verification failed"}
	}
	d := &loaded{bucket: bucket, key: key}
	if d.end, err = parseDate(m["digestEndTime"]); err != nil {
		return nil, &invalid{err.Error()}
	}
	if d.start, err = parseDate(m["digestStartTime"]); err != nil {
		return nil, &invalid{err.Error()}
	}
	// Beyond the CLI: the link the newer digest recorded must lead to exactly this one.
	if next != nil {
		if h, ok := next.hash.(string); !ok || !strings.EqualFold(h, hash) {
			return nil, &invalid{"hash value doesn't match the previousDigestHashValue of " + next.from}
		}
		if s, ok := next.signature.(string); !ok || !strings.EqualFold(s, sigHex) {
			return nil, &invalid{"signature doesn't match the previousDigestSignature of " + next.from}
		}
	}
	d.prevBucket, d.prevKey = optString(m["previousDigestS3Bucket"]), optString(m["previousDigestS3Object"])
	d.link = &link{hash: m["previousDigestHashValue"], signature: m["previousDigestSignature"], from: "s3://" + bucket + "/" + key}
	switch logs := m["logFiles"].(type) {
	case []any:
		d.logFiles = logs
	case nil:
		if _, ok := m["logFiles"]; !ok {
			return nil, &invalid{"invalid format"} // the CLI would fail reading it
		}
	default:
		return nil, &invalid{"invalid format"}
	}
	return d, nil
}

// validDigest records a valid digest, the span it covers, and checks its log files.
func (v *validator) validDigest(ctx context.Context, d *loaded, kind Kind, label string) error {
	if s := maxTime(d.start, v.rep.Start); v.rep.FoundStart.IsZero() || s.Before(v.rep.FoundStart) {
		v.rep.FoundStart = s
	}
	if e := minTime(d.end, v.rep.End); v.rep.FoundEnd.IsZero() || e.After(v.rep.FoundEnd) {
		v.rep.FoundEnd = e
	}
	v.add(Result{Kind: kind, Bucket: d.bucket, Key: d.key, Valid: true,
		Line: fmt.Sprintf("%sDigest file\ts3://%s/%s\tvalid", label, d.bucket, d.key)})
	if len(d.logFiles) == 0 {
		return nil
	}
	results := make([]Result, len(d.logFiles))
	errs := make([]error, len(d.logFiles))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(v.o.Workers, len(d.logFiles)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range work {
				results[i], errs[i] = v.checkLog(ctx, d.logFiles[i], buf)
			}
		}()
	}
	for i := range d.logFiles {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			return errs[i]
		}
		v.add(r)
	}
	return nil
}

// checkLog is the CLI's _download_log: the SHA-256 of the first gzip member of the file
// must be the listed hashValue.
func (v *validator) checkLog(ctx context.Context, entry any, buf []byte) (Result, error) {
	m, _ := entry.(map[string]any)
	r := Result{Kind: KindLogFile, Bucket: pyStr(m["s3Bucket"]), Key: pyStr(m["s3Object"])}
	verdict := func(reason string) (Result, error) {
		r.Valid, r.Reason = reason == "", reason
		if r.Valid {
			r.Line = fmt.Sprintf("Log file\ts3://%s/%s\tvalid", r.Bucket, r.Key)
		} else {
			r.Line = fmt.Sprintf("Log file\ts3://%s/%s\tINVALID: %s", r.Bucket, r.Key, reason)
		}
		return r, nil
	}
	if m == nil || m["s3Bucket"] == nil || m["s3Object"] == nil {
		return verdict("invalid format")
	}
	b, err := v.bucket(ctx, r.Bucket)
	if errors.Is(err, errMissing) {
		return verdict("not found")
	} else if err != nil {
		return r, err
	}
	body, _, err := b.Get(ctx, r.Key)
	if errors.Is(err, objstore.ErrNotFound) {
		return verdict("not found")
	} else if err != nil {
		return r, fmt.Errorf("digest: get %s/%s: %w", r.Bucket, r.Key, err)
	}
	sum, err := hashFirstMember(body, buf)
	if err != nil {
		return verdict("invalid format")
	}
	want, ok := m["hashValue"]
	if !ok {
		return verdict("invalid format")
	}
	if want != sum { // case-sensitive, as the CLI compares
		return verdict("hash value doesn't match")
	}
	return verdict("")
}

// hashFirstMember is the hex SHA-256 of the first gzip member of body, streamed. Like the
// CLI's zlib.decompressobj it ignores what follows the member and hashes what a truncated
// stream yields (which then fails the comparison), but fails on corrupt data.
func hashFirstMember(body, buf []byte) (string, error) {
	h := sha256.New()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF: // no complete header: nothing inflated
	case err != nil:
		return "", err
	default:
		zr.Multistream(false)
		if _, err := io.CopyBuffer(h, zr, buf); err != nil && err != io.ErrUnexpectedEOF {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// gunzip inflates the first gzip member of a digest, whole: unlike a log file, a
// truncated digest is invalid (zlib.decompress).
func gunzip(body []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return io.ReadAll(zr)
}

// decodeObject decodes a JSON object, keeping numbers as written.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); m == nil || err != io.EOF {
		return nil, errors.New("not one JSON object")
	}
	return m, nil
}

// loadKeys is the CLI's _load_public_keys: the keys by fingerprint, an error when none.
func (v *validator) loadKeys(ctx context.Context, region string, start, end time.Time) (map[string]PublicKey, error) {
	pks, err := v.o.PublicKeys(ctx, region, start, end)
	if err != nil {
		return nil, fmt.Errorf("digest: list public keys in %s: %w", region, err)
	}
	if len(pks) == 0 {
		return nil, &invalid{fmt.Sprintf("No public keys found between %s and %s", display(start), display(end))}
	}
	keys := make(map[string]PublicKey, len(pks))
	for _, k := range pks {
		keys[k.Fingerprint] = k
	}
	return keys, nil
}

// bucket opens a bucket by name, errMissing when it cannot be reached.
func (v *validator) bucket(ctx context.Context, name string) (objstore.Bucket, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b, ok := v.buckets[name]; ok {
		return b, nil
	}
	if v.o.Buckets == nil {
		return nil, errMissing
	}
	b, err := v.o.Buckets(ctx, name)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, errMissing
	} else if err != nil {
		return nil, fmt.Errorf("digest: open bucket %s: %w", name, err)
	}
	v.buckets[name] = b
	return b, nil
}

func (v *validator) add(r Result) {
	v.rep.Results = append(v.rep.Results, r)
	switch {
	case r.Kind == KindDigest && r.Valid:
		v.rep.ValidDigests++
	case r.Kind == KindDigest:
		v.rep.InvalidDigests++
	case r.Kind == KindBackfillDigest && r.Valid:
		v.rep.ValidBackfillDigests++
	case r.Kind == KindBackfillDigest:
		v.rep.InvalidBackfillDigests++
	case r.Kind == KindLogFile && r.Valid:
		v.rep.ValidLogs++
	case r.Kind == KindLogFile:
		v.rep.InvalidLogs++
	}
}

// ParseTime reads a time as validate-logs takes it ("2024-01-02T03:04:05Z", with or
// without zone, fractions or separators). Without a zone it is UTC.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "20060102T150405Z07:00", "20060102T150405",
		"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("digest: unable to parse date value: %s", s)
}

// parseDate is how the CLI reads a time from a digest: parsed, then its zone replaced
// (not converted) by UTC. Digests always say Z, so only the wording of failures matters.
func parseDate(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("Unable to parse date value: %s", pyStr(v))
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "20060102T150405Z07:00", "20060102T150405",
		"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), nil
		}
	}
	return time.Time{}, fmt.Errorf("Unable to parse date value: %s", s)
}

// unhexlify decodes hex, failing in the words of Python's binascii.
func unhexlify(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	var inv hex.InvalidByteError
	switch {
	case errors.As(err, &inv):
		return nil, errors.New("Non-hexadecimal digit found")
	case err != nil:
		return nil, errors.New("Odd-length string")
	}
	return b, nil
}

// pyStr renders a JSON value as the CLI's f-strings do.
func pyStr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case json.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

func optString(v any) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
