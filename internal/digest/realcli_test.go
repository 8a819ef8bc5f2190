package digest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/objstore/s3test"
)

// TestRealCLI runs the installed "aws cloudtrail validate-logs" itself, end to end: the
// scenarios' files go to a real S3-compatible server (versitygw), which the CLI reads
// through AWS_ENDPOINT_URL_S3, and a stand-in CloudTrail endpoint answers its
// ListPublicKeys from the key ring as the server will. Its output and exit status must
// be ours, produced by Validate over the same S3 bucket.
func TestRealCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the AWS CLI and versitygw")
	}
	cli, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	endpoint, ak, sk := s3test.Start(t)
	store, err := objstore.NewS3(t.Context(), objstore.S3Config{Endpoint: endpoint, Region: s3test.Region,
		AccessKeyID: ak, SecretAccessKey: sk, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, sc := range scenarios {
		if sc.stricter {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			ctx := t.Context()
			tr := newTrail(t, sc.prefix, sc.period)
			tr.bucket = newMemBucket(fmt.Sprintf("trail-bucket-%d", i))
			start, end := sc.build(tr)
			if err := store.CreateBucket(ctx, tr.bucket.Name()); err != nil {
				t.Fatal(err)
			}
			b, err := store.Bucket(ctx, tr.bucket.Name())
			if err != nil {
				t.Fatal(err)
			}
			for k, o := range tr.bucket.objs {
				if err := b.Put(ctx, k, o.body, o.meta); err != nil {
					t.Fatal(err)
				}
			}
			ct := httptest.NewServer(listPublicKeysHandler(t, tr.ring))
			defer ct.Close()

			args := []string{"cloudtrail", "validate-logs", "--trail-arn", testARN, "--s3-bucket", b.Name(), "--verbose",
				"--start-time", start.Format(time.RFC3339), "--end-time", end.Format(time.RFC3339),
				"--region", tr.region, "--endpoint-url", ct.URL}
			if tr.prefix != "" {
				args = append(args, "--s3-prefix", tr.prefix)
			}
			cmd := exec.Command(cli, args...)
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "AWS_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "AWS_ENDPOINT_URL_S3="+endpoint, "AWS_ACCESS_KEY_ID="+ak, "AWS_SECRET_ACCESS_KEY="+sk,
				"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			rc := 0
			if err := cmd.Run(); err != nil {
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatal(err)
				}
				rc = exit.ExitCode()
			}

			o := tr.options(start, end)
			o.Bucket = b
			rep, err := Validate(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			rep.Print(&out, &errOut)
			if stdout.String() != out.String() || stderr.String() != errOut.String() {
				t.Errorf("aws exit %d\nstdout:\n%s\nstderr:\n%s\nours:\nstdout:\n%s\nstderr:\n%s", rc, &stdout, &stderr, &out, &errOut)
			}
			// Not only the same as ours: what the scenario expects, so that a flaw shared by
			// both sides (say, keys the CLI cannot load) cannot pass.
			if want := sc.wantRC(); rc != want {
				t.Errorf("aws exit status %d, want %d\nstderr:\n%s", rc, want, &stderr)
			}
			if !strings.Contains(stdout.String(), sc.wantSummary()) {
				t.Errorf("aws stdout lacks %q:\n%s", sc.wantSummary(), &stdout)
			}
		})
	}
}

// listPublicKeysHandler answers CloudTrail's ListPublicKeys (JSON 1.1) from ring, as the
// server will: Value is a blob, so base64 of the DER on the wire.
func listPublicKeysHandler(t *testing.T, ring *KeyRing) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if !strings.HasSuffix(target, ".ListPublicKeys") {
			t.Errorf("unexpected call %s", target)
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		var in struct{ StartTime, EndTime float64 }
		json.NewDecoder(r.Body).Decode(&in)
		at := func(f float64) time.Time { return time.Unix(0, int64(f*1e9)).UTC() }
		type key struct {
			Value                              []byte
			ValidityStartTime, ValidityEndTime float64
			Fingerprint                        string
		}
		var out struct{ PublicKeyList []key }
		// The region would come from the request's signature; every scenario is in testHome.
		for _, pk := range ring.PublicKeys(testHome, at(in.StartTime), at(in.EndTime)) {
			out.PublicKeyList = append(out.PublicKeyList, key{pk.Value, float64(pk.ValidityStartTime.Unix()), float64(pk.ValidityEndTime.Unix()), pk.Fingerprint})
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(&out)
	})
}
