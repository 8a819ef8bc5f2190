package selector

import (
	"errors"
	"fmt"
	"strings"
)

// Event is what matching needs from one CloudTrail record. The caller fills it
// from the record; it is flat so that building one costs no allocation beyond
// the Resources slice.
type Event struct {
	Category        string // eventCategory; if empty, ManagementEvent true means Management
	Source          string // eventSource
	Name            string // eventName
	Type            string // eventType
	ReadOnly        bool   // readOnly
	ManagementEvent bool   // managementEvent
	Resources       []Resource
	UserARN         string // userIdentity.arn
	ErrorCode       string // errorCode
	VPCEndpointID   string // vpcEndpointId
	// SessionCredentialFromConsole is true when the record carries
	// "sessionCredentialFromConsole": "true" (it is absent otherwise).
	SessionCredentialFromConsole bool
}

// Resource is one entry of the record's resources list. For resources that carry
// an ARNPrefix instead of an ARN (S3 Express), put the prefix in ARN.
type Resource struct{ Type, ARN string }

// Matcher decides whether a trail or event data store takes an event. It is
// immutable once compiled and safe for concurrent use.
type Matcher struct {
	kind     matcherKind
	basic    []basicRule
	advanced [numCategories][]advancedRule
}

type matcherKind uint8

const (
	kindDefault matcherKind = iota // no selectors: all management events
	kindBasic
	kindAdvanced
)

// ErrBothSelectorKinds is returned by Compile when given basic and advanced
// selectors at once; a trail holds one kind or the other.
var ErrBothSelectorKinds = errors.New("selector: compile: both basic and advanced selectors given")

// Compile builds a matcher from normalized basic or advanced selectors; at most
// one may be non-nil. Both nil is a trail that never had selectors put: it takes
// all management events, read and write, and nothing else.
func Compile(basic []EventSelector, advanced []AdvancedEventSelector) (*Matcher, error) {
	switch {
	case basic != nil && advanced != nil:
		return nil, ErrBothSelectorKinds
	case basic != nil:
		return compileBasic(basic)
	case advanced != nil:
		return compileAdvanced(advanced)
	}
	return &Matcher{kind: kindDefault}, nil
}

// Match reports whether the trail or event data store takes ev.
func (m *Matcher) Match(ev *Event) bool {
	if m == nil || ev == nil {
		return false
	}
	cat := ev.Category
	if cat == "" && ev.ManagementEvent {
		cat = CategoryManagement
	}
	switch m.kind {
	case kindDefault:
		return cat == CategoryManagement
	case kindBasic:
		return m.matchBasic(cat, ev)
	}
	ci := categoryIndex(cat)
	if ci < 0 {
		return false
	}
	rules := m.advanced[ci]
	for i := range rules {
		if rules[i].match(ev) {
			return true
		}
	}
	return false
}

// ---- basic selectors ----

// basicRule is one compiled basic selector.
type basicRule struct {
	read, write bool // readOnly values the selector's ReadWriteType admits
	management  bool
	excludeKMS  bool
	excludeRDS  bool
	data        [numBasicTypes]dataRule
}

// dataRule holds one selector's DataResources values for one resource type.
type dataRule struct {
	all      []string // ARN prefixes such as "arn:aws:s3:", from all-resources values
	prefixes []string // S3 bucket and object prefixes
	exact    stringSet
}

const (
	basicS3 = iota
	basicLambda
	basicDynamoDB
	numBasicTypes
)

func basicTypeIndex(t string) int {
	switch t {
	case TypeS3Object:
		return basicS3
	case TypeLambdaFunction:
		return basicLambda
	case TypeDynamoDBTable:
		return basicDynamoDB
	}
	return -1
}

