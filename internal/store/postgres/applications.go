package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// appColumns are the columns of applications appRow receives, in its order.
const appColumns = `client_id, name, description, disabled, can_introspect, tokens_not_before, created_at, updated_at`

// appRow receives appColumns.
type appRow struct {
	a         authz.Application
	notBefore pgtype.Timestamptz
}

func (r *appRow) dest() []any {
	return []any{&r.a.ClientID, &r.a.Name, &r.a.Description, &r.a.Disabled, &r.a.CanIntrospect, &r.notBefore, &r.a.CreatedAt, &r.a.UpdatedAt}
}

func (r *appRow) app() authz.Application {
	a := r.a
	a.TokensNotBefore = fromNull(r.notBefore)
	return a
}

// scanApp reads appColumns from row.
func scanApp(row pgx.Row) (authz.Application, error) {
	var r appRow
	if err := row.Scan(r.dest()...); err != nil {
		return authz.Application{}, err
	}
	return r.app(), nil
}

// clientChange is what a write to application clientID, or to its secrets
// or grants, notifies.
func clientChange(clientID string) *authz.Change {
	return &authz.Change{Kind: authz.ChangeClient, Key: clientID}
}

func insertApplication(ctx context.Context, tx pgx.Tx, a authz.Application) error {
	_, err := tx.Exec(ctx, `INSERT INTO applications (`+appColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.ClientID, a.Name, a.Description, a.Disabled, a.CanIntrospect, nullTime(a.TokensNotBefore),
		a.CreatedAt, a.UpdatedAt)
	return err
}

// CreateApplication inserts app with its first secrets and grants in one
// transaction; the secrets and grants are stored as app's whatever their
// ClientID. Returns an error wrapping authz.ErrConflict if the client_id or
// a secret or grant id is taken or two grants name one API, and one
// wrapping authz.ErrNotFound if a grant's API does not exist. Notifies
// ChangeClient.
func (s *Store) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return s.write(ctx, "create application", clientChange(app.ClientID), func(tx pgx.Tx) error {
		if err := insertApplication(ctx, tx, app); err != nil {
			return err
		}
		for _, sec := range secrets {
			sec.ClientID = app.ClientID
			if err := insertSecret(ctx, tx, sec); err != nil {
				return err
			}
		}
		for _, g := range grants {
			g.ClientID = app.ClientID
			if err := insertGrant(ctx, tx, g); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetApplication returns the application with clientID. Returns an error
// wrapping authz.ErrNotFound if there is none.
func (s *Store) GetApplication(ctx context.Context, clientID string) (authz.Application, error) {
	var a authz.Application
	err := s.retryLost(ctx, func() (err error) {
		a, err = scanApp(s.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM applications WHERE client_id = $1`, clientID))
		return err
	})
	if err != nil {
		return authz.Application{}, wrap("get application", err)
	}
	return a, nil
}

// ListApplications returns one page of applications ordered by (CreatedAt,
// ClientID) and the cursor of the next page, "" after the last. A malformed
// cursor is an error wrapping authz.ErrInvalid.
func (s *Store) ListApplications(ctx context.Context, f authz.ApplicationFilter, p authz.Page) ([]authz.Application, string, error) {
	const op = "list applications"
	p = p.Normalize()
	var w where
	if f.NamePrefix != "" {
		// starts_with, not LIKE: LIKE treats % and _ as wildcards.
		w.and(`starts_with(name, ` + w.arg(f.NamePrefix) + `)`)
	}
	if f.Disabled != nil {
		w.and(`disabled = ` + w.arg(*f.Disabled))
	}
	if p.Cursor != "" {
		t, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", wrap(op, err)
		}
		w.and(`(created_at, client_id) > (` + w.arg(t) + `, ` + w.arg(id) + `)`)
	}
	query := `SELECT ` + appColumns + ` FROM applications` + w.String() +
		` ORDER BY created_at, client_id LIMIT ` + w.arg(p.Limit+1)
	var list []authz.Application
	err := s.retryLost(ctx, func() error {
		rows, err := s.pool.Query(ctx, query, w.args...)
		list, err = collect(rows, err, scanApp)
		return err
	})
	if err != nil {
		return nil, "", wrap(op, err)
	}
	next := ""
	if len(list) > p.Limit {
		list = list[:p.Limit]
		last := list[len(list)-1]
		next = encodeCursor(last.CreatedAt, last.ClientID)
	}
	return list, next, nil
}

// UpdateApplication replaces the name, description, disabled flag,
// CanIntrospect, TokensNotBefore and UpdatedAt of the application with
// app.ClientID. Returns an error wrapping authz.ErrNotFound if there is
// none. Notifies ChangeClient.
func (s *Store) UpdateApplication(ctx context.Context, app authz.Application) error {
	return s.execOne(ctx, "update application", clientChange(app.ClientID), `UPDATE applications
		SET name = $1, description = $2, disabled = $3, can_introspect = $4, tokens_not_before = $5, updated_at = $6
		WHERE client_id = $7`,
		app.Name, app.Description, app.Disabled, app.CanIntrospect, nullTime(app.TokensNotBefore), app.UpdatedAt, app.ClientID)
}

// DeleteApplication removes the application with clientID and, by cascade,
// its secrets and grants. Returns an error wrapping authz.ErrNotFound if
// there is none. Notifies ChangeClient.
func (s *Store) DeleteApplication(ctx context.Context, clientID string) error {
	return s.execOne(ctx, "delete application", clientChange(clientID), `DELETE FROM applications WHERE client_id = $1`, clientID)
}
