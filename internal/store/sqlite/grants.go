package sqlite

import (
	"context"
	"database/sql"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// grantColumns are the columns of grants (as "g") that grantRow receives,
// in its order.
const grantColumns = `g.id, g.client_id, g.api_id, g.scopes, g.created_at, g.updated_at`

// grantRow receives grantColumns.
type grantRow struct {
	g                authz.Grant
	scopes           []byte
	created, updated int64
}

func (r *grantRow) dest() []any {
	return []any{&r.g.ID, &r.g.ClientID, &r.g.APIID, &r.scopes, &r.created, &r.updated}
}

func (r *grantRow) grant() (authz.Grant, error) {
	g := r.g
	var err error
	if g.Scopes, err = unmarshalList[string](r.scopes); err != nil {
		return authz.Grant{}, err
	}
	g.CreatedAt = fromMicros(r.created)
	g.UpdatedAt = fromMicros(r.updated)
	return g, nil
}

func insertGrant(ctx context.Context, ex execer, g authz.Grant) error {
	scopes, err := marshalList(g.Scopes)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, `INSERT INTO grants (id, client_id, api_id, scopes, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		g.ID, g.ClientID, g.APIID, scopes, micros(g.CreatedAt), micros(g.UpdatedAt))
	return err
}

// CreateGrant inserts g; g.Audience is ignored. Returns an error wrapping
// authz.ErrNotFound if the application or the API does not exist, one
// wrapping authz.ErrConflict if the application already has a grant for
// that API or g.ID is taken.
func (s *Store) CreateGrant(ctx context.Context, g authz.Grant) error {
	return s.write(ctx, "create grant", func(tx *sql.Tx) error {
		return insertGrant(ctx, tx, g)
	})
}

// GetGrant returns grant id of application clientID with its Audience.
// Returns an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetGrant(ctx context.Context, clientID, id string) (authz.Grant, error) {
	var r grantRow
	var audience string
	err := s.r.QueryRowContext(ctx, `SELECT `+grantColumns+`, a.identifier
		FROM grants g JOIN apis a ON a.id = g.api_id
		WHERE g.id = ? AND g.client_id = ?`, id, clientID).Scan(append(r.dest(), &audience)...)
	if err != nil {
		return authz.Grant{}, wrap("get grant", err)
	}
	g, err := r.grant()
	if err != nil {
		return authz.Grant{}, wrap("get grant", err)
	}
	g.Audience = audience
	return g, nil
}

// ListGrants returns the grants of application clientID ordered by
// (CreatedAt, ID) with their Audience; an empty list if it has none or
// does not exist.
func (s *Store) ListGrants(ctx context.Context, clientID string) ([]authz.Grant, error) {
	const op = "list grants"
	rows, err := s.r.QueryContext(ctx, `SELECT `+grantColumns+`, a.identifier
		FROM grants g JOIN apis a ON a.id = g.api_id
		WHERE g.client_id = ? ORDER BY g.created_at, g.id`, clientID)
	list, err := collect(rows, err, func(sc scanner) (authz.Grant, error) {
		var r grantRow
		var audience string
		if err := sc.Scan(append(r.dest(), &audience)...); err != nil {
			return authz.Grant{}, err
		}
		g, err := r.grant()
		g.Audience = audience
		return g, err
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return list, nil
}

// UpdateGrant replaces the scopes and UpdatedAt of grant g.ID of
// application g.ClientID. Returns an error wrapping authz.ErrNotFound if
// there is none.
func (s *Store) UpdateGrant(ctx context.Context, g authz.Grant) error {
	scopes, err := marshalList(g.Scopes)
	if err != nil {
		return wrap("update grant", err)
	}
	return s.execOne(ctx, "update grant", `UPDATE grants SET scopes = ?, updated_at = ? WHERE id = ? AND client_id = ?`,
		scopes, micros(g.UpdatedAt), g.ID, g.ClientID)
}

// DeleteGrant removes grant id of application clientID. Returns an error
// wrapping authz.ErrNotFound if there is none.
func (s *Store) DeleteGrant(ctx context.Context, clientID, id string) error {
	return s.execOne(ctx, "delete grant", `DELETE FROM grants WHERE id = ? AND client_id = ?`, id, clientID)
}
