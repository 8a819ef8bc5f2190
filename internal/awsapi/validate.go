package awsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validate checks a JSON 1.1 request body against op's input shape.
//
// The body must be a JSON object (an empty body counts as {}); unknown
// members are ignored, as AWS does, and a JSON null is the same as an absent
// member. A malformed body or a value of the wrong JSON type is a
// SerializationException naming the member; timestamps must be JSON numbers
// (epoch seconds, possibly fractional), integers must be whole numbers in
// range and blobs valid base64, so an accepted body decodes cleanly into Go
// integer and []byte fields. Constraint violations (required, length,
// range, enum, pattern) are reported together as one InvalidParameterException
// in AWS's form
//
//	1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50
//
// with Field set to the first violation's member path ("MaxResults",
// "LookupAttributes[0].AttributeKey"). String lengths count Unicode code
// points, as Smithy defines them.
func (m *Model) Validate(op string, body []byte) error {
	in, ok := m.inputs[op]
	if !ok {
		return Errorf(codeUnknownOperation, "Unknown operation %s.", op)
	}
	doc, err := decodeBody(body)
	if err != nil {
		return err
	}
	var w walker
	if err := w.walk(in, doc, path{}); err != nil {
		return err
	}
	return w.result()
}

// decodeBody decodes a request body, keeping numbers as json.Number so that
// integer ranges can be checked exactly.
func decodeBody(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(codeSerialization, "Unexpected data after the JSON request body at offset %d.", dec.InputOffset())
	}
	return doc, nil
}

func malformed(err error) *Error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return Errorf(codeSerialization, "Malformed JSON request body at offset %d: %s.", syntax.Offset, syntax.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return Errorf(codeSerialization, "Malformed JSON request body: unexpected end of input.")
	}
	return Errorf(codeSerialization, "Malformed JSON request body: %s.", err.Error())
}

// path locates a value in the input two ways: field as Go-style member names
// for Error.Field ("LookupAttributes[0].AttributeKey"), coral as AWS spells it
// in messages ("lookupAttributes.1.member.attributeKey").
type path struct{ field, coral string }

func (p path) member(name string) path {
	if p.field == "" {
		return path{name, lowerFirst(name)}
	}
	return path{p.field + "." + name, p.coral + "." + lowerFirst(name)}
}

func (p path) index(i int) path {
	return path{fmt.Sprintf("%s[%d]", p.field, i), fmt.Sprintf("%s.%d.member", p.coral, i+1)}
}

func (p path) key(k string) path {
	return path{fmt.Sprintf("%s[%s]", p.field, k), p.coral + "." + k}
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// violation is one failed constraint.
type violation struct {
	at         path
	value      any // nil for "Value null"
	constraint string
}

// walker walks a decoded body along its shape. Type mismatches stop the walk
// (the body cannot be deserialised); constraint violations are collected.
type walker struct{ violations []violation }

func (w *walker) add(at path, value any, constraint string) {
	w.violations = append(w.violations, violation{at, value, constraint})
}

func (w *walker) result() error {
	if len(w.violations) == 0 {
		return nil
	}
	parts := make([]string, len(w.violations))
	for i, v := range w.violations {
		value := "null"
		if v.value != nil {
			value = "'" + formatValue(v.value) + "'"
		}
		parts[i] = fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, v.at.coral, v.constraint)
	}
	plural := "s"
	if len(parts) == 1 {
		plural = ""
	}
	e := Errorf(codeInvalidParameter, "%d validation error%s detected: %s", len(parts), plural, strings.Join(parts, "; "))
	e.Field = w.violations[0].at.field
	return e
}

func (w *walker) walk(s *shape, v any, at path) error {
	switch s.kind {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			return mismatch(v, s.javaType(), at)
		}
		for _, m := range s.members {
			mv := obj[m.name]
			if mv == nil {
				if m.required {
					w.add(at.member(m.name), nil, "Member must not be null")
				}
				continue
			}
			if err := w.walk(m.shape, mv, at.member(m.name)); err != nil {
				return err
			}
		}
	case "list":
		arr, ok := v.([]any)
		if !ok {
			return mismatch(v, s.javaType(), at)
		}
		w.check(at, v, s.lengthViolations(len(arr)))
		for i, e := range arr {
			if e == nil {
				w.add(at.index(i), nil, "Member must not be null")
				continue
			}
			if err := w.walk(s.elem, e, at.index(i)); err != nil {
				return err
			}
		}
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			return mismatch(v, s.javaType(), at)
		}
		return w.walkMap(s, obj, at)
	default:
		violated, err := s.scalarViolations(v, at)
		if err != nil {
			return err
		}
		w.check(at, v, violated)
	}
	return nil
}

func (w *walker) check(at path, v any, violated []string) {
	for _, c := range violated {
		w.add(at, v, c)
	}
}

// walkMap checks a map the way AWS reports maps: a bad key or scalar value
// is one violation at the map itself, listing all constraints of the key or
// value shape ("Map keys must satisfy constraint: [...]").
func (w *walker) walkMap(s *shape, obj map[string]any, at path) error {
	w.check(at, obj, s.lengthViolations(len(obj)))
	var badKey, badValue bool
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if s.key.kind == "string" && !badKey {
			violated, err := s.key.scalarViolations(k, at.key(k))
			if err != nil {
				return err
			}
			if badKey = len(violated) > 0; badKey {
				w.add(at, obj, "Map keys must satisfy constraint: ["+strings.Join(s.key.constraints(), ", ")+"]")
			}
		}
		val := obj[k]
		switch {
		case val == nil:
			w.add(at.key(k), nil, "Member must not be null")
		case s.value.kind == "structure" || s.value.kind == "list" || s.value.kind == "map":
			if err := w.walk(s.value, val, at.key(k)); err != nil {
				return err
			}
		default:
			violated, err := s.value.scalarViolations(val, at.key(k))
			if err != nil {
				return err
			}
			if len(violated) > 0 && !badValue {
				badValue = true
				w.add(at, obj, "Map value must satisfy constraint: ["+strings.Join(s.value.constraints(), ", ")+"]")
			}
		}
	}
	return nil
}

