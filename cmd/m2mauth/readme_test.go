package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestREADMEWalkthrough builds the m2mauth and usage-api binaries, starts
// both on loopback ports, and runs every ```bash block of the README, in
// order, verbatim, with bash, curl and jq: the README's commands work as
// written. The blocks run in the directory of ./m2mauth, with neither
// --data-dir nor M2MAUTH_DATA_DIR: the CLI finds the credentials file
// where serve recorded its path. The test sets XDG_CONFIG_HOME, so it
// cannot run in parallel.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries; skipped with -short")
	}
	for _, tool := range []string{"bash", "curl", "jq", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (.ci/run installs it): %v", tool, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```bash\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d bash blocks in the README", len(blocks))
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString(b[1])
	}

	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	bin := t.TempDir()
	build(t, bin, "m2mauth", ".")
	build(t, bin, "usage-api", "../../examples/usage-api")

	issuer := "http://" + freeAddr(t)
	audience := "http://" + freeAddr(t)
	dataDir := t.TempDir()
	logs := logFile(t)
	start(t, logs, filepath.Join(bin, "m2mauth"), "serve", "--addr", strings.TrimPrefix(issuer, "http://"), "--data-dir", dataDir, "--log-level", "debug")
	waitReady(t, issuer+"/healthz")
	start(t, logs, filepath.Join(bin, "usage-api"), "--addr", strings.TrimPrefix(audience, "http://"), "--issuer", issuer, "--audience", audience)
	waitReady(t, audience+"/meters") // 401 means it is up

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = bin
	cmd.Env = append(os.Environ(), "ISSUER="+issuer, "AUDIENCE="+audience)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README walkthrough failed: %v\n%s", err, redact(out))
	}
	// Flows A and B print their token responses; the API lists the meter.
	if n := bytes.Count(out, []byte(`"token_type":"Bearer","expires_in":3600`)); n != 2 {
		t.Errorf("%d token responses in the output, want 2 (flows A and B):\n%s", n, redact(out))
	}
	for _, want := range []string{`"meter_type":"api_calls"`, "disabled: refused", "invalid_client"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, redact(out))
		}
	}
	if bytes.Contains(out, []byte("unexpected:")) {
		t.Errorf("the walkthrough got what it should not:\n%s", redact(out))
	}
}

// redact hides client secrets in output shown on failure.
func redact(b []byte) []byte {
	return regexp.MustCompile(`m2ms_[0-9a-f]{20}_[A-Za-z0-9_-]{43}`).ReplaceAll(b, []byte("m2ms_…"))
}

func build(t *testing.T, dir, name, pkg string) {
	t.Helper()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logFile is where the started servers log: M2MAUTH_TEST_LOG_DIR when CI
// sets it (to scan for secrets), else a temporary file.
func logFile(t *testing.T) *os.File {
	t.Helper()
	dir := os.Getenv("M2MAUTH_TEST_LOG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, "readme-walkthrough-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func start(t *testing.T, logs *os.File, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if runtime.GOOS == "windows" {
			cmd.Process.Kill()
		} else {
			cmd.Process.Signal(os.Interrupt)
		}
		cmd.Wait()
	})
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(fmt.Sprintf("%s did not come up", url))
}
