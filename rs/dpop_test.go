package rs_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/rs"
)

// dpopAlgs is the algs attribute of DPoP challenges with the defaults.
const dpopAlgs = `algs="ES256 PS256 EdDSA RS256"`

// newDPoPKey returns a P-256 key and a proof signer with it on clock now.
func newDPoPKey(t testing.TB, now func() time.Time) (crypto.Signer, *dpop.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	return key, s
}

// boundClaims are iss.claims(scope) with cnf set to cnf.
func boundClaims(iss *testIssuer, scope string, cnf map[string]any) map[string]any {
	c := iss.claims(scope)
	c["cnf"] = cnf
	return c
}

// response is what a test request got back.
type response struct {
	status int
	auth   []string // WWW-Authenticate fields, in order
	nonce  string   // DPoP-Nonce
	body   errorBody
	raw    string
}

// challengeOf returns the WWW-Authenticate field of scheme, or "".
func (r response) challengeOf(scheme string) string {
	for _, a := range r.auth {
		if a == scheme || strings.HasPrefix(a, scheme+" ") {
			return a
		}
	}
	return ""
}

// send makes a request to srv and decodes the answer.
func send(t testing.TB, client *http.Client, method, url string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, auth: resp.Header.Values("WWW-Authenticate"), nonce: resp.Header.Get("DPoP-Nonce"), raw: string(b)}
	if resp.StatusCode != 200 {
		if err := json.Unmarshal(b, &out.body); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	return out
}

// dpopHeader returns the headers of a DPoP request: the token and proofs.
func dpopHeader(token string, proofs ...string) http.Header {
	h := http.Header{"Authorization": {"DPoP " + token}}
	for _, p := range proofs {
		h.Add("DPoP", p)
	}
	return h
}

func bearerHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// mustProof makes a proof or fails the test.
func mustProof(t testing.TB, s *dpop.Signer, method, url, token, nonce string) string {
	t.Helper()
	p, err := s.Proof(method, url, token, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// handBuiltProof signs claims with key under the given protected headers,
// for proofs dpop.Signer would never make.
func handBuiltProof(t testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, headers map[jose.HeaderKey]any, embedJWK bool, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, &jose.SignerOptions{EmbedJWK: embedJWK, ExtraHeaders: headers})
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantRefusal checks a refusal's status, body error and challenges: the
// error on the challenge of onScheme, descWant in its description.
func wantRefusal(t *testing.T, got response, status int, code, onScheme, descWant string) {
	t.Helper()
	if got.status != status {
		t.Fatalf("status = %d, want %d; body %s", got.status, status, got.raw)
	}
	if got.body.Error != code || !strings.Contains(got.body.Description, descWant) {
		t.Errorf("body = %+v, want error %q with %q", got.body, code, descWant)
	}
	ch := got.challengeOf(onScheme)
	if ch == "" {
		t.Fatalf("no %s challenge in %q", onScheme, got.auth)
	}
	if code != "" && !strings.Contains(ch, `error="`+code+`"`) {
		t.Errorf("%s challenge = %s, want error=%q", onScheme, ch, code)
	}
	for _, a := range got.auth {
		if a != ch && strings.Contains(a, "error=") {
			t.Errorf("challenge %s carries an error too; only %s should", a, onScheme)
		}
	}
	if d := got.challengeOf("DPoP"); d != "" && !strings.Contains(d, dpopAlgs) {
		t.Errorf("DPoP challenge %s lacks %s", d, dpopAlgs)
	}
}

// dpopAPI is a protected handler on a loopback server.
type dpopAPI struct {
	iss    *testIssuer
	v      *rs.Validator
	srv    *httptest.Server
	signer *dpop.Signer
	token  string // bound to signer's key
}

func newDPoPAPI(t *testing.T, edit func(*rs.Config)) *dpopAPI {
	t.Helper()
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	v := iss.validator(edit)
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(echoClaims)))
	t.Cleanup(srv.Close)
	_, signer := newDPoPKey(t, iss.clock.Now)
	tok := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "read:meters", map[string]any{"jkt": signer.Thumbprint()}))
	return &dpopAPI{iss: iss, v: v, srv: srv, signer: signer, token: tok}
}

