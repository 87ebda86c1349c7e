package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientcert"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// certAuthority issues certificates valid around a fixed time.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCertAuthority(t *testing.T, now time.Time, name string) *certAuthority {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &certAuthority{cert: cert, key: key, pool: pool}
}

// leaf issues a client certificate from tmpl (times default around now);
// a nil ca makes it self-signed.
func (ca *certAuthority) leaf(t *testing.T, now time.Time, tmpl x509.Certificate) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
	parent, signer := &tmpl, any(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// sub issues an intermediate CA under ca.
func (ca *certAuthority) sub(t *testing.T, now time.Time, name string) *certAuthority {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &certAuthority{cert: cert, key: key}
}

// spiffeBundle is a SPIFFE bundle whose x509-svid keys are the CAs, with a
// refresh hint in seconds (SPIFFE Trust Domain and Bundle §4).
func spiffeBundle(t *testing.T, refreshHint int, cas ...*certAuthority) []byte {
	t.Helper()
	keys := []jose.JSONWebKey{}
	for _, ca := range cas {
		keys = append(keys, jose.JSONWebKey{Key: ca.key.Public(), Certificates: []*x509.Certificate{ca.cert}, Use: "x509-svid"})
	}
	b, err := json.Marshal(map[string]any{"keys": keys, "spiffe_refresh_hint": refreshHint})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tlsCredential(id string, cfg authz.TLSClientAuthConfig) authz.Credential {
	raw, _ := json.Marshal(cfg)
	return authz.Credential{ID: id, ClientID: "owner", Type: authz.CredentialTLSClientAuth, Config: raw}
}

func selfSignedCredential(t *testing.T, id string, k jose.JSONWebKey) authz.Credential {
	t.Helper()
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}})
	raw, _ := json.Marshal(authz.KeyCredentialConfig{JWKS: set})
	return authz.Credential{ID: id, ClientID: "owner", Type: authz.CredentialSelfSignedTLSClientAuth, Config: raw}
}

// postMTLS asks f's token endpoint for a token as client_id owner, with
// chain as its client certificate (none if nil) and the extra form values.
func postMTLS(f *fixture, chain []*x509.Certificate, extra url.Values) *httptest.ResponseRecorder {
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}, "client_id": {"owner"}}
	for k, v := range extra {
		form[k] = v
	}
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if chain != nil {
		r = r.WithContext(clientcert.NewContext(r.Context(), chain, nil))
	}
	w := httptest.NewRecorder()
	f.srv.HandleToken(w, r)
	return w
}

