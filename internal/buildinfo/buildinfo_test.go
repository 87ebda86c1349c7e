package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want Info
	}{
		{"stamped by go build in a git checkout", debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "v0.0.0-20261202063747-64aad4c42fde+dirty"},
			Settings: []debug.BuildSetting{
				{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "64aad4c42fde106d8fe3c5f2c8076e7e2b168030"},
				{Key: "vcs.time", Value: "2026-12-02T06:37:47Z"}, {Key: "vcs.modified", Value: "true"},
			},
		}, Info{Version: "v0.0.0-20261202063747-64aad4c42fde+dirty", Revision: "64aad4c42fde106d8fe3c5f2c8076e7e2b168030", Time: "2026-12-02T06:37:47Z", Modified: true, GoVersion: "go1.26.8"}},
		{"no VCS information", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			Info{Version: "(devel)", Revision: "unknown", Time: "unknown", GoVersion: "go1.26.8"}},
		{"nothing at all", debug.BuildInfo{}, Info{Version: "unknown", Revision: "unknown", Time: "unknown", GoVersion: "unknown"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := FromBuildInfo(&c.bi); got != c.want {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	s := Info{Version: "v1.0.0", Revision: "abc", Time: "2026-12-02T06:37:47Z", GoVersion: "go1.26.8"}.String()
	for _, want := range []string{"version:    v1.0.0\n", "commit:     abc\n", "build time: 2026-12-02T06:37:47Z\n", "modified:   false\n", "go:         go1.26.8\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}
