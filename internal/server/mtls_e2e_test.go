package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/clientcert"
	"github.com/m2mauth/m2mauth/rs"
)

// mtlsEnv is a real m2mauth server on a loopback port for the mutual TLS
// tests: serving TLS with a client CA file, or plain HTTP behind a
// (simulated) TLS-terminating proxy that forwards the certificate.
type mtlsEnv struct {
	t     *testing.T
	srv   *Server
	url   string
	roots *x509.CertPool // trusts the server's certificate
	admin Credentials
	token string // a management API token
}

// startMTLSServer starts a server with cfg (Addr, DataDir and the issuer
// are filled in) and returns it with a management token.
func startMTLSServer(t *testing.T, ln net.Listener, cfg Config, roots *x509.CertPool) *mtlsEnv {
	t.Helper()
	cfg.Addr, cfg.DataDir = ln.Addr().String(), t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	e := &mtlsEnv{t: t, srv: srv, url: cfg.Issuer, roots: roots}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e.admin); err != nil {
		t.Fatal(err)
	}
	status, body := e.post(e.client(nil), "/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {e.admin.ClientID}, "client_secret": {e.admin.ClientSecret}, "audience": {e.admin.Audience}}, nil)
	if status != http.StatusOK {
		t.Fatalf("admin token: %d %s", status, body)
	}
	e.token = tokenOf(t, body)["access_token"].(string)
	return e
}

// client returns an HTTP client presenting cert (none if nil).
func (e *mtlsEnv) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: e.roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func (e *mtlsEnv) post(c *http.Client, path string, form url.Values, header http.Header) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// admin makes a management API call and decodes the answer into out.
func (e *mtlsEnv) adminCall(want int, method, path string, body, out any) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.client(nil).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// app creates an application granted api, with credential (a request
// body for POST …/credentials; none if nil), and returns its client_id,
// secret and the credential's id.
func (e *mtlsEnv) app(name, api string, credential map[string]any) (clientID, secret, credID string) {
	e.t.Helper()
	var created admin.CreatedApplication
	e.adminCall(http.StatusCreated, "POST", "/admin/v1/applications", map[string]any{"name": name, "grants": []map[string]any{{"audience": api}}}, &created)
	if credential != nil {
		var c admin.CredentialResource
		e.adminCall(http.StatusCreated, "POST", "/admin/v1/applications/"+created.ClientID+"/credentials", credential, &c)
		credID = c.ID
	}
	return created.ClientID, created.ClientSecret, credID
}

// mtlsToken asks for a token as clientID over c, with no secret (mutual
// TLS), and returns the status and the decoded body.
func (e *mtlsEnv) mtlsToken(c *http.Client, clientID, api string, header http.Header) (int, map[string]any) {
	e.t.Helper()
	status, body := e.post(c, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "audience": {api}}, header)
	return status, tokenOf(e.t, body)
}

func tokenOf(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return m
}

// credentialUsed reports whether credential id of clientID was ever used.
func (e *mtlsEnv) credentialUsed(clientID, id string) bool {
	e.t.Helper()
	// Last use reaches the store in a batch, not per token.
	if err := e.srv.recorder.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	var l admin.List[admin.CredentialResource]
	e.adminCall(http.StatusOK, "GET", "/admin/v1/applications/"+clientID+"/credentials", nil, &l)
	for _, c := range l.Items {
		if c.ID == id {
			return c.LastUsedAt != nil
		}
	}
	e.t.Fatalf("credential %s not listed", id)
	return false
}

