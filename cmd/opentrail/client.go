package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// client talks to a running OpenTrail server as one access key.
type client struct {
	endpoint string
	region   string
	creds    aws.Credentials
	http     *http.Client
}

// newClient takes credentials from the OPENTRAIL_ variables (the root ones when root is true, else the
// access-key ones, falling back to root), then the AWS_ ones.
func newClient(endpoint, region string, root bool) (*client, error) {
	id := env("", "OPENTRAIL_ACCESS_KEY_ID", "OPENTRAIL_ROOT_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
	secret := env("", "OPENTRAIL_SECRET_ACCESS_KEY", "OPENTRAIL_ROOT_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
	if root {
		id = env("", "OPENTRAIL_ROOT_ACCESS_KEY_ID")
		secret = env("", "OPENTRAIL_ROOT_SECRET_ACCESS_KEY")
	}
	if id == "" || secret == "" {
		if root {
			return nil, fmt.Errorf("set OPENTRAIL_ROOT_ACCESS_KEY_ID and OPENTRAIL_ROOT_SECRET_ACCESS_KEY (printed by the server's first start)")
		}
		return nil, fmt.Errorf("set OPENTRAIL_ACCESS_KEY_ID and OPENTRAIL_SECRET_ACCESS_KEY (or the root or AWS_ equivalents)")
	}
	return &client{
		endpoint: endpoint, region: region,
		creds: aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
		http:  &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}, nil
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

// cloudTrail returns an AWS SDK CloudTrail client for the server.
func (c *client) cloudTrail() *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		BaseEndpoint: aws.String(c.endpoint),
		Region:       c.region,
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c.creds, nil }),
		HTTPClient:   c.http,
	})
}

// logs returns an AWS SDK CloudWatch Logs client for the server.
func (c *client) logs() *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		BaseEndpoint: aws.String(c.endpoint), Region: c.region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c.creds, nil }),
		HTTPClient:  c.http,
	})
}
