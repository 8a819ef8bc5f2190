package digest

import (
	"fmt"
	"io"
	"time"
)

// displayLayout is how the CLI prints times.
const displayLayout = "2006-01-02T15:04:05Z"

// Kind says what a Result is about.
type Kind int

const (
	KindDigest         Kind = iota // a digest file
	KindBackfillDigest             // a backfill digest file (written by AWS only)
	KindLogFile                    // a log file listed in a valid digest
	KindGap                        // a break in the chain: no digest covers a span of time
)

// Result is one line of the report.
type Result struct {
	Kind        Kind
	Bucket, Key string // the file's location; empty for a gap
	Valid       bool   // false for an invalid file; true for a valid file and for a gap
	// Reason says why an invalid file is invalid, as the CLI words it after "INVALID: "
	// ("not found", "hash value doesn't match", "signature verification failed", ...).
	Reason string
	// Line is the line the CLI prints for this result.
	Line string
}

// error reports whether the CLI prints r as an error (to stderr, whether verbose or not).
func (r Result) error() bool { return !r.Valid || r.Kind == KindGap }

// Report is the outcome of Validate: every file checked, in the CLI's order, and the
// CLI's counts.
type Report struct {
	TrailARN   string
	Start, End time.Time // the range asked for
	// FoundStart and FoundEnd are the span the valid digests cover, clipped to the range
	// asked for; zero when no digest was valid.
	FoundStart, FoundEnd time.Time
	Verbose              bool // print valid files too

	Results                                      []Result
	ValidDigests, InvalidDigests                 int
	ValidBackfillDigests, InvalidBackfillDigests int
	ValidLogs, InvalidLogs                       int
}

// Valid reports whether nothing checked was invalid: what the CLI's exit status 0 says.
// A chain gap is not invalid, and neither is finding no digest at all.
func (r *Report) Valid() bool {
	return r.InvalidDigests == 0 && r.InvalidBackfillDigests == 0 && r.InvalidLogs == 0
}

// Print writes the report as the CLI does: the banner, valid files (when Verbose) and the
// summary to stdout, invalid files and gaps to stderr, spaced as the CLI spaces them.
func (r *Report) Print(stdout, stderr io.Writer) error {
	w := &errWriter{}
	w.printf(stdout, "Validating log files for trail %s between %s and %s\n\n", r.TrailARN, display(r.Start), display(r.End))
	double := true // the last status line was followed by a blank line
	for _, res := range r.Results {
		switch {
		case res.error() && double:
			w.printf(stderr, "%s\n\n", res.Line)
		case res.error():
			w.printf(stderr, "\n%s\n\n", res.Line)
			double = true
		case r.Verbose:
			w.printf(stdout, "%s\n", res.Line)
			double = false
		}
	}
	if !double {
		w.printf(stdout, "\n")
	}
	w.printf(stdout, "Results requested for %s to %s\n", display(r.Start), display(r.End))
	if r.ValidDigests+r.InvalidDigests+r.ValidBackfillDigests+r.InvalidBackfillDigests == 0 {
		w.printf(stdout, "No digests found\n")
		return w.err
	}
	if r.FoundStart.IsZero() || r.FoundEnd.IsZero() {
		w.printf(stdout, "No valid digests found in range\n")
	} else {
		w.printf(stdout, "Results found for %s to %s:\n", display(r.FoundStart), display(r.FoundEnd))
	}
	w.ratio(stdout, r.ValidDigests, r.InvalidDigests, "digest")
	w.ratio(stdout, r.ValidBackfillDigests, r.InvalidBackfillDigests, "backfill digest")
	w.ratio(stdout, r.ValidLogs, r.InvalidLogs, "log")
	w.printf(stdout, "\n")
	return w.err
}

func display(t time.Time) string { return t.UTC().Format(displayLayout) }

// errWriter keeps the first write error so Print reads as the CLI's sequence of writes.
type errWriter struct{ err error }

func (w *errWriter) printf(out io.Writer, format string, args ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(out, format, args...)
	}
}

func (w *errWriter) ratio(out io.Writer, valid, invalid int, name string) {
	total := valid + invalid
	if total == 0 {
		return
	}
	w.printf(out, "\n%d/%d %s files valid", valid, total, name)
	if invalid > 0 {
		w.printf(out, ", %d/%d %s files INVALID", invalid, total, name)
	}
}
