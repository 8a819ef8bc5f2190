package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Config says how to reach an S3-compatible service.
type S3Config struct {
	// Endpoint is the service's URL ("http://127.0.0.1:7070"); empty means AWS.
	Endpoint string
	// Region signs requests and places new buckets; empty means the AWS configuration's, else
	// us-east-1.
	Region string
	// AccessKeyID and SecretAccessKey are static credentials; both empty means the default
	// AWS credential chain (environment, shared files, instance role…).
	AccessKeyID, SecretAccessKey string
	// PathStyle addresses buckets as http://host/bucket/key instead of http://bucket.host/key,
	// as most self-hosted services need.
	PathStyle bool
	// Owners names the account that owns each bucket (S3 answers with canonical
	// user IDs, not accounts); Owner owns the buckets Owners does not name ("" =
	// they have no owner and any account may deliver into them).
	Owners map[string]string
	Owner  string
}

// S3 is a Store on an S3-compatible service.
type S3 struct {
	client *s3.Client
	region string
	owners map[string]string
	owner  string
}

// NewS3 returns a Store on the service c describes. It loads the AWS configuration (files and
// environment) but sends no request.
func NewS3(ctx context.Context, c S3Config) (*S3, error) {
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return nil, errors.New("objstore: s3: give both access key ID and secret access key, or neither")
	}
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		// The SDK's default flexible checksums (CRC32, aws-chunked) are not understood by every
		// S3-compatible service; Put sends Content-MD5 instead, which all of them check.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &S3{client: client, region: cfg.Region, owners: c.Owners, owner: c.Owner}, nil
}

// CreateBucket creates a bucket in the configured region (no error if this account owns it).
func (s *S3) CreateBucket(ctx context.Context, name string) error {
	if err := ValidBucketName(name); err != nil {
		return err
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if s.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	_, err := s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("objstore: create bucket %s: %w", name, err)
	}
	return nil
}

// Bucket checks with HeadBucket that the bucket exists.
func (s *S3) Bucket(ctx context.Context, name string) (Bucket, error) {
	if err := ValidBucketName(name); err != nil {
		return nil, err
	}
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)})
	if isS3NotFound(err) {
		return nil, fmt.Errorf("bucket %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore: bucket %s: %w", name, err)
	}
	return &s3Bucket{client: s.client, name: name}, nil
}

type s3Bucket struct {
	client *s3.Client
	name   string
}

func (b *s3Bucket) Name() string { return b.name }

// Put stores body as CloudTrail stores log and digest files: Content-Type application/json and
// no Content-Encoding, even for gzip (.json.gz) bodies, which readers gunzip themselves.
func (b *s3Bucket) Put(ctx context.Context, key string, body []byte, meta map[string]string) error {
	sum := md5.Sum(body)
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.name),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType:   aws.String("application/json"),
		Metadata:      lowerMeta(meta),
	})
	return b.wrap("put", key, err)
}

func (b *s3Bucket) Get(ctx context.Context, key string) ([]byte, map[string]string, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	if err != nil {
		return nil, nil, b.wrap("get", key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, nil, b.wrap("get", key, err)
	}
	return body, lowerMeta(out.Metadata), nil
}

func (b *s3Bucket) Head(ctx context.Context, key string) (Object, map[string]string, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	if err != nil {
		return Object{}, nil, b.wrap("head", key, err)
	}
	return Object{Key: key, Size: aws.ToInt64(out.ContentLength), LastModified: aws.ToTime(out.LastModified)},
		lowerMeta(out.Metadata), nil
}

// List pages through ListObjectsV2, which returns keys in S3 (byte) order.
func (b *s3Bucket) List(ctx context.Context, prefix, startAfter string, max int) ([]Object, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.name)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	var objs []Object
	for {
		if max > 0 {
			in.MaxKeys = aws.Int32(int32(min(max-len(objs), 1000)))
		}
		out, err := b.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("objstore: list %s prefix %q: %w", b.name, prefix, b.notFound(err))
		}
		for _, o := range out.Contents {
			objs = append(objs, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), LastModified: aws.ToTime(o.LastModified)})
		}
		if !aws.ToBool(out.IsTruncated) || max > 0 && len(objs) >= max {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	if max > 0 && len(objs) > max {
		objs = objs[:max]
	}
	return objs, nil
}

// Delete removes an object; S3 itself answers success for a missing one.
func (b *s3Bucket) Delete(ctx context.Context, key string) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil
	}
	return b.wrap("delete", key, err)
}

// wrap names the operation, turning S3's not-found answers into ErrNotFound.
func (b *s3Bucket) wrap(op, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case isS3NotFound(err):
		return fmt.Errorf("%s %s/%s: %w", op, b.name, key, ErrNotFound)
	default:
		return fmt.Errorf("objstore: %s %s/%s: %w", op, b.name, key, err)
	}
}

func (b *s3Bucket) notFound(err error) error {
	if isS3NotFound(err) {
		return fmt.Errorf("bucket %s: %w", b.name, ErrNotFound)
	}
	return err
}

// isS3NotFound reports a missing bucket or key: NoSuchKey and NoSuchBucket in bodies, or a
// bare 404 from HEAD requests, which have none.
func isS3NotFound(err error) bool {
	if err == nil {
		return false
	}
	var api interface{ ErrorCode() string } // smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "NotFound":
			return true
		}
	}
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusNotFound
}
