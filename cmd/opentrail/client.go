package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/opentrail/opentrail/internal/ingest"
	"github.com/opentrail/opentrail/internal/objstore"
)

// defaultEndpoint is where a client looks for the server when nothing names it.
const defaultEndpoint = "http://127.0.0.1:4590"

// client talks to a running OpenTrail server as one access key.
type client struct {
	endpoint string
	region   string
	creds    aws.Credentials
	http     *http.Client
}

// clientFlags are the flags every command that talks to a server has.
type clientFlags struct {
	endpoint, region *string
}

// addClientFlags defines --endpoint and --region on fs. Both fall back to the AWS SDK's
// configuration (environment, AWS_PROFILE, shared files), as the AWS CLI does.
func addClientFlags(fs *flagSet, regionUsage string) clientFlags {
	c := clientFlags{
		endpoint: fs.String("endpoint", "", "URL of the OpenTrail server"),
		region:   fs.String("region", "", regionUsage),
	}
	fs.envVar("endpoint", "OPENTRAIL_ENDPOINT")
	fs.fallback("endpoint", "$AWS_ENDPOINT_URL_CLOUDTRAIL, $AWS_ENDPOINT_URL or the profile's endpoint_url; else "+defaultEndpoint)
	fs.envVar("region", "OPENTRAIL_REGION")
	fs.fallback("region", "$AWS_REGION, $AWS_DEFAULT_REGION or the profile's region; else us-east-1")
	return c
}

// connect loads the client's configuration: the flags and OPENTRAIL_ variables first, then the
// AWS SDK's default chain. With root, only the root key's OPENTRAIL_ variables or the AWS chain
// are used (not OPENTRAIL_ACCESS_KEY_ID).
func (f clientFlags) connect(ctx context.Context, root bool) (*client, error) {
	return newClient(ctx, *f.endpoint, *f.region, root)
}

// newClient resolves endpoint, region and credentials: the arguments and OPENTRAIL_ variables
// win; what they leave empty comes from the AWS SDK's default configuration (AWS_PROFILE,
// ~/.aws/config and credentials, AWS_REGION, AWS_ENDPOINT_URL[_CLOUDTRAIL], AWS_ACCESS_KEY_ID...).
func newClient(ctx context.Context, endpoint, region string, root bool) (*client, error) {
	id := env("", "OPENTRAIL_ACCESS_KEY_ID", "OPENTRAIL_ROOT_ACCESS_KEY_ID")
	secret := env("", "OPENTRAIL_SECRET_ACCESS_KEY", "OPENTRAIL_ROOT_SECRET_ACCESS_KEY")
	if root {
		id, secret = env("", "OPENTRAIL_ROOT_ACCESS_KEY_ID"), env("", "OPENTRAIL_ROOT_SECRET_ACCESS_KEY")
	}
	opts := []func(*config.LoadOptions) error{
		// OpenTrail keys are never an EC2 instance's role: do not wait for a metadata service.
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if id != "" && secret != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if endpoint == "" {
		// The CloudTrail client resolves AWS_ENDPOINT_URL_CLOUDTRAIL, the services section of
		// the profile, AWS_ENDPOINT_URL and endpoint_url, in the SDK's order.
		endpoint = aws.ToString(cloudtrail.NewFromConfig(cfg).Options().BaseEndpoint)
	}
	if endpoint == "" {
		endpoint = defaultEndpoint
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil || creds.AccessKeyID == "" {
		if root {
			return nil, errors.New("no credentials: set OPENTRAIL_ROOT_ACCESS_KEY_ID and OPENTRAIL_ROOT_SECRET_ACCESS_KEY (printed by the server's first start), " +
				"or an admin key through AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
		}
		return nil, errors.New("no credentials: set OPENTRAIL_ACCESS_KEY_ID and OPENTRAIL_SECRET_ACCESS_KEY, " +
			"or use AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	}
	endpoint = strings.TrimRight(endpoint, "/")
	return &client{
		endpoint: endpoint, region: cfg.Region, creds: creds,
		http: &http.Client{Timeout: 60 * time.Second, Transport: refusedHint{&http.Transport{MaxIdleConnsPerHost: 64}, endpoint}},
	}, nil
}

// refusedHint names the endpoint a refused connection was for: the server may not be running
// there. It wraps every transport error the client's requests (raw or SDK) meet.
type refusedHint struct {
	next     http.RoundTripper
	endpoint string
}

func (t refusedHint) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
		err = fmt.Errorf("%w (no OpenTrail server is running at %s? start one with \"opentrail serve\", "+
			"or point --endpoint, OPENTRAIL_ENDPOINT or AWS_ENDPOINT_URL at it)", err, t.endpoint)
	}
	return resp, err
}

// post sends a SigV4-signed JSON POST to path and decodes a 200 answer into out.
func (c *client) post(ctx context.Context, path string, body []byte, out any) error {
	resp, err := c.open(ctx, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// open sends a SigV4-signed JSON POST to path and returns a 200 answer with its body unread.
func (c *client) open(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, c.creds, req, hex.EncodeToString(sum[:]), "cloudtrail", c.region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(b, &e)
		return nil, fmt.Errorf("%s: %s (HTTP %d)", e.Type, e.Message, resp.StatusCode)
	}
	return resp, nil
}

// credentials provides the credentials the client resolved.
func (c *client) credentials() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c.creds, nil })
}

// cloudTrail returns an AWS SDK CloudTrail client for the server.
func (c *client) cloudTrail() *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		BaseEndpoint: aws.String(c.endpoint), Region: c.region, Credentials: c.credentials(),
		HTTPClient: c.http, Retryer: newRetryer(),
	})
}

