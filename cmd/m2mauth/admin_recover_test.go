package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver, to remove administrators by hand

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/server"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
)

// serveCmd runs `m2mauth serve` in-process on addr and dataDir until the
// returned stop is called (or the test ends), once it answers /readyz.
func serveCmd(t *testing.T, addr, dataDir string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	root := newRoot()
	root.SetArgs([]string{"serve", "--addr", addr, "--data-dir", dataDir, "--log-level", "error"})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			stopped = true
			cancel()
			t.Fatalf("serve stopped before it was ready: %v\n%s", err, out.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve on %s was not ready in 30 s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// removeAdministrators deletes, with SQL on the database file, every
// application granted the management API, with its secrets and grants.
func removeAdministrators(t *testing.T, dataDir string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "m2mauth.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`DELETE FROM applications WHERE client_id IN (
		SELECT g.client_id FROM grants g JOIN apis a ON a.id = g.api_id WHERE a.identifier = ?)`, authz.ManagementAudience)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("removed %d administrators, want the bootstrap one", n)
	}
}

// readCredentials checks that path is mode 0600 and returns what it holds.
func readCredentials(t *testing.T, path string) server.Credentials {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c server.Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if c.ClientID == "" || !strings.HasPrefix(c.ClientSecret, "m2ms_") || c.Audience != authz.ManagementAudience {
		t.Errorf("%s holds %+v", path, c)
	}
	return c
}

// noTempFiles fails the test if dir holds a temporary file left by an
// atomic replacement.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}

// TestRecover: with every administrator gone, `admin recover` on the
// stopped server's data directory creates one whose credentials work once
// the server is back, audited as administrator.recover.
func TestRecover(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	issuer := "http://" + addr
	dataDir := t.TempDir()
	stop := serveCmd(t, addr, dataDir)
	stop()

	// Keep the bootstrap administrator's credentials to show they are dead.
	bootstrapCreds := filepath.Join(t.TempDir(), "bootstrap.json")
	b, err := os.ReadFile(filepath.Join(dataDir, server.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bootstrapCreds, b, 0o600); err != nil {
		t.Fatal(err)
	}
	removeAdministrators(t, dataDir)

	outDir := t.TempDir()
	out := filepath.Join(outDir, "recovered.json")
	stdout, _, err := runCLI(t, "", "admin", "recover", "--data-dir", dataDir, "--addr", addr, "--out", out, "--log-level", "error")
	if err != nil {
		t.Fatalf("admin recover: %v", err)
	}
	first := readCredentials(t, out)
	if first.Issuer != issuer || first.TokenEndpoint != issuer+"/oauth/token" {
		t.Errorf("credentials name issuer %q and token endpoint %q, want %s", first.Issuer, first.TokenEndpoint, issuer)
	}
	mustContain(t, stdout, out, first.ClientID, "mode 0600")
	if strings.Contains(stdout, "m2ms_") {
		t.Errorf("admin recover printed a secret:\n%s", stdout)
	}
	noTempFiles(t, outDir)

	var second server.Credentials
	t.Run("master key", func(t *testing.T) {
		keyPath := filepath.Join(dataDir, server.MasterKeyFile)
		moved := filepath.Join(t.TempDir(), "master.key")
		if err := os.Rename(keyPath, moved); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Rename(moved, keyPath); err != nil {
				t.Fatal(err)
			}
		}()
		_, _, err := runCLI(t, "", "admin", "recover", "--data-dir", dataDir, "--addr", addr, "--log-level", "error")
		if !errors.Is(err, server.ErrNoMasterKey) || !strings.Contains(err.Error(), keyPath) {
			t.Errorf("without a master key: error %v, want one naming %s", err, keyPath)
		}
		if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("admin recover created a master key (%v)", err)
		}

		// By default it replaces <data-dir>/admin-credentials.json.
		if _, _, err := runCLI(t, "", "admin", "recover", "--data-dir", dataDir, "--addr", addr, "--master-key-file", moved, "--log-level", "error"); err != nil {
			t.Fatalf("admin recover --master-key-file: %v", err)
		}
		second = readCredentials(t, filepath.Join(dataDir, server.CredentialsFile))
		if second.ClientID == first.ClientID || second.Issuer != issuer {
			t.Errorf("second recovery wrote %+v", second)
		}
		noTempFiles(t, dataDir)
	})

	serveCmd(t, addr, dataDir)
	if _, _, err := runCLI(t, "", "app", "list", "--credentials", bootstrapCreds); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the removed administrator's credentials: error %v, want 401", err)
	}
	listed, errOut, err := runCLI(t, "", "app", "list", "--credentials", out)
	if err != nil {
		t.Fatalf("app list with the recovered credentials: %v\n%s", err, errOut)
	}
	mustContain(t, listed, first.ClientID, second.ClientID)
	if _, _, err := runCLI(t, "", "api", "list", "--data-dir", dataDir); err != nil {
		t.Errorf("api list with the replaced credentials file: %v", err)
	}

	audit, _, err := runCLI(t, "", "audit", "--action", "administrator.recover", "--credentials", out, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var events admin.List[admin.AuditEventResource]
	if err := json.Unmarshal([]byte(audit), &events); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range events.Items {
		if e.Action == "administrator.recover" && e.Actor == "" {
			targets = append(targets, e.Target)
		}
	}
	slices.Sort(targets)
	want := []string{first.ClientID, second.ClientID}
	slices.Sort(want)
	if !slices.Equal(targets, want) {
		t.Errorf("administrator.recover events about %v, want %v: %+v", targets, want, events.Items)
	}
}

// TestRecoverNeverBootstrapped: admin recover refuses a data directory
// `m2mauth serve` never ran on, and creates nothing there.
func TestRecoverNeverBootstrapped(t *testing.T) {
	t.Parallel()
	entries := func(t *testing.T, dir string) []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	t.Run("empty data dir", func(t *testing.T) {
		dir := t.TempDir()
		_, _, err := runCLI(t, "", "admin", "recover", "--data-dir", dir)
		if !errors.Is(err, server.ErrNotBootstrapped) || !strings.Contains(err.Error(), "never bootstrapped") {
			t.Errorf("error %v, want the never-bootstrapped one", err)
		}
		if names := entries(t, dir); len(names) != 0 {
			t.Errorf("admin recover created %v", names)
		}
	})
	t.Run("no data dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "missing")
		_, _, err := runCLI(t, "", "admin", "recover", "--data-dir", dir)
		if err == nil || !strings.Contains(err.Error(), "data dir "+dir+" does not exist") {
			t.Errorf("error %v, want one saying the data dir does not exist", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("admin recover created the data dir (%v)", err)
		}
	})
	t.Run("database without the management API", func(t *testing.T) {
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "m2mauth.db")
		st, err := sqlite.Open(t.Context(), dbPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		if _, _, err := masterkey.LoadOrCreateFile(filepath.Join(dir, server.MasterKeyFile), bytes.NewReader(make([]byte, masterkey.Len))); err != nil {
			t.Fatal(err)
		}
		_, _, err = runCLI(t, "", "admin", "recover", "--data-dir", dir)
		if !errors.Is(err, server.ErrNotBootstrapped) {
			t.Errorf("error %v, want the never-bootstrapped one", err)
		}
		// Refused before the pepper, which loading would have created.
		db, err := sql.Open("sqlite", "file:"+dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var settings int
		if err := db.QueryRow(`SELECT count(*) FROM settings`).Scan(&settings); err != nil || settings != 0 {
			t.Errorf("%d settings written (%v), want none", settings, err)
		}
		if names := entries(t, dir); slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".tmp") }) {
			t.Errorf("admin recover left %v", names)
		}
	})
}
