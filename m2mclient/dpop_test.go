package m2mclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/m2mauth/m2mauth/dpop"
)

// memReplay is an in-memory dpop.Replay.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *memReplay) UseJTI(_ context.Context, key string, _ time.Time) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if r.seen[key] {
		return false, nil
	}
	r.seen[key] = true
	return true, nil
}

// dpopServer is a loopback authorization server and resource server that
// check proofs with dpop.Verify, each requiring its own nonce.
type dpopServer struct {
	*httptest.Server
	t     *testing.T
	clock *fakeClock
	// tokenType is the token_type answered; alwaysNonce refuses every
	// proof with use_dpop_nonce.
	tokenType   string
	alwaysNonce bool

	asNonces, rsNonces *dpop.Nonces
	replay             memReplay

	mu          sync.Mutex
	tokenCalls  int
	rsCalls     int
	issued      map[string]string // access token → cnf.jkt
	lastBody    string
	lastRSProof string
}

func newDPoPServer(t *testing.T, clock *fakeClock) *dpopServer {
	t.Helper()
	s := &dpopServer{
		t: t, clock: clock, tokenType: "DPoP", issued: map[string]string{},
		asNonces: dpop.NewNonces([]byte("authorization server nonce key!!"), time.Minute, clock.Now),
		rsNonces: dpop.NewNonces([]byte("resource server nonce key of 32b"), time.Minute, clock.Now),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.token)
	mux.HandleFunc("/meters", s.resource)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *dpopServer) verify(r *http.Request, accessToken string, nonces *dpop.Nonces) (*dpop.Proof, error) {
	if s.alwaysNonce {
		return nil, dpop.ErrUseNonce
	}
	return dpop.Verify(r.Context(), r.Header.Values("DPoP"), dpop.VerifyOptions{
		Method:      r.Method,
		URL:         s.URL + r.URL.EscapedPath(),
		Now:         s.clock.Now(),
		AccessToken: accessToken,
		Nonces:      nonces,
		Replay:      &s.replay,
	})
}

// token is the token endpoint (RFC 9449 §5, §8).
func (s *dpopServer) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	p, err := s.verify(r, "", s.asNonces)
	if errors.Is(err, dpop.ErrUseNonce) {
		w.Header().Set("DPoP-Nonce", s.asNonces.Current())
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
		return
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_dpop_proof","error_description":%q}`, err.Error())
		return
	}
	s.mu.Lock()
	at := fmt.Sprintf("at-%d", len(s.issued)+1)
	s.issued[at] = p.JKT
	s.mu.Unlock()
	fmt.Fprintf(w, `{"access_token":%q,"token_type":%q,"expires_in":600}`, at, s.tokenType)
}

