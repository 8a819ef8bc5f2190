package selector

// EventSelector is one basic event selector. JSON member names are the CloudTrail
// API's, so handlers decode PutEventSelectors requests straight into it.
type EventSelector struct {
	ReadWriteType           string         `json:"ReadWriteType,omitempty"` // ReadOnly | WriteOnly | All
	IncludeManagementEvents *bool          `json:"IncludeManagementEvents,omitempty"`
	DataResources           []DataResource `json:"DataResources"`
	// omitzero, not omitempty: a fresh trail's selector has no such member, while
	// AWS echoes a selector that went through PutEventSelectors with
	// "ExcludeManagementEventSources": []. nil and empty keep the two apart.
	ExcludeManagementEventSources []string `json:"ExcludeManagementEventSources,omitzero"`
}

// DataResource names the data events a basic selector takes for one resource type.
type DataResource struct {
	Type   string   `json:"Type,omitempty"`
	Values []string `json:"Values,omitempty"`
}

// AdvancedEventSelector is one advanced event selector: all of its field
// selectors must hold for an event to match it.
type AdvancedEventSelector struct {
	Name           *string                 `json:"Name,omitempty"`
	FieldSelectors []AdvancedFieldSelector `json:"FieldSelectors"`
}

// AdvancedFieldSelector is the condition on one record field.
type AdvancedFieldSelector struct {
	Field         string   `json:"Field"`
	Equals        []string `json:"Equals,omitempty"`
	StartsWith    []string `json:"StartsWith,omitempty"`
	EndsWith      []string `json:"EndsWith,omitempty"`
	NotEquals     []string `json:"NotEquals,omitempty"`
	NotStartsWith []string `json:"NotStartsWith,omitempty"`
	NotEndsWith   []string `json:"NotEndsWith,omitempty"`
}

// Values of ReadWriteType.
const (
	ReadOnly  = "ReadOnly"
	WriteOnly = "WriteOnly"
	All       = "All"
)

// Event categories as they appear in records and in eventCategory conditions.
const (
	CategoryManagement        = "Management"
	CategoryData              = "Data"
	CategoryNetworkActivity   = "NetworkActivity"
	CategoryInsight           = "Insight"
	CategoryConfigurationItem = "ConfigurationItem"
	CategoryEvidence          = "Evidence"
	CategoryActivityAuditLog  = "ActivityAuditLog"
)

// Resource types that basic selectors can name.
const (
	TypeS3Object       = "AWS::S3::Object"
	TypeLambdaFunction = "AWS::Lambda::Function"
	TypeDynamoDBTable  = "AWS::DynamoDB::Table"
)

// DefaultBasic is what GetEventSelectors returns for a trail that never had
// selectors put: all management events, read and write, no data events.
func DefaultBasic() []EventSelector {
	t := true
	return []EventSelector{{ReadWriteType: All, IncludeManagementEvents: &t, DataResources: []DataResource{}}}
}
