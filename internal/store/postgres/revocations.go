package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// RevokeToken adds jti to the deny-list until expiresAt. Revoking a jti
// again keeps the later expiry. Notifies ChangeRevoked with the jti.
func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	change := &authz.Change{Kind: authz.ChangeRevoked, Key: jti}
	return s.write(ctx, "revoke token", change, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
			ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, excluded.expires_at)`,
			jti, expiresAt)
		return err
	})
}

// ListRevoked returns every deny-listed jti with its expiry.
func (s *Store) ListRevoked(ctx context.Context) (map[string]time.Time, error) {
	const op = "list revoked"
	rows, err := s.pool.Query(ctx, `SELECT jti, expires_at FROM revoked_tokens`)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	m := map[string]time.Time{}
	for rows.Next() {
		var (
			jti string
			exp time.Time
		)
		if err := rows.Scan(&jti, &exp); err != nil {
			return nil, wrap(op, err)
		}
		m[jti] = exp
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return m, nil
}

// PurgeRevoked removes the entries that expire at or before now and
// returns how many it removed. It notifies nothing: the entries it removes
// protect against tokens that have expired anyway.
func (s *Store) PurgeRevoked(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM revoked_tokens WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, wrap("purge revoked", err)
	}
	return int(tag.RowsAffected()), nil
}
