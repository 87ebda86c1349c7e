package token

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// kidOf returns the kid in a compact JWS's header.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	h, _, _ := jwtSegments(t, tok)
	kid, _ := h["kid"].(string)
	return kid
}

// TestRotate walks a key through next, active and retired: the next key
// is published before it signs; after a rotation it signs, a new next key
// is published, and a token the old key signed still verifies until it
// expires; the old key stays published until RemoveAfter, when Prune
// deletes it.
func TestRotate(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	ctx := t.Context()
	oldActive := oneKID(t, f.keys, authz.ES256, authz.KeyActive)
	next := oneKID(t, f.keys, authz.ES256, authz.KeyNext)
	if !strings.Contains(string(f.keys.JWKS()), next) {
		t.Fatal("the next key is not published before it signs")
	}
	const lifetime = time.Hour
	oldTok, _ := f.issue(t, authz.ES256, lifetime)
	if kidOf(t, oldTok) != oldActive {
		t.Fatalf("token signed by %s, want the active key %s", kidOf(t, oldTok), oldActive)
	}

	f.clock.Add(10 * time.Minute)
	rotatedAt := f.clock.Now()
	const maxLifetime = 2 * time.Hour
	rs, err := f.keys.Rotate(ctx, maxLifetime)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Alg != authz.ES256 || !slices.Equal(rs[0].Retired, []string{oldActive}) || rs[0].Activated != next || rs[0].Next == "" {
		t.Fatalf("Rotate = %+v", rs)
	}
	newNext := rs[0].Next
	if got := oneKID(t, f.keys, authz.ES256, authz.KeyActive); got != next {
		t.Errorf("active key %s, want the former next %s", got, next)
	}
	if got := oneKID(t, f.keys, authz.ES256, authz.KeyNext); got != newNext {
		t.Errorf("next key %s, want %s", got, newNext)
	}
	if got := oneKID(t, f.keys, authz.ES256, authz.KeyRetired); got != oldActive {
		t.Errorf("retired key %s, want %s", got, oldActive)
	}
	wantRemove := rotatedAt.Add(maxLifetime + RemovalMargin)
	for _, m := range f.keys.List() {
		switch m.KID {
		case oldActive:
			if !m.RetiredAt.Equal(rotatedAt) || !m.RemoveAfter.Equal(wantRemove) {
				t.Errorf("retired key: RetiredAt %v RemoveAfter %v; want %v and %v", m.RetiredAt, m.RemoveAfter, rotatedAt, wantRemove)
			}
		case next:
			if !m.ActivatedAt.Equal(rotatedAt) {
				t.Errorf("activated key: ActivatedAt %v, want %v", m.ActivatedAt, rotatedAt)
			}
		}
	}
	if got := storedByState(t, f.store, authz.ES256); len(got[authz.KeyActive]) != 1 || len(got[authz.KeyNext]) != 1 || len(got[authz.KeyRetired]) != 1 {
		t.Errorf("stored keys by state: %v", got)
	}

	newTok, _ := f.issue(t, authz.ES256, lifetime)
	if kidOf(t, newTok) != next {
		t.Errorf("after rotation, token signed by %s, want %s", kidOf(t, newTok), next)
	}
	for _, kid := range []string{oldActive, next, newNext} {
		if !strings.Contains(string(f.keys.JWKS()), kid) {
			t.Errorf("key %s is not in the JWKS", kid)
		}
	}
	if _, err := f.issuer.Verify(oldTok); err != nil {
		t.Errorf("token of the retired key, before it expires: %v", err)
	}

	// Just before the old token expires it still verifies; then it is
	// expired, but its key stays published until RemoveAfter.
	f.clock.Add(lifetime - 10*time.Minute - time.Second)
	if _, err := f.issuer.Verify(oldTok); err != nil {
		t.Errorf("token of the retired key, a second before it expires: %v", err)
	}
	f.clock.Add(time.Second)
	if _, err := f.issuer.Verify(oldTok); !errors.Is(err, ErrExpired) {
		t.Errorf("expired token: %v, want ErrExpired", err)
	}
	f.clock.Set(wantRemove.Add(-time.Microsecond))
	if deleted, err := f.keys.Prune(ctx); err != nil || len(deleted) != 0 {
		t.Errorf("Prune before RemoveAfter = %v, %v; want nothing", deleted, err)
	}
	if !strings.Contains(string(f.keys.JWKS()), oldActive) {
		t.Error("the retired key left the JWKS before RemoveAfter")
	}
	f.clock.Set(wantRemove)
	deleted, err := f.keys.Prune(ctx)
	if err != nil || !slices.Equal(deleted, []string{oldActive}) {
		t.Fatalf("Prune at RemoveAfter = %v, %v; want [%s]", deleted, err, oldActive)
	}
	if strings.Contains(string(f.keys.JWKS()), oldActive) {
		t.Error("the pruned key is still in the JWKS")
	}
	if got := storedByState(t, f.store, authz.ES256); len(got[authz.KeyRetired]) != 0 {
		t.Errorf("pruned key still stored: %v", got)
	}
	if _, err := f.issuer.Verify(oldTok); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("token of the pruned key: %v, want ErrUnknownKey", err)
	}
	if tok, _ := f.issue(t, authz.ES256, lifetime); kidOf(t, tok) != next {
		t.Errorf("after pruning, token signed by %s, want %s", kidOf(t, tok), next)
	} else if _, err := f.issuer.Verify(tok); err != nil {
		t.Errorf("token of the active key after pruning: %v", err)
	}
}