func compileBasic(sel []EventSelector) (*Matcher, error) {
	m := &Matcher{kind: kindBasic, basic: make([]basicRule, len(sel))}
	for i, s := range sel {
		r := &m.basic[i]
		switch s.ReadWriteType {
		case ReadOnly:
			r.read = true
		case WriteOnly:
			r.write = true
		case All, "":
			r.read, r.write = true, true
		default:
			return nil, fmt.Errorf("selector: compile: EventSelectors[%d]: unknown ReadWriteType %q", i, s.ReadWriteType)
		}
		r.management = s.IncludeManagementEvents == nil || *s.IncludeManagementEvents
		for _, src := range s.ExcludeManagementEventSources {
			switch src {
			case excludableSources[0]:
				r.excludeKMS = true
			case excludableSources[1]:
				r.excludeRDS = true
			}
		}
		var exact [numBasicTypes][]string
		for j, dr := range s.DataResources {
			ti := basicTypeIndex(dr.Type)
			if ti < 0 {
				return nil, fmt.Errorf("selector: compile: EventSelectors[%d].DataResources[%d]: unknown type %q", i, j, dr.Type)
			}
			d := &r.data[ti]
			for _, v := range dr.Values {
				if p, ok := allPrefix(v); ok {
					d.all = append(d.all, p)
				} else if ti == basicS3 {
					d.prefixes = append(d.prefixes, v)
				} else {
					exact[ti] = append(exact[ti], v)
				}
			}
		}
		for ti := range exact {
			r.data[ti].exact = newStringSet(exact[ti])
		}
	}
	return m, nil
}

func (m *Matcher) matchBasic(cat string, ev *Event) bool {
	switch cat {
	case CategoryManagement:
		for i := range m.basic {
			r := &m.basic[i]
			if r.management && r.fits(ev.ReadOnly) && !r.excludes(ev.Source) {
				return true
			}
		}
	case CategoryData:
		for _, res := range ev.Resources {
			ti := basicTypeIndex(res.Type)
			if ti < 0 {
				continue
			}
			for i := range m.basic {
				r := &m.basic[i]
				if r.fits(ev.ReadOnly) && r.data[ti].match(res.ARN) {
					return true
				}
			}
		}
	}
	// Network activity, Insights and everything else: basic selectors never take
	// them ("You can't use EventSelectors to log network activity events"; Insights
	// are governed by insight selectors).
	return false
}

func (r *basicRule) fits(readOnly bool) bool {
	if readOnly {
		return r.read
	}
	return r.write
}

func (r *basicRule) excludes(source string) bool {
	return (r.excludeKMS && source == excludableSources[0]) || (r.excludeRDS && source == excludableSources[1])
}

func (d *dataRule) match(arn string) bool {
	for _, p := range d.all {
		if strings.HasPrefix(arn, p) {
			return true
		}
	}
	for _, p := range d.prefixes {
		if strings.HasPrefix(arn, p) {
			return true
		}
	}
	return d.exact.has(arn)
}

// ---- advanced selectors ----

// Categories are interned to small integers so that Match finds the selectors
// that can apply to an event with one switch instead of scanning all of them.
const (
	catManagement = iota
	catData
	catNetworkActivity
	catInsight
	catConfigurationItem
	catEvidence
	catActivityAuditLog
	numCategories
)

func categoryIndex(c string) int {
	switch c {
	case CategoryManagement:
		return catManagement
	case CategoryData:
		return catData
	case CategoryNetworkActivity:
		return catNetworkActivity
	case CategoryInsight:
		return catInsight
	case CategoryConfigurationItem:
		return catConfigurationItem
	case CategoryEvidence:
		return catEvidence
	case CategoryActivityAuditLog:
		return catActivityAuditLog
	}
	return -1
}

type fieldID uint8

const (
	fEventSource fieldID = iota
	fEventName
	fEventType
	fReadOnly
	fUserARN
	fErrorCode
	fVPCEndpointID
	fConsoleSession
)

var fieldIDs = map[string]fieldID{
	FieldEventSource:    fEventSource,
	FieldEventName:      fEventName,
	FieldEventType:      fEventType,
	FieldReadOnly:       fReadOnly,
	FieldUserARN:        fUserARN,
	FieldErrorCode:      fErrorCode,
	FieldVPCEndpointID:  fVPCEndpointID,
	FieldConsoleSession: fConsoleSession,
}

// advancedRule is one compiled advanced selector, filed under each category its
// eventCategory condition admits.
type advancedRule struct {
	conds []cond
	// resType and resARN are evaluated together against each resource of the
	// event; the rule needs one resource satisfying both. nil means no condition.
	resType *cond
	resARN  *cond
}

// cond is one field's compiled condition.
type cond struct {
	field                      fieldID
	hasPositive                bool
	equals, notEquals          stringSet
	startsWith, endsWith       []string
	notStartsWith, notEndsWith []string
}

