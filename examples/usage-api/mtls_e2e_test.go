package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	authserver "github.com/m2mauth/m2mauth/internal/server"
)

// TestCertificateBoundWithM2MAuth serves m2mauth over TLS with a client CA
// (RFC 8705): an application with a tls_client_auth credential and one
// with a self_signed_tls_client_auth credential each get a
// certificate-bound token (cnf.x5t#S256). The usage API, served over TLS
// with --client-ca-file, accepts it on every route, the sender-constrained
// one too, from a client presenting the same certificate, and refuses it
// with 401 invalid_token from one presenting another certificate or none;
// a certificate of a CA it does not trust fails the handshake. Behind a
// TLS terminator (--client-cert-header, --trusted-proxies) the forwarded
// certificate counts from the trusted proxy only.
func TestCertificateBoundWithM2MAuth(t *testing.T) {
	ca, strangers := newTestCA(t, "usage-api test CA"), newTestCA(t, "unknown CA")
	dir := t.TempDir()
	certFile, keyFile := writeKeyPair(t, dir, "server", ca.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth))
	caFile := writeCertificates(t, dir, "ca.crt", ca.cert)
	m := startM2MAuthWith(t, authserver.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, TLSClientCAFile: caFile}, tlsClient(t, ca.pool, nil))
	admin := m.adminToken(t)

	const audience = "https://usage-mtls.e2e.test"
	m.call(t, admin, http.StatusCreated, "POST", "/admin/v1/apis", map[string]any{
		"identifier": audience, "name": "mtls", "signing_alg": "ES256",
		"scopes": []map[string]string{{"value": scopeReadMeters, "description": "read meters"}},
	}, nil)
	worker := ca.issue(t, "worker-1", x509.ExtKeyUsageClientAuth)
	other := ca.issue(t, "worker-2", x509.ExtKeyUsageClientAuth)
	self := (*testCA)(nil).issue(t, "self-1", x509.ExtKeyUsageClientAuth)
	unknown := strangers.issue(t, "worker-1", x509.ExtKeyUsageClientAuth)
	selfJWKS, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: self.Leaf.PublicKey, Certificates: []*x509.Certificate{self.Leaf}}}})
	if err != nil {
		t.Fatal(err)
	}
	newApp := func(name string, credential map[string]any) string {
		var app struct {
			ClientID string `json:"client_id"`
		}
		m.call(t, admin, http.StatusCreated, "POST", "/admin/v1/applications", map[string]any{
			"name": name, "credentials": []map[string]any{credential},
			"grants": []map[string]any{{"audience": audience, "scopes": []string{scopeReadMeters}}},
		}, &app)
		return app.ClientID
	}
	dnApp := newApp("mtls worker", map[string]any{"type": "tls_client_auth", "subject_dn": "CN=worker-1,O=Example"})
	selfApp := newApp("self-signed worker", map[string]any{"type": "self_signed_tls_client_auth", "jwks": json.RawMessage(selfJWKS)})

	// The usage API trusts the CA's client certificates and, for the
	// self-signed one, that certificate itself.
	clientCAs := writeCertificates(t, dir, "clients.crt", ca.cert, self.Leaf)
	api := startUsageAPI(t, m.url, audience, "--issuer-ca-file", caFile,
		"--tls-cert", certFile, "--tls-key", keyFile, "--client-ca-file", clientCAs)

	t.Run("metadata says certificate-bound tokens", func(t *testing.T) {
		status, _, body := send(t, tlsClient(t, ca.pool, nil), "GET", api+"/.well-known/oauth-protected-resource", nil, "")
		var md map[string]any
		if err := json.Unmarshal([]byte(body), &md); status != http.StatusOK || err != nil || md["tls_client_certificate_bound_access_tokens"] != true {
			t.Fatalf("metadata: %d %s", status, body)
		}
	})

	for _, tc := range []struct {
		name     string
		clientID string
		cert     tls.Certificate
		another  tls.Certificate // accepted in the handshake, not the token's
	}{
		{"tls_client_auth", dnApp, worker, other},
		{"self_signed_tls_client_auth", selfApp, self, worker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := mtlsToken(t, m.url, tlsClient(t, ca.pool, &tc.cert), tc.clientID, audience)
			if tok.TokenType != "Bearer" {
				t.Errorf("token_type %q: a certificate-bound token is a Bearer token (RFC 8705 §3)", tok.TokenType)
			}
			if got, want := tokenX5T(t, tok.AccessToken), thumbprint(tc.cert.Leaf); got != want {
				t.Fatalf("cnf.x5t#S256 %q, want the certificate's %q", got, want)
			}
			bearer := http.Header{"Authorization": {"Bearer " + tok.AccessToken}}
			same := tlsClient(t, ca.pool, &tc.cert)
			for _, path := range []string{"/meters", "/meters/export"} {
				if status, _, body := send(t, same, "GET", api+path, bearer, ""); status != http.StatusOK {
					t.Errorf("GET %s with the same certificate: %d %s", path, status, body)
				}
			}
			for _, r := range []struct {
				name   string
				cert   *tls.Certificate
				reason string
			}{
				{"another certificate", &tc.another, "the client certificate does not match the token's cnf.x5t#S256"},
				{"no certificate", nil, "certificate-bound token: no client certificate"},
			} {
				status, h, body := send(t, tlsClient(t, ca.pool, r.cert), "GET", api+"/meters", bearer, "")
				wantInvalidToken(t, r.name, status, h, body, r.reason)
			}
			// The TLS server refuses a certificate no CA it trusts signed,
			// before any token is looked at.
			if status, err := sendErr(tlsClient(t, ca.pool, &unknown), api+"/meters", bearer); err == nil {
				t.Errorf("a certificate of an unknown CA passed the handshake: %d", status)
			}
		})
	}

	t.Run("behind a TLS terminator", func(t *testing.T) {
		// The proxy connects from 127.0.0.2, everyone else from 127.0.0.1.
		behind := startUsageAPI(t, m.url, audience, "--issuer-ca-file", caFile,
			"--client-cert-header", "X-SSL-Client-Cert", "--trusted-proxies", "127.0.0.2/32")
		proxyTransport := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}
		t.Cleanup(proxyTransport.CloseIdleConnections)
		proxy := &http.Client{Timeout: e2eTimeout, Transport: proxyTransport}
		tok := mtlsToken(t, m.url, tlsClient(t, ca.pool, &worker), dnApp, audience)
		bearer := "Bearer " + tok.AccessToken
		escapedPEM := url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: worker.Leaf.Raw})))
		derOf := func(c tls.Certificate) string { return base64.StdEncoding.EncodeToString(c.Leaf.Raw) }

		for _, tc := range []struct {
			name   string
			client *http.Client
			cert   string // the header; "" for none
			reason string // "" for 200
		}{
			{"nginx's escaped PEM from the proxy", proxy, escapedPEM, ""},
			{"base64 DER from the proxy", proxy, derOf(worker), ""},
			{"another certificate from the proxy", proxy, derOf(other), "the client certificate does not match the token's cnf.x5t#S256"},
			{"no header from the proxy", proxy, "", "certificate-bound token: no client certificate"},
			{"the header from an untrusted peer", http.DefaultClient, derOf(worker), "certificate-bound token: no client certificate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := http.Header{"Authorization": {bearer}}
				if tc.cert != "" {
					h.Set("X-SSL-Client-Cert", tc.cert)
				}
				status, rh, body := send(t, tc.client, "GET", behind+"/meters/export", h, "")
				if tc.reason == "" {
					if status != http.StatusOK {
						t.Fatalf("%d %s, want 200", status, body)
					}
					return
				}
				wantInvalidToken(t, tc.name, status, rh, body, tc.reason)
			})
		}
	})
}

