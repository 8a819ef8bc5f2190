package sigma

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Rule is one Sigma rule: a detection, correlation or filter rule.
type Rule struct {
	ID, Name, Title, Status, Description, Author, License, Level string
	Date, Modified                                               string
	Tags, References, FalsePositives, Fields                     []string

	// Logsource as written; Applies says whether it names CloudTrail
	// (product aws with service cloudtrail or no service, and no category).
	Product, Service, Category string
	Applies                    bool

	// File and Line locate the rule's document (its first line).
	File string
	Line int

	Correlation *Correlation // non-nil for a correlation rule
	Filter      *Filter      // non-nil for a filter rule

	det *detection // the detection; for a filter rule, what it suppresses; nil for a correlation
}

// Filter is the filter part of a Sigma filter rule: matches of the rules it
// names are suppressed when its condition holds.
type Filter struct {
	Rules []string // ids or names
}

// Key returns what names the rule: its id, else its name, else file:line.
func (r *Rule) Key() string {
	switch {
	case r.ID != "":
		return r.ID
	case r.Name != "":
		return r.Name
	}
	return fmt.Sprintf("%s:%d", r.File, r.Line)
}

// Correlation is the correlation part of a correlation rule.
type Correlation struct {
	Type     string // event_count, value_count, temporal, temporal_ordered
	Rules    []string
	GroupBy  []string
	Timespan time.Duration
	Generate bool

	// Condition: the count must satisfy every one of Conds (one, or two for
	// a range such as gt 100 and lte 200). The count is of events
	// (event_count), of distinct values of Field (value_count) or of distinct
	// rules matched (temporal; in order for temporal_ordered), whose
	// condition defaults to all of Rules. Op and Count repeat Conds[0].
	Conds []CountCond
	Op    string
	Count int64
	Field string

	// Aliases maps an alias used in GroupBy (or Field) to the field it
	// stands for in each referenced rule (by id or name).
	Aliases map[string]map[string]string

	base []*Rule // resolved Rules, set by NewSet
}

// CountCond is one criterion of a correlation condition.
type CountCond struct {
	Op    string // gt, gte, lt, lte, eq
	Count int64
}

// closesWindow reports whether the correlation can only be decided when its
// window closes: when a count below a bound satisfies it.
func (c *Correlation) closesWindow() bool {
	for _, cc := range c.Conds {
		if cc.Op == "lt" || cc.Op == "lte" {
			return true
		}
	}
	return false
}

// Error is a problem in a rule file, with its position.
type Error struct {
	File      string
	Line, Col int // 1-based; Col 0 when unknown
	Msg       string
}

