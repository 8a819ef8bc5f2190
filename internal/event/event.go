// Package event is the CloudTrail record: validation, normalisation and the
// stored form. It does no I/O.
//
// A record's JSON is kept as the producer sent it (compacted): fields OpenTrail
// fills in are appended, nothing is reordered, renamed or re-typed, so the same
// bytes come back through every path. Normalize also extracts Meta, the few
// fields the journal's consumers need, so that they never parse JSON again.
package event

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
)

// Limits on one record.
const (
	MaxRecordBytes = 256 << 10
	maxIDLen       = 128
)

// Event categories.
const (
	CategoryManagement      = "Management"
	CategoryData            = "Data"
	CategoryInsight         = "Insight"
	CategoryNetworkActivity = "NetworkActivity"
	CategoryActivityAudit   = "ActivityAuditLog"
)

// DefaultEventVersion is written into records that carry none.
const DefaultEventVersion = "1.11"

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)

	categories = map[string]bool{
		CategoryManagement: true, CategoryData: true, CategoryInsight: true,
		CategoryNetworkActivity: true, CategoryActivityAudit: true,
	}
)

// Resource is one entry of a record's resources list.
type Resource struct {
	Type string
	ARN  string
}

// Meta is what consumers of the journal need from a record without parsing it.
type Meta struct {
	EventID         string
	EventTime       int64 // unix nanoseconds
	IngestTime      int64 // unix nanoseconds
	Account         string
	Region          string
	Category        string
	Type            string
	Source          string // eventSource, or insightDetails.eventSource for insights
	Name            string // eventName, or insightDetails.eventName for insights
	ReadOnly        int8   // -1 absent, 0 false, 1 true
	ManagementEvent bool
	Username        string // the user name event history shows
	AccessKeyID     string
	UserARN         string
	ErrorCode       string
	VPCEndpointID   string
	ConsoleSession  bool // sessionCredentialFromConsole = "true"
	Resources       []Resource
}

// Record is a validated, normalised CloudTrail record.
type Record struct {
	Meta Meta
	Raw  []byte // compact JSON object
}

// Defaults fill in what a record leaves out.
type Defaults struct {
	Account string    // recipientAccountId
	Region  string    // awsRegion
	Now     time.Time // ingest time
	NewID   func() string
}

// FieldError names the field of a record that is wrong and why.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Normalize validates one record and fills in what it leaves out: eventID,
// eventVersion, recipientAccountId, eventType (AwsApiCall), eventCategory and
// managementEvent, awsRegion. eventTime is required. raw is not modified.
func Normalize(raw []byte, d Defaults) (Record, error) {
	if len(raw) > MaxRecordBytes {
		return Record{}, fieldErr("", "record is %d bytes; the limit is %d", len(raw), MaxRecordBytes)
	}
	p := parser{meta: Meta{ReadOnly: -1}}
	if err := p.parse(raw); err != nil {
		return Record{}, err
	}
	m := &p.meta
	m.IngestTime = d.Now.UnixNano()
	var fill []byte
	add := func(name, quoted string) {
		fill = append(fill, ',', '"')
		fill = append(fill, name...)
		fill = append(fill, '"', ':')
		fill = append(fill, quoted...)
	}
	if !p.has.eventTime {
		return Record{}, fieldErr("eventTime", "is required")
	}
	if !p.has.eventID {
		newID := d.NewID
		if newID == nil {
			newID = uuid.NewString
		}
		m.EventID = newID()
		add("eventID", strconv.Quote(m.EventID))
	}
	if !p.has.eventVersion {
		add("eventVersion", `"`+DefaultEventVersion+`"`)
	}
	if !p.has.account {
		m.Account = d.Account
		add("recipientAccountId", strconv.Quote(d.Account))
	}
	if !p.has.region {
		m.Region = d.Region
		add("awsRegion", strconv.Quote(d.Region))
	}
	if !p.has.eventType {
		m.Type = "AwsApiCall"
		add("eventType", `"AwsApiCall"`)
	}
	if !p.has.category {
		switch {
		case m.Type == "AwsCloudTrailInsight":
			m.Category = CategoryInsight
		case m.Type == "AwsVpceEvent":
			m.Category = CategoryNetworkActivity
		case p.has.managementEvent && !m.ManagementEvent:
			m.Category = CategoryData
		default:
			m.Category = CategoryManagement
		}
		add("eventCategory", strconv.Quote(m.Category))
	}
	if !p.has.managementEvent {
		m.ManagementEvent = m.Category == CategoryManagement
		if m.Category != CategoryInsight {
			add("managementEvent", strconv.FormatBool(m.ManagementEvent))
		}
	}
	if m.Username == "" {
		m.Username = p.username()
	}

	out, err := compact(raw)
	if err != nil {
		return Record{}, fieldErr("", "%v", err)
	}
	if len(fill) > 0 {
		out = append(out[:len(out)-1:len(out)-1], fill...)
		out = append(out, '}')
	}
	return Record{Meta: *m, Raw: out}, nil
}

