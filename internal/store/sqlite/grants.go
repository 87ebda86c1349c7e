package sqlite

import (
	"context"
	"encoding/json"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// grantColumns are the columns of grants (as "g") joined with the API's
// identifier (as "a") that grantRow receives, in its order.
const grantColumns = `g.id, g.client_id, g.api_id, g.scopes, g.created_at, g.updated_at, a.identifier, g.claims, g.token_lifetime`

// grantRow receives grantColumns.
type grantRow struct {
	g                authz.Grant
	scopes           []byte
	created, updated int64
	claims           string
	lifetime         int64
}

func (r *grantRow) dest() []any {
	return []any{&r.g.ID, &r.g.ClientID, &r.g.APIID, &r.scopes, &r.created, &r.updated, &r.g.Audience, &r.claims, &r.lifetime}
}

func (r *grantRow) grant() (authz.Grant, error) {
	g := r.g
	var err error
	if g.Scopes, err = unmarshalList[string](r.scopes); err != nil {
		return authz.Grant{}, err
	}
	g.Claims = claimsFromText(r.claims)
	g.TokenLifetime = time.Duration(r.lifetime) * time.Second
	g.CreatedAt = fromMicros(r.created)
	g.UpdatedAt = fromMicros(r.updated)
	return g, nil
}

// scanGrant reads grantColumns.
func scanGrant(sc scanner) (authz.Grant, error) {
	var r grantRow
	if err := sc.Scan(r.dest()...); err != nil {
		return authz.Grant{}, err
	}
	return r.grant()
}

func insertGrant(ctx context.Context, q querier, g authz.Grant) error {
	scopes, err := marshalList(g.Scopes)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO grants (id, client_id, api_id, scopes, created_at, updated_at, claims, token_lifetime)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.ClientID, g.APIID, scopes, micros(g.CreatedAt), micros(g.UpdatedAt), string(g.Claims), int64(g.TokenLifetime/time.Second))
	return err
}

// claimsFromText is a grant's stored claims: nil for none.
func claimsFromText(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// CreateGrant inserts g; g.Audience is ignored. Returns an error wrapping
// authz.ErrNotFound if the application or the API does not exist, one
// wrapping authz.ErrConflict if the application already has a grant for
// that API or g.ID is taken.
func (s *Store) CreateGrant(ctx context.Context, g authz.Grant) error {
	return s.manage(ctx, "create grant", false, func(t *tx) error { return t.CreateGrant(ctx, g) })
}

// CreateGrant is Store.CreateGrant within the transaction.
func (t *tx) CreateGrant(ctx context.Context, g authz.Grant) error {
	return t.step(ctx, "create grant", func() error { return insertGrant(ctx, t.q, g) })
}

// GetGrant returns grant id of application clientID with its Audience.
// Returns an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetGrant(ctx context.Context, clientID, id string) (authz.Grant, error) {
	return getGrant(ctx, s.r, clientID, id)
}

// GetGrant is Store.GetGrant within the transaction.
func (t *tx) GetGrant(ctx context.Context, clientID, id string) (authz.Grant, error) {
	if err := t.check("get grant"); err != nil {
		return authz.Grant{}, err
	}
	return getGrant(ctx, t.q, clientID, id)
}

func getGrant(ctx context.Context, q querier, clientID, id string) (authz.Grant, error) {
	g, err := scanGrant(q.QueryRowContext(ctx, `SELECT `+grantColumns+`
		FROM grants g JOIN apis a ON a.id = g.api_id
		WHERE g.id = ? AND g.client_id = ?`, id, clientID))
	if err != nil {
		return authz.Grant{}, wrap("get grant", err)
	}
	return g, nil
}

// ListGrants returns the grants of application clientID ordered by
// (CreatedAt, ID) with their Audience; an empty list if it has none or
// does not exist.
func (s *Store) ListGrants(ctx context.Context, clientID string) ([]authz.Grant, error) {
	return listGrants(ctx, s.r, "list grants", `g.client_id = ?`, clientID)
}

// ListGrants is Store.ListGrants within the transaction.
func (t *tx) ListGrants(ctx context.Context, clientID string) ([]authz.Grant, error) {
	if err := t.check("list grants"); err != nil {
		return nil, err
	}
	return listGrants(ctx, t.q, "list grants", `g.client_id = ?`, clientID)
}

// ListGrantsForAPI returns every grant for the API with apiID, of every
// application, ordered by (CreatedAt, ID) with their Audience; an empty
// list if there is none.
func (s *Store) ListGrantsForAPI(ctx context.Context, apiID string) ([]authz.Grant, error) {
	return listGrants(ctx, s.r, "list grants for api", `g.api_id = ?`, apiID)
}

// ListGrantsForAPI is Store.ListGrantsForAPI within the transaction.
func (t *tx) ListGrantsForAPI(ctx context.Context, apiID string) ([]authz.Grant, error) {
	if err := t.check("list grants for api"); err != nil {
		return nil, err
	}
	return listGrants(ctx, t.q, "list grants for api", `g.api_id = ?`, apiID)
}

// listGrants returns the grants matching cond, whose one argument is arg,
// ordered by (CreatedAt, ID). Errors are wrapped with op.
func listGrants(ctx context.Context, q querier, op, cond string, arg any) ([]authz.Grant, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+grantColumns+`
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
// there is none.
func (s *Store) UpdateGrant(ctx context.Context, g authz.Grant) error {
	return s.manage(ctx, "update grant", false, func(t *tx) error { return t.UpdateGrant(ctx, g) })
}

// UpdateGrant is Store.UpdateGrant within the transaction.
func (t *tx) UpdateGrant(ctx context.Context, g authz.Grant) error {
	return t.step(ctx, "update grant", func() error {
		scopes, err := marshalList(g.Scopes)
		if err != nil {
			return err
		}
		return changeOne(ctx, t.q, `UPDATE grants SET scopes = ?, claims = ?, token_lifetime = ?, updated_at = ? WHERE id = ? AND client_id = ?`,
			scopes, string(g.Claims), int64(g.TokenLifetime/time.Second), micros(g.UpdatedAt), g.ID, g.ClientID)
	})
}

// DeleteGrant removes grant id of application clientID. Returns an error
// wrapping authz.ErrNotFound if there is none.
func (s *Store) DeleteGrant(ctx context.Context, clientID, id string) error {
	return s.manage(ctx, "delete grant", false, func(t *tx) error { return t.DeleteGrant(ctx, clientID, id) })
}

// DeleteGrant is Store.DeleteGrant within the transaction.
func (t *tx) DeleteGrant(ctx context.Context, clientID, id string) error {
	return t.step(ctx, "delete grant", func() error {
		return changeOne(ctx, t.q, `DELETE FROM grants WHERE id = ? AND client_id = ?`, id, clientID)
	})
}
