package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/server"
)

// lockedBuffer is a process's output, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestOpsServeProcess runs a real `m2mauth serve`: it tightens a data dir
// it finds too open, a second serve on that data dir fails at once naming
// the first, and SIGTERM under steady load fails /readyz, serves through
// the shutdown delay with no failed request, and logs the shutdown.
func TestOpsServeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGTERM and flock")
	}
	bin := t.TempDir()
	build(t, bin, "m2mauth", ".")
	m2mauth := filepath.Join(bin, "m2mauth")
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	issuer := "http://" + addr
	logs := logFile(t)
	out := &lockedBuffer{}
	first := exec.Command(m2mauth, "serve", "--addr", addr, "--data-dir", dataDir, "--shutdown-delay", "3s")
	// logs: CI scans every server log for secrets.
	first.Stdout = io.MultiWriter(out, logs)
	first.Stderr = first.Stdout
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = first.Wait(); close(exited) }()
	t.Cleanup(func() {
		first.Process.Kill()
		<-exited
	})
	waitReady(t, issuer+"/healthz")

	t.Run("the data dir is owner-only", func(t *testing.T) {
		for path, want := range map[string]os.FileMode{
			dataDir:                              0o700,
			filepath.Join(dataDir, "m2mauth.db"): 0o600,
			filepath.Join(dataDir, server.MasterKeyFile):   0o600,
			filepath.Join(dataDir, server.CredentialsFile): 0o600,
			filepath.Join(dataDir, server.LockFile):        0o600,
		} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Error(err)
				continue
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %v, want %v", path, got, want)
			}
		}
	})

	t.Run("a second serve on the data dir fails at once", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		second := exec.CommandContext(ctx, m2mauth, "serve", "--addr", freeAddr(t), "--data-dir", dataDir)
		msg, err := second.CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("the second serve: %v (timed out: %v)\n%s", err, ctx.Err() != nil, msg)
		}
		for _, want := range []string{"in use by another m2mauth server", "pid " + strconv.Itoa(first.Process.Pid), addr} {
			if !strings.Contains(string(msg), want) {
				t.Errorf("the second serve's message lacks %q:\n%s", want, msg)
			}
		}
	})

	t.Run("SIGTERM under load fails no request", func(t *testing.T) {
		var cred server.Credentials
		b, err := os.ReadFile(filepath.Join(dataDir, server.CredentialsFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &cred); err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}, "audience": {cred.Audience}}
		var served, failed atomic.Int64
		var firstErr atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
				defer client.CloseIdleConnections()
				for range 2000 { // bounded
					select {
					case <-stop:
						return
					default:
					}
					resp, err := client.PostForm(issuer+"/oauth/token", form)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, resp.Status)
						continue
					}
					served.Add(1)
				}
			})
		}
		time.Sleep(300 * time.Millisecond)
		if err := first.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		signalled := time.Now()
		before := served.Load()
		var saw503 bool
		probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for time.Since(signalled) < 1500*time.Millisecond {
			if resp, err := probe.Get(issuer + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					saw503 = true
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The load balancer stops routing a little after /readyz fails.
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
		if !saw503 {
			t.Error("/readyz did not answer 503 after SIGTERM")
		}
		if n := failed.Load(); n != 0 {
			t.Errorf("%d requests failed (first: %v), %d served", n, firstErr.Load(), served.Load())
		}
		if served.Load() <= before {
			t.Error("nothing was served after SIGTERM")
		}
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("serve exited with %v after SIGTERM", waitErr)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not exit after SIGTERM")
		}
		if since := time.Since(signalled); since < 3*time.Second {
			t.Errorf("serve exited %v after SIGTERM, before the 3s shutdown delay", since)
		}
		log := out.String()
		for _, want := range []string{"received a signal: shutting down", "signal=terminated", "shutdown complete", "requests_during_drain="} {
			if !strings.Contains(log, want) {
				t.Errorf("the log lacks %q:\n%s", want, log)
			}
		}
		if strings.Contains(log, cred.ClientSecret) {
			t.Error("the client secret reached the log")
		}
		t.Logf("%d requests served, %d after SIGTERM", served.Load(), served.Load()-before)
	})
}

// TestOpsServeSecondSignal: a second signal ends the shutdown delay.
func TestOpsServeSecondSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGTERM")
	}
	bin := t.TempDir()
	build(t, bin, "m2mauth", ".")
	addr := freeAddr(t)
	out := &lockedBuffer{}
	cmd := exec.Command(filepath.Join(bin, "m2mauth"), "serve", "--addr", addr, "--data-dir", t.TempDir(), "--shutdown-delay", "1m")
	cmd.Stdout = io.MultiWriter(out, logFile(t))
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitReady(t, "http://"+addr+"/healthz")
	cmd.Process.Signal(syscall.SIGTERM)
	for !strings.Contains(out.String(), "serving on for the shutdown delay") {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("serve still ran 20s after the second signal:\n%s", out.String())
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("serve took %v to stop after the second signal", d)
	}
	for _, want := range []string{"received a second signal: ending the shutdown delay", "shutdown delay ended early", "shutdown complete"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, out.String())
		}
	}
}
