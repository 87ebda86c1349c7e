package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// apiColumns are the columns of apis (as "a") that apiRow receives, in its
// order.
const apiColumns = `a.id, a.identifier, a.name, a.scopes, a.token_lifetime, a.signing_alg, a.system, a.created_at, a.updated_at`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanAPI reads apiColumns.
func scanAPI(sc scanner) (authz.API, error) {
	var r apiRow
	if err := sc.Scan(r.dest()...); err != nil {
		return authz.API{}, err
	}
	return r.api()
}

// apiRow receives apiColumns.
type apiRow struct {
	a                authz.API
	scopes           []byte
	lifetime         int64
	created, updated int64
}

func (r *apiRow) dest() []any {
	return []any{&r.a.ID, &r.a.Identifier, &r.a.Name, &r.scopes, &r.lifetime, &r.a.SigningAlg, &r.a.System, &r.created, &r.updated}
}

func (r *apiRow) api() (authz.API, error) {
	a := r.a
	var err error
	if a.Scopes, err = unmarshalList[authz.Scope](r.scopes); err != nil {
		return authz.API{}, err
	}
	a.TokenLifetime = time.Duration(r.lifetime) * time.Second
	a.CreatedAt = fromMicros(r.created)
	a.UpdatedAt = fromMicros(r.updated)
	return a, nil
}

// CreateAPI inserts a. Returns an error wrapping authz.ErrConflict if an API
// has a.Identifier or a.ID.
func (s *Store) CreateAPI(ctx context.Context, a authz.API) error {
	return s.write(ctx, "create api", func(tx *sql.Tx) error {
		return insertAPI(ctx, tx, a)
	})
}

func insertAPI(ctx context.Context, ex execer, a authz.API) error {
	scopes, err := marshalList(a.Scopes)
	if err != nil {
		return err
	}
	_, err = ex.ExecContext(ctx, `INSERT INTO apis
		(id, identifier, name, scopes, token_lifetime, signing_alg, system, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Identifier, a.Name, scopes, int64(a.TokenLifetime/time.Second), a.SigningAlg, a.System,
		micros(a.CreatedAt), micros(a.UpdatedAt))
	return err
}

// GetAPI returns the API with id. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) GetAPI(ctx context.Context, id string) (authz.API, error) {
	a, err := scanAPI(s.r.QueryRowContext(ctx, `SELECT `+apiColumns+` FROM apis a WHERE a.id = ?`, id))
	if err != nil {
		return authz.API{}, wrap("get api", err)
	}
	return a, nil
}

// GetAPIByIdentifier returns the API whose audience is identifier. Returns
// an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetAPIByIdentifier(ctx context.Context, identifier string) (authz.API, error) {
	a, err := scanAPI(s.r.QueryRowContext(ctx, `SELECT `+apiColumns+` FROM apis a WHERE a.identifier = ?`, identifier))
	if err != nil {
		return authz.API{}, wrap("get api by identifier", err)
	}
	return a, nil
}

// ListAPIs returns one page of APIs ordered by (CreatedAt, ID) and the
// cursor of the next page, "" after the last. A malformed cursor is an error
// wrapping authz.ErrInvalid.
func (s *Store) ListAPIs(ctx context.Context, f authz.APIFilter, p authz.Page) ([]authz.API, string, error) {
	const op = "list apis"
	p = p.Normalize()
	var w where
	if f.Identifier != "" {
		w.add(`a.identifier = ?`, f.Identifier)
	}
	if p.Cursor != "" {
		us, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", wrap(op, err)
		}
		w.add(`(a.created_at, a.id) > (?, ?)`, us, id)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+apiColumns+` FROM apis a`+w.String()+
		` ORDER BY a.created_at, a.id LIMIT ?`, append(w.args, p.Limit+1)...)
	list, err := collect(rows, err, scanAPI)
	if err != nil {
		return nil, "", wrap(op, err)
	}
	next := ""
	if len(list) > p.Limit {
		list = list[:p.Limit]
		last := list[len(list)-1]
		next = encodeCursor(micros(last.CreatedAt), last.ID)
	}
	return list, next, nil
}

// UpdateAPI replaces the name, scopes, token lifetime, signing algorithm
// and UpdatedAt of the API with a.ID, and removes the scopes it no longer
// defines from every grant for it (setting those grants' UpdatedAt to
// a.UpdatedAt), in one transaction. Returns an error wrapping
// authz.ErrNotFound if there is no such API.
func (s *Store) UpdateAPI(ctx context.Context, a authz.API) error {
	scopes, err := marshalList(a.Scopes)
	if err != nil {
		return wrap("update api", err)
	}
	return s.write(ctx, "update api", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE apis
			SET name = ?, scopes = ?, token_lifetime = ?, signing_alg = ?, updated_at = ?
			WHERE id = ?`,
			a.Name, scopes, int64(a.TokenLifetime/time.Second), a.SigningAlg, micros(a.UpdatedAt), a.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return authz.ErrNotFound
		}
		return pruneGrants(ctx, tx, a)
	})
}

// pruneGrants removes from every grant for a the scopes a does not define.
func pruneGrants(ctx context.Context, tx *sql.Tx, a authz.API) error {
	type grant struct {
		id     string
		scopes []string
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, scopes FROM grants WHERE api_id = ?`, a.ID)
	if err != nil {
		return err
	}
	var changed []grant
	for rows.Next() {
		var (
			id   string
			text []byte
		)
		if err := rows.Scan(&id, &text); err != nil {
			rows.Close()
			return err
		}
		scopes, err := unmarshalList[string](text)
		if err != nil {
			rows.Close()
			return err
		}
		kept := slices.DeleteFunc(slices.Clone(scopes), func(v string) bool { return !a.HasScope(v) })
		if len(kept) != len(scopes) {
			changed = append(changed, grant{id, kept})
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, g := range changed {
		text, err := marshalList(g.scopes)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE grants SET scopes = ?, updated_at = ? WHERE id = ?`,
			text, micros(a.UpdatedAt), g.id); err != nil {
			return err
		}
	}
	return nil
}

// DeleteAPI removes the API with id and, by cascade, every grant for it.
// Returns an error wrapping authz.ErrNotFound if there is none.
func (s *Store) DeleteAPI(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete api", `DELETE FROM apis WHERE id = ?`, id)
}
