package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	fs := flag.NewFlagSet("validate-logs", flag.ExitOnError)
	trailARN := fs.String("trail-arn", "", "ARN of the trail to validate (required)")
	startFlag := fs.String("start-time", "", `check log files delivered from this UTC time on (required), e.g. "2024-01-08T05:21:42Z"`)
	endFlag := fs.String("end-time", "", "check log files delivered until this UTC time (default: now)")
	bucketName := fs.String("s3-bucket", "", "bucket holding the digests (default: the trail's, from DescribeTrails)")
	prefix := fs.String("s3-prefix", "", "key prefix of the digests (default: the trail's, when --s3-bucket is not given)")
	regions := fs.String("region", "", "comma-separated regions whose digests to check (default: the trail's home region)")
	verbose := fs.Bool("verbose", false, "list valid files too")
	endpoint := fs.String("endpoint", env("http://127.0.0.1:4590", "OPENTRAIL_ENDPOINT"), "OpenTrail server URL, for DescribeTrails and ListPublicKeys")
	dataDir := fs.String("data-dir", env("", "OPENTRAIL_DATA_DIR"), "the server's data directory, when it delivers to local folders (DIR/buckets)")
	s3Endpoint := fs.String("s3-endpoint", env("", "OPENTRAIL_S3_ENDPOINT"), "S3-compatible service the trail delivers to (credentials from the AWS_ environment)")
	fs.Parse(args)

	if *trailARN == "" || *startFlag == "" {
		return errors.New("--trail-arn and --start-time are required")
	}
	if (*dataDir == "") == (*s3Endpoint == "") {
		return errors.New("give one of --data-dir and --s3-endpoint")
	}
	start, err := digest.ParseTime(*startFlag)
	if err != nil {
		return fmt.Errorf("--start-time: %w", err)
	}
	end := time.Now().UTC()
	if *endFlag != "" {
		if end, err = digest.ParseTime(*endFlag); err != nil {
			return fmt.Errorf("--end-time: %w", err)
		}
	}
	arn := strings.Split(*trailARN, ":")
	if len(arn) < 6 {
		return fmt.Errorf("invalid trail ARN provided: %s", *trailARN)
	}
	home := arn[3]
	ctx := context.Background()

	trails, err := newClient(*endpoint, home, false)
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
		store = objstore.NewFS(filepath.Join(*dataDir, "buckets"))
	} else if store, err = objstore.NewS3(ctx, objstore.S3Config{Endpoint: *s3Endpoint, Region: home, PathStyle: true}); err != nil {
		return err
	}
	bucket, err := store.Bucket(ctx, *bucketName)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", *bucketName, err)
	}

	o := digest.ValidateOptions{
		TrailARN: *trailARN, Bucket: bucket, Buckets: store.Bucket, Prefix: *prefix,
		Start: start, End: end, Verbose: *verbose,
		PublicKeys: func(ctx context.Context, region string, start, end time.Time) ([]digest.PublicKey, error) {
			return listPublicKeys(ctx, *endpoint, region, start, end)
		},
	}
	if *regions != "" {
		o.Regions = strings.Split(*regions, ",")
	}
	rep, err := digest.Validate(ctx, o)
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
	c, err := newClient(endpoint, region, false)
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
