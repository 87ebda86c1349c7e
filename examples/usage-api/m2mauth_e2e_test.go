package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/m2mauth/m2mauth/dpop"
	authserver "github.com/m2mauth/m2mauth/internal/server"
	"github.com/m2mauth/m2mauth/m2mclient"
)

// e2eTimeout bounds each wait of the end-to-end test: a start-up, a token
// request, a call.
const e2eTimeout = 10 * time.Second

// TestDPoPWithM2MAuth runs the usage API, through run, against a real
// m2mauth on loopback, for an API that requires DPoP and for one that also
// requires m2mauth's DPoP nonce (RFC 9449 §8). A token m2mclient gets bound
// to its key (token_type DPoP, cnf.jkt) is accepted with DPoPTransport's
// proofs on the sender-constrained route and on ordinary ones, and refused
// as a Bearer token, with a proof by another key, a replayed proof, a proof
// for another method, URL or token (ath), without ath, too old, or altered
// after signing: 401 with the DPoP challenge (and the Bearer one where the
// route takes bearer tokens) carrying the algs and, on the scheme used,
// the error rs gives (RFC 9449 §7.1).
func TestDPoPWithM2MAuth(t *testing.T) {
	m := startM2MAuth(t)
	admin := m.adminToken(t)
	algs := strings.Join(dpop.DefaultAlgs, " ")

	for _, tc := range []struct {
		name     string
		host     string // of the API's identifier
		nonce    bool   // dpop_nonce on the API
		wantUseN int    // use_dpop_nonce answers from the token endpoint
	}{
		{"dpop required", "usage.e2e.test", false, 0},
		{"dpop required with server nonce", "usage-nonce.e2e.test", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audience := "https://" + tc.host
			metadataAttr := `https://` + tc.host + `/.well-known/oauth-protected-resource`
			m.call(t, admin, http.StatusCreated, "POST", "/admin/v1/apis", map[string]any{
				"identifier": audience, "name": tc.host, "signing_alg": "ES256",
				"dpop": "required", "dpop_nonce": tc.nonce,
				"scopes": []map[string]string{
					{"value": scopeReadMeters, "description": "read meters"},
					{"value": scopeCreateMeterTypes, "description": "create meter types"},
					{"value": scopeReadMeterTypes, "description": "read meter types"},
				},
			}, nil)
			var app struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			}
			m.call(t, admin, http.StatusCreated, "POST", "/admin/v1/applications", map[string]any{
				"name": "e2e " + tc.host, "client_secret": true,
				"grants": []map[string]any{{"audience": audience, "scopes": []string{scopeReadMeters, scopeCreateMeterTypes, scopeReadMeterTypes}}},
			}, &app)

			api := startUsageAPI(t, m.url, audience)
			export, meters := api+"/meters/export", api+"/meters"

			// One key, seen by m2mclient and by hand-made proofs.
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			key, err := m2mclient.NewDPoPKey(priv, nil)
			if err != nil {
				t.Fatal(err)
			}
			signer := newSigner(t, priv, nil)
			stale := newSigner(t, priv, func() time.Time { return time.Now().Add(-2 * time.Minute) })
			otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			other := newSigner(t, otherKey, nil)

			counter := &nonceCounter{base: http.DefaultTransport}
			ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
			defer cancel()
			src, err := m2mclient.Config{
				Issuer: m.url, ClientID: app.ClientID, Audience: audience,
				Scopes:     []string{scopeReadMeters, scopeCreateMeterTypes, scopeReadMeterTypes},
				DPoP:       key,
				HTTPClient: &http.Client{Timeout: e2eTimeout, Transport: counter},
			}.ClientSecret(ctx, app.ClientSecret)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := src.Token()
			if err != nil {
				t.Fatalf("DPoP token from m2mauth: %v", err)
			}
			if tok.TokenType != m2mclient.TokenTypeDPoP {
				t.Fatalf("token_type %q, want DPoP", tok.TokenType)
			}
			if jkt := tokenJKT(t, tok.AccessToken); jkt != key.Thumbprint() {
				t.Fatalf("cnf.jkt %q, want the key's thumbprint %q", jkt, key.Thumbprint())
			}
			if got := counter.count(); got != tc.wantUseN {
				t.Errorf("use_dpop_nonce answers from the token endpoint: %d, want %d", got, tc.wantUseN)
			}
			token := tok.AccessToken

			t.Run("accepted with DPoPTransport", func(t *testing.T) {
				c := &http.Client{Timeout: e2eTimeout, Transport: &m2mclient.DPoPTransport{Source: oauth2.StaticTokenSource(tok), Key: key}}
				for _, r := range []struct {
					method, url, body string
					want              int
				}{
					{"GET", export, "", http.StatusOK},
					{"GET", export, "", http.StatusOK}, // a fresh proof each time
					{"GET", meters, "", http.StatusOK},
					{"POST", api + "/meter-types", `{"name":"api_calls","unit":"requests"}`, http.StatusCreated},
				} {
					status, _, body := send(t, c, r.method, r.url, nil, r.body)
					if status != r.want {
						t.Fatalf("%s %s: %d %s, want %d", r.method, r.url, status, body, r.want)
					}
				}
				status, _, body := send(t, c, "GET", api+"/meter-types", nil, "")
				var list []MeterType
				if err := json.Unmarshal([]byte(body), &list); status != http.StatusOK || err != nil || len(list) != 1 || list[0].CreatedBy != app.ClientID {
					t.Fatalf("GET /meter-types: %d %s; want the meter type created by %s", status, body, app.ClientID)
				}
			})

			proof := func(s *dpop.Signer, method, u, accessToken string) string {
				t.Helper()
				p, err := s.Proof(method, u, accessToken, "")
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			withProof := func(p ...string) http.Header {
				return http.Header{"Authorization": {"DPoP " + token}, "Dpop": p}
			}
			bearer := http.Header{"Authorization": {"Bearer " + token}}
			// localhost is the same listener under another name: htu
			// compares the URL, not the socket.
			otherHost := strings.Replace(export, "127.0.0.1", "localhost", 1)

			for _, rc := range []struct {
				name     string
				url      string
				header   http.Header
				replay   bool   // send once first, expecting 200
				onBearer bool   // the error is on the Bearer challenge
				code     string // error
				reason   string // in error_description
			}{
				{name: "as Bearer on a route that takes bearer tokens", url: meters, header: bearer,
					onBearer: true, code: "invalid_token", reason: "must be sent with the DPoP scheme"},
				{name: "as Bearer on the sender-constrained route", url: export, header: bearer,
					code: "invalid_token", reason: "must be sent with the DPoP scheme"},
				{name: "DPoP scheme without a proof", url: export, header: withProof(),
					code: "invalid_dpop_proof", reason: "no DPoP header"},
				{name: "proof from another key", url: export, header: withProof(proof(other, "GET", export, token)),
					code: "invalid_token", reason: "does not match the token's cnf.jkt"},
				{name: "replayed proof", url: export, header: withProof(proof(signer, "GET", export, token)), replay: true,
					code: "invalid_dpop_proof", reason: "jti already used"},
				{name: "replayed proof on a route that takes bearer tokens", url: meters, header: withProof(proof(signer, "GET", meters, token)), replay: true,
					code: "invalid_dpop_proof", reason: "jti already used"},
				{name: "proof for another method", url: export, header: withProof(proof(signer, "POST", export, token)),
					code: "invalid_dpop_proof", reason: "htm does not match"},
				{name: "proof for another URL", url: export, header: withProof(proof(signer, "GET", meters, token)),
					code: "invalid_dpop_proof", reason: "htu does not match"},
				{name: "proof for another host", url: export, header: withProof(proof(signer, "GET", otherHost, token)),
					code: "invalid_dpop_proof", reason: "htu does not match"},
				{name: "proof without ath", url: export, header: withProof(proof(signer, "GET", export, "")),
					code: "invalid_dpop_proof", reason: "no ath"},
				{name: "proof with another token's ath", url: export, header: withProof(proof(signer, "GET", export, "another-token")),
					code: "invalid_dpop_proof", reason: "ath does not match"},
				{name: "proof too old", url: export, header: withProof(proof(stale, "GET", export, token)),
					code: "invalid_dpop_proof", reason: "iat is more than 1m0s old"},
				{name: "proof altered after signing", url: export, header: withProof(alterClaims(t, proof(signer, "GET", meters, token), "htu", export)),
					code: "invalid_dpop_proof", reason: "signature does not verify"},
				{name: "two proofs", url: export, header: withProof(proof(signer, "GET", export, token), proof(signer, "GET", export, token)),
					code: "invalid_dpop_proof", reason: "2 DPoP headers"},
			} {
				t.Run("refused: "+rc.name, func(t *testing.T) {
					if rc.replay {
						if status, _, body := send(t, http.DefaultClient, "GET", rc.url, rc.header, ""); status != http.StatusOK {
							t.Fatalf("first use: %d %s, want 200", status, body)
						}
					}
					status, h, body := send(t, http.DefaultClient, "GET", rc.url, rc.header, "")
					if status != http.StatusUnauthorized {
						t.Fatalf("%d %s, want 401", status, body)
					}
					var e struct {
						Error       string `json:"error"`
						Description string `json:"error_description"`
					}
					if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != rc.code || !strings.Contains(e.Description, rc.reason) {
						t.Errorf("body %s, want error %q mentioning %q", body, rc.code, rc.reason)
					}
					chs := challenges(h.Values("WWW-Authenticate"))
					var names []string
					for _, ch := range chs {
						names = append(names, ch.scheme)
					}
					wantNames := "DPoP"
					if rc.url != export {
						wantNames = "Bearer DPoP" // the sender-constrained route offers no Bearer challenge
					}
					if strings.Join(names, " ") != wantNames {
						t.Fatalf("challenges %q, want %s", h.Values("WWW-Authenticate"), wantNames)
					}
					for _, ch := range chs {
						p := ch.params
						if p["realm"] != audience || p["resource_metadata"] != metadataAttr {
							t.Errorf("%s challenge: realm %q, resource_metadata %q; want %q, %q", ch.scheme, p["realm"], p["resource_metadata"], audience, metadataAttr)
						}
						if ch.scheme == "DPoP" && p["algs"] != algs {
							t.Errorf("DPoP challenge: algs %q, want %q", p["algs"], algs)
						}
						if ch.scheme == "Bearer" && p["algs"] != "" {
							t.Errorf("Bearer challenge has algs %q", p["algs"])
						}
						wantCode := ""
						if (ch.scheme == "Bearer") == rc.onBearer {
							wantCode = rc.code
						}
						if p["error"] != wantCode || (wantCode != "" && p["error_description"] != e.Description) {
							t.Errorf("%s challenge: error %q, error_description %q; want error %q and the body's description", ch.scheme, p["error"], p["error_description"], wantCode)
						}
					}
					if n := h.Get("DPoP-Nonce"); n != "" {
						t.Errorf("DPoP-Nonce %q from an API without resource-server nonces", n)
					}
				})
			}

			t.Run("accepted again after the refusals", func(t *testing.T) {
				status, _, body := send(t, http.DefaultClient, "GET", export, withProof(proof(signer, "GET", export, token)), "")
				if status != http.StatusOK {
					t.Fatalf("hand-made fresh proof: %d %s", status, body)
				}
			})
		})
	}
}

