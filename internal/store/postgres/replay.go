package postgres

import (
	"context"
	"time"
)

// UseJTI records key as used until exp and reports whether it was fresh
// (authz.Replay). One statement, without the management lock: the unique
// key makes concurrent uses on any replica wait for each other, and the
// expiry of an existing row is compared with the database's clock, so
// replicas whose clocks differ agree.
func (s *Store) UseJTI(ctx context.Context, key string, exp time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO used_jtis (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at <= clock_timestamp()`,
		key, exp)
	if err != nil {
		return false, wrap("use jti", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PurgeJTIs removes the keys whose use has expired by the database's
// clock and returns how many it removed.
func (s *Store) PurgeJTIs(ctx context.Context) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM used_jtis WHERE expires_at <= clock_timestamp()`)
	if err != nil {
		return 0, wrap("purge jtis", err)
	}
	return int(tag.RowsAffected()), nil
}