func (e *Error) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// errAt returns an Error at n's position in document d.
func (d *doc) errAt(n *yaml.Node, format string, args ...any) *Error {
	line, col := d.line, 1
	if n != nil {
		line, col = d.line+n.Line-1, n.Column
	}
	return &Error{File: d.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// doc is one YAML document of a rule file.
type doc struct {
	file string
	line int // first line of the document in the file, 1-based
	text string
}

// splitDocs splits a file at lines of "---" (YAML document markers). It splits
// the text itself rather than letting the YAML decoder walk the stream, so that
// a syntax error in one document does not lose the documents after it.
func splitDocs(file string, data []byte) []doc {
	var docs []doc
	lines := strings.SplitAfter(string(data), "\n")
	startLine := 1
	var b strings.Builder
	flush := func() {
		if strings.TrimSpace(stripComments(b.String())) != "" {
			docs = append(docs, doc{file: file, line: startLine, text: b.String()})
		}
		b.Reset()
	}
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if t == "---" || strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "---\t") || t == "..." {
			flush()
			startLine = i + 2
			// Keep line numbers: the marker line becomes a blank line.
			continue
		}
		if b.Len() == 0 {
			startLine = i + 1
		}
		b.WriteString(l)
	}
	flush()
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") && t != "%YAML 1.2" && !strings.HasPrefix(t, "%") {
			b.WriteString(l)
		}
	}
	return b.String()
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// ParseFile parses the Sigma rules in a file (one rule per YAML document) and
// returns the good ones and one error per document that is not a good rule.
// name is used only in positions.
func ParseFile(name string, data []byte) ([]*Rule, []error) {
	var rules []*Rule
	var errs []error
	for _, d := range splitDocs(name, data) {
		r, err := d.parse()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	return rules, errs
}

// parse parses one document into a rule.
func (d *doc) parse() (*Rule, error) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(d.text), &root); err != nil {
		msg := err.Error()
		line := d.line
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			line, msg = d.line+n-1, m[2]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		return nil, &Error{File: d.file, Line: line, Msg: "yaml: " + msg}
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, d.errAt(&root, "rule: not one YAML document")
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, d.errAt(top, "rule: want a mapping of rule attributes")
	}
	r := &Rule{File: d.file, Line: d.line}
	var detNode, corrNode, filterNode *yaml.Node
	var titleNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if seen[k.Value] {
			return nil, d.errAt(k, "rule: %s given twice", k.Value)
		}
		seen[k.Value] = true
		var err *Error
		switch k.Value {
		case "title":
			titleNode = v
			r.Title, err = d.str(v, "title")
		case "id":
			r.ID, err = d.str(v, "id")
		case "name":
			r.Name, err = d.str(v, "name")
		case "status":
			r.Status, err = d.str(v, "status")
		case "description":
			r.Description, err = d.str(v, "description")
		case "author":
			r.Author, err = d.str(v, "author")
		case "license":
			r.License, err = d.str(v, "license")
		case "date":
			r.Date, err = d.str(v, "date")
		case "modified":
			r.Modified, err = d.str(v, "modified")
		case "level":
			r.Level, err = d.str(v, "level")
			if err == nil {
				switch r.Level {
				case "informational", "low", "medium", "high", "critical":
				default:
					err = d.errAt(v, "level: %q is not informational, low, medium, high or critical", r.Level)
				}
			}
		case "tags":
			r.Tags, err = d.strs(v, "tags")
		case "references":
			r.References, err = d.strs(v, "references")
		case "falsepositives":
			r.FalsePositives, err = d.strs(v, "falsepositives")
		case "fields":
			r.Fields, err = d.strs(v, "fields")
		case "logsource":
			err = d.logsource(v, r)
		case "detection":
			detNode = v
		case "correlation":
			corrNode = v
		case "action":
			err = d.errAt(v, "action: rule collections (action: global/reset/repeat) are not supported; write each rule in full")
		case "filter":
			filterNode = v
		}
		if err != nil {
			return nil, err
		}
	}
	if titleNode == nil || r.Title == "" {
		return nil, d.errAt(top, "rule: title is required")
	}
	sections := 0
	for _, n := range []*yaml.Node{detNode, corrNode, filterNode} {
		if n != nil {
			sections++
		}
	}
	switch {
	case sections > 1:
		return nil, d.errAt(top, "rule: give one of detection, correlation and filter")
	case filterNode != nil:
		if !seen["logsource"] {
			return nil, d.errAt(top, "rule: logsource is required")
		}
		f, det, err := d.filter(filterNode)
		if err != nil {
			return nil, err
		}
		r.Filter, r.det = f, det
	case corrNode != nil:
		c, err := d.correlation(corrNode)
		if err != nil {
			return nil, err
		}
		r.Correlation = c
		r.Applies = true // until NewSet finds a base rule that does not apply
	case detNode != nil:
		if !seen["logsource"] {
			return nil, d.errAt(top, "rule: logsource is required")
		}
		det, err := d.detection(detNode)
		if err != nil {
			return nil, err
		}
		r.det = det
	default:
		return nil, d.errAt(top, "rule: detection (or correlation) is required")
	}
	return r, nil
}

// filter parses a filter section: rules, and search identifiers with a
// condition as in a detection.
func (d *doc) filter(v *yaml.Node) (*Filter, *detection, *Error) {
	if v.Kind != yaml.MappingNode {
		return nil, nil, d.errAt(v, "filter: want a mapping of rules, search identifiers and a condition")
	}
	f := &Filter{}
	det := *v
	det.Content = nil
	for i := 0; i+1 < len(v.Content); i += 2 {
		if v.Content[i].Value == "rules" {
			var err *Error
			if f.Rules, err = d.strs(v.Content[i+1], "filter.rules"); err != nil {
				return nil, nil, err
			}
			continue
		}
		det.Content = append(det.Content, v.Content[i], v.Content[i+1])
	}
	if len(f.Rules) == 0 {
		return nil, nil, d.errAt(v, "filter.rules is required")
	}
	dt, err := d.detection(&det)
	if err != nil {
		return nil, nil, err
	}
	return f, dt, nil
}

// str reads a scalar attribute.
func (d *doc) str(v *yaml.Node, what string) (string, *Error) {
	if v.Kind != yaml.ScalarNode {
		return "", d.errAt(v, "%s: want a string", what)
	}
	return v.Value, nil
}

// strs reads a list of scalars (or one scalar).
func (d *doc) strs(v *yaml.Node, what string) ([]string, *Error) {
	if v.Kind == yaml.ScalarNode {
		if v.Tag == "!!null" {
			return nil, nil
		}
		return []string{v.Value}, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, d.errAt(v, "%s: want a list of strings", what)
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode {
			return nil, d.errAt(e, "%s: want a list of strings", what)
		}
		out = append(out, e.Value)
	}
	return out, nil
}

func (d *doc) logsource(v *yaml.Node, r *Rule) *Error {
	if v.Kind != yaml.MappingNode {
		return d.errAt(v, "logsource: want a mapping")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		s, err := d.str(val, "logsource."+k.Value)
		if err != nil {
			return err
		}
		switch k.Value {
		case "product":
			r.Product = s
		case "service":
			r.Service = s
		case "category":
			r.Category = s
		}
	}
	r.Applies = strings.EqualFold(r.Product, "aws") && r.Category == "" &&
		(r.Service == "" || strings.EqualFold(r.Service, "cloudtrail"))
	return nil
}

