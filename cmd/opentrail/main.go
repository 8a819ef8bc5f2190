// Command opentrail is a self-hosted audit-trail service wire-compatible with
// AWS CloudTrail. Run "opentrail serve" to start it; "opentrail help" lists the
// other commands.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, summary string
	run           func(args []string) error
}

var commands = []command{
	{"serve", "run the OpenTrail server", runServe},
	{"keys", "create access keys through a running server", runKeys},
	{"lookup", "look up events (LookupEvents) on a running server", runLookup},
	{"proxy", "run the audit proxy in front of an AWS-protocol service", runProxy},
	{"import", "import CloudTrail archives (a folder or s3://bucket/prefix) into a running server", runImport},
	{"query", "run Lake SQL on a running server, or over CloudTrail log files with --logs", runQuery},
	{"tail", "print events as they happen: a log group's, or every record of your account", runTail},
	{"findings", "print the detection findings of your account (--follow for new ones)", runFindings},
	{"rules", "check Sigma detection rules, backtest them over logs or a store, or list a server's", runRules},
	{"deadletters", "list or replay the events a subscription filter could not deliver", runDeadLetters},
	{"validate-logs", "validate a trail's digest and log files, as aws cloudtrail validate-logs does", runValidateLogs},
	{"bench", "measure ingest, lookup, delivery and import performance", runBench},
	{"version", "print the version", func([]string) error { fmt.Println("opentrail", version); return nil }},
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		return
	}
	for _, c := range commands {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "opentrail "+c.name+":", err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "opentrail: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: opentrail <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun \"opentrail <command> -h\" for a command's flags.")
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
