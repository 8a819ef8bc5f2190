package awsapi

import "testing"

func TestOperation(t *testing.T) {
	tests := []struct {
		name, target, prefix string
		wantOp               string
		wantOK               bool
	}{
		{"full form", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", "CloudTrail_20131101", "LookupEvents", true},
		{"short form", "CloudTrail_20131101.LookupEvents", "CloudTrail_20131101", "LookupEvents", true},
		{"logs", "Logs_20140328.PutLogEvents", "Logs_20140328", "PutLogEvents", true},
		{"wrong prefix", "Logs_20140328.PutLogEvents", "CloudTrail_20131101", "", false},
		{"prefix only as a suffix of a word", "XCloudTrail_20131101.LookupEvents", "CloudTrail_20131101", "", false},
		{"other version", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20121101.LookupEvents", "CloudTrail_20131101", "", false},
		{"no operation", "CloudTrail_20131101.", "CloudTrail_20131101", "", false},
		{"no dot", "LookupEvents", "CloudTrail_20131101", "", false},
		{"empty target", "", "CloudTrail_20131101", "", false},
		{"empty prefix", ".LookupEvents", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, ok := Operation(tt.target, tt.prefix)
			if op != tt.wantOp || ok != tt.wantOK {
				t.Errorf("Operation(%q, %q) = %q, %v; want %q, %v", tt.target, tt.prefix, op, ok, tt.wantOp, tt.wantOK)
			}
		})
	}
}