// newSigner returns a proof signer of key with the clock now (nil:
// time.Now).
func newSigner(t *testing.T, key *ecdsa.PrivateKey, now func() time.Time) *dpop.Signer {
	t.Helper()
	s, err := dpop.NewSigner(key, rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// alterClaims sets claim to value in a proof's payload, keeping its
// header and signature: a proof tampered with on the way.
func alterClaims(t *testing.T, proof, claim string, value any) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c[claim] = value
	if b, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// tokenJKT returns the cnf.jkt of a JWT access token, unverified: rs
// verifies it.
func tokenJKT(t *testing.T, token string) string {
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
		CNF struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.CNF.JKT
}

// nonceCounter counts the token endpoint's use_dpop_nonce answers: 400
// with a DPoP-Nonce header (RFC 9449 §8).
type nonceCounter struct {
	base http.RoundTripper
	n    atomic.Int32
}

func (c *nonceCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusBadRequest && resp.Header.Get("DPoP-Nonce") != "" {
		c.n.Add(1)
	}
	return resp, err
}

func (c *nonceCounter) count() int { return int(c.n.Load()) }

// challenge is one WWW-Authenticate challenge: its scheme and its
// auth-params, names in lower case.
type challenge struct {
	scheme string
	params map[string]string
}

// challenges parses WWW-Authenticate fields of one challenge each, as rs
// writes them: a scheme, then comma-separated auth-params whose values are
// tokens or quoted-strings (RFC 9110 §11.6.1). What it cannot parse goes
// into the param "unparsed", which no check expects.
func challenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		name, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		ch := challenge{scheme: name, params: map[string]string{}}
		for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimLeft(rest, " ,") {
			key, after, ok := strings.Cut(rest, "=")
			if !ok || key == "" || strings.ContainsAny(key, " ,\"") {
				ch.params["unparsed"] = rest
				break
			}
			var val strings.Builder
			if strings.HasPrefix(after, `"`) {
				i, closed := 1, false
				for ; i < len(after); i++ {
					if after[i] == '\\' && i+1 < len(after) {
						i++
					} else if after[i] == '"' {
						closed = true
						break
					}
					val.WriteByte(after[i])
				}
				if !closed {
					ch.params["unparsed"] = rest
					break
				}
				rest = after[i+1:]
			} else {
				tokenVal, more, _ := strings.Cut(after, ",")
				val.WriteString(strings.TrimSpace(tokenVal))
				rest = more
			}
			ch.params[strings.ToLower(strings.TrimSpace(key))] = val.String()
		}
		out = append(out, ch)
	}
	return out
}

