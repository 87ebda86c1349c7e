package rs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/rs"
)

const (
	rsClientID = "usage api"  // needs form-urlencoding in Basic
	rsSecret   = "s3cret:+/%" // likewise
)

// introspectingIssuer is a testIssuer (keys, signing) behind a second
// loopback server whose metadata also names an introspection endpoint
// (RFC 7662) that answers from a table the test fills in.
type introspectingIssuer struct {
	*testIssuer
	srv *httptest.Server
	URL string // the issuer identifier: this server's URL

	mu     sync.Mutex
	active map[string]bool                                   // jti → answer; absent: inactive
	fail   func(w http.ResponseWriter, r *http.Request) bool // if set and it returns true, it has answered
	calls  int
	bad    []string // what the endpoint found wrong with requests
}

func newIntrospectingIssuer(t *testing.T) *introspectingIssuer {
	t.Helper()
	ii := &introspectingIssuer{testIssuer: newTestIssuer(t), active: map[string]bool{}}
	ii.addKey("k1", "ES256")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": ii.URL, "jwks_uri": ii.testIssuer.URL + "/jwks.json", "introspection_endpoint": ii.URL + "/introspect",
		})
	})
	mux.HandleFunc("POST /introspect", ii.introspect)
	ii.srv = httptest.NewServer(mux)
	t.Cleanup(ii.srv.Close)
	ii.URL = ii.srv.URL
	return ii
}

func (ii *introspectingIssuer) introspect(w http.ResponseWriter, r *http.Request) {
	ii.mu.Lock()
	ii.calls++
	fail := ii.fail
	ii.mu.Unlock()
	if fail != nil && fail(w, r) {
		return
	}
	id, secret, _ := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if id != rsClientID || secret != rsSecret {
		ii.complain("client_secret_basic credentials " + id)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
		ii.complain("form")
	}
	// The test tokens are signed by this issuer: read the jti unverified.
	parts := strings.Split(r.PostForm.Get("token"), ".")
	var claims struct {
		JTI string `json:"jti"`
	}
	if len(parts) == 3 {
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(b, &claims)
	}
	ii.mu.Lock()
	active := ii.active[claims.JTI]
	ii.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !active {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "jti": claims.JTI, "client_id": "app_123"})
}

func (ii *introspectingIssuer) complain(s string) {
	ii.mu.Lock()
	ii.bad = append(ii.bad, s)
	ii.mu.Unlock()
}

func (ii *introspectingIssuer) set(jti string, active bool) {
	ii.mu.Lock()
	ii.active[jti] = active
	ii.mu.Unlock()
}

func (ii *introspectingIssuer) setFail(f func(w http.ResponseWriter, r *http.Request) bool) {
	ii.mu.Lock()
	ii.fail = f
	ii.mu.Unlock()
}

// callCount returns the number of introspection requests so far, failing
// the test if one of them was malformed.
func (ii *introspectingIssuer) callCount(t *testing.T) int {
	t.Helper()
	ii.mu.Lock()
	defer ii.mu.Unlock()
	if len(ii.bad) > 0 {
		t.Fatalf("malformed introspection requests: %v", ii.bad)
	}
	return ii.calls
}

// tokenFor signs a token with jti that expires in lifetime.
func (ii *introspectingIssuer) tokenFor(jti string, lifetime time.Duration) string {
	c := ii.claims("read")
	c["iss"] = ii.URL
	c["jti"] = jti
	c["exp"] = ii.clock.Now().Add(lifetime).Unix()
	return ii.token("k1", "ES256", "at+jwt", c)
}

// validator builds a Validator in introspection mode; edit adjusts it.
func (ii *introspectingIssuer) validator(t *testing.T, edit func(*rs.IntrospectionConfig)) *rs.Validator {
	t.Helper()
	ic := &rs.IntrospectionConfig{ClientID: rsClientID, ClientSecret: rsSecret}
	if edit != nil {
		edit(ic)
	}
	v, err := rs.New(context.Background(), rs.Config{Issuer: ii.URL, Audience: audience, Now: ii.clock.Now, Introspection: ic})
	if err != nil {
		t.Fatalf("rs.New: %v", err)
	}
	return v
}

