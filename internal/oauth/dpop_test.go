package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientip"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/token"
)

// dpopFixture is newFixture with DPoP on: a replay store in memory,
// nonces in windows of a minute on the fixture's clock, and owner's grant
// for testAudience changed by api.
type dpopFixture struct {
	*fixture
	replay *memReplay
	nonces *dpop.Nonces
	// signer makes proofs on the fixture's clock with an ES256 key.
	signer *dpop.Signer
}

func newDPoPFixture(t *testing.T, api func(*authz.API)) *dpopFixture {
	t.Helper()
	f := &dpopFixture{fixture: newFixture(t), replay: &memReplay{}}
	f.nonces = dpop.NewNonces(make([]byte, 32), time.Minute, f.clock.Now)
	f.srv.DPoPReplay, f.srv.DPoPNonces = f.replay, f.nonces
	if api != nil {
		api(f.clients.ByID["owner"].Grants[0].API)
	}
	f.signer = newProofSigner(t, f.clock.Now)
	return f
}

func newProofSigner(t testing.TB, now func() time.Time) *dpop.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// proof is a proof of f.signer for POST to the fixture's token endpoint.
func (f *dpopFixture) proof(t *testing.T, nonce string) string {
	t.Helper()
	p, err := f.signer.Proof(http.MethodPost, "https://issuer"+PathToken, "", nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenRequest posts owner's client_secret_basic token request for
// testAudience to path with the DPoP header values proofs.
func (f *dpopFixture) tokenRequest(path string, proofs ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}.Encode()))
	r.Header.Set("Content-Type", form)
	r.Header.Set("Authorization", basic("owner", f.secrets["owner"]))
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	w := httptest.NewRecorder()
	f.srv.HandleToken(w, r)
	return w
}

// issued decodes a token response and the cnf of its token.
func issued(t *testing.T, w *httptest.ResponseRecorder) (tokenType string, cnf *token.Confirmation) {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s, want a token", w.Code, w.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		t.Fatal(err)
	}
	_, claims := parseAccessToken(t, w)
	if raw, ok := claims["cnf"]; ok {
		b, _ := json.Marshal(raw)
		cnf = &token.Confirmation{}
		if err := json.Unmarshal(b, cnf); err != nil {
			t.Fatal(err)
		}
	}
	return tr.TokenType, cnf
}

func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code, inDesc string) {
	t.Helper()
	gotCode, desc := oauthError(t, w)
	if w.Code != status || gotCode != code || !strings.Contains(desc, inDesc) {
		t.Fatalf("%d %s %q, want %d %s containing %q", w.Code, gotCode, desc, status, code, inDesc)
	}
}

