package main

import "testing"

func TestParseBucketOwner(t *testing.T) {
	owners := map[string]string{}
	if err := parseBucketOwner("audit-logs=222222222222", owners); err != nil || owners["audit-logs"] != "222222222222" {
		t.Fatalf("parseBucketOwner = %v, %v", err, owners)
	}
	for _, bad := range []string{"audit-logs", "audit-logs=2222", "Bad_Bucket=222222222222", "audit-logs=22222222222x", "=222222222222"} {
		if err := parseBucketOwner(bad, owners); err == nil {
			t.Errorf("parseBucketOwner(%q) accepted", bad)
		}
	}
}
