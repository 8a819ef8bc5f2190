package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/opentrail/opentrail/internal/audit"
)

// node is an order-preserving JSON value: requestParameters keep the
// members in the order the client sent them.
type node struct {
	kind byte // '{', '[', or 0 for a scalar
	keys []string
	vals []*node
	raw  []byte // a scalar's JSON text
}

var errDepth = errors.New("proxy: JSON nested too deeply")

const maxDepth = 64

// parseJSON decodes one JSON value into a node tree.
func parseJSON(b []byte) (*node, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	n, err := parseNode(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err == nil {
		return nil, errors.New("proxy: data after the JSON value")
	}
	return n, nil
}

func parseNode(dec *jsontext.Decoder, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	switch dec.PeekKind() {
	case '{':
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		n := &node{kind: '{'}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			key := tok.String()
			v, err := parseNode(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, key)
			n.vals = append(n.vals, v)
		}
		_, err := dec.ReadToken()
		return n, err
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		n := &node{kind: '['}
		for dec.PeekKind() != ']' {
			v, err := parseNode(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		_, err := dec.ReadToken()
		return n, err
	}
	v, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	return &node{raw: bytes.Clone(v)}, nil
}

func strNode(s string) *node { return &node{raw: strconv.AppendQuote(nil, s)} }

// str returns a string scalar's value.
func (n *node) str() (string, bool) {
	if n == nil || n.kind != 0 || len(n.raw) == 0 || n.raw[0] != '"' {
		return "", false
	}
	var s string
	if err := jsontextUnquote(n.raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func jsontextUnquote(raw []byte, out *string) error {
	v, err := jsontext.AppendUnquote(nil, raw)
	*out = string(v)
	return err
}

func (n *node) get(key string) *node {
	if n == nil || n.kind != '{' {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// appendJSON writes n compactly; canonical sorts object members (for HMAC).
func (n *node) appendJSON(b []byte, canonical bool) []byte {
	switch n.kind {
	case '{':
		b = append(b, '{')
		idx := make([]int, len(n.keys))
		for i := range idx {
			idx[i] = i
		}
		if canonical {
			sort.SliceStable(idx, func(a, c int) bool { return n.keys[idx[a]] < n.keys[idx[c]] })
		}
		for j, i := range idx {
			if j > 0 {
				b = append(b, ',')
			}
			b, _ = jsontext.AppendQuote(b, n.keys[i])
			b = append(b, ':')
			b = n.vals[i].appendJSON(b, canonical)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for i, v := range n.vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.appendJSON(b, canonical)
		}
		return append(b, ']')
	}
	return append(b, n.raw...)
}

// Redaction modes.
const (
	RedactMask = "mask" // values become "***"
	RedactHMAC = "hmac" // values become hmac-sha256:<hex> of their canonical JSON
)

// redactor replaces values.
type redactor struct {
	mode string
	key  []byte
}

func (r *redactor) value(n *node) *node {
	if r.mode != RedactHMAC {
		return strNode("***")
	}
	var h hash.Hash = hmac.New(sha256.New, r.key)
	h.Write(n.appendJSON(nil, true))
	return strNode("hmac-sha256:" + hex.EncodeToString(h.Sum(nil)))
}

// paramContext is what the transformation needs to know.
type paramContext struct {
	spec   *compiledSpec
	red    *redactor
	schema func(table string) []string // key attribute names of a table, nil if unknown
}

// transform rewrites a request body tree in place into requestParameters:
// lower-camel member names (except under verbatim paths), values redacted
// per the service table.
func (pc *paramContext) transform(n *node) *node {
	return pc.walk(n, nil, "", false)
}

func (pc *paramContext) walk(n *node, path []string, table string, verbatim bool) *node {
	s := pc.spec
	switch {
	case s.RedactAll && n.kind == 0:
		return pc.red.value(n)
	case len(path) > 0 && anyPath(s.whole, path):
		return pc.red.value(n)
	case len(path) > 0 && anyPath(s.items, path) && n.kind == '{':
		keys := pc.schema(table)
		for i, k := range n.keys {
			if !slices.Contains(keys, k) {
				n.vals[i] = pc.red.value(n.vals[i])
			}
		}
		return n
	case len(path) > 0 && anyPath(s.each, path):
		for i := range n.vals {
			n.vals[i] = pc.red.value(n.vals[i])
		}
		return n
	}
	verbatim = verbatim || (len(path) > 0 && anyPath(s.verbatim, path))
	switch n.kind {
	case '{':
		if s.TableMember != "" {
			if t, ok := n.get(s.TableMember).str(); ok {
				table = t
			}
		}
		inTableMap := len(path) > 0 && slices.Contains(s.TableMaps, strings.Join(path, "."))
		keepKeys := verbatim || (len(path) > 0 && anyPath(s.verbatimKeys, path))
		for i, k := range n.keys {
			t := table
			if inTableMap {
				t = k
			}
			n.vals[i] = pc.walk(n.vals[i], append(path[:len(path):len(path)], k), t, verbatim)
			if !keepKeys {
				n.keys[i] = lowerFirst(k)
			}
		}
	case '[':
		for i := range n.vals {
			n.vals[i] = pc.walk(n.vals[i], path, table, verbatim)
		}
	}
	return n
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || unicode.IsLower(r) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// collect returns the string values at path in the original (untransformed)
// tree; a path ending in ".*" returns the member names of the object there.
func collect(n *node, pattern []string) []string {
	var out []string
	var visit func(n *node, path []string)
	keysOnly := len(pattern) > 0 && pattern[len(pattern)-1] == "*"
	var base []string
	if keysOnly {
		base = pattern[:len(pattern)-1]
	}
	visit = func(n *node, path []string) {
		if len(path) > maxDepth {
			return
		}
		switch n.kind {
		case '{':
			if keysOnly && pathMatch(base, path) {
				out = append(out, n.keys...)
			}
			for i, k := range n.keys {
				visit(n.vals[i], append(path[:len(path):len(path)], k))
			}
		case '[':
			for _, v := range n.vals {
				visit(v, path)
			}
		default:
			if !keysOnly && pathMatch(pattern, path) {
				if s, ok := n.str(); ok {
					out = append(out, s)
				}
			}
		}
	}
	visit(n, nil)
	return out
}

// formTree turns query-protocol parameters into a tree, without the protocol's
// own members (Action, Version, signature parameters). Members are sorted by
// name, since a form has no meaningful order.
func formTree(q url.Values) *node {
	n := &node{kind: '{'}
	names := make([]string, 0, len(q))
	for k := range q {
		if k == "Action" || k == "Version" || strings.HasPrefix(k, "X-Amz-") || k == "x-id" {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		vs := q[k]
		if len(vs) == 1 {
			n.keys, n.vals = append(n.keys, k), append(n.vals, strNode(vs[0]))
			continue
		}
		arr := &node{kind: '['}
		for _, v := range vs {
			arr.vals = append(arr.vals, strNode(v))
		}
		n.keys, n.vals = append(n.keys, k), append(n.vals, arr)
	}
	return n
}

// resourceARNs derives the resources of a call from the service's rules.
func resourceARNs(spec *serviceSpec, c *call, body *node, account string) []audit.Resource {
	var out []audit.Resource
	add := func(typ, arn string) {
		if arn == "" || len(out) >= maxResources {
			return
		}
		for _, r := range out {
			if r.Type == typ && r.ARN == arn {
				return
			}
		}
		out = append(out, audit.Resource{AccountID: account, Type: typ, ARN: arn})
	}
	fill := func(tmpl, value string) string {
		return fillARN(tmpl, c.Region, account, c.Bucket, c.Key, value)
	}
	for _, rule := range spec.Resources {
		switch {
		case rule.ObjectOnly:
			if c.Bucket != "" && c.Key != "" {
				add(rule.Type, fill(rule.ARN, ""))
			}
			continue
		case rule.BucketOnly:
			if c.Bucket != "" {
				add(rule.Type, fill(rule.ARN, ""))
			}
			continue
		case body == nil || rule.From == "":
			continue
		}
		for _, v := range collect(body, strings.Split(rule.From, ".")) {
			if rule.Regexp != nil {
				m := rule.Regexp.FindStringSubmatch(v)
				if m == nil {
					continue
				}
				v = m[1]
			}
			if v == "" {
				continue
			}
			add(rule.Type, fill(rule.ARN, v))
		}
	}
	return out
}

const maxResources = 16

// fillARN replaces the placeholders {region}, {account}, {bucket}, {key} and
// {value} in an ARN template, as a strings.Replacer would (leftmost first,
// replacements not rescanned), without building one per call.
func fillARN(tmpl, region, account, bucket, key, value string) string {
	var b strings.Builder
	b.Grow(len(tmpl) + len(region) + len(account) + len(bucket) + len(key) + len(value))
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i])
		tmpl = tmpl[i:]
		switch {
		case strings.HasPrefix(tmpl, "{region}"):
			b.WriteString(region)
			tmpl = tmpl[len("{region}"):]
		case strings.HasPrefix(tmpl, "{account}"):
			b.WriteString(account)
			tmpl = tmpl[len("{account}"):]
		case strings.HasPrefix(tmpl, "{bucket}"):
			b.WriteString(bucket)
			tmpl = tmpl[len("{bucket}"):]
		case strings.HasPrefix(tmpl, "{key}"):
			b.WriteString(key)
			tmpl = tmpl[len("{key}"):]
		case strings.HasPrefix(tmpl, "{value}"):
			b.WriteString(value)
			tmpl = tmpl[len("{value}"):]
		default:
			b.WriteByte('{')
			tmpl = tmpl[1:]
		}
	}
}
