package selector

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits on advanced selectors: the member constraints of the CloudTrail API model
// (SelectorName, SelectorField, OperatorValue) and "Quotas in AWS CloudTrail".
const (
	MaxAdvancedValues = 500  // values across all conditions of all selectors
	MaxValueLen       = 2048 // characters in one operator value
	MaxNameLen        = 1000 // characters in a selector Name
	MaxFieldLen       = 1000 // characters in a Field
)

// Field names accepted in AdvancedFieldSelector.Field.
const (
	FieldEventCategory  = "eventCategory"
	FieldEventSource    = "eventSource"
	FieldEventName      = "eventName"
	FieldEventType      = "eventType"
	FieldReadOnly       = "readOnly"
	FieldResourcesType  = "resources.type"
	FieldResourcesARN   = "resources.ARN"
	FieldUserARN        = "userIdentity.arn"
	FieldErrorCode      = "errorCode"
	FieldVPCEndpointID  = "vpcEndpointId"
	FieldConsoleSession = "sessionCredentialFromConsole"
)

// VpceAccessDenied is the only errorCode a network activity selector may name.
const VpceAccessDenied = "VpceAccessDenied"

// op is one operator of a field selector, as a bit so that a field's allowed
// operators fit in one mask.
type op uint8

const (
	opEquals op = 1 << iota
	opStartsWith
	opEndsWith
	opNotEquals
	opNotStartsWith
	opNotEndsWith

	opsAll        = opEquals | opStartsWith | opEndsWith | opNotEquals | opNotStartsWith | opNotEndsWith
	opsEqualsOnly = opEquals
)

var opNames = [...]string{"Equals", "StartsWith", "EndsWith", "NotEquals", "NotStartsWith", "NotEndsWith"}

func (o op) String() string {
	var names []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return orList(names)
}

// operators returns the field selector's operator lists in opNames order.
func (f *AdvancedFieldSelector) operators() [6][]string {
	return [6][]string{f.Equals, f.StartsWith, f.EndsWith, f.NotEquals, f.NotStartsWith, f.NotEndsWith}
}

// target is what the selectors are for: a trail (PutEventSelectors) or an event
// data store (CreateEventDataStore, UpdateEventDataStore). Stores accept more
// categories and more fields per category.
type target int

const (
	forTrail target = iota
	forStore
)

// fieldsFor lists, per target and category, the fields a selector may use, in the
// order AWS documents them (AdvancedEventSelector in the CloudTrail API Reference).
var fieldsFor = [2]map[string][]string{
	forTrail: {
		CategoryManagement: {FieldEventCategory, FieldEventSource, FieldReadOnly},
		CategoryData: {FieldEventCategory, FieldEventName, FieldEventSource, FieldEventType, FieldResourcesARN,
			FieldResourcesType, FieldReadOnly, FieldConsoleSession, FieldUserARN},
		CategoryNetworkActivity: {FieldEventCategory, FieldEventSource, FieldEventName, FieldErrorCode, FieldVPCEndpointID, FieldUserARN},
	},
	forStore: {
		CategoryManagement: {FieldEventCategory, FieldEventSource, FieldReadOnly, FieldEventName, FieldEventType,
			FieldConsoleSession, FieldUserARN},
		CategoryData: {FieldEventCategory, FieldEventName, FieldEventSource, FieldEventType, FieldResourcesARN,
			FieldResourcesType, FieldReadOnly, FieldConsoleSession, FieldUserARN},
		CategoryNetworkActivity:   {FieldEventCategory, FieldEventSource, FieldEventName, FieldErrorCode, FieldVPCEndpointID},
		CategoryInsight:           {FieldEventCategory},
		CategoryConfigurationItem: {FieldEventCategory},
		CategoryEvidence:          {FieldEventCategory},
		CategoryActivityAuditLog:  {FieldEventCategory},
	},
}

