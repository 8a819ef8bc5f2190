package cloudtrail

import (
	"encoding/json"
	"strings"
	"testing"
)

// Issue 11 §7: an S3KeyPrefix that makes no clean object key (../, an
// absolute path, a backslash, the folder backend's .opentrail-meta) was
// accepted and then failed every delivery. CreateTrail and UpdateTrail refuse
// it with InvalidS3PrefixException, naming what is wrong.
func TestS3KeyPrefixRefused(t *testing.T) {
	tests := []struct{ prefix, msg string }{
		{"../escape", `segment ".."`},
		{"logs/../../etc", `segment ".."`},
		{"./logs", `segment "."`},
		{"/abs/logs", "must not start or end with /"},
		{"/", "must not start or end with /"},
		{"logs/", "must not start or end with /"},
		{"a//b", "empty path segment"},
		{`logs\win`, `character '\\' at position 4`},
		{".opentrail-meta", `starts with ".opentrail-"`},
		{"x/.opentrail-meta/y", `starts with ".opentrail-"`},
		{".opentrail-tmp-1", `starts with ".opentrail-"`},
		{"tab\there", `character '\t' at position 3`},
		{"nul\x00", `character '\x00' at position 3`},
		{"del\x7f", `character '\x7f' at position 3`},
	}
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", `,"S3KeyPrefix":"good"`)
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			p, _ := json.Marshal(tc.prefix)
			fails(t, s, eastA, "CreateTrail", `{"Name":"other","S3BucketName":"my-bucket","S3KeyPrefix":`+string(p)+`}`,
				"InvalidS3PrefixException", tc.msg)
			fails(t, s, eastA, "UpdateTrail", `{"Name":"trail","S3KeyPrefix":`+string(p)+`}`,
				"InvalidS3PrefixException", tc.msg)
		})
	}
	// Nothing was created or changed.
	if v := ok(t, s, eastA, "ListTrails", `{}`); len(v["Trails"].([]any)) != 1 {
		t.Errorf("ListTrails = %v, want only the first trail", v["Trails"])
	}
	got := ok(t, s, eastA, "GetTrail", `{"Name":"trail"}`)["Trail"].(map[string]any)["S3KeyPrefix"]
	if got != "good" {
		t.Errorf("S3KeyPrefix after refused updates = %v, want good", got)
	}
}

func TestS3KeyPrefixAccepted(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", "")
	for _, p := range []string{"logs", "a/b/c", "org-1_x.y", "..logs", "logs..", "a/.b", "é/日本", "a b", strings.Repeat("p", 200)} {
		pj, _ := json.Marshal(p)
		ok(t, s, eastA, "UpdateTrail", `{"Name":"trail","S3KeyPrefix":`+string(pj)+`}`)
		if got := ok(t, s, eastA, "GetTrail", `{"Name":"trail"}`)["Trail"].(map[string]any)["S3KeyPrefix"]; got != p {
			t.Errorf("S3KeyPrefix = %v, want %q", got, p)
		}
	}
}
