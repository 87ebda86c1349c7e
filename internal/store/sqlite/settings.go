package sqlite

import (
	"context"
	"database/sql"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// InitSetting stores value under name unless name has a value already, and
// returns the stored value and whether this call stored it.
func (s *Store) InitSetting(ctx context.Context, name string, value []byte) (stored []byte, created bool, err error) {
	err = s.write(ctx, "init setting", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
			name, nonNil(value))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			stored, created = value, true
			return nil
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&stored)
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// Bootstrap inserts b's API, application, secret and grant in one
// transaction if no API has b.API.Identifier, and reports whether it did.
// The secret and the grant are stored as b.App's, and the grant as one for
// b.API, whatever their ClientID and APIID say. BEGIN IMMEDIATE serializes
// the check and the inserts against every other writer of the database, so
// of racing callers exactly one gets true.
func (s *Store) Bootstrap(ctx context.Context, b authz.Bootstrap) (bool, error) {
	created := false
	err := s.write(ctx, "bootstrap", func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM apis WHERE identifier = ?)`, b.API.Identifier).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		b.Secret.ClientID = b.App.ClientID
		b.Grant.ClientID = b.App.ClientID
		b.Grant.APIID = b.API.ID
		if err := insertAPI(ctx, tx, b.API); err != nil {
			return err
		}
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
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// PutSetting stores value under name, replacing any value it had.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	_, err := s.exec(ctx, "put setting", `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, nonNil(value))
	return err
}
