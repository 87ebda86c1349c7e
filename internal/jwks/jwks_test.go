package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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

func ecKey(t testing.TB, kid string) (*ecdsa.PrivateKey, jose.JSONWebKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}
}

func doc(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	ecPriv, ecPub := ecKey(t, "ec")
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaBig, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"EC public key", doc(t, ecPub), true},
		{"RSA 2048 public key", doc(t, jose.JSONWebKey{Key: &rsaBig.PublicKey, KeyID: "r"}), true},
		{"Ed25519 public key", doc(t, jose.JSONWebKey{Key: edPub, KeyID: "e"}), true},
		{"EC private key", doc(t, jose.JSONWebKey{Key: ecPriv, KeyID: "p"}), false},
		{"Ed25519 private key", doc(t, jose.JSONWebKey{Key: edPriv, KeyID: "p"}), false},
		{"symmetric key", doc(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "s"}), false},
		{"RSA 1024", doc(t, jose.JSONWebKey{Key: &rsaSmall.PublicKey, KeyID: "r"}), false},
		{"encryption key", doc(t, jose.JSONWebKey{Key: &ecPriv.PublicKey, KeyID: "x", Use: "enc"}), false},
		{"no keys", []byte(`{"keys":[]}`), false},
		{"not JSON", []byte(`{`), false},
		{"unknown key type", []byte(`{"keys":[{"kty":"XYZ","kid":"u"}]}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.raw)
			if (err == nil) != tc.ok {
				t.Errorf("Parse = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestFits(t *testing.T) {
	_, ec := ecKey(t, "ec")
	if !Fits(ec, "ES256") || Fits(ec, "ES384") || Fits(ec, "RS256") || Fits(ec, "HS256") {
		t.Error("EC P-256 key with alg ES256 fits only ES256")
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://issuer.example/jwks", false, true},
		{"http://issuer.example/jwks", false, false},
		{"http://issuer.example/jwks", true, false},
		{"http://127.0.0.1:8080/jwks", false, false},
		{"http://127.0.0.1:8080/jwks", true, true},
		{"http://[::1]/jwks", true, true},
		{"http://localhost/jwks", true, true},
		{"https://user:pw@issuer.example/jwks", false, false},
		{"https://issuer.example/jwks#x", false, false},
		{"/jwks", false, false},
		{"ftp://issuer.example/jwks", true, false},
	} {
		if err := CheckURL(tc.url, tc.insecure); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", tc.url, tc.insecure, err, tc.ok)
		}
	}
}

// jwksServer is an httptest TLS server that serves a JWKS and counts the
// fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	header  http.Header
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, header: http.Header{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, v := range s.header {
			w.Header()[k] = v
		}
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte, cacheControl string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
	s.header.Set("Cache-Control", cacheControl)
}

func (s *jwksServer) fetcher(clock *fake.Clock) *Fetcher {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return NewFetcher(FetcherConfig{RootCAs: pool, Now: clock.Now})
}

func TestFetcherCachesAndRefetches(t *testing.T) {
	ctx := context.Background()
	_, k1 := ecKey(t, "k1")
	_, k2 := ecKey(t, "k2")
	srv := newJWKSServer(t, doc(t, k1))
	srv.set(doc(t, k1), "public, max-age=600")
	clock := fake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := srv.fetcher(clock)
	url := srv.URL + "/jwks"

	keys, err := f.Lookup(ctx, url, "k1")
	if err != nil || len(keys) != 1 || keys[0].KeyID != "k1" {
		t.Fatalf("Lookup(k1) = %v, %v", keys, err)
	}
	if _, err := f.Lookup(ctx, url, "k1"); err != nil || srv.fetches.Load() != 1 {
		t.Fatalf("cached lookup fetched again: %d fetches, %v", srv.fetches.Load(), err)
	}

	// Rotation at the publisher: the unknown kid refetches once, then the
	// rate limit holds until RefetchInterval has passed.
	srv.set(doc(t, k1), "max-age=600")
	clock.Add(DefaultRefetchInterval)
	if _, err := f.Lookup(ctx, url, "k2"); !errors.Is(err, ErrUnknownKey) || srv.fetches.Load() != 2 {
		t.Fatalf("unknown kid: %v after %d fetches, want ErrUnknownKey after 2", err, srv.fetches.Load())
	}
	srv.set(doc(t, k1, k2), "max-age=600")
	for range 5 {
		if _, err := f.Lookup(ctx, url, "k2"); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("within the refetch interval: %v, want ErrUnknownKey", err)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches within the refetch interval, want 2", n)
	}
	clock.Add(DefaultRefetchInterval)
	if keys, err := f.Lookup(ctx, url, "k2"); err != nil || len(keys) != 1 {
		t.Fatalf("after the refetch interval: %v, %v", keys, err)
	}

	// max-age: no fetch before it runs out, one after; a removed key is
	// then gone.
	clock.Add(599 * time.Second)
	f.Lookup(ctx, url, "k1")
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches before max-age ran out, want 3", n)
	}
	srv.set(doc(t, k2), "max-age=600")
	clock.Add(time.Second)
	if _, err := f.Lookup(ctx, url, "k1"); !errors.Is(err, ErrUnknownKey) || srv.fetches.Load() != 4 {
		t.Fatalf("removed key after max-age: %v after %d fetches", err, srv.fetches.Load())
	}
}

func TestFetcherTTLBounds(t *testing.T) {
	f := NewFetcher(FetcherConfig{})
	for cc, want := range map[string]time.Duration{
		"":                 DefaultTTL,
		"max-age=0":        DefaultMinTTL,
		"no-store":         DefaultMinTTL,
		"max-age=3600":     time.Hour,
		"max-age=99999999": DefaultMaxTTL,
		"max-age=bogus":    DefaultTTL,
	} {
		h := http.Header{}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if got := f.ttl(h); got != want {
			t.Errorf("ttl(%q) = %v, want %v", cc, got, want)
		}
	}
}

func TestFetcherRefuses(t *testing.T) {
	ctx := context.Background()
	_, k1 := ecKey(t, "k1")
	good := doc(t, k1)
	ecPriv, _ := ecKey(t, "p")

	t.Run("http without AllowInsecure", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(good) }))
		defer srv.Close()
		if _, err := NewFetcher(FetcherConfig{}).Lookup(ctx, srv.URL, "k1"); err == nil {
			t.Fatal("http URL accepted")
		}
		// With it, loopback http is allowed (tests and development).
		if _, err := NewFetcher(FetcherConfig{AllowInsecure: true}).Lookup(ctx, srv.URL, "k1"); err != nil {
			t.Fatalf("loopback http with AllowInsecure: %v", err)
		}
	})

	t.Run("a CA not trusted", func(t *testing.T) {
		srv := newJWKSServer(t, good)
		if _, err := NewFetcher(FetcherConfig{}).Lookup(ctx, srv.URL, "k1"); err == nil {
			t.Fatal("untrusted certificate accepted")
		}
	})

	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"a redirect", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/jwks" {
				http.Redirect(w, r, "/other", http.StatusFound)
				return
			}
			w.Write(good)
		}},
		{"a body over the cap", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", DefaultMaxBytes) + `"}`))
		}},
		{"a private key", func(w http.ResponseWriter, r *http.Request) {
			w.Write(doc(t, k1, jose.JSONWebKey{Key: ecPriv, KeyID: "p"}))
		}},
		{"a symmetric key", func(w http.ResponseWriter, r *http.Request) {
			w.Write(doc(t, k1, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "s"}))
		}},
		{"an error status", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) }},
		{"a slow server", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			w.Write(good)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(tc.handler)
			defer srv.Close()
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			f := NewFetcher(FetcherConfig{RootCAs: pool, Timeout: 200 * time.Millisecond})
			if keys, err := f.Lookup(ctx, srv.URL+"/jwks", "k1"); err == nil {
				t.Fatalf("Lookup = %v, want an error", keys)
			}
		})
	}

	t.Run("short RSA keys are skipped", func(t *testing.T) {
		small, _ := rsa.GenerateKey(rand.Reader, 1024)
		srv := newJWKSServer(t, doc(t, k1, jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small"}))
		f := srv.fetcher(fake.NewClock(time.Now()))
		if _, err := f.Lookup(ctx, srv.URL, "small"); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("1024-bit RSA key: %v, want ErrUnknownKey", err)
		}
		if _, err := f.Lookup(ctx, srv.URL, "k1"); err != nil {
			t.Fatalf("the good key beside it: %v", err)
		}
	})
}

