package sqlite

import (
	"context"
	"time"
)

// UseJTI records key as used until exp and reports whether it was fresh
// (authz.Replay). One statement on the one writer connection, so uses are
// serialized; the expiry of an existing row is compared with SQLite's
// clock.
func (s *Store) UseJTI(ctx context.Context, key string, exp time.Time) (bool, error) {
	n, err := s.exec(ctx, "use jti", `INSERT INTO used_jtis (jti, expires_at) VALUES (?, ?)
		ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE used_jtis.expires_at <= `+dbNowMicros,
		key, micros(exp))
	return n == 1, err
}

// PurgeJTIs removes the keys whose use has expired by SQLite's clock and
// returns how many it removed.
func (s *Store) PurgeJTIs(ctx context.Context) (int, error) {
	n, err := s.exec(ctx, "purge jtis", `DELETE FROM used_jtis WHERE expires_at <= `+dbNowMicros)
	return int(n), err
}
