package sqlite

import (
	"context"
	"time"
)

// RevokeToken adds jti to the deny-list until expiresAt. Revoking a jti
// again keeps the later expiry.
func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return s.manage(ctx, "revoke token", false, func(t *tx) error { return t.RevokeToken(ctx, jti, expiresAt) })
}

// RevokeToken is Store.RevokeToken within the transaction.
func (t *tx) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	return t.step(ctx, "revoke token", func() error {
		_, err := t.q.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)
			ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
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

// PurgeRevoked removes the entries that expire at or before now and
// returns how many it removed.
func (s *Store) PurgeRevoked(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, "purge revoked", `DELETE FROM revoked_tokens WHERE expires_at <= ?`, micros(now))
	return int(n), err
}