// resource is a protected resource (RFC 9449 §7, §9).
func (s *dpopServer) resource(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.rsCalls++
	s.lastRSProof = r.Header.Get("DPoP")
	s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	s.mu.Lock()
	jkt, known := s.issued[token]
	s.mu.Unlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", `DPoP algs="ES256", error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	p, err := s.verify(r, token, s.rsNonces)
	if errors.Is(err, dpop.ErrUseNonce) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="usage", DPoP algs="ES256 EdDSA", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
		w.Header().Set("DPoP-Nonce", s.rsNonces.Current())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err != nil || p.JKT != jkt {
		w.Header().Set("WWW-Authenticate", `DPoP algs="ES256", error="invalid_dpop_proof"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	s.lastBody = string(body)
	s.mu.Unlock()
	fmt.Fprint(w, "ok")
}

func (s *dpopServer) calls() (token, rs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls, s.rsCalls
}

// dpopSources are the token sources DPoP is tested with: one through
// golang.org/x/oauth2 (client secrets), one through requestToken.
func dpopSources(t *testing.T, cfg Config) map[string]oauth2.TokenSource {
	t.Helper()
	secret, err := cfg.ClientSecret(context.Background(), "m2ms_secret")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := NewSigner(key, "", "k1")
	pkjwt, err := cfg.PrivateKeyJWT(context.Background(), signer)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]oauth2.TokenSource{"client_secret_basic": secret, "private_key_jwt": pkjwt}
}

func TestDPoP(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"client_secret_basic", "private_key_jwt"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			srv := newDPoPServer(t, clock)
			key, err := NewDPoPKey(nil, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Issuer: srv.URL, ClientID: "client-1", Audience: usageAPI, Now: clock.Now, DPoP: key}
			ts := dpopSources(t, cfg)[name]

			// The token request: use_dpop_nonce, then the retry with the nonce.
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "DPoP" || tok.AccessToken != "at-1" {
				t.Fatalf("token %+v", tok)
			}
			if srv.issued["at-1"] != key.Thumbprint() {
				t.Errorf("token bound to %q, want the key's thumbprint %q", srv.issued["at-1"], key.Thumbprint())
			}
			if n, _ := srv.calls(); n != 2 {
				t.Errorf("%d token requests, want 2 (use_dpop_nonce, retry)", n)
			}

			// The resource: use_dpop_nonce, then the retry.
			client := &http.Client{Transport: &DPoPTransport{Source: ts, Key: key}}
			get := func() {
				t.Helper()
				resp, err := client.Get(srv.URL + "/meters?page=2")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /meters: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
				}
			}
			get()
			if _, n := srv.calls(); n != 2 {
				t.Errorf("%d resource requests, want 2 (use_dpop_nonce, retry)", n)
			}
			// The nonce is remembered: one request each.
			get()
			if tokens, n := srv.calls(); n != 3 || tokens != 2 {
				t.Errorf("%d resource requests and %d token requests, want 3 and 2", n, tokens)
			}

			// A body is sent again on the retry.
			clock.Add(2 * time.Minute) // the resource server's nonce is stale
			resp, err := client.Post(srv.URL+"/meters", "text/plain", strings.NewReader("reading=42"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if _, n := srv.calls(); resp.StatusCode != http.StatusOK || n != 5 || srv.lastBody != "reading=42" {
				t.Errorf("POST after the nonce went stale: %s, %d resource requests, body %q", resp.Status, n, srv.lastBody)
			}

			// The token is cached until 30 s before it expires (issued at
			// the start, 600 s), even across the server's nonce rotation.
			clock.Add(449 * time.Second)
			if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-1" {
				t.Fatalf("within validity: %v %v", tok, err)
			}
			clock.Add(time.Second)
			if tok, err := ts.Token(); err != nil || tok.AccessToken != "at-2" {
				t.Fatalf("30 s before expiry: %v %v", tok, err)
			}
			if n, _ := srv.calls(); n != 4 {
				t.Errorf("%d token requests, want 4", n)
			}
		})
	}
}

// recorder keeps the requests it passes on.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func TestDPoPTransportBindsTheToken(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := newDPoPServer(t, clock)
	key, _ := NewDPoPKey(nil, clock.Now)
	cfg := Config{Issuer: srv.URL, ClientID: "client-1", Now: clock.Now, DPoP: key}
	ts, _ := cfg.ClientSecret(context.Background(), "m2ms_secret")
	rec := &recorder{}
	client := &http.Client{Transport: &DPoPTransport{Source: ts, Key: key, Base: rec}}
	resp, err := client.Get(srv.URL + "/meters?x=1#frag")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %s", resp.Status)
	}
	last := rec.reqs[len(rec.reqs)-1]
	if got := last.Header.Get("Authorization"); got != "DPoP at-1" {
		t.Errorf("Authorization = %q", got)
	}
	proof := last.Header.Values("DPoP")
	o := dpop.VerifyOptions{Method: "GET", URL: srv.URL + "/meters", Now: clock.Now(), AccessToken: "at-1"}
	p, err := dpop.Verify(context.Background(), proof, o)
	if err != nil {
		t.Fatalf("the proof does not verify: %v", err)
	}
	if p.JKT != key.Thumbprint() || p.Nonce != srv.rsNonces.Current() {
		t.Errorf("proof %+v", p)
	}
	o.AccessToken = "at-2"
	if _, err := dpop.Verify(context.Background(), proof, o); !errors.Is(err, dpop.ErrInvalidProof) || !strings.Contains(err.Error(), "ath") {
		t.Errorf("the proof verifies for another token: %v", err)
	}
	o.AccessToken, o.Method = "at-1", "POST"
	if _, err := dpop.Verify(context.Background(), proof, o); !errors.Is(err, dpop.ErrInvalidProof) {
		t.Errorf("the proof verifies for another method: %v", err)
	}
	// The caller's request is not changed.
	req, _ := http.NewRequest("GET", srv.URL+"/meters", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.Header.Get("Authorization") != "" || req.Header.Get("DPoP") != "" {
		t.Error("RoundTrip modified the request")
	}
}

func TestDPoPRetriesOnce(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := newDPoPServer(t, clock)
	key, _ := NewDPoPKey(nil, clock.Now)
	cfg := Config{Issuer: srv.URL, ClientID: "client-1", Now: clock.Now, DPoP: key}
	ts, _ := cfg.ClientSecret(context.Background(), "m2ms_secret")
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}

	srv.alwaysNonce = true
	ts2, _ := cfg.PrivateKeyJWT(context.Background(), mustSigner(t))
	_, err := ts2.Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "use_dpop_nonce" {
		t.Fatalf("token request always refused: %v", err)
	}
	if n, _ := srv.calls(); n != 4 {
		t.Errorf("%d token requests, want 2 + 2", n)
	}
	client := &http.Client{Transport: &DPoPTransport{Source: ts, Key: key}}
	resp, err := client.Get(srv.URL + "/meters")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, n := srv.calls(); resp.StatusCode != http.StatusUnauthorized || n != 2 {
		t.Errorf("resource always refusing: %s after %d requests, want 401 after 2", resp.Status, n)
	}
}

func mustSigner(t *testing.T) Signer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := NewSigner(key, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDPoPBodyNotReplayable(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := newDPoPServer(t, clock)
	key, _ := NewDPoPKey(nil, clock.Now)
	cfg := Config{Issuer: srv.URL, ClientID: "client-1", Now: clock.Now, DPoP: key}
	ts, _ := cfg.ClientSecret(context.Background(), "m2ms_secret")
	client := &http.Client{Transport: &DPoPTransport{Source: ts, Key: key}}
	// A body without GetBody: the 401 is returned, the nonce kept.
	req, _ := http.NewRequest("POST", srv.URL+"/meters", io.MultiReader(strings.NewReader("a=1")))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s, want 401", resp.Status)
	}
	req, _ = http.NewRequest("POST", srv.URL+"/meters", io.MultiReader(strings.NewReader("a=2")))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || srv.lastBody != "a=2" {
		t.Errorf("with the remembered nonce: %s, body %q", resp.Status, srv.lastBody)
	}
}

func TestDPoPRefusesBearerTokens(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := newDPoPServer(t, clock)
	srv.tokenType = "Bearer" // a server that ignores the proof
	key, _ := NewDPoPKey(nil, clock.Now)
	cfg := Config{Issuer: srv.URL, ClientID: "client-1", Now: clock.Now, DPoP: key}
	for name, ts := range dpopSources(t, cfg) {
		if _, err := ts.Token(); err == nil || !strings.Contains(err.Error(), "not a DPoP-bound") {
			t.Errorf("%s: %v", name, err)
		}
	}
	bearer := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-1", TokenType: "Bearer"})
	client := &http.Client{Transport: &DPoPTransport{Source: bearer, Key: key}}
	if _, err := client.Get(srv.URL + "/meters"); err == nil || !strings.Contains(err.Error(), "not a DPoP-bound") {
		t.Errorf("DPoPTransport with a bearer token: %v", err)
	}
	client = &http.Client{Transport: &DPoPTransport{Source: bearer}}
	if _, err := client.Get(srv.URL + "/meters"); err == nil {
		t.Error("DPoPTransport without a key succeeded")
	}
}

func TestNewDPoPKey(t *testing.T) {
	t.Parallel()
	k, err := NewDPoPKey(nil, nil)
	if err != nil || k.signer.Alg() != "ES256" || k.Thumbprint() == "" {
		t.Errorf("generated key: %v %v", k, err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	if k, err := NewDPoPKey(ed, nil); err != nil || k.signer.Alg() != "EdDSA" {
		t.Errorf("Ed25519 key: %v", err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := NewDPoPKey(small, nil); err == nil {
		t.Error("a 1024-bit RSA key was accepted")
	}
	p, err := k.Proof("GET", "https://rs.example.com/x?y=1", "at")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dpop.Verify(context.Background(), []string{p}, dpop.VerifyOptions{Method: "GET", URL: "https://rs.example.com/x", AccessToken: "at"}); err != nil {
		t.Errorf("Proof: %v", err)
	}
}

func TestParseChallenges(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`, true},
		{`DPoP error=use_dpop_nonce`, true},
		{`dpop ERROR="use_dpop_nonce"`, true},
		{`Bearer realm="x", DPoP algs="ES256 PS256", error="use_dpop_nonce"`, true},
		{`Basic dXNlcjpwYXNz==, DPoP error="use_dpop_nonce"`, true},
		{`Basic dXNlcjpwYXNz, DPoP error="use_dpop_nonce"`, true},
		{`DPoP error_description="a \"quoted\", comma", error="use_dpop_nonce"`, true},
		{`DPoP error="invalid_dpop_proof"`, false},
		{`Bearer error="use_dpop_nonce"`, false},
		{`DPoP error="use_dpop_nonce`, false},
		{`DPoP realm="use_dpop_nonce"`, false},
		{``, false},
		{`,,,`, false},
	} {
		if got := useDPoPNonce([]string{tt.in}); got != tt.want {
			t.Errorf("useDPoPNonce(%q) = %v, want %v: %+v", tt.in, got, tt.want, parseChallenges(tt.in))
		}
	}
}

func FuzzParseChallenges(f *testing.F) {
	f.Add(`Bearer realm="x", DPoP algs="ES256 PS256", error="use_dpop_nonce"`)
	f.Add(`Basic dXNlcjpwYXNz==, DPoP error="use_\"dpop\"_nonce"`)
	f.Fuzz(func(t *testing.T, s string) {
		if len(parseChallenges(s)) > 16 {
			t.Fatal("more than 16 challenges")
		}
	})
}