// categoryOrder is the order categories are listed in messages.
var categoryOrder = []string{CategoryManagement, CategoryData, CategoryNetworkActivity, CategoryInsight,
	CategoryConfigurationItem, CategoryEvidence, CategoryActivityAuditLog}

var (
	fieldNames = []string{FieldEventCategory, FieldEventSource, FieldEventName, FieldEventType, FieldReadOnly,
		FieldResourcesType, FieldResourcesARN, FieldUserARN, FieldErrorCode, FieldVPCEndpointID, FieldConsoleSession}
	knownFields = setOf(fieldNames...)
)

// NormalizeAdvanced checks advanced selectors as PutEventSelectors does for a
// trail and returns a deep copy. The error text is the message for
// InvalidEventSelectorsException.
func NormalizeAdvanced(sel []AdvancedEventSelector) ([]AdvancedEventSelector, error) {
	return normalizeAdvanced(sel, forTrail)
}

// NormalizeAdvancedStore is NormalizeAdvanced with the rules for event data stores,
// which also take Insights, Config, Audit Manager and ActivityAuditLog events and
// allow more fields on management events.
func NormalizeAdvancedStore(sel []AdvancedEventSelector) ([]AdvancedEventSelector, error) {
	return normalizeAdvanced(sel, forStore)
}

func normalizeAdvanced(sel []AdvancedEventSelector, t target) ([]AdvancedEventSelector, error) {
	if len(sel) == 0 {
		return nil, fmt.Errorf("AdvancedEventSelectors must contain at least one advanced event selector.")
	}
	total := 0
	for _, s := range sel {
		for j := range s.FieldSelectors {
			for _, vals := range s.FieldSelectors[j].operators() {
				total += len(vals)
			}
		}
	}
	if total > MaxAdvancedValues {
		return nil, fmt.Errorf("AdvancedEventSelectors have %d values across all conditions; the maximum is %d.", total, MaxAdvancedValues)
	}
	out := make([]AdvancedEventSelector, len(sel))
	for i := range sel {
		if err := checkAdvanced(&sel[i], i, t); err != nil {
			return nil, err
		}
		out[i] = cloneAdvanced(&sel[i])
	}
	return out, nil
}

// checkAdvanced validates one selector: first each field selector on its own, then
// the fields against the selector's eventCategory.
func checkAdvanced(s *AdvancedEventSelector, i int, t target) error {
	where := fmt.Sprintf("AdvancedEventSelectors[%d]", i)
	if s.Name != nil && utf8.RuneCountInString(*s.Name) > MaxNameLen {
		return fmt.Errorf("%s.Name is %d characters long; the maximum is %d.", where, utf8.RuneCountInString(*s.Name), MaxNameLen)
	}
	if len(s.FieldSelectors) == 0 {
		return fmt.Errorf("%s.FieldSelectors must contain at least one field selector; eventCategory is required.", where)
	}
	seen := make(map[string]int, len(s.FieldSelectors))
	category := -1
	for j := range s.FieldSelectors {
		f := &s.FieldSelectors[j]
		fw := fmt.Sprintf("%s.FieldSelectors[%d]", where, j)
		if !knownFields[f.Field] {
			return unknownField(fw, f.Field)
		}
		// AWS's console refuses a second condition block for the same field and the
		// docs warn against duplicate fields; one block per field also keeps the
		// "one resources.type per selector" rule meaningful.
		if k, dup := seen[f.Field]; dup {
			return fmt.Errorf("%s: field %s already appears in FieldSelectors[%d]; put all conditions on a field in one field selector.", fw, f.Field, k)
		}
		seen[f.Field] = j
		if err := checkOperatorLists(f, fw); err != nil {
			return err
		}
		if f.Field == FieldEventCategory {
			category = j
		}
	}
	if category < 0 {
		return fmt.Errorf("%s has no eventCategory field selector; eventCategory is required and must use Equals with one of %s.",
			where, orList(categoriesFor(t)))
	}
	cat, err := checkCategory(&s.FieldSelectors[category], fmt.Sprintf("%s.FieldSelectors[%d]", where, category), t)
	if err != nil {
		return err
	}
	allowed := fieldsFor[t][cat]
	for j := range s.FieldSelectors {
		f := &s.FieldSelectors[j]
		if f.Field == FieldEventCategory {
			continue
		}
		fw := fmt.Sprintf("%s.FieldSelectors[%d]", where, j)
		if !contains(allowed, f.Field) {
			return fmt.Errorf("%s: field %s is not supported when eventCategory is %s%s; supported fields are %s.",
				fw, f.Field, cat, targetNote(t), andList(allowed))
		}
		if err := checkField(f, fw, cat, t); err != nil {
			return err
		}
	}
	switch cat {
	case CategoryData:
		if _, ok := seen[FieldResourcesType]; !ok {
			return fmt.Errorf("%s has no resources.type field selector; resources.type is required when eventCategory is Data.", where)
		}
	case CategoryNetworkActivity:
		if _, ok := seen[FieldEventSource]; !ok {
			return fmt.Errorf("%s has no eventSource field selector; eventSource is required when eventCategory is NetworkActivity and must use Equals with one event source, such as kms.amazonaws.com.", where)
		}
	}
	return nil
}