// correlation parses a correlation section.
func (d *doc) correlation(v *yaml.Node) (*Correlation, *Error) {
	if v.Kind != yaml.MappingNode {
		return nil, d.errAt(v, "correlation: want a mapping")
	}
	c := &Correlation{}
	var condNode, typeNode, spanNode *yaml.Node
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		var err *Error
		switch k.Value {
		case "type":
			typeNode = val
			c.Type, err = d.str(val, "correlation.type")
		case "rules":
			c.Rules, err = d.strs(val, "correlation.rules")
		case "group-by":
			c.GroupBy, err = d.strs(val, "correlation.group-by")
		case "timespan", "timeframe":
			spanNode = val
			var s string
			if s, err = d.str(val, "correlation.timespan"); err == nil {
				var perr error
				if c.Timespan, perr = parseTimespan(s); perr != nil {
					err = d.errAt(val, "correlation.timespan: %v", perr)
				}
			}
		case "generate":
			if val.Kind != yaml.ScalarNode || (val.Value != "true" && val.Value != "false") {
				err = d.errAt(val, "correlation.generate: want true or false")
			}
			c.Generate = val.Value == "true"
		case "condition":
			condNode = val
		case "aliases":
			c.Aliases, err = d.aliases(val)
		default:
			err = d.errAt(k, "correlation: unknown attribute %q", k.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	switch c.Type {
	case "event_count", "value_count", "temporal", "temporal_ordered":
	case "":
		return nil, d.errAt(v, "correlation.type is required")
	default:
		return nil, d.errAt(typeNode, "correlation.type: %q is not event_count, value_count, temporal or temporal_ordered", c.Type)
	}
	if len(c.Rules) == 0 {
		return nil, d.errAt(v, "correlation.rules is required")
	}
	if spanNode == nil {
		return nil, d.errAt(v, "correlation.timespan is required")
	}
	if (c.Type == "temporal" || c.Type == "temporal_ordered") && len(c.Rules) < 2 {
		return nil, d.errAt(v, "correlation.rules: a %s correlation needs at least two rules", c.Type)
	}
	switch c.Type {
	case "event_count", "value_count":
		if condNode == nil {
			return nil, d.errAt(v, "correlation.condition is required for %s", c.Type)
		}
		if err := d.corrCondition(condNode, c); err != nil {
			return nil, err
		}
		if c.Type == "value_count" && c.Field == "" {
			return nil, d.errAt(condNode, "correlation.condition.field is required for value_count")
		}
		if c.Type == "event_count" && c.Field != "" {
			return nil, d.errAt(condNode, "correlation.condition.field is only for value_count")
		}
	default:
		if condNode != nil {
			if err := d.corrCondition(condNode, c); err != nil {
				return nil, err
			}
			if c.Field != "" {
				return nil, d.errAt(condNode, "correlation.condition.field is only for value_count")
			}
		}
	}
	return c, nil
}

func (d *doc) corrCondition(v *yaml.Node, c *Correlation) *Error {
	if v.Kind != yaml.MappingNode {
		return d.errAt(v, "correlation.condition: want a mapping such as gte: 10")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "field":
			s, err := d.str(val, "correlation.condition.field")
			if err != nil {
				return err
			}
			c.Field = s
		case "gt", "gte", "lt", "lte", "eq":
			n, err := strconv.ParseInt(val.Value, 10, 64)
			if val.Kind != yaml.ScalarNode || err != nil || n < 0 {
				return d.errAt(val, "correlation.condition.%s: want a non-negative integer", k.Value)
			}
			c.Conds = append(c.Conds, CountCond{Op: k.Value, Count: n})
		default:
			return d.errAt(k, "correlation.condition: unknown operator %q (want gt, gte, lt, lte, eq or field)", k.Value)
		}
	}
	if len(c.Conds) == 0 {
		return d.errAt(v, "correlation.condition: one of gt, gte, lt, lte, eq is required")
	}
	c.Op, c.Count = c.Conds[0].Op, c.Conds[0].Count
	return nil
}

func (d *doc) aliases(v *yaml.Node) (map[string]map[string]string, *Error) {
	if v.Kind != yaml.MappingNode {
		return nil, d.errAt(v, "correlation.aliases: want a mapping")
	}
	out := map[string]map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if val.Kind != yaml.MappingNode {
			return nil, d.errAt(val, "correlation.aliases.%s: want a mapping of rule to field", k.Value)
		}
		m := map[string]string{}
		for j := 0; j+1 < len(val.Content); j += 2 {
			s, err := d.str(val.Content[j+1], "correlation.aliases."+k.Value)
			if err != nil {
				return nil, err
			}
			m[val.Content[j].Value] = s
		}
		out[k.Value] = m
	}
	return out, nil
}

// parseTimespan parses a Sigma timespan: a positive integer and a unit s, m,
// h, d or w.
func parseTimespan(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("%q is not a number followed by s, m, h, d or w", s)
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive number followed by s, m, h, d or w", s)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, fmt.Errorf("%q: unit must be s, m, h, d or w", s)
	}
	if n > int64(100*365*24*time.Hour/unit) {
		return 0, fmt.Errorf("%q is longer than 100 years", s)
	}
	return time.Duration(n) * unit, nil
}
