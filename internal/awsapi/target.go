package awsapi

import "strings"

// Operation extracts the operation from an X-Amz-Target header value.
// Targets come in two forms: the full
// "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
// (boto3, AWS CLI) and the short "CloudTrail_20131101.LookupEvents"
// (aws-sdk-go-v2); likewise "Logs_20140328.<Op>". prefix is the short service
// prefix ("CloudTrail_20131101"); the text before the last dot must equal
// prefix or end with "."+prefix.
func Operation(target, prefix string) (op string, ok bool) {
	i := strings.LastIndexByte(target, '.')
	if i < 0 || prefix == "" {
		return "", false
	}
	service, op := target[:i], target[i+1:]
	if op == "" || (service != prefix && !strings.HasSuffix(service, "."+prefix)) {
		return "", false
	}
	return op, true
}
