package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/objstore"
)

// runValidateLogs is "aws cloudtrail validate-logs" for OpenTrail: it checks a trail's digest
// and log files where the server delivers them, taking the public keys from the server's
// ListPublicKeys, and prints what the AWS CLI prints. It fails when anything is invalid.
func runValidateLogs(args []string) error {
	fs := newFlags("opentrail validate-logs", "--trail-arn ARN --start-time TIME [flags]",
		`Checks a trail's digest and log files as "aws cloudtrail validate-logs" does and prints what it
prints: every digest in the range is verified with the server's public keys (ListPublicKeys),
then the SHA-256 of every log file it lists. An invalid or missing file is reported as INVALID and
the check goes on; the command fails when anything was invalid. Files are read from the server's
data directory (--data-dir, for folder buckets) or from S3.

A trail delivers its first digest one digest interval (serve --digest-interval, default 1h) after
logging starts: until then there is nothing to validate, and the command says so.`,
		`opentrail validate-logs --data-dir ./opentrail-data --start-time 2024-01-08T05:00:00Z \
    --trail-arn arn:aws:cloudtrail:us-east-1:123456789012:trail/main`)
	trailARN := fs.String("trail-arn", "", "ARN of the trail to validate (required)")
	startFlag := fs.String("start-time", "", `check log files delivered from this UTC time on (required), e.g. "2024-01-08T05:21:42Z"`)
	endFlag := fs.String("end-time", "", "check log files delivered until this UTC time (default: now)")
	bucketName := fs.String("s3-bucket", "", "bucket holding the digests (default: the trail's, from DescribeTrails)")
	prefix := fs.String("s3-prefix", "", "key prefix of the digests (default: the trail's, when --s3-bucket is not given)")
	regions := fs.String("region", "", "comma-separated regions whose digests to check (default: the trail's home region)")
	verbose := fs.Bool("verbose", false, "list valid files too")
	endpoint := fs.String("endpoint", "", "URL of the OpenTrail server, for DescribeTrails and ListPublicKeys")
	fs.envVar("endpoint", "OPENTRAIL_ENDPOINT")
	fs.fallback("endpoint", "$AWS_ENDPOINT_URL_CLOUDTRAIL, $AWS_ENDPOINT_URL or the profile's endpoint_url; else "+defaultEndpoint)
	dataDir := fs.String("data-dir", "", "the server's data directory, when it delivers to local folders (DIR/buckets); without it, files are read from S3")
	fs.envVar("data-dir", "OPENTRAIL_DATA_DIR")
	s3f := addS3Flags(fs, "without --data-dir: ")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	if *trailARN == "" || *startFlag == "" {
		return usagef("--trail-arn and --start-time are required")
	}
	start, err := digest.ParseTime(*startFlag)
	if err != nil {
		return usagef("--start-time: %v", err)
	}
	end := time.Now().UTC()
	if *endFlag != "" {
		if end, err = digest.ParseTime(*endFlag); err != nil {
			return usagef("--end-time: %v", err)
		}
	}
	arn := strings.Split(*trailARN, ":")
	if len(arn) < 6 {
		return usagef("invalid trail ARN provided: %s", *trailARN)
	}
	home := arn[3]
	ctx := context.Background()

	trails, err := newClient(ctx, *endpoint, home, false)
	if err != nil {
		return err
	}
	if *bucketName == "" {
		// As the CLI does: the trail's current bucket and prefix.
		out, err := trails.cloudTrail().DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{TrailNameList: []string{*trailARN}})
		if err != nil {
			return fmt.Errorf("describe trail: %w", err)
		}
		for _, t := range out.TrailList {
			if aws.ToString(t.TrailARN) == *trailARN {
				*bucketName, *prefix = aws.ToString(t.S3BucketName), aws.ToString(t.S3KeyPrefix)
			}
		}
		if *bucketName == "" {
			return fmt.Errorf("a trail could not be found for %s", *trailARN)
		}
	}

	var store objstore.Store
	if *dataDir != "" {
		store = rawFS{objstore.NewFS(filepath.Join(*dataDir, "buckets")), filepath.Join(*dataDir, "buckets")}
	} else {
		if *s3f.region == "" {
			*s3f.region = home
		}
		if store, err = s3f.open(ctx); err != nil {
			return err
		}
	}
	bucket, err := store.Bucket(ctx, *bucketName)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", *bucketName, err)
	}

	o := digest.ValidateOptions{
		TrailARN: *trailARN, Bucket: bucket, Buckets: store.Bucket, Prefix: *prefix,
		Start: start, End: end, Verbose: *verbose,
		PublicKeys: func(ctx context.Context, region string, start, end time.Time) ([]digest.PublicKey, error) {
			return listPublicKeys(ctx, trails.endpoint, region, start, end)
		},
	}
	if *regions != "" {
		o.Regions = strings.Split(*regions, ",")
	}
	rep, err := digest.Validate(ctx, o)
	if err != nil || rep.ValidDigests+rep.InvalidDigests+rep.ValidBackfillDigests+rep.InvalidBackfillDigests == 0 {
		// Nothing could be checked: say so plainly when the trail has delivered no digest yet.
		if none, lerr := noDigestYet(ctx, bucket, *prefix, arn[4], o.Regions, home); lerr == nil && none != "" {
			return fmt.Errorf("no digest delivered yet under s3://%s/%s: a trail delivers its first digest file one digest interval "+
				"(serve --digest-interval, default 1h) after logging starts; validate-logs can check files from then on", *bucketName, none)
		}
	}
	if err != nil {
		return err
	}
	if err := rep.Print(os.Stdout, os.Stderr); err != nil {
		return err
	}
	if !rep.Valid() {
		return fmt.Errorf("%d digest and %d log files invalid", rep.InvalidDigests+rep.InvalidBackfillDigests, rep.InvalidLogs)
	}
	return nil
}

