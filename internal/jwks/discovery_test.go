package jwks

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/fake"
)

// issuerServer is an httptest TLS server acting as an OpenID provider:
// its configuration at /.well-known/openid-configuration and its JWKS at
// /jwks, each fetch counted.
type issuerServer struct {
	*httptest.Server
	mu        sync.Mutex
	config    func(base string) map[string]any
	jwks      []byte
	configs   atomic.Int32
	jwksHits  atomic.Int32
	configErr atomic.Bool
}

func newIssuerServer(t *testing.T, jwks []byte) *issuerServer {
	s := &issuerServer{jwks: jwks, config: func(base string) map[string]any {
		return map[string]any{"issuer": base, "jwks_uri": base + "/jwks"}
	}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/openid-configuration", "/tenant/.well-known/openid-configuration":
			s.configs.Add(1)
			if s.configErr.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			base := "https://" + r.Host + strings.TrimSuffix(r.URL.Path, "/.well-known/openid-configuration")
			w.Header().Set("Cache-Control", "max-age=600")
			json.NewEncoder(w).Encode(s.config(base))
		case "/jwks":
			s.jwksHits.Add(1)
			w.Write(s.jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *issuerServer) fetcher(clock *fake.Clock) *Fetcher {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return NewFetcher(FetcherConfig{RootCAs: pool, Now: clock.Now})
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	_, k1 := ecKey(t, "k1")
	clock := fake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

	t.Run("jwks_uri from the configuration, cached", func(t *testing.T) {
		srv := newIssuerServer(t, doc(t, k1))
		f := srv.fetcher(clock)
		for range 3 {
			keys, err := f.LookupDiscovered(ctx, srv.URL, "k1")
			if err != nil || len(keys) != 1 {
				t.Fatalf("LookupDiscovered = %v, %v", keys, err)
			}
		}
		if c, j := srv.configs.Load(), srv.jwksHits.Load(); c != 1 || j != 1 {
			t.Fatalf("%d configuration and %d JWKS fetches, want 1 and 1", c, j)
		}
		// Past max-age, a failing configuration endpoint keeps the last
		// good jwks_uri in use.
		srv.configErr.Store(true)
		clock.Add(601 * time.Second)
		if uri, err := f.Discover(ctx, srv.URL); err != nil || uri != srv.URL+"/jwks" {
			t.Fatalf("after a failed refresh: %q, %v", uri, err)
		}
		if n := srv.configs.Load(); n != 2 {
			t.Fatalf("%d configuration fetches, want 2", n)
		}
	})

	t.Run("an issuer with a path and a trailing slash", func(t *testing.T) {
		srv := newIssuerServer(t, doc(t, k1))
		srv.config = func(base string) map[string]any {
			return map[string]any{"issuer": base + "/", "jwks_uri": srv.URL + "/jwks"}
		}
		if _, err := srv.fetcher(clock).LookupDiscovered(ctx, srv.URL+"/tenant/", "k1"); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name   string
		config func(srv *issuerServer, base string) map[string]any
	}{
		{"another issuer", func(_ *issuerServer, base string) map[string]any {
			return map[string]any{"issuer": "https://evil.example", "jwks_uri": base + "/jwks"}
		}},
		{"the issuer with a trailing slash added", func(_ *issuerServer, base string) map[string]any {
			return map[string]any{"issuer": base + "/", "jwks_uri": base + "/jwks"}
		}},
		{"an http jwks_uri", func(_ *issuerServer, base string) map[string]any {
			return map[string]any{"issuer": base, "jwks_uri": strings.Replace(base, "https:", "http:", 1) + "/jwks"}
		}},
		{"no jwks_uri", func(_ *issuerServer, base string) map[string]any { return map[string]any{"issuer": base} }},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			srv := newIssuerServer(t, doc(t, k1))
			srv.config = func(base string) map[string]any { return tc.config(srv, base) }
			if uri, err := srv.fetcher(clock).Discover(ctx, srv.URL); err == nil {
				t.Fatalf("Discover = %q, want an error", uri)
			}
		})
	}

	t.Run("refused: an issuer that is not https", func(t *testing.T) {
		f := NewFetcher(FetcherConfig{})
		for _, iss := range []string{"http://issuer.example", "https://issuer.example?x=1", "issuer.example"} {
			if _, err := f.Discover(ctx, iss); err == nil {
				t.Errorf("Discover(%q) accepted", iss)
			}
		}
	})

	t.Run("refused: a redirect", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/.well-known/openid-configuration", http.StatusFound)
		}))
		defer srv.Close()
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		if _, err := NewFetcher(FetcherConfig{RootCAs: pool}).Discover(ctx, srv.URL); err == nil {
			t.Fatal("redirect followed")
		}
	})

	t.Run("failures are rate-limited", func(t *testing.T) {
		srv := newIssuerServer(t, doc(t, k1))
		srv.configErr.Store(true)
		f := srv.fetcher(clock)
		for range 5 {
			if _, err := f.Discover(ctx, srv.URL); err == nil {
				t.Fatal("Discover succeeded against a failing server")
			}
		}
		if n := srv.configs.Load(); n != 1 {
			t.Fatalf("%d fetches within the refetch interval, want 1", n)
		}
	})
}

