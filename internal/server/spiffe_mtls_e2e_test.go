package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/clientcert"
)

// svidCert issues an X.509-SVID (SPIFFE X509-SVID §4: no CA,
// digitalSignature, the SPIFFE ID as URI SAN) from ca with uris as its URI
// SANs, followed in the chain by intermediates.
func svidCert(t *testing.T, ca *testCA, uris []string, intermediates ...*x509.Certificate) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{Organization: []string{"SPIRE"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	for _, i := range intermediates {
		c.Certificate = append(c.Certificate, i.Raw)
	}
	return c
}

// intermediateCA issues a signing certificate under ca (SPIFFE X509-SVID
// §3.2), as SPIRE does with an upstream authority.
func intermediateCA(t *testing.T, ca *testCA) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "SPIRE intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// x509Bundle is a SPIFFE bundle whose x509-svid authorities are cas
// (SPIFFE X509-SVID §6.1).
func x509Bundle(t *testing.T, cas ...*testCA) []byte {
	t.Helper()
	keys := []jose.JSONWebKey{}
	for _, ca := range cas {
		keys = append(keys, jose.JSONWebKey{Key: ca.key.Public(), Certificates: []*x509.Certificate{ca.cert}, Use: "x509-svid"})
	}
	b, err := json.Marshal(map[string]any{"keys": keys, "spiffe_sequence": 1, "spiffe_refresh_hint": 300})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMTLSSPIFFEE2E: a workload presents its X.509-SVID over real
// loopback TLS as tls_client_auth (draft-ietf-oauth-spiffe-client-auth),
// its trust domain a spiffe trusted issuer whose bundle an https bundle
// endpoint serves; it gets a token bound to the SVID, also through an
// intermediate. An SVID of another trust domain, one with two URI SANs and
// chains to another CA (the --tls-client-ca-file CA among them) are
// refused with invalid_client and leave the credential unused.
func TestMTLSSPIFFEE2E(t *testing.T) {
	ca := newTestCA(t) // the server's certificate and --tls-client-ca-file
	tdCA, otherTDCA, strangerCA := newTestCA(t), newTestCA(t), newTestCA(t)
	inter := intermediateCA(t, tdCA)

	bundles := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/prod.example.org/bundle":
			w.Write(x509Bundle(t, tdCA))
		case "/partner.example/bundle":
			w.Write(x509Bundle(t, otherTDCA))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(bundles.Close)
	fetchRoots := x509.NewCertPool()
	fetchRoots.AddCert(bundles.Certificate())

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
	e := startMTLSServer(t, ln, Config{TLSCertFile: certFile, TLSKeyFile: keyFile, TLSClientCAFile: caFile,
		FetchRootCAs: fetchRoots, AuthMaxFailures: 1000}, ca.pool)

	const api = "https://usage.example.com"
	const workload = "spiffe://prod.example.org/ns/billing/sa/worker"
	const partner = "spiffe://partner.example/ns/billing/sa/worker"
	e.adminCall(http.StatusCreated, "POST", "/admin/v1/apis", map[string]any{"identifier": api, "name": "usage"}, nil)
	for td, path := range map[string]string{"prod.example.org": "/prod.example.org/bundle", "partner.example": "/partner.example/bundle"} {
		var ti admin.TrustedIssuerResource
		e.adminCall(http.StatusCreated, "POST", "/admin/v1/trusted-issuers", map[string]any{"name": td, "kind": "spiffe", "trust_domain": td,
			"bundle_url": bundles.URL + path}, &ti)
	}
	id, _, cred := e.app("svid-worker", api, map[string]any{"type": "tls_client_auth", "san_uri": workload})

	for _, tc := range []struct {
		name string
		cert tls.Certificate
	}{
		{"an X.509-SVID", svidCert(t, tdCA, []string{workload})},
		{"an X.509-SVID through an intermediate", svidCert(t, inter, []string{workload}, inter.cert)},
	} {
		t.Run(tc.name+" gets a certificate-bound token", func(t *testing.T) {
			status, tr := e.mtlsToken(e.client(&tc.cert), id, api, nil)
			if status != http.StatusOK {
				t.Fatalf("%d %v", status, tr)
			}
			if tr["token_type"] != "Bearer" {
				t.Errorf("token_type %v", tr["token_type"])
			}
			tok := tr["access_token"].(string)
			if got, want := cnfX5T(t, tok), clientcert.Thumbprint(tc.cert.Leaf.Raw); got != want {
				t.Fatalf("cnf.x5t#S256 %q, want %q", got, want)
			}
			if sub := claimsOf(t, tok)["sub"]; sub != id {
				t.Errorf("sub %v, want the client_id %s", sub, id)
			}
		})
	}
	if !e.credentialUsed(id, cred) {
		t.Error("the credential's last use was not recorded")
	}

	t.Run("refused", func(t *testing.T) {
		refusedID, _, refusedCred := e.app("svid-refused", api, map[string]any{"type": "tls_client_auth", "san_uri": workload})
		for _, c := range []struct {
			name string
			cert tls.Certificate
		}{
			{"an SVID of another trust domain", svidCert(t, otherTDCA, []string{partner})},
			{"this trust domain's ID from another trust domain's CA", svidCert(t, otherTDCA, []string{workload})},
			{"two URI SANs", svidCert(t, tdCA, []string{workload, "https://billing.example.org"})},
			{"a chain to another CA", svidCert(t, strangerCA, []string{workload})},
			{"a chain to the --tls-client-ca-file CA", svidCert(t, ca, []string{workload})},
			{"an intermediate the bundle does not reach", svidCert(t, intermediateCA(t, strangerCA), []string{workload})},
		} {
			status, tr := e.mtlsToken(e.client(&c.cert), refusedID, api, nil)
			if status != http.StatusUnauthorized || tr["error"] != "invalid_client" || tr["access_token"] != nil {
				t.Errorf("%s: %d %v, want 401 invalid_client", c.name, status, tr)
			}
		}
		if e.credentialUsed(refusedID, refusedCred) {
			t.Error("a refused SVID used the credential")
		}
	})
}