// checkOperatorLists applies the rules that hold for every field: at least one
// operator, no empty list, values of 1 to 2048 characters.
func checkOperatorLists(f *AdvancedFieldSelector, fw string) error {
	has := false
	for k, vals := range f.operators() {
		if vals == nil {
			continue
		}
		if len(vals) == 0 {
			return fmt.Errorf("%s.%s is empty; an operator needs at least one value.", fw, opNames[k])
		}
		has = true
		for n, v := range vals {
			if l := utf8.RuneCountInString(v); l == 0 || l > MaxValueLen || strings.Trim(v, "\r\n") == "" {
				return fmt.Errorf("%s.%s[%d] is %d characters long; values must be 1 to %d characters and not only line breaks.",
					fw, opNames[k], n, l, MaxValueLen)
			}
		}
	}
	if !has {
		return fmt.Errorf("%s (%s) has no operator; give at least one of %s.", fw, f.Field, andList(opNames[:]))
	}
	return nil
}

// checkCategory validates the eventCategory condition and returns its value.
func checkCategory(f *AdvancedFieldSelector, fw string, t target) (string, error) {
	if err := checkOps(f, fw, opsEqualsOnly, ""); err != nil {
		return "", err
	}
	cats := categoriesFor(t)
	if len(f.Equals) != 1 {
		return "", fmt.Errorf("%s.Equals has %d values; eventCategory takes exactly one of %s. Use one advanced event selector per category.",
			fw, len(f.Equals), orList(cats))
	}
	c := f.Equals[0]
	if !contains(cats, c) {
		if _, storeOnly := fieldsFor[forStore][c]; storeOnly && t == forTrail {
			return "", fmt.Errorf("Value %s for eventCategory is invalid for a trail (%s.Equals[0]); trails take %s. %s events are only for event data stores.",
				c, fw, orList(cats), c)
		}
		return "", fmt.Errorf("Value %s for eventCategory is invalid (%s.Equals[0]); expected %s.", c, fw, orList(cats))
	}
	return c, nil
}

