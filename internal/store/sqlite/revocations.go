package sqlite

import (
	"context"
	"time"
)

// RevokeToken adds jti to the deny-list until expiresAt. Revoking a jti
// again keeps the later expiry. revoked_at is stamped by SQLite's clock
// inside the write transaction: writes are serialized, so stamps follow
// the order of commits (see ListRevokedSince).
func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.manage(ctx, "revoke token", false, func(t *tx) error { return t.RevokeToken(ctx, jti, expiresAt) })
}

// RevokeToken is Store.RevokeToken within the transaction.
func (t *tx) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return t.step(ctx, "revoke token", func() error {
		_, err := t.q.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, `+dbNowMicros+`)
			ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at), revoked_at = excluded.revoked_at`,
			jti, micros(expiresAt))
		return err
	})
}

// ListRevoked returns every deny-listed jti with its expiry.
func (s *Store) ListRevoked(ctx context.Context) (map[string]time.Time, error) {
	const op = "list revoked"
	rows, err := s.r.QueryContext(ctx, `SELECT jti, expires_at FROM revoked_tokens`)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	m := map[string]time.Time{}
	for rows.Next() {
		var (
			jti string
			us  int64
		)
		if err := rows.Scan(&jti, &us); err != nil {
			return nil, wrap(op, err)
		}
		m[jti] = fromMicros(us)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return m, nil
}

// dbNowMicros is SQLite's clock in microseconds since the epoch (with
// millisecond resolution).
const dbNowMicros = `CAST(unixepoch('subsec') * 1000000 AS INTEGER)`

// ListRevokedSince returns the deny-listed jtis whose entry was written or
// extended at or after since, with their expiry, and the database's time
// at the read: the since of the next call, less an overlap for writes
// still committing (denylist.RefreshOverlap). A zero since returns every
// entry.
func (s *Store) ListRevokedSince(ctx context.Context, since time.Time) (map[string]time.Time, time.Time, error) {
	const op = "list revoked since"
	var nowUS int64
	// The watermark is read first: an entry committed after it is read
	// again next time rather than missed.
	if err := s.r.QueryRowContext(ctx, `SELECT `+dbNowMicros).Scan(&nowUS); err != nil {
		return nil, time.Time{}, wrap(op, err)
	}
	var sinceUS int64
	if !since.IsZero() {
		sinceUS = micros(since)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= ?`, sinceUS)
	if err != nil {
		return nil, time.Time{}, wrap(op, err)
	}
	defer rows.Close()
	m := map[string]time.Time{}
	for rows.Next() {
		var (
			jti string
			us  int64
		)
		if err := rows.Scan(&jti, &us); err != nil {
			return nil, time.Time{}, wrap(op, err)
		}
		m[jti] = fromMicros(us)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, wrap(op, err)
	}
	return m, fromMicros(nowUS), nil
}

// PurgeRevoked removes the entries that expire at or before now and
// returns how many it removed.
func (s *Store) PurgeRevoked(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, "purge revoked", `DELETE FROM revoked_tokens WHERE expires_at <= ?`, micros(now))
	return int(n), err
}
