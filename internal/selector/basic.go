package selector

import (
	"fmt"
	"regexp"
)

// Limits on basic selectors ("Quotas in AWS CloudTrail").
const (
	MaxBasicSelectors = 5
	MaxDataResources  = 250
)

// excludableSources are the only values ExcludeManagementEventSources accepts
// (EventSelector in the CloudTrail API Reference).
var excludableSources = []string{"kms.amazonaws.com", "rdsdata.amazonaws.com"}

// NormalizeBasic checks basic selectors as PutEventSelectors does and returns a
// copy with AWS's defaults filled in: ReadWriteType All, IncludeManagementEvents
// true, DataResources and ExcludeManagementEventSources empty rather than absent.
// The error text is the message for InvalidEventSelectorsException.
func NormalizeBasic(sel []EventSelector) ([]EventSelector, error) {
	if len(sel) == 0 {
		return nil, fmt.Errorf("EventSelectors must contain between 1 and %d event selectors; got none.", MaxBasicSelectors)
	}
	if len(sel) > MaxBasicSelectors {
		return nil, fmt.Errorf("A trail can have at most %d event selectors; EventSelectors has %d.", MaxBasicSelectors, len(sel))
	}
	out := make([]EventSelector, len(sel))
	total := 0
	for i, s := range sel {
		n := EventSelector{ReadWriteType: s.ReadWriteType, DataResources: []DataResource{}, ExcludeManagementEventSources: []string{}}
		switch s.ReadWriteType {
		case "":
			n.ReadWriteType = All
		case ReadOnly, WriteOnly, All:
		default:
			return nil, fmt.Errorf("Value %s for ReadWriteType is invalid. EventSelectors[%d].ReadWriteType must be one of ReadOnly, WriteOnly or All.", s.ReadWriteType, i)
		}
		include := true
		if s.IncludeManagementEvents != nil {
			include = *s.IncludeManagementEvents
		}
		n.IncludeManagementEvents = &include

		for j, src := range s.ExcludeManagementEventSources {
			if !isExcludable(src) {
				return nil, fmt.Errorf("Value %s for ExcludeManagementEventSources is invalid. EventSelectors[%d].ExcludeManagementEventSources[%d] must be %s or %s.",
					src, i, j, excludableSources[0], excludableSources[1])
			}
			n.ExcludeManagementEventSources = append(n.ExcludeManagementEventSources, src)
		}

		for j, dr := range s.DataResources {
			where := fmt.Sprintf("EventSelectors[%d].DataResources[%d]", i, j)
			switch dr.Type {
			case TypeS3Object, TypeLambdaFunction, TypeDynamoDBTable:
			case "":
				return nil, fmt.Errorf("%s.Type is required: use %s, %s or %s.", where, TypeS3Object, TypeLambdaFunction, TypeDynamoDBTable)
			default:
				return nil, fmt.Errorf("Value %s for DataResources.Type is invalid. %s.Type must be %s, %s or %s; other resource types need advanced event selectors.",
					dr.Type, where, TypeS3Object, TypeLambdaFunction, TypeDynamoDBTable)
			}
			if len(dr.Values) == 0 {
				return nil, fmt.Errorf("%s.Values must contain at least one ARN or ARN prefix for %s.", where, dr.Type)
			}
			for k, v := range dr.Values {
				all, ok := checkDataResourceValue(dr.Type, v)
				if !ok {
					return nil, fmt.Errorf("Value %s for DataResources.Values is invalid. %s.Values[%d] must be %s.", v, where, k, dataValueForms[dr.Type])
				}
				// Per "Quotas in AWS CloudTrail" the 250 limit does not apply to
				// values that log all resources of a type, so they are not counted.
				if !all {
					total++
				}
			}
			n.DataResources = append(n.DataResources, DataResource{Type: dr.Type, Values: append([]string(nil), dr.Values...)})
		}
		if !include && len(n.DataResources) == 0 {
			// AWS's own wording for this combination, then where it is.
			return nil, fmt.Errorf("Invalid combination of parameters in EventSelectors. When includeManagementEvents is false, DataResources must not be empty (EventSelectors[%d] selects nothing).", i)
		}
		out[i] = n
	}
	if total > MaxDataResources {
		return nil, fmt.Errorf("A trail can have at most %d data resources across all event selectors; EventSelectors has %d.", MaxDataResources, total)
	}
	return out, nil
}

// dataValueForms says, per basic resource type, which values are accepted; it is
// the "what was expected" half of an invalid-value message.
var dataValueForms = map[string]string{
	TypeS3Object: "arn:<partition>:s3 (all buckets), arn:<partition>:s3:::<bucket>/ (one bucket) or " +
		"arn:<partition>:s3:::<bucket>/<prefix> (objects under a prefix); wildcards are not supported",
	TypeLambdaFunction: "arn:<partition>:lambda (all functions) or an exact function ARN " +
		"arn:<partition>:lambda:<region>:<account>:function:<name>; wildcards are not supported",
	TypeDynamoDBTable: "arn:<partition>:dynamodb (all tables) or an exact table ARN " +
		"arn:<partition>:dynamodb:<region>:<account>:table/<name>; wildcards are not supported",
}

var (
	partitionPart = `aws(?:-[a-z]+)*`
	regionPart    = `[a-z]+(?:-[a-z0-9]+)+`
	// Bucket names: S3's current rules are stricter (3-63 lowercase characters),
	// but buckets made before 2018 in us-east-1 may be longer or mixed-case.
	s3ValueRE      = regexp.MustCompile(`^arn:` + partitionPart + `:s3:::[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?/`)
	lambdaValueRE  = regexp.MustCompile(`^arn:` + partitionPart + `:lambda:` + regionPart + `:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}$`)
	dynamoValueRE  = regexp.MustCompile(`^arn:` + partitionPart + `:dynamodb:` + regionPart + `:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}$`)
	allValueRE     = regexp.MustCompile(`^arn:` + partitionPart + `:(s3|lambda|dynamodb)$`)
	serviceOfBasic = map[string]string{TypeS3Object: "s3", TypeLambdaFunction: "lambda", TypeDynamoDBTable: "dynamodb"}
)

// checkDataResourceValue reports whether v is a valid DataResources value for
// type typ, and whether it selects every resource of the type.
func checkDataResourceValue(typ, v string) (all, ok bool) {
	if m := allValueRE.FindStringSubmatch(v); m != nil {
		return true, m[1] == serviceOfBasic[typ]
	}
	switch typ {
	case TypeS3Object:
		// The object prefix after the bucket is free text: object keys may
		// contain any character, so it is matched literally.
		return false, s3ValueRE.MatchString(v)
	case TypeLambdaFunction:
		return false, lambdaValueRE.MatchString(v)
	case TypeDynamoDBTable:
		return false, dynamoValueRE.MatchString(v)
	}
	return false, false
}

// allPrefix turns an all-resources value such as "arn:aws:s3" into the ARN
// prefix it stands for, "arn:aws:s3:". The colon keeps "arn:aws:s3" from
// matching "arn:aws:s3-outposts:...".
func allPrefix(v string) (string, bool) {
	if allValueRE.MatchString(v) {
		return v + ":", true
	}
	return "", false
}

// isExcludable reports whether src may appear in ExcludeManagementEventSources.
func isExcludable(src string) bool {
	return src == excludableSources[0] || src == excludableSources[1]
}
