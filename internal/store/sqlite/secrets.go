package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// secretColumns are the columns of client_secrets that secretRow receives,
// in its order.
const secretColumns = `id, client_id, hash, prefix, created_at, updated_at, expires_at, last_used_at`

// secretRow receives secretColumns.
type secretRow struct {
	s                 authz.Secret
	created, updated  int64
	expires, lastUsed sql.NullInt64
}

func (r *secretRow) dest() []any {
	return []any{&r.s.ID, &r.s.ClientID, &r.s.Hash, &r.s.Prefix, &r.created, &r.updated, &r.expires, &r.lastUsed}
}

func (r *secretRow) secret() authz.Secret {
	s := r.s
	s.CreatedAt = fromMicros(r.created)
	s.UpdatedAt = fromMicros(r.updated)
	s.ExpiresAt = fromNullMicros(r.expires)
	s.LastUsedAt = fromNullMicros(r.lastUsed)
	return s
}

func insertSecret(ctx context.Context, q querier, s authz.Secret) error {
	_, err := q.ExecContext(ctx, `INSERT INTO client_secrets (`+secretColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.ClientID, nonNil(s.Hash), s.Prefix, micros(s.CreatedAt), micros(s.UpdatedAt), nullMicros(s.ExpiresAt), nullMicros(s.LastUsedAt))
	return err
}

// CreateSecret inserts s. Returns an error wrapping authz.ErrNotFound if
// the application does not exist, one wrapping authz.ErrConflict if s.ID is
// taken.
func (s *Store) CreateSecret(ctx context.Context, sec authz.Secret) error {
	return s.manage(ctx, "create secret", false, func(t *tx) error { return t.CreateSecret(ctx, sec) })
}

// CreateSecret is Store.CreateSecret within the transaction.
func (t *tx) CreateSecret(ctx context.Context, sec authz.Secret) error {
	return t.step(ctx, "create secret", func() error { return insertSecret(ctx, t.q, sec) })
}

// RotateSecret inserts sec and expires the application's other secrets at
// expireOthersAt (an earlier expiry is kept), in one transaction; the
// secrets it expires get sec.CreatedAt as UpdatedAt. Returns an error
// wrapping authz.ErrNotFound if the application does not exist,
// authz.ErrConflict if sec.ID is taken.
func (s *Store) RotateSecret(ctx context.Context, sec authz.Secret, expireOthersAt time.Time) error {
	return s.manage(ctx, "rotate secret", false, func(t *tx) error { return t.RotateSecret(ctx, sec, expireOthersAt) })
}

// RotateSecret is Store.RotateSecret within the transaction.
func (t *tx) RotateSecret(ctx context.Context, sec authz.Secret, expireOthersAt time.Time) error {
	return t.step(ctx, "rotate secret", func() error {
		if err := insertSecret(ctx, t.q, sec); err != nil {
			return err
		}
		return expireSecrets(ctx, t.q, sec.ClientID, sec.ID, expireOthersAt, sec.CreatedAt)
	})
}

// ListSecrets returns the secrets of application clientID ordered by
// (CreatedAt, ID); an empty list if it has none or does not exist.
func (s *Store) ListSecrets(ctx context.Context, clientID string) ([]authz.Secret, error) {
	return listSecrets(ctx, s.r, clientID)
}

// ListSecrets is Store.ListSecrets within the transaction.
func (t *tx) ListSecrets(ctx context.Context, clientID string) ([]authz.Secret, error) {
	if err := t.check("list secrets"); err != nil {
		return nil, err
	}
	return listSecrets(ctx, t.q, clientID)
}

func listSecrets(ctx context.Context, q querier, clientID string) ([]authz.Secret, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+secretColumns+` FROM client_secrets
		WHERE client_id = ? ORDER BY created_at, id`, clientID)
	list, err := collect(rows, err, func(sc scanner) (authz.Secret, error) {
		var r secretRow
		if err := sc.Scan(r.dest()...); err != nil {
			return authz.Secret{}, err
		}
		return r.secret(), nil
	})
	if err != nil {
		return nil, wrap("list secrets", err)
	}
	return list, nil
}

// DeleteSecret removes secret id of application clientID. Returns an error
// wrapping authz.ErrNotFound if there is none.
func (s *Store) DeleteSecret(ctx context.Context, clientID, id string) error {
	return s.manage(ctx, "delete secret", false, func(t *tx) error { return t.DeleteSecret(ctx, clientID, id) })
}

// DeleteSecret is Store.DeleteSecret within the transaction.
func (t *tx) DeleteSecret(ctx context.Context, clientID, id string) error {
	return t.step(ctx, "delete secret", func() error {
		return changeOne(ctx, t.q, `DELETE FROM client_secrets WHERE id = ? AND client_id = ?`, id, clientID)
	})
}

// ExpireSecrets sets ExpiresAt to at and UpdatedAt to now on every secret
// of application clientID except exceptID that never expires or expires
// after at; one with an earlier expiry is left as it is. Returns an error
// wrapping authz.ErrNotFound if the application does not exist.
func (s *Store) ExpireSecrets(ctx context.Context, clientID, exceptID string, at, now time.Time) error {
	return s.manage(ctx, "expire secrets", false, func(t *tx) error {
		return t.ExpireSecrets(ctx, clientID, exceptID, at, now)
	})
}

// ExpireSecrets is Store.ExpireSecrets within the transaction.
func (t *tx) ExpireSecrets(ctx context.Context, clientID, exceptID string, at, now time.Time) error {
	return t.step(ctx, "expire secrets", func() error {
		var exists bool
		if err := t.q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM applications WHERE client_id = ?)`, clientID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return authz.ErrNotFound
		}
		return expireSecrets(ctx, t.q, clientID, exceptID, at, now)
	})
}

// expireSecrets sets expires_at to at and updated_at to now on the secrets
// of clientID but exceptID that never expire or expire after at: only on
// the rows whose expiry it changes.
func expireSecrets(ctx context.Context, q querier, clientID, exceptID string, at, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE client_secrets SET expires_at = ?1, updated_at = ?4
		WHERE client_id = ?2 AND id <> ?3 AND (expires_at IS NULL OR expires_at > ?1)`,
		nullMicros(at), clientID, exceptID, micros(now))
	return err
}

// TouchSecrets raises LastUsedAt of each secret in used to its time of use
// if that is later, in one transaction; ids that do not exist and zero
// times are ignored. UpdatedAt does not change: a use is not a change.
func (s *Store) TouchSecrets(ctx context.Context, used map[string]time.Time) error {
	return s.touch(ctx, "touch secrets", "client_secrets", used)
}