// TestTLSClientAuth: the chain must reach the CAs (or the SPIFFE bundle)
// and the subject or SAN be registered; a self-signed certificate must be
// registered; expired certificates, others' certificates and requests
// without one are refused with invalid_client.
func TestTLSClientAuth(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	ca := newCertAuthority(t, now, "clients CA")
	otherCA := newCertAuthority(t, now, "another CA")
	svidCA := newCertAuthority(t, now, "example.org SPIFFE CA")
	spiffeID, _ := url.Parse("spiffe://example.org/ns/billing/sa/worker")
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}

	byDN := ca.leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "worker", Organization: []string{"Example"}}, ExtKeyUsage: clientAuth})
	byDNS := ca.leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"worker.example.com"}, ExtKeyUsage: clientAuth})
	byIP := ca.leaf(t, now, x509.Certificate{IPAddresses: []net.IP{net.ParseIP("192.0.2.7")}})
	byEmail := ca.leaf(t, now, x509.Certificate{EmailAddresses: []string{"worker@example.com"}})
	serverOnly := ca.leaf(t, now, x509.Certificate{DNSNames: []string{"worker.example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	untrusted := otherCA.leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "worker", Organization: []string{"Example"}}})
	expired := ca.leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "worker", Organization: []string{"Example"}},
		NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)})
	wrongDN := ca.leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "worker", Organization: []string{"Other"}}})
	svid := svidCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{spiffeID}})
	self := (*certAuthority)(nil).leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "self"}})
	selfByThumb := (*certAuthority)(nil).leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "self2"}})
	selfOther := (*certAuthority)(nil).leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "self3"}})
	sum := sha256.Sum256(selfByThumb.Raw)

	jwk := jose.JSONWebKey{Key: svidCA.key.Public(), Certificates: []*x509.Certificate{svidCA.cert}, Use: "x509-svid"}
	jwkJSON, err := jwk.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	bundle := []byte(`{"keys":[` + string(jwkJSON) + `]}`)

	creds := memCredentials{"owner": {
		tlsCredential("cred_dn", authz.TLSClientAuthConfig{SubjectDN: "cn=worker, O=example"}),
		tlsCredential("cred_dns", authz.TLSClientAuthConfig{SANDNS: "worker.example.com"}),
		tlsCredential("cred_ip", authz.TLSClientAuthConfig{SANIP: "192.0.2.7"}),
		tlsCredential("cred_email", authz.TLSClientAuthConfig{SANEmail: "worker@example.com"}),
		tlsCredential("cred_svid", authz.TLSClientAuthConfig{SANURI: spiffeID.String()}),
		selfSignedCredential(t, "cred_x5c", jose.JSONWebKey{Key: self.PublicKey, Certificates: []*x509.Certificate{self}}),
		selfSignedCredential(t, "cred_x5t", jose.JSONWebKey{Key: selfByThumb.PublicKey, CertificateThumbprintSHA256: sum[:]}),
	}}
	events := &fake.Events{}
	f.srv.Events = events
	auth := &TLSClientAuth{S: f.srv, Credentials: creds, CAs: ca.pool,
		Issuers: fedIssuers{"spiffe://example.org": {ID: "tis_1", Kind: authz.TrustedIssuerSPIFFE, Issuer: "spiffe://example.org", TrustDomain: "example.org", JWKS: bundle}}}
	f.srv.ClientAuth = append(SecretAuthenticators(f.srv), auth.Authenticators()...)

	for _, tc := range []struct {
		name   string
		chain  []*x509.Certificate
		wantID string // "" refused
		reason string
	}{
		{"subject DN", []*x509.Certificate{byDN}, "cred_dn", ""},
		{"DNS SAN", []*x509.Certificate{byDNS}, "cred_dns", ""},
		{"IP SAN", []*x509.Certificate{byIP}, "cred_ip", ""},
		{"email SAN", []*x509.Certificate{byEmail}, "cred_email", ""},
		{"SPIFFE X.509-SVID", []*x509.Certificate{svid}, "cred_svid", ""},
		{"self-signed by x5c", []*x509.Certificate{self}, "cred_x5c", ""},
		{"self-signed by x5t#S256", []*x509.Certificate{selfByThumb}, "cred_x5t", ""},
		{"wrong DN", []*x509.Certificate{wrongDN}, "", "client certificate"},
		{"untrusted chain", []*x509.Certificate{untrusted}, "", "client certificate"},
		{"not for client authentication", []*x509.Certificate{serverOnly}, "", "client certificate"},
		{"expired", []*x509.Certificate{expired}, "", "expired"},
		{"unregistered self-signed", []*x509.Certificate{selfOther}, "", "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(events.CredentialUses())
			w := postMTLS(f, tc.chain, nil)
			if tc.wantID == "" {
				if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), ErrInvalidClient) {
					t.Fatalf("%d %s, want 401 invalid_client", w.Code, w.Body)
				}
				fails := events.AuthFailures()
				if len(fails) == 0 || !strings.Contains(fails[len(fails)-1].Reason, tc.reason) {
					t.Fatalf("failures %+v, want a reason with %q", fails, tc.reason)
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			uses := events.CredentialUses()
			if len(uses) != before+1 || uses[len(uses)-1].CredentialID != tc.wantID {
				t.Fatalf("credential uses %+v, want %s", uses, tc.wantID)
			}
		})
	}

	t.Run("no certificate: client_secret_post without a secret", func(t *testing.T) {
		if w := postMTLS(f, nil, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("a secret with a certificate is client_secret_post", func(t *testing.T) {
		w := postMTLS(f, []*x509.Certificate{byDN}, url.Values{"client_secret": {f.secrets["owner"]}})
		if w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("an unreadable forwarded certificate", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}, "client_id": {"owner"}}
		r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r = r.WithContext(clientcert.NewContext(r.Context(), nil, clientcert.ErrBadHeader))
		w := httptest.NewRecorder()
		f.srv.HandleToken(w, r)
		fails := events.AuthFailures()
		if w.Code != http.StatusUnauthorized || !strings.Contains(fails[len(fails)-1].Reason, "unreadable") {
			t.Fatalf("%d %s %+v", w.Code, w.Body, fails)
		}
	})
	t.Run("discovery lists both methods", func(t *testing.T) {
		got := strings.Join(f.srv.AuthMethods(), " ")
		if !strings.Contains(got, MethodTLSClientAuth) || !strings.Contains(got, MethodSelfSignedTLSClientAuth) {
			t.Fatalf("methods %s", got)
		}
	})
	t.Run("the SPIFFE ID must be the only URI SAN", func(t *testing.T) {
		two := svidCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{spiffeID, {Scheme: "urn", Opaque: "x"}}})
		if w := postMTLS(f, []*x509.Certificate{two}, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

// TestMTLSBinding: a request with a certificate gets its thumbprint
// whatever the API's policy; without one, required refuses with
// invalid_request and optional binds nothing.
func TestMTLSBinding(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	cert := (*certAuthority)(nil).leaf(t, now, x509.Certificate{Subject: pkix.Name{CommonName: "c"}})
	s := &Server{}
	for _, tc := range []struct {
		name   string
		cert   bool
		policy string
		want   string
		err    bool
	}{
		{"optional with a certificate", true, authz.PolicyOptional, clientcert.Thumbprint(cert.Raw), false},
		{"unset with a certificate", true, "", clientcert.Thumbprint(cert.Raw), false},
		{"required with a certificate", true, authz.PolicyRequired, clientcert.Thumbprint(cert.Raw), false},
		{"optional without", false, authz.PolicyOptional, "", false},
		{"required without", false, authz.PolicyRequired, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, PathToken, nil)
			if tc.cert {
				r = r.WithContext(clientcert.NewContext(r.Context(), []*x509.Certificate{cert}, nil))
			}
			got, e := s.mtlsBinding(r, authenticated{}, &authz.API{Identifier: testAudience, MTLSBound: tc.policy})
			if tc.err {
				if e == nil || e.Code != ErrInvalidRequest || e.Status != http.StatusBadRequest {
					t.Fatalf("error %v, want 400 invalid_request", e)
				}
				return
			}
			if e != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, e, tc.want)
			}
		})
	}
}

