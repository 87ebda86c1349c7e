// Package nodeinterop tests m2mauth's DPoP (RFC 9449) against panva's
// oauth4webapi, a Node.js OAuth 2.0 library that shares no code with it:
// oauth4webapi as the client gets DPoP-bound tokens from m2mauth's token
// endpoint, with client_secret_basic and with private_key_jwt under the
// FAPI 2.0 profile, answering m2mauth's use_dpop_nonce, and calls an API
// protected by the rs package with them; and oauth4webapi's
// validateJwtAccessToken, as a resource server, validates a DPoP token
// m2mauth issued and the proofs m2mclient's DPoPTransport sends with it.
//
// The node scripts are client.mjs and resource-server.mjs; their one
// dependency is pinned in package-lock.json and installed with
// `npm ci --prefix tools/node-interop`. Without it the tests skip, or
// fail when CI=true. The module is separate so that none of this is a
// dependency of the server.
package nodeinterop

import (
	"bufio"
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
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/server"
	"github.com/m2mauth/m2mauth/m2mclient"
	"github.com/m2mauth/m2mauth/rs"
)

const (
	// dpopAPI requires DPoP and a server nonce in the proof; fapiAPI is
	// under the FAPI 2.0 profile.
	dpopAPI = "https://meters.node-interop.test"
	fapiAPI = "https://payments.node-interop.test"
	scope   = "read:meters"
)

// nodeTimeout bounds each node process.
const nodeTimeout = 60 * time.Second