func TestRotateAlgorithms(t *testing.T) {
	tests := []struct {
		name    string
		algs    []string
		want    []string // algorithms rotated
		wantErr error
	}{
		{"every algorithm in use", nil, []string{authz.ES256, authz.EdDSA}, nil},
		{"one algorithm", []string{authz.EdDSA}, []string{authz.EdDSA}, nil},
		{"algorithm not in use", []string{authz.RS256}, nil, authz.ErrNotFound},
		{"unsupported algorithm", []string{"HS256"}, nil, authz.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.ensure(t, authz.ES256, authz.EdDSA)
			before := map[string]string{}
			for _, alg := range []string{authz.ES256, authz.EdDSA} {
				before[alg] = oneKID(t, f.keys, alg, authz.KeyActive)
			}
			rs, err := f.keys.Rotate(t.Context(), time.Hour, tc.algs...)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Rotate = %v, want %v", err, tc.wantErr)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.Alg)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("rotated %v, want %v", got, tc.want)
			}
			for alg, kid := range before {
				rotated := oneKID(t, f.keys, alg, authz.KeyActive) != kid
				if rotated != slices.Contains(tc.want, alg) {
					t.Errorf("%s rotated = %v", alg, rotated)
				}
			}
		})
	}
}

func TestRotateIfDue(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	ctx := t.Context()
	const period = 30 * 24 * time.Hour
	first := oneKID(t, f.keys, authz.ES256, authz.KeyActive)

	f.clock.Add(period - time.Second)
	if rs, err := f.keys.RotateIfDue(ctx, period, time.Hour); err != nil || len(rs) != 0 {
		t.Fatalf("RotateIfDue before the period = %+v, %v; want nothing", rs, err)
	}
	if got := oneKID(t, f.keys, authz.ES256, authz.KeyActive); got != first {
		t.Fatal("rotated before the period elapsed")
	}
	f.clock.Add(time.Second)
	rs, err := f.keys.RotateIfDue(ctx, period, time.Hour)
	if err != nil || len(rs) != 1 {
		t.Fatalf("RotateIfDue when due = %+v, %v; want one rotation", rs, err)
	}
	if rs, err := f.keys.RotateIfDue(ctx, period, time.Hour); err != nil || len(rs) != 0 {
		t.Errorf("RotateIfDue right after a rotation = %+v, %v; want nothing", rs, err)
	}
	if _, err := f.keys.RotateIfDue(ctx, 0, time.Hour); !errors.Is(err, authz.ErrInvalid) {
		t.Errorf("RotateIfDue with period 0 = %v, want ErrInvalid", err)
	}
}

