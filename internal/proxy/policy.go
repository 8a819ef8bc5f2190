package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Policy is an endpoint policy: the subset of IAM's policy language that a VPC
// endpoint policy uses without conditions. Evaluation follows IAM: an explicit
// Deny wins, else an Allow is needed, else the call is implicitly denied.
type Policy struct {
	Version    string
	Statements []Statement
}

// Statement is one policy statement.
type Statement struct {
	Sid       string
	Effect    string   // Allow or Deny
	Principal []string // "*", access key IDs or ARNs (wildcards allowed)
	Action    []string // service:Operation, wildcards allowed
	NotAction []string
	Resource  []string // ARNs, wildcards allowed
}

// PolicyError names where a policy document is wrong.
type PolicyError struct {
	Line, Col int
	Field     string
	Msg       string
}

func (e *PolicyError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("proxy: policy line %d col %d: %s: %s", e.Line, e.Col, e.Field, e.Msg)
	}
	return fmt.Sprintf("proxy: policy line %d col %d: %s", e.Line, e.Col, e.Msg)
}

// ParsePolicy parses a policy document, rejecting unknown members and bad values.
func ParsePolicy(doc []byte) (*Policy, error) {
	pp := &policyParser{doc: doc, dec: jsontext.NewDecoder(bytes.NewReader(doc))}
	p, err := pp.policy()
	if err != nil {
		return nil, err
	}
	if _, err := pp.dec.ReadToken(); err == nil {
		return nil, pp.errf("", "data after the policy document")
	}
	return p, nil
}

type policyParser struct {
	doc     []byte
	dec     *jsontext.Decoder
	nameOff int64 // where the member name being parsed starts
}

// errName reports an error at the current member's name.
func (pp *policyParser) errName(field, format string, args ...any) *PolicyError {
	return pp.errAt(pp.nameOff, field, format, args...)
}

