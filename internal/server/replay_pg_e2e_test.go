package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// pgReplicas starts two servers on one PostgreSQL database, sharing the
// master key, the bootstrap credentials and the issuer identifier (the
// address a load balancer would answer on, so that one assertion's aud
// fits both). Each testEnv's url is its own loopback address.
func pgReplicas(t *testing.T, issuer string) (a, b *testEnv) {
	t.Helper()
	pg := pgtest.Start(t)
	dbURL, masterKey := pg.NewDatabase(t), randomMasterKey(t)
	onPG := func(c *Config, _ *Deps) {
		// Many refusals of one client_id from one address: the limiter
		// would answer 429 before the method runs.
		c.DatabaseURL, c.MasterKey, c.Issuer, c.AuthMaxFailures = dbURL, masterKey, issuer, 100
	}
	a = newTestEnv(t, onPG)
	a.url = "http://" + a.srv.cfg.Addr
	dir := t.TempDir()
	creds, err := os.ReadFile(filepath.Join(a.dataDir, CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CredentialsFile), creds, 0o600); err != nil {
		t.Fatal(err)
	}
	b = newTestEnv(t, onPG, withDataDir(dir))
	b.url = "http://" + b.srv.cfg.Addr
	return a, b
}

// postAssertion posts a client_credentials request authenticated by
// assertion to the replica at base; safe in any goroutine (no t).
func postAssertion(base, assertion string) (int, string, error) {
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"audience":              {"https://api.example.com"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	resp, err := http.Post(base+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestReplayAcrossPostgresReplicas: a client assertion's jti is used once
// across replicas (RFC 7523 §3, item 7): the assertion replica A accepted
// is refused by replica B with invalid_client, and the other way round;
// and of 16 concurrent presentations of one assertion, spread over both
// replicas, exactly one gets a token.
func TestReplayAcrossPostgresReplicas(t *testing.T) {
	const issuer = "https://auth.cluster.test"
	a, b := pgReplicas(t, issuer)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientID, _ := pkjwtApp(a, key, "k1")
	sign := func() string {
		now := time.Now()
		return assertion(t, jose.ES256, key, "k1", map[string]any{
			"iss": clientID, "sub": clientID, "aud": issuer,
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
		})
	}
	refused := func(status int, body string) bool {
		var e struct {
			Error string `json:"error"`
		}
		return status == http.StatusUnauthorized && json.Unmarshal([]byte(body), &e) == nil && e.Error == "invalid_client"
	}

	for _, order := range [][2]*testEnv{{a, b}, {b, a}} {
		first, second := order[0], order[1]
		name := "A then B"
		if first == b {
			name = "B then A"
		}
		t.Run(name, func(t *testing.T) {
			x := sign()
			if status, body, err := postAssertion(first.url, x); err != nil || status != http.StatusOK {
				t.Fatalf("first replica: %d %s %v", status, body, err)
			}
			if status, body, err := postAssertion(second.url, x); err != nil || !refused(status, body) {
				t.Fatalf("second replica: %d %s %v, want 401 invalid_client", status, body, err)
			}
			if status, body, err := postAssertion(first.url, x); err != nil || !refused(status, body) {
				t.Fatalf("first replica again: %d %s %v, want 401 invalid_client", status, body, err)
			}
		})
	}

	t.Run("16 concurrent presentations on both replicas", func(t *testing.T) {
		const n = 16
		x := sign()
		type result struct {
			status int
			body   string
			err    error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			base := []*testEnv{a, b}[i%2].url
			wg.Go(func() {
				<-start
				status, body, err := postAssertion(base, x)
				results[i] = result{status, body, err}
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, r := range results {
			switch {
			case r.err != nil:
				t.Fatalf("request %d: %v", i, r.err)
			case r.status == http.StatusOK:
				ok++
			case !refused(r.status, r.body):
				t.Errorf("request %d: %d %s, want 200 or 401 invalid_client", i, r.status, r.body)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent presentations of one assertion got a token, want exactly 1", ok, n)
		}
	})
}
