package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/pgtest"
	"github.com/m2mauth/m2mauth/internal/server"
)

// clusterIssuer is the issuer every replica shares: the address a load
// balancer would answer on. The tests call each replica directly.
const clusterIssuer = "https://auth.cluster.test"

// cacheBound is the documented bound for a change made on one replica to
// reach the others (server.DefaultCacheTTL); changes normally arrive at
// once through LISTEN/NOTIFY.
const cacheBound = server.DefaultCacheTTL

// node is one `m2mauth serve` process.
type node struct {
	name, url, dataDir string
}

// startNodes builds m2mauth and starts n replicas on one PostgreSQL
// database, all at once, sharing the issuer and master key.
func startNodes(t *testing.T, dsn string, n int, extra ...string) []node {
	t.Helper()
	bin := t.TempDir()
	build(t, bin, "m2mauth", ".")
	key := make([]byte, 32)
	rand.Read(key)
	logs := logFile(t)
	nodes := make([]node, n)
	for i := range nodes {
		addr := freeAddr(t)
		nodes[i] = node{name: string(rune('A' + i)), url: "http://" + addr, dataDir: t.TempDir()}
		cmd := exec.Command(filepath.Join(bin, "m2mauth"), append([]string{"serve", "--addr", addr, "--issuer", clusterIssuer,
			"--data-dir", nodes[i].dataDir, "--log-level", "debug"}, extra...)...)
		cmd.Env = append(os.Environ(), "M2MAUTH_DATABASE_URL="+dsn, "M2MAUTH_MASTER_KEY="+base64.StdEncoding.EncodeToString(key))
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
	}
	for _, nd := range nodes {
		waitReady(t, nd.url+"/readyz")
	}
	return nodes
}