// logs returns an AWS SDK CloudWatch Logs client for the server.
func (c *client) logs() *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		BaseEndpoint: aws.String(c.endpoint), Region: c.region, Credentials: c.credentials(),
		HTTPClient: c.http, Retryer: newRetryer(),
	})
}

// records returns the server's POST /v1/records client, sending each request
// up to retries more times while its error may heal (ingest.Retryable).
func (c *client) records(retries int) *ingest.Client {
	return &ingest.Client{Endpoint: c.endpoint, Region: c.region, Credentials: c.credentials(), HTTP: c.http, Retries: retries}
}

// newRetryer is the SDK's standard retryer, except that a refused connection is not retried:
// no server listens there, and the user should hear so at once.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, o.Retryables...)
	})
}

// s3Flags are the flags of commands that read or write an S3-compatible service.
type s3Flags struct {
	endpoint, region *string
	pathStyle        *bool
}

// addS3Flags defines --s3-endpoint, --s3-region and --s3-path-style; what precedes names when
// they apply. Credentials: OPENTRAIL_S3_ACCESS_KEY_ID/OPENTRAIL_S3_SECRET_ACCESS_KEY, else the
// AWS SDK's chain.
func addS3Flags(fs *flagSet, when string) s3Flags {
	f := s3Flags{
		endpoint:  fs.String("s3-endpoint", "", when+"URL of the S3-compatible service (credentials: $OPENTRAIL_S3_ACCESS_KEY_ID and $OPENTRAIL_S3_SECRET_ACCESS_KEY, else the AWS SDK's chain)"),
		region:    fs.String("s3-region", "", "region of the S3 service"),
		pathStyle: fs.Bool("s3-path-style", true, "address buckets as ENDPOINT/BUCKET (most S3-compatible services; AWS accepts it too) rather than BUCKET.ENDPOINT"),
	}
	fs.envVar("s3-endpoint", "OPENTRAIL_S3_ENDPOINT")
	fs.fallback("s3-endpoint", "$AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL or the profile's; else AWS S3")
	fs.envVar("s3-region", "OPENTRAIL_S3_REGION")
	fs.fallback("s3-region", "$AWS_REGION, $AWS_DEFAULT_REGION or the profile's region; else us-east-1")
	return f
}

// config is the S3 configuration the flags and OPENTRAIL_S3_ variables give.
func (f s3Flags) config() objstore.S3Config {
	return objstore.S3Config{Endpoint: *f.endpoint, Region: *f.region, PathStyle: *f.pathStyle,
		AccessKeyID: os.Getenv("OPENTRAIL_S3_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("OPENTRAIL_S3_SECRET_ACCESS_KEY")}
}

func (f s3Flags) open(ctx context.Context) (*objstore.S3, error) { return openS3(ctx, f.config()) }

// storeFor is the S3 store an archive path of the form s3://bucket/prefix
// is read from, and nil for a local folder.
func (f s3Flags) storeFor(ctx context.Context, path string) (objstore.Store, error) {
	if !strings.HasPrefix(path, "s3://") {
		return nil, nil
	}
	return f.open(ctx)
}

func openS3(ctx context.Context, c objstore.S3Config) (*objstore.S3, error) {
	s3, err := objstore.NewS3(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("--s3-endpoint: %w", err)
	}
	return s3, nil
}