// TestDPoPBinding: a token request with a valid proof gets a token bound
// to the proof's key (cnf.jkt) with token_type DPoP; one without gets a
// Bearer token, unless the API requires DPoP; every refused proof is
// invalid_dpop_proof and leaves no jti behind.
func TestDPoPBinding(t *testing.T) {
	t.Run("no proof", func(t *testing.T) {
		f := newDPoPFixture(t, nil)
		typ, cnf := issued(t, f.tokenRequest(PathToken))
		if typ != TokenTypeBearer || cnf != nil {
			t.Fatalf("token_type %q, cnf %+v: want a Bearer token without cnf", typ, cnf)
		}
	})
	for _, path := range []string{PathToken, PathTokenLegacy} {
		t.Run("proof at "+path, func(t *testing.T) {
			f := newDPoPFixture(t, nil)
			p, err := f.signer.Proof(http.MethodPost, "https://issuer"+path, "", "")
			if err != nil {
				t.Fatal(err)
			}
			w := f.tokenRequest(path, p)
			typ, cnf := issued(t, w)
			if typ != TokenTypeDPoP || cnf == nil || cnf.JKT != f.signer.Thumbprint() || cnf.X5TS256 != "" {
				t.Fatalf("token_type %q, cnf %+v: want DPoP bound to %s", typ, cnf, f.signer.Thumbprint())
			}
			if n := w.Header().Get(HeaderDPoPNonce); n != "" {
				t.Errorf("DPoP-Nonce %q for an API without nonces", n)
			}
			if len(f.replay.used) != 1 {
				t.Errorf("%d jti recorded, want 1", len(f.replay.used))
			}
		})
	}
	t.Run("required, no proof", func(t *testing.T) {
		f := newDPoPFixture(t, func(a *authz.API) { a.DPoP = authz.PolicyRequired })
		wantError(t, f.tokenRequest(PathToken), http.StatusBadRequest, ErrInvalidDPoPProof, "requires DPoP")
	})
	t.Run("required, proof", func(t *testing.T) {
		f := newDPoPFixture(t, func(a *authz.API) { a.DPoP = authz.PolicyRequired })
		if typ, _ := issued(t, f.tokenRequest(PathToken, f.proof(t, ""))); typ != TokenTypeDPoP {
			t.Fatalf("token_type %q", typ)
		}
	})

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		algs   []string // Server.DPoPAlgs
		proofs func(f *dpopFixture) []string
		inDesc string
	}{
		{"proof for GET", nil, func(f *dpopFixture) []string {
			p, _ := f.signer.Proof(http.MethodGet, "https://issuer"+PathToken, "", "")
			return []string{p}
		}, "htm"},
		{"proof for the legacy path", nil, func(f *dpopFixture) []string {
			p, _ := f.signer.Proof(http.MethodPost, "https://issuer"+PathTokenLegacy, "", "")
			return []string{p}
		}, "htu"},
		{"proof for another host", nil, func(f *dpopFixture) []string {
			p, _ := f.signer.Proof(http.MethodPost, "https://example.com"+PathToken, "", "")
			return []string{p}
		}, "htu"},
		{"proof too old", nil, func(f *dpopFixture) []string {
			old := newProofSigner(t, func() time.Time { return f.clock.Now().Add(-2 * time.Minute) })
			p, _ := old.Proof(http.MethodPost, "https://issuer"+PathToken, "", "")
			return []string{p}
		}, "old"},
		{"proof from the future", nil, func(f *dpopFixture) []string {
			ahead := newProofSigner(t, func() time.Time { return f.clock.Now().Add(time.Minute) })
			p, _ := ahead.Proof(http.MethodPost, "https://issuer"+PathToken, "", "")
			return []string{p}
		}, "future"},
		{"two proofs", nil, func(f *dpopFixture) []string {
			return []string{f.proof(t, ""), f.proof(t, "")}
		}, "2 DPoP headers"},
		{"not a JWS", nil, func(*dpopFixture) []string { return []string{"not-a-proof"} }, "JWS"},
		{"algorithm not allowed", []string{"ES256"}, func(f *dpopFixture) []string {
			s, err := dpop.NewSigner(rsaKey, rand.Reader, f.clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := s.Proof(http.MethodPost, "https://issuer"+PathToken, "", "")
			return []string{p}
		}, "PS256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newDPoPFixture(t, nil)
			f.srv.DPoPAlgs = tc.algs
			wantError(t, f.tokenRequest(PathToken, tc.proofs(f)...), http.StatusBadRequest, ErrInvalidDPoPProof, tc.inDesc)
			if len(f.replay.used) != 0 {
				t.Errorf("a refused proof recorded %d jti", len(f.replay.used))
			}
		})
	}
	t.Run("replayed proof", func(t *testing.T) {
		f := newDPoPFixture(t, nil)
		p := f.proof(t, "")
		issued(t, f.tokenRequest(PathToken, p))
		wantError(t, f.tokenRequest(PathToken, p), http.StatusBadRequest, ErrInvalidDPoPProof, "jti already used")
	})
	t.Run("no replay store", func(t *testing.T) {
		f := newDPoPFixture(t, nil)
		f.srv.DPoPReplay = nil
		if w := f.tokenRequest(PathToken, f.proof(t, "")); w.Code != http.StatusInternalServerError {
			t.Fatalf("%d %s, want 500", w.Code, w.Body)
		}
	})
}

