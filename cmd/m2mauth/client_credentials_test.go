package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/server"
)

// TestCredentialsDiscovery: without --credentials or --data-dir, the CLI
// reads ./m2mauth-data's credentials file, else the one serve recorded for
// this user; --data-dir and M2MAUTH_DATA_DIR win over the record. It sets
// the environment and the working directory, so it cannot run in
// parallel.
func TestCredentialsDiscovery(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Chdir(t.TempDir())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	dataDir := t.TempDir()
	creds := filepath.Join(dataDir, server.CredentialsFile)
	write := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		body := `{"issuer":"http://127.0.0.1:1","client_id":"id","client_secret":"s"}`
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	try := func(args ...string) error {
		t.Helper()
		// No server listens on port 1: an error about reaching it means the
		// credentials file was found.
		_, _, err := runCLI(t, "", append([]string{"api", "list"}, args...)...)
		return err
	}
	found := func(err error) bool { return err != nil && strings.Contains(err.Error(), "cannot reach the server") }

	// Nothing recorded, nothing here: the error states the rule.
	err := try()
	for _, want := range []string{"m2mauth-data/admin-credentials.json does not exist", "--data-dir", "records in " + credentialsPathRecord()} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no file: error %v, want one containing %q", err, want)
		}
	}

	// serve records nothing while the data dir has no credentials file.
	recordCredentialsPath(dataDir, quiet)
	if _, err := os.Stat(credentialsPathRecord()); err == nil {
		t.Error("recorded a credentials file that does not exist")
	}
	write(creds)
	recordCredentialsPath(dataDir, quiet)
	if got := recordedCredentialsPath(); got != creds {
		t.Fatalf("recorded %q, want %q", got, creds)
	}
	if err := try(); !found(err) {
		t.Errorf("from another directory: %v, want the recorded file used", err)
	}

	// --data-dir and M2MAUTH_DATA_DIR are obeyed, not second-guessed.
	other := t.TempDir()
	if err := try("--data-dir", other); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("--data-dir: %v, want the file in it, missing", err)
	}
	t.Setenv("M2MAUTH_DATA_DIR", other)
	if err := try(); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("M2MAUTH_DATA_DIR: %v, want the file in it, missing", err)
	}
	os.Unsetenv("M2MAUTH_DATA_DIR")

	// ./m2mauth-data wins over the record.
	write(filepath.Join("m2mauth-data", server.CredentialsFile))
	o := &clientOptions{dataDir: server.DefaultDataDir}
	if got := o.credentialsPath(); got != filepath.Join(server.DefaultDataDir, server.CredentialsFile) {
		t.Errorf("with ./m2mauth-data: %s", got)
	}
	os.RemoveAll("m2mauth-data")

	// A recorded file that is gone: the error says so.
	os.Remove(creds)
	if err := try(); err == nil || !strings.Contains(err.Error(), "is gone: "+creds) {
		t.Errorf("recorded file removed: %v", err)
	}
}
