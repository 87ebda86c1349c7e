package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/fake"
)

// testCert returns a self-signed certificate named cn, a CA if ca.
func testCert(t testing.TB, cn string, ca bool) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// authorityKey is the x509-svid key of a bundle for CA certificate c
// (SPIFFE X509-SVID §6.1: x5c with the certificate, no kid).
func authorityKey(c *x509.Certificate) jose.JSONWebKey {
	return jose.JSONWebKey{Key: c.PublicKey, Certificates: []*x509.Certificate{c}, Use: UseX509SVID}
}

// subjects lists the common names of certs, for comparisons.
func subjects(certs []*x509.Certificate) string {
	var names []string
	for _, c := range certs {
		names = append(names, c.Subject.CommonName)
	}
	return strings.Join(names, " ")
}

func TestParseBundleAuthorities(t *testing.T) {
	jwtKey := svidKey(t, "j", UseJWTSVID)
	a := testCert(t, "authority A", true)
	b, err := ParseBundle(bundle(t, nil, jwtKey, authorityKey(a),
		svidKey(t, "", UseX509SVID),                  // no x5c: ignored
		authorityKey(testCert(t, "not a CA", false)), // not a CA: ignored
	))
	if err != nil {
		t.Fatal(err)
	}
	if got := subjects(b.Authorities); got != "authority A" || len(b.Keys) != 1 {
		t.Fatalf("authorities %q, keys %d; want authority A and one jwt-svid key", got, len(b.Keys))
	}
	// A trust domain of X.509-SVIDs only.
	if b, err := ParseBundle(bundle(t, nil, authorityKey(a))); err != nil || len(b.Authorities) != 1 || len(b.Keys) != 0 {
		t.Fatalf("authorities only: %+v, %v", b, err)
	}
	// An x509-svid key's x5c holds more than the one CA certificate: the
	// first is the authority, the rest ignored (SPIFFE X509-SVID §6.2).
	extra := authorityKey(a)
	extra.Certificates = append(extra.Certificates, testCert(t, "ignored", true))
	if b, err := ParseBundle(bundle(t, nil, extra)); err != nil || subjects(b.Authorities) != "authority A" {
		t.Fatalf("two x5c certificates: %q, %v", subjects(b.Authorities), err)
	}
}

// TestLookupBundleAuthorities: a fetched bundle's X.509 authorities are
// cached with its jwt-svid keys for its refresh hint, a rotation at the
// bundle endpoint is picked up when the hint runs out, and a failed
// refresh keeps the last good authorities.
func TestLookupBundleAuthorities(t *testing.T) {
	ctx := context.Background()
	jwtKey := svidKey(t, "j1", UseJWTSVID)
	a, b := testCert(t, "authority A", true), testCert(t, "authority B", true)
	hint := map[string]any{"spiffe_refresh_hint": 120}
	srv := newJWKSServer(t, bundle(t, hint, jwtKey, authorityKey(a)))
	clock := fake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f := srv.fetcher(clock)

	got, err := f.LookupBundleAuthorities(ctx, srv.URL)
	if err != nil || subjects(got) != "authority A" {
		t.Fatalf("authorities %q, %v", subjects(got), err)
	}
	// One document: the jwt-svid keys come from the same fetch.
	if _, err := f.LookupBundle(ctx, srv.URL, "j1"); err != nil {
		t.Fatal(err)
	}
	f.LookupBundleAuthorities(ctx, srv.URL)
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (cached)", n)
	}
	got[0] = nil // the caller's copy
	if got, _ := f.LookupBundleAuthorities(ctx, srv.URL); subjects(got) != "authority A" {
		t.Fatalf("the cache was changed through a returned slice: %v", got)
	}

	// Rotation: B is published beside A; seen once the hint runs out.
	srv.set(bundle(t, hint, jwtKey, authorityKey(a), authorityKey(b)), "")
	clock.Add(119 * time.Second)
	if got, _ := f.LookupBundleAuthorities(ctx, srv.URL); subjects(got) != "authority A" || srv.fetches.Load() != 1 {
		t.Fatalf("before the hint ran out: %q after %d fetches", subjects(got), srv.fetches.Load())
	}
	clock.Add(time.Second)
	if got, _ := f.LookupBundleAuthorities(ctx, srv.URL); subjects(got) != "authority A authority B" || srv.fetches.Load() != 2 {
		t.Fatalf("after the hint ran out: %q after %d fetches", subjects(got), srv.fetches.Load())
	}
	// Then A is withdrawn.
	srv.set(bundle(t, hint, jwtKey, authorityKey(b)), "")
	clock.Add(120 * time.Second)
	if got, _ := f.LookupBundleAuthorities(ctx, srv.URL); subjects(got) != "authority B" {
		t.Fatalf("after A was withdrawn: %q", subjects(got))
	}

	// A failed refresh keeps the last good authorities, and is not
	// retried within the refetch interval.
	for _, bad := range []string{`not json`, `{"keys":[],"pad":"` + strings.Repeat("x", DefaultMaxBytes) + `"}`} {
		srv.set([]byte(bad), "")
		clock.Add(120 * time.Second)
		n := srv.fetches.Load()
		for range 3 {
			if got, err := f.LookupBundleAuthorities(ctx, srv.URL); err != nil || subjects(got) != "authority B" {
				t.Fatalf("after a failed refresh (%.10s): %q, %v", bad, subjects(got), err)
			}
		}
		if got := srv.fetches.Load(); got != n+1 {
			t.Fatalf("%d fetches after a failed refresh, want %d", got, n+1)
		}
	}
	// Recovery.
	srv.set(bundle(t, hint, jwtKey, authorityKey(a)), "")
	clock.Add(DefaultRefetchInterval)
	if got, _ := f.LookupBundleAuthorities(ctx, srv.URL); subjects(got) != "authority A" {
		t.Fatalf("after recovery: %q", subjects(got))
	}

	t.Run("a bundle without x509-svid keys has none", func(t *testing.T) {
		srv := newJWKSServer(t, bundle(t, nil, jwtKey))
		if got, err := srv.fetcher(clock).LookupBundleAuthorities(ctx, srv.URL); err != nil || len(got) != 0 {
			t.Fatalf("%v, %v", got, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(bundle(t, nil, authorityKey(a)))
		}))
		defer plain.Close()
		if _, err := NewFetcher(FetcherConfig{}).LookupBundleAuthorities(ctx, plain.URL); err == nil {
			t.Error("an http bundle endpoint accepted")
		}
		srv := newJWKSServer(t, []byte(`{"keys":[],"pad":"`+strings.Repeat("x", DefaultMaxBytes)+`"}`))
		if _, err := srv.fetcher(clock).LookupBundleAuthorities(ctx, srv.URL); err == nil {
			t.Error("a first fetch over the size cap gave authorities")
		}
		srv = newJWKSServer(t, bundle(t, nil, authorityKey(a)))
		if _, err := NewFetcher(FetcherConfig{Now: clock.Now}).LookupBundleAuthorities(ctx, srv.URL); err == nil {
			t.Error("a bundle endpoint with an untrusted certificate accepted")
		}
	})
}
