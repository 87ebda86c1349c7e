package m2mclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokenEndpoint is a loopback token endpoint: check inspects each request
// (returning "" to answer a token, or an RFC 6749 §5.2 error code).
type tokenEndpoint struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
}

func newTokenEndpoint(t *testing.T, check func(t *testing.T, r *http.Request, form url.Values) string) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{}
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		te.mu.Lock()
		te.calls++
		n := te.calls
		te.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != TokenPath {
			t.Errorf("request %s %s, want POST %s", r.Method, r.URL.Path, TokenPath)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		if len(r.URL.Query()) != 0 {
			t.Errorf("query parameters %v: everything belongs in the body", r.URL.Query())
		}
		w.Header().Set("Content-Type", "application/json")
		if code := check(t, r, r.PostForm); code != "" {
			w.WriteHeader(http.StatusBadRequest)
			if code == "invalid_client" {
				w.WriteHeader(http.StatusUnauthorized)
			}
			fmt.Fprintf(w, `{"error":%q,"error_description":"refused"}`, code)
			return
		}
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":600,"scope":"read:usage"}`, n)
	}))
	t.Cleanup(te.Close)
	return te
}

func (te *tokenEndpoint) count() int { te.mu.Lock(); defer te.mu.Unlock(); return te.calls }

// wantForm reports the differences between form and want (exactly these
// parameters, with these values; "*" matches any non-empty value).
func wantForm(t *testing.T, form url.Values, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got := form[k]
		if len(got) != 1 || (v != "*" && got[0] != v) || got[0] == "" {
			t.Errorf("parameter %s = %q, want %q", k, got, v)
		}
	}
	for k := range form {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected parameter %s = %q", k, form[k])
		}
	}
}

const usageAPI = "https://usage.example.com"

func testConfig(te *tokenEndpoint, clock *fakeClock) Config {
	return Config{Issuer: te.URL, ClientID: "client-1", Audience: usageAPI, Scopes: []string{"read:usage", "write:usage"}, Now: clock.Now}
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)} }

func TestClientSecret(t *testing.T) {
	t.Parallel()
	for _, post := range []bool{false, true} {
		name := "client_secret_basic"
		if post {
			name = "client_secret_post"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			te := newTokenEndpoint(t, func(t *testing.T, r *http.Request, form url.Values) string {
				want := map[string]string{"grant_type": "client_credentials", "audience": usageAPI, "scope": "read:usage write:usage"}
				id, secret, basic := r.BasicAuth()
				if post {
					want["client_id"], want["client_secret"] = "client-1", "m2ms_secret/+"
					if basic {
						t.Error("client_secret_post sent an Authorization header")
					}
				} else if !basic || id != "client-1" || secret != url.QueryEscape("m2ms_secret/+") { // RFC 6749 §2.3.1
					t.Errorf("Basic credentials %q %q %v", id, secret, basic)
				}
				wantForm(t, form, want)
				return ""
			})
			clock := newClock()
			cfg := testConfig(te, clock)
			newSource := cfg.ClientSecret
			if post {
				newSource = cfg.ClientSecretPost
			}
			ts, err := newSource(context.Background(), "m2ms_secret/+")
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "at-1" || tok.ExpiresIn != 600 || !tok.Expiry.Equal(clock.Now().Add(600*time.Second)) || tok.Extra("scope") != "read:usage" {
				t.Errorf("token = %+v", tok)
			}
			testCaching(t, ts, te, clock)
		})
	}
}

// testCaching checks that ts, whose first token (at-1, 600 s) is cached,
// answers it without a request until 30 s before it expires, then gets
// a new one.
func testCaching(t *testing.T, ts oauth2.TokenSource, te *tokenEndpoint, clock *fakeClock) {
	t.Helper()
	clock.Add(569 * time.Second)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" || te.count() != 1 {
		t.Fatalf("within validity: token %v, err %v, %d requests", tok, err, te.count())
	}
	clock.Add(time.Second) // 30 s before expiry
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-2" || te.count() != 2 {
		t.Fatalf("30 s before expiry: token %v, err %v, %d requests", tok, err, te.count())
	}
}

