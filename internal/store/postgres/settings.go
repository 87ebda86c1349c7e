package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// changeSettings is what a settings write notifies.
var changeSettings = authz.Change{Kind: authz.ChangeSettings}

// InitSetting stores value under name unless name has a value already, and
// returns the stored value and whether this call stored it. The insert
// skips a name taken (ON CONFLICT DO NOTHING, which waits for a racing
// insert to commit or roll back) and the value is then read back, so
// replicas racing to initialise one setting all return the winner's value.
// Notifies ChangeSettings if it stored value.
func (s *Store) InitSetting(ctx context.Context, name string, value []byte) (stored []byte, created bool, err error) {
	err = s.write(ctx, "init setting", nil, func(tx pgx.Tx) error {
		stored, created = nil, false
		tag, err := tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
			name, nonNil(value))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			stored, created = value, true
			return notify(ctx, tx, changeSettings)
		}
		return tx.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&stored)
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// PutSetting stores value under name, replacing any value it had. Notifies
// ChangeSettings.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	return s.write(ctx, "put setting", &changeSettings, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, nonNil(value))
		return err
	})
}

// Bootstrap inserts b's API, application, secret and grant in one
// transaction if no API has b.API.Identifier, and reports whether it did.
// The secret and the grant are stored as b.App's, and the grant as one for
// b.API, whatever their ClientID and APIID say. It takes the management
// lock first (see Manage), as every write to APIs and applications does;
// the API then goes first, with ON CONFLICT (identifier) DO NOTHING, so of
// racing callers exactly one gets true. Notifies ChangeAll if it inserted.
func (s *Store) Bootstrap(ctx context.Context, b authz.Bootstrap) (bool, error) {
	created := false
	err := s.write(ctx, "bootstrap", nil, func(tx pgx.Tx) error {
		created = false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, manageLock); err != nil {
			return err
		}
		args, err := apiArgs(b.API)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO apis (`+apiInsertColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT (identifier) DO NOTHING`, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		b.Secret.ClientID = b.App.ClientID
		b.Grant.ClientID = b.App.ClientID
		b.Grant.APIID = b.API.ID
		if err := insertApplication(ctx, tx, b.App); err != nil {
			return err
		}
		if err := insertSecret(ctx, tx, b.Secret); err != nil {
			return err
		}
		if err := insertGrant(ctx, tx, b.Grant); err != nil {
			return err
		}
		created = true
		return notify(ctx, tx, *changeAll)
	})
	if err != nil {
		return false, err
	}
	return created, nil
}
