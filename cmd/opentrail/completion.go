package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Shell completion is computed by the binary at each TAB, as the GitHub CLI and kubectl do:
// the scripts call "opentrail __complete WORDS...", which walks the command tree and prints
// the candidates, one a line. It learns a command's flags from the flag set the command
// builds (captureFlags), without running it.
const completeCommand = "__complete"

var completionScripts = map[string]string{
	"bash": `# bash completion for opentrail; load with: source <(opentrail completion bash)
_opentrail() {
    local cur="${COMP_WORDS[COMP_CWORD]}" IFS=$'\n'
    COMPREPLY=($(compgen -W "$(opentrail __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _opentrail opentrail
`,
	"zsh": `#compdef opentrail
# zsh completion for opentrail; load with: source <(opentrail completion zsh)
_opentrail() {
  local -a cands
  cands=("${(@f)$(opentrail __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ -n "${cands[1]}" ]]; then compadd -a cands; else _files; fi
}
compdef _opentrail opentrail
`,
	"fish": `# fish completion for opentrail; load with: opentrail completion fish | source
complete -c opentrail -a '(opentrail __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
}

var completionCommands = []command{
	{"bash", "bash completion: source <(opentrail completion bash)", func(args []string) error { return printCompletion("bash", args) }},
	{"zsh", "zsh completion: source <(opentrail completion zsh)", func(args []string) error { return printCompletion("zsh", args) }},
	{"fish", "fish completion: opentrail completion fish | source", func(args []string) error { return printCompletion("fish", args) }},
}

func printCompletion(shell string, args []string) error {
	fs := newFlags("opentrail completion "+shell, "", "Prints the "+shell+" completion script for opentrail.",
		map[string]string{
			"bash": "source <(opentrail completion bash)   # or save it under /etc/bash_completion.d/opentrail",
			"zsh":  "source <(opentrail completion zsh)",
			"fish": "opentrail completion fish > ~/.config/fish/completions/opentrail.fish",
		}[shell])
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	_, err := io.WriteString(os.Stdout, completionScripts[shell])
	return err
}

// complete prints the candidates for the last of words (the word being completed, maybe "").
func complete(words []string, w io.Writer) int {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	cs, path := commands, "opentrail"
	var leaf *command
	for _, word := range before {
		if leaf != nil || strings.HasPrefix(word, "-") {
			break
		}
		c := findCommand(cs, word)
		if c == nil {
			return 0
		}
		path += " " + c.name
		if sub := subcommands[path]; sub != nil {
			cs = sub
		} else {
			leaf = c
		}
	}
	if leaf == nil {
		if !strings.HasPrefix(cur, "-") {
			for _, c := range cs {
				fmt.Fprintln(w, c.name)
			}
		}
		return 0
	}
	fs := leafFlags(leaf)
	if fs == nil {
		return 0
	}
	// The value of an enumerated flag: its choices.
	if len(before) > 0 {
		if prev := before[len(before)-1]; strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") {
			if fl := fs.Lookup(strings.TrimLeft(prev, "-")); fl != nil {
				if e, ok := fl.Value.(enumValue); ok {
					for _, v := range e.allowed {
						fmt.Fprintln(w, v)
					}
					return 0
				}
				if !isBool(fl) {
					return 0 // a file or free value: the shell completes it
				}
			}
		}
	}
	if strings.HasPrefix(cur, "-") {
		fs.VisitAll(func(fl *flag.Flag) { fmt.Fprintln(w, "--"+fl.Name) })
		fmt.Fprintln(w, "--help")
	}
	return 0
}

// leafFlags returns the flags command c defines, without running it: nil when c does not
// build them with newFlags.
func leafFlags(c *command) (fs *flagSet) {
	captureFlags = func(f *flagSet) { fs = f }
	defer func() { captureFlags = nil }()
	// A command built on a plain flag.FlagSet prints its help and exits 0 here: the shell
	// then gets no candidates from its flags, nothing worse.
	if err := c.run([]string{"--help"}); !errors.Is(err, errCaptured) {
		return nil
	}
	return fs
}

func isBool(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
