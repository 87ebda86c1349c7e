package sqlite

import (
	"context"
	"slices"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// apiColumns are the columns of apis that apiRow receives, in its order.
// They are not qualified: UPDATE ... RETURNING takes no table name.
const apiColumns = `id, identifier, name, scopes, token_lifetime, signing_alg, system, created_at, updated_at,
	dpop, dpop_nonce, mtls_bound, profile, token_reuse_min_remaining`

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
	reuse            int64 // token_reuse_min_remaining, seconds
}

func (r *apiRow) dest() []any {
	return []any{&r.a.ID, &r.a.Identifier, &r.a.Name, &r.scopes, &r.lifetime, &r.a.SigningAlg, &r.a.System, &r.created, &r.updated,
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
	a.CreatedAt = fromMicros(r.created)
	a.UpdatedAt = fromMicros(r.updated)
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

// CreateAPI inserts a. Returns an error wrapping authz.ErrConflict if an API
// has a.Identifier or a.ID.
func (s *Store) CreateAPI(ctx context.Context, a authz.API) error {
	return s.manage(ctx, "create api", false, func(t *tx) error { return t.CreateAPI(ctx, a) })
}

// CreateAPI is Store.CreateAPI within the transaction.
func (t *tx) CreateAPI(ctx context.Context, a authz.API) error {
	return t.step(ctx, "create api", func() error { return insertAPI(ctx, t.q, a) })
}

func insertAPI(ctx context.Context, q querier, a authz.API) error {
	scopes, err := marshalList(a.Scopes)
	if err != nil {
		return err
	}
	policyDefaults(&a)
	_, err = q.ExecContext(ctx, `INSERT INTO apis (`+apiColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Identifier, a.Name, scopes, int64(a.TokenLifetime/time.Second), a.SigningAlg, a.System,
		micros(a.CreatedAt), micros(a.UpdatedAt), a.DPoP, a.DPoPNonce, a.MTLSBound, a.Profile, reuseSeconds(a.TokenReuse))
	return err
}

// GetAPI returns the API with id. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) GetAPI(ctx context.Context, id string) (authz.API, error) {
	return getAPI(ctx, s.r, id)
}

// GetAPI is Store.GetAPI within the transaction.
func (t *tx) GetAPI(ctx context.Context, id string) (authz.API, error) {
	if err := t.check("get api"); err != nil {
		return authz.API{}, err
	}
	return getAPI(ctx, t.q, id)
}

func getAPI(ctx context.Context, q querier, id string) (authz.API, error) {
	a, err := scanAPI(q.QueryRowContext(ctx, `SELECT `+apiColumns+` FROM apis WHERE id = ?`, id))
	if err != nil {
		return authz.API{}, wrap("get api", err)
	}
	return a, nil
}

// GetAPIByIdentifier returns the API whose audience is identifier. Returns
// an error wrapping authz.ErrNotFound if there is none.
func (s *Store) GetAPIByIdentifier(ctx context.Context, identifier string) (authz.API, error) {
	return getAPIByIdentifier(ctx, s.r, identifier)
}

// GetAPIByIdentifier is Store.GetAPIByIdentifier within the transaction.
func (t *tx) GetAPIByIdentifier(ctx context.Context, identifier string) (authz.API, error) {
	if err := t.check("get api by identifier"); err != nil {
		return authz.API{}, err
	}
	return getAPIByIdentifier(ctx, t.q, identifier)
}

func getAPIByIdentifier(ctx context.Context, q querier, identifier string) (authz.API, error) {
	a, err := scanAPI(q.QueryRowContext(ctx, `SELECT `+apiColumns+` FROM apis WHERE identifier = ?`, identifier))
	if err != nil {
		return authz.API{}, wrap("get api by identifier", err)
	}
	return a, nil
}

// ListAPIs returns one page of APIs ordered by (CreatedAt, ID) and the
// cursor of the next page, "" after the last. A malformed cursor is an error
// wrapping authz.ErrInvalid.
func (s *Store) ListAPIs(ctx context.Context, f authz.APIFilter, p authz.Page) ([]authz.API, string, error) {
	return listAPIs(ctx, s.r, f, p)
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
		w.add(`identifier = ?`, f.Identifier)
	}
	if p.Cursor != "" {
		us, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", wrap(op, err)
		}
		w.add(`(created_at, id) > (?, ?)`, us, id)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+apiColumns+` FROM apis`+w.String()+
		` ORDER BY created_at, id LIMIT ?`, append(w.args, p.Limit+1)...)
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