// compact returns raw without insignificant whitespace, sharing raw when it has none.
func compact(raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if !hasInsignificantSpace(raw) {
		return raw, nil
	}
	v := jsontext.Value(bytes.Clone(raw))
	if err := v.Compact(); err != nil {
		return nil, err
	}
	return v, nil
}

// hasInsignificantSpace reports whether valid JSON b has white space outside
// strings. It jumps from quote to quote (bytes.IndexByte), so a string costs
// what finding its closing quote costs.
func hasInsignificantSpace(b []byte) bool {
	for {
		q := bytes.IndexByte(b, '"')
		outside := b
		if q >= 0 {
			outside = b[:q]
		}
		for _, c := range outside {
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				return true
			}
		}
		if q < 0 {
			return false
		}
		b = b[q+1:]
		for { // to the string's closing quote: one not escaped by an odd run of backslashes
			e := bytes.IndexByte(b, '"')
			if e < 0 {
				return false
			}
			n := 0
			for k := e - 1; k >= 0 && b[k] == '\\'; k-- {
				n++
			}
			b = b[e+1:]
			if n%2 == 0 {
				break
			}
		}
	}
}

// parser walks the top level of a record once.
type parser struct {
	meta Meta
	has  struct {
		eventTime, eventID, eventVersion, account, region, eventType, category, managementEvent bool
	}
	identity identity
}

type identity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccessKeyID string `json:"accessKeyId"`
	UserName    string `json:"userName"`
	InvokedBy   string `json:"invokedBy"`
}

var decodeOpts = json.JoinOptions(json.DefaultOptionsV2(), jsontext.AllowInvalidUTF8(false))

// decoders are reused: a Decoder reading from a *bytes.Buffer parses in place.
var decoders = sync.Pool{New: func() any { return jsontext.NewDecoder(new(bytes.Buffer)) }}

func getDecoder(b []byte) *jsontext.Decoder {
	d := decoders.Get().(*jsontext.Decoder)
	d.Reset(bytes.NewBuffer(b))
	return d
}

func putDecoder(d *jsontext.Decoder) { decoders.Put(d) }

func (p *parser) parse(raw []byte) error {
	dec := getDecoder(raw)
	defer putDecoder(dec)
	if dec.PeekKind() != '{' {
		if _, err := dec.ReadValue(); err != nil {
			return fieldErr("", "not valid JSON: %v", trimJSONErr(err))
		}
		return fieldErr("", "a record must be a JSON object")
	}
	if _, err := dec.ReadToken(); err != nil {
		return fieldErr("", "not valid JSON: %v", trimJSONErr(err))
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return fieldErr("", "not valid JSON: %v", trimJSONErr(err))
		}
		name := tok.String()
		val, err := dec.ReadValue()
		if err != nil {
			return fieldErr(name, "not valid JSON: %v", trimJSONErr(err))
		}
		if err := p.field(name, val); err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return fieldErr("", "not valid JSON: %v", trimJSONErr(err))
	}
	if _, err := dec.ReadToken(); err == nil {
		return fieldErr("", "unexpected data after the record's closing brace")
	}
	return nil
}

// Event times are stored as int64 unix nanoseconds; outside these bounds
// UnixNano would wrap (9999-12-31 became 1816-03-30), so such times are refused.
var (
	minEventTime = time.Unix(0, math.MinInt64).UTC()
	maxEventTime = time.Unix(0, math.MaxInt64).UTC()
)

// trimJSONErr drops the library's package prefix from a syntax error.
func trimJSONErr(err error) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "jsontext: "), "json: ")
}