// bundle encodes a SPIFFE bundle of keys, each given its use.
func bundle(t testing.TB, extra map[string]any, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	m := map[string]any{"keys": keys}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func svidKey(t testing.TB, kid, use string) jose.JSONWebKey {
	_, k := ecKey(t, kid)
	k.Use, k.Algorithm = use, ""
	return k
}

func TestParseBundle(t *testing.T) {
	jwtKey, x509Key := svidKey(t, "j", UseJWTSVID), svidKey(t, "x", UseX509SVID)
	priv, _ := ecKey(t, "p")
	t.Run("jwt-svid keys, sequence and refresh hint", func(t *testing.T) {
		b, err := ParseBundle(bundle(t, map[string]any{"spiffe_sequence": 7, "spiffe_refresh_hint": 300}, jwtKey, x509Key))
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Keys) != 1 || b.Keys[0].KeyID != "j" || b.Keys[0].Use != "sig" || b.Sequence != 7 || b.RefreshHint != 5*time.Minute {
			t.Fatalf("bundle %+v", b)
		}
	})
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"only x509-svid keys, without x5c", bundle(t, nil, x509Key)},
		{"a key with use sig", bundle(t, nil, jwtKey, svidKey(t, "s", "sig"))},
		{"a key without use", bundle(t, nil, jwtKey, svidKey(t, "n", ""))},
		{"a private key", bundle(t, nil, jwtKey, jose.JSONWebKey{Key: priv, KeyID: "p", Use: UseJWTSVID})},
		{"a negative refresh hint", bundle(t, map[string]any{"spiffe_refresh_hint": -1}, jwtKey)},
		{"a fractional sequence", bundle(t, map[string]any{"spiffe_sequence": 1.5}, jwtKey)},
		{"not JSON", []byte(`{`)},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			if b, err := ParseBundle(tc.raw); err == nil {
				t.Fatalf("ParseBundle = %+v, want an error", b)
			}
		})
	}
}

func TestLookupBundle(t *testing.T) {
	ctx := context.Background()
	jwtKey, x509Key := svidKey(t, "j1", UseJWTSVID), svidKey(t, "x1", UseX509SVID)
	srv := newJWKSServer(t, bundle(t, map[string]any{"spiffe_sequence": 1, "spiffe_refresh_hint": 120}, jwtKey, x509Key, svidKey(t, "odd", "sig")))
	srv.set(srv.body, "max-age=3600") // the refresh hint wins over max-age
	clock := fake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := srv.fetcher(clock)
	if keys, err := f.LookupBundle(ctx, srv.URL, "j1"); err != nil || len(keys) != 1 {
		t.Fatalf("jwt-svid key: %v, %v", keys, err)
	}
	clock.Add(DefaultRefetchInterval)
	for _, kid := range []string{"x1", "odd"} {
		if _, err := f.LookupBundle(ctx, srv.URL, kid); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("kid %s: %v, want ErrUnknownKey", kid, err)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (one refetch for the unknown kids)", n)
	}
	// The same URL read as a plain JWKS is another document.
	if _, err := f.Lookup(ctx, srv.URL, "j1"); err == nil {
		t.Fatal("a jwt-svid key served as a plain JWKS key")
	}
	n := srv.fetches.Load()
	clock.Add(119 * time.Second) // the refetch at +10 s restarted the hint
	f.LookupBundle(ctx, srv.URL, "j1")
	if got := srv.fetches.Load(); got != n {
		t.Fatalf("fetched before the refresh hint ran out")
	}
	clock.Add(time.Second)
	f.LookupBundle(ctx, srv.URL, "j1")
	if got := srv.fetches.Load(); got != n+1 {
		t.Fatalf("%d fetches after the refresh hint ran out, want %d", got, n+1)
	}

	// A hint below MinTTL is raised to it.
	srv.set(bundle(t, map[string]any{"spiffe_refresh_hint": 1}, jwtKey), "")
	clock.Add(120 * time.Second)
	f.LookupBundle(ctx, srv.URL, "j1")
	n = srv.fetches.Load()
	clock.Add(DefaultMinTTL - time.Second)
	f.LookupBundle(ctx, srv.URL, "j1")
	if got := srv.fetches.Load(); got != n {
		t.Fatalf("a 1 s refresh hint was not raised to MinTTL")
	}
}