// call is one HTTP request to a node; form bodies for OAuth endpoints,
// JSON for the management API.
func call(t *testing.T, method, u, bearer string, form url.Values, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	req, _ := http.NewRequest(method, u, nil)
	switch {
	case form != nil:
		rd = strings.NewReader(form.Encode())
		req, _ = http.NewRequest(method, u, rd)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case body != nil:
		b, _ := json.Marshal(body)
		req, _ = http.NewRequest(method, u, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func tokenForm(id, secret, audience string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {audience}}
}

// getToken asks nd for a token and fails the test unless it gets one.
func getToken(t *testing.T, nd node, id, secret, audience string) string {
	t.Helper()
	status, _, body := call(t, "POST", nd.url+"/oauth/token", "", tokenForm(id, secret, audience), nil)
	if status != 200 {
		t.Fatalf("node %s token: %d %s", nd.name, status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tr)
	return tr.AccessToken
}

// mgmt makes a management API request to nd and decodes a 2xx answer.
func mgmt(t *testing.T, nd node, token string, want int, method, path string, body, out any) {
	t.Helper()
	status, _, b := call(t, method, nd.url+path, token, nil, body)
	if status != want {
		t.Fatalf("node %s %s %s: %d, want %d: %s", nd.name, method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// within polls cond every 20 ms until it holds or bound passes, and returns
// how long it took; it fails the test past the bound.
func within(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// adminCredentials finds the one admin-credentials.json the replicas wrote.
func adminCredentials(t *testing.T, nodes []node) server.Credentials {
	t.Helper()
	var found []server.Credentials
	for _, nd := range nodes {
		b, err := os.ReadFile(filepath.Join(nd.dataDir, server.CredentialsFile))
		if err != nil {
			continue
		}
		var c server.Credentials
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		found = append(found, c)
	}
	if len(found) != 1 {
		t.Fatalf("%d replicas wrote admin credentials, want exactly 1", len(found))
	}
	return found[0]
}

// TestCluster starts three replicas together on one PostgreSQL database and
// checks that they agree: bootstrap happens once; a token from A verifies
// with B's JWKS and introspects active on C; an application disabled
// through A is refused by B and C within the bound; a secret added on B
// works on C; a forced key rotation happens once and every replica signs
// with the new key.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three servers; skipped with -short")
	}
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	nodes := startNodes(t, dsn, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	creds := adminCredentials(t, nodes)
	adm := getToken(t, a, creds.ClientID, creds.ClientSecret, creds.Audience)

	const aud = "https://usage.cluster.test/"
	mgmt(t, a, adm, 201, "POST", "/admin/v1/apis", map[string]any{"identifier": aud, "scopes": []map[string]string{{"value": "read:meters"}}}, nil)
	var app admin.CreatedApplication
	mgmt(t, a, adm, 201, "POST", "/admin/v1/applications", map[string]any{"name": "svc", "grants": []map[string]any{{"audience": aud}}}, &app)
	// Warm every replica's cache with the application.
	for _, nd := range nodes {
		getToken(t, nd, app.ClientID, app.ClientSecret, aud)
	}

	t.Run("a token from A verifies with B's JWKS and introspects active on C", func(t *testing.T) {
		tok := getToken(t, a, app.ClientID, app.ClientSecret, aud)
		_, _, jwksBody := call(t, "GET", b.url+"/.well-known/jwks.json", "", nil, nil)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(jwksBody, &set); err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			t.Fatalf("B's JWKS lacks A's kid")
		}
		if _, err := jws.Verify(keys[0]); err != nil {
			t.Fatal(err)
		}
		f := url.Values{"token": {tok}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
		status, _, body := call(t, "POST", c.url+"/oauth/introspect", "", f, nil)
		var ir struct {
			Active bool   `json:"active"`
			Iss    string `json:"iss"`
		}
		json.Unmarshal(body, &ir)
		if status != 200 || !ir.Active || ir.Iss != clusterIssuer {
			t.Fatalf("C introspects %d %s", status, body)
		}
	})

	t.Run("a secret added on B works on C", func(t *testing.T) {
		var sec admin.CreatedSecret
		mgmt(t, b, adm, 201, "POST", "/admin/v1/applications/"+app.ClientID+"/secrets", map[string]any{}, &sec)
		took := within(t, cacheBound, "the new secret on C", func() bool {
			status, _, _ := call(t, "POST", c.url+"/oauth/token", "", tokenForm(app.ClientID, sec.ClientSecret, aud), nil)
			return status == 200
		})
		t.Logf("a secret added on B worked on C after %v", took)
	})

	t.Run("an application disabled through A is refused by B and C", func(t *testing.T) {
		mgmt(t, a, adm, 200, "PATCH", "/admin/v1/applications/"+app.ClientID, map[string]any{"disabled": true}, nil)
		var wg sync.WaitGroup
		for _, nd := range []node{b, c} {
			wg.Go(func() {
				took := within(t, cacheBound, "node "+nd.name+" refusing the disabled application", func() bool {
					status, _, _ := call(t, "POST", nd.url+"/oauth/token", "", tokenForm(app.ClientID, app.ClientSecret, aud), nil)
					return status == 401
				})
				t.Logf("node %s refused the disabled application after %v", nd.name, took)
			})
		}
		wg.Wait()
		mgmt(t, c, adm, 200, "PATCH", "/admin/v1/applications/"+app.ClientID, map[string]any{"disabled": false}, nil)
	})

	t.Run("a forced key rotation happens once", func(t *testing.T) {
		var before admin.List[admin.KeyResource]
		mgmt(t, a, adm, 200, "GET", "/admin/v1/keys", nil, &before)
		var next string
		for _, k := range before.Items {
			if k.State == "next" && k.Alg == "ES256" {
				next = k.KID
			}
		}
		if next == "" {
			t.Fatalf("no next ES256 key: %+v", before.Items)
		}
		mgmt(t, a, adm, 200, "POST", "/admin/v1/keys/rotate", map[string]any{"alg": "ES256", "force": true}, nil)
		for _, nd := range nodes {
			var after admin.List[admin.KeyResource]
			mgmt(t, nd, adm, 200, "GET", "/admin/v1/keys", nil, &after)
			states := map[string]int{}
			for _, k := range after.Items {
				if k.Alg == "ES256" {
					states[string(k.State)]++
					if k.KID == next && k.State != "active" {
						t.Fatalf("node %s: the old next key is %s", nd.name, k.State)
					}
				}
			}
			if states["active"] != 1 || states["next"] != 1 || states["retired"] != 1 || len(after.Items) != len(before.Items)+1 {
				t.Fatalf("node %s after one rotation: %v, %d keys (before %d)", nd.name, states, len(after.Items), len(before.Items))
			}
			// Every replica signs with the new key within the bound.
			within(t, cacheBound+time.Second, "node "+nd.name+" signing with the new key", func() bool {
				tok := getToken(t, nd, app.ClientID, app.ClientSecret, aud)
				h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
				return strings.Contains(string(h), next)
			})
		}
	})
}

// TestDatabaseOutage stops PostgreSQL under a steady token load: no
// request gets a 500, the application already in memory keeps getting
// tokens, the management API answers 503 with Retry-After and /readyz 503;
// failed authentications during the outage are kept and reach the audit log
// once PostgreSQL is back, and everything works again by itself.
func TestDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops PostgreSQL; skipped with -short")
	}
	pg := pgtest.Start(t)
	pg.SkipUnlessControllable(t)
	dsn := pg.NewDatabase(t)
	nodes := startNodes(t, dsn, 1)
	nd := nodes[0]
	creds := adminCredentials(t, nodes)
	adm := getToken(t, nd, creds.ClientID, creds.ClientSecret, creds.Audience)
	const aud = "https://usage.outage.test/"
	mgmt(t, nd, adm, 201, "POST", "/admin/v1/apis", map[string]any{"identifier": aud, "scopes": []map[string]string{{"value": "read:meters"}}}, nil)
	var app, cold admin.CreatedApplication
	mgmt(t, nd, adm, 201, "POST", "/admin/v1/applications", map[string]any{"name": "warm", "grants": []map[string]any{{"audience": aud}}}, &app)
	mgmt(t, nd, adm, 201, "POST", "/admin/v1/applications", map[string]any{"name": "cold", "grants": []map[string]any{{"audience": aud}}}, &cold)
	getToken(t, nd, app.ClientID, app.ClientSecret, aud) // now in memory

	// Steady load: one client, back to back, until stopped (at most 2 min).
	var mu sync.Mutex
	statuses := map[int]int{}
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		client := &http.Client{Timeout: 10 * time.Second}
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.PostForm(nd.url+"/oauth/token", tokenForm(app.ClientID, app.ClientSecret, aud))
			code := 0
			if err == nil {
				code = resp.StatusCode
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			statuses[code]++
			mu.Unlock()
		}
	}()
	count := func(code int) int { mu.Lock(); defer mu.Unlock(); return statuses[code] }
	time.Sleep(300 * time.Millisecond)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	okBefore := count(200)
	within(t, 10*time.Second, "tokens during the outage", func() bool { return count(200) > okBefore+50 })

	status, h, body := call(t, "GET", nd.url+"/admin/v1/apis", adm, nil, nil)
	if status != 503 || h.Get("Retry-After") == "" || !strings.Contains(string(body), "unavailable") {
		t.Fatalf("management API during the outage: %d %v %s", status, h, body)
	}
	status, _, body = call(t, "POST", nd.url+"/admin/v1/applications", adm, nil, map[string]any{"name": "during outage"})
	if status != 503 {
		t.Fatalf("a write during the outage: %d %s", status, body)
	}
	if status, h, _ := call(t, "GET", nd.url+"/readyz", "", nil, nil); status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("/readyz during the outage: %d", status)
	}
	status, h, body = call(t, "POST", nd.url+"/oauth/token", "", tokenForm(cold.ClientID, cold.ClientSecret, aud), nil)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("an application not in memory during the outage: %d %s", status, body)
	}
	const failures = 3
	swap := byte('A') // one character of the secret, changed: a wrong secret of the right shape
	if app.ClientSecret[30] == swap {
		swap = 'B'
	}
	wrong := app.ClientSecret[:30] + string(swap) + app.ClientSecret[31:]
	for i := 0; i < failures; i++ {
		if status, _, _ := call(t, "POST", nd.url+"/oauth/token", "", tokenForm(app.ClientID, wrong, aud), nil); status != 401 {
			t.Fatalf("a wrong secret during the outage: %d", status)
		}
	}

	if err := pg.StartAgain(); err != nil {
		t.Fatal(err)
	}
	within(t, 30*time.Second, "/readyz after PostgreSQL is back", func() bool {
		status, _, _ := call(t, "GET", nd.url+"/readyz", "", nil, nil)
		return status == 200
	})
	close(stop)
	<-loadDone
	mu.Lock()
	if statuses[500] > 0 || statuses[0] > 0 {
		t.Errorf("statuses under load: %v (no 500s, no dropped connections allowed)", statuses)
	}
	t.Logf("statuses under load across the outage: %v", statuses)
	mu.Unlock()

	mgmt(t, nd, adm, 201, "POST", "/admin/v1/applications", map[string]any{"name": "after outage"}, nil)
	getToken(t, nd, cold.ClientID, cold.ClientSecret, aud)
	within(t, 15*time.Second, "the outage's failed authentications in the audit log", func() bool {
		var log admin.List[admin.AuditEventResource]
		mgmt(t, nd, adm, 200, "GET", "/admin/v1/audit?action=client.authentication_failed&target="+app.ClientID, nil, &log)
		counted := 0 // failures are aggregated: one event per client_id, address and reason per interval
		for _, ev := range log.Items {
			var d struct{ Count int }
			json.Unmarshal(ev.Details, &d)
			counted += d.Count
		}
		return counted == failures
	})
}
