package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/pgtest"
	"github.com/m2mauth/m2mauth/internal/server"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // "" for no error, else a substring of it
	}{
		{"data dir", []string{"--data-dir", "d", "--clients-file", "c"}, ""},
		{"no store", []string{"--clients-file", "c"}, "exactly one of"},
		{"two stores", []string{"--data-dir", "d", "--database-url", "postgres://x/y", "--clients-file", "c"}, "exactly one of"},
		{"no apps", []string{"--data-dir", "d", "--apps", "0", "--clients", "0"}, "--apps 0"},
		{"too many apps", []string{"--data-dir", "d", "--apps", "10000001", "--clients-file", "c"}, "--apps"},
		{"more clients than apps", []string{"--data-dir", "d", "--apps", "5", "--clients", "6", "--clients-file", "c"}, "--clients 6"},
		{"clients without a file", []string{"--data-dir", "d", "--apps", "5", "--clients", "5"}, "--clients-file"},
		{"no clients, no file", []string{"--data-dir", "d", "--apps", "5", "--clients", "0"}, ""},
		{"batch too big", []string{"--data-dir", "d", "--batch", "10001", "--clients-file", "c"}, "--batch"},
		{"unbounded", []string{"--data-dir", "d", "--timeout", "0s", "--clients-file", "c"}, "--timeout"},
		{"unknown alg", []string{"--data-dir", "d", "--alg", "HS256", "--clients-file", "c"}, "--alg"},
		{"postgres without a master key", []string{"--database-url", "postgres://x/y", "--clients-file", "c"}, "master key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("M2MAUTH_MASTER_KEY", "")
			t.Setenv("M2MAUTH_DATABASE_URL", "")
			_, err := parseFlags(tc.args)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// seeded is one line of the clients file.
type seeded struct{ clientID, secret, audience string }

func readClients(t *testing.T, path string) []seeded {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("clients file mode %v, want 0600", fi.Mode().Perm())
	}
	var out []seeded
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), " ")
		if len(fields) != 3 {
			t.Fatalf("clients file line %q: want client_id, secret and audience", sc.Text())
		}
		out = append(out, seeded{fields[0], fields[1], fields[2]})
	}
	return out
}

// startServer starts the real server on cfg's data directory or
// database, on loopback, until the test ends, and returns its base URL.
func startServer(t *testing.T, cfg server.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	cfg.Issuer = "http://" + cfg.Addr
	cfg.ShutdownDelay = time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	return cfg.Issuer
}

// askToken asks base for a token with c's credentials (RFC 6749 §4.4,
// client_secret_basic) and returns the status and the access token.
func askToken(t *testing.T, base string, c seeded) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {c.audience}, "scope": {Scope}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode == http.StatusOK && body.Scope != Scope {
		t.Errorf("scope %q, want %q", body.Scope, Scope)
	}
	return resp.StatusCode, body.AccessToken
}

// checkSeeded asks the server at base for a token with the first, a
// middle and the last credential of the clients file, and a wrong secret.
func checkSeeded(t *testing.T, base string, clients []seeded) {
	t.Helper()
	for _, c := range []seeded{clients[0], clients[len(clients)/2], clients[len(clients)-1]} {
		if code, tok := askToken(t, base, c); code != http.StatusOK || tok == "" {
			t.Errorf("client %s: status %d, token %q; want 200 and a token", c.clientID, code, tok)
		}
	}
	wrong := clients[0]
	wrong.secret = clients[1].secret
	if code, _ := askToken(t, base, wrong); code != http.StatusUnauthorized {
		t.Errorf("another client's secret: status %d, want 401", code)
	}
}

// TestSeededClientGetsToken seeds 50 applications into an SQLite data
// directory and gets tokens with their credentials from a real server
// started on it, which also bootstraps its administrator there.
func TestSeededClientGetsToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	clientsFile := filepath.Join(t.TempDir(), "clients.txt")
	args := []string{"--data-dir", dir, "--apps", "50", "--clients", "40", "--clients-file", clientsFile, "--batch", "16"}
	t.Setenv("M2MAUTH_MASTER_KEY", "")
	var out strings.Builder
	if err := run(t.Context(), args, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "seeded 50 applications") {
		t.Errorf("output %q", out.String())
	}
	clients := readClients(t, clientsFile)
	if len(clients) != 40 {
		t.Fatalf("%d credentials in the clients file, want 40", len(clients))
	}

	t.Run("refuses a data dir that is not empty", func(t *testing.T) {
		err := run(t.Context(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("error %v, want the data dir refused", err)
		}
	})

	base := startServer(t, server.Config{DataDir: dir})
	checkSeeded(t, base, clients)

	t.Run("refuses a data dir in use", func(t *testing.T) {
		err := run(t.Context(), append(args, "--append"), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("error %v, want the running server's data dir refused", err)
		}
	})
}

// TestSeededClientGetsTokenPostgres is TestSeededClientGetsToken on
// PostgreSQL, with a master key given, as replicas require.
func TestSeededClientGetsTokenPostgres(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	key := make([]byte, masterkey.Len)
	rand.Read(key)
	t.Setenv("M2MAUTH_MASTER_KEY", masterkey.Encode(key))
	clientsFile := filepath.Join(t.TempDir(), "clients.txt")
	args := []string{"--database-url", dsn, "--apps", "50", "--clients", "50", "--clients-file", clientsFile, "--batch", "20"}
	if err := run(t.Context(), args, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), args, io.Discard); err == nil || !strings.Contains(err.Error(), "already holds applications") {
		t.Fatalf("second seed: error %v, want the database refused", err)
	}
	clients := readClients(t, clientsFile)
	if len(clients) != 50 {
		t.Fatalf("%d credentials in the clients file, want 50", len(clients))
	}
	base := startServer(t, server.Config{DataDir: t.TempDir(), DatabaseURL: dsn, MasterKey: masterkey.Encode(key)})
	checkSeeded(t, base, clients)
}
