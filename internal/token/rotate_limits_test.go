package token

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// jwksLen is the number of keys the JWKS publishes.
func jwksLen(t testing.TB, k *Keys) int {
	t.Helper()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	return len(set.Keys)
}

// TestRotateRefusesYoungNextKey: while the next key of an algorithm to
// rotate is younger than MinNextAge, RotateWith rotates nothing, not even
// the algorithms that could rotate, and says until when.
func TestRotateRefusesYoungNextKey(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	f.clock.Add(time.Hour)
	f.ensure(t, authz.EdDSA) // its next key is new
	opts := RotateOptions{MinNextAge: JWKSMaxAge * time.Second}
	es := oneKID(t, f.keys, authz.ES256, authz.KeyActive)
	ed := oneKID(t, f.keys, authz.EdDSA, authz.KeyActive)

	rs, err := f.keys.RotateWith(t.Context(), time.Hour, opts)
	var refused *RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, authz.ErrConflict) || len(rs) != 0 {
		t.Fatalf("RotateWith = %+v, %v; want a RefusedError wrapping ErrConflict", rs, err)
	}
	if refused.Alg != authz.EdDSA || refused.Reason != RefusedNextTooYoung || !refused.Until.Equal(f.clock.Now().Add(JWKSMaxAge*time.Second)) {
		t.Errorf("refused %+v", refused)
	}
	if oneKID(t, f.keys, authz.ES256, authz.KeyActive) != es || oneKID(t, f.keys, authz.EdDSA, authz.KeyActive) != ed {
		t.Fatal("a refused rotation rotated")
	}
	if rs, err := f.keys.RotateWith(t.Context(), time.Hour, opts, authz.ES256); err != nil || len(rs) != 1 {
		t.Fatalf("ES256 alone, its next key an hour old: %+v, %v", rs, err)
	}
	if _, err := f.keys.RotateWith(t.Context(), time.Hour, opts, authz.ES256); !errors.As(err, &refused) {
		t.Fatalf("ES256 twice in a row: %v, want refused", err)
	}

	f.clock.Add(JWKSMaxAge*time.Second - time.Second)
	if _, err := f.keys.RotateWith(t.Context(), time.Hour, opts, authz.EdDSA); !errors.As(err, &refused) {
		t.Fatalf("a second before the max-age: %v, want refused", err)
	}
	f.clock.Add(time.Second)
	if rs, err := f.keys.RotateWith(t.Context(), time.Hour, opts, authz.EdDSA); err != nil || len(rs) != 1 {
		t.Fatalf("at the max-age: %+v, %v; want a rotation", rs, err)
	}
	if rs, err := f.keys.Rotate(t.Context(), time.Hour, authz.EdDSA); err != nil || len(rs) != 1 {
		t.Fatalf("Rotate (forced) right after: %+v, %v; want a rotation", rs, err)
	}
}

// TestRotateRetiredCap: without EvictEarly a rotation that would retire
// more than MaxRetiredKeys keys with tokens still valid is refused, and
// allowed once the oldest has expired; with it (force) the oldest are
// deleted early, and the JWKS stays bounded however many rotations.
func TestRotateRetiredCap(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	ctx := t.Context()
	const lifetime = 24 * time.Hour
	firstActive := oneKID(t, f.keys, authz.ES256, authz.KeyActive)
	oldTok, _ := f.issue(t, authz.ES256, time.Hour)
	for i := range MaxRetiredKeys {
		f.clock.Add(time.Minute)
		if _, err := f.keys.RotateWith(ctx, lifetime, RotateOptions{}); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
	}
	if n := len(byState(f.keys, authz.ES256)[authz.KeyRetired]); n != MaxRetiredKeys {
		t.Fatalf("%d retired keys, want %d", n, MaxRetiredKeys)
	}
	f.clock.Add(time.Minute)
	_, err := f.keys.RotateWith(ctx, lifetime, RotateOptions{})
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Reason != RefusedRetiredFull {
		t.Fatalf("rotation over the cap: %v, want refused for too many retired keys", err)
	}
	if _, err := f.issuer.Verify(oldTok); err != nil {
		t.Fatalf("the refused rotation broke a token of the oldest retired key: %v", err)
	}

	// Once the oldest retired key's tokens have expired it may go.
	f.clock.Set(refused.Until)
	rs, err := f.keys.RotateWith(ctx, lifetime, RotateOptions{})
	if err != nil || len(rs) != 1 || len(rs[0].Evicted) != 1 || rs[0].Evicted[0] != firstActive || len(rs[0].EarlyEvicted) != 0 {
		t.Fatalf("rotation after the oldest expired: %+v, %v; want %s evicted on time", rs, err, firstActive)
	}

	// Forced: 50 more rotations within the lifetime keep the bound, and
	// delete keys early.
	var early []string
	for range 50 {
		f.clock.Add(time.Second)
		rs, err := f.keys.Rotate(ctx, lifetime, authz.ES256)
		if err != nil || len(rs) != 1 {
			t.Fatalf("forced rotation: %+v, %v", rs, err)
		}
		early = append(early, rs[0].EarlyEvicted...)
	}
	got := byState(f.keys, authz.ES256)
	if len(got[authz.KeyRetired]) != MaxRetiredKeys || len(got[authz.KeyActive]) != 1 || len(got[authz.KeyNext]) != 1 {
		t.Errorf("after 50 forced rotations: %d retired, %d active, %d next", len(got[authz.KeyRetired]), len(got[authz.KeyActive]), len(got[authz.KeyNext]))
	}
	if n := jwksLen(t, f.keys); n != MaxRetiredKeys+2 {
		t.Errorf("JWKS of %d keys, want %d", n, MaxRetiredKeys+2)
	}
	if len(early) != 50 {
		t.Errorf("%d keys evicted early, want 50", len(early))
	}
	stored, err := f.store.ListKeys(ctx)
	if err != nil || len(stored) != MaxRetiredKeys+2 {
		t.Errorf("%d keys stored (%v), want %d", len(stored), err, MaxRetiredKeys+2)
	}
}

// TestRotateIfDueKeepsTheCap: the schedule, which never refuses, evicts
// over the cap too (after rotations by hand filled it).
func TestRotateIfDueKeepsTheCap(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	ctx := t.Context()
	for range MaxRetiredKeys {
		if _, err := f.keys.Rotate(ctx, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Add(time.Hour)
	rs, err := f.keys.RotateIfDue(ctx, time.Hour, 24*time.Hour)
	if err != nil || len(rs) != 1 || len(rs[0].EarlyEvicted) != 1 {
		t.Fatalf("RotateIfDue at the cap = %+v, %v; want one rotation evicting one key", rs, err)
	}
	if n := len(byState(f.keys, authz.ES256)[authz.KeyRetired]); n != MaxRetiredKeys {
		t.Errorf("%d retired keys, want %d", n, MaxRetiredKeys)
	}
}
