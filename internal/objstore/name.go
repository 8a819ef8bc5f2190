package objstore

import (
	"fmt"
	"net/netip"
	"strings"
)

// ValidBucketName reports why name is not a valid S3 bucket name (general purpose buckets:
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html), or nil.
// Both backends refuse other names, so a trail that works on one works on the other.
func ValidBucketName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("objstore: invalid bucket name %q: %s", name, why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLowerAlnum(c) && c != '.' && c != '-' {
			return bad(fmt.Sprintf("character %q at %d is not a lower-case letter, digit, '.' or '-'", c, i))
		}
	}
	if !isLowerAlnum(name[0]) || !isLowerAlnum(name[len(name)-1]) {
		return bad("must begin and end with a lower-case letter or digit")
	}
	if strings.Contains(name, "..") {
		return bad("must not contain two adjacent periods")
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return bad("must not be formatted as an IP address")
	}
	for _, p := range reservedBucketPrefixes {
		if strings.HasPrefix(name, p) {
			return bad(fmt.Sprintf("must not begin with %q", p))
		}
	}
	for _, s := range reservedBucketSuffixes {
		if strings.HasSuffix(name, s) {
			return bad(fmt.Sprintf("must not end with %q", s))
		}
	}
	return nil
}

// Prefixes and suffixes S3 reserves for its own kinds of bucket and access point alias.
var (
	reservedBucketPrefixes = []string{"xn--", "sthree-", "amzn-s3-demo-"}
	reservedBucketSuffixes = []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}
)

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// lowerMeta copies user metadata with lower-case names, as S3 returns them.
func lowerMeta(meta map[string]string) map[string]string {
	out := make(map[string]string, len(meta))
	for k, v := range meta {
		out[strings.ToLower(k)] = v
	}
	return out
}
