package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOpsDataDir: an existing data dir and database left too open are
// tightened to 0700 and 0600; a second server on the data dir is refused
// with the first one's PID and address, and the lock is free again once
// the first closes.
func TestOpsDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	// A database file from an older version, 0644.
	if err := os.WriteFile(filepath.Join(dir, DatabaseFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, DatabaseFile), 0o644)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(addr string) (*Server, error) {
		cfg := Config{Addr: addr, DataDir: dir}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return New(context.Background(), cfg, Deps{Log: log})
	}
	first, err := open("127.0.0.1:18080")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{
		"": 0o700, DatabaseFile: 0o600, MasterKeyFile: 0o600, CredentialsFile: 0o600, LockFile: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%q has mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}

	second, err := open("127.0.0.1:18081")
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second server opened the data dir")
	}
	for _, want := range []string{"in use by another m2mauth server", "pid " + strconv.Itoa(os.Getpid()), "127.0.0.1:18080", "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := open("127.0.0.1:18082")
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}

// TestOpsLockFile reads what a lock file names.
func TestOpsLockFile(t *testing.T) {
	for _, tc := range []struct{ text, pid, addr string }{
		{"pid 42\naddr 127.0.0.1:8080\n", "42", "127.0.0.1:8080"},
		{"", "unknown", "unknown"},
		{"pid 7\n", "7", "unknown"},
	} {
		pid, addr := parseLockFile(tc.text)
		if pid != tc.pid || addr != tc.addr {
			t.Errorf("parseLockFile(%q) = %s, %s; want %s, %s", tc.text, pid, addr, tc.pid, tc.addr)
		}
	}
}