// TestRotateWithoutNextKey: a rotation that stopped before making the new
// next key is completed by the next one.
func TestRotateWithoutNextKey(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	next := oneKID(t, f.keys, authz.ES256, authz.KeyNext)
	if err := f.store.DeleteKey(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	rs, err := f.keys.Rotate(t.Context(), time.Hour)
	if err != nil || len(rs) != 1 {
		t.Fatalf("Rotate = %+v, %v", rs, err)
	}
	got := byState(f.keys, authz.ES256)
	if len(got[authz.KeyActive]) != 1 || len(got[authz.KeyNext]) != 1 || len(got[authz.KeyRetired]) != 1 {
		t.Errorf("keys by state: %v", got)
	}
}

// rendezvous is an authz.Keys whose UpdateKeys waits until n callers have
// reached it, so that replicas' compare-and-sets race for certain.
type rendezvous struct {
	authz.Keys
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newRendezvous(st authz.Keys, n int) *rendezvous {
	return &rendezvous{Keys: st, n: n, all: make(chan struct{})}
}

func (r *rendezvous) UpdateKeys(ctx context.Context, from map[string]authz.KeyState, ks []authz.SigningKey) error {
	r.mu.Lock()
	r.arrived++
	if r.arrived == r.n {
		close(r.all)
	}
	r.mu.Unlock()
	select {
	case <-r.all:
	case <-time.After(10 * time.Second):
	}
	return r.Keys.UpdateKeys(ctx, from, ks)
}

// TestConcurrentRotate: two replicas that rotate at the same moment over
// one store rotate once; both end up with the same keys.
func TestConcurrentRotate(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	sealer := newSealer(t, 1)
	rv := newRendezvous(f.store, 2)
	replicas := []*Keys{
		NewKeys(rv, sealer, f.clock.Now, f.keys.rand, f.keys.log),
		NewKeys(rv, sealer, f.clock.Now, f.keys.rand, f.keys.log),
	}
	results := make([][]Rotation, len(replicas))
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, k := range replicas {
		wg.Go(func() { results[i], errs[i] = k.Rotate(t.Context(), time.Hour) })
	}
	wg.Wait()
	rotations := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		rotations += len(results[i])
	}
	if rotations != 1 {
		t.Fatalf("%d rotations, want 1: %+v", rotations, results)
	}
	got := storedByState(t, f.store, authz.ES256)
	if len(got[authz.KeyActive]) != 1 || len(got[authz.KeyNext]) != 1 || len(got[authz.KeyRetired]) != 1 {
		t.Errorf("stored keys by state: %v, want one of each", got)
	}
	// The replica that lost may have reloaded before the winner stored the
	// new next key; its periodic Refresh picks that up.
	for _, k := range replicas {
		if _, err := k.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if string(replicas[0].JWKS()) != string(replicas[1].JWKS()) {
		t.Error("the replicas publish different keys")
	}
}

// TestConcurrentRotateIfDue: replicas whose rotation falls due together
// rotate once, whichever order they run in.
func TestConcurrentRotateIfDue(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	other := f.newKeys(newSealer(t, 1))
	if err := other.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(24 * time.Hour)
	var wg sync.WaitGroup
	results := make([][]Rotation, 2)
	for i, k := range []*Keys{f.keys, other} {
		wg.Go(func() {
			var err error
			if results[i], err = k.RotateIfDue(t.Context(), time.Hour, time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(results[0]) + len(results[1]); n != 1 {
		t.Fatalf("%d rotations, want 1", n)
	}
	if got := storedByState(t, f.store, authz.ES256); len(got[authz.KeyRetired]) != 1 {
		t.Errorf("stored keys by state: %v", got)
	}
}

// TestRefresh: a replica picks up another's rotation and pruning.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	other := f.newKeys(newSealer(t, 1))
	otherIssuer := NewIssuer(testIssuerURL, other, f.clock.Now, f.keys.rand)
	if err := other.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if changed, err := other.Refresh(t.Context()); err != nil || changed {
		t.Fatalf("Refresh with nothing new = %v, %v; want false", changed, err)
	}
	rs, err := f.keys.Rotate(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := other.Refresh(t.Context()); err != nil || !changed {
		t.Fatalf("Refresh after another replica rotated = %v, %v; want true", changed, err)
	}
	if string(other.JWKS()) != string(f.keys.JWKS()) {
		t.Error("JWKS differ after Refresh")
	}
	tok, _, err := otherIssuer.Issue(Request{ClientID: "c", Audience: "a", Lifetime: time.Minute, Alg: authz.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if got := kidOf(t, tok); got != rs[0].Activated {
		t.Errorf("the refreshed replica signs with %s, want %s", got, rs[0].Activated)
	}

	f.clock.Add(2 * time.Hour)
	if _, err := f.keys.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(other.JWKS()), rs[0].Retired[0]) {
		t.Error("the refreshed replica still publishes the pruned key")
	}
	if deleted, err := other.Prune(t.Context()); err != nil || len(deleted) != 0 {
		t.Errorf("Prune on the other replica = %v, %v; want nothing", deleted, err)
	}
}
