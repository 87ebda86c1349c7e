package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// CreateKey inserts k. Returns an error wrapping authz.ErrConflict if k.KID
// is taken, one wrapping authz.ErrInvalid if k.State is not a KeyState.
func (s *Store) CreateKey(ctx context.Context, k authz.SigningKey) error {
	return s.write(ctx, "create key", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys
			(kid, alg, state, private, created_at, activated_at, retired_at, remove_after)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			k.KID, k.Alg, string(k.State), nonNil(k.Private), micros(k.CreatedAt),
			nullMicros(k.ActivatedAt), nullMicros(k.RetiredAt), nullMicros(k.RemoveAfter))
		return err
	})
}

// ListKeys returns every signing key ordered by (CreatedAt, KID).
func (s *Store) ListKeys(ctx context.Context) ([]authz.SigningKey, error) {
	const op = "list keys"
	rows, err := s.r.QueryContext(ctx, `SELECT kid, alg, state, private, created_at, activated_at, retired_at, remove_after
		FROM signing_keys ORDER BY created_at, kid`)
	list, err := collect(rows, err, func(sc scanner) (authz.SigningKey, error) {
		var (
			k                           authz.SigningKey
			created                     int64
			activated, retired, removal sql.NullInt64
		)
		if err := sc.Scan(&k.KID, &k.Alg, &k.State, &k.Private, &created, &activated, &retired, &removal); err != nil {
			return authz.SigningKey{}, err
		}
		k.CreatedAt = fromMicros(created)
		k.ActivatedAt = fromNullMicros(activated)
		k.RetiredAt = fromNullMicros(retired)
		k.RemoveAfter = fromNullMicros(removal)
		return k, nil
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return list, nil
}

// UpdateKeys saves the State, ActivatedAt, RetiredAt and RemoveAfter of
// each key in ks in one transaction if each one's stored state is
// from[KID]. Otherwise it changes nothing and returns an error wrapping
// authz.ErrConflict, or authz.ErrNotFound if a key does not exist.
func (s *Store) UpdateKeys(ctx context.Context, from map[string]authz.KeyState, ks []authz.SigningKey) error {
	return s.write(ctx, "update keys", func(tx *sql.Tx) error {
		for _, k := range ks {
			// The compare and the set are one statement; the transaction
			// makes the whole batch one compare-and-set.
			res, err := tx.ExecContext(ctx, `UPDATE signing_keys
				SET state = ?, activated_at = ?, retired_at = ?, remove_after = ?
				WHERE kid = ? AND state = ?`,
				string(k.State), nullMicros(k.ActivatedAt), nullMicros(k.RetiredAt), nullMicros(k.RemoveAfter),
				k.KID, string(from[k.KID]))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				continue
			}
			var exists bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM signing_keys WHERE kid = ?)`, k.KID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("key %s: %w", k.KID, authz.ErrNotFound)
			}
			return fmt.Errorf("key %s is no longer %q: %w", k.KID, from[k.KID], authz.ErrConflict)
		}
		return nil
	})
}

// DeleteKey removes the key kid. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	return s.execOne(ctx, "delete key", `DELETE FROM signing_keys WHERE kid = ?`, kid)
}

// UpdateKeyPrivate replaces the sealed private key of kid. Returns an error
// wrapping authz.ErrNotFound if there is no such key.
func (s *Store) UpdateKeyPrivate(ctx context.Context, kid string, sealed []byte) error {
	return s.execOne(ctx, "update key private", `UPDATE signing_keys SET private = ? WHERE kid = ?`, nonNil(sealed), kid)
}
