package sqlite

import (
	"context"
	"database/sql"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// appColumns are the columns of applications appRow receives, in its order.
const appColumns = `client_id, name, description, disabled, can_introspect, tokens_not_before, created_at, updated_at`

// appRow receives appColumns.
type appRow struct {
	a                authz.Application
	notBefore        sql.NullInt64
	created, updated int64
}

func (r *appRow) dest() []any {
	return []any{&r.a.ClientID, &r.a.Name, &r.a.Description, &r.a.Disabled, &r.a.CanIntrospect, &r.notBefore, &r.created, &r.updated}
}

func (r *appRow) app() authz.Application {
	a := r.a
	a.TokensNotBefore = fromNullMicros(r.notBefore)
	a.CreatedAt = fromMicros(r.created)
	a.UpdatedAt = fromMicros(r.updated)
	return a
}

func insertApplication(ctx context.Context, ex execer, a authz.Application) error {
	_, err := ex.ExecContext(ctx, `INSERT INTO applications (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ClientID, a.Name, a.Description, a.Disabled, a.CanIntrospect, nullMicros(a.TokensNotBefore),
		micros(a.CreatedAt), micros(a.UpdatedAt))
	return err
}

// CreateApplication inserts app with its first secrets and grants in one
// transaction; the secrets and grants are stored as app's whatever their
// ClientID. Returns an error wrapping authz.ErrConflict if the client_id or
// a secret or grant id is taken or two grants name one API, and one
// wrapping authz.ErrNotFound if a grant's API does not exist.
func (s *Store) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return s.write(ctx, "create application", func(tx *sql.Tx) error {
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
	var r appRow
	err := s.r.QueryRowContext(ctx, `SELECT `+appColumns+` FROM applications WHERE client_id = ?`, clientID).Scan(r.dest()...)
	if err != nil {
		return authz.Application{}, wrap("get application", err)
	}
	return r.app(), nil
}

// ListApplications returns one page of applications ordered by (CreatedAt,
// ClientID) and the cursor of the next page, "" after the last. A malformed
// cursor is an error wrapping authz.ErrInvalid.
func (s *Store) ListApplications(ctx context.Context, f authz.ApplicationFilter, p authz.Page) ([]authz.Application, string, error) {
	const op = "list applications"
	p = p.Normalize()
	var w where
	if f.NamePrefix != "" {
		// substr, not LIKE: LIKE ignores ASCII case and treats % and _ as
		// wildcards.
		w.add(`substr(name, 1, length(?)) = ?`, f.NamePrefix, f.NamePrefix)
	}
	if f.Disabled != nil {
		w.add(`disabled = ?`, *f.Disabled)
	}
	if p.Cursor != "" {
		us, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", wrap(op, err)
		}
		w.add(`(created_at, client_id) > (?, ?)`, us, id)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+appColumns+` FROM applications`+w.String()+
		` ORDER BY created_at, client_id LIMIT ?`, append(w.args, p.Limit+1)...)
	list, err := collect(rows, err, func(sc scanner) (authz.Application, error) {
		var r appRow
		if err := sc.Scan(r.dest()...); err != nil {
			return authz.Application{}, err
		}
		return r.app(), nil
	})
	if err != nil {
		return nil, "", wrap(op, err)
	}
	next := ""
	if len(list) > p.Limit {
		list = list[:p.Limit]
		last := list[len(list)-1]
		next = encodeCursor(micros(last.CreatedAt), last.ClientID)
	}
	return list, next, nil
}

// UpdateApplication replaces the name, description, disabled flag and
// UpdatedAt of the application with app.ClientID. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) UpdateApplication(ctx context.Context, app authz.Application) error {
	return s.execOne(ctx, "update application", `UPDATE applications
		SET name = ?, description = ?, disabled = ?, can_introspect = ?, tokens_not_before = ?, updated_at = ?
		WHERE client_id = ?`,
		app.Name, app.Description, app.Disabled, app.CanIntrospect, nullMicros(app.TokensNotBefore), micros(app.UpdatedAt), app.ClientID)
}

// DeleteApplication removes the application with clientID and, by cascade,
// its secrets and grants. Returns an error wrapping authz.ErrNotFound if
// there is none.
func (s *Store) DeleteApplication(ctx context.Context, clientID string) error {
	return s.execOne(ctx, "delete application", `DELETE FROM applications WHERE client_id = ?`, clientID)
}
