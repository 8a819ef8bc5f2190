package main

// The command-line conventions every command shares, on top of the standard flag package:
// -h/--help prints usage, flags, the environment variables each flag reads and an example to
// stdout and exits 0; a mistake in how a command is called (unknown command or flag, a value not
// among a flag's choices) exits 2 with a "did you mean"; any other failure exits 1.
//
// A command is a func(args []string) error in the table in main.go. It builds its flags with
// newFlags and returns what parse returns; a command written with a plain flag.FlagSet
// (flag.ExitOnError) still exits 0 on -h and 2 on a bad flag, only without suggestions.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// usageError is a mistake in how a command was called; it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitCode prints err for the command named name and returns the process's exit code.
func exitCode(name string, err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", name, ue.msg, name)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// dispatch runs the command of subs that args[0] names. path is the parent's name
// ("opentrail keys").
func dispatch(path string, args []string, subs []command) error {
	if len(args) == 0 {
		commandUsage(os.Stderr, path, subs)
		return usagef("name a command: %s", strings.Join(commandNames(subs), ", "))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" { // "opentrail help keys" is "opentrail keys --help"
			return dispatch(path, append(args[1:2], "--help"), subs)
		}
		commandUsage(os.Stdout, path, subs)
		return flag.ErrHelp
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	return usagef("unknown command %q%s", args[0], didYouMean(args[0], commandNames(subs), ""))
}

func commandNames(cs []command) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.name
	}
	return names
}

func commandUsage(w io.Writer, path string, cs []command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", path)
	for _, c := range cs {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags, environment and an example.\n", path)
}

// didYouMean returns " (did you mean X?)" for the candidate closest to s, or "".
func didYouMean(s string, candidates []string, prefix string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if strings.HasPrefix(c, s) && len(s) >= 2 {
			d = min(d, 1)
		}
		if d < bestD || (d == bestD && best != "" && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(1, len(s)/3) {
		return ""
	}
	return " (did you mean " + prefix + best + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// flagSet is a command's flags with what its help shows around them.
type flagSet struct {
	*flag.FlagSet
	path     string              // "opentrail keys list"
	synopsis string              // what follows the path in the usage line, e.g. "[flags] 'SQL'"
	about    string              // what the command does
	example  string              // one or more example invocations
	env      map[string][]string // flag name → environment variables read when it is not given
	notes    map[string]string   // flag name → where its value comes from when neither is set
	pos      []string            // the positional arguments parse found
	given    map[string]bool     // the flags the command line set
}

// Args, NArg and Arg are the positional arguments, wherever they stood among the flags.
func (f *flagSet) Args() []string { return f.pos }
func (f *flagSet) NArg() int      { return len(f.pos) }
func (f *flagSet) Arg(i int) string {
	if i < 0 || i >= len(f.pos) {
		return ""
	}
	return f.pos[i]
}

// newFlags starts the flags of the command path ("opentrail lookup").
func newFlags(path, synopsis, about, example string) *flagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, path: path, synopsis: synopsis, about: about, example: example,
		env: map[string][]string{}, notes: map[string]string{}}
}

// envVar makes flag name take the first set variable of vars when the command line does not give it.
func (f *flagSet) envVar(name string, vars ...string) {
	if f.Lookup(name) == nil {
		panic("envVar: no flag " + name)
	}
	f.env[name] = append(f.env[name], vars...)
}

// fallback documents where flag name's value comes from when neither the flag nor its variables are set.
func (f *flagSet) fallback(name, note string) { f.notes[name] = note }

// enumValue is a string flag that accepts only some values.
type enumValue struct {
	val     *string
	allowed []string
}

func (e enumValue) String() string {
	if e.val == nil {
		return ""
	}
	return *e.val
}

func (e enumValue) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("want %s%s", orList(e.allowed), didYouMean(s, e.allowed, ""))
	}
	*e.val = s
	return nil
}

