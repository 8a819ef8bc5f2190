package proxy

import (
	"regexp"
	"strings"
)

// serviceSpec is what the proxy knows about one AWS service. It is data, not
// code: supporting a new operation of a known service needs no change at all,
// and supporting a new service is one more entry in services.
//
// Paths name request members: "TableName" is a top-level member, "a.b" a
// member b of the object a, "*" any member of an object, "**" any depth.
// Arrays are transparent: "TransactItems.Put.Item" matches the Item of every
// element of TransactItems.
type serviceSpec struct {
	// Source is the eventSource; empty means <service>.amazonaws.com.
	Source string
	// Data lists the data-plane operations (exact names or "Prefix*"); every
	// other operation is a management event.
	Data []string
	// ReadOnly lists read-only operations (exact names or "Prefix*"); when
	// empty, defaultReadOnly applies.
	ReadOnly []string
	// Verbatim paths hold data (attribute names and values): nothing under
	// them is lower-camel-cased. VerbatimKeys paths are maps whose member names
	// are data (table names) but whose values are structures again.
	Verbatim     []string
	VerbatimKeys []string
	// RedactEach paths are containers whose members or elements are values:
	// each is redacted, the member names are kept.
	RedactEach []string
	// RedactWhole paths are values redacted as a whole.
	RedactWhole []string
	// Items are item maps: attribute name → value. Key attributes of the item's
	// table (when its key schema is known) are kept, the others redacted.
	Items []string
	// TableMember names the member that sets the table of items below it;
	// TableMaps are maps whose member names are tables.
	TableMember string
	TableMaps   []string
	// Resources derive the resources list.
	Resources []resourceRule
	// Schema tells where responses describe a table's key schema.
	Schema *schemaRule
	// REST names the route table for REST protocols (see restRoutes).
	REST string
	// NoBody: request bodies are payload (object contents), never parameters.
	NoBody bool
	// Redact all leaf values not otherwise kept (for services whose members are
	// not classified); names are kept.
	RedactAll bool
}

// resourceRule derives resources of one type. From is a path whose string
// values (or, ending in ".*", member names) fill {value} in ARN; with Regexp,
// the first capture group of its match against each value does. Placeholders
// {region}, {account}, {bucket}, {key} come from the call.
type resourceRule struct {
	Type   string
	ARN    string
	From   string
	Regexp *regexp.Regexp
	// ObjectOnly / BucketOnly restrict REST rules to calls on an object, or on a bucket.
	ObjectOnly bool
	BucketOnly bool
}

// schemaRule: responses of Ops carry, under one of Under, TableName and a
// KeySchema list of {AttributeName, KeyType}.
type schemaRule struct {
	Ops   []string
	Under []string
}

// defaultReadOnly are the operation-name prefixes AWS uses for reads.
var defaultReadOnly = []string{"Get*", "Describe*", "List*", "Head*", "Query", "Scan", "BatchGet*", "TransactGet*", "Select*", "Search*", "Lookup*", "Check*", "Test*", "Verify*"}

