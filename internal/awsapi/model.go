package awsapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"
)

// Model is an AWS service model (service-2.json) prepared for validating
// request bodies.
type Model struct {
	inputs map[string]*shape // operation name -> input shape
}

// shape is a model shape with its references resolved.
type shape struct {
	kind     string   // structure, list, map, string, integer, long, float, double, boolean, timestamp, blob, ...
	members  []member // structure members that travel in the body, by wire name
	elem     *shape   // list member
	key      *shape   // map key
	value    *shape   // map value
	min, max *float64 // length of strings, blobs, lists and maps; value of numbers
	enum     []string
	pattern  string         // as written in the model, for messages
	re       *regexp.Regexp // pattern, anchored and translated to RE2
}

type member struct {
	name     string // JSON key
	shape    *shape
	required bool
}

// rawShape is the subset of a service-2.json shape that validation uses.
type rawShape struct {
	Type     string
	Members  map[string]rawMember
	Required []string
	Member   *rawRef
	Key      *rawRef
	Value    *rawRef
	Min, Max *float64
	Enum     []string
	Pattern  *string
}

type rawRef struct{ Shape string }

type rawMember struct {
	Shape        string
	Location     string // set for rest-json members bound to the URI, query string or headers
	LocationName string
}

// LoadModel parses a service-2.json document.
func LoadModel(serviceJSON []byte) (*Model, error) {
	var raw struct {
		Operations map[string]struct{ Input *rawRef }
		Shapes     map[string]rawShape
	}
	if err := json.Unmarshal(serviceJSON, &raw); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	shapes := make(map[string]*shape, len(raw.Shapes))
	for name := range raw.Shapes {
		shapes[name] = &shape{}
	}
	ref := func(owner, name string) (*shape, error) {
		s, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("load model: %s refers to unknown shape %q", owner, name)
		}
		return s, nil
	}
	for name, rs := range raw.Shapes {
		if err := resolve(shapes[name], name, rs, ref); err != nil {
			return nil, err
		}
	}
	m := &Model{inputs: make(map[string]*shape, len(raw.Operations))}
	for op, o := range raw.Operations {
		if o.Input == nil {
			m.inputs[op] = &shape{kind: "structure"} // the body must still be an object
			continue
		}
		in, err := ref("operation "+op, o.Input.Shape)
		if err != nil {
			return nil, err
		}
		m.inputs[op] = in
	}
	return m, nil
}

// resolve fills s from its raw form, linking shape references through ref.
func resolve(s *shape, name string, rs rawShape, ref func(owner, name string) (*shape, error)) error {
	s.kind, s.min, s.max, s.enum = rs.Type, rs.Min, rs.Max, rs.Enum
	if rs.Pattern != nil {
		re, err := compileJavaPattern(*rs.Pattern)
		if err != nil {
			return fmt.Errorf("load model: shape %s: %w", name, err)
		}
		s.pattern, s.re = *rs.Pattern, re
	}
	required := make(map[string]bool, len(rs.Required))
	for _, r := range rs.Required {
		required[r] = true
	}
	for _, mname := range slices.Sorted(maps.Keys(rs.Members)) {
		rm := rs.Members[mname]
		if rm.Location != "" {
			continue // not in the body; routing and binding it is the handler's job
		}
		ms, err := ref(name+"."+mname, rm.Shape)
		if err != nil {
			return err
		}
		wire := mname
		if rm.LocationName != "" {
			wire = rm.LocationName
		}
		s.members = append(s.members, member{name: wire, shape: ms, required: required[mname]})
	}
	switch {
	case s.kind == "list" && rs.Member == nil:
		return fmt.Errorf("load model: list shape %s has no member", name)
	case s.kind == "map" && (rs.Key == nil || rs.Value == nil):
		return fmt.Errorf("load model: map shape %s lacks a key or value", name)
	}
	var err error
	for _, link := range []struct {
		ref *rawRef
		to  **shape
	}{{rs.Member, &s.elem}, {rs.Key, &s.key}, {rs.Value, &s.value}} {
		if link.ref != nil {
			if *link.to, err = ref(name, link.ref.Shape); err != nil {
				return err
			}
		}
	}
	return nil
}