// wantInvalidToken checks a 401 invalid_token refusal whose description
// holds reason, on the Bearer challenge.
func wantInvalidToken(t *testing.T, name string, status int, h http.Header, body, reason string) {
	t.Helper()
	if status != http.StatusUnauthorized {
		t.Errorf("%s: %d %s, want 401", name, status, body)
		return
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "invalid_token" || !strings.Contains(e.Description, reason) {
		t.Errorf("%s: body %s, want invalid_token mentioning %q", name, body, reason)
	}
	for _, ch := range challenges(h.Values("WWW-Authenticate")) {
		if ch.scheme == "Bearer" && ch.params["error"] != "invalid_token" {
			t.Errorf("%s: Bearer challenge %v, want error invalid_token", name, ch.params)
		}
	}
}

// sendErr sends GET u with header and returns the status, or the error
// of a request that got no answer.
func sendErr(c *http.Client, u string, header http.Header) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, err
	}
	req.Header = header
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// tokenResponse is the part of a token response the tests read.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
}

// mtlsToken asks issuer for a client_credentials token as clientID with
// no secret, authenticated by the certificate c presents.
func mtlsToken(t *testing.T, issuer string, c *http.Client, clientID, audience string) tokenResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "audience": {audience}}
	req, err := http.NewRequestWithContext(ctx, "POST", issuer+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var tr tokenResponse
	if err := json.Unmarshal(b, &tr); resp.StatusCode != http.StatusOK || err != nil || tr.AccessToken == "" {
		t.Fatalf("token for %s over mTLS: %d %s", clientID, resp.StatusCode, b)
	}
	return tr
}

// tokenX5T returns the cnf.x5t#S256 of a JWT access token, unverified:
// rs verifies it.
func tokenX5T(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		CNF map[string]string `json:"cnf"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.CNF["x5t#S256"]
}

// thumbprint is a certificate's x5t#S256 (RFC 8705 §3.1).
func thumbprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// tlsClient returns an HTTP client trusting roots and presenting cert
// (none if nil), its idle connections closed when the test ends. It
// presents cert even when the server names CAs that did not issue it,
// which a client with tls.Config.Certificates would not.
func tlsClient(t *testing.T, roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, TLSHandshakeTimeout: e2eTimeout}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: e2eTimeout, Transport: tr}
}

// testCA is a certificate authority made for one test, valid for an hour.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool // holds cert
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns an ECDSA P-256 certificate for subject CN=cn,O=Example,
// valid for an hour, signed by ca (self-signed if ca is nil). A server
// certificate is for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func randomSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// writeCertificates writes certs as PEM to dir/name and returns the path.
func writeCertificates(t *testing.T, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeKeyPair writes c's certificate and key as PEM to dir/name.crt and
// dir/name.key and returns the two paths.
func writeKeyPair(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile = writeCertificates(t, dir, name+".crt", c.Leaf)
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