// TestFetcherFailureKeepsKeys: a failed refresh keeps the last keys.
func TestFetcherFailureKeepsKeys(t *testing.T) {
	ctx := context.Background()
	_, k1 := ecKey(t, "k1")
	srv := newJWKSServer(t, doc(t, k1))
	clock := fake.NewClock(time.Now())
	f := srv.fetcher(clock)
	if _, err := f.Lookup(ctx, srv.URL, "k1"); err != nil {
		t.Fatal(err)
	}
	srv.set([]byte(`not json`), "")
	clock.Add(DefaultTTL)
	if _, err := f.Lookup(ctx, srv.URL, "k1"); err != nil {
		t.Fatalf("after a failed refresh: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// TestFetcherConcurrentUnknownKid: a burst of lookups of unknown kids
// costs one fetch.
func TestFetcherConcurrentUnknownKid(t *testing.T) {
	_, k1 := ecKey(t, "k1")
	srv := newJWKSServer(t, doc(t, k1))
	f := srv.fetcher(fake.NewClock(time.Now()))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Lookup(context.Background(), srv.URL, "made-up-"+string(rune('a'+i)))
		}()
	}
	wg.Wait()
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for a burst of unknown kids, want 1", n)
	}
}

func FuzzParse(f *testing.F) {
	_, k1 := ecKey(f, "k1")
	f.Add(doc(f, k1))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		set, err := Parse(raw)
		if err != nil {
			return
		}
		for _, k := range set.Keys {
			if CheckKey(k) != nil {
				t.Fatalf("Parse accepted a key CheckKey refuses: %+v", k)
			}
		}
	})
}