// clientCert issues a client certificate from ca (self-signed if nil)
// with subject cn, valid from notBefore to notAfter.
func clientCert(t *testing.T, ca *testCA, cn string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// claimsOf decodes a JWT's payload without verifying it (rs does).
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %s", tok)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// cnfX5T is a token's cnf.x5t#S256, "" if none.
func cnfX5T(t *testing.T, tok string) string {
	cnf, _ := claimsOf(t, tok)["cnf"].(map[string]any)
	s, _ := cnf["x5t#S256"].(string)
	return s
}

// TestMTLSE2E serves TLS with a client CA file: tls_client_auth (subject
// DN) and self_signed_tls_client_auth each get a certificate-bound token,
// which rs, on its own TLS server asking for client certificates, accepts
// with the same certificate and refuses with another; a wrong DN, an
// untrusted chain and an expired certificate are refused with
// invalid_client and leave the credential unused; an API with mtls_bound
// required refuses a token request without a certificate.
func TestMTLSE2E(t *testing.T) {
	ca := newTestCA(t)
	otherCA := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	sc, sk := ca.issue(t, 1001, x509.ExtKeyUsageServerAuth)
	replaceFile(t, certFile, sc)
	replaceFile(t, keyFile, sk)
	replaceFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := startMTLSServer(t, ln, Config{TLSCertFile: certFile, TLSKeyFile: keyFile, TLSClientCAFile: caFile}, ca.pool)

	const api, strict = "https://usage.example.com", "https://strict.example.com"
	e.adminCall(http.StatusCreated, "POST", "/admin/v1/apis", map[string]any{"identifier": api, "name": "usage", "scopes": []map[string]string{{"value": "read"}}}, nil)
	e.adminCall(http.StatusCreated, "POST", "/admin/v1/apis", map[string]any{"identifier": strict, "name": "strict", "mtls_bound": "required"}, nil)

	now := time.Now()
	worker := clientCert(t, ca, "worker-1", now.Add(-time.Hour), now.Add(time.Hour))
	self := clientCert(t, nil, "self-1", now.Add(-time.Hour), now.Add(time.Hour))
	other := clientCert(t, ca, "worker-2", now.Add(-time.Hour), now.Add(time.Hour))
	dnApp, _, dnCred := e.app("dn-worker", api, map[string]any{"type": "tls_client_auth", "subject_dn": "CN=worker-1,O=Example"})
	selfJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: self.Leaf.PublicKey, Certificates: []*x509.Certificate{self.Leaf}}}})
	selfApp, _, selfCred := e.app("self-worker", api, map[string]any{"type": "self_signed_tls_client_auth", "jwks": json.RawMessage(selfJWKS)})

	// The resource server: rs on its own TLS server, asking for (not
	// verifying) client certificates, as a certificate-bound API does.
	validator, err := rs.New(t.Context(), rs.Config{Issuer: e.url, Audience: api, HTTPClient: e.client(nil)})
	if err != nil {
		t.Fatal(err)
	}
	usage := httptest.NewUnstartedServer(validator.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "usage")
	})))
	usage.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	usage.StartTLS()
	t.Cleanup(usage.Close)
	callRS := func(t *testing.T, cert *tls.Certificate, tok string) int {
		t.Helper()
		cfg := &tls.Config{RootCAs: usage.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		req, _ := http.NewRequest("GET", usage.URL+"/usage", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	t.Run("discovery", func(t *testing.T) {
		resp, err := e.client(nil).Get(e.url + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md map[string]any
		json.NewDecoder(resp.Body).Decode(&md)
		if md["tls_client_certificate_bound_access_tokens"] != true {
			t.Errorf("tls_client_certificate_bound_access_tokens = %v", md["tls_client_certificate_bound_access_tokens"])
		}
		methods, _ := json.Marshal(md["token_endpoint_auth_methods_supported"])
		if !strings.Contains(string(methods), `"tls_client_auth"`) || !strings.Contains(string(methods), `"self_signed_tls_client_auth"`) {
			t.Errorf("token_endpoint_auth_methods_supported = %s", methods)
		}
	})

	for _, tc := range []struct {
		name           string
		clientID, cred string
		cert, another  tls.Certificate
	}{
		{"tls_client_auth", dnApp, dnCred, worker, other},
		{"self_signed_tls_client_auth", selfApp, selfCred, self, worker},
	} {
		t.Run(tc.name+" gets a certificate-bound token", func(t *testing.T) {
			status, tr := e.mtlsToken(e.client(&tc.cert), tc.clientID, api, nil)
			if status != http.StatusOK {
				t.Fatalf("%d %v", status, tr)
			}
			tok := tr["access_token"].(string)
			if tr["token_type"] != "Bearer" {
				t.Errorf("token_type %v: a certificate-bound token is a Bearer token (RFC 8705 §3)", tr["token_type"])
			}
			if got, want := cnfX5T(t, tok), clientcert.Thumbprint(tc.cert.Leaf.Raw); got != want {
				t.Fatalf("cnf.x5t#S256 %q, want %q", got, want)
			}
			if !e.credentialUsed(tc.clientID, tc.cred) {
				t.Error("the credential's last use was not recorded")
			}
			if got := callRS(t, &tc.cert, tok); got != http.StatusOK {
				t.Errorf("rs with the same certificate: %d", got)
			}
			if got := callRS(t, &tc.another, tok); got != http.StatusUnauthorized {
				t.Errorf("rs with another certificate: %d, want 401", got)
			}
			if got := callRS(t, nil, tok); got != http.StatusUnauthorized {
				t.Errorf("rs without a certificate: %d, want 401", got)
			}
		})
	}

	t.Run("refused certificates", func(t *testing.T) {
		refusedApp, _, refusedCred := e.app("refused-worker", api, map[string]any{"type": "tls_client_auth", "subject_dn": "CN=worker-9,O=Example"})
		for _, c := range []struct {
			name string
			cert tls.Certificate
		}{
			{"wrong DN", clientCert(t, ca, "worker-8", now.Add(-time.Hour), now.Add(time.Hour))},
			{"untrusted chain", clientCert(t, otherCA, "worker-9", now.Add(-time.Hour), now.Add(time.Hour))},
			{"self-signed with the right DN", clientCert(t, nil, "worker-9", now.Add(-time.Hour), now.Add(time.Hour))},
			{"expired", clientCert(t, ca, "worker-9", now.Add(-2*time.Hour), now.Add(-time.Hour))},
		} {
			status, tr := e.mtlsToken(e.client(&c.cert), refusedApp, api, nil)
			if status != http.StatusUnauthorized || tr["error"] != "invalid_client" || tr["access_token"] != nil {
				t.Errorf("%s: %d %v, want 401 invalid_client", c.name, status, tr)
			}
		}
		if e.credentialUsed(refusedApp, refusedCred) {
			t.Error("a refused certificate used the credential")
		}
		// And the one the credential names works.
		good := clientCert(t, ca, "worker-9", now.Add(-time.Hour), now.Add(time.Hour))
		if status, tr := e.mtlsToken(e.client(&good), refusedApp, api, nil); status != http.StatusOK {
			t.Fatalf("the registered DN: %d %v", status, tr)
		}
	})

	t.Run("a secret over mutual TLS gets a certificate-bound token", func(t *testing.T) {
		id, secret, _ := e.app("secret-worker", api, nil)
		status, body := e.post(e.client(&other), "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {api}}, nil)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		if got := cnfX5T(t, tokenOf(t, body)["access_token"].(string)); got != clientcert.Thumbprint(other.Leaf.Raw) {
			t.Fatalf("cnf.x5t#S256 %q", got)
		}
	})

	t.Run("mtls_bound required refuses a request without a certificate", func(t *testing.T) {
		id, secret, _ := e.app("strict-worker", strict, nil)
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {strict}}
		status, body := e.post(e.client(nil), "/oauth/token", form, nil)
		if tr := tokenOf(t, body); status != http.StatusBadRequest || tr["error"] != "invalid_request" {
			t.Fatalf("%d %s, want 400 invalid_request", status, body)
		}
		status, body = e.post(e.client(&other), "/oauth/token", form, nil)
		if status != http.StatusOK || cnfX5T(t, tokenOf(t, body)["access_token"].(string)) == "" {
			t.Fatalf("with a certificate: %d %s", status, body)
		}
	})
}

// TestMTLSForwardedCertificate: behind a TLS-terminating proxy, the
// certificate in --client-cert-header authenticates and binds only on
// requests from --trusted-proxies; from anyone else the header is ignored.
func TestMTLSForwardedCertificate(t *testing.T) {
	ca := newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	replaceFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The proxy connects from 127.0.0.2; other clients from 127.0.0.1.
	e := startMTLSServer(t, ln, Config{Issuer: "http://" + ln.Addr().String(), TLSClientCAFile: caFile,
		ClientCertHeader: "X-SSL-Client-Cert", TrustedProxies: "127.0.0.2"}, nil)
	const api = "https://usage.example.com"
	e.adminCall(http.StatusCreated, "POST", "/admin/v1/apis", map[string]any{"identifier": api, "name": "usage"}, nil)
	worker := clientCert(t, ca, "worker-1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	id, _, _ := e.app("forwarded-worker", api, map[string]any{"type": "tls_client_auth", "subject_dn": "CN=worker-1,O=Example"})

	proxy := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	for _, tc := range []struct {
		name   string
		header string
	}{
		{"nginx escaped PEM", url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: worker.Leaf.Raw})))},
		{"base64 DER", base64Std(worker.Leaf.Raw)},
	} {
		t.Run("from the trusted proxy, "+tc.name, func(t *testing.T) {
			status, tr := e.mtlsToken(proxy, id, api, http.Header{"X-Ssl-Client-Cert": {tc.header}})
			if status != http.StatusOK {
				t.Fatalf("%d %v", status, tr)
			}
			if got := cnfX5T(t, tr["access_token"].(string)); got != clientcert.Thumbprint(worker.Leaf.Raw) {
				t.Fatalf("cnf.x5t#S256 %q", got)
			}
		})
	}
	t.Run("from an untrusted peer the header is ignored", func(t *testing.T) {
		header := http.Header{"X-Ssl-Client-Cert": {base64Std(worker.Leaf.Raw)}}
		if status, tr := e.mtlsToken(e.client(nil), id, api, header); status != http.StatusUnauthorized || tr["error"] != "invalid_client" {
			t.Fatalf("%d %v, want 401 invalid_client", status, tr)
		}
	})
	t.Run("an unreadable header from the trusted proxy", func(t *testing.T) {
		if status, tr := e.mtlsToken(proxy, id, api, http.Header{"X-Ssl-Client-Cert": {"garbage"}}); status != http.StatusUnauthorized {
			t.Fatalf("%d %v, want 401", status, tr)
		}
	})
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