func writeKey(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name    string
		key     crypto.Signer
		alg     string // asked for; "" the default
		wantAlg jose.SignatureAlgorithm
		kid     string
		file    bool
	}{
		{"EC P-256 key file", ec, "", jose.ES256, "key-1", true},
		{"Ed25519 key file", ed, "", jose.EdDSA, "", true},
		{"RSA key file", rsaKey, "", jose.PS256, "rsa-1", true},
		{"RSA crypto.Signer as RS256", rsaKey, "RS256", jose.RS256, "", false},
		{"EC crypto.Signer", ec, "", jose.ES256, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			seen := map[string]bool{}
			var mu sync.Mutex
			te := newTokenEndpoint(t, func(t *testing.T, r *http.Request, form url.Values) string {
				if r.Header.Get("Authorization") != "" {
					t.Error("private_key_jwt sent an Authorization header")
				}
				wantForm(t, form, map[string]string{
					"grant_type": "client_credentials", "audience": usageAPI, "scope": "read:usage write:usage",
					"client_id": "client-1", "client_assertion_type": AssertionTypeJWTBearer, "client_assertion": "*",
				})
				jws, err := jose.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{tt.wantAlg})
				if err != nil {
					t.Fatalf("assertion: %v", err)
				}
				h := jws.Signatures[0].Protected
				if h.ExtraHeaders[jose.HeaderType] != AssertionJWTType || h.KeyID != tt.kid {
					t.Errorf("header typ %v, kid %q", h.ExtraHeaders[jose.HeaderType], h.KeyID)
				}
				payload, err := jws.Verify(tt.key.Public())
				if err != nil {
					t.Fatalf("signature: %v", err)
				}
				var c struct {
					Iss, Sub, Jti string
					Aud           any
					Iat, Exp      int64
				}
				if err := json.Unmarshal(payload, &c); err != nil {
					t.Fatal(err)
				}
				issuer := "http://" + r.Host
				if c.Iss != "client-1" || c.Sub != "client-1" || c.Aud != issuer || c.Iat != clock.Now().Unix() || c.Exp-c.Iat != 60 || c.Jti == "" {
					t.Errorf("claims %+v, want aud %s", c, issuer)
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[c.Jti] {
					t.Errorf("jti %s used twice", c.Jti)
				}
				seen[c.Jti] = true
				return ""
			})
			var s Signer
			var err error
			if tt.file {
				s, err = LoadSigner(writeKey(t, tt.key), tt.kid)
			} else {
				s, err = NewSigner(tt.key, tt.alg, tt.kid)
			}
			if err != nil {
				t.Fatal(err)
			}
			ts, err := testConfig(te, clock).PrivateKeyJWT(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("token %v, err %v", tok, err)
			}
			testCaching(t, ts, te, clock)
		})
	}
}

// kmsSigner is a Signer that is not a local key, as a KMS's is.
type kmsSigner struct{ inner Signer }

func (k kmsSigner) Alg() string   { return "ES256" }
func (k kmsSigner) KeyID() string { return "kms-key" }
func (k kmsSigner) Sign(ctx context.Context, in []byte) ([]byte, error) {
	if ctx.Value(kmsKey{}) != "kms" {
		return nil, errors.New("Sign was not given the source's context")
	}
	return k.inner.Sign(ctx, in)
}

type kmsKey struct{}

