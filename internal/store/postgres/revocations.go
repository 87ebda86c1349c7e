package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// RevokeToken adds jti to the deny-list until expiresAt. Revoking a jti
// again keeps the later expiry. Notifies ChangeRevoked with the jti. It
// does not take the management lock: a revocation changes no management
// rule's input, and an application revoking its own tokens (RFC 7009) at
// whatever rate must not queue administrators behind it.
func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	change := &authz.Change{Kind: authz.ChangeRevoked, Key: jti}
	return s.write(ctx, "revoke token", change, func(tx pgx.Tx) error { return revokeToken(ctx, tx, jti, expiresAt) })
}

// RevokeToken is Store.RevokeToken within the transaction.
func (t *tx) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	change := &authz.Change{Kind: authz.ChangeRevoked, Key: jti}
	return t.step(ctx, "revoke token", change, func() error { return revokeToken(ctx, t.q, jti, expiresAt) })
}

func revokeToken(ctx context.Context, q querier, jti string, expiresAt time.Time) error {
	// revoked_at is the database's clock, never a replica's: replicas'
	// clocks may differ, and ListRevokedSince compares with the database's.
	_, err := q.Exec(ctx, `INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, clock_timestamp())
		ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, excluded.expires_at), revoked_at = excluded.revoked_at`,
		jti, expiresAt)
	return err
}

// ListRevoked returns every deny-listed jti with its expiry.
func (s *Store) ListRevoked(ctx context.Context) (map[string]time.Time, error) {
	type entry struct {
		jti string
		exp time.Time
	}
	var list []entry
	err := s.retryLost(ctx, func() error {
		rows, err := s.pool.Query(ctx, `SELECT jti, expires_at FROM revoked_tokens`)
		list, err = collect(rows, err, func(row pgx.Row) (e entry, err error) {
			return e, row.Scan(&e.jti, &e.exp)
		})
		return err
	})
	if err != nil {
		return nil, wrap("list revoked", err)
	}
	m := make(map[string]time.Time, len(list))
	for _, e := range list {
		m[e.jti] = e.exp
	}
	return m, nil
}

// ListRevokedSince returns the deny-listed jtis whose entry was written or
// extended at or after since (by the database's clock), with their expiry,
// and the database's time at the read: the since of the next call, less an
// overlap for writes stamped before it but committed after
// (denylist.RefreshOverlap). A zero since returns every entry.
func (s *Store) ListRevokedSince(ctx context.Context, since time.Time) (map[string]time.Time, time.Time, error) {
	type entry struct {
		jti string
		exp time.Time
	}
	var (
		list []entry
		now  time.Time
	)
	err := s.retryLost(ctx, func() error {
		// The watermark is read first: an entry committed after it is
		// read again next time rather than missed.
		if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			return err
		}
		var rows pgx.Rows
		var err error
		if since.IsZero() {
			rows, err = s.pool.Query(ctx, `SELECT jti, expires_at FROM revoked_tokens`)
		} else {
			rows, err = s.pool.Query(ctx, `SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= $1`, since)
		}
		list, err = collect(rows, err, func(row pgx.Row) (e entry, err error) {
			return e, row.Scan(&e.jti, &e.exp)
		})
		return err
	})
	if err != nil {
		return nil, time.Time{}, wrap("list revoked since", err)
	}
	m := make(map[string]time.Time, len(list))
	for _, e := range list {
		m[e.jti] = e.exp
	}
	return m, now.UTC(), nil
}

// PurgeRevoked removes the entries that expire at or before now and
// returns how many it removed. It notifies nothing: the entries it removes
// protect against tokens that have expired anyway.
func (s *Store) PurgeRevoked(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "purge revoked", nil, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM revoked_tokens WHERE expires_at <= $1`, now)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}