func (p *parser) field(name string, val jsontext.Value) error {
	m := &p.meta
	kind := val.Kind()
	switch name {
	case "eventTime":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fieldErr(name, "%q is not an RFC 3339 time such as \"2024-01-02T03:04:05Z\"", s)
		}
		if t.Before(minEventTime) || t.After(maxEventTime) {
			return fieldErr(name, "%q is outside the times OpenTrail can store, %s to %s",
				s, minEventTime.Format(time.RFC3339Nano), maxEventTime.Format(time.RFC3339Nano))
		}
		m.EventTime, p.has.eventTime = t.UnixNano(), true
	case "eventID":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		if s == "" || len(s) > maxIDLen || strings.ContainsFunc(s, isControl) {
			return fieldErr(name, "must be 1 to %d printable characters", maxIDLen)
		}
		m.EventID, p.has.eventID = s, true
	case "eventVersion":
		if _, err := str(name, val); err != nil {
			return err
		}
		p.has.eventVersion = true
	case "recipientAccountId":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		if !accountRE.MatchString(s) {
			return fieldErr(name, "%q is not a 12-digit account ID", s)
		}
		m.Account, p.has.account = s, true
	case "awsRegion":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		if !regionRE.MatchString(s) {
			return fieldErr(name, "%q is not a region name such as \"us-east-1\"", s)
		}
		m.Region, p.has.region = s, true
	case "eventType":
		s, err := nonEmpty(name, val)
		if err != nil {
			return err
		}
		m.Type, p.has.eventType = s, true
	case "eventCategory":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		if !categories[s] {
			return fieldErr(name, "%q is not one of Management, Data, Insight, NetworkActivity, ActivityAuditLog", s)
		}
		m.Category, p.has.category = s, true
	case "managementEvent":
		b, err := boolean(name, val)
		if err != nil {
			return err
		}
		m.ManagementEvent, p.has.managementEvent = b, true
	case "readOnly":
		b, err := boolean(name, val)
		if err != nil {
			return err
		}
		m.ReadOnly = 0
		if b {
			m.ReadOnly = 1
		}
	case "eventSource", "eventName":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		if name == "eventSource" && m.Source == "" {
			m.Source = s
		} else if name == "eventName" && m.Name == "" {
			m.Name = s
		}
	case "errorCode":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		m.ErrorCode = s
	case "vpcEndpointId":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		m.VPCEndpointID = s
	case "sessionCredentialFromConsole":
		s, err := str(name, val)
		if err != nil {
			return err
		}
		m.ConsoleSession = s == "true"
	case "errorMessage", "sourceIPAddress", "userAgent", "requestID", "sharedEventID", "vpcEndpointAccountId":
		if _, err := str(name, val); err != nil {
			return err
		}
	case "userIdentity":
		if kind != '{' {
			return fieldErr(name, "must be a JSON object, not %s", kindName(kind))
		}
		if err := p.identity.parse(val); err != nil {
			return err
		}
		m.AccessKeyID, m.UserARN = p.identity.AccessKeyID, p.identity.ARN
	case "resources":
		var rs []struct {
			ARN  string `json:"ARN"`
			Type string `json:"type"`
		}
		if kind != '[' {
			return fieldErr(name, "must be a JSON array, not %s", kindName(kind))
		}
		if err := json.Unmarshal(val, &rs, decodeOpts); err != nil {
			return fieldErr(name, "%s", trimJSONErr(err))
		}
		m.Resources = make([]Resource, len(rs))
		for i, r := range rs {
			m.Resources[i] = Resource{Type: r.Type, ARN: r.ARN}
		}
	case "requestParameters", "responseElements", "additionalEventData", "serviceEventDetails", "tlsDetails", "addendum", "edgeDeviceDetails", "metadata":
		if kind != '{' && kind != 'n' {
			return fieldErr(name, "must be a JSON object or null, not %s", kindName(kind))
		}
	case "insightDetails":
		if kind != '{' {
			return fieldErr(name, "must be a JSON object, not %s", kindName(kind))
		}
		var d struct {
			EventSource string `json:"eventSource"`
			EventName   string `json:"eventName"`
		}
		if err := json.Unmarshal(val, &d, decodeOpts); err != nil {
			return fieldErr(name, "%s", trimJSONErr(err))
		}
		if m.Source == "" {
			m.Source = d.EventSource
		}
		if m.Name == "" {
			m.Name = d.EventName
		}
	}
	return nil
}

// parse reads the identity members event history needs; each must be a string when present.
func (id *identity) parse(v jsontext.Value) error {
	dec := getDecoder(v)
	defer putDecoder(dec)
	dec.ReadToken()
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return fieldErr("userIdentity", "%s", trimJSONErr(err))
		}
		name := tok.String()
		val, err := dec.ReadValue()
		if err != nil {
			return fieldErr("userIdentity", "%s", trimJSONErr(err))
		}
		var dst *string
		switch name {
		case "type":
			dst = &id.Type
		case "principalId":
			dst = &id.PrincipalID
		case "arn":
			dst = &id.ARN
		case "accessKeyId":
			dst = &id.AccessKeyID
		case "userName":
			dst = &id.UserName
		case "invokedBy":
			dst = &id.InvokedBy
		default:
			continue
		}
		if *dst, err = str("userIdentity."+name, val); err != nil {
			return err
		}
	}
	return nil
}

// username is the user name event history shows for the record's identity.
func (p *parser) username() string {
	id := p.identity
	switch {
	case id.UserName != "":
		return id.UserName
	case id.Type == "Root":
		return "root"
	case id.Type == "AssumedRole" || id.Type == "FederatedUser":
		if i := strings.LastIndexByte(id.ARN, '/'); i >= 0 {
			return id.ARN[i+1:]
		}
	case id.Type == "AWSService":
		return id.InvokedBy
	}
	return ""
}

func str(name string, v jsontext.Value) (string, error) {
	if v.Kind() != '"' {
		return "", fieldErr(name, "must be a JSON string, not %s", kindName(v.Kind()))
	}
	// The decoder has already checked the string; without escapes it is its bytes.
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), nil
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return "", fieldErr(name, "%s", trimJSONErr(err))
	}
	return string(b), nil
}

func nonEmpty(name string, v jsontext.Value) (string, error) {
	s, err := str(name, v)
	if err == nil && s == "" {
		err = fieldErr(name, "must not be empty")
	}
	return s, err
}

func boolean(name string, v jsontext.Value) (bool, error) {
	switch v.Kind() {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return false, fieldErr(name, "must be a JSON boolean (true or false), not %s", kindName(v.Kind()))
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "invalid JSON"
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
