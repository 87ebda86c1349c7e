// Package buildinfo tells what build of m2mauth runs: its module version,
// the commit it was built from and when, and the Go version, as the Go
// toolchain stamped them into the binary (debug.ReadBuildInfo).
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Info describes a build. Unknown values are "unknown" (a binary built
// without VCS stamping, such as `go run` or a test binary), never empty.
type Info struct {
	Version   string `json:"version"`    // module version, such as v1.2.0 or v0.0.0-20261202063000-852be8a1b2c3+dirty
	Revision  string `json:"revision"`   // vcs.revision: the full commit hash
	Time      string `json:"build_time"` // vcs.time: the commit's time, RFC 3339
	Modified  bool   `json:"modified"`   // vcs.modified: the work tree had uncommitted changes
	GoVersion string `json:"go_version"` // such as go1.26.8
}

const unknown = "unknown"

// Set with -ldflags "-X github.com/m2mauth/m2mauth/internal/buildinfo.revision=..."
// by a build that has no VCS information to stamp (a source tree without
// .git, as in a container build); each, when set, takes precedence over
// what the toolchain stamped.
var version, revision, buildTime string

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo extracts Info from bi.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Revision: unknown, Time: unknown, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	for _, o := range []struct {
		field *string
		value string
	}{{&in.Version, version}, {&in.Revision, revision}, {&in.Time, buildTime}} {
		if o.value != "" {
			*o.field = o.value
		}
	}
	if in.Version == "" {
		in.Version = unknown
	}
	if in.GoVersion == "" {
		in.GoVersion = unknown
	}
	return in
}

// String is the text of `m2mauth version`: one "key: value" line each.
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version:    %s\n", in.Version)
	fmt.Fprintf(&b, "commit:     %s\n", in.Revision)
	fmt.Fprintf(&b, "build time: %s\n", in.Time)
	fmt.Fprintf(&b, "modified:   %t\n", in.Modified)
	fmt.Fprintf(&b, "go:         %s\n", in.GoVersion)
	return b.String()
}