// compileJavaPattern compiles a model "pattern" (Java regular-expression
// syntax) as Go RE2, matching the whole value the way AWS's validation does
// (Java's Matcher.matches): a value of "a b" fails "[\w+=,.@-]*".
//
// The only Java syntax in the CloudTrail, Logs and CloudTrail Data models
// that RE2 rejects is \uXXXX, including UTF-16 surrogate pairs
// ("\uD800\uDC00" is U+10000); those are rewritten to \x{...}. Anything else
// RE2 cannot parse makes LoadModel fail rather than skip the constraint.
func compileJavaPattern(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '\\' || i+1 == len(pattern) {
			b.WriteByte(pattern[i])
			continue
		}
		if r, n, ok := javaUnicodeEscape(pattern[i:]); ok {
			fmt.Fprintf(&b, `\x{%X}`, r)
			i += n - 1
			continue
		}
		b.WriteString(pattern[i : i+2]) // any other escape, including \\, passes through whole
		i++
	}
	re, err := regexp.Compile(`^(?:` + b.String() + `)$`)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return re, nil
}

// javaUnicodeEscape decodes a \uXXXX escape, or a \uXXXX\uXXXX surrogate
// pair, at the start of s, returning the rune and the bytes consumed.
func javaUnicodeEscape(s string) (rune, int, bool) {
	hi, ok := hex4(s)
	if !ok {
		return 0, 0, false
	}
	if utf16.IsSurrogate(hi) {
		if lo, ok := hex4(s[6:]); ok {
			if r := utf16.DecodeRune(hi, lo); r != '\uFFFD' {
				return r, 12, true
			}
		}
	}
	return hi, 6, true
}

// hex4 decodes "\uXXXX" at the start of s.
func hex4(s string) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | (c - '0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | (c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// HasOperation reports whether the model defines op.
func (m *Model) HasOperation(op string) bool {
	_, ok := m.inputs[op]
	return ok
}

// Operations lists the model's operation names, sorted.
func (m *Model) Operations() []string {
	return slices.Sorted(maps.Keys(m.inputs))
}

var (
	//go:embed models/cloudtrail.service-2.json
	cloudTrailJSON []byte
	//go:embed models/logs.service-2.json
	logsJSON []byte
	//go:embed models/cloudtrail-data.service-2.json
	cloudTrailDataJSON []byte

	cloudTrailModel     = sync.OnceValue(func() *Model { return mustLoad("cloudtrail", cloudTrailJSON) })
	logsModel           = sync.OnceValue(func() *Model { return mustLoad("logs", logsJSON) })
	cloudTrailDataModel = sync.OnceValue(func() *Model { return mustLoad("cloudtrail-data", cloudTrailDataJSON) })
)

// CloudTrailModel returns the embedded CloudTrail model (2013-11-01), parsed once.
func CloudTrailModel() *Model { return cloudTrailModel() }

// LogsModel returns the embedded CloudWatch Logs model (2014-03-28), parsed once.
func LogsModel() *Model { return logsModel() }

// CloudTrailDataModel returns the embedded CloudTrail Data model
// (2021-08-11), parsed once. It is rest-json: Validate checks the body only;
// channelArn and externalId travel in the query string and are not checked.
func CloudTrailDataModel() *Model { return cloudTrailDataModel() }

// mustLoad panics only if an embedded model is corrupt, which the tests rule out.
func mustLoad(name string, doc []byte) *Model {
	m, err := LoadModel(doc)
	if err != nil {
		panic(fmt.Sprintf("awsapi: embedded %s model: %v", name, err))
	}
	return m
}
