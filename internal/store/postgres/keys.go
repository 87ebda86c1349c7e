package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// changeKeys is what every signing-key write notifies.
var changeKeys = &authz.Change{Kind: authz.ChangeKeys}

// CreateKey inserts k. Returns an error wrapping authz.ErrConflict if k.KID
// is taken, one wrapping authz.ErrInvalid if k.State is not a KeyState.
// Notifies ChangeKeys.
func (s *Store) CreateKey(ctx context.Context, k authz.SigningKey) error {
	return s.write(ctx, "create key", changeKeys, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys
			(kid, alg, state, private, created_at, activated_at, retired_at, remove_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			k.KID, k.Alg, string(k.State), nonNil(k.Private), k.CreatedAt,
			nullTime(k.ActivatedAt), nullTime(k.RetiredAt), nullTime(k.RemoveAfter))
		return err
	})
}

// ListKeys returns every signing key ordered by (CreatedAt, KID).
func (s *Store) ListKeys(ctx context.Context) ([]authz.SigningKey, error) {
	var list []authz.SigningKey
	err := s.retryLost(ctx, func() error {
		rows, err := s.pool.Query(ctx, `SELECT kid, alg, state, private, created_at, activated_at, retired_at, remove_after
			FROM signing_keys ORDER BY created_at, kid`)
		list, err = collect(rows, err, scanKey)
		return err
	})
	if err != nil {
		return nil, wrap("list keys", err)
	}
	return list, nil
}

// scanKey reads a signing_keys row as ListKeys selects it.
func scanKey(row pgx.Row) (authz.SigningKey, error) {
	var (
		k                           authz.SigningKey
		state                       string
		activated, retired, removal pgtype.Timestamptz
	)
	if err := row.Scan(&k.KID, &k.Alg, &state, &k.Private, &k.CreatedAt, &activated, &retired, &removal); err != nil {
		return authz.SigningKey{}, err
	}
	k.State = authz.KeyState(state)
	k.ActivatedAt = fromNull(activated)
	k.RetiredAt = fromNull(retired)
	k.RemoveAfter = fromNull(removal)
	return k, nil
}

// UpdateKeys saves the State, ActivatedAt, RetiredAt and RemoveAfter of
// each key in ks in one transaction if each one's stored state is
// from[KID]: it locks the keys (SELECT ... FOR UPDATE, in kid order),
// compares, then writes, so that of replicas rotating at once one wins.
// Otherwise it changes nothing and returns an error wrapping
// authz.ErrConflict, or authz.ErrNotFound if a key does not exist (the
// first of ks at fault decides which). Notifies ChangeKeys.
func (s *Store) UpdateKeys(ctx context.Context, from map[string]authz.KeyState, ks []authz.SigningKey) error {
	if len(ks) == 0 {
		return nil
	}
	kids := make([]string, len(ks))
	for i, k := range ks {
		kids[i] = k.KID
	}
	return s.write(ctx, "update keys", changeKeys, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT kid, state FROM signing_keys WHERE kid = ANY ($1) ORDER BY kid FOR UPDATE`, kids)
		if err != nil {
			return err
		}
		stored := map[string]authz.KeyState{}
		for rows.Next() {
			var kid, state string
			if err := rows.Scan(&kid, &state); err != nil {
				rows.Close()
				return err
			}
			stored[kid] = authz.KeyState(state)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range ks {
			state, ok := stored[k.KID]
			if !ok {
				return fmt.Errorf("key %s: %w", k.KID, authz.ErrNotFound)
			}
			if state != from[k.KID] {
				return fmt.Errorf("key %s is %q, not %q: %w", k.KID, state, from[k.KID], authz.ErrConflict)
			}
		}
		var b pgx.Batch
		for _, k := range ks {
			b.Queue(`UPDATE signing_keys SET state = $1, activated_at = $2, retired_at = $3, remove_after = $4
				WHERE kid = $5`,
				string(k.State), nullTime(k.ActivatedAt), nullTime(k.RetiredAt), nullTime(k.RemoveAfter), k.KID)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
}

// DeleteKey removes the key kid. Returns an error wrapping
// authz.ErrNotFound if there is none. Notifies ChangeKeys.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	return s.execOne(ctx, "delete key", changeKeys, `DELETE FROM signing_keys WHERE kid = $1`, kid)
}

// UpdateKeyPrivate replaces the sealed private key of kid. Returns an error
// wrapping authz.ErrNotFound if there is no such key. Notifies ChangeKeys.
func (s *Store) UpdateKeyPrivate(ctx context.Context, kid string, sealed []byte) error {
	return s.execOne(ctx, "update key private", changeKeys,
		`UPDATE signing_keys SET private = $1 WHERE kid = $2`, nonNil(sealed), kid)
}