func compileAdvanced(sel []AdvancedEventSelector) (*Matcher, error) {
	m := &Matcher{kind: kindAdvanced}
	for i := range sel {
		var rule advancedRule
		var category *cond
		for j := range sel[i].FieldSelectors {
			f := &sel[i].FieldSelectors[j]
			c := compileCond(f)
			switch f.Field {
			case FieldEventCategory:
				category = &c
			case FieldResourcesType:
				rule.resType = &c
			case FieldResourcesARN:
				rule.resARN = &c
			default:
				id, ok := fieldIDs[f.Field]
				if !ok {
					return nil, fmt.Errorf("selector: compile: AdvancedEventSelectors[%d].FieldSelectors[%d]: unknown field %q", i, j, f.Field)
				}
				c.field = id
				rule.conds = append(rule.conds, c)
			}
		}
		if category == nil {
			return nil, fmt.Errorf("selector: compile: AdvancedEventSelectors[%d]: no eventCategory condition", i)
		}
		// Normalized selectors have one Equals value here; evaluating the
		// condition against every known category also handles anything else.
		for _, name := range categoryOrder {
			if category.matchValue(name) {
				ci := categoryIndex(name)
				m.advanced[ci] = append(m.advanced[ci], rule)
			}
		}
	}
	return m, nil
}

func compileCond(f *AdvancedFieldSelector) cond {
	return cond{
		hasPositive:   len(f.Equals)+len(f.StartsWith)+len(f.EndsWith) > 0,
		equals:        newStringSet(f.Equals),
		startsWith:    cloneStrings(f.StartsWith),
		endsWith:      cloneStrings(f.EndsWith),
		notEquals:     newStringSet(f.NotEquals),
		notStartsWith: cloneStrings(f.NotStartsWith),
		notEndsWith:   cloneStrings(f.NotEndsWith),
	}
}

func (r *advancedRule) match(ev *Event) bool {
	for i := range r.conds {
		c := &r.conds[i]
		if !c.matchValue(c.value(ev)) {
			return false
		}
	}
	if r.resType == nil && r.resARN == nil {
		return true
	}
	for _, res := range ev.Resources {
		if (r.resType == nil || r.resType.matchValue(res.Type)) && (r.resARN == nil || r.resARN.matchValue(res.ARN)) {
			return true
		}
	}
	return false
}

// value returns the record field the condition tests. Absent fields are "".
func (c *cond) value(ev *Event) string {
	switch c.field {
	case fEventSource:
		return ev.Source
	case fEventName:
		return ev.Name
	case fEventType:
		return ev.Type
	case fReadOnly:
		return boolString(ev.ReadOnly)
	case fUserARN:
		return ev.UserARN
	case fErrorCode:
		return ev.ErrorCode
	case fVPCEndpointID:
		return ev.VPCEndpointID
	case fConsoleSession:
		return boolString(ev.SessionCredentialFromConsole)
	}
	return ""
}

// matchValue applies AWS's rule for several operators on one field: any matching
// DESELECT value (NotEquals, NotStartsWith, NotEndsWith) rejects; otherwise the
// SELECT values (Equals, StartsWith, EndsWith), if any, need one match.
func (c *cond) matchValue(v string) bool {
	if c.notEquals.has(v) || hasAnyPrefix(v, c.notStartsWith) || hasAnySuffix(v, c.notEndsWith) {
		return false
	}
	if !c.hasPositive {
		return true
	}
	return c.equals.has(v) || hasAnyPrefix(v, c.startsWith) || hasAnySuffix(v, c.endsWith)
}

func hasAnyPrefix(v string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

func hasAnySuffix(v string, suffixes []string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(v, s) {
			return true
		}
	}
	return false
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// stringSet is an exact-match set: a slice while small (faster than hashing for
// a handful of short strings), a map beyond that.
type stringSet struct {
	list []string
	m    map[string]struct{}
}

const stringSetMapMin = 9

func newStringSet(vals []string) stringSet {
	if len(vals) < stringSetMapMin {
		return stringSet{list: cloneStrings(vals)}
	}
	m := make(map[string]struct{}, len(vals))
	for _, v := range vals {
		m[v] = struct{}{}
	}
	return stringSet{m: m}
}

func (s *stringSet) has(v string) bool {
	if s.m != nil {
		_, ok := s.m[v]
		return ok
	}
	for _, x := range s.list {
		if x == v {
			return true
		}
	}
	return false
}
