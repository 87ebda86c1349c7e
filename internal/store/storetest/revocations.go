package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/denylist"
)

// tick is longer than the resolution of every store's clock (SQLite's is a
// millisecond), so that writes apart by it are stamped apart.
const tick = 5 * time.Millisecond

// testRevokedSince: ListRevokedSince, the deny-list's incremental read.
func testRevokedSince(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("zero since lists every entry, with a watermark", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.RevokeToken(ctx, "jti-1", at(time.Hour)))
		noErr(t, s.RevokeToken(ctx, "jti-2", at(2*time.Hour)))
		got, mark, err := s.ListRevokedSince(ctx, time.Time{})
		noErr(t, err)
		same(t, "revoked", got, map[string]time.Time{"jti-1": at(time.Hour), "jti-2": at(2 * time.Hour)})
		if mark.IsZero() {
			t.Error("no watermark")
		}
	})

	t.Run("only what was written at or after since", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.RevokeToken(ctx, "before", at(time.Hour)))
		time.Sleep(tick)
		_, mark, err := s.ListRevokedSince(ctx, time.Time{})
		noErr(t, err)
		time.Sleep(tick)
		noErr(t, s.RevokeToken(ctx, "after", at(time.Hour)))
		got, mark2, err := s.ListRevokedSince(ctx, mark)
		noErr(t, err)
		same(t, "revoked since the watermark", got, map[string]time.Time{"after": at(time.Hour)})
		if mark2.Before(mark) {
			t.Errorf("watermark went back from %v to %v", mark, mark2)
		}
		time.Sleep(tick)
		_, mark3, err := s.ListRevokedSince(ctx, mark2)
		noErr(t, err)
		got, _, err = s.ListRevokedSince(ctx, mark3)
		noErr(t, err)
		if len(got) != 0 {
			t.Errorf("nothing new, got %v", got)
		}
	})

	t.Run("a later expiry makes an entry new again", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.RevokeToken(ctx, "jti-1", at(time.Hour)))
		time.Sleep(tick)
		_, mark, err := s.ListRevokedSince(ctx, time.Time{})
		noErr(t, err)
		time.Sleep(tick)
		noErr(t, s.RevokeToken(ctx, "jti-1", at(3*time.Hour)))
		got, _, err := s.ListRevokedSince(ctx, mark)
		noErr(t, err)
		same(t, "revoked since the watermark", got, map[string]time.Time{"jti-1": at(3 * time.Hour)})
	})

	t.Run("a purged entry is not listed", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.RevokeToken(ctx, "gone", at(time.Hour)))
		noErr(t, s.RevokeToken(ctx, "kept", at(3*time.Hour)))
		_, err := s.PurgeRevoked(ctx, at(2*time.Hour))
		noErr(t, err)
		got, _, err := s.ListRevokedSince(ctx, time.Time{})
		noErr(t, err)
		same(t, "revoked", got, map[string]time.Time{"kept": at(3 * time.Hour)})
	})
}

// countingRevocations counts the reads of the deny-list a denylist.DenyList
// makes through it.
type countingRevocations struct {
	authz.Revocations
	full, incremental, rows int
}

func (c *countingRevocations) ListRevoked(ctx context.Context) (map[string]time.Time, error) {
	m, err := c.Revocations.ListRevoked(ctx)
	c.full++
	c.rows += len(m)
	return m, err
}

func (c *countingRevocations) ListRevokedSince(ctx context.Context, since time.Time) (map[string]time.Time, time.Time, error) {
	m, mark, err := c.Revocations.ListRevokedSince(ctx, since)
	if since.IsZero() {
		c.full++
	} else {
		c.incremental++
	}
	c.rows += len(m)
	return m, mark, err
}

// RevocationsAcrossReplicas checks, on two handles a and b of one database
// (two replicas), that a revocation written through b reaches a deny-list
// reading through a at its next refresh, which reads only the entries
// written since its previous one (within denylist.RefreshOverlap), not
// the whole deny-list.
func RevocationsAcrossReplicas(t *testing.T, a, b authz.Store) {
	ctx := t.Context()
	const old = 50
	for i := range old {
		noErr(t, b.RevokeToken(ctx, fmt.Sprint("old-", i), time.Now().Add(time.Hour)))
	}
	// The overlap is shortened to a tick, so that the old entries are
	// older than it without waiting a minute.
	counted := &countingRevocations{Revocations: a}
	d := denylist.New(counted, time.Now, slog.New(slog.DiscardHandler))
	d.Overlap = 0
	time.Sleep(tick)
	noErr(t, d.Refresh(ctx))
	if counted.full != 1 || counted.rows != old {
		t.Fatalf("first refresh: %d full reads, %d rows; want one full read of %d", counted.full, counted.rows, old)
	}
	if !d.Revoked("old-0") {
		t.Fatal("the full read missed an entry")
	}
	time.Sleep(tick)
	noErr(t, b.RevokeToken(ctx, "new", time.Now().Add(time.Hour)))
	rows := counted.rows
	noErr(t, d.Refresh(ctx))
	if !d.Revoked("new") {
		t.Fatal("a revocation through the other handle did not reach the deny-list")
	}
	if counted.full != 1 || counted.incremental != 1 || counted.rows-rows != 1 {
		t.Errorf("second refresh: %d full and %d incremental reads, %d rows; want one incremental read of 1 row", counted.full, counted.incremental, counted.rows-rows)
	}
}
