// Package s3test starts a real S3-compatible server for tests: versitygw
// (https://github.com/versity/versitygw) with its posix backend on a temporary folder.
// Tests of any package that writes to buckets use it through NewStore, so they exercise the
// S3 backend against a server and not a fake.
//
// The versitygw binary is looked up in PATH, then where go install puts it ($(go env GOBIN),
// $(go env GOPATH)/bin); without it the test is skipped. .ci/run installs it.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/objstore"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// Region is the region the server answers in.
const Region = "us-east-1"

// Start runs versitygw on a free loopback port until the test ends and returns its endpoint
// ("http://127.0.0.1:PORT") and root credentials.
func Start(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	bin := binary(t)
	accessKey, secretKey = "AKIAOPENTRAILTEST000", randomHex(20) // shaped like an AWS key, so OpenTrail accepts it too

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken before we bind it
		endpoint, lastErr = start(t, bin, accessKey, secretKey)
		if lastErr == nil {
			return endpoint, accessKey, secretKey
		}
	}
	t.Fatalf("s3test: start versitygw: %v", lastErr)
	return "", "", ""
}

// NewStore starts versitygw (see Start) and returns an S3 store on it.
func NewStore(t testing.TB) objstore.Store {
	t.Helper()
	endpoint, ak, sk := Start(t)
	s, err := objstore.NewS3(context.Background(), objstore.S3Config{
		Endpoint: endpoint, Region: Region, AccessKeyID: ak, SecretAccessKey: sk, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	binOnce sync.Once
	binPath string
)

// binary finds versitygw or skips the test.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p, err := exec.LookPath("versitygw"); err == nil {
			binPath = p
			return
		}
		// Where go install puts it: GOBIN, else the first GOPATH entry's bin.
		out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
		if err != nil {
			return
		}
		lines := strings.Split(string(out), "\n")
		if len(lines) < 2 {
			return
		}
		dirs := []string{lines[0]}
		for _, p := range filepath.SplitList(lines[1]) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
		for _, dir := range dirs {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, "versitygw")
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				binPath = p
				return
			}
		}
	})
	if binPath == "" {
		t.Skip("s3test: versitygw not found in PATH, $(go env GOBIN) or $(go env GOPATH)/bin; install it with " +
			"go install github.com/versity/versitygw/cmd/versitygw@" + Version)
	}
	return binPath
}

func start(t testing.TB, bin, accessKey, secretKey string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	data, sidecar := t.TempDir(), t.TempDir()
	// Only our server answers 200 on this path: another one that took the port would not.
	health := "/opentrail-health-" + randomHex(8)
	var out bytes.Buffer
	cmd := exec.Command(bin,
		"--port", addr,
		"--health", health,
		"--access", accessKey,
		"--secret", secretKey,
		"--region", Region,
		"--quiet",
		// Metadata in a sidecar folder rather than extended attributes, which not every
		// temporary file system supports.
		"posix", "--sidecar", sidecar, data)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}

	endpoint := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("versitygw exited: %v\n%s", waitErr, out.String())
		default:
		}
		if resp, err := client.Get(endpoint + health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("versitygw did not answer on %s within 30s\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(stop)
	return endpoint, nil
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