// UpdateAPI sets the fields p names and UpdatedAt of the API with id in
// one UPDATE, and, if p names Scopes, removes the scopes it no longer
// defines from every grant for it (setting those grants' UpdatedAt to
// p.UpdatedAt), in one transaction. It returns the API as stored after the
// change. Returns an error wrapping authz.ErrNotFound if there is no such
// API.
func (s *Store) UpdateAPI(ctx context.Context, id string, p authz.APIPatch) (authz.API, error) {
	var a authz.API
	err := s.manage(ctx, "update api", false, func(t *tx) (err error) {
		a, err = t.UpdateAPI(ctx, id, p)
		return err
	})
	return a, err
}

// UpdateAPI is Store.UpdateAPI within the transaction.
func (t *tx) UpdateAPI(ctx context.Context, id string, p authz.APIPatch) (a authz.API, err error) {
	err = t.step(ctx, "update api", func() (err error) {
		a, err = updateAPI(ctx, t.q, id, p)
		return err
	})
	return a, err
}

func updateAPI(ctx context.Context, q querier, id string, p authz.APIPatch) (authz.API, error) {
	var set assignments
	if p.Name != nil {
		set.add(`name = ?`, *p.Name)
	}
	if p.Scopes != nil {
		scopes, err := marshalList(*p.Scopes)
		if err != nil {
			return authz.API{}, err
		}
		set.add(`scopes = ?`, scopes)
	}
	if p.TokenLifetime != nil {
		set.add(`token_lifetime = ?`, int64(*p.TokenLifetime/time.Second))
	}
	if p.SigningAlg != nil {
		set.add(`signing_alg = ?`, *p.SigningAlg)
	}
	if p.DPoP != nil {
		set.add(`dpop = ?`, orDefault(*p.DPoP, authz.PolicyOptional))
	}
	if p.DPoPNonce != nil {
		set.add(`dpop_nonce = ?`, *p.DPoPNonce)
	}
	if p.TokenReuse != nil {
		set.add(`token_reuse_min_remaining = ?`, reuseSeconds(*p.TokenReuse))
	}
	if p.MTLSBound != nil {
		set.add(`mtls_bound = ?`, orDefault(*p.MTLSBound, authz.PolicyOptional))
	}
	if p.Profile != nil {
		set.add(`profile = ?`, orDefault(*p.Profile, authz.ProfileNone))
	}
	set.add(`updated_at = ?`, micros(p.UpdatedAt))
	a, err := scanAPI(q.QueryRowContext(ctx, `UPDATE apis SET `+set.String()+` WHERE id = ? RETURNING `+apiColumns,
		append(set.args, id)...))
	if err != nil {
		return authz.API{}, err
	}
	if p.Scopes != nil {
		if err := pruneGrants(ctx, q, a, p.UpdatedAt); err != nil {
			return authz.API{}, err
		}
	}
	return a, nil
}

// orDefault returns s, or def if s is "".
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// pruneGrants removes from every grant for a the scopes a does not define,
// setting the UpdatedAt of the grants it changes to now.
func pruneGrants(ctx context.Context, q querier, a authz.API, now time.Time) error {
	type grant struct {
		id     string
		scopes []string
	}
	rows, err := q.QueryContext(ctx, `SELECT id, scopes FROM grants WHERE api_id = ?`, a.ID)
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
		if _, err := q.ExecContext(ctx, `UPDATE grants SET scopes = ?, updated_at = ? WHERE id = ?`,
			text, micros(now), g.id); err != nil {
			return err
		}
	}
	return nil
}

// DeleteAPI removes the API with id and, by cascade, every grant for it.
// Returns an error wrapping authz.ErrNotFound if there is none.
func (s *Store) DeleteAPI(ctx context.Context, id string) error {
	return s.manage(ctx, "delete api", false, func(t *tx) error { return t.DeleteAPI(ctx, id) })
}

// DeleteAPI is Store.DeleteAPI within the transaction.
func (t *tx) DeleteAPI(ctx context.Context, id string) error {
	return t.step(ctx, "delete api", func() error {
		return changeOne(ctx, t.q, `DELETE FROM apis WHERE id = ?`, id)
	})
}