func TestIntrospectionMode(t *testing.T) {
	ctx := context.Background()

	t.Run("an active token is accepted with its claims", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		ii.set("a", true)
		c, err := ii.validator(t, nil).Validate(ctx, ii.tokenFor("a", time.Hour))
		if err != nil || c.JTI != "a" || !c.HasScope("read") {
			t.Fatalf("claims %+v, error %v", c, err)
		}
		if n := ii.callCount(t); n != 1 {
			t.Fatalf("%d introspection calls", n)
		}
	})

	t.Run("an inactive token is refused as invalid", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		_, err := ii.validator(t, nil).Validate(ctx, ii.tokenFor("revoked", time.Hour))
		if !errors.Is(err, rs.ErrInactive) || !errors.Is(err, rs.ErrInvalidToken) || errors.Is(err, rs.ErrIntrospectionUnavailable) {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("a locally invalid token is not sent", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		ii.set("a", true)
		v := ii.validator(t, nil)
		tok := ii.tokenFor("a", time.Hour)
		for name, bad := range map[string]string{"tampered": tok[:len(tok)-4] + "AAAA", "expired": ii.tokenFor("a", -time.Hour), "garbage": "x.y.z"} {
			if _, err := v.Validate(ctx, bad); !errors.Is(err, rs.ErrInvalidToken) || errors.Is(err, rs.ErrInactive) {
				t.Fatalf("%s: error %v", name, err)
			}
		}
		if n := ii.callCount(t); n != 0 {
			t.Fatalf("%d introspection calls for invalid tokens", n)
		}
	})

	t.Run("answers are cached by jti for CacheTTL", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		ii.set("a", true)
		v := ii.validator(t, func(c *rs.IntrospectionConfig) { c.CacheTTL = 5 * time.Second })
		tok := ii.tokenFor("a", time.Hour)
		for range 3 {
			if _, err := v.Validate(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if n := ii.callCount(t); n != 1 {
			t.Fatalf("%d calls within the TTL", n)
		}
		ii.set("a", false) // revoked
		ii.clock.Advance(4 * time.Second)
		if _, err := v.Validate(ctx, tok); err != nil {
			t.Fatalf("within the TTL the cached answer holds: %v", err)
		}
		ii.clock.Advance(time.Second)
		if _, err := v.Validate(ctx, tok); !errors.Is(err, rs.ErrInactive) {
			t.Fatalf("after the TTL: %v", err)
		}
		if _, err := v.Validate(ctx, tok); !errors.Is(err, rs.ErrInactive) {
			t.Fatalf("the inactive answer, cached: %v", err)
		}
		if n := ii.callCount(t); n != 2 {
			t.Fatalf("%d calls, want 2", n)
		}
	})

	t.Run("a cached answer does not outlive the token's exp", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		ii.set("a", true)
		v := ii.validator(t, nil) // TTL 10 s
		tok := ii.tokenFor("a", 3*time.Second)
		if _, err := v.Validate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		ii.clock.Advance(3 * time.Second) // past exp, inside the leeway
		if _, err := v.Validate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if n := ii.callCount(t); n != 2 {
			t.Fatalf("%d calls, want a new one at exp", n)
		}
	})

	t.Run("the cache holds at most MaxCacheEntries", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		v := ii.validator(t, func(c *rs.IntrospectionConfig) { c.MaxCacheEntries = 2 })
		for _, jti := range []string{"a", "b", "a", "b"} { // both fit
			ii.set(jti, true)
			if _, err := v.Validate(ctx, ii.tokenFor(jti, time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if n := ii.callCount(t); n != 2 {
			t.Fatalf("%d calls, want 2", n)
		}
		ii.set("c", true)
		// c evicts one of a, b, which is asked again and evicts an
		// arbitrary one of the other two: the other may be asked again too.
		for _, jti := range []string{"c", "a", "b"} {
			if _, err := v.Validate(ctx, ii.tokenFor(jti, time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if n := ii.callCount(t); n != 4 && n != 5 {
			t.Fatalf("%d calls, want 4 or 5: one or both of a, b asked again", n)
		}
		// Three tokens never fit in two entries: a round of all three asks
		// at least once.
		before := ii.callCount(t)
		for _, jti := range []string{"a", "b", "c"} {
			if _, err := v.Validate(ctx, ii.tokenFor(jti, time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if n := ii.callCount(t); n == before {
			t.Fatalf("no call for a, b and c: the cache holds more than 2 answers")
		}
	})

	t.Run("failures are not cached", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		ii.set("a", true)
		v := ii.validator(t, nil)
		tok := ii.tokenFor("a", time.Hour)
		ii.setFail(func(w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(http.StatusBadGateway); return true })
		if _, err := v.Validate(ctx, tok); !errors.Is(err, rs.ErrIntrospectionUnavailable) {
			t.Fatalf("error %v", err)
		}
		ii.setFail(nil)
		if _, err := v.Validate(ctx, tok); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})
}

// TestIntrospectionFailsClosed: without a usable answer the token is
// refused with ErrIntrospectionUnavailable, which is not ErrInvalidToken.
func TestIntrospectionFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		fail func(w http.ResponseWriter, r *http.Request) bool
	}{
		{"server error", func(w http.ResponseWriter, _ *http.Request) bool { w.WriteHeader(500); return true }},
		{"credentials refused", func(w http.ResponseWriter, _ *http.Request) bool {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return true
		}},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) bool { _, _ = w.Write([]byte("<html>")); return true }},
		{"no active member", func(w http.ResponseWriter, _ *http.Request) bool { _, _ = w.Write([]byte(`{"jti":"a"}`)); return true }},
		{"active is a string", func(w http.ResponseWriter, _ *http.Request) bool {
			_, _ = w.Write([]byte(`{"active":"true"}`))
			return true
		}},
		{"an answer about another token", func(w http.ResponseWriter, _ *http.Request) bool {
			_, _ = w.Write([]byte(`{"active":true,"jti":"other"}`))
			return true
		}},
		{"an answer too large", func(w http.ResponseWriter, _ *http.Request) bool {
			_, _ = w.Write([]byte(`{"active":true,"pad":"` + strings.Repeat("x", 70<<10) + `"}`))
			return true
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ii := newIntrospectingIssuer(t)
			ii.set("a", true)
			var logs bytes.Buffer
			v, err := rs.New(context.Background(), rs.Config{
				Issuer: ii.URL, Audience: audience, Now: ii.clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Introspection: &rs.IntrospectionConfig{ClientID: rsClientID, ClientSecret: rsSecret},
			})
			if err != nil {
				t.Fatal(err)
			}
			ii.setFail(tc.fail)
			tok := ii.tokenFor("a", time.Hour)
			_, err = v.Validate(context.Background(), tok)
			if !errors.Is(err, rs.ErrIntrospectionUnavailable) || errors.Is(err, rs.ErrInvalidToken) {
				t.Fatalf("error %v", err)
			}
			if strings.Contains(err.Error(), tok) || strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), rsSecret) {
				t.Fatal("the token or the secret is in the error or the log")
			}

			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("handler reached") })).ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("WWW-Authenticate") != "" ||
				!strings.Contains(rec.Body.String(), "temporarily_unavailable") {
				t.Fatalf("middleware answered %d %v %s", rec.Code, rec.Header(), rec.Body)
			}
		})
	}

	t.Run("endpoint unreachable", func(t *testing.T) {
		ii := newIntrospectingIssuer(t)
		ii.set("a", true)
		v := ii.validator(t, nil)
		tok := ii.tokenFor("a", time.Hour)
		ii.srv.Close() // the JWKS (another server) stays up
		if _, err := v.Validate(context.Background(), tok); !errors.Is(err, rs.ErrIntrospectionUnavailable) {
			t.Fatalf("error %v", err)
		}
	})
}

