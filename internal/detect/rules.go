package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opentrail/opentrail/internal/sigma"
)

// Rule statuses other than an error's text.
const (
	StatusOK            = "ok"
	StatusNotApplicable = "not applicable" // its logsource is not AWS CloudTrail
)

// RuleStatus is one loaded rule, or one file or rule that failed to load.
type RuleStatus struct {
	ID      string `json:"RuleId,omitempty"`
	Title   string `json:"Title,omitempty"`
	Level   string `json:"Level,omitempty"`
	File    string `json:"File"`
	Line    int    `json:"Line,omitempty"`
	Status  string `json:"Status"` // StatusOK, StatusNotApplicable, or what is wrong
	Matches int64  `json:"Matches"`
}

// RuleSet is what one (re)load produced.
type RuleSet struct {
	set          *sigma.Set
	correlations bool // some rule is a correlation: state must be kept
	statuses     []RuleStatus
	errors       int
}

// Rules lists every rule of the last load, with its status and the matches
// it found in account's events since the server started.
func (s *Service) Rules(account string) []RuleStatus {
	rs := s.rules.Load()
	if rs == nil {
		return []RuleStatus{}
	}
	out := slices.Clone(rs.statuses)
	for i := range out {
		if out[i].ID != "" {
			out[i].Matches = s.stats.matches(account, out[i].ID)
		}
	}
	return out
}

// RuleErrors is how many rules or files failed to load at the last (re)load.
func (s *Service) RuleErrors() int {
	if rs := s.rules.Load(); rs != nil {
		return rs.errors
	}
	return 0
}

// Reload reads the rule files again and swaps the rule set atomically; the
// correlation state of the accounts is kept, so unchanged correlations go on
// counting. Errors are logged and reported by Rules.
func (s *Service) Reload() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	sig, _ := fingerprint(s.o.Paths)
	rs := Load(s.o.Paths)
	for _, st := range rs.statuses {
		if st.Status != StatusOK && st.Status != StatusNotApplicable {
			s.log.Error("rule not loaded", "file", st.File, "line", st.Line, "rule", st.ID, "err", st.Status)
		}
	}
	s.filesSig = sig
	s.rules.Store(rs)
	s.stats.setErrors(rs.errors)
	n := 0
	for _, st := range rs.statuses {
		if st.Status == StatusOK {
			n++
		}
	}
	s.log.Info("detection rules loaded", "rules", n, "errors", rs.errors)
}

// watch reloads the rules when a rule file changes, appears or disappears.
func (s *Service) watch(ctx context.Context) {
	defer s.wg.Done()
	if len(s.o.Paths) == 0 {
		return
	}
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sig, _ := fingerprint(s.o.Paths)
		s.reloadMu.Lock()
		changed := sig != s.filesSig
		s.reloadMu.Unlock()
		if changed {
			s.Reload()
		}
	}
}

// Load parses every rule file under paths and builds the set of the
// applicable rules that parsed. It never fails as a whole: what is wrong is
// in the statuses, one per bad file or rule.
func Load(paths []string) *RuleSet {
	rs := &RuleSet{}
	files, errs := RuleFiles(paths)
	for _, err := range errs {
		rs.statuses = append(rs.statuses, RuleStatus{File: err.file, Status: err.err.Error()})
	}
	var rules []*sigma.Rule
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			rs.statuses = append(rs.statuses, RuleStatus{File: f, Status: err.Error()})
			continue
		}
		parsed, perrs := sigma.ParseFile(f, data)
		for _, err := range perrs {
			file, line := errorPlace(err, f)
			rs.statuses = append(rs.statuses, RuleStatus{File: file, Line: line, Status: err.Error()})
		}
		for _, r := range parsed {
			st := RuleStatus{ID: r.Key(), Title: r.Title, Level: strings.ToLower(r.Level), File: r.File, Line: r.Line, Status: StatusOK}
			if !r.Applies {
				st.Status = StatusNotApplicable
			} else {
				rules = append(rules, r)
			}
			rs.statuses = append(rs.statuses, st)
		}
	}
	set, serrs := sigma.NewSet(rules)
	for _, err := range serrs {
		file, line := errorPlace(err, "")
		rs.statuses = append(rs.statuses, RuleStatus{File: file, Line: line, Status: err.Error()})
	}
	rs.set = set
	if set != nil {
		// A rule the set refused is not running: its status says why, not "ok".
		running := map[*sigma.Rule]bool{}
		for _, r := range set.Rules() {
			running[r] = true
			rs.correlations = rs.correlations || r.Correlation != nil
		}
		for i, r := range rules {
			if !running[r] {
				markRefused(rs.statuses, rules[i])
			}
		}
	}
	for _, st := range rs.statuses {
		if st.Status != StatusOK && st.Status != StatusNotApplicable {
			rs.errors++
		}
	}
	return rs
}

// Statuses are the rules and files of the load, with what is wrong with them.
func (rs *RuleSet) Statuses() []RuleStatus { return rs.statuses }

// Errors is how many rules or files failed to load.
func (rs *RuleSet) Errors() int { return rs.errors }

// Running is how many rules the set evaluates.
func (rs *RuleSet) Running() int {
	if rs.set == nil {
		return 0
	}
	return len(rs.set.Rules())
}

// markRefused marks the status of a parsed rule that the set did not take.
func markRefused(statuses []RuleStatus, r *sigma.Rule) {
	for i := range statuses {
		st := &statuses[i]
		if st.File == r.File && st.Line == r.Line && st.Status == StatusOK {
			st.Status = "not in the rule set (see the errors of this file)"
		}
	}
}

// errorPlace is the file and line a rule error points at (file, 0 when it has none).
func errorPlace(err error, file string) (string, int) {
	var se *sigma.Error
	if errors.As(err, &se) {
		return se.File, se.Line
	}
	return file, 0
}

type fileErr struct {
	file string
	err  error
}

// RuleFiles lists the rule files under paths: each path is a file, or a
// folder read recursively for *.yml and *.yaml (hidden entries skipped).
func RuleFiles(paths []string) ([]string, []fileErr) {
	var files []string
	var errs []fileErr
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fileErr{p, err})
			continue
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, fileErr{path, err})
				return nil
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && (strings.HasSuffix(d.Name(), ".yml") || strings.HasSuffix(d.Name(), ".yaml")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fileErr{p, err})
		}
	}
	return files, errs
}

// fingerprint summarises the names, sizes and modification times of the rule
// files: it changes when a file is edited, added or removed.
func fingerprint(paths []string) (string, error) {
	files, errs := RuleFiles(paths)
	h := sha256.New()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(h, "%s\x00gone\x00", f)
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", f, fi.Size(), fi.ModTime().UnixNano())
	}
	for _, e := range errs {
		fmt.Fprintf(h, "%s\x00%v\x00", e.file, e.err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
