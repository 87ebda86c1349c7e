package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// apiColumns are the columns of apis (as "a") that apiRow receives, in its
// order.
const apiColumns = `a.id, a.identifier, a.name, a.scopes, a.token_lifetime, a.signing_alg, a.system, a.created_at, a.updated_at,
	a.dpop, a.dpop_nonce, a.mtls_bound, a.profile, a.token_reuse_min_remaining`

// apiRow receives apiColumns.
type apiRow struct {
	a        authz.API
	scopes   []byte
	lifetime int64
	reuse    int32 // token_reuse_min_remaining, seconds
}

func (r *apiRow) dest() []any {
	return []any{&r.a.ID, &r.a.Identifier, &r.a.Name, &r.scopes, &r.lifetime, &r.a.SigningAlg, &r.a.System, &r.a.CreatedAt, &r.a.UpdatedAt,
		&r.a.DPoP, &r.a.DPoPNonce, &r.a.MTLSBound, &r.a.Profile, &r.reuse}
}

func (r *apiRow) api() (authz.API, error) {
	a := r.a
	var err error
	if a.Scopes, err = unmarshalList[authz.Scope](r.scopes); err != nil {
		return authz.API{}, err
	}
	a.TokenLifetime = time.Duration(r.lifetime) * time.Second
	a.TokenReuse = reuseFromSeconds(r.reuse)
	policyDefaults(&a)
	return a, nil
}

// policyDefaults sets the sender-constraint policies and the profile of a
// that are "" to the values "" stands for (authz.API): what is written,
// and, should a row hold "", what is read.
func policyDefaults(a *authz.API) {
	a.DPoP = orDefault(a.DPoP, authz.PolicyOptional)
	a.MTLSBound = orDefault(a.MTLSBound, authz.PolicyOptional)
	a.Profile = orDefault(a.Profile, authz.ProfileNone)
}

// orDefault returns s, or def if s is "".
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
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
	return s.manage(ctx, "create api", false, func(t *tx) error { return t.CreateAPI(ctx, a) })
}

// CreateAPI is Store.CreateAPI within the transaction.
func (t *tx) CreateAPI(ctx context.Context, a authz.API) error {
	return t.step(ctx, "create api", changeAll, func() error { return insertAPI(ctx, t.q, a) })
}

