package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHealthcheckHost(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080":  "127.0.0.1:8080",
		"0.0.0.0:8080":    "127.0.0.1:8080",
		":8080":           "127.0.0.1:8080",
		"[::]:8080":       "[::1]:8080",
		"10.1.2.3:9000":   "10.1.2.3:9000",
		"auth.local:8080": "auth.local:8080",
	} {
		if got, err := healthcheckHost(addr); err != nil || got != want {
			t.Errorf("healthcheckHost(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := healthcheckHost("8080"); err == nil {
		t.Error("healthcheckHost(\"8080\"): no error")
	}
}

// TestHealthcheck runs `m2mauth healthcheck` against a real server, by
// flag and by M2MAUTH_ADDR, and against servers that are not healthy. It
// sets environment variables, so it cannot run in parallel.
func TestHealthcheck(t *testing.T) {
	ts := startServer(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)

	if out, _, err := runCLI(t, "", "healthcheck", "--addr", addr); err != nil || out != "ok\n" {
		t.Errorf("healthcheck --addr %s: %q, %v", addr, out, err)
	}
	// The image sets M2MAUTH_ADDR=0.0.0.0:8080: checked on loopback.
	t.Setenv("M2MAUTH_ADDR", "0.0.0.0:"+port)
	if _, _, err := runCLI(t, "", "healthcheck"); err != nil {
		t.Errorf("healthcheck with M2MAUTH_ADDR=0.0.0.0:%s: %v", port, err)
	}
	t.Setenv("M2MAUTH_ADDR", "127.0.0.1:1")
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", addr); err != nil {
		t.Errorf("--addr does not take precedence over M2MAUTH_ADDR: %v", err)
	}
	if _, _, err := runCLI(t, "", "healthcheck"); err == nil {
		t.Error("healthcheck of a port nothing listens on succeeded")
	}

	unhealthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	defer unhealthy.Close()
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", unhealthy.Listener.Addr().String()); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("healthcheck of a 503: %v, want status 503", err)
	}

	redirect := httptest.NewServer(http.RedirectHandler(ts.URL+"/healthz", http.StatusFound))
	defer redirect.Close()
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", redirect.Listener.Addr().String()); err == nil {
		t.Error("healthcheck followed a redirect")
	}

	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	start := time.Now()
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", hanging.Listener.Addr().String(), "--timeout", "200ms"); err == nil || !strings.Contains(err.Error(), "no answer in time") {
		t.Errorf("healthcheck of a server that never answers: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("healthcheck --timeout 200ms took %v", d)
	}
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", addr, "--timeout", "0s"); err == nil {
		t.Error("--timeout 0s accepted")
	}
}

// TestHealthcheckTLS: a server that speaks TLS on the address is checked
// over https.
func TestHealthcheckTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	// The plain-HTTP try is a handshake error the server would log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", addr); err != nil {
		t.Errorf("healthcheck of a TLS server: %v", err)
	}
	// With serve's TLS setting, straight to https: the file is not read.
	t.Setenv("M2MAUTH_TLS_CERT_FILE", "/nonexistent/tls.crt")
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", addr); err != nil {
		t.Errorf("healthcheck with M2MAUTH_TLS_CERT_FILE: %v", err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	if _, _, err := runCLI(t, "", "healthcheck", "--addr", plain.Listener.Addr().String()); err == nil {
		t.Error("healthcheck over https of a plain-HTTP server succeeded")
	}
}

// TestHealthcheckConfigFile: the address comes from serve's config file
// when neither flag nor variable gives it.
func TestHealthcheckConfigFile(t *testing.T) {
	ts := startServer(t)
	file := filepath.Join(t.TempDir(), "m2mauth.yaml")
	if err := os.WriteFile(file, []byte("addr: "+strings.TrimPrefix(ts.URL, "http://")+"\nlog-level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "healthcheck", "--config", file); err != nil {
		t.Errorf("healthcheck --config: %v", err)
	}
	if _, _, err := runCLI(t, "", "healthcheck", "--config", file, "--addr", "127.0.0.1:1"); err == nil {
		t.Error("--addr does not take precedence over the config file")
	}
}
