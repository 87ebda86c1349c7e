package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// apiColumns are the columns of apis (as "a") that apiRow receives, in its
// order.
const apiColumns = `a.id, a.identifier, a.name, a.scopes, a.token_lifetime, a.signing_alg, a.system, a.created_at, a.updated_at`

// apiRow receives apiColumns.
type apiRow struct {
	a        authz.API
	scopes   []byte
	lifetime int64
}

func (r *apiRow) dest() []any {
	return []any{&r.a.ID, &r.a.Identifier, &r.a.Name, &r.scopes, &r.lifetime, &r.a.SigningAlg, &r.a.System, &r.a.CreatedAt, &r.a.UpdatedAt}
}

func (r *apiRow) api() (authz.API, error) {
	a := r.a
	var err error
	if a.Scopes, err = unmarshalList[authz.Scope](r.scopes); err != nil {
		return authz.API{}, err
	}
	a.TokenLifetime = time.Duration(r.lifetime) * time.Second
	return a, nil
}

// scanAPI reads apiColumns from row.
func scanAPI(row pgx.Row) (authz.API, error) {
	var r apiRow
	if err := row.Scan(r.dest()...); err != nil {
		return authz.API{}, err
	}
	return r.api()
}

// changeAll is the change every API write notifies: an API is part of the
// cached Client of every application granted it.
var changeAll = &authz.Change{Kind: authz.ChangeAll}

// CreateAPI inserts a. Returns an error wrapping authz.ErrConflict if an API
// has a.Identifier or a.ID. Notifies ChangeAll.
func (s *Store) CreateAPI(ctx context.Context, a authz.API) error {
	return s.write(ctx, "create api", changeAll, func(tx pgx.Tx) error {
		return insertAPI(ctx, tx, a)
	})
}

func insertAPI(ctx context.Context, tx pgx.Tx, a authz.API) error {
	args, err := apiArgs(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO apis
		(id, identifier, name, scopes, token_lifetime, signing_alg, system, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, args...)
	return err
}

// apiArgs returns the values of a's columns, in the order of apiColumns.
func apiArgs(a authz.API) ([]any, error) {
	scopes, err := marshalScopes(a.Scopes)
	if err != nil {
		return nil, err
	}
	return []any{a.ID, a.Identifier, a.Name, scopes, int64(a.TokenLifetime / time.Second), a.SigningAlg, a.System,
		a.CreatedAt, a.UpdatedAt}, nil
}

// GetAPI returns the API with id. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) GetAPI(ctx context.Context, id string) (authz.API, error) {
	var a authz.API
	err := s.retryLost(ctx, func() (err error) {
		a, err = scanAPI(s.pool.QueryRow(ctx, `SELECT `+apiColumns+` FROM apis a WHERE a.id = $1`, id))
		return err
	})
	if err != nil {
		return authz.API{}, wrap("get api", err)
	}
	return a, nil
}

// GetAPIByIdentifier returns the API whose audience is identifier. Returns
// an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetAPIByIdentifier(ctx context.Context, identifier string) (authz.API, error) {
	var a authz.API
	err := s.retryLost(ctx, func() (err error) {
		a, err = scanAPI(s.pool.QueryRow(ctx, `SELECT `+apiColumns+` FROM apis a WHERE a.identifier = $1`, identifier))
		return err
	})
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
		w.and(`a.identifier = ` + w.arg(f.Identifier))
	}
	if p.Cursor != "" {
		t, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", wrap(op, err)
		}
		w.and(`(a.created_at, a.id) > (` + w.arg(t) + `, ` + w.arg(id) + `)`)
	}
	query := `SELECT ` + apiColumns + ` FROM apis a` + w.String() + ` ORDER BY a.created_at, a.id LIMIT ` + w.arg(p.Limit+1)
	var list []authz.API
	err := s.retryLost(ctx, func() (err error) {
		rows, err := s.pool.Query(ctx, query, w.args...)
		list, err = collect(rows, err, scanAPI)
		return err
	})
	if err != nil {
		return nil, "", wrap(op, err)
	}
	next := ""
	if len(list) > p.Limit {
		list = list[:p.Limit]
		last := list[len(list)-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return list, next, nil
}

// UpdateAPI replaces the name, scopes, token lifetime, signing algorithm
// and UpdatedAt of the API with a.ID, and removes the scopes it no longer
// defines from every grant for it (setting those grants' UpdatedAt to
// a.UpdatedAt), in one transaction. Returns an error wrapping
// authz.ErrNotFound if there is no such API. Notifies ChangeAll.
func (s *Store) UpdateAPI(ctx context.Context, a authz.API) error {
	scopes, err := marshalScopes(a.Scopes)
	if err != nil {
		return wrap("update api", err)
	}
	return s.write(ctx, "update api", changeAll, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE apis
			SET name = $1, scopes = $2, token_lifetime = $3, signing_alg = $4, updated_at = $5
			WHERE id = $6`,
			a.Name, scopes, int64(a.TokenLifetime/time.Second), a.SigningAlg, a.UpdatedAt, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return authz.ErrNotFound
		}
		// Keep, in their order, the scopes of each grant that the API
		// still defines; grants holding none it dropped are left alone.
		_, err = tx.Exec(ctx, `UPDATE grants g
			SET scopes = ARRAY(
				SELECT u.scope FROM unnest(g.scopes) WITH ORDINALITY AS u(scope, n)
				WHERE u.scope = ANY ($2::text[]) ORDER BY u.n),
			    updated_at = $3
			WHERE g.api_id = $1 AND NOT (g.scopes <@ $2::text[])`,
			a.ID, nonNil(a.ScopeValues()), a.UpdatedAt)
		return err
	})
}

// DeleteAPI removes the API with id and, by cascade, every grant for it.
// Returns an error wrapping authz.ErrNotFound if there is none. Notifies
// ChangeAll.
func (s *Store) DeleteAPI(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete api", changeAll, `DELETE FROM apis WHERE id = $1`, id)
}