// TestOAuth4WebAPIClient: oauth4webapi gets a DPoP-bound token (token_type
// DPoP, cnf.jkt its key's thumbprint) from m2mauth, after one
// use_dpop_nonce answer where the API requires nonces, and an API
// protected by rs accepts it with oauth4webapi's proofs, on a route that
// takes only sender-constrained tokens and on one that also requires rs's
// own DPoP nonce.
func TestOAuth4WebAPIClient(t *testing.T) {
	requireNode(t)
	m := startServer(t)
	adm := m.adminToken(t)
	m.createAPI(t, adm, map[string]any{"identifier": dpopAPI, "name": "meters", "dpop": "required", "dpop_nonce": true})
	m.createAPI(t, adm, map[string]any{"identifier": fapiAPI, "name": "payments", "profile": "fapi2"})
	dpopRS := startResourceServer(t, m, dpopAPI)
	fapiRS := startResourceServer(t, m, fapiAPI)

	secretApp := m.createApplication(t, adm, dpopAPI, true)
	keyApp := m.createApplication(t, adm, fapiAPI, false)
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m.mustCall(t, http.StatusCreated, "POST", "/admin/v1/applications/"+keyApp.ClientID+"/credentials", adm, map[string]any{
		"type": "jwks", "jwks": map[string]any{"keys": []map[string]string{ecJWK(clientKey, "node-es256", false)}},
	}, nil)

	for _, tc := range []struct {
		name          string
		job           map[string]any
		rs            string
		tokenRetries  int // use_dpop_nonce answers from m2mauth
		nonceRetries  int // use_dpop_nonce answers from rs, on /nonce/meters
		wantTokenType string
	}{
		{
			name: "client_secret_basic, DPoP ES256, server nonce",
			job: map[string]any{
				"client_id": secretApp.ClientID, "auth": "client_secret_basic", "client_secret": secretApp.ClientSecret,
				"audience": dpopAPI, "dpop_alg": "ES256",
			},
			rs: dpopRS, tokenRetries: 1, nonceRetries: 1,
		},
		{
			name: "client_secret_basic, DPoP PS256, server nonce",
			job: map[string]any{
				"client_id": secretApp.ClientID, "auth": "client_secret_basic", "client_secret": secretApp.ClientSecret,
				"audience": dpopAPI, "dpop_alg": "PS256",
			},
			rs: dpopRS, tokenRetries: 1, nonceRetries: 1,
		},
		{
			name: "private_key_jwt ES256, DPoP ES256, FAPI 2.0 profile",
			job: map[string]any{
				"client_id": keyApp.ClientID, "auth": "private_key_jwt", "private_jwk": ecJWK(clientKey, "node-es256", true),
				"audience": fapiAPI, "dpop_alg": "ES256",
			},
			rs: fapiRS, tokenRetries: 0, nonceRetries: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := tc.job
			job["issuer"] = m.url
			job["scope"] = scope
			job["resources"] = []string{tc.rs + "/meters", tc.rs + "/nonce/meters"}
			var out struct {
				TokenType         string `json:"token_type"`
				Scope             string `json:"scope"`
				ExpiresIn         int    `json:"expires_in"`
				JKT               string `json:"jkt"`
				TokenNonceRetries int    `json:"token_nonce_retries"`
				TokenStatus       int    `json:"token_status"`
				TokenError        string `json:"token_error"`
				Resources         []struct {
					URL          string          `json:"url"`
					Status       int             `json:"status"`
					Body         resourceAnswer  `json:"body"`
					Challenges   json.RawMessage `json:"challenges"`
					NonceRetries int             `json:"nonce_retries"`
				} `json:"resources"`
			}
			if err := json.Unmarshal(runNode(t, m, "client.mjs", job), &out); err != nil {
				t.Fatal(err)
			}
			if out.TokenError != "" {
				t.Fatalf("token endpoint answered %d %s", out.TokenStatus, out.TokenError)
			}
			if out.TokenType != "dpop" || out.Scope != scope || out.ExpiresIn <= 0 || out.JKT == "" {
				t.Fatalf("token response seen by oauth4webapi: token_type %q scope %q expires_in %d, jkt %q; want a DPoP token (token_type is lower-cased by oauth4webapi)",
					out.TokenType, out.Scope, out.ExpiresIn, out.JKT)
			}
			if out.TokenNonceRetries != tc.tokenRetries {
				t.Errorf("use_dpop_nonce answers from the token endpoint: %d, want %d", out.TokenNonceRetries, tc.tokenRetries)
			}
			if len(out.Resources) != 2 {
				t.Fatalf("%d resource answers, want 2", len(out.Resources))
			}
			for i, r := range out.Resources {
				if r.Status != http.StatusOK {
					t.Fatalf("GET %s: %d, challenges %s", r.URL, r.Status, r.Challenges)
				}
				if r.Body.ClientID != job["client_id"] || r.Body.JKT != out.JKT {
					t.Fatalf("GET %s: rs saw client_id %q and cnf.jkt %q, want %q and oauth4webapi's thumbprint %q",
						r.URL, r.Body.ClientID, r.Body.JKT, job["client_id"], out.JKT)
				}
				if want := []int{0, tc.nonceRetries}[i]; r.NonceRetries != want {
					t.Errorf("GET %s: use_dpop_nonce answers from rs: %d, want %d", r.URL, r.NonceRetries, want)
				}
			}
		})
	}
}