// send makes a request with header and body (empty for none) and returns
// the status, the response header and the body. It fails the test if no
// answer comes within e2eTimeout.
func send(t *testing.T, c *http.Client, method, u string, header http.Header, body string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// startUsageAPI runs the usage API through run on a loopback port, for
// audience, trusting issuer, with the extra flags, and returns its base
// URL: https with --tls-cert. It is stopped, as by SIGINT, when the test
// ends.
func startUsageAPI(t *testing.T, issuer, audience string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	noEnv := func(string) (string, bool) { return "", false }
	done := make(chan error, 1)
	go func() {
		args := append([]string{"--addr", "127.0.0.1:0", "--issuer", issuer, "--audience", audience}, extra...)
		done <- run(ctx, args, noEnv, io.Discard, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("usage-api: %v", err)
			}
		case <-time.After(e2eTimeout):
			t.Errorf("usage-api did not stop within %v", e2eTimeout)
		}
		if t.Failed() {
			t.Logf("usage-api log:\n%s", logs)
		}
	})

	// The listening address is in the start-up log line.
	addr := regexp.MustCompile(`msg="usage-api listening" addr=(\S+)`)
	scheme := "http://"
	if slices.Contains(extra, "--tls-cert") {
		scheme = "https://"
	}
	wait, stop := context.WithTimeout(context.Background(), e2eTimeout)
	defer stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := addr.FindStringSubmatch(logs.String()); m != nil {
			return scheme + m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("usage-api stopped at start-up: %v\n%s", err, logs)
		case <-wait.Done():
			t.Fatalf("usage-api did not start within %v:\n%s", e2eTimeout, logs)
		case <-tick.C:
		}
	}
}

