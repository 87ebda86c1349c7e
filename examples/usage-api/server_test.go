package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/rs"
)

const testAudience = "http://127.0.0.1:9090"

// testIssuer stands in for m2mauth: discovery, a JWKS with one ES256 key,
// and tokens signed with it.
type testIssuer struct {
	url    string
	signer jose.Signer
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss.url, "jwks_uri": iss.url + "/.well-known/jwks.json"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(jwks)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url = srv.URL

	iss.signer, err = jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// token returns an access token for testAudience with scope.
func (iss *testIssuer) token(t *testing.T, scope string) string {
	t.Helper()
	return iss.tokenFor(t, testAudience, scope)
}

// tokenFor returns an access token for audience with scope and the
// extra claims.
func (iss *testIssuer) tokenFor(t *testing.T, audience, scope string, extra ...map[string]any) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": iss.url, "sub": "app_1", "client_id": "app_1", "aud": audience,
		"scope": scope, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1",
	}
	for _, e := range extra {
		for k, v := range e {
			claims[k] = v
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := iss.signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestAPI returns the usage API behind a loopback server, with a fixed clock.
func newTestAPI(t *testing.T) (*testIssuer, *httptest.Server) {
	t.Helper()
	iss := newTestIssuer(t)
	metadataURL, err := rs.MetadataURL(testAudience)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rs.New(context.Background(), rs.Config{Issuer: iss.url, Audience: testAudience, ResourceMetadataURL: metadataURL})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{validator: v, now: func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }}
	api := httptest.NewServer(s.routes())
	t.Cleanup(api.Close)
	return iss, api
}

// call sends a request with an optional token and body and returns the
// status, the WWW-Authenticate header and the body.
func call(t *testing.T, api *httptest.Server, method, path, token, body string) (int, string, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, api.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

func TestAccess(t *testing.T) {
	iss, api := newTestAPI(t)
	readMeters := iss.token(t, "read:meters")
	all := iss.token(t, "create:meter_types read:meter_types create:meters read:meters")

	for _, tc := range []struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		wantStatus int
		wantAuth   string // substring of WWW-Authenticate
	}{
		{"read:meters lists meters", "GET", "/meters", readMeters, "", 200, ""},
		{"read:meters cannot create meters", "POST", "/meters", readMeters, `{"meter_type":"api_calls","value":1}`, 403, `error="insufficient_scope", error_description="token lacks scope create:meters", scope="create:meters"`},
		{"read:meters cannot list meter types", "GET", "/meter-types", readMeters, "", 403, `scope="read:meter_types"`},
		{"read:meters cannot create meter types", "POST", "/meter-types", readMeters, `{"name":"x","unit":"y"}`, 403, `scope="create:meter_types"`},
		{"no token", "GET", "/meters", "", "", 401, `Bearer realm="` + testAudience + `"`},
		{"garbage token", "GET", "/meters", "abc.def.ghi", "", 401, `error="invalid_token"`},
		{"token for another API", "GET", "/meters", iss.tokenFor(t, "https://other.example.com/", "read:meters"), "", 401, `error="invalid_token", error_description="wrong audience"`},
		{"unknown path", "GET", "/nope", all, "", 404, ""},
		{"wrong method", "DELETE", "/meters", all, "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, auth, body := call(t, api, tc.method, tc.path, tc.token, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", status, tc.wantStatus, body)
			}
			if !strings.Contains(auth, tc.wantAuth) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", auth, tc.wantAuth)
			}
		})
	}
}

func TestMeteringFlow(t *testing.T) {
	iss, api := newTestAPI(t)
	tok := iss.token(t, "create:meter_types read:meter_types create:meters read:meters")

	status, _, body := call(t, api, "POST", "/meter-types", tok, `{"name":"api_calls","unit":"requests"}`)
	if status != 201 {
		t.Fatalf("create meter type: %d %s", status, body)
	}
	var mt MeterType
	if err := json.Unmarshal([]byte(body), &mt); err != nil {
		t.Fatal(err)
	}
	if mt.ID == "" || mt.Name != "api_calls" || mt.Unit != "requests" || mt.CreatedBy != "app_1" {
		t.Errorf("meter type = %+v", mt)
	}

	status, _, body = call(t, api, "POST", "/meters", tok, `{"meter_type":"api_calls","value":42}`)
	if status != 201 {
		t.Fatalf("create meter: %d %s", status, body)
	}
	var m Meter
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC); m.Value != 42 || !m.Timestamp.Equal(want) || m.CreatedBy != "app_1" {
		t.Errorf("meter = %+v", m)
	}
	if m.TenantID != "" {
		t.Errorf("meter of a token without tenant_id: %+v", m)
	}
	tenantTok := iss.tokenFor(t, testAudience, "create:meters", map[string]any{"tenant_id": "t-42"})
	status, _, body = call(t, api, "POST", "/meters", tenantTok, `{"meter_type":"api_calls","value":1}`)
	if status != 201 || !strings.Contains(body, `"tenant_id":"t-42"`) {
		t.Fatalf("create meter with a tenant_id claim: %d %s", status, body)
	}
	status, _, body = call(t, api, "POST", "/meters", tok, `{"meter_type":"api_calls","value":0,"timestamp":"2025-05-31T23:00:00+02:00"}`)
	if status != 201 || !strings.Contains(body, `"timestamp":"2025-05-31T21:00:00Z"`) {
		t.Fatalf("create meter with timestamp: %d %s", status, body)
	}

	status, _, body = call(t, api, "GET", "/meters?meter_type=api_calls", tok, "")
	var meters []Meter
	if err := json.Unmarshal([]byte(body), &meters); status != 200 || err != nil || len(meters) != 3 {
		t.Fatalf("list meters: %d %s", status, body)
	}
	status, _, body = call(t, api, "GET", "/meters?meter_type=other", tok, "")
	if status != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("list filtered meters: %d %s", status, body)
	}
	status, _, body = call(t, api, "GET", "/meter-types", tok, "")
	var types []MeterType
	if err := json.Unmarshal([]byte(body), &types); status != 200 || err != nil || len(types) != 1 {
		t.Fatalf("list meter types: %d %s", status, body)
	}
}

