package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// steadyLoad sends token requests from workers goroutines, each on its
// own keep-alive client, until stop is closed or each has sent max.
// It returns the counts of answered and failed (error or not 200) ones.
func steadyLoad(tokenURL string, form url.Values, workers, max int, stop <-chan struct{}) (ok, failed *atomic.Int64, wait func(), firstErr *atomic.Value) {
	ok, failed, firstErr = &atomic.Int64{}, &atomic.Int64{}, &atomic.Value{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for range max {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.PostForm(tokenURL, form)
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
				ok.Add(1)
			}
		})
	}
	return ok, failed, wg.Wait, firstErr
}

// TestOpsDrain: drained under steady load (Drain, then Serve's context
// cancelled, as serve does on SIGTERM), the server fails /readyz at once,
// serves every request for the shutdown delay, and logs its completion; a load balancer that stops routing once /readyz fails sees
// no failed request.
func TestOpsDrain(t *testing.T) {
	const delay = 2 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{Addr: ln.Addr().String(), DataDir: t.TempDir(), ShutdownDelay: delay}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := New(ctx, cfg, Deps{Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	cred := opsCredentials(t, cfg.DataDir)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}, "audience": {cred.Audience}}
	if resp := opsGet(t, cfg.Issuer+"/readyz"); resp != http.StatusOK {
		t.Fatalf("/readyz %d before the shutdown", resp)
	}

	stop := make(chan struct{})
	ok, failed, wait, firstErr := steadyLoad(cfg.Issuer+"/oauth/token", form, 4, 2000, stop)
	time.Sleep(300 * time.Millisecond)
	before := ok.Load()
	stopped := time.Now()
	// As SIGTERM does through serve: drain for the delay, then stop.
	go func() {
		srv.Drain(context.Background())
		cancel()
	}()

	// The load balancer polls /readyz, and stops routing a little after
	// it fails, well within the delay.
	var ready503 bool
	for time.Since(stopped) < delay/2 {
		if opsGet(t, cfg.Issuer+"/readyz") == http.StatusServiceUnavailable {
			ready503 = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(delay / 4)
	close(stop)
	wait()
	if since := time.Since(stopped); since >= delay {
		t.Fatalf("the load ran %v past the shutdown, longer than the delay", since)
	}
	if !ready503 {
		t.Error("/readyz did not answer 503 during the delay")
	}
	if ok.Load() <= before {
		t.Error("no request was served during the delay")
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed (first: %v); %d succeeded", n, firstErr.Load(), ok.Load())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(delay + ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return")
	}
	if since := time.Since(stopped); since < delay {
		t.Errorf("Serve returned %v after the shutdown began, before the delay of %v", since, delay)
	}
	out := logs.String()
	t.Logf("%d requests served, %d of them after the shutdown began", ok.Load(), ok.Load()-before)
	for _, want := range []string{"shutting down: /readyz answers 503", "shutdown complete", "requests_during_drain=", "audit_flushed=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, cred.ClientSecret) {
		t.Error("the client secret reached the log")
	}
}

// opsCredentials reads the administrator's credentials file.
func opsCredentials(t *testing.T, dataDir string) Credentials {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// opsGet returns the status of a GET of u, on a connection of its own.
func opsGet(t *testing.T, u string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