// TestDPoPNonce: an API requiring nonces refuses a proof without the
// current nonce with use_dpop_nonce and a DPoP-Nonce header, without
// recording its jti; the retry with that nonce gets a token; the previous
// window's nonce is accepted, and answered with the current one; an older
// one is refused again.
func TestDPoPNonce(t *testing.T) {
	f := newDPoPFixture(t, func(a *authz.API) { a.DPoPNonce = true })
	w := f.tokenRequest(PathToken, f.proof(t, ""))
	wantError(t, w, http.StatusBadRequest, ErrUseDPoPNonce, "no nonce")
	nonce := w.Header().Get(HeaderDPoPNonce)
	if nonce == "" || nonce != f.nonces.Current() {
		t.Fatalf("DPoP-Nonce %q, want the current nonce", nonce)
	}
	if len(f.replay.used) != 0 {
		t.Fatalf("the refused proof recorded %d jti", len(f.replay.used))
	}
	w = f.tokenRequest(PathToken, f.proof(t, nonce))
	if typ, _ := issued(t, w); typ != TokenTypeDPoP {
		t.Fatalf("token_type %q", typ)
	}
	if h := w.Header().Get(HeaderDPoPNonce); h != "" {
		t.Errorf("DPoP-Nonce %q though the client's nonce is current", h)
	}

	f.clock.Add(time.Minute) // the nonce is now the previous window's
	w = f.tokenRequest(PathToken, f.proof(t, nonce))
	issued(t, w)
	if h := w.Header().Get(HeaderDPoPNonce); h == "" || h == nonce || h != f.nonces.Current() {
		t.Errorf("DPoP-Nonce %q, want the new current nonce", h)
	}

	f.clock.Add(time.Minute) // two windows on: stale
	w = f.tokenRequest(PathToken, f.proof(t, nonce))
	wantError(t, w, http.StatusBadRequest, ErrUseDPoPNonce, "not current")
	if h := w.Header().Get(HeaderDPoPNonce); h != f.nonces.Current() {
		t.Errorf("DPoP-Nonce %q, want the current nonce", h)
	}

	// A bearer request to the API is no proof: nonces do not apply.
	if typ, _ := issued(t, f.tokenRequest(PathToken)); typ != TokenTypeBearer {
		t.Errorf("token_type %q", typ)
	}

	t.Run("server without nonces", func(t *testing.T) {
		f := newDPoPFixture(t, func(a *authz.API) { a.DPoPNonce = true })
		f.srv.DPoPNonces = nil
		if w := f.tokenRequest(PathToken, f.proof(t, "")); w.Code != http.StatusInternalServerError {
			t.Fatalf("%d %s, want 500", w.Code, w.Body)
		}
	})
}