func TestInputValidation(t *testing.T) {
	iss, api := newTestAPI(t)
	tok := iss.token(t, "create:meter_types create:meters")
	if status, _, body := call(t, api, "POST", "/meter-types", tok, `{"name":"api_calls","unit":"requests"}`); status != 201 {
		t.Fatalf("create meter type: %d %s", status, body)
	}

	for _, tc := range []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantDesc   string
	}{
		{"bad JSON", "/meter-types", `{"name":`, 400, "not valid JSON"},
		{"not an object", "/meters", `[1]`, 400, "not valid JSON"},
		{"two values", "/meters", `{"meter_type":"api_calls","value":1} {}`, 400, "more than one"},
		{"unknown field", "/meter-types", `{"name":"a","unit":"b","color":"red"}`, 400, "unknown field"},
		{"empty name", "/meter-types", `{"name":"","unit":"requests"}`, 400, "name:"},
		{"name with capitals", "/meter-types", `{"name":"API Calls","unit":"requests"}`, 400, "name:"},
		{"missing unit", "/meter-types", `{"name":"storage"}`, 400, "unit:"},
		{"duplicate name", "/meter-types", `{"name":"api_calls","unit":"requests"}`, 409, "exists"},
		{"missing meter_type", "/meters", `{"value":1}`, 400, "meter_type is required"},
		{"missing value", "/meters", `{"meter_type":"api_calls"}`, 400, "value is required"},
		{"negative value", "/meters", `{"meter_type":"api_calls","value":-1}`, 400, "negative"},
		{"value as string", "/meters", `{"meter_type":"api_calls","value":"1"}`, 400, "not valid JSON"},
		{"bad timestamp", "/meters", `{"meter_type":"api_calls","value":1,"timestamp":"yesterday"}`, 400, "not valid JSON"},
		{"unknown meter type", "/meters", `{"meter_type":"nope","value":1}`, 400, "unknown meter_type"},
		{"body too large", "/meters", `{"meter_type":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 400, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := call(t, api, "POST", tc.path, tok, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", status, tc.wantStatus, body)
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || !strings.Contains(e.Description, tc.wantDesc) {
				t.Errorf("body = %s, want an error describing %q", body, tc.wantDesc)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{"USAGE_API_ISSUER": "https://auth.example.com", "USAGE_API_AUDIENCE": "https://usage.example.com/"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	c, err := parseConfig([]string{"--audience", "https://flag.example.com/"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{addr: "127.0.0.1:9090", issuer: "https://auth.example.com", audience: "https://flag.example.com/", dpopNonceWindow: dpop.DefaultNonceWindow}
	if c != want {
		t.Errorf("config = %+v, want %+v (flag > environment > default)", c, want)
	}
	if _, err := parseConfig([]string{"extra"}, lookup, io.Discard); err == nil {
		t.Error("positional argument accepted")
	}
	if _, err := parseConfig([]string{"--nope"}, lookup, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRun starts the whole program on a loopback port, calls it, and stops
// it as SIGINT would.
func TestRun(t *testing.T) {
	iss := newTestIssuer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	noEnv := func(string) (string, bool) { return "", false }
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--issuer", iss.url}, noEnv, io.Discard, log)
	}()

	// The listening address is in the start-up log line.
	addr := regexp.MustCompile(`msg="usage-api listening" addr=(\S+)`)
	var m []string
	for deadline := time.Now().Add(5 * time.Second); m == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up log line; logs:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
		m = addr.FindStringSubmatch(logs.String())
	}
	resp, err := http.Get("http://" + m[1] + "/meters")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /meters without a token: %d, want 401", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if got := logs.String(); !strings.Contains(got, "status=401") || !strings.Contains(got, "shutting down") {
		t.Errorf("logs lack the request or the shutdown:\n%s", got)
	}
}

func TestRunFailsWithoutIssuer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	err := run(context.Background(), []string{"--addr", "127.0.0.1:0", "--issuer", srv.URL}, func(string) (string, bool) { return "", false }, io.Discard, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("run succeeded without an issuer")
	}
}
