// Command opentrail is a self-hosted audit-trail service wire-compatible with
// AWS CloudTrail. Run "opentrail serve" to start it; "opentrail --help" lists the
// other commands.
package main

import (
	"io"
	"os"
)

// command is one entry of the command tree: run gets the arguments after the command's name.
// A command with subcommands (an entry in subcommands) has no run of its own.
//
// To add a command, write func runX(args []string) error in its own file, build its flags
// with newFlags(...) and return fs.parse(args)'s error as is (that gives it -h, the exit codes,
// suggestions and completion), then add a line {"x", "what it does", runX} here.
type command struct {
	name, summary string
	run           func(args []string) error
}

var commands = []command{
	{"serve", "run the OpenTrail server (in the foreground)", runServe},
	{"keys", "create, list, disable, enable and delete access keys on a running server", nil},
	{"lookup", "look up events (LookupEvents) on a running server", runLookup},
	{"proxy", "run the audit proxy in front of an AWS-protocol service", runProxy},
	{"import", "import CloudTrail archives (a folder or s3://bucket/prefix) into a running server", runImport},
	{"query", "run Lake SQL on a running server, or over CloudTrail log files with --logs", runQuery},
	{"tail", "print events as they happen: a log group's, or every record of your account", runTail},
	{"deadletters", "list or replay the events a subscription filter could not deliver", nil},
	{"validate-logs", "validate a trail's digest and log files, as aws cloudtrail validate-logs does", runValidateLogs},
	{"bench", "measure ingest, lookup, delivery and import performance", nil},
	{"completion", "print a shell completion script (bash, zsh or fish)", nil},
	{"version", "print the version, VCS revision, Go and DuckDB versions", runVersion},
}

// subcommands are the commands under a command, by its path.
var subcommands = map[string][]command{
	"opentrail keys":        keysCommands,
	"opentrail deadletters": deadLetterCommands,
	"opentrail bench":       benchCommands,
	"opentrail completion":  completionCommands,
}

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain runs the command args name and returns the exit code: 0 success or help, 1 failure,
// 2 a mistake in the command line.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == completeCommand {
		return complete(args[1:], stdout)
	}
	if len(args) == 0 {
		commandUsage(stderr, "opentrail", commands)
		return 2
	}
	name := "opentrail"
	if c := findCommand(commands, args[0]); c != nil {
		name += " " + c.name
		if subs := subcommands[name]; subs != nil && len(args) > 1 {
			if s := findCommand(subs, args[1]); s != nil {
				name += " " + s.name
			}
		}
	}
	return exitCode(name, dispatchTree("opentrail", args, commands), stderr)
}

// dispatchTree is dispatch over the command tree.
func dispatchTree(path string, args []string, cs []command) error {
	leaves := make([]command, len(cs))
	for i, c := range cs {
		leaves[i] = c
		if sub := subcommands[path+" "+c.name]; sub != nil {
			subPath := path + " " + c.name
			leaves[i].run = func(args []string) error { return dispatchTree(subPath, args, sub) }
		}
	}
	return dispatch(path, args, leaves)
}

func findCommand(cs []command, name string) *command {
	for i := range cs {
		if cs[i].name == name {
			return &cs[i]
		}
	}
	return nil
}

// env returns the first non-empty environment variable of names, else def.
func env(def string, names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return def
}