// TestFAPI2Profile: under the FAPI 2.0 profile only private_key_jwt with
// PS256, ES256 or EdDSA (or mutual TLS) authenticates, the token must be
// sender-constrained, DPoP proofs must use PS256, ES256 or EdDSA, and the
// request must come over TLS 1.2+ or through a trusted proxy. No refusal
// records the proof's jti.
func TestFAPI2Profile(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	setup := func(t *testing.T) *dpopFixture {
		f := newDPoPFixture(t, func(a *authz.API) { a.Profile = authz.ProfileFAPI2 })
		pk := &PrivateKeyJWT{S: f.srv, Credentials: memCredentials{"owner": {jwksCredential(t, "cred", ecKey, rsaKey)}}, Replay: &memReplay{},
			Algs: []string{"ES256", "PS256", "RS256"}}
		f.srv.ClientAuth = append(SecretAuthenticators(f.srv), pk)
		return f
	}
	tlsState := &tls.ConnectionState{Version: tls.VersionTLS13}
	type request struct {
		assertion func(f *dpopFixture) string // "" for client_secret_basic
		proof     func(f *dpopFixture) string // "" for none
		tls       *tls.ConnectionState
		proxy     bool // from a trusted proxy
	}
	es256 := func(f *dpopFixture) string { return signAssertion(t, f.fixture, "ES256", ecKey, "k0", "") }
	proof := func(f *dpopFixture) string { return f.proof(t, "") }
	tests := []struct {
		name    string
		req     request
		status  int
		code    string
		inDesc  string
		wantTyp string
	}{
		{"private_key_jwt with DPoP over TLS", request{assertion: es256, proof: proof, tls: tlsState}, http.StatusOK, "", "", TokenTypeDPoP},
		{"PS256 assertion", request{assertion: func(f *dpopFixture) string { return signAssertion(t, f.fixture, "PS256", rsaKey, "k1", "") }, proof: proof, tls: tlsState}, http.StatusOK, "", "", TokenTypeDPoP},
		{"through a trusted proxy", request{assertion: es256, proof: proof, proxy: true}, http.StatusOK, "", "", TokenTypeDPoP},
		{"client_secret_basic", request{proof: proof, tls: tlsState}, http.StatusUnauthorized, ErrInvalidClient, "private_key_jwt", ""},
		{"RS256 assertion", request{assertion: func(f *dpopFixture) string { return signAssertion(t, f.fixture, "RS256", rsaKey, "k1", "") }, proof: proof, tls: tlsState}, http.StatusUnauthorized, ErrInvalidClient, "PS256, ES256 or EdDSA", ""},
		{"no sender constraint", request{assertion: es256, tls: tlsState}, http.StatusBadRequest, ErrInvalidRequest, "sender-constrained", ""},
		{"plain HTTP", request{assertion: es256, proof: proof}, http.StatusBadRequest, ErrInvalidRequest, "TLS 1.2", ""},
		{"TLS 1.1", request{assertion: es256, proof: proof, tls: &tls.ConnectionState{Version: tls.VersionTLS11}}, http.StatusBadRequest, ErrInvalidRequest, "TLS 1.2", ""},
		{"RS256 proof", request{assertion: es256, proof: func(f *dpopFixture) string {
			s, err := dpop.NewSigner(rsaKey, rand.Reader, f.clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			// dpop.Signer signs RSA keys PS256; an RS256 proof is made by hand.
			return rs256Proof(t, rsaKey, s.PublicKey(), f.clock.Now())
		}, tls: tlsState}, http.StatusBadRequest, ErrInvalidDPoPProof, "RS256", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			ip, err := clientip.New([]string{"198.51.100.7"}) // httptest requests come from 192.0.2.1
			if err != nil {
				t.Fatal(err)
			}
			f.srv.ClientIP = ip
			form := url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}
			if tc.req.assertion != nil {
				form.Set("client_assertion_type", AssertionTypeJWTBearer)
				form.Set("client_assertion", tc.req.assertion(f))
			}
			r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.req.assertion == nil {
				r.Header.Set("Authorization", basic("owner", f.secrets["owner"]))
			}
			if tc.req.proof != nil {
				r.Header.Set("DPoP", tc.req.proof(f))
			}
			r.TLS = tc.req.tls
			if tc.req.proxy {
				r.RemoteAddr = "198.51.100.7:443"
			}
			w := httptest.NewRecorder()
			f.srv.HandleToken(w, r)
			if tc.status != http.StatusOK {
				wantError(t, w, tc.status, tc.code, tc.inDesc)
				if len(f.replay.used) != 0 {
					t.Errorf("the refused request recorded %d proof jti", len(f.replay.used))
				}
				return
			}
			if typ, cnf := issued(t, w); typ != tc.wantTyp || cnf == nil || cnf.JKT != f.signer.Thumbprint() {
				t.Fatalf("token_type %q, cnf %+v", typ, cnf)
			}
		})
	}
}

