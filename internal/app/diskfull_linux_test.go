package app

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/awsapi"
)

// smallDisk mounts a tmpfs of sizeMiB for the test; without the right to
// mount the test is skipped, unless OPENTRAIL_REQUIRE_SERVERS=1 (CI).
func smallDisk(t *testing.T, sizeMiB int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", sizeMiB)); err != nil {
		if os.Getenv("OPENTRAIL_REQUIRE_SERVERS") == "1" {
			t.Fatalf("cannot mount a tmpfs for the disk-full test (OPENTRAIL_REQUIRE_SERVERS=1): %v", err)
		}
		t.Skipf("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file that leaves about leaveMiB free on the disk of dir.
func fill(t *testing.T, dir string, leaveMiB int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Bavail)*st.Bsize - leaveMiB<<20
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for ; size > 0; size -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), size)]); err != nil {
			break // the disk is full: as intended
		}
	}
	return path
}

// TestDiskFull: on a disk short of space, ingest answers 503
// ServiceUnavailableException (AWS SDKs retry it) while reads work, and
// ingest comes back by itself once space is freed; a restart on a full disk
// neither panics nor hangs (issue 11 §6: the server panicked, and on restart
// spun writing errors without ever listening).
func TestDiskFull(t *testing.T) {
	dir := filepath.Join(smallDisk(t, 128), "data")
	open := func() *App {
		t.Helper()
		done := make(chan struct{})
		var a *App
		var err error
		go func() {
			defer close(done)
			a, err = Open(context.Background(), Config{DataDir: dir, RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 8, DiskReserveMiB: 32, DiskBallastMiB: 16}, discard())
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			buf := make([]byte, 1<<22)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			t.Fatal("Open hangs")
		}
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open()
	root, _, _ := a.Keys.Root()
	ingest := func() error {
		rec := fmt.Appendf(nil, `{"eventTime":%q,"eventName":"PutObject","eventSource":"s3.amazonaws.com"}`, time.Now().UTC().Format(time.RFC3339))
		_, err := a.Handler.IngestRecords(context.Background(), root, "us-east-1", [][]byte{rec})
		return err
	}
	unavailable := func(err error) bool {
		var ae *awsapi.Error
		return errors.As(err, &ae) && ae.Code == "ServiceUnavailableException" && ae.Status == 503
	}
	if err := ingest(); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, dir, 16) // under the 32 MiB reserve, over its quarter
	if err := ingest(); !unavailable(err) {
		t.Fatalf("ingest on a nearly full disk: %v, want 503 ServiceUnavailableException", err)
	}
	ts := httptest.NewServer(a.Handler)
	ct := cloudtrail.New(cloudtrail.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, "")})
	if _, err := ct.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{}); err != nil {
		t.Fatalf("a read on a nearly full disk: %v", err)
	}
	ts.Close()
	os.Remove(filler)
	if err := ingest(); err != nil {
		t.Fatalf("ingest once space is back: %v", err)
	}
	a.Close()

	// A restart on a disk with nothing left: the ballast makes room for the
	// database to open (what it frees by flushing its log may let the disk
	// breathe again: fill it once more), then records are refused until space is back.
	filler = fill(t, dir, 0)
	a = open()
	if _, err := os.Stat(filepath.Join(dir, ballastName)); err == nil {
		t.Fatal("the ballast is still there")
	}
	filler2 := fill(t, dir, 8)
	if err := ingest(); !unavailable(err) {
		t.Fatalf("ingest after a restart on a full disk: %v", err)
	}
	os.Remove(filler)
	os.Remove(filler2)
	if err := ingest(); err != nil {
		t.Fatalf("ingest once space is back after the restart: %v", err)
	}
	a.Close()
}
