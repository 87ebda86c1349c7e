package rs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/rs"
)

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test client CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a client certificate for cn.
func (ca *testCA) issue(t *testing.T, cn string, serial int64) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// x5t is the cnf.x5t#S256 of a certificate.
func x5t(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// mtlsClient is srv's client presenting cert (none if cert is nil).
func mtlsClient(srv *httptest.Server, cert *tls.Certificate) *http.Client {
	c := srv.Client()
	tr := c.Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: tr}
}

func TestCertificateBoundTokenOverTLS(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	ca := newTestCA(t)
	alice, mallory := ca.issue(t, "alice", 2), ca.issue(t, "mallory", 3)

	for _, policy := range []rs.Policy{rs.BearerAllowed, rs.SenderConstrained} {
		t.Run(policy.String(), func(t *testing.T) {
			v := iss.validator(func(c *rs.Config) { c.Policy = policy; c.MTLS = &rs.MTLSConfig{} })
			srv := httptest.NewUnstartedServer(v.Middleware(http.HandlerFunc(echoClaims)))
			srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool}
			srv.StartTLS()
			defer srv.Close()
			url := srv.URL + "/meters"
			bound := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "read:meters", map[string]any{"x5t#S256": x5t(alice)}))
			bearer := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))

			if got := send(t, mtlsClient(srv, &alice), "GET", url, bearerHeader(bound)); got.status != 200 || got.raw != "app_123" {
				t.Fatalf("bound token with its certificate: %d %s", got.status, got.raw)
			}
			got := send(t, mtlsClient(srv, &mallory), "GET", url, bearerHeader(bound))
			wantRefusal(t, got, 401, "invalid_token", "Bearer", "does not match the token's cnf.x5t#S256")
			got = send(t, mtlsClient(srv, nil), "GET", url, bearerHeader(bound))
			wantRefusal(t, got, 401, "invalid_token", "Bearer", "no client certificate")
			// With MTLS configured, Bearer stays acceptable: both challenges.
			if len(got.auth) != 2 {
				t.Errorf("WWW-Authenticate = %q, want Bearer and DPoP", got.auth)
			}

			got = send(t, mtlsClient(srv, &alice), "GET", url, bearerHeader(bearer))
			if policy == rs.BearerAllowed {
				if got.status != 200 {
					t.Errorf("bearer token under BearerAllowed: %d %s", got.status, got.raw)
				}
			} else {
				wantRefusal(t, got, 401, "invalid_token", "Bearer", "requires a sender-constrained")
			}
			m := v.Metadata()
			if !m.TLSClientCertificateBoundAccessTokens || m.DPoPBoundAccessTokensRequired {
				t.Errorf("metadata %+v: want certificate-bound tokens, DPoP not required", m)
			}
		})
	}
}

func TestForwardedCertificate(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	ca := newTestCA(t)
	alice, mallory := ca.issue(t, "alice", 2), ca.issue(t, "mallory", 3)
	bound := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "read:meters", map[string]any{"x5t#S256": x5t(alice)}))

	pemOf := func(c tls.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
	}
	// nginx's $ssl_client_escaped_cert: everything but unreserved
	// characters percent-encoded, spaces as %20.
	nginx := func(c tls.Certificate) string { return strings.ReplaceAll(url.QueryEscape(pemOf(c)), "+", "%20") }
	formEscaped := func(c tls.Certificate) string { return url.QueryEscape(pemOf(c)) }
	folded := func(c tls.Certificate) string { return strings.TrimSpace(strings.ReplaceAll(pemOf(c), "\n", " ")) }
	der64 := func(c tls.Certificate) string { return base64.StdEncoding.EncodeToString(c.Certificate[0]) }

	serve := func(t *testing.T, proxies []string) *httptest.Server {
		v := iss.validator(func(c *rs.Config) {
			c.MTLS = &rs.MTLSConfig{CertificateHeader: "X-Client-Cert", TrustedProxies: proxies}
		})
		srv := httptest.NewServer(v.Middleware(http.HandlerFunc(echoClaims)))
		t.Cleanup(srv.Close)
		return srv
	}

	t.Run("from a trusted proxy", func(t *testing.T) {
		srv := serve(t, []string{"10.0.0.0/8", "127.0.0.1"})
		for _, tc := range []struct {
			name   string
			values []string
			status int
			desc   string
		}{
			{"URL-escaped PEM", []string{nginx(alice)}, 200, ""},
			{"form-escaped PEM", []string{formEscaped(alice)}, 200, ""},
			{"PEM with spaces for line breaks", []string{folded(alice)}, 200, ""},
			{"base64 DER", []string{der64(alice)}, 200, ""},
			{"base64 DER chain", []string{der64(alice) + "," + base64.StdEncoding.EncodeToString(ca.cert.Raw)}, 200, ""},
			{"another certificate", []string{nginx(mallory)}, 401, "does not match"},
			{"no header", nil, 401, "no client certificate"},
			{"garbage", []string{"-----BEGIN%20nonsense"}, 401, "unreadable"},
			{"not base64", []string{"!!!"}, 401, "unreadable"},
			{"two headers", []string{nginx(alice), nginx(alice)}, 401, "unreadable"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := bearerHeader(bound)
				for _, v := range tc.values {
					h.Add("X-Client-Cert", v)
				}
				got := send(t, srv.Client(), "GET", srv.URL+"/meters", h)
				if tc.status == 200 {
					if got.status != 200 {
						t.Fatalf("status %d %s", got.status, got.raw)
					}
					return
				}
				wantRefusal(t, got, tc.status, "invalid_token", "Bearer", tc.desc)
			})
		}
	})

	t.Run("from an untrusted address", func(t *testing.T) {
		srv := serve(t, []string{"10.0.0.0/8"})
		h := bearerHeader(bound)
		h.Set("X-Client-Cert", nginx(alice))
		got := send(t, srv.Client(), "GET", srv.URL+"/meters", h)
		wantRefusal(t, got, 401, "invalid_token", "Bearer", "no client certificate")
	})
}

func TestMTLSConfigErrors(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	for _, tc := range []struct {
		name string
		m    rs.MTLSConfig
	}{
		{"header without proxies", rs.MTLSConfig{CertificateHeader: "X-Client-Cert"}},
		{"proxies without header", rs.MTLSConfig{TrustedProxies: []string{"10.0.0.0/8"}}},
		{"bad proxy", rs.MTLSConfig{CertificateHeader: "X-Client-Cert", TrustedProxies: []string{"proxy.example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			if _, err := rs.New(t.Context(), rs.Config{Issuer: iss.URL, Audience: audience, MTLS: &m}); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
