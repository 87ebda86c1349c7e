package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildBinary builds m2mauth into a temporary directory with extra go
// build flags.
func buildBinary(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "m2mauth")
	args := append(append([]string{"build"}, flags...), "-o", bin, ".")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=") // the environment may say -buildvcs=false
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

func TestVersionPrintsTheCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	commit := strings.TrimSpace(string(head))
	bin := buildBinary(t, "-buildvcs=true")

	// What the toolchain stamped is what version prints.
	mod, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "vcs.revision="+commit) {
		t.Fatalf("go version -m does not show vcs.revision=%s:\n%s", commit, mod)
	}
	out := run(t, bin, "version")
	for _, want := range []string{"commit:     " + commit + "\n", "go:         go1.", "build time: 20", "version:    v"} {
		if !strings.Contains(out, want) {
			t.Errorf("m2mauth version does not show %q:\n%s", want, out)
		}
	}
	if flag := run(t, bin, "--version"); flag != out {
		t.Errorf("m2mauth --version printed\n%s\nbut m2mauth version\n%s", flag, out)
	}
}

func TestVersionFromLinkerFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const pkg = "github.com/m2mauth/m2mauth/internal/buildinfo"
	bin := buildBinary(t, "-buildvcs=false", "-ldflags", "-X "+pkg+".revision=0123456789abcdef -X "+pkg+".version=v9.9.9 -X "+pkg+".buildTime=2026-01-02T03:04:05Z")
	out := run(t, bin, "version")
	for _, want := range []string{"commit:     0123456789abcdef\n", "version:    v9.9.9\n", "build time: 2026-01-02T03:04:05Z\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("m2mauth version does not show %q:\n%s", want, out)
		}
	}
}