// e2eServer is a real m2mauth server on a loopback port.
type e2eServer struct {
	url    string
	admin  authserver.Credentials
	client *http.Client // trusts its TLS certificate, if it serves TLS
}

// startM2MAuth starts m2mauth in process on plain HTTP, its log in
// M2MAUTH_TEST_LOG_DIR if set, and stops it when the test ends.
func startM2MAuth(t *testing.T) *e2eServer {
	t.Helper()
	return startM2MAuthWith(t, authserver.Config{}, http.DefaultClient)
}

// startM2MAuthWith is startM2MAuth with cfg (Addr and DataDir are filled
// in, and the issuer unless set: https with TLSCertFile), reached with
// client.
func startM2MAuthWith(t *testing.T, cfg authserver.Config, client *http.Client) *e2eServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out io.Writer = io.Discard
	if dir := os.Getenv("M2MAUTH_TEST_LOG_DIR"); dir != "" {
		// CI greps every server log of the run for client secrets.
		f, err := os.CreateTemp(dir, "usage-api-"+strings.ReplaceAll(t.Name(), "/", "_")+"-*.log")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		out = f
	}
	cfg.Addr, cfg.DataDir = ln.Addr().String(), t.TempDir()
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + cfg.Addr
		if cfg.TLSCertFile != "" {
			cfg.Issuer = "https://" + cfg.Addr
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := authserver.New(ctx, cfg, authserver.Deps{Log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("m2mauth: %v", err)
			}
		case <-time.After(e2eTimeout):
			t.Errorf("m2mauth did not stop within %v", e2eTimeout)
		}
		srv.Close()
	})
	m := &e2eServer{url: cfg.Issuer, client: client}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, authserver.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m.admin); err != nil {
		t.Fatal(err)
	}
	return m
}

// adminToken gets a management API token with the bootstrap credentials.
func (m *e2eServer) adminToken(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	src, err := m2mclient.Config{Issuer: m.url, ClientID: m.admin.ClientID, Audience: m.admin.Audience, HTTPClient: m.client}.ClientSecret(ctx, m.admin.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	return tok.AccessToken
}

// call makes a management API request with a JSON body and decodes the
// answer into out (nil to skip); the status must be want.
func (m *e2eServer) call(t *testing.T, admin string, want int, method, path string, body, out any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	status, _, b := send(t, m.client, method, m.url+path, http.Header{"Authorization": {"Bearer " + admin}}, string(raw))
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			t.Fatal(err)
		}
	}
}