func insertAPI(ctx context.Context, q querier, a authz.API) error {
	args, err := apiArgs(a)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO apis (`+apiInsertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, args...)
	return err
}

// apiInsertColumns are the columns an insert into apis names, in the order
// of apiArgs.
const apiInsertColumns = `id, identifier, name, scopes, token_lifetime, signing_alg, system, created_at, updated_at,
	dpop, dpop_nonce, mtls_bound, profile, token_reuse_min_remaining`

// apiArgs returns the values of a's columns, in the order of apiColumns
// and apiInsertColumns.
func apiArgs(a authz.API) ([]any, error) {
	scopes, err := marshalScopes(a.Scopes)
	if err != nil {
		return nil, err
	}
	policyDefaults(&a)
	return []any{a.ID, a.Identifier, a.Name, scopes, int64(a.TokenLifetime / time.Second), a.SigningAlg, a.System,
		a.CreatedAt, a.UpdatedAt, a.DPoP, a.DPoPNonce, a.MTLSBound, a.Profile, reuseSeconds(a.TokenReuse)}, nil
}

// GetAPI returns the API with id. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) GetAPI(ctx context.Context, id string) (a authz.API, err error) {
	err = s.retryLost(ctx, func() (err error) {
		a, err = getAPI(ctx, s.pool, id)
		return err
	})
	return a, err
}

// GetAPI is Store.GetAPI within the transaction.
func (t *tx) GetAPI(ctx context.Context, id string) (authz.API, error) {
	if err := t.check("get api"); err != nil {
		return authz.API{}, err
	}
	return getAPI(ctx, t.q, id)
}

func getAPI(ctx context.Context, q querier, id string) (authz.API, error) {
	a, err := scanAPI(q.QueryRow(ctx, `SELECT `+apiColumns+` FROM apis a WHERE a.id = $1`, id))
	if err != nil {
		return authz.API{}, wrap("get api", err)
	}
	return a, nil
}

// GetAPIByIdentifier returns the API whose audience is identifier. Returns
// an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetAPIByIdentifier(ctx context.Context, identifier string) (a authz.API, err error) {
	err = s.retryLost(ctx, func() (err error) {
		a, err = getAPIByIdentifier(ctx, s.pool, identifier)
		return err
	})
	return a, err
}

// GetAPIByIdentifier is Store.GetAPIByIdentifier within the transaction.
func (t *tx) GetAPIByIdentifier(ctx context.Context, identifier string) (authz.API, error) {
	if err := t.check("get api by identifier"); err != nil {
		return authz.API{}, err
	}
	return getAPIByIdentifier(ctx, t.q, identifier)
}

func getAPIByIdentifier(ctx context.Context, q querier, identifier string) (authz.API, error) {
	a, err := scanAPI(q.QueryRow(ctx, `SELECT `+apiColumns+` FROM apis a WHERE a.identifier = $1`, identifier))
	if err != nil {
		return authz.API{}, wrap("get api by identifier", err)
	}
	return a, nil
}

// ListAPIs returns one page of APIs ordered by (CreatedAt, ID) and the
// cursor of the next page, "" after the last. A malformed cursor is an error
// wrapping authz.ErrInvalid.
func (s *Store) ListAPIs(ctx context.Context, f authz.APIFilter, p authz.Page) (list []authz.API, next string, err error) {
	err = s.retryLost(ctx, func() (err error) {
		list, next, err = listAPIs(ctx, s.pool, f, p)
		return err
	})
	return list, next, err
}

// ListAPIs is Store.ListAPIs within the transaction.
func (t *tx) ListAPIs(ctx context.Context, f authz.APIFilter, p authz.Page) ([]authz.API, string, error) {
	if err := t.check("list apis"); err != nil {
		return nil, "", err
	}
	return listAPIs(ctx, t.q, f, p)
}

func listAPIs(ctx context.Context, q querier, f authz.APIFilter, p authz.Page) ([]authz.API, string, error) {
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
	rows, err := q.Query(ctx, query, w.args...)
	list, err := collect(rows, err, scanAPI)
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

// UpdateAPI sets the fields p names and UpdatedAt of the API with id in
// one UPDATE, and, if p names Scopes, removes the scopes it no longer
// defines from every grant for it (setting those grants' UpdatedAt to
// p.UpdatedAt), in one transaction. It returns the API as stored after the
// change. Returns an error wrapping authz.ErrNotFound if there is no such
// API. Notifies ChangeAll.
func (s *Store) UpdateAPI(ctx context.Context, id string, p authz.APIPatch) (a authz.API, err error) {
	err = s.manage(ctx, "update api", false, func(t *tx) (err error) {
		a, err = t.UpdateAPI(ctx, id, p)
		return err
	})
	return a, err
}

// UpdateAPI is Store.UpdateAPI within the transaction.
func (t *tx) UpdateAPI(ctx context.Context, id string, p authz.APIPatch) (a authz.API, err error) {
	err = t.step(ctx, "update api", changeAll, func() (err error) {
		a, err = updateAPI(ctx, t.q, id, p)
		return err
	})
	return a, err
}

func updateAPI(ctx context.Context, q querier, id string, p authz.APIPatch) (authz.API, error) {
	var (
		w   where
		set assignments
	)
	if p.Name != nil {
		set = append(set, `name = `+w.arg(*p.Name))
	}
	if p.Scopes != nil {
		scopes, err := marshalScopes(*p.Scopes)
		if err != nil {
			return authz.API{}, err
		}
		set = append(set, `scopes = `+w.arg(scopes))
	}
	if p.TokenLifetime != nil {
		set = append(set, `token_lifetime = `+w.arg(int64(*p.TokenLifetime/time.Second)))
	}
	if p.SigningAlg != nil {
		set = append(set, `signing_alg = `+w.arg(*p.SigningAlg))
	}
	if p.DPoP != nil {
		set = append(set, `dpop = `+w.arg(orDefault(*p.DPoP, authz.PolicyOptional)))
	}
	if p.DPoPNonce != nil {
		set = append(set, `dpop_nonce = `+w.arg(*p.DPoPNonce))
	}
	if p.TokenReuse != nil {
		set = append(set, `token_reuse_min_remaining = `+w.arg(reuseSeconds(*p.TokenReuse)))
	}
	if p.MTLSBound != nil {
		set = append(set, `mtls_bound = `+w.arg(orDefault(*p.MTLSBound, authz.PolicyOptional)))
	}
	if p.Profile != nil {
		set = append(set, `profile = `+w.arg(orDefault(*p.Profile, authz.ProfileNone)))
	}
	set = append(set, `updated_at = `+w.arg(p.UpdatedAt))
	a, err := scanAPI(q.QueryRow(ctx, `UPDATE apis a SET `+set.String()+
		` WHERE a.id = `+w.arg(id)+` RETURNING `+apiColumns, w.args...))
	if err != nil {
		return authz.API{}, err
	}
	if p.Scopes != nil {
		// Keep, in their order, the scopes of each grant that the API
		// still defines; grants holding none it dropped are left alone.
		_, err = q.Exec(ctx, `UPDATE grants g
			SET scopes = ARRAY(
				SELECT u.scope FROM unnest(g.scopes) WITH ORDINALITY AS u(scope, n)
				WHERE u.scope = ANY ($2::text[]) ORDER BY u.n),
			    updated_at = $3
			WHERE g.api_id = $1 AND NOT (g.scopes <@ $2::text[])`,
			a.ID, nonNil(a.ScopeValues()), p.UpdatedAt)
		if err != nil {
			return authz.API{}, err
		}
	}
	return a, nil
}

// DeleteAPI removes the API with id and, by cascade, every grant for it.
// Returns an error wrapping authz.ErrNotFound if there is none. Notifies
// ChangeAll.
func (s *Store) DeleteAPI(ctx context.Context, id string) error {
	return s.manage(ctx, "delete api", false, func(t *tx) error { return t.DeleteAPI(ctx, id) })
}

// DeleteAPI is Store.DeleteAPI within the transaction.
func (t *tx) DeleteAPI(ctx context.Context, id string) error {
	return t.step(ctx, "delete api", changeAll, func() error {
		return changeOne(ctx, t.q, `DELETE FROM apis WHERE id = $1`, id)
	})
}
