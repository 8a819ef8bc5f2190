package awsapi

import (
	"slices"
	"strings"
	"testing"
)

func TestEmbeddedModels(t *testing.T) {
	tests := []struct {
		name  string
		model func() *Model
		ops   int
		has   string
	}{
		{"cloudtrail", CloudTrailModel, 60, "LookupEvents"},
		{"logs", LogsModel, 113, "PutLogEvents"},
		{"cloudtrail-data", CloudTrailDataModel, 1, "PutAuditEvents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.model()
			if m != tt.model() {
				t.Error("model parsed twice")
			}
			ops := m.Operations()
			if len(ops) != tt.ops || !slices.IsSorted(ops) {
				t.Errorf("Operations() = %d sorted=%v, want %d sorted", len(ops), slices.IsSorted(ops), tt.ops)
			}
			if !m.HasOperation(tt.has) || m.HasOperation("NoSuchOperation") {
				t.Errorf("HasOperation(%q) = %v, HasOperation(NoSuchOperation) = %v",
					tt.has, m.HasOperation(tt.has), m.HasOperation("NoSuchOperation"))
			}
		})
	}
}

func TestLoadModelErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"not json", `{`, "load model"},
		{"unknown input shape", `{"operations":{"Op":{"input":{"shape":"Nope"}}},"shapes":{}}`, `unknown shape "Nope"`},
		{"unknown member shape", `{"shapes":{"S":{"type":"structure","members":{"A":{"shape":"Nope"}}}}}`, "S.A refers to unknown shape"},
		{"list without member", `{"shapes":{"L":{"type":"list"}}}`, "list shape L has no member"},
		{"map without value", `{"shapes":{"K":{"type":"string"},"M":{"type":"map","key":{"shape":"K"}}}}`, "map shape M"},
		{"pattern RE2 cannot parse", `{"shapes":{"S":{"type":"string","pattern":"(?<=a)b"}}}`, "shape S: pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadModel([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadModel error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCompileJavaPattern(t *testing.T) {
	tests := []struct {
		name, pattern string
		match, reject []string
	}{
		{
			name:    "whole value must match",
			pattern: `[\w+=,.@-]*`,
			match:   []string{"", "role-name@x.y"},
			reject:  []string{"my role", "a,b c"},
		},
		{
			name:    "unicode escapes and surrogate pairs",
			pattern: `[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*`,
			match:   []string{"plain text\t", "emoji \U0001F600", "\uFFFD"},
			reject:  []string{"bell\a", "nul\x00"},
		},
		{
			name:    "escaped backslash before u is not a unicode escape",
			pattern: `a\\u0041`,
			match:   []string{`a\u0041`},
			reject:  []string{"aA"},
		},
		{
			name:    "dash after class escape is literal as in Java",
			pattern: `[\w-_]*`,
			match:   []string{"a-b_c"},
			reject:  []string{"a b"},
		},
		{
			name:    "already anchored",
			pattern: `^[0-9]{2}:[0-9]{2}`,
			match:   []string{"12:30"},
			reject:  []string{"12:30:00", "x12:30"},
		},
		{
			name:    "unicode classes",
			pattern: `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`,
			match:   []string{"Ünïcödé tag 1"},
			reject:  []string{"a,b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re, err := compileJavaPattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.match {
				if !re.MatchString(s) {
					t.Errorf("%q does not match %q (as %s)", s, tt.pattern, re)
				}
			}
			for _, s := range tt.reject {
				if re.MatchString(s) {
					t.Errorf("%q matches %q (as %s)", s, tt.pattern, re)
				}
			}
		})
	}
}