// services is the per-service table, keyed by the SigV4 signing name.
var services = map[string]*serviceSpec{
	"dynamodb": {
		Data: []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
			"BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems",
			"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"},
		ReadOnly:     []string{"Get*", "Describe*", "List*", "Query", "Scan", "BatchGet*", "TransactGet*"},
		VerbatimKeys: []string{"RequestItems", "Responses", "UnprocessedItems", "UnprocessedKeys"},
		Verbatim: []string{"**.Key", "**.Keys", "**.ExclusiveStartKey", "**.ExpressionAttributeNames",
			"**.Item", "**.Items", "**.Attributes", "**.LastEvaluatedKey", "**.ExpressionAttributeValues", "**.KeyConditions",
			"**.Expected", "**.AttributeUpdates", "**.QueryFilter", "**.ScanFilter", "**.Parameters"},
		RedactEach: []string{"**.ExpressionAttributeValues", "**.Parameters",
			"**.Expected.*.AttributeValueList", "**.QueryFilter.*.AttributeValueList",
			"**.ScanFilter.*.AttributeValueList"},
		RedactWhole: []string{"**.Expected.*.Value", "**.AttributeUpdates.*.Value"},
		Items:       []string{"**.Item", "**.Items", "**.Attributes", "Responses.*"},
		TableMember: "TableName",
		TableMaps:   []string{"RequestItems", "Responses", "UnprocessedItems"},
		Resources: []resourceRule{
			{Type: "AWS::DynamoDB::Table", ARN: "arn:aws:dynamodb:{region}:{account}:table/{value}", From: "**.TableName"},
			{Type: "AWS::DynamoDB::Table", ARN: "arn:aws:dynamodb:{region}:{account}:table/{value}", From: "RequestItems.*"},
			{Type: "AWS::DynamoDB::Table", ARN: "arn:aws:dynamodb:{region}:{account}:table/{value}", From: "**.Statement",
				Regexp: regexp.MustCompile(`(?i)\b(?:from|into|update)\s+"?([A-Za-z0-9_.-]{3,255})`)},
			{Type: "AWS::DynamoDB::Table", ARN: "{value}", From: "ResourceArn"},
		},
		Schema: &schemaRule{Ops: []string{"CreateTable", "DescribeTable", "UpdateTable"}, Under: []string{"TableDescription", "Table"}},
	},
	"s3": {
		Data: []string{"GetObject*", "PutObject*", "DeleteObject*", "HeadObject", "CopyObject", "RestoreObject",
			"SelectObjectContent", "CreateMultipartUpload", "UploadPart*", "CompleteMultipartUpload",
			"AbortMultipartUpload", "ListParts", "ListObjects", "ListObjectsV2", "ListObjectVersions",
			"ListMultipartUploads"},
		ReadOnly: []string{"Get*", "Head*", "List*", "SelectObjectContent"},
		Resources: []resourceRule{
			{Type: "AWS::S3::Object", ARN: "arn:aws:s3:::{bucket}/{key}", ObjectOnly: true},
			{Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::{bucket}", BucketOnly: true},
		},
		REST:   "s3",
		NoBody: true,
	},
	"secretsmanager": {
		RedactWhole: []string{"SecretString", "SecretBinary"},
		Resources: []resourceRule{{Type: "AWS::SecretsManager::Secret", ARN: "{value}", From: "SecretId",
			Regexp: regexp.MustCompile(`^(arn:.*)$`)}},
	},
	"kms": {
		RedactWhole: []string{"Plaintext", "CiphertextBlob", "EncryptionContext", "Message", "Signature"},
		Data:        nil,
	},
	"sqs": {
		Data:        []string{"SendMessage*", "ReceiveMessage", "DeleteMessage*", "ChangeMessageVisibility*"},
		RedactWhole: []string{"MessageBody", "**.MessageBody", "**.MessageAttributes", "MessageAttributes"},
	},
	"sns": {
		Data:        []string{"Publish*"},
		RedactWhole: []string{"Message", "**.Message", "Subject", "MessageAttributes", "**.MessageAttributes"},
	},
	"sts": {
		Source:   "sts.amazonaws.com",
		ReadOnly: []string{"Get*", "Decode*"},
	},
	"execute-api": {Source: "execute-api.amazonaws.com", RedactAll: true},
}

// specFor returns the table entry for a signing name; services not in the
// table get a conservative entry that keeps member names and redacts every value.
func specFor(service string) *serviceSpec {
	if s, ok := services[service]; ok {
		return s
	}
	return &serviceSpec{RedactAll: true}
}

func (s *serviceSpec) source(service string) string {
	if s.Source != "" {
		return s.Source
	}
	if service == "" {
		return "unknown.amazonaws.com"
	}
	return service + ".amazonaws.com"
}

func (s *serviceSpec) isData(op string) bool { return matchAny(s.Data, op) }

func (s *serviceSpec) readOnly(op string) bool {
	if len(s.ReadOnly) == 0 {
		return matchAny(defaultReadOnly, op)
	}
	return matchAny(s.ReadOnly, op)
}

// matchAny reports whether name equals one of pats or starts with one ending in "*".
func matchAny(pats []string, name string) bool {
	for _, p := range pats {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, pre) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// pathMatch reports whether the member path (names only, arrays elided) matches pattern.
func pathMatch(pattern []string, path []string) bool {
	if len(pattern) == 0 {
		return len(path) == 0
	}
	switch pattern[0] {
	case "**":
		for i := 0; i <= len(path); i++ {
			if pathMatch(pattern[1:], path[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(path) > 0 && pathMatch(pattern[1:], path[1:])
	}
	return len(path) > 0 && path[0] == pattern[0] && pathMatch(pattern[1:], path[1:])
}

// compiledSpec holds a spec's paths split once.
type compiledSpec struct {
	*serviceSpec
	verbatim, verbatimKeys, each, whole, items [][]string
}

func compile(s *serviceSpec) *compiledSpec {
	split := func(ps []string) [][]string {
		out := make([][]string, len(ps))
		for i, p := range ps {
			out[i] = strings.Split(p, ".")
		}
		return out
	}
	return &compiledSpec{serviceSpec: s, verbatim: split(s.Verbatim), verbatimKeys: split(s.VerbatimKeys), each: split(s.RedactEach),
		whole: split(s.RedactWhole), items: split(s.Items)}
}

func anyPath(pats [][]string, path []string) bool {
	for _, p := range pats {
		if pathMatch(p, path) {
			return true
		}
	}
	return false
}
