package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// grantColumns are the columns of grants (as "g") joined with the API's
// identifier (as "a") that scanGrant receives, in its order.
const grantColumns = `g.id, g.client_id, g.api_id, a.identifier, g.scopes, g.created_at, g.updated_at, g.claims, g.token_lifetime`

// scanGrant reads grantColumns from row.
func scanGrant(row pgx.Row) (authz.Grant, error) {
	var (
		g        authz.Grant
		claims   string
		lifetime int64
	)
	if err := row.Scan(&g.ID, &g.ClientID, &g.APIID, &g.Audience, &g.Scopes, &g.CreatedAt, &g.UpdatedAt, &claims, &lifetime); err != nil {
		return authz.Grant{}, err
	}
	g.Scopes = nonNil(g.Scopes)
	g.Claims = claimsFromText(claims)
	g.TokenLifetime = time.Duration(lifetime) * time.Second
	return g, nil
}

// claimsFromText is a grant's stored claims: nil for none.
func claimsFromText(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func insertGrant(ctx context.Context, q querier, g authz.Grant) error {
	_, err := q.Exec(ctx, `INSERT INTO grants (id, client_id, api_id, scopes, created_at, updated_at, claims, token_lifetime)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		g.ID, g.ClientID, g.APIID, nonNil(g.Scopes), g.CreatedAt, g.UpdatedAt, string(g.Claims), int64(g.TokenLifetime/time.Second))
	return err
}

// CreateGrant inserts g; g.Audience is ignored. Returns an error wrapping
// authz.ErrNotFound if the application or the API does not exist, one
// wrapping authz.ErrConflict if the application already has a grant for
// that API or g.ID is taken. Notifies ChangeClient.
func (s *Store) CreateGrant(ctx context.Context, g authz.Grant) error {
	return s.manage(ctx, "create grant", false, func(t *tx) error { return t.CreateGrant(ctx, g) })
}

// CreateGrant is Store.CreateGrant within the transaction.
func (t *tx) CreateGrant(ctx context.Context, g authz.Grant) error {
	return t.step(ctx, "create grant", clientChange(g.ClientID), func() error { return insertGrant(ctx, t.q, g) })
}

// GetGrant returns grant id of application clientID with its Audience.
// Returns an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetGrant(ctx context.Context, clientID, id string) (g authz.Grant, err error) {
	err = s.retryLost(ctx, func() (err error) {
		g, err = getGrant(ctx, s.pool, clientID, id)
		return err
	})
	return g, err
}

// GetGrant is Store.GetGrant within the transaction.
func (t *tx) GetGrant(ctx context.Context, clientID, id string) (authz.Grant, error) {
	if err := t.check("get grant"); err != nil {
		return authz.Grant{}, err
	}
	return getGrant(ctx, t.q, clientID, id)
}

func getGrant(ctx context.Context, q querier, clientID, id string) (authz.Grant, error) {
	g, err := scanGrant(q.QueryRow(ctx, `SELECT `+grantColumns+`
		FROM grants g JOIN apis a ON a.id = g.api_id
		WHERE g.id = $1 AND g.client_id = $2`, id, clientID))
	if err != nil {
		return authz.Grant{}, wrap("get grant", err)
	}
	return g, nil
}

// ListGrants returns the grants of application clientID ordered by
// (CreatedAt, ID) with their Audience; an empty list if it has none or
// does not exist.
func (s *Store) ListGrants(ctx context.Context, clientID string) (list []authz.Grant, err error) {
	err = s.retryLost(ctx, func() (err error) {
		list, err = listGrants(ctx, s.pool, "list grants", `g.client_id = $1`, clientID)
		return err
	})
	return list, err
}

// ListGrants is Store.ListGrants within the transaction.
func (t *tx) ListGrants(ctx context.Context, clientID string) ([]authz.Grant, error) {
	if err := t.check("list grants"); err != nil {
		return nil, err
	}
	return listGrants(ctx, t.q, "list grants", `g.client_id = $1`, clientID)
}

// ListGrantsForAPI returns every grant for the API with apiID, of every
// application, ordered by (CreatedAt, ID) with their Audience; an empty
// list if there is none.
func (s *Store) ListGrantsForAPI(ctx context.Context, apiID string) (list []authz.Grant, err error) {
	err = s.retryLost(ctx, func() (err error) {
		list, err = listGrants(ctx, s.pool, "list grants for api", `g.api_id = $1`, apiID)
		return err
	})
	return list, err
}

// ListGrantsForAPI is Store.ListGrantsForAPI within the transaction.
func (t *tx) ListGrantsForAPI(ctx context.Context, apiID string) ([]authz.Grant, error) {
	if err := t.check("list grants for api"); err != nil {
		return nil, err
	}
	return listGrants(ctx, t.q, "list grants for api", `g.api_id = $1`, apiID)
}

// listGrants returns the grants matching cond, whose one argument $1 is
// arg, ordered by (CreatedAt, ID). Errors are wrapped with op.
func listGrants(ctx context.Context, q querier, op, cond string, arg any) ([]authz.Grant, error) {
	rows, err := q.Query(ctx, `SELECT `+grantColumns+`
		FROM grants g JOIN apis a ON a.id = g.api_id
		WHERE `+cond+` ORDER BY g.created_at, g.id`, arg)
	list, err := collect(rows, err, scanGrant)
	if err != nil {
		return nil, wrap(op, err)
	}
	return list, nil
}

// UpdateGrant replaces the scopes, claims, token lifetime and UpdatedAt of
// grant g.ID of application g.ClientID. Returns an error wrapping authz.ErrNotFound if
// there is none. Notifies ChangeClient.
func (s *Store) UpdateGrant(ctx context.Context, g authz.Grant) error {
	return s.manage(ctx, "update grant", false, func(t *tx) error { return t.UpdateGrant(ctx, g) })
}

// UpdateGrant is Store.UpdateGrant within the transaction.
func (t *tx) UpdateGrant(ctx context.Context, g authz.Grant) error {
	return t.step(ctx, "update grant", clientChange(g.ClientID), func() error {
		return changeOne(ctx, t.q, `UPDATE grants SET scopes = $1, claims = $2, token_lifetime = $3, updated_at = $4 WHERE id = $5 AND client_id = $6`,
			nonNil(g.Scopes), string(g.Claims), int64(g.TokenLifetime/time.Second), g.UpdatedAt, g.ID, g.ClientID)
	})
}

// DeleteGrant removes grant id of application clientID. Returns an error
// wrapping authz.ErrNotFound if there is none. Notifies ChangeClient.
func (s *Store) DeleteGrant(ctx context.Context, clientID, id string) error {
	return s.manage(ctx, "delete grant", false, func(t *tx) error { return t.DeleteGrant(ctx, clientID, id) })
}

// DeleteGrant is Store.DeleteGrant within the transaction.
func (t *tx) DeleteGrant(ctx context.Context, clientID, id string) error {
	return t.step(ctx, "delete grant", clientChange(clientID), func() error {
		return changeOne(ctx, t.q, `DELETE FROM grants WHERE id = $1 AND client_id = $2`, id, clientID)
	})
}
