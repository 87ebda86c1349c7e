package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/reqlog"
)

// accessLine returns the access log line of the request with id, or "".
func accessLine(logs, id string) string {
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "msg=request ") && strings.Contains(line, "request_id="+id) {
			return line
		}
	}
	return ""
}

// TestOpsAccessLog: one info line per request with the route, status,
// client_id once authenticated, the client's address through the trusted
// proxies, and the request id the response echoes; never a secret or a
// token.
func TestOpsAccessLog(t *testing.T) {
	e := newTestEnv(t, func(c *Config, _ *Deps) { c.TrustedProxies = "127.0.0.1/32" })
	tokenForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.admin.ClientID}, "client_secret": {e.admin.ClientSecret}, "audience": {e.admin.Audience}}
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)

	t.Run("token request with the caller's id", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url+"/oauth/token", strings.NewReader(tokenForm.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Request-Id", "trace-0001.a:b_c")
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		resp, body := e.with(t).send(req)
		if got := resp.Header.Get("X-Request-Id"); got != "trace-0001.a:b_c" {
			t.Errorf("echoed X-Request-Id %q", got)
		}
		line := accessLine(e.logs.String(), "trace-0001.a:b_c")
		for _, want := range []string{"level=INFO", `route="POST /oauth/token"`, "status=200", "client_id=" + e.admin.ClientID, "remote_addr=203.0.113.7", "duration_ms=", "method=POST"} {
			if !strings.Contains(line, want) {
				t.Errorf("access line %q lacks %s", line, want)
			}
		}
		if strings.Contains(e.logs.String(), string(body[20:60])) {
			t.Error("the token reached the log")
		}
	})

	t.Run("failed authentication has no client_id", func(t *testing.T) {
		bad := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.admin.ClientID}, "client_secret": {wrongSecret(e.admin.ClientSecret)}, "audience": {e.admin.Audience}}
		req, _ := http.NewRequest("POST", e.url+"/oauth/token", strings.NewReader(bad.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Request-Id", "failed-auth-1")
		resp, _ := e.with(t).send(req)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
		line := accessLine(e.logs.String(), "failed-auth-1")
		if !strings.Contains(line, "status=401") || strings.Contains(line, "client_id=") {
			t.Errorf("access line %q: want status=401 and no client_id", line)
		}
	})

	t.Run("management API call", func(t *testing.T) {
		tok := e.with(t).adminToken()
		req, _ := http.NewRequest("GET", e.url+"/admin/v1/apis", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Request-Id", "admin-call-1")
		e.with(t).send(req)
		line := accessLine(e.logs.String(), "admin-call-1")
		for _, want := range []string{`route="GET /admin/v1/apis"`, "status=200", "client_id=" + e.admin.ClientID} {
			if !strings.Contains(line, want) {
				t.Errorf("access line %q lacks %s", line, want)
			}
		}
		if strings.Contains(e.logs.String(), tok) {
			t.Error("the bearer token reached the log")
		}
	})

	for _, tc := range []struct{ name, id string }{
		{"no id", ""},
		{"id with a space", "a b"},
		{"id with a tab", "a\tb"},
		{"id too long", strings.Repeat("x", 129)},
		{"id with a quote", `a"b`},
	} {
		t.Run("generated when "+tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.url+"/.well-known/jwks.json?x=secret-in-query", nil)
			if tc.id != "" {
				req.Header["X-Request-Id"] = []string{tc.id}
			}
			resp, _ := e.with(t).send(req)
			id := resp.Header.Get("X-Request-Id")
			if !generated.MatchString(id) {
				t.Fatalf("X-Request-Id %q, want a generated one", id)
			}
			line := accessLine(e.logs.String(), id)
			if !strings.Contains(line, `route="GET /.well-known/jwks.json"`) || strings.Contains(line, "secret-in-query") {
				t.Errorf("access line %q", line)
			}
		})
	}

	t.Run("unmatched path is not logged verbatim", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.url+"/no/such/path-with-token-abc", nil)
		req.Header.Set("X-Request-Id", "unmatched-1")
		e.with(t).send(req)
		line := accessLine(e.logs.String(), "unmatched-1")
		if !strings.Contains(line, "route=unmatched") || !strings.Contains(line, "status=404") || strings.Contains(line, "token-abc") {
			t.Errorf("access line %q", line)
		}
	})
}

// TestAccessLogMatchesLogAttrs: the access line, built from a record with
// the method and route formatted once per route, is byte for byte what
// slog's LogAttrs writes with the same attributes, in JSON and text, for a
// method the per-route handlers cover and one they do not, and still after
// the server's logger is replaced.
func TestAccessLogMatchesLogAttrs(t *testing.T) {
	e := newTestEnv(t)
	at := time.Date(2026, 12, 2, 22, 30, 0, 123456789, time.UTC)
	for _, format := range []string{"json", "text"} {
		for _, tc := range []struct {
			method, pattern, clientID string
			status                    int
		}{
			{"POST", "POST /oauth/token", "app_1", 200},
			{"GET", "", "", 404},
			{"PROPFIND", "", "", 405},
			{"POST", "POST /oauth/token", "", 401},
		} {
			t.Run(format+" "+tc.method+" "+tc.pattern, func(t *testing.T) {
				var got, want bytes.Buffer
				newLog := func(w io.Writer) *slog.Logger {
					opts := &slog.HandlerOptions{Level: slog.LevelInfo}
					if format == "json" {
						return slog.New(slog.NewJSONHandler(w, opts))
					}
					return slog.New(slog.NewTextHandler(w, opts))
				}
				req := httptest.NewRequest(tc.method, "/oauth/token", nil)
				req.RemoteAddr = "127.0.0.9:4000"
				req.Pattern = tc.pattern
				entry := &reqlog.Entry{RequestID: "req-1", ClientID: tc.clientID}
				// A server of its own (the test env's serves, reading its
				// logger), with the env's client-address rule; its logger is
				// replaced once, as a test may, and the second line comes
				// from the cached handler of the new one.
				srv := &Server{log: newLog(io.Discard), oauth: e.srv.oauth}
				srv.accessLog(req, entry, tc.status, at, time.Millisecond)
				srv.log = newLog(&got)
				for range 2 {
					got.Reset()
					srv.accessLog(req, entry, tc.status, at, 1500*time.Microsecond)
				}
				route := tc.pattern
				if route == "" {
					route = "unmatched"
				}
				attrs := []slog.Attr{slog.String("method", tc.method), slog.String("route", route), slog.Int("status", tc.status), slog.Float64("duration_ms", 1.5)}
				if tc.clientID != "" {
					attrs = append(attrs, slog.String("client_id", tc.clientID))
				}
				attrs = append(attrs, slog.String("remote_addr", "127.0.0.9"), slog.String("request_id", "req-1"))
				rec := slog.NewRecord(at, slog.LevelInfo, "request", 0)
				rec.AddAttrs(attrs...)
				if err := newLog(&want).Handler().Handle(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
				if got.String() != want.String() {
					t.Errorf("access line\n%s want\n%s", got.String(), want.String())
				}
			})
		}
	}
}