// TestOAuth4WebAPIClientRefused: the refusals oauth4webapi sees from
// m2mauth's token endpoint: no DPoP proof where the API requires DPoP, and
// a client secret where the API is under the FAPI 2.0 profile.
func TestOAuth4WebAPIClientRefused(t *testing.T) {
	requireNode(t)
	m := startServer(t)
	adm := m.adminToken(t)
	m.createAPI(t, adm, map[string]any{"identifier": dpopAPI, "name": "meters", "dpop": "required", "dpop_nonce": true})
	m.createAPI(t, adm, map[string]any{"identifier": fapiAPI, "name": "payments", "profile": "fapi2"})
	dpopApp := m.createApplication(t, adm, dpopAPI, true)
	fapiApp := m.createApplication(t, adm, fapiAPI, true)
	for _, tc := range []struct {
		name       string
		app        application
		audience   string
		dpopAlg    any
		wantStatus int
		wantError  string
	}{
		{"no DPoP proof, the API requires DPoP", dpopApp, dpopAPI, nil, http.StatusBadRequest, "invalid_dpop_proof"},
		{"client_secret_basic under the FAPI 2.0 profile", fapiApp, fapiAPI, "ES256", http.StatusUnauthorized, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out struct {
				TokenStatus int    `json:"token_status"`
				TokenError  string `json:"token_error"`
			}
			job := map[string]any{
				"issuer": m.url, "client_id": tc.app.ClientID, "auth": "client_secret_basic", "client_secret": tc.app.ClientSecret,
				"audience": tc.audience, "scope": scope, "dpop_alg": tc.dpopAlg, "resources": []string{},
			}
			if err := json.Unmarshal(runNode(t, m, "client.mjs", job), &out); err != nil {
				t.Fatal(err)
			}
			if out.TokenStatus != tc.wantStatus || out.TokenError != tc.wantError {
				t.Fatalf("token endpoint answered %d %q, want %d %q", out.TokenStatus, out.TokenError, tc.wantStatus, tc.wantError)
			}
		})
	}
}

