package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// grantColumns are the columns of grants (as "g") joined with the API's
// identifier (as "a") that grantDest receives, in its order.
const grantColumns = `g.id, g.client_id, g.api_id, a.identifier, g.scopes, g.created_at, g.updated_at`

// scanGrant reads grantColumns from row.
func scanGrant(row pgx.Row) (authz.Grant, error) {
	var g authz.Grant
	if err := row.Scan(&g.ID, &g.ClientID, &g.APIID, &g.Audience, &g.Scopes, &g.CreatedAt, &g.UpdatedAt); err != nil {
		return authz.Grant{}, err
	}
	g.Scopes = nonNil(g.Scopes)
	return g, nil
}

func insertGrant(ctx context.Context, tx pgx.Tx, g authz.Grant) error {
	_, err := tx.Exec(ctx, `INSERT INTO grants (id, client_id, api_id, scopes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		g.ID, g.ClientID, g.APIID, nonNil(g.Scopes), g.CreatedAt, g.UpdatedAt)
	return err
}

// CreateGrant inserts g; g.Audience is ignored. Returns an error wrapping
// authz.ErrNotFound if the application or the API does not exist, one
// wrapping authz.ErrConflict if the application already has a grant for
// that API or g.ID is taken. Notifies ChangeClient.
func (s *Store) CreateGrant(ctx context.Context, g authz.Grant) error {
	return s.write(ctx, "create grant", clientChange(g.ClientID), func(tx pgx.Tx) error {
		return insertGrant(ctx, tx, g)
	})
}

// GetGrant returns grant id of application clientID with its Audience.
// Returns an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetGrant(ctx context.Context, clientID, id string) (authz.Grant, error) {
	var g authz.Grant
	err := s.retryLost(ctx, func() (err error) {
		g, err = scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantColumns+`
			FROM grants g JOIN apis a ON a.id = g.api_id
			WHERE g.id = $1 AND g.client_id = $2`, id, clientID))
		return err
	})
	if err != nil {
		return authz.Grant{}, wrap("get grant", err)
	}
	return g, nil
}

// ListGrants returns the grants of application clientID ordered by
// (CreatedAt, ID) with their Audience; an empty list if it has none or
// does not exist.
func (s *Store) ListGrants(ctx context.Context, clientID string) ([]authz.Grant, error) {
	var list []authz.Grant
	err := s.retryLost(ctx, func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+grantColumns+`
			FROM grants g JOIN apis a ON a.id = g.api_id
			WHERE g.client_id = $1 ORDER BY g.created_at, g.id`, clientID)
		list, err = collect(rows, err, scanGrant)
		return err
	})
	if err != nil {
		return nil, wrap("list grants", err)
	}
	return list, nil
}

// UpdateGrant replaces the scopes and UpdatedAt of grant g.ID of
// application g.ClientID. Returns an error wrapping authz.ErrNotFound if
// there is none. Notifies ChangeClient.
func (s *Store) UpdateGrant(ctx context.Context, g authz.Grant) error {
	return s.execOne(ctx, "update grant", clientChange(g.ClientID),
		`UPDATE grants SET scopes = $1, updated_at = $2 WHERE id = $3 AND client_id = $4`,
		nonNil(g.Scopes), g.UpdatedAt, g.ID, g.ClientID)
}

// DeleteGrant removes grant id of application clientID. Returns an error
// wrapping authz.ErrNotFound if there is none. Notifies ChangeClient.
func (s *Store) DeleteGrant(ctx context.Context, clientID, id string) error {
	return s.execOne(ctx, "delete grant", clientChange(clientID),
		`DELETE FROM grants WHERE id = $1 AND client_id = $2`, id, clientID)
}
