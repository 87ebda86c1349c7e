package main

import (
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
)

// keyOf returns the only key of alg in state st.
func keyOf(t *testing.T, l admin.List[admin.KeyResource], alg string, st authz.KeyState) admin.KeyResource {
	t.Helper()
	var found []admin.KeyResource
	for _, k := range l.Items {
		if k.Alg == alg && k.State == string(st) {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s keys in state %s, want 1: %+v", len(found), alg, st, l.Items)
	}
	return found[0]
}

func TestKeyCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.run(t, "api", "create", "--identifier", "https://eddsa.example.com", "--signing-alg", "EdDSA")

	before := runJSON[admin.List[admin.KeyResource]](t, ts, "key", "list")
	if len(before.Items) != 4 {
		t.Fatalf("%d keys, want ES256 and EdDSA, active and next: %+v", len(before.Items), before.Items)
	}
	esActive := keyOf(t, before, authz.ES256, authz.KeyActive)
	esNext := keyOf(t, before, authz.ES256, authz.KeyNext)
	edActive := keyOf(t, before, authz.EdDSA, authz.KeyActive)

	table := ts.run(t, "key", "list")
	mustContain(t, table, "KID", "REMOVE AFTER", esActive.KID, esNext.KID, "active", "next")

	t.Run("refused while the next key is younger than the JWKS max-age", func(t *testing.T) {
		ts.fail(t, "409 Conflict: nothing rotated: the next ES256 key was published", "key", "rotate", "--alg", "ES256")
		if got := keyOf(t, runJSON[admin.List[admin.KeyResource]](t, ts, "key", "list"), authz.ES256, authz.KeyActive); got.KID != esActive.KID {
			t.Errorf("a refused rotation rotated: active %s", got.KID)
		}
	})

	t.Run("rotate one algorithm", func(t *testing.T) {
		after := runJSON[admin.List[admin.KeyResource]](t, ts, "key", "rotate", "--alg", "ES256", "--force")
		if got := keyOf(t, after, authz.ES256, authz.KeyActive); got.KID != esNext.KID {
			t.Errorf("ES256 active %s, want the former next %s", got.KID, esNext.KID)
		}
		if got := keyOf(t, after, authz.ES256, authz.KeyRetired); got.KID != esActive.KID || got.RemoveAfter == nil {
			t.Errorf("ES256 retired %+v, want %s with a removal time", got, esActive.KID)
		}
		if got := keyOf(t, after, authz.EdDSA, authz.KeyActive); got.KID != edActive.KID {
			t.Errorf("EdDSA rotated too: active %s", got.KID)
		}
	})

	t.Run("rotate every algorithm, as a table", func(t *testing.T) {
		out := ts.run(t, "key", "rotate", "--force")
		mustContain(t, out, "retired", esNext.KID, edActive.KID)
		after := runJSON[admin.List[admin.KeyResource]](t, ts, "key", "list")
		if got := keyOf(t, after, authz.EdDSA, authz.KeyRetired); got.KID != edActive.KID {
			t.Errorf("EdDSA retired %s, want %s", got.KID, edActive.KID)
		}
	})

	t.Run("errors", func(t *testing.T) {
		ts.fail(t, "--alg \"HS256\" must be one of", "key", "rotate", "--alg", "HS256")
		ts.fail(t, "404 Not Found: signing keys for RS256 not found", "key", "rotate", "--alg", "RS256")
	})

	t.Run("no private material", func(t *testing.T) {
		out := ts.run(t, "key", "list", "-o", "json")
		for _, member := range []string{`"private"`, `"d"`} {
			if strings.Contains(out, member) {
				t.Errorf("key list shows %s", member)
			}
		}
	})
}

// TestServeKeyFlags: serve refuses a bad rotation period or a previous
// master key without a new one, before it opens the data directory.
func TestServeKeyFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"period not a duration", []string{"--key-rotation-period", "monthly"}, `key-rotation-period "monthly" must be a Go duration of at least 1h0m0s`},
		{"period zero", []string{"--key-rotation-period", "0s"}, "must be a Go duration of at least 1h0m0s"},
		{"period under an hour", []string{"--key-rotation-period", "59m"}, "key-rotation-period 59m0s must be at least 1h0m0s"},
		{"previous key alone", []string{"--previous-master-key-file", "old.key"}, "a previous master key needs the new one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := runCLI(t, "", append([]string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve %v: error %v, want one containing %q", tc.args, err, tc.want)
			}
		})
	}
}