func TestDPoP(t *testing.T) {
	a := newDPoPAPI(t, nil)
	iss, url := a.iss, a.srv.URL+"/meters"
	now := iss.clock.Now()
	bearer := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))
	otherKey, other := newDPoPKey(t, iss.clock.Now)
	_, old := newDPoPKey(t, func() time.Time { return now.Add(-2 * time.Minute) })
	oldTok := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "", map[string]any{"jkt": old.Thumbprint()}))
	otherTok := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "", map[string]any{"jkt": other.Thumbprint()}))
	dpopTyp := map[jose.HeaderKey]any{jose.HeaderType: "dpop+jwt"}
	handClaims := func() map[string]any {
		return map[string]any{"jti": "hand-1", "htm": "GET", "htu": url, "iat": now.Unix(), "ath": dpop.AccessTokenHash(otherTok)}
	}
	replayed := mustProof(t, a.signer, "GET", url, a.token, "")
	if r := send(t, a.srv.Client(), "GET", url, dpopHeader(a.token, replayed)); r.status != 200 {
		t.Fatalf("first use of the proof: %d %s", r.status, r.raw)
	}

	for _, tc := range []struct {
		name     string
		method   string
		url      string
		header   http.Header
		status   int
		code     string
		onScheme string
		desc     string
	}{
		{"fresh proof", "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, "")), 200, "", "", ""},
		{"scheme in lower case", "GET", url, http.Header{"Authorization": {"dpop " + a.token}, "Dpop": {mustProof(t, a.signer, "GET", url, a.token, "")}}, 200, "", "", ""},
		{"query ignored in htu", "GET", url + "?page=2", dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, "")), 200, "", "", ""},
		{"DPoP-bound token as Bearer", "GET", url, bearerHeader(a.token), 401, "invalid_token", "Bearer", "DPoP scheme"},
		{"DPoP-bound token as Bearer with a proof", "GET", url, http.Header{"Authorization": {"Bearer " + a.token}, "Dpop": {mustProof(t, a.signer, "GET", url, a.token, "")}}, 401, "invalid_token", "Bearer", "DPoP scheme"},
		{"proof from another key", "GET", url, dpopHeader(a.token, mustProof(t, other, "GET", url, a.token, "")), 401, "invalid_token", "DPoP", "does not match the token's cnf.jkt"},
		{"replayed proof", "GET", url, dpopHeader(a.token, replayed), 401, "invalid_dpop_proof", "DPoP", "jti already used"},
		{"proof for another method", "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "POST", url, a.token, "")), 401, "invalid_dpop_proof", "DPoP", "htm"},
		{"proof for another path", "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", a.srv.URL+"/meter-types", a.token, "")), 401, "invalid_dpop_proof", "DPoP", "htu"},
		{"proof for another host", "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", "https://api.example.com/meters", a.token, "")), 401, "invalid_dpop_proof", "DPoP", "htu"},
		{"proof without ath", "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, "", "")), 401, "invalid_dpop_proof", "DPoP", "no ath"},
		{"proof with a wrong ath", "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, bearer, "")), 401, "invalid_dpop_proof", "DPoP", "ath does not match"},
		{"proof too old", "GET", url, dpopHeader(oldTok, mustProof(t, old, "GET", url, oldTok, "")), 401, "invalid_dpop_proof", "DPoP", "iat is more than"},
		{"no DPoP header", "GET", url, dpopHeader(a.token), 401, "invalid_dpop_proof", "DPoP", "no DPoP header"},
		{"two DPoP headers", "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, ""), mustProof(t, a.signer, "GET", url, a.token, "")), 401, "invalid_dpop_proof", "DPoP", "2 DPoP headers"},
		{"garbage proof", "GET", url, dpopHeader(a.token, "abc.def.ghi"), 401, "invalid_dpop_proof", "DPoP", ""},
		{"bearer token under DPoP", "GET", url, dpopHeader(bearer, mustProof(t, a.signer, "GET", url, bearer, "")), 401, "invalid_token", "DPoP", "not DPoP-bound"},
		{"DPoP without token", "GET", url, http.Header{"Authorization": {"DPoP"}}, 400, "invalid_request", "DPoP", "malformed"},
		{"hand-built: typ JWT", "GET", url, dpopHeader(otherTok, handBuiltProof(t, otherKey, jose.ES256, map[jose.HeaderKey]any{jose.HeaderType: "JWT"}, true, handClaims())), 401, "invalid_dpop_proof", "DPoP", "typ"},
		{"hand-built: no jwk", "GET", url, dpopHeader(otherTok, handBuiltProof(t, otherKey, jose.ES256, dpopTyp, false, handClaims())), 401, "invalid_dpop_proof", "DPoP", "no jwk"},
		{"hand-built: HS256", "GET", url, dpopHeader(otherTok, hs256Proof(url, now)), 401, "invalid_dpop_proof", "DPoP", ""},
		{"hand-built: valid", "GET", url, dpopHeader(otherTok, handBuiltProof(t, otherKey, jose.ES256, dpopTyp, true, handClaims())), 200, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := send(t, a.srv.Client(), tc.method, tc.url, tc.header)
			if tc.status == 200 {
				if got.status != 200 || got.raw != "app_123" {
					t.Fatalf("status %d body %q, want 200 app_123", got.status, got.raw)
				}
				return
			}
			wantRefusal(t, got, tc.status, tc.code, tc.onScheme, tc.desc)
			// BearerAllowed: both schemes are acceptable, both challenges sent.
			if len(got.auth) != 2 || !strings.HasPrefix(got.auth[0], `Bearer realm="`+audience+`"`) || !strings.HasPrefix(got.auth[1], `DPoP realm="`+audience+`", `+dpopAlgs) {
				t.Errorf("WWW-Authenticate = %q, want a Bearer then a DPoP challenge", got.auth)
			}
			if strings.Contains(got.raw, a.token) || strings.Contains(strings.Join(got.auth, " "), a.token) {
				t.Error("the response echoes the token")
			}
		})
	}
}