func (pp *policyParser) errAt(off int64, field, format string, args ...any) *PolicyError {
	off = min(max(off, 0), int64(len(pp.doc)))
	line := 1 + bytes.Count(pp.doc[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(pp.doc[:off], '\n')
	return &PolicyError{Line: line, Col: col, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (pp *policyParser) errf(field, format string, args ...any) *PolicyError {
	return pp.errAt(pp.dec.InputOffset(), field, format, args...)
}

func (pp *policyParser) syntax(err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return pp.errAt(se.ByteOffset, "", "malformed JSON: %v", se.Err)
	}
	return pp.errf("", "malformed JSON: %v", err)
}

// policy = "{" ( "Version" | "Id" | "Statement" ) ... "}"
func (pp *policyParser) policy() (*Policy, error) {
	p := &Policy{}
	seen := map[string]bool{}
	err := pp.object("policy", func(name string) error {
		if seen[name] {
			return pp.errName(name, "appears twice")
		}
		seen[name] = true
		switch name {
		case "Version":
			v, err := pp.str(name)
			if err != nil {
				return err
			}
			if v != "2012-10-17" && v != "2008-10-17" {
				return pp.errf(name, "is %q; want 2012-10-17 or 2008-10-17", v)
			}
			p.Version = v
		case "Id":
			_, err := pp.str(name)
			return err
		case "Statement":
			if pp.dec.PeekKind() == '{' {
				s, err := pp.statement("Statement")
				if err != nil {
					return err
				}
				p.Statements = append(p.Statements, s)
				return nil
			}
			if pp.dec.PeekKind() != '[' {
				return pp.errf(name, "must be a statement object or a list of them")
			}
			pp.dec.ReadToken()
			for i := 0; pp.dec.PeekKind() != ']'; i++ {
				s, err := pp.statement(fmt.Sprintf("Statement[%d]", i))
				if err != nil {
					return err
				}
				p.Statements = append(p.Statements, s)
			}
			if _, err := pp.dec.ReadToken(); err != nil {
				return pp.syntax(err)
			}
		default:
			return pp.errName(name, "unknown member; a policy has Version, Id and Statement")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(p.Statements) == 0 {
		return nil, pp.errf("Statement", "is missing or empty")
	}
	return p, nil
}

// statement = "{" ( Sid | Effect | Principal | Action | NotAction | Resource ) ... "}"
func (pp *policyParser) statement(where string) (Statement, error) {
	var s Statement
	seen := map[string]bool{}
	start := pp.dec.InputOffset()
	err := pp.object(where, func(name string) error {
		field := where + "." + name
		if seen[name] {
			return pp.errName(field, "appears twice")
		}
		seen[name] = true
		var err error
		switch name {
		case "Sid":
			s.Sid, err = pp.str(field)
		case "Effect":
			if s.Effect, err = pp.str(field); err == nil && s.Effect != "Allow" && s.Effect != "Deny" {
				err = pp.errf(field, "is %q; want Allow or Deny", s.Effect)
			}
		case "Principal":
			s.Principal, err = pp.principal(field)
		case "Action":
			s.Action, err = pp.actions(field)
		case "NotAction":
			s.NotAction, err = pp.actions(field)
		case "Resource":
			s.Resource, err = pp.strings(field)
		case "Condition", "NotPrincipal", "NotResource":
			err = pp.errName(field, "is not supported by the OpenTrail proxy")
		default:
			err = pp.errName(field, "unknown member; a statement has Sid, Effect, Principal, Action, NotAction and Resource")
		}
		return err
	})
	if err != nil {
		return s, err
	}
	switch {
	case s.Effect == "":
		return s, pp.errAt(start, where+".Effect", "is missing")
	case len(s.Action) == 0 && len(s.NotAction) == 0:
		return s, pp.errAt(start, where+".Action", "is missing (or give NotAction)")
	case len(s.Action) > 0 && len(s.NotAction) > 0:
		return s, pp.errAt(start, where+".NotAction", "cannot be combined with Action")
	}
	if len(s.Principal) == 0 {
		s.Principal = []string{"*"} // an endpoint policy without Principal applies to everyone
	}
	if len(s.Resource) == 0 {
		s.Resource = []string{"*"}
	}
	return s, nil
}

// object reads an object, calling member for each member name with the
// decoder positioned at its value.
func (pp *policyParser) object(where string, member func(name string) error) error {
	if pp.dec.PeekKind() != '{' {
		if _, err := pp.dec.ReadToken(); err != nil {
			return pp.syntax(err)
		}
		return pp.errf(where, "must be a JSON object")
	}
	pp.dec.ReadToken()
	for pp.dec.PeekKind() != '}' {
		off := pp.dec.InputOffset()
		for off < int64(len(pp.doc)) && strings.IndexByte(", \t\r\n", pp.doc[off]) >= 0 {
			off++
		}
		tok, err := pp.dec.ReadToken()
		if err != nil {
			return pp.syntax(err)
		}
		pp.nameOff = off
		if err := member(tok.String()); err != nil {
			return err
		}
	}
	if _, err := pp.dec.ReadToken(); err != nil {
		return pp.syntax(err)
	}
	return nil
}

func (pp *policyParser) str(field string) (string, error) {
	off := pp.dec.InputOffset()
	if pp.dec.PeekKind() != '"' {
		if _, err := pp.dec.ReadValue(); err != nil {
			return "", pp.syntax(err)
		}
		return "", pp.errAt(off, field, "must be a string")
	}
	tok, err := pp.dec.ReadToken()
	if err != nil {
		return "", pp.syntax(err)
	}
	return tok.String(), nil
}

// strings reads a string or a non-empty list of strings.
func (pp *policyParser) strings(field string) ([]string, error) {
	if pp.dec.PeekKind() != '[' {
		s, err := pp.str(field)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, pp.errf(field, "is empty")
		}
		return []string{s}, nil
	}
	pp.dec.ReadToken()
	var out []string
	for i := 0; pp.dec.PeekKind() != ']'; i++ {
		s, err := pp.str(fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, pp.errf(fmt.Sprintf("%s[%d]", field, i), "is empty")
		}
		out = append(out, s)
	}
	if _, err := pp.dec.ReadToken(); err != nil {
		return nil, pp.syntax(err)
	}
	if len(out) == 0 {
		return nil, pp.errf(field, "is an empty list")
	}
	return out, nil
}

func (pp *policyParser) actions(field string) ([]string, error) {
	acts, err := pp.strings(field)
	if err != nil {
		return nil, err
	}
	for i, a := range acts {
		if a == "*" {
			continue
		}
		svc, op, ok := strings.Cut(a, ":")
		if !ok || svc == "" || op == "" || strings.ContainsAny(svc, "*?") {
			return nil, pp.errf(fmt.Sprintf("%s[%d]", field, i), "%q is not shaped like service:Operation (e.g. dynamodb:GetItem, dynamodb:*)", a)
		}
	}
	return acts, nil
}

// principal = "*" | {"AWS": string | [string]}
func (pp *policyParser) principal(field string) ([]string, error) {
	if pp.dec.PeekKind() == '"' {
		s, err := pp.str(field)
		if err != nil {
			return nil, err
		}
		if s != "*" {
			return nil, pp.errf(field, "a string Principal must be \"*\"; use {\"AWS\": [...]} for access keys or ARNs")
		}
		return []string{"*"}, nil
	}
	var out []string
	err := pp.object(field, func(name string) error {
		if name != "AWS" {
			return pp.errf(field+"."+name, "unknown principal type; only AWS is supported")
		}
		v, err := pp.strings(field + ".AWS")
		out = append(out, v...)
		return err
	})
	if err == nil && len(out) == 0 {
		err = pp.errf(field, "names no principal")
	}
	return out, err
}

// decision is the outcome of evaluating a policy.
type decision int

const (
	allowed decision = iota
	implicitDeny
	explicitDeny
)

// Evaluate decides one call: principals are the caller's identifiers (access
// key ID, ARN), action is service:Operation, resources the call's resource
// ARNs ("*" when it has none). Every resource must be allowed.
func (p *Policy) Evaluate(principals []string, action string, resources []string) decision {
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	out := allowed
	for _, res := range resources {
		switch d := p.evaluateOne(principals, action, res); d {
		case explicitDeny:
			return d
		case implicitDeny:
			out = implicitDeny
		}
	}
	return out
}

func (p *Policy) evaluateOne(principals []string, action, resource string) decision {
	allow := false
	for _, s := range p.Statements {
		if !s.matches(principals, action, resource) {
			continue
		}
		if s.Effect == "Deny" {
			return explicitDeny
		}
		allow = true
	}
	if allow {
		return allowed
	}
	return implicitDeny
}

func (s *Statement) matches(principals []string, action, resource string) bool {
	if len(s.NotAction) > 0 {
		if matchesAnyFold(s.NotAction, action) {
			return false
		}
	} else if !matchesAnyFold(s.Action, action) {
		return false
	}
	princ := false
	for _, pat := range s.Principal {
		for _, p := range principals {
			if pat == "*" || wildcard(pat, p) {
				princ = true
			}
		}
	}
	if !princ {
		return false
	}
	for _, pat := range s.Resource {
		if wildcard(pat, resource) {
			return true
		}
	}
	return false
}

// matchesAnyFold matches actions case-insensitively, as IAM does.
func matchesAnyFold(pats []string, action string) bool {
	for _, p := range pats {
		if wildcard(strings.ToLower(p), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

// wildcard matches s against pattern with * (any run) and ? (any one character).
func wildcard(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case starP >= 0:
			px = starP + 1
			starS++
			sx = starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
