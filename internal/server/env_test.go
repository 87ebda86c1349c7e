package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// syncBuffer collects a server's logs for the secret-leak check.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a real m2mauth server on a loopback port with its own data
// directory, logging at debug level into a buffer.
type testEnv struct {
	t       testing.TB
	srv     *Server
	url     string
	dataDir string
	logs    *syncBuffer
	admin   Credentials
	cancel  context.CancelFunc
	done    chan error
	seen    *secretSet // every client secret seen: none may reach the logs
}

type secretSet struct {
	mu      sync.Mutex
	secrets []string
}

// with returns e reporting to t, for use inside subtests.
func (e *testEnv) with(t testing.TB) *testEnv {
	c := *e
	c.t = t
	return &c
}

type envOption func(*Config, *Deps)

func withClock(now func() time.Time) envOption {
	return func(_ *Config, d *Deps) { d.Now = now }
}

func withDataDir(dir string) envOption {
	return func(c *Config, _ *Deps) { c.DataDir = dir }
}

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	var out io.Writer = logs
	if dir := os.Getenv("M2MAUTH_TEST_LOG_DIR"); dir != "" {
		// CI greps every server log of the run for client secrets.
		f, err := os.CreateTemp(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-*.log")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		out = io.MultiWriter(logs, f)
	}
	cfg := Config{Addr: ln.Addr().String(), DataDir: t.TempDir(), Issuer: "http://" + ln.Addr().String()}
	deps := Deps{Log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, deps)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &testEnv{t: t, srv: srv, url: cfg.Issuer, dataDir: cfg.DataDir, logs: logs, cancel: cancel, done: make(chan error, 1), seen: &secretSet{}}
	go func() { e.done <- srv.Serve(ctx, ln) }()
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e.admin); err != nil {
		t.Fatal(err)
	}
	e.addSecret(e.admin.ClientSecret)
	t.Cleanup(e.stop)
	return e
}

// stop shuts the server down and checks that no client secret reached the
// logs.
func (e *testEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	if err := <-e.done; err != nil {
		e.t.Errorf("serve: %v", err)
	}
	e.srv.Close()
	logs := e.logs.String()
	e.seen.mu.Lock()
	defer e.seen.mu.Unlock()
	for _, s := range e.seen.secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("a client secret appears in the server log")
		}
	}
}

func (e *testEnv) addSecret(s string) {
	e.seen.mu.Lock()
	e.seen.secrets = append(e.seen.secrets, s)
	e.seen.mu.Unlock()
}

// tokenFor gets an access token with client_secret_post for audience.
func (e *testEnv) tokenFor(clientID, secret, audience string, scopes ...string) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	if audience != "" {
		form.Set("audience", audience)
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	status, body := e.postForm("/oauth/token", form, nil)
	if status != http.StatusOK {
		e.t.Fatalf("token request: %d %s", status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		e.t.Fatal(err)
	}
	return tr.AccessToken
}

func (e *testEnv) adminToken() string {
	return e.tokenFor(e.admin.ClientID, e.admin.ClientSecret, e.admin.Audience)
}

func (e *testEnv) postForm(path string, form url.Values, header http.Header) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, body := e.send(req)
	return resp.StatusCode, body
}

func (e *testEnv) send(req *http.Request) (*http.Response, []byte) {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, body
}

// call makes a management API request with a bearer token and a JSON body
// (nil for none) and decodes the answer into out (nil to skip).
func (e *testEnv) call(method, path, token string, body, out any) *http.Response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, b := e.send(req)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return resp
}

// mustCall is call that fails the test unless the status is want.
func (e *testEnv) mustCall(want int, method, path, token string, body, out any) {
	e.t.Helper()
	var raw json.RawMessage
	resp := e.call(method, path, token, body, &raw)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// createAPI registers an API with the given scopes and signing algorithm.
func (e *testEnv) createAPI(adminToken, identifier, alg string, scopes ...string) admin.APIResource {
	e.t.Helper()
	req := map[string]any{"identifier": identifier, "name": identifier, "signing_alg": alg}
	var sc []map[string]string
	for _, s := range scopes {
		sc = append(sc, map[string]string{"value": s, "description": "can " + s})
	}
	req["scopes"] = sc
	var out admin.APIResource
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/apis", adminToken, req, &out)
	return out
}

// createApp creates an application with grants (audience → scopes; nil
// scopes for all) and remembers its secret.
func (e *testEnv) createApp(adminToken, name string, grants map[string][]string) admin.CreatedApplication {
	e.t.Helper()
	var gs []map[string]any
	for aud, sc := range grants {
		g := map[string]any{"audience": aud}
		if sc != nil {
			g["scopes"] = sc
		}
		gs = append(gs, g)
	}
	var out admin.CreatedApplication
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adminToken, map[string]any{"name": name, "grants": gs}, &out)
	e.addSecret(out.ClientSecret)
	return out
}

func (e *testEnv) clientCredentials(id, secret, audience string, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID: id, ClientSecret: secret, TokenURL: e.url + "/oauth/token", Scopes: scopes,
		EndpointParams: url.Values{"audience": {audience}},
	}
}

// jwtParts decodes a compact JWT's header and claims without verifying.
func jwtParts(t testing.TB, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// verifyWithJWKS checks tok's signature against the server's published
// JWKS, as a resource server would, and returns the claims.
func (e *testEnv) verifyWithJWKS(tok string) map[string]any {
	e.t.Helper()
	resp, body := e.send(mustRequest("GET", e.url+"/.well-known/jwks.json"))
	if resp.StatusCode != 200 {
		e.t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		e.t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256})
	if err != nil {
		e.t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		e.t.Fatalf("kid %q: %d keys in the JWKS", jws.Signatures[0].Header.KeyID, len(keys))
	}
	if keys[0].Algorithm != jws.Signatures[0].Header.Algorithm {
		e.t.Fatalf("key alg %s, token alg %s", keys[0].Algorithm, jws.Signatures[0].Header.Algorithm)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		e.t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		e.t.Fatal(err)
	}
	return claims
}

func mustRequest(method, u string) *http.Request {
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return r
}

// quietLog is the option of benchmarks: the server logs at info through h
// only (the access log formatted as in production, to io.Discard), set
// before the server starts, so that no goroutine of its sees the logger
// change.
func quietLog(h slog.Handler) envOption {
	return func(_ *Config, d *Deps) { d.Log = slog.New(h) }
}