// TestIntrospectionMiddleware: an inactive token gets the usual 401.
func TestIntrospectionMiddleware(t *testing.T) {
	ii := newIntrospectingIssuer(t)
	v := ii.validator(t, nil)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+ii.tokenFor("revoked", time.Hour))
	v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("handler reached") })).ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(rec.Body.String(), "not active") {
		t.Fatalf("%d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

func TestNewIntrospectionConfig(t *testing.T) {
	ii := newIntrospectingIssuer(t)
	plain := newTestIssuer(t) // its metadata names no introspection endpoint
	plain.addKey("k1", "ES256")
	tests := []struct {
		name   string
		issuer string
		ic     rs.IntrospectionConfig
		want   string
	}{
		{"no client id", ii.URL, rs.IntrospectionConfig{ClientSecret: "s"}, "ClientID and ClientSecret"},
		{"no secret", ii.URL, rs.IntrospectionConfig{ClientID: "c"}, "ClientID and ClientSecret"},
		{"TTL above 60 s", ii.URL, rs.IntrospectionConfig{ClientID: "c", ClientSecret: "s", CacheTTL: time.Minute + time.Second}, "CacheTTL"},
		{"negative TTL", ii.URL, rs.IntrospectionConfig{ClientID: "c", ClientSecret: "s", CacheTTL: -time.Second}, "CacheTTL"},
		{"negative cache size", ii.URL, rs.IntrospectionConfig{ClientID: "c", ClientSecret: "s", MaxCacheEntries: -1}, "MaxCacheEntries"},
		{"issuer without an introspection endpoint", plain.URL, rs.IntrospectionConfig{ClientID: "c", ClientSecret: "s"}, "no introspection_endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ic := tc.ic
			_, err := rs.New(context.Background(), rs.Config{Issuer: tc.issuer, Audience: audience, Introspection: &ic})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("60 s is accepted", func(t *testing.T) {
		ii.validator(t, func(c *rs.IntrospectionConfig) { c.CacheTTL = time.Minute })
	})
}
