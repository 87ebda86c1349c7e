package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/m2mclient"
)

// TestResourceServerNonceWithM2MAuth runs usage APIs with
// --dpop-nonce-key-file (RFC 9449 §9) against a real m2mauth: two
// replicas sharing a key file and a third with its own key, on a short
// --dpop-nonce-window. The first DPoP request to a replica gets 401
// use_dpop_nonce with a DPoP-Nonce header and m2mclient.DPoPTransport's
// retry with that nonce gets 200; a nonce minted by the other replica is
// accepted, one of the replica with another key is not; a nonce from the
// previous window is still accepted, one two windows old is not.
func TestResourceServerNonceWithM2MAuth(t *testing.T) {
	m := startM2MAuth(t)
	admin := m.adminToken(t)
	const audience = "https://usage-rs-nonce.e2e.test"
	m.call(t, admin, http.StatusCreated, "POST", "/admin/v1/apis", map[string]any{
		"identifier": audience, "name": "rs nonce", "signing_alg": "ES256", "dpop": "required",
		"scopes": []map[string]string{{"value": scopeReadMeters, "description": "read meters"}},
	}, nil)
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	m.call(t, admin, http.StatusCreated, "POST", "/admin/v1/applications", map[string]any{
		"name": "rs nonce client", "client_secret": true,
		"grants": []map[string]any{{"audience": audience, "scopes": []string{scopeReadMeters}}},
	}, &app)

	// A short window, so that the test sees the nonce change twice.
	const window = 2 * time.Second
	dir := t.TempDir()
	shared, own := writeNonceKey(t, dir, "shared.key"), writeNonceKey(t, dir, "own.key")
	flags := func(keyFile string) []string {
		return []string{"--dpop-nonce-key-file", keyFile, "--dpop-nonce-window", window.String()}
	}
	replicaA := startUsageAPI(t, m.url, audience, flags(shared)...)
	replicaB := startUsageAPI(t, m.url, audience, flags(shared)...)
	loner := startUsageAPI(t, m.url, audience, flags(own)...)

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := m2mclient.NewDPoPKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := newSigner(t, priv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	src, err := m2mclient.Config{
		Issuer: m.url, ClientID: app.ClientID, Audience: audience, Scopes: []string{scopeReadMeters},
		DPoP: key, HTTPClient: &http.Client{Timeout: e2eTimeout},
	}.ClientSecret(ctx, app.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatalf("DPoP token from m2mauth: %v", err)
	}
	token := tok.AccessToken

	// call sends GET url with token and a proof carrying nonce ("" for
	// none), and returns the status, the header and the body.
	call := func(t *testing.T, u, nonce string) (int, http.Header, string) {
		t.Helper()
		p, err := signer.Proof("GET", u, token, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return send(t, http.DefaultClient, "GET", u, http.Header{"Authorization": {"DPoP " + token}, "Dpop": {p}}, "")
	}
	// wantUseNonce calls u with a proof carrying nonce, checks that it is
	// refused with use_dpop_nonce (RFC 9449 §9), and returns the nonce
	// the refusal offers.
	wantUseNonce := func(t *testing.T, u, nonce string) string {
		t.Helper()
		status, h, body := call(t, u, nonce)
		if status != http.StatusUnauthorized {
			t.Fatalf("%d %s, want 401 use_dpop_nonce", status, body)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "use_dpop_nonce" {
			t.Errorf("body %s, want error use_dpop_nonce", body)
		}
		chs := challenges(h.Values("WWW-Authenticate"))
		if len(chs) != 1 || chs[0].scheme != "DPoP" || chs[0].params["error"] != "use_dpop_nonce" {
			t.Errorf("challenges %q, want one DPoP challenge with error use_dpop_nonce", h.Values("WWW-Authenticate"))
		}
		n := h.Get("DPoP-Nonce")
		if n == "" {
			t.Fatal("no DPoP-Nonce header")
		}
		return n
	}

	t.Run("DPoPTransport retries once with the nonce", func(t *testing.T) {
		rec := &exchangeRecorder{base: http.DefaultTransport}
		c := &http.Client{Timeout: e2eTimeout, Transport: &m2mclient.DPoPTransport{Source: src, Key: key, Base: rec}}
		export := replicaA + "/meters/export"
		if status, _, body := send(t, c, "GET", export, nil, ""); status != http.StatusOK {
			t.Fatalf("GET /meters/export: %d %s", status, body)
		}
		ex := rec.take()
		if len(ex) != 2 {
			t.Fatalf("%d exchanges, want the refusal and the retry: %+v", len(ex), ex)
		}
		if ex[0].status != http.StatusUnauthorized || ex[0].answeredNonce == "" || ex[0].proofNonce != "" ||
			!strings.Contains(strings.Join(ex[0].challenges, "\n"), `error="use_dpop_nonce"`) {
			t.Errorf("first exchange %+v, want 401 use_dpop_nonce with a DPoP-Nonce, for a proof without nonce", ex[0])
		}
		if ex[1].status != http.StatusOK || ex[1].proofNonce != ex[0].answeredNonce {
			t.Errorf("retry %+v, want 200 for a proof with the nonce %q", ex[1], ex[0].answeredNonce)
		}
		// The key remembers the nonce: no refusal the next time.
		if status, _, body := send(t, c, "GET", replicaA+"/meters", nil, ""); status != http.StatusOK {
			t.Fatalf("GET /meters: %d %s", status, body)
		}
		if ex := rec.take(); len(ex) != 1 || ex[0].proofNonce == "" {
			t.Errorf("second request: exchanges %+v, want one, with a nonce", ex)
		}
	})

	t.Run("a proof without a nonce is refused", func(t *testing.T) {
		wantUseNonce(t, replicaA+"/meters/export", "")
	})

	t.Run("a nonce of the other replica is accepted", func(t *testing.T) {
		nonce := wantUseNonce(t, replicaB+"/meters/export", "")
		if status, _, body := call(t, replicaA+"/meters/export", nonce); status != http.StatusOK {
			t.Fatalf("replica A with replica B's nonce: %d %s", status, body)
		}
	})

	t.Run("a nonce of a replica with another key is refused", func(t *testing.T) {
		nonce := wantUseNonce(t, replicaA+"/meters/export", "")
		offered := wantUseNonce(t, loner+"/meters/export", nonce)
		if offered == nonce {
			t.Error("the replica with its own key offers the shared key's nonce")
		}
		if status, _, body := call(t, loner+"/meters/export", offered); status != http.StatusOK {
			t.Fatalf("with its own nonce: %d %s", status, body)
		}
	})

	t.Run("nonces rotate: the previous window's is accepted, an older one is not", func(t *testing.T) {
		n0 := currentNonce(t, replicaB)
		n1 := nextNonce(t, replicaA, n0, window)
		status, h, body := call(t, replicaA+"/meters/export", n0)
		if status != http.StatusOK {
			t.Fatalf("previous window's nonce: %d %s", status, body)
		}
		if got := h.Get("DPoP-Nonce"); got != n1 {
			t.Errorf("DPoP-Nonce %q on a success with the previous nonce, want the current one %q", got, n1)
		}
		nextNonce(t, replicaA, n1, window)
		if offered := wantUseNonce(t, replicaA+"/meters/export", n0); offered == n0 || offered == n1 {
			t.Errorf("offered nonce %q is not the new window's", offered)
		}
	})
}

// writeNonceKey writes a key file of 32 random bytes, base64 as
// `openssl rand -base64 32` writes it, and returns its path.
func writeNonceKey(t *testing.T, dir, name string) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// currentNonce returns the DPoP-Nonce api sends on a 401: its current
// nonce.
func currentNonce(t *testing.T, api string) string {
	t.Helper()
	status, h, body := send(t, http.DefaultClient, "GET", api+"/meters", nil, "")
	if status != http.StatusUnauthorized || h.Get("DPoP-Nonce") == "" {
		t.Fatalf("GET /meters without a token: %d %s, DPoP-Nonce %q; want 401 with a nonce", status, body, h.Get("DPoP-Nonce"))
	}
	return h.Get("DPoP-Nonce")
}

// nextNonce waits, at most two windows, until api's current nonce is no
// longer old, and returns the new one.
func nextNonce(t *testing.T, api, old string, window time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(2 * window)
	for {
		if n := currentNonce(t, api); n != old {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nonce did not change within %v", 2*window)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchange is one request DPoPTransport sent and its answer.
type exchange struct {
	status        int
	proofNonce    string // the nonce claim of the request's proof
	answeredNonce string // the DPoP-Nonce header of the answer
	challenges    []string
}

// exchangeRecorder is a transport that records each exchange.
type exchangeRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

func (r *exchangeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	var claims struct {
		Nonce string `json:"nonce"`
	}
	if parts := strings.Split(req.Header.Get("DPoP"), "."); len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(b, &claims)
		}
	}
	r.mu.Lock()
	r.log = append(r.log, exchange{status: resp.StatusCode, proofNonce: claims.Nonce,
		answeredNonce: resp.Header.Get("DPoP-Nonce"), challenges: resp.Header.Values("WWW-Authenticate")})
	r.mu.Unlock()
	return resp, nil
}

// take returns the exchanges recorded so far and forgets them.
func (r *exchangeRecorder) take() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	ex := r.log
	r.log = nil
	return ex
}
