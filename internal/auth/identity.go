package auth

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Identity is the userIdentity block of a CloudTrail record, members in the
// order CloudTrail writes them.
type Identity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
}

// Identity is the userIdentity of the key's owner, as AWS writes it: Root, or
// an IAMUser with a stable principal ID shaped like AWS's (AIDA…).
//
// ---- Part of stored records: the principal ID scheme never changes. ----
func (k Key) Identity() Identity {
	if k.Role == RoleRoot {
		return Identity{Type: "Root", PrincipalID: k.Account, ARN: k.ARN(), AccountID: k.Account, AccessKeyID: k.AccessKeyID}
	}
	sum := sha256.Sum256([]byte(k.Account + "/" + k.User))
	return Identity{Type: "IAMUser", PrincipalID: "AIDA" + strings.ToUpper(base32.StdEncoding.EncodeToString(sum[:])[:17]),
		ARN: k.ARN(), AccountID: k.Account, AccessKeyID: k.AccessKeyID, UserName: k.User}
}