// listPublicKeys is ListPublicKeys in region, all pages.
func listPublicKeys(ctx context.Context, endpoint, region string, start, end time.Time) ([]digest.PublicKey, error) {
	c, err := newClient(ctx, endpoint, region, false)
	if err != nil {
		return nil, err
	}
	ct := c.cloudTrail()
	var keys []digest.PublicKey
	in := &cloudtrail.ListPublicKeysInput{StartTime: aws.Time(start), EndTime: aws.Time(end)}
	for {
		out, err := ct.ListPublicKeys(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, k := range out.PublicKeyList {
			keys = append(keys, digest.PublicKey{Value: k.Value, Fingerprint: aws.ToString(k.Fingerprint),
				ValidityStartTime: aws.ToTime(k.ValidityStartTime), ValidityEndTime: aws.ToTime(k.ValidityEndTime)})
		}
		if aws.ToString(out.NextToken) == "" {
			return keys, nil
		}
		in.NextToken = out.NextToken
	}
}

// noDigestYet returns the digest prefix it looked under when the trail has no digest there at
// all in any of regions, "" when it has some.
func noDigestYet(ctx context.Context, b objstore.Bucket, prefix, account string, regions []string, home string) (string, error) {
	if len(regions) == 0 {
		regions = []string{home}
	}
	if prefix != "" {
		prefix += "/"
	}
	var looked string
	for _, r := range regions {
		p := prefix + "AWSLogs/" + account + "/CloudTrail-Digest/" + r + "/"
		objs, err := b.List(ctx, p, "", 1)
		if err != nil {
			return "", err
		}
		if len(objs) > 0 {
			return "", nil
		}
		looked = p
	}
	return looked, nil
}

// rawFS is the folder store with Get reading the plain file: validate-logs judges a file by
// the bytes an operator (or an attacker) left there, as the AWS CLI judges an S3 object, where
// the folder store itself refuses a body that no longer matches what it wrote.
type rawFS struct {
	*objstore.FS
	dir string
}

func (s rawFS) Bucket(ctx context.Context, name string) (objstore.Bucket, error) {
	b, err := s.FS.Bucket(ctx, name)
	if err != nil {
		return nil, err
	}
	return rawBucket{b, filepath.Join(s.dir, name)}, nil
}

type rawBucket struct {
	objstore.Bucket
	dir string
}

func (b rawBucket) Get(ctx context.Context, key string) ([]byte, map[string]string, error) {
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return nil, nil, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	}
	body, err := os.ReadFile(filepath.Join(b.dir, filepath.FromSlash(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("get %s: %w", key, objstore.ErrNotFound)
	} else if err != nil {
		return nil, nil, err
	}
	// The metadata (a digest's signature) as stored with the body; none when the body was
	// changed in size, so that such a digest fails its signature check.
	_, meta, _ := b.Bucket.Head(ctx, key)
	return body, meta, nil
}