// hs256Proof is a proof signed with HMAC, which no allow-list may admit.
func hs256Proof(htu string, now time.Time) string {
	b64 := base64.RawURLEncoding.EncodeToString
	header := b64([]byte(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`))
	claims := b64([]byte(`{"jti":"x","htm":"GET","htu":"` + htu + `","iat":` + jsonNumber(now.Unix()) + `}`))
	return header + "." + claims + "." + b64([]byte("not-a-real-mac-but-long-enough-32b"))
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestDPoPSenderConstrainedPolicy(t *testing.T) {
	a := newDPoPAPI(t, func(c *rs.Config) { c.Policy = rs.SenderConstrained })
	url := a.srv.URL + "/meters"
	bearer := a.iss.token("es", "ES256", "at+jwt", a.iss.claims("read:meters"))

	if got := send(t, a.srv.Client(), "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, ""))); got.status != 200 {
		t.Fatalf("DPoP token with a proof: %d %s", got.status, got.raw)
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
		code   string
		desc   string
	}{
		{"bearer token when DPoP is required", bearerHeader(bearer), 401, "invalid_token", "requires a sender-constrained"},
		{"no token", nil, 401, "", "sender-constrained access token required"},
		{"DPoP-bound token as Bearer", bearerHeader(a.token), 401, "invalid_token", "DPoP scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := send(t, a.srv.Client(), "GET", url, tc.header)
			wantRefusal(t, got, tc.status, tc.code, "DPoP", tc.desc)
			// Without mTLS nothing is acceptable under Bearer: no Bearer challenge.
			if len(got.auth) != 1 || got.challengeOf("Bearer") != "" {
				t.Errorf("WWW-Authenticate = %q, want the DPoP challenge alone", got.auth)
			}
			if tc.code == "" && strings.Contains(got.auth[0], "error=") {
				t.Errorf("WWW-Authenticate = %q: no error code without credentials", got.auth)
			}
		})
	}
}

func TestWithPolicyPerRoute(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	v := iss.validator(nil)
	strict := v.WithPolicy(rs.SenderConstrained)
	if v.Policy() != rs.BearerAllowed || strict.Policy() != rs.SenderConstrained {
		t.Fatalf("policies %v, %v", v.Policy(), strict.Policy())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /open", v.Middleware(http.HandlerFunc(echoClaims)))
	mux.Handle("GET /strict", strict.Middleware(rs.RequireScope("read:meters")(http.HandlerFunc(echoClaims))))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, signer := newDPoPKey(t, iss.clock.Now)
	bound := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "read:meters", map[string]any{"jkt": signer.Thumbprint()}))
	unscoped := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "", map[string]any{"jkt": signer.Thumbprint()}))
	bearer := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))

	if got := send(t, srv.Client(), "GET", srv.URL+"/open", bearerHeader(bearer)); got.status != 200 {
		t.Errorf("bearer on the open route: %d %s", got.status, got.raw)
	}
	if got := send(t, srv.Client(), "GET", srv.URL+"/strict", bearerHeader(bearer)); got.status != 401 || got.body.Error != "invalid_token" {
		t.Errorf("bearer on the strict route: %d %s", got.status, got.raw)
	}
	proof := mustProof(t, signer, "GET", srv.URL+"/strict", bound, "")
	if got := send(t, srv.Client(), "GET", srv.URL+"/strict", dpopHeader(bound, proof)); got.status != 200 {
		t.Errorf("DPoP on the strict route: %d %s", got.status, got.raw)
	}
	// The routes share one replay cache.
	if got := send(t, srv.Client(), "GET", srv.URL+"/strict", dpopHeader(bound, proof)); got.status != 401 || got.body.Error != "invalid_dpop_proof" {
		t.Errorf("replay on the strict route: %d %s", got.status, got.raw)
	}
	// insufficient_scope under DPoP goes on the DPoP challenge.
	got := send(t, srv.Client(), "GET", srv.URL+"/strict", dpopHeader(unscoped, mustProof(t, signer, "GET", srv.URL+"/strict", unscoped, "")))
	wantRefusal(t, got, 403, "insufficient_scope", "DPoP", "read:meters")
	if !strings.Contains(got.challengeOf("DPoP"), `scope="read:meters"`) {
		t.Errorf("DPoP challenge %q lacks the scope", got.challengeOf("DPoP"))
	}
}

func TestDPoPNonces(t *testing.T) {
	const window = 5 * time.Minute
	key := []byte("0123456789abcdef0123456789abcdef")
	var nonces, replica *dpop.Nonces
	a := newDPoPAPI(t, func(c *rs.Config) {
		nonces = dpop.NewNonces(key, window, c.Now)
		replica = dpop.NewNonces(key, window, c.Now)
		c.DPoP.Nonces = nonces
	})
	url := a.srv.URL + "/meters"
	client := a.srv.Client()

	// The first request has no nonce: use_dpop_nonce and a DPoP-Nonce.
	got := send(t, client, "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, "")))
	wantRefusal(t, got, 401, "use_dpop_nonce", "DPoP", "no nonce")
	if got.nonce == "" || got.nonce != nonces.Current() {
		t.Fatalf("DPoP-Nonce = %q, want the current nonce", got.nonce)
	}
	// The retry with it succeeds, without a new nonce.
	ok := send(t, client, "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, got.nonce)))
	if ok.status != 200 || ok.nonce != "" {
		t.Fatalf("retry with the nonce: %d, DPoP-Nonce %q, body %s", ok.status, ok.nonce, ok.raw)
	}
	// A nonce another replica (same key) issued is accepted.
	if r := send(t, client, "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, replica.Current()))); r.status != 200 {
		t.Fatalf("nonce from a replica: %d %s", r.status, r.raw)
	}
	// One window later the old nonce still works, and a fresh one is sent.
	a.iss.clock.Advance(window)
	r := send(t, client, "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, got.nonce)))
	if r.status != 200 || r.nonce == "" || r.nonce == got.nonce {
		t.Fatalf("nonce of the previous window: %d, DPoP-Nonce %q, body %s", r.status, r.nonce, r.raw)
	}
	// Two windows later it is stale.
	a.iss.clock.Advance(window)
	stale := send(t, client, "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, got.nonce)))
	wantRefusal(t, stale, 401, "use_dpop_nonce", "DPoP", "not current")
	if stale.nonce != nonces.Current() {
		t.Errorf("DPoP-Nonce = %q, want the current nonce", stale.nonce)
	}
	// Every 401 carries the nonce, so clients can skip a round trip.
	if r := send(t, client, "GET", url, nil); r.status != 401 || r.nonce != nonces.Current() {
		t.Errorf("401 without a token: DPoP-Nonce %q", r.nonce)
	}
}

// TestDPoPExternalURL: behind a proxy, htu is Config.ExternalURL and the
// path, whatever Host the request has.
func TestDPoPExternalURL(t *testing.T) {
	a := newDPoPAPI(t, func(c *rs.Config) { c.ExternalURL = "https://api.example.com/usage/" })
	external := "https://api.example.com/usage/meters"
	if got := send(t, a.srv.Client(), "GET", a.srv.URL+"/meters", dpopHeader(a.token, mustProof(t, a.signer, "GET", external, a.token, ""))); got.status != 200 {
		t.Errorf("proof for the external URL: %d %s", got.status, got.raw)
	}
	got := send(t, a.srv.Client(), "GET", a.srv.URL+"/meters", dpopHeader(a.token, mustProof(t, a.signer, "GET", a.srv.URL+"/meters", a.token, "")))
	wantRefusal(t, got, 401, "invalid_dpop_proof", "DPoP", "htu")
}

// failingReplay is a replay store that cannot answer.
type failingReplay struct{}

func (failingReplay) UseJTI(context.Context, string, time.Time) (bool, error) {
	return false, io.ErrUnexpectedEOF
}

func TestDPoPReplayStoreFailure(t *testing.T) {
	a := newDPoPAPI(t, func(c *rs.Config) { c.DPoP.Replay = failingReplay{} })
	url := a.srv.URL + "/meters"
	got := send(t, a.srv.Client(), "GET", url, dpopHeader(a.token, mustProof(t, a.signer, "GET", url, a.token, "")))
	if got.status != 503 || got.body.Error != "temporarily_unavailable" || len(got.auth) != 0 {
		t.Errorf("replay store down: %d %q %s; want 503 without a challenge", got.status, got.auth, got.raw)
	}
}

func TestConfirmationClaim(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	v := iss.validator(nil)
	for _, tc := range []struct {
		name    string
		cnf     any
		want    rs.Confirmation
		wantErr error
	}{
		{"jkt", map[string]any{"jkt": "abc"}, rs.Confirmation{JKT: "abc"}, nil},
		{"x5t#S256", map[string]any{"x5t#S256": "def"}, rs.Confirmation{X5TS256: "def"}, nil},
		{"both", map[string]any{"jkt": "abc", "x5t#S256": "def"}, rs.Confirmation{JKT: "abc", X5TS256: "def"}, nil},
		{"not an object", "abc", rs.Confirmation{}, rs.ErrMalformed},
		{"null", nil, rs.Confirmation{}, rs.ErrMalformed},
		{"empty", map[string]any{}, rs.Confirmation{}, rs.ErrMalformed},
		{"jkt not a string", map[string]any{"jkt": 5}, rs.Confirmation{}, rs.ErrMalformed},
		{"empty jkt", map[string]any{"jkt": ""}, rs.Confirmation{}, rs.ErrMalformed},
		{"JKT in capitals", map[string]any{"JKT": "abc"}, rs.Confirmation{}, rs.ErrSenderConstraint},
		{"jwk method", map[string]any{"jwk": map[string]any{"kty": "EC"}}, rs.Confirmation{}, rs.ErrSenderConstraint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := iss.claims("")
			claims["cnf"] = tc.cnf
			c, err := v.Validate(context.Background(), iss.token("es", "ES256", "at+jwt", claims))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, rs.ErrInvalidToken) {
					t.Fatalf("Validate = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Confirmation != tc.want {
				t.Fatalf("Validate = %+v, %v; want %+v", c, err, tc.want)
			}
		})
	}
	c, err := v.Validate(context.Background(), iss.token("es", "ES256", "at+jwt", iss.claims("")))
	if err != nil || c.Confirmation != (rs.Confirmation{}) {
		t.Fatalf("token without cnf: %+v %v", c, err)
	}
}