// checkField validates one non-category field selector of a selector whose
// eventCategory is cat.
func checkField(f *AdvancedFieldSelector, fw, cat string, t target) error {
	switch f.Field {
	case FieldReadOnly:
		if err := checkOps(f, fw, opsEqualsOnly, ""); err != nil {
			return err
		}
		return checkEnum(f, fw, "true", "false")

	case FieldResourcesType:
		if err := checkOps(f, fw, opsEqualsOnly, ""); err != nil {
			return err
		}
		if len(f.Equals) != 1 {
			return fmt.Errorf("%s.Equals has %d values; resources.type takes exactly one resource type. Use one advanced event selector per resource type.",
				fw, len(f.Equals))
		}
		if v := f.Equals[0]; !dataResourceTypes[v] {
			return fmt.Errorf("Value %s for resources.type is invalid (%s.Equals[0]); expected a data event resource type such as %s, %s or %s.",
				v, fw, TypeS3Object, TypeLambdaFunction, TypeDynamoDBTable)
		}
		return nil

	case FieldErrorCode:
		if err := checkOps(f, fw, opsEqualsOnly, ""); err != nil {
			return err
		}
		return checkEnum(f, fw, VpceAccessDenied)

	case FieldConsoleSession:
		if err := checkOps(f, fw, opEquals|opNotEquals, ""); err != nil {
			return err
		}
		return checkEnum(f, fw, "true")

	case FieldEventSource:
		switch {
		case cat == CategoryNetworkActivity:
			if err := checkOps(f, fw, opsEqualsOnly, " for network activity events"); err != nil {
				return err
			}
			if len(f.Equals) != 1 {
				return fmt.Errorf("%s.Equals has %d values; a network activity selector takes exactly one eventSource. Use one advanced event selector per event source.",
					fw, len(f.Equals))
			}
			if v := f.Equals[0]; !networkActivitySources[v] {
				return fmt.Errorf("Value %s for eventSource is invalid (%s.Equals[0]); network activity events are not available for this event source. "+
					"Expected a supported service such as cloudtrail.amazonaws.com, ec2.amazonaws.com, kms.amazonaws.com, s3.amazonaws.com or secretsmanager.amazonaws.com.",
					v, fw)
			}
			return nil
		case cat == CategoryManagement && t == forTrail:
			// Trails can only exclude the two high-volume sources, as with
			// ExcludeManagementEventSources on basic selectors.
			if err := checkOps(f, fw, opNotEquals, " for management events on a trail"); err != nil {
				return err
			}
			return checkEnum(f, fw, excludableSources...)
		}
		return checkFreeText(f, fw)

	case FieldResourcesARN:
		return checkARNValues(f, fw)

	case FieldEventName, FieldEventType, FieldUserARN, FieldVPCEndpointID:
		return checkFreeText(f, fw)
	}
	return unknownField(fw, f.Field)
}

// checkOps fails if f uses an operator outside allowed.
func checkOps(f *AdvancedFieldSelector, fw string, allowed op, context string) error {
	for k, vals := range f.operators() {
		if vals != nil && allowed&(1<<k) == 0 {
			return fmt.Errorf("%s: operator %s is not supported for %s%s; use %s.", fw, opNames[k], f.Field, context, allowed)
		}
	}
	return nil
}

// checkEnum fails if any value of f is outside allowed.
func checkEnum(f *AdvancedFieldSelector, fw string, allowed ...string) error {
	for k, vals := range f.operators() {
		for n, v := range vals {
			if !contains(allowed, v) {
				return fmt.Errorf("Value %s for %s is invalid (%s.%s[%d]); expected %s.", v, f.Field, fw, opNames[k], n, orList(allowed))
			}
		}
	}
	return nil
}

// checkFreeText rejects wildcards in fields whose values can never contain '*':
// AWS selectors have no wildcards, so a '*' there is always a mistake.
func checkFreeText(f *AdvancedFieldSelector, fw string) error {
	for k, vals := range f.operators() {
		for n, v := range vals {
			if strings.Contains(v, "*") {
				return wildcard(f, fw, k, n, v)
			}
		}
	}
	return nil
}

var arnHeadRE = regexp.MustCompile(`^arn:` + partitionPart + `:[a-z0-9-]+:[a-z0-9-]*:[a-z0-9-]*:.`)

