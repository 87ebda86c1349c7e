package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// appColumns are the columns of applications appRow receives, in its order.
// can_introspect is written but not read: it is kept, as
// cardinality(introspect_audiences) > 0, for replicas that predate
// introspect_audiences.
const appColumns = `client_id, name, description, disabled, introspect_audiences, tokens_not_before, created_at, updated_at, policy,
	token_reuse_min_remaining`

// appRow receives appColumns.
type appRow struct {
	a         authz.Application
	notBefore pgtype.Timestamptz
	policy    string
	reuse     int32 // token_reuse_min_remaining, seconds
}

func (r *appRow) dest() []any {
	return []any{&r.a.ClientID, &r.a.Name, &r.a.Description, &r.a.Disabled, &r.a.IntrospectAudiences, &r.notBefore, &r.a.CreatedAt, &r.a.UpdatedAt, &r.policy, &r.reuse}
}

func (r *appRow) app() (authz.Application, error) {
	a := r.a
	a.IntrospectAudiences = nonNil(a.IntrospectAudiences)
	a.TokensNotBefore = fromNull(r.notBefore)
	a.TokenReuse = reuseFromSeconds(r.reuse)
	var err error
	if a.Policy, err = authz.DecodePolicy(r.policy); err != nil {
		return authz.Application{}, err
	}
	return a, nil
}

// scanApp reads appColumns from row.
func scanApp(row pgx.Row) (authz.Application, error) {
	var r appRow
	if err := row.Scan(r.dest()...); err != nil {
		return authz.Application{}, err
	}
	return r.app()
}

// clientChange is what a write to application clientID, or to its secrets
// or grants, notifies.
func clientChange(clientID string) *authz.Change {
	return &authz.Change{Kind: authz.ChangeClient, Key: clientID}
}

func insertApplication(ctx context.Context, q querier, a authz.Application) error {
	policy, err := authz.EncodePolicy(a.Policy)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO applications (`+appColumns+`, can_introspect) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ClientID, a.Name, a.Description, a.Disabled, nonNil(a.IntrospectAudiences), nullTime(a.TokensNotBefore),
		a.CreatedAt, a.UpdatedAt, policy, reuseSeconds(a.TokenReuse), len(a.IntrospectAudiences) > 0)
	return err
}

// CreateApplication inserts app with its first secrets and grants in one
// transaction; the secrets and grants are stored as app's whatever their
// ClientID. Returns an error wrapping authz.ErrConflict if the client_id or
// a secret or grant id is taken or two grants name one API, and one
// wrapping authz.ErrNotFound if a grant's API does not exist. Notifies
// ChangeClient.
func (s *Store) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return s.manage(ctx, "create application", false, func(t *tx) error {
		return t.CreateApplication(ctx, app, secrets, grants)
	})
}

