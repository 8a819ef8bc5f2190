package cloudtrail

import "strings"

// ValidationCode maps a model-validation failure of op at field to the specific
// error code CloudTrail returns for it ("" = keep InvalidParameterException).
func ValidationCode(op, field string) string {
	top, _, _ := strings.Cut(field, "[")
	top, _, _ = strings.Cut(top, ".")
	switch op + "." + top {
	case "LookupEvents.MaxResults":
		return "InvalidMaxResultsException"
	case "LookupEvents.LookupAttributes":
		return "InvalidLookupAttributesException"
	case "LookupEvents.EventCategory":
		return "InvalidEventCategoryException"
	case "LookupEvents.NextToken":
		return "InvalidNextTokenException"
	case "CreateTrail.Name", "UpdateTrail.Name":
		return "InvalidTrailNameException"
	case "PutEventSelectors.EventSelectors", "PutEventSelectors.AdvancedEventSelectors":
		return "InvalidEventSelectorsException"
	case "PutInsightSelectors.InsightSelectors":
		return "InvalidInsightSelectorsException"
	case "AddTags.TagsList", "CreateTrail.TagsList":
		return "InvalidTagParameterException"
	}
	return ""
}
