package objstore

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestValidBucketName(t *testing.T) {
	valid := []string{"abc", "my-trail-bucket", "audit.logs.2024", "123", "a-b.c-d", strings.Repeat("a", 63), "xn-a"}
	for _, name := range valid {
		if err := ValidBucketName(name); err != nil {
			t.Errorf("ValidBucketName(%q) = %v, want nil", name, err)
		}
	}
	invalid := []struct{ name, why string }{
		{"", "3 to 63"},
		{"ab", "3 to 63"},
		{strings.Repeat("a", 64), "3 to 63"},
		{"Abc", `'A'`},
		{"a_b", `'_'`},
		{"a b", `' '`},
		{"-abc", "begin and end"},
		{"abc-", "begin and end"},
		{".abc", "begin and end"},
		{"abc.", "begin and end"},
		{"a..b", "adjacent periods"},
		{"192.168.5.4", "IP address"},
		{"xn--abc", `"xn--"`},
		{"sthree-abc", `"sthree-"`},
		{"amzn-s3-demo-abc", `"amzn-s3-demo-"`},
		{"abc-s3alias", `"-s3alias"`},
		{"abc--ol-s3", `"--ol-s3"`},
		{"abc.mrap", `".mrap"`},
		{"abc--x-s3", `"--x-s3"`},
		{"abc--table-s3", `"--table-s3"`},
	}
	for _, tt := range invalid {
		err := ValidBucketName(tt.name)
		if err == nil {
			t.Errorf("ValidBucketName(%q) = nil, want an error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) || !strings.HasPrefix(err.Error(), "objstore: ") {
			t.Errorf("ValidBucketName(%q) = %q, want a message naming %s", tt.name, err, tt.why)
		}
	}
}

var keyTests = []struct {
	key string
	ok  bool
}{
	{"a", true},
	{"a/b/c.json.gz", true},
	{"AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_us-east-1_20240102T0305Z_AbCdEfGhIjKlMnOp.json.gz", true},
	{"a..b/.c/d.", true},
	{"", false},
	{"/abs", false},
	{"a//b", false},
	{"a/", false},
	{"./a", false},
	{"a/./b", false},
	{"..", false},
	{"../escape", false},
	{"a/../../escape", false},
	{"a/..", false},
	{"a\x00b", false},
	{`a\..\..\b`, false},
	{"\xff", false},
	{".opentrail-meta/a", false},
	{"a/.opentrail-tmp-1", false},
	{strings.Repeat("a/", 512) + "a", false},
}

func TestCheckKey(t *testing.T) {
	for _, tt := range keyTests {
		err := checkKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("checkKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "objstore: invalid key") {
			t.Errorf("checkKey(%q) = %q, want an \"objstore: invalid key\" message", tt.key, err)
		}
	}
}

// FuzzCheckKey checks that a key checkKey accepts stays inside its bucket's folder and out of
// the names FS keeps for itself.
func FuzzCheckKey(f *testing.F) {
	for _, tt := range keyTests {
		f.Add(tt.key)
	}
	bucket := filepath.FromSlash("/root/bucket")
	f.Fuzz(func(t *testing.T, key string) {
		if checkKey(key) != nil {
			return
		}
		p := filepath.Join(bucket, filepath.FromSlash(key))
		rel, err := filepath.Rel(bucket, p)
		if err != nil || filepath.ToSlash(rel) != key {
			t.Fatalf("key %q maps to %s, not to itself under the bucket", key, p)
		}
		if strings.HasPrefix(rel, fsReserved) || strings.Contains(rel, string(filepath.Separator)+fsReserved) {
			t.Fatalf("key %q reaches a reserved name: %s", key, rel)
		}
	})
}