// TestOAuth4WebAPIResourceServer: a DPoP-bound token m2mauth issued to
// m2mclient validates in oauth4webapi's validateJwtAccessToken with the
// proofs DPoPTransport makes, which refuses it as a bearer token, with a
// proof by another key, with a proof for another URL or method, and with a
// proof whose ath is another token's.
func TestOAuth4WebAPIResourceServer(t *testing.T) {
	requireNode(t)
	m := startServer(t)
	adm := m.adminToken(t)
	m.createAPI(t, adm, map[string]any{"identifier": dpopAPI, "name": "meters", "dpop": "required", "dpop_nonce": true})
	app := m.createApplication(t, adm, dpopAPI, true)

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	key, err := m2mclient.NewDPoPKey(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := m2mclient.Config{Issuer: m.url, ClientID: app.ClientID, Audience: dpopAPI, Scopes: []string{scope}, DPoP: key, HTTPClient: m.client}.ClientSecret(ctx, app.ClientSecret)
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

	nodeRS := startNode(t, m, "resource-server.mjs", map[string]any{"issuer": m.url, "audience": dpopAPI})
	meters := nodeRS + "/meters"

	t.Run("DPoPTransport", func(t *testing.T) {
		c := &http.Client{Transport: &m2mclient.DPoPTransport{Source: src, Key: key}}
		for range 2 { // a fresh proof each time
			status, body := get(t, c, meters, nil)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", meters, status, body)
			}
			var got struct {
				Claims struct {
					ClientID string `json:"client_id"`
					Scope    string `json:"scope"`
					Iss      string `json:"iss"`
					CNF      struct {
						JKT string `json:"jkt"`
					} `json:"cnf"`
				} `json:"claims"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Claims.ClientID != app.ClientID || got.Claims.Scope != scope || got.Claims.Iss != m.url || got.Claims.CNF.JKT != key.Thumbprint() {
				t.Fatalf("claims validated by oauth4webapi: %s; want client_id %s, cnf.jkt %s", body, app.ClientID, key.Thumbprint())
			}
		}
	})

	other, err := m2mclient.NewDPoPKey(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	proof := func(k *m2mclient.DPoPKey, method, u, accessToken string) string {
		p, err := k.Proof(method, u, accessToken)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   string // in oauth4webapi's message
	}{
		{"as a bearer token", http.Header{"Authorization": {"Bearer " + tok.AccessToken}}, "DPoP"},
		{"a proof by another key", http.Header{"Authorization": {"DPoP " + tok.AccessToken}, "Dpop": {proof(other, "GET", meters, tok.AccessToken)}}, "confirmation mismatch"},
		{"a proof for another URL", http.Header{"Authorization": {"DPoP " + tok.AccessToken}, "Dpop": {proof(key, "GET", nodeRS+"/other", tok.AccessToken)}}, "htu mismatch"},
		{"a proof for another method", http.Header{"Authorization": {"DPoP " + tok.AccessToken}, "Dpop": {proof(key, "POST", meters, tok.AccessToken)}}, "htm mismatch"},
		{"a proof for another token", http.Header{"Authorization": {"DPoP " + tok.AccessToken}, "Dpop": {proof(key, "GET", meters, "another-token")}}, "ath mismatch"},
		{"a proof without ath", http.Header{"Authorization": {"DPoP " + tok.AccessToken}, "Dpop": {proof(key, "GET", meters, "")}}, "ath"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			status, body := get(t, http.DefaultClient, meters, tc.header)
			if status != http.StatusUnauthorized || !bytes.Contains(body, []byte(tc.want)) {
				t.Fatalf("%d %s, want 401 mentioning %q", status, body, tc.want)
			}
		})
	}
}

// requireNode skips the test, or fails it when CI=true, if node or the
// npm packages are missing.
func requireNode(t *testing.T) {
	t.Helper()
	_, errNode := exec.LookPath("node")
	_, errPkg := os.Stat(filepath.Join("node_modules", "oauth4webapi", "package.json"))
	if errNode == nil && errPkg == nil {
		return
	}
	msg := "node is not on PATH"
	if errNode == nil {
		msg = "oauth4webapi is not installed: run `npm ci --prefix tools/node-interop`"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the Node interop tests may not skip)")
	}
	t.Skip(msg)
}

// runNode runs script with job as JSON on its stdin and returns its stdout.
func runNode(t *testing.T, m *m2mauth, script string, job any) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	cmd := nodeCommand(t, ctx, m, script, job)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// startNode starts script, a server, with job on its stdin, and returns
// the URL it prints on its first line of output. It is killed when the
// test ends.
func startNode(t *testing.T, m *m2mauth, script string, job any) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := nodeCommand(t, ctx, m, script, job)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // killed
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		var ready struct {
			URL string `json:"url"`
		}
		if err := json.Unmarshal([]byte(s), &ready); err != nil || ready.URL == "" {
			cancel()
			_ = cmd.Wait()
			t.Fatalf("node %s did not start: %q\n%s", script, s, stderr.Bytes())
		}
		return ready.URL
	case <-time.After(nodeTimeout):
		t.Fatalf("node %s did not start within %v\n%s", script, nodeTimeout, stderr.Bytes())
		return ""
	}
}

func nodeCommand(t *testing.T, ctx context.Context, m *m2mauth, script string, job any) *exec.Cmd {
	t.Helper()
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+m.caFile)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// resourceAnswer is what the rs-protected test API answers.
type resourceAnswer struct {
	ClientID string `json:"client_id"`
	JKT      string `json:"jkt"`
}

// startResourceServer starts a loopback API for audience protected by rs,
// taking only sender-constrained tokens: GET /meters, and GET
// /nonce/meters, where the proof must also carry rs's DPoP nonce (RFC 9449
// §9). It answers the token's client_id and cnf.jkt.
func startResourceServer(t *testing.T, m *m2mauth, audience string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := rs.Config{Issuer: m.url, Audience: audience, Policy: rs.SenderConstrained, HTTPClient: m.client}
	v, err := rs.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DPoP.Nonces = dpop.NewNonces([]byte(rand.Text()), 0, nil)
	withNonce, err := rs.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := rs.ClaimsFromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resourceAnswer{ClientID: c.ClientID, JKT: c.Confirmation.JKT})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /meters", v.Middleware(rs.RequireScope(scope)(answer)))
	mux.Handle("GET /nonce/meters", withNonce.Middleware(rs.RequireScope(scope)(answer)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// m2mauth is a real m2mauth server on a loopback port, serving TLS with
// a certificate of a test CA: FAPI 2.0 requires TLS (§5.2.1), and the
// node scripts trust the CA through NODE_EXTRA_CA_CERTS.
type m2mauth struct {
	url    string
	admin  server.Credentials
	caFile string       // the test CA, PEM
	client *http.Client // trusts the test CA
}

func startServer(t *testing.T) *m2mauth {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out io.Writer = io.Discard
	if dir := os.Getenv("M2MAUTH_TEST_LOG_DIR"); dir != "" {
		// CI greps every server log of the run for client secrets.
		f, err := os.CreateTemp(dir, "node-interop-"+strings.ReplaceAll(t.Name(), "/", "_")+"-*.log")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		out = f
	}
	dir := t.TempDir()
	m := &m2mauth{caFile: filepath.Join(dir, "ca.crt")}
	pool := writeTestPKI(t, m.caFile, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	m.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	cfg := server.Config{Addr: ln.Addr().String(), DataDir: t.TempDir(), TLSCertFile: filepath.Join(dir, "tls.crt"), TLSKeyFile: filepath.Join(dir, "tls.key")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m.url = cfg.Issuer // https://127.0.0.1:port
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Deps{Log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
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
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, server.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m.admin); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeTestPKI writes a new CA's certificate to caFile and a server
// certificate for 127.0.0.1 it issued, with its key, to certFile and
// keyFile, all PEM, and returns a pool of the CA.
func writeTestPKI(t *testing.T, caFile, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "m2mauth node-interop test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for path, block := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

// adminToken gets a management API token with the bootstrap credentials.
func (m *m2mauth) adminToken(t *testing.T) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {m.admin.Audience}}
	req, _ := http.NewRequest(http.MethodPost, m.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(m.admin.ClientID), url.QueryEscape(m.admin.ClientSecret))
	status, body := do(t, m.client, req)
	if status != http.StatusOK {
		t.Fatalf("admin token: %d %s", status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken
}

// createAPI registers an API with the scope read:meters, its access
// tokens signed ES256; api holds its identifier, name and policy.
func (m *m2mauth) createAPI(t *testing.T, adm string, api map[string]any) {
	t.Helper()
	api["signing_alg"] = "ES256"
	api["scopes"] = []map[string]string{{"value": scope, "description": "read meters"}}
	m.mustCall(t, http.StatusCreated, "POST", "/admin/v1/apis", adm, api, nil)
}

type application struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// createApplication creates an application granted read:meters on
// audience, with a client secret or without.
func (m *m2mauth) createApplication(t *testing.T, adm, audience string, secret bool) application {
	t.Helper()
	var app application
	m.mustCall(t, http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name": "node " + audience, "client_secret": secret,
		"grants": []map[string]any{{"audience": audience, "scopes": []string{scope}}},
	}, &app)
	if secret != (app.ClientSecret != "") {
		t.Fatalf("application created with client_secret %v: secret returned %v", secret, app.ClientSecret != "")
	}
	return app
}

// mustCall makes a management API request with a JSON body and decodes
// the answer into out (nil to skip); the status must be want.
func (m *m2mauth) mustCall(t *testing.T, want int, method, path, bearer string, body, out any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, m.url+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	status, b := do(t, m.client, req)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// ecJWK is the JWK (RFC 7518 §6.2) of an ES256 key: its public part, or
// with d the private key for oauth4webapi's PrivateKeyJwt.
func ecJWK(k *ecdsa.PrivateKey, kid string, private bool) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	raw, err := k.PublicKey.Bytes() // 0x04 || x || y (SEC 1 §2.3.3)
	if err != nil {
		panic(err)
	}
	jwk := map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:]), "kid": kid, "alg": "ES256", "use": "sig"}
	if private {
		d, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		jwk["d"] = b64(d)
	}
	return jwk
}

func get(t *testing.T, c *http.Client, u string, h http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