func TestPrivateKeyJWTOptions(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	inner, _ := NewSigner(ec, "", "")
	clock := newClock()
	te := newTokenEndpoint(t, func(t *testing.T, r *http.Request, form url.Values) string {
		jws, err := jose.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(ec.Public())
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Aud      string
			Iat, Exp int64
		}
		json.Unmarshal(payload, &c)
		if c.Aud != "https://auth.example.com" || c.Exp-c.Iat != 300 || jws.Signatures[0].Protected.KeyID != "kms-key" {
			t.Errorf("claims %+v", c)
		}
		if form.Get("resource") != usageAPI || form.Has("audience") || form.Has("scope") {
			t.Errorf("form %v", form)
		}
		return ""
	})
	cfg := Config{TokenURL: te.URL + TokenPath, ClientID: "c", Resource: usageAPI, AssertionAudience: "https://auth.example.com", AssertionLifetime: 5 * time.Minute, Now: clock.Now}
	ts, err := cfg.PrivateKeyJWT(context.WithValue(context.Background(), kmsKey{}, "kms"), kmsSigner{inner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
}

func TestSignerErrors(t *testing.T) {
	t.Parallel()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, f := range map[string]func() error{
		"P-384 key":       func() error { _, err := NewSigner(p384, "", ""); return err },
		"1024-bit RSA":    func() error { _, err := NewSigner(small, "", ""); return err },
		"EC key as PS256": func() error { _, err := NewSigner(ec, "PS256", ""); return err },
		"missing file":    func() error { _, err := LoadSigner(filepath.Join(t.TempDir(), "nope.pem"), ""); return err },
		"not PEM": func() error {
			p := filepath.Join(t.TempDir(), "k")
			os.WriteFile(p, []byte("hello"), 0o600)
			_, err := LoadSigner(p, "")
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := f(); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestAssertionFile(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, typ, wantType, clientID string }{
		{"Kubernetes token, no client_id", "", AssertionTypeJWTBearer, ""},
		{"JWT-SVID with client_id", AssertionTypeJWTSPIFFE, AssertionTypeJWTSPIFFE, "client-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "token")
			write := func(s string) {
				if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("eyJ.first.sig\n")
			var want string
			te := newTokenEndpoint(t, func(t *testing.T, r *http.Request, form url.Values) string {
				f := map[string]string{"grant_type": "client_credentials", "client_assertion_type": tt.wantType, "client_assertion": want}
				if tt.clientID != "" {
					f["client_id"] = tt.clientID
				}
				wantForm(t, form, f)
				return ""
			})
			clock := newClock()
			ts, err := Config{Issuer: te.URL, ClientID: tt.clientID, Now: clock.Now}.AssertionFile(context.Background(), path, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			want = "eyJ.first.sig"
			if _, err := ts.Token(); err != nil {
				t.Fatal(err)
			}
			write("eyJ.second.sig")
			want = "eyJ.second.sig"
			testCaching(t, ts, te, clock) // the second request checks the rewritten file
		})
	}
	t.Run("missing, empty or unknown type", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		empty := filepath.Join(dir, "empty")
		os.WriteFile(empty, []byte(" \n"), 0o600)
		cfg := Config{Issuer: "http://127.0.0.1:1"}
		for _, path := range []string{filepath.Join(dir, "missing"), empty} {
			ts, err := cfg.AssertionFile(context.Background(), path, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.Token(); err == nil {
				t.Errorf("%s: no error", path)
			}
		}
		if _, err := cfg.AssertionFile(context.Background(), empty, "urn:x"); err == nil {
			t.Error("unknown assertion type accepted")
		}
	})
}

func TestGitHubActions(t *testing.T) {
	// t.Setenv: not parallel.
	var ghCalls int
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ghCalls++
		if r.Header.Get("Authorization") != "Bearer request-token" {
			t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
		}
		if q := r.URL.Query(); q.Get("api-version") != "2.0" || q.Get("audience") != "https://auth.example.com" {
			t.Errorf("query = %v", q)
		}
		fmt.Fprintf(w, `{"count":1,"value":"gh.jwt.%d"}`, ghCalls)
	}))
	defer gh.Close()
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", gh.URL+"/idtoken?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token")
	var want string
	te := newTokenEndpoint(t, func(t *testing.T, r *http.Request, form url.Values) string {
		wantForm(t, form, map[string]string{"grant_type": "client_credentials", "audience": usageAPI, "client_assertion_type": AssertionTypeJWTBearer, "client_assertion": want})
		return ""
	})
	clock := newClock()
	cfg := Config{TokenURL: te.URL + TokenPath, Issuer: "https://auth.example.com", Audience: usageAPI, Now: clock.Now}
	ts, err := cfg.GitHubActions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want = "gh.jwt.1"
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	want = "gh.jwt.2"
	testCaching(t, ts, te, clock)

	t.Run("token service refuses", func(t *testing.T) {
		deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"message":"no"}`, http.StatusForbidden)
		}))
		defer deny.Close()
		t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", deny.URL)
		ts, err := cfg.GitHubActions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Token(); err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "request-token") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("variables unset", func(t *testing.T) {
		t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
		if _, err := cfg.GitHubActions(context.Background()); err == nil || !strings.Contains(err.Error(), "id-token: write") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := NewSigner(ec, "", "")
	tests := []struct {
		name      string
		status    int
		body      string
		wantCode  string
		wantDescr string
	}{
		{"invalid_client", 401, `{"error":"invalid_client","error_description":"client authentication failed"}`, "invalid_client", "client authentication failed"},
		{"invalid_target", 400, `{"error":"invalid_target"}`, "invalid_target", ""},
		{"server error, not JSON", 502, `<html>bad gateway</html>`, "", ""},
		{"200 with an error member", 200, `{"error":"invalid_scope"}`, "invalid_scope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(tt.body, "{") {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			cfg := Config{Issuer: srv.URL, ClientID: "c"}
			pk, _ := cfg.PrivateKeyJWT(context.Background(), signer)
			sec, _ := cfg.ClientSecret(context.Background(), "very-secret")
			for name, ts := range map[string]oauth2.TokenSource{"private_key_jwt": pk, "secret": sec} {
				_, err := ts.Token()
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) {
					t.Fatalf("%s: err = %v, want an *oauth2.RetrieveError", name, err)
				}
				if re.ErrorCode != tt.wantCode || (name != "secret" && re.ErrorDescription != tt.wantDescr) || re.Response.StatusCode != tt.status {
					t.Errorf("%s: error %+v", name, re)
				}
				if strings.Contains(err.Error(), "very-secret") || strings.Contains(err.Error(), "eyJ") {
					t.Errorf("%s: the error holds a credential: %v", name, err)
				}
			}
		})
	}
	t.Run("response too large", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"%s"}`, strings.Repeat("a", maxResponseBytes))
		}))
		defer srv.Close()
		ts, _ := Config{Issuer: srv.URL, ClientID: "c"}.PrivateKeyJWT(context.Background(), signer)
		if _, err := ts.Token(); err == nil || !strings.Contains(err.Error(), "larger than") || strings.Contains(err.Error(), "aaaa") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("malformed successes hide the body", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{`{"token_type":"Bearer"}`, `{"access_token":"secret-at","expires_in":"soon"}`, `secret-at`} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(body, "{") {
					w.Header().Set("Content-Type", "application/json")
				}
				fmt.Fprint(w, body)
			}))
			ts, _ := Config{Issuer: srv.URL, ClientID: "c"}.PrivateKeyJWT(context.Background(), signer)
			_, err := ts.Token()
			var re *oauth2.RetrieveError
			if err == nil || errors.As(err, &re) || strings.Contains(err.Error(), "secret-at") {
				t.Errorf("%s: err = %v", body, err)
			}
			srv.Close()
		}
	})
	t.Run("error bodies are truncated", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, strings.Repeat("x", 100<<10))
		}))
		defer srv.Close()
		ts, _ := Config{Issuer: srv.URL, ClientID: "c"}.PrivateKeyJWT(context.Background(), signer)
		var re *oauth2.RetrieveError
		if _, err := ts.Token(); !errors.As(err, &re) || len(re.Body) != maxErrorBody || re.Response.StatusCode != 500 {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no redirect followed", func(t *testing.T) {
		t.Parallel()
		var elsewhere bool
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere = true }))
		defer other.Close()
		srv := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusTemporaryRedirect))
		defer srv.Close()
		ts, _ := Config{Issuer: srv.URL, ClientID: "c"}.PrivateKeyJWT(context.Background(), signer)
		var re *oauth2.RetrieveError
		if _, err := ts.Token(); !errors.As(err, &re) || re.Response.StatusCode != 307 || elsewhere {
			t.Errorf("err = %v, followed %v", err, elsewhere)
		}
	})
	t.Run("a failed request is not cached", func(t *testing.T) {
		t.Parallel()
		fail := true
		te := newTokenEndpoint(t, func(*testing.T, *http.Request, url.Values) string {
			if fail {
				fail = false
				return "temporarily_unavailable"
			}
			return ""
		})
		ts, _ := Config{Issuer: te.URL, ClientID: "c"}.PrivateKeyJWT(context.Background(), signer)
		if _, err := ts.Token(); err == nil {
			t.Fatal("no error")
		}
		if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-2" {
			t.Errorf("token %v, err %v", tok, err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := NewSigner(ec, "", "")
	for name, f := range map[string]func() error{
		"no issuer":    func() error { _, err := Config{ClientID: "c"}.ClientSecret(ctx, "s"); return err },
		"no client_id": func() error { _, err := Config{Issuer: "https://a"}.PrivateKeyJWT(ctx, signer); return err },
		"token URL not http": func() error {
			_, err := Config{TokenURL: "ftp://a/x", ClientID: "c"}.ClientSecret(ctx, "s")
			return err
		},
		"no assertion audience": func() error {
			_, err := Config{TokenURL: "https://a/t", ClientID: "c"}.PrivateKeyJWT(ctx, signer)
			return err
		},
		"audience and resource": func() error {
			_, err := Config{Issuer: "https://a", ClientID: "c", Audience: "x", Resource: "y"}.ClientSecret(ctx, "s")
			return err
		},
		"assertion lifetime > 5 m": func() error {
			_, err := Config{Issuer: "https://a", ClientID: "c", AssertionLifetime: 6 * time.Minute}.PrivateKeyJWT(ctx, signer)
			return err
		},
		"empty secret": func() error { _, err := Config{Issuer: "https://a", ClientID: "c"}.ClientSecret(ctx, ""); return err },
	} {
		t.Run(name, func(t *testing.T) {
			if err := f(); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestConcurrentCallersShareOneRequest(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t, func(*testing.T, *http.Request, url.Values) string { return "" })
	ts, err := Config{Issuer: te.URL, ClientID: "c"}.ClientSecret(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" {
				t.Errorf("token %v, err %v", tok, err)
			}
		})
	}
	wg.Wait()
	if te.count() != 1 {
		t.Errorf("%d requests, want 1", te.count())
	}
}

func TestContextEndsTheRequest(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := NewSigner(ec, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ts, _ := Config{Issuer: srv.URL, ClientID: "c"}.PrivateKeyJWT(ctx, signer)
	if _, err := ts.Token(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}