// enum defines a string flag whose value must be one of allowed.
func (f *flagSet) enum(name, def string, allowed []string, usage string) *string {
	v := def
	f.Var(enumValue{&v, allowed}, name, usage+" ("+strings.Join(allowed, "|")+")")
	return &v
}

func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// parse reads args, then the environment for the flags args did not set. It returns
// flag.ErrHelp after printing the help for -h/--help, and a usageError for a bad flag.
func (f *flagSet) parse(args []string) error {
	if captureFlags != nil {
		captureFlags(f)
		return errCaptured
	}
	// Flags may come after positional arguments too ("keys delete AKIA... --endpoint URL");
	// "--" ends the flags.
	f.pos = nil
	for rest := args; ; {
		err := f.FlagSet.Parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			f.printHelp(os.Stdout)
			return flag.ErrHelp
		}
		if err != nil {
			return usageError{f.explain(err)}
		}
		left := f.FlagSet.Args()
		if n := len(rest) - len(left); n > 0 && rest[n-1] == "--" || len(left) == 0 {
			f.pos = append(f.pos, left...)
			break
		}
		f.pos = append(f.pos, left[0])
		rest = left[1:]
	}
	f.given = map[string]bool{}
	f.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	for name, vars := range f.env {
		if f.given[name] {
			continue
		}
		for _, v := range vars {
			if val := os.Getenv(v); val != "" {
				if err := f.Set(name, val); err != nil {
					return usagef("$%s (for --%s): %v", v, name, err)
				}
				break
			}
		}
	}
	return nil
}

// explain turns the flag package's error into one that names the flag as users type it.
func (f *flagSet) explain(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		f.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
		return "unknown flag --" + name + didYouMean(name, names, "--")
	}
	if rest, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "flag --" + rest + " needs a value"
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "yaml" for flag -output: want table or json
		if v, fl, ok := strings.Cut(rest, " for flag -"); ok {
			return "--" + strings.Replace(fl, ":", " "+v+":", 1)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if v, fl, ok := strings.Cut(rest, " for -"); ok {
			return "--" + strings.Replace(fl, ":", " "+v+":", 1)
		}
	}
	return msg
}

// args checks the number of positional arguments.
func (f *flagSet) wantArgs(n int, what string) error {
	if f.NArg() != n {
		if f.NArg() > n && n == 0 {
			return usagef("unexpected arguments %q", f.Args())
		}
		return usagef("give %s", what)
	}
	return nil
}

func (f *flagSet) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n", f.path, f.synopsis)
	if f.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(f.about))
	}
	fmt.Fprintln(w, "\nFlags:")
	var fls []*flag.Flag
	f.VisitAll(func(fl *flag.Flag) { fls = append(fls, fl) })
	sort.Slice(fls, func(i, j int) bool { return fls[i].Name < fls[j].Name })
	for _, fl := range fls {
		typ, usage := flag.UnquoteUsage(fl)
		if _, ok := fl.Value.(enumValue); ok {
			typ = "string"
		}
		line := "  --" + fl.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(usage, "\n", "\n        "))
		if !isZeroDefault(fl) {
			fmt.Fprintf(w, "        (default %q)\n", fl.DefValue)
		}
		if vars := f.env[fl.Name]; len(vars) > 0 {
			fmt.Fprintf(w, "        (env %s)\n", "$"+strings.Join(vars, ", $"))
		}
		if n := f.notes[fl.Name]; n != "" {
			fmt.Fprintf(w, "        (else %s)\n", n)
		}
	}
	fmt.Fprintln(w, "  -h, --help\n        show this help")
	if f.example != "" {
		fmt.Fprintf(w, "\nExample:\n  %s\n", strings.ReplaceAll(strings.TrimSpace(f.example), "\n", "\n  "))
	}
}

func isZeroDefault(fl *flag.Flag) bool {
	switch fl.DefValue {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

// captureFlags, when set, makes parse hand over the flag set instead of parsing: completion
// uses it to learn a command's flags without running it.
var captureFlags func(*flagSet)

var errCaptured = errors.New("flags captured")
