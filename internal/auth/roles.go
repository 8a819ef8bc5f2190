package auth

import "strings"

// Action names one call as IAM does: "<service>:<Operation>", e.g.
// "cloudtrail:CreateTrail", "logs:PutLogEvents", "cloudtrail-data:PutAuditEvents".
// OpenTrail's own endpoints use the service they are signed for
// ("cloudtrail:PutRecords" for POST /v1/records, "iam:CreateAccessKey" for keys).

// grant is one row of the role table: a role may call the actions of service
// that are read-only (ops "read"), all of them (ops "*"), or the named ones.
type grant struct {
	service string // "*" = every service
	ops     string // "*", "read", or a comma-separated list of operations
}

// roleTable is the one place that says which role may call what. Account
// scoping (admins and readers act only in their own account, root in any) is
// the services' business: every call carries the caller's account.
var roleTable = map[string][]grant{
	RoleRoot:  {{"*", "*"}},
	RoleAdmin: {{"*", "*"}},
	RoleReader: {
		{"cloudtrail", "read"},
		// Lake queries change nothing but are not named like reads: an auditor may run and cancel them.
		{"cloudtrail", "StartQuery,CancelQuery"},
		{"logs", "read"},
		{"logs", "StartLiveTail"},
		{"opentrail", "read"},
	},
	RoleWriter: {
		{"cloudtrail", "PutRecords"},
		{"cloudtrail-data", "PutAuditEvents"},
		{"logs", "PutLogEvents,CreateLogStream"},
	},
}

// Allowed reports whether role may call action ("service:Operation"); readOnly
// says whether the operation only reads.
func Allowed(role, action string, readOnly bool) bool {
	service, op, ok := strings.Cut(action, ":")
	if !ok {
		return false
	}
	for _, g := range roleTable[role] {
		if g.service != "*" && g.service != service {
			continue
		}
		switch g.ops {
		case "*":
			return true
		case "read":
			if readOnly {
				return true
			}
		default:
			for _, o := range strings.Split(g.ops, ",") {
				if o == op {
					return true
				}
			}
		}
	}
	return false
}