// rs256Proof signs a DPoP proof RS256 with key (pub its JWK), which
// dpop.Signer never does.
func rs256Proof(t *testing.T, key *rsa.PrivateKey, pub jose.JSONWebKey, now time.Time) string {
	t.Helper()
	header, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": pub})
	claims, _ := json.Marshal(map[string]any{"jti": rand.Text(), "htm": "POST", "htu": "https://issuer" + PathToken, "iat": now.Unix()})
	input := b64(header) + "." + b64(claims)
	h := crypto.SHA256.New()
	h.Write([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestIntrospectConfirmation: introspection of a DPoP-bound token answers
// its cnf and token_type DPoP (RFC 9449 §6.2); of a bearer token, Bearer
// and no cnf.
func TestIntrospectConfirmation(t *testing.T) {
	f := newFixture(t)
	bound, _, err := f.srv.Issuer.Issue(token.Request{ClientID: "owner", Audience: testAudience, Scopes: []string{"read"}, Lifetime: time.Hour, Alg: authz.ES256,
		Confirmation: &token.Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.introspect(t, "owner", bound)
	if !got.Active || got.TokenType != TokenTypeDPoP || got.Confirmation.JKT != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
		t.Fatalf("introspection %+v", got)
	}
	w := f.post(f.srv.HandleIntrospect, "owner", url.Values{"token": {bound}})
	if !strings.Contains(w.Body.String(), `"cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}`) {
		t.Errorf("body %s: no cnf", w.Body)
	}
	plain, _ := f.issue(t, "read")
	w = f.post(f.srv.HandleIntrospect, "owner", url.Values{"token": {plain}})
	if body := w.Body.String(); strings.Contains(body, "cnf") || !strings.Contains(body, `"token_type":"Bearer"`) {
		t.Errorf("bearer token's introspection %s", body)
	}
}

// TestDiscoveryDPoPAlgs: dpop_signing_alg_values_supported lists the
// server's proof algorithms, dpop.DefaultAlgs by default.
func TestDiscoveryDPoPAlgs(t *testing.T) {
	for _, algs := range [][]string{nil, {"ES256", "EdDSA"}} {
		srv := &Server{DPoPAlgs: algs}
		d := &Discovery{Issuer: "https://issuer", APIs: &countingAPIs{}, DPoPAlgs: srv.DPoPSigningAlgs()}
		w := httptest.NewRecorder()
		d.HandleMetadata(w, httptest.NewRequest(http.MethodGet, PathASMetadata, nil))
		var m struct {
			Algs []string `json:"dpop_signing_alg_values_supported"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		want := algs
		if want == nil {
			want = []string{"ES256", "PS256", "EdDSA", "RS256"}
		}
		if !slices.Equal(m.Algs, want) {
			t.Errorf("dpop_signing_alg_values_supported %v, want %v", m.Algs, want)
		}
	}
}

// BenchmarkHandleTokenDPoP is BenchmarkHandleToken/issued with a DPoP
// proof (ES256): the difference is one proof verified (parse, ES256
// verify, claims, RFC 7638 thumbprint) and the cnf claim. The replay store
// finds every jti fresh, so that one proof serves every iteration.
func BenchmarkHandleTokenDPoP(b *testing.B) {
	now := func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	log := slog.New(slog.DiscardHandler)
	sealer, err := masterkey.NewSealer(rand.Reader, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	keys := token.NewKeys(fake.NewKeys(), sealer, now, rand.Reader, log)
	if err := keys.Ensure(b.Context(), authz.ES256); err != nil {
		b.Fatal(err)
	}
	hasher, err := clientsecret.NewHasher(make([]byte, clientsecret.PepperLen))
	if err != nil {
		b.Fatal(err)
	}
	id, plain, err := clientsecret.Generate(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	api := authz.API{Identifier: testAudience, Scopes: []authz.Scope{{Value: "read"}}, TokenLifetime: time.Hour, SigningAlg: authz.ES256}
	clients := &fake.Clients{ByID: map[string]*authz.Client{"owner": {
		Application: authz.Application{ClientID: "owner"},
		Secrets:     []authz.Secret{{ID: id, ClientID: "owner", Hash: hasher.Hash(plain)}},
		Grants:      []authz.ClientGrant{{Grant: authz.Grant{Scopes: []string{"read"}}, API: &api}},
	}}}
	srv := &Server{Clients: clients, Hasher: hasher, Issuer: token.NewIssuer("https://issuer", keys, now, rand.Reader), Now: now, Log: log, DPoPReplay: acceptAll{}}
	proof, err := newProofSigner(b, now).Proof(http.MethodPost, "https://issuer"+PathToken, "", "")
	if err != nil {
		b.Fatal(err)
	}
	const body = "grant_type=client_credentials&audience=https%3A%2F%2Fusage%2F"
	auth := basic("owner", plain)
	for _, bc := range []struct {
		name, proof, want string
	}{{"bearer", "", TokenTypeBearer}, {"dpop", proof, TokenTypeDPoP}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
				r.Header.Set("Content-Type", form)
				r.Header.Set("Authorization", auth)
				if bc.proof != "" {
					r.Header.Set("DPoP", bc.proof)
				}
				w := httptest.NewRecorder()
				srv.HandleToken(w, r)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"token_type":"`+bc.want+`"`) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// TestDPoPHeaderKey: dpopHeader is the canonical form of "DPoP", so a
// header sent as "DPoP" or "dpop" is found by it.
func TestDPoPHeaderKey(t *testing.T) {
	if got := textproto.CanonicalMIMEHeaderKey("DPoP"); got != dpopHeader {
		t.Fatalf("canonical key %q, dpopHeader %q", got, dpopHeader)
	}
	for _, name := range []string{"DPoP", "dpop", "DPOP"} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Add(name, "x")
		if !hasDPoPProof(r) {
			t.Fatalf("a %q header is not seen", name)
		}
	}
	if hasDPoPProof(httptest.NewRequest(http.MethodPost, "/", nil)) {
		t.Fatal("a request without the header has a proof")
	}
}