// scalarViolations type-checks a scalar value and returns the constraints it
// violates, in the order AWS lists them.
func (s *shape) scalarViolations(v any, at path) ([]string, error) {
	switch s.kind {
	case "string":
		str, ok := v.(string)
		if !ok {
			return nil, mismatch(v, s.javaType(), at)
		}
		violated := s.lengthViolations(utf8.RuneCountInString(str))
		if s.re != nil && !s.re.MatchString(str) {
			violated = append(violated, "Member must satisfy regular expression pattern: "+s.pattern)
		}
		if len(s.enum) > 0 && !slices.Contains(s.enum, str) {
			violated = append(violated, "Member must satisfy enum value set: ["+strings.Join(s.enum, ", ")+"]")
		}
		return violated, nil
	case "blob":
		str, ok := v.(string)
		if !ok {
			return nil, mismatch(v, s.javaType(), at)
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, serializationError(at, "STRING_VALUE is not valid base64 and can not be converted to a Blob")
		}
		return s.lengthViolations(len(b)), nil
	case "boolean":
		if _, ok := v.(bool); !ok {
			return nil, mismatch(v, s.javaType(), at)
		}
		return nil, nil
	case "integer", "long":
		n, ok := v.(json.Number)
		if !ok {
			return nil, mismatch(v, s.javaType(), at)
		}
		bits := 64
		if s.kind == "integer" {
			bits = 32
		}
		i, err := strconv.ParseInt(n.String(), 10, bits)
		if err != nil {
			return nil, numberMismatch(n, s, at)
		}
		return s.valueViolations(float64(i)), nil
	case "float", "double":
		n, ok := v.(json.Number)
		if !ok {
			return nil, mismatch(v, s.javaType(), at)
		}
		f, err := n.Float64()
		if err != nil {
			return nil, numberMismatch(n, s, at)
		}
		return s.valueViolations(f), nil
	case "timestamp":
		n, ok := v.(json.Number)
		if !ok {
			return nil, mismatch(v, s.javaType(), at)
		}
		if _, err := n.Float64(); err != nil {
			return nil, numberMismatch(n, s, at)
		}
		return nil, nil
	default:
		return nil, nil // a shape type validation does not know: accept any JSON
	}
}

func (s *shape) lengthViolations(n int) []string {
	var violated []string
	if s.max != nil && float64(n) > *s.max {
		violated = append(violated, "Member must have length less than or equal to "+formatBound(*s.max))
	}
	if s.min != nil && float64(n) < *s.min {
		violated = append(violated, "Member must have length greater than or equal to "+formatBound(*s.min))
	}
	return violated
}

func (s *shape) valueViolations(f float64) []string {
	var violated []string
	if s.max != nil && f > *s.max {
		violated = append(violated, "Member must have value less than or equal to "+formatBound(*s.max))
	}
	if s.min != nil && f < *s.min {
		violated = append(violated, "Member must have value greater than or equal to "+formatBound(*s.min))
	}
	return violated
}

// constraints lists every constraint of a scalar shape, for map key and
// value messages.
func (s *shape) constraints() []string {
	var all []string
	if s.max != nil {
		all = append(all, "Member must have length less than or equal to "+formatBound(*s.max))
	}
	if s.min != nil {
		all = append(all, "Member must have length greater than or equal to "+formatBound(*s.min))
	}
	if s.re != nil {
		all = append(all, "Member must satisfy regular expression pattern: "+s.pattern)
	}
	if len(s.enum) > 0 {
		all = append(all, "Member must satisfy enum value set: ["+strings.Join(s.enum, ", ")+"]")
	}
	return all
}

func formatBound(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// javaType names a shape's type the way AWS's deserialiser does in its messages.
func (s *shape) javaType() string {
	switch s.kind {
	case "integer":
		return "an Integer"
	default:
		return "a " + strings.ToUpper(s.kind[:1]) + s.kind[1:]
	}
}

// mismatch is the SerializationException for a JSON value of the wrong type,
// worded like AWS's ("STRING_VALUE can not be converted to an Integer").
func mismatch(v any, want string, at path) *Error {
	var found string
	switch v := v.(type) {
	case map[string]any:
		return serializationError(at, "Start of structure or map found where not expected")
	case []any:
		return serializationError(at, "Start of list found where not expected")
	case string:
		found = "STRING_VALUE"
	case json.Number:
		found = "NUMBER_VALUE"
	case bool:
		found = strings.ToUpper(strconv.FormatBool(v)) + "_VALUE"
	default:
		found = "NULL_VALUE"
	}
	return serializationError(at, found+" can not be converted to "+want)
}

// numberMismatch is the SerializationException for a number that does not
// fit its shape: a fraction or an out-of-range value for an integer.
func numberMismatch(n json.Number, s *shape, at path) *Error {
	return serializationError(at, "NUMBER_VALUE "+n.String()+" can not be converted to "+s.javaType())
}

// serializationError names the member the problem was found at, if any.
func serializationError(at path, msg string) *Error {
	if at.coral == "" {
		return Errorf(codeSerialization, "%s.", msg)
	}
	e := Errorf(codeSerialization, "%s (member '%s').", msg, at.coral)
	e.Field = at.field
	return e
}

// formatValue renders a value the way AWS echoes it in validation messages:
// lists as [a, b], maps and structures as {k=v, ...}.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, k+"="+formatValue(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		return fmt.Sprint(v)
	}
}