// checkARNValues validates resources.ARN. Any operator is allowed; Equals and
// NotEquals must name a whole ARN ("the value must exactly match the ARN of a valid
// resource"). A '*' is accepted only inside an S3 object key, where it is an
// ordinary character; anywhere else it can only be a wildcard attempt.
func checkARNValues(f *AdvancedFieldSelector, fw string) error {
	for k, vals := range f.operators() {
		for n, v := range vals {
			if strings.Trim(v, "*") == "" {
				return wildcard(f, fw, k, n, v)
			}
			o := op(1 << k)
			if o == opEndsWith || o == opNotEndsWith {
				continue // a suffix may be the end of an object key
			}
			if strings.Contains(v, "*") && !inS3Key(v, strings.IndexByte(v, '*')) {
				return wildcard(f, fw, k, n, v)
			}
			if (o == opEquals || o == opNotEquals) && !arnHeadRE.MatchString(v) {
				return fmt.Errorf("Value %s for resources.ARN is invalid (%s.%s[%d]); %s needs a complete resource ARN such as arn:aws:s3:::amzn-s3-demo-bucket/key. "+
					"Use StartsWith to match ARN prefixes.", v, fw, opNames[k], n, opNames[k])
			}
		}
	}
	return nil
}

// inS3Key reports whether byte i of v lies in the object key of an S3 object ARN
// (arn:<partition>:s3:::<bucket>/<key>).
func inS3Key(v string, i int) bool {
	head, rest, ok := cutN(v, ':', 5)
	if !ok || !strings.HasSuffix(head, ":s3::") {
		return false
	}
	slash := strings.IndexByte(rest, '/')
	return slash >= 0 && i > len(head)+1+slash
}

// cutN splits v around its n-th sep.
func cutN(v string, sep byte, n int) (before, after string, ok bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == sep {
			if n--; n == 0 {
				return v[:i], v[i+1:], true
			}
		}
	}
	return v, "", false
}

func wildcard(f *AdvancedFieldSelector, fw string, k, n int, v string) error {
	return fmt.Errorf("Value %s for %s is invalid (%s.%s[%d]); selectors do not support wildcards such as *. Use StartsWith or EndsWith to match part of a value.",
		v, f.Field, fw, opNames[k], n)
}

func unknownField(fw, field string) error {
	if field == "" {
		return fmt.Errorf("%s.Field is required; expected one of %s.", fw, andList(fieldNames))
	}
	if len(field) > MaxFieldLen {
		field = field[:MaxFieldLen] + "..."
	}
	return fmt.Errorf("Value %s for Field is invalid (%s.Field); expected one of %s.", field, fw, andList(fieldNames))
}

func categoriesFor(t target) []string {
	var out []string
	for _, c := range categoryOrder {
		if _, ok := fieldsFor[t][c]; ok {
			out = append(out, c)
		}
	}
	return out
}

func targetNote(t target) string {
	if t == forTrail {
		return " on a trail"
	}
	return " on an event data store"
}

func cloneAdvanced(s *AdvancedEventSelector) AdvancedEventSelector {
	out := AdvancedEventSelector{FieldSelectors: make([]AdvancedFieldSelector, len(s.FieldSelectors))}
	if s.Name != nil {
		name := *s.Name
		out.Name = &name
	}
	for j, f := range s.FieldSelectors {
		out.FieldSelectors[j] = AdvancedFieldSelector{
			Field:         f.Field,
			Equals:        cloneStrings(f.Equals),
			StartsWith:    cloneStrings(f.StartsWith),
			EndsWith:      cloneStrings(f.EndsWith),
			NotEquals:     cloneStrings(f.NotEquals),
			NotStartsWith: cloneStrings(f.NotStartsWith),
			NotEndsWith:   cloneStrings(f.NotEndsWith),
		}
	}
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append(make([]string, 0, len(s)), s...)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func orList(list []string) string  { return joinList(list, "or") }
func andList(list []string) string { return joinList(list, "and") }

func joinList(list []string, word string) string {
	switch len(list) {
	case 0:
		return ""
	case 1:
		return list[0]
	case 2:
		return list[0] + " " + word + " " + list[1]
	}
	return strings.Join(list[:len(list)-1], ", ") + " " + word + " " + list[len(list)-1]
}
