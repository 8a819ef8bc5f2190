package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	bindings "github.com/duckdb/duckdb-go-bindings"
)

// version overrides the module version when set at build time:
// go build -ldflags "-X main.version=v1.2.3 -X main.buildTime=$(date -u +%FT%TZ)".
var version, buildTime string

// buildVersion describes this binary. Go records the module version, VCS revision, commit
// time and dirty flag in every binary built from a checkout or with go install; a build time
// is not recorded (builds are reproducible), so it is there only when -ldflags sets it.
type buildVersion struct {
	Version, Revision, CommitTime, BuildTime, Go, DuckDB string
	Dirty                                                bool
}

func readBuildVersion() buildVersion {
	v := buildVersion{Version: "(devel)", Go: runtime.Version(), DuckDB: bindings.LibraryVersion(), BuildTime: buildTime}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Dirty = s.Value == "true"
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	return v
}

// short is the one-line form the server logs and reports.
func (v buildVersion) short() string {
	s := v.Version
	if v.Revision != "" {
		s += " " + v.Revision[:min(12, len(v.Revision))]
		if v.Dirty {
			s += "-dirty"
		}
	}
	return s
}

func (v buildVersion) print(w io.Writer) {
	fmt.Fprintf(w, "opentrail %s\n", v.Version)
	rev := v.Revision
	if rev == "" {
		rev = "unknown (not built from a git checkout)"
	} else if v.Dirty {
		rev += " (dirty: uncommitted changes)"
	}
	fmt.Fprintf(w, "  revision:    %s\n", rev)
	if v.CommitTime != "" {
		fmt.Fprintf(w, "  commit time: %s\n", v.CommitTime)
	}
	bt := v.BuildTime
	if bt == "" {
		bt = "not recorded (set with -ldflags \"-X main.buildTime=...\")"
	}
	fmt.Fprintf(w, "  build time:  %s\n", bt)
	fmt.Fprintf(w, "  go:          %s %s/%s\n", v.Go, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "  duckdb:      %s\n", v.DuckDB)
}

func runVersion(args []string) error {
	fs := newFlags("opentrail version", "[flags]", "Prints the module version, VCS revision (and whether the tree had uncommitted changes), "+
		"commit and build time, and the Go and DuckDB versions this binary was built with.", "opentrail version")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	readBuildVersion().print(os.Stdout)
	return nil
}