// TestTLSClientAuthSPIFFEBundleURL: an X.509-SVID as tls_client_auth
// against the bundle a spiffe trusted issuer's bundle endpoint serves
// (SPIFFE X509-SVID §5, draft-ietf-oauth-spiffe-client-auth): accepted
// when its only URI SAN is the registered SPIFFE ID and its chain reaches
// the trust domain's authorities; refused for another trust domain, two
// URI SANs, a CA or certificate-signing leaf, a chain to the client CAs or
// another trust domain's CA, and an unreachable bundle. A rotation at the
// endpoint is picked up when the refresh hint runs out, and a failed
// refresh keeps the last good authorities.
func TestTLSClientAuthSPIFFEBundleURL(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	clientCA := newCertAuthority(t, now, "clients CA")
	tdCA := newCertAuthority(t, now, "example.org SPIFFE CA")
	nextCA := newCertAuthority(t, now, "example.org next SPIFFE CA")
	otherCA := newCertAuthority(t, now, "other.example SPIFFE CA")
	inter := tdCA.sub(t, now, "example.org SPIFFE intermediate")
	const id, otherID, unknownID = "spiffe://example.org/ns/billing/sa/worker", "spiffe://other.example/ns/billing/sa/worker", "spiffe://unknown.example/ns/billing/sa/worker"
	u := func(s string) *url.URL { v, _ := url.Parse(s); return v }
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}

	var mu sync.Mutex
	bodies := map[string][]byte{"/example.org": spiffeBundle(t, 300, tdCA), "/other.example": spiffeBundle(t, 300, otherCA)}
	fail := false
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		b, ok := bodies[r.URL.Path]
		if !ok || fail {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	fetcher := jwks.NewFetcher(jwks.FetcherConfig{RootCAs: roots, Now: f.clock.Now})
	spiffeIssuer := func(id, td, path string) authz.TrustedIssuer {
		return authz.TrustedIssuer{ID: id, Kind: authz.TrustedIssuerSPIFFE, Issuer: "spiffe://" + td, TrustDomain: td, BundleURL: srv.URL + path}
	}
	issuers := fedIssuers{
		"spiffe://example.org":   spiffeIssuer("tis_1", "example.org", "/example.org"),
		"spiffe://other.example": spiffeIssuer("tis_2", "other.example", "/other.example"),
		"spiffe://down.example":  spiffeIssuer("tis_3", "down.example", "/down.example"),
	}
	creds := memCredentials{}
	events := &fake.Events{}
	f.srv.Events = events
	auth := &TLSClientAuth{S: f.srv, Credentials: creds, CAs: clientCA.pool, Issuers: issuers, Bundles: fetcher}
	f.srv.ClientAuth = append(SecretAuthenticators(f.srv), auth.Authenticators()...)

	// try registers san_uri registered as owner's one credential and asks
	// for a token with chain: "" if issued, else the refusal reason.
	try := func(t *testing.T, registered string, chain ...*x509.Certificate) string {
		t.Helper()
		creds["owner"] = []authz.Credential{tlsCredential("cred_svid", authz.TLSClientAuthConfig{SANURI: registered})}
		w := postMTLS(f, chain, nil)
		if w.Code == http.StatusOK {
			return ""
		}
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), ErrInvalidClient) {
			t.Fatalf("%d %s, want 200 or 401 invalid_client", w.Code, w.Body)
		}
		fails := events.AuthFailures()
		return fails[len(fails)-1].Reason
	}

	svid := tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}, ExtKeyUsage: clientAuth})
	for _, tc := range []struct {
		name       string
		registered string
		chain      []*x509.Certificate
		reason     string // "" accepted
	}{
		{"an X.509-SVID of the trust domain", id, []*x509.Certificate{svid}, ""},
		{"an X.509-SVID without extKeyUsage", id, []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}})}, ""},
		{"through an intermediate", id, []*x509.Certificate{inter.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}}), inter.cert}, ""},
		{"another trust domain's SVID, by its own CA", otherID, []*x509.Certificate{otherCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(otherID)}})}, ""},
		{"another trust domain's SVID for this trust domain's ID", id, []*x509.Certificate{otherCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(otherID)}})}, "not registered"},
		{"an SVID of other.example signed by example.org's CA", otherID, []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(otherID)}})}, "not trusted by its trust domain's bundle"},
		{"a trust domain without a trusted issuer", unknownID, []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(unknownID)}})}, "no trusted issuer"},
		{"two URI SANs", id, []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id), u("urn:example:x")}})}, "exactly one URI SAN"},
		{"a CA leaf", id, []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}, IsCA: true, BasicConstraintsValid: true})}, "exactly one URI SAN"},
		{"a leaf with keyCertSign", id, []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}, KeyUsage: x509.KeyUsageCertSign})}, "exactly one URI SAN"},
		{"a chain to the client CAs", id, []*x509.Certificate{clientCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}, ExtKeyUsage: clientAuth})}, "not trusted by its trust domain's bundle"},
		{"not for client authentication", id, []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})}, "not trusted by its trust domain's bundle"},
		{"a registered san_uri that is no workload's SPIFFE ID", "spiffe://example.org", []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u("spiffe://example.org")}})}, "not a SPIFFE ID"},
		{"an unreachable bundle endpoint", "spiffe://down.example/w", []*x509.Certificate{tdCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u("spiffe://down.example/w")}})}, "bundle unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := try(t, tc.registered, tc.chain...)
			if tc.reason == "" && got != "" {
				t.Fatalf("refused (%s), want a token", got)
			}
			if tc.reason != "" && !strings.Contains(got, tc.reason) {
				t.Fatalf("reason %q, want one with %q", got, tc.reason)
			}
		})
	}

	t.Run("the CA is rotated at the bundle endpoint", func(t *testing.T) {
		next := nextCA.leaf(t, now, x509.Certificate{URIs: []*url.URL{u(id)}})
		mu.Lock()
		bodies["/example.org"] = spiffeBundle(t, 300, nextCA)
		mu.Unlock()
		if got := try(t, id, next); got == "" {
			t.Fatal("the new CA's SVID accepted before the refresh hint ran out")
		}
		if got := try(t, id, svid); got != "" {
			t.Fatalf("the cached CA's SVID refused: %s", got)
		}
		f.clock.Add(300 * time.Second)
		if got := try(t, id, next); got != "" {
			t.Fatalf("the new CA's SVID after the refresh: %s", got)
		}
		if got := try(t, id, svid); got == "" {
			t.Fatal("the withdrawn CA's SVID accepted after the refresh")
		}
		// The endpoint fails: the last good authorities stay in use.
		mu.Lock()
		fail = true
		mu.Unlock()
		f.clock.Add(300 * time.Second)
		if got := try(t, id, next); got != "" {
			t.Fatalf("after a failed refresh: %s", got)
		}
	})
	t.Run("without a fetcher only inline bundles work", func(t *testing.T) {
		auth.Bundles = nil
		defer func() { auth.Bundles = fetcher }()
		if got := try(t, id, svid); !strings.Contains(got, "no x509-svid authorities") {
			t.Fatalf("reason %q", got)
		}
	})
}
