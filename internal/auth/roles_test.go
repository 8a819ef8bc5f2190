package auth

import "testing"

func TestAllowed(t *testing.T) {
	tests := []struct {
		role, action string
		readOnly     bool
		want         bool
	}{
		{RoleRoot, "cloudtrail:CreateTrail", false, true},
		{RoleRoot, "iam:CreateAccessKey", false, true},
		{RoleAdmin, "cloudtrail:DeleteTrail", false, true},
		{RoleAdmin, "logs:PutSubscriptionFilter", false, true},
		{RoleAdmin, "cloudtrail:PutRecords", false, true},

		{RoleReader, "cloudtrail:LookupEvents", true, true},
		{RoleReader, "cloudtrail:DescribeTrails", true, true},
		{RoleReader, "cloudtrail:StartQuery", false, true},
		{RoleReader, "cloudtrail:CancelQuery", false, true},
		{RoleReader, "cloudtrail:CreateTrail", false, false},
		{RoleReader, "cloudtrail:StopLogging", false, false},
		{RoleReader, "cloudtrail:PutRecords", false, false},
		{RoleReader, "cloudtrail-data:PutAuditEvents", false, false},
		{RoleReader, "logs:FilterLogEvents", true, true},
		{RoleReader, "logs:StartLiveTail", true, true},
		{RoleReader, "logs:PutLogEvents", false, false},
		{RoleReader, "logs:ReplayDeadLetters", false, false},
		{RoleReader, "iam:CreateAccessKey", false, false},

		{RoleWriter, "cloudtrail:PutRecords", false, true},
		{RoleWriter, "cloudtrail-data:PutAuditEvents", false, true},
		{RoleWriter, "logs:PutLogEvents", false, true},
		{RoleWriter, "logs:CreateLogStream", false, true},
		{RoleWriter, "logs:CreateLogGroup", false, false},
		{RoleWriter, "logs:FilterLogEvents", true, false},
		{RoleWriter, "cloudtrail:LookupEvents", true, false},
		{RoleWriter, "logs:StartLiveTail", true, false},
		{RoleWriter, "iam:CreateAccessKey", false, false},

		// Fixed bug: a prefix of an allowed name is not the name.
		{RoleWriter, "logs:PutLog", false, false},
		{"nobody", "cloudtrail:LookupEvents", true, false},
		{RoleRoot, "no-colon", true, false},
	}
	for _, tt := range tests {
		if got := Allowed(tt.role, tt.action, tt.readOnly); got != tt.want {
			t.Errorf("Allowed(%s, %s, readOnly=%v) = %v, want %v", tt.role, tt.action, tt.readOnly, got, tt.want)
		}
	}
}