// CreateApplication is Store.CreateApplication within the transaction.
func (t *tx) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return t.step(ctx, "create application", clientChange(app.ClientID), func() error {
		if err := insertApplication(ctx, t.q, app); err != nil {
			return err
		}
		for _, sec := range secrets {
			sec.ClientID = app.ClientID
			if err := insertSecret(ctx, t.q, sec); err != nil {
				return err
			}
		}
		for _, g := range grants {
			g.ClientID = app.ClientID
			if err := insertGrant(ctx, t.q, g); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetApplication returns the application with clientID. Returns an error
// wrapping authz.ErrNotFound if there is none.
func (s *Store) GetApplication(ctx context.Context, clientID string) (a authz.Application, err error) {
	err = s.retryLost(ctx, func() (err error) {
		a, err = getApplication(ctx, s.pool, clientID)
		return err
	})
	return a, err
}

// GetApplication is Store.GetApplication within the transaction.
func (t *tx) GetApplication(ctx context.Context, clientID string) (authz.Application, error) {
	if err := t.check("get application"); err != nil {
		return authz.Application{}, err
	}
	return getApplication(ctx, t.q, clientID)
}

func getApplication(ctx context.Context, q querier, clientID string) (authz.Application, error) {
	a, err := scanApp(q.QueryRow(ctx, `SELECT `+appColumns+` FROM applications WHERE client_id = $1`, clientID))
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

// UpdateApplication sets the fields p names and UpdatedAt of the
// application with clientID in one UPDATE, and returns the application as
// stored after it. TokensNotBefore only moves forward: the stored cutoff
// becomes the later of it and p.TokensNotBefore. Returns an error wrapping
// authz.ErrNotFound if there is none. Notifies ChangeClient.
func (s *Store) UpdateApplication(ctx context.Context, clientID string, p authz.ApplicationPatch) (a authz.Application, err error) {
	err = s.manage(ctx, "update application", false, func(t *tx) (err error) {
		a, err = t.UpdateApplication(ctx, clientID, p)
		return err
	})
	return a, err
}

// UpdateApplication is Store.UpdateApplication within the transaction.
func (t *tx) UpdateApplication(ctx context.Context, clientID string, p authz.ApplicationPatch) (a authz.Application, err error) {
	err = t.step(ctx, "update application", clientChange(clientID), func() (err error) {
		a, err = updateApplication(ctx, t.q, clientID, p)
		return err
	})
	return a, err
}

func updateApplication(ctx context.Context, q querier, clientID string, p authz.ApplicationPatch) (authz.Application, error) {
	var (
		w   where
		set assignments
	)
	if p.Name != nil {
		set = append(set, `name = `+w.arg(*p.Name))
	}
	if p.Description != nil {
		set = append(set, `description = `+w.arg(*p.Description))
	}
	if p.Disabled != nil {
		set = append(set, `disabled = `+w.arg(*p.Disabled))
	}
	if p.IntrospectAudiences != nil {
		set = append(set, `introspect_audiences = `+w.arg(nonNil(*p.IntrospectAudiences)),
			`can_introspect = `+w.arg(len(*p.IntrospectAudiences) > 0))
	}
	if p.Policy != nil {
		policy, err := authz.EncodePolicy(*p.Policy)
		if err != nil {
			return authz.Application{}, err
		}
		set = append(set, `policy = `+w.arg(policy))
	}
	if p.TokenReuse != nil {
		set = append(set, `token_reuse_min_remaining = `+w.arg(reuseSeconds(*p.TokenReuse)))
	}
	if !p.TokensNotBefore.IsZero() {
		nb := w.arg(p.TokensNotBefore)
		set = append(set, `tokens_not_before = GREATEST(coalesce(tokens_not_before, `+nb+`), `+nb+`)`)
	}
	set = append(set, `updated_at = `+w.arg(p.UpdatedAt))
	return scanApp(q.QueryRow(ctx, `UPDATE applications SET `+set.String()+
		` WHERE client_id = `+w.arg(clientID)+` RETURNING `+appColumns, w.args...))
}

// DeleteApplication removes the application with clientID and, by cascade,
// its secrets and grants. Returns an error wrapping authz.ErrNotFound if
// there is none. Notifies ChangeClient.
func (s *Store) DeleteApplication(ctx context.Context, clientID string) error {
	return s.manage(ctx, "delete application", false, func(t *tx) error { return t.DeleteApplication(ctx, clientID) })
}

// DeleteApplication is Store.DeleteApplication within the transaction.
func (t *tx) DeleteApplication(ctx context.Context, clientID string) error {
	return t.step(ctx, "delete application", clientChange(clientID), func() error {
		return changeOne(ctx, t.q, `DELETE FROM applications WHERE client_id = $1`, clientID)
	})
}

// reuseSeconds is r as token_reuse_min_remaining stores it: whole
// seconds, 0 for off. manage keeps it below MaxTokenLifetime.
func reuseSeconds(r authz.TokenReuse) int32 { return int32(r.MinRemaining / time.Second) }

// reuseFromSeconds reads token_reuse_min_remaining.
func reuseFromSeconds(n int32) authz.TokenReuse {
	return authz.TokenReuse{MinRemaining: time.Duration(max(n, 0)) * time.Second}
}
