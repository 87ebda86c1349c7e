package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// appColumns are the columns of applications appRow receives, in its order.
// can_introspect is written but not read: it is kept, as
// len(introspect_audiences) > 0, for replicas that predate
// introspect_audiences.
const appColumns = `client_id, name, description, disabled, introspect_audiences, tokens_not_before, created_at, updated_at, policy,
	token_reuse_min_remaining`

// appRow receives appColumns.
type appRow struct {
	a                authz.Application
	audiences        []byte
	notBefore        sql.NullInt64
	created, updated int64
	policy           string
	reuse            int64 // token_reuse_min_remaining, seconds
}

func (r *appRow) dest() []any {
	return []any{&r.a.ClientID, &r.a.Name, &r.a.Description, &r.a.Disabled, &r.audiences, &r.notBefore, &r.created, &r.updated, &r.policy, &r.reuse}
}

func (r *appRow) app() (authz.Application, error) {
	a := r.a
	var err error
	if a.IntrospectAudiences, err = unmarshalList[string](r.audiences); err != nil {
		return authz.Application{}, err
	}
	if a.Policy, err = authz.DecodePolicy(r.policy); err != nil {
		return authz.Application{}, err
	}
	a.TokensNotBefore = fromNullMicros(r.notBefore)
	a.TokenReuse = reuseFromSeconds(r.reuse)
	a.CreatedAt = fromMicros(r.created)
	a.UpdatedAt = fromMicros(r.updated)
	return a, nil
}

// scanApp reads appColumns.
func scanApp(sc scanner) (authz.Application, error) {
	var r appRow
	if err := sc.Scan(r.dest()...); err != nil {
		return authz.Application{}, err
	}
	return r.app()
}

func insertApplication(ctx context.Context, q querier, a authz.Application) error {
	audiences, err := marshalList(a.IntrospectAudiences)
	if err != nil {
		return err
	}
	policy, err := authz.EncodePolicy(a.Policy)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO applications (`+appColumns+`, can_introspect) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ClientID, a.Name, a.Description, a.Disabled, audiences, nullMicros(a.TokensNotBefore),
		micros(a.CreatedAt), micros(a.UpdatedAt), policy, reuseSeconds(a.TokenReuse), len(a.IntrospectAudiences) > 0)
	return err
}

// CreateApplication inserts app with its first secrets and grants in one
// transaction; the secrets and grants are stored as app's whatever their
// ClientID. Returns an error wrapping authz.ErrConflict if the client_id or
// a secret or grant id is taken or two grants name one API, and one
// wrapping authz.ErrNotFound if a grant's API does not exist.
func (s *Store) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return s.manage(ctx, "create application", false, func(t *tx) error {
		return t.CreateApplication(ctx, app, secrets, grants)
	})
}

// CreateApplication is Store.CreateApplication within the transaction.
func (t *tx) CreateApplication(ctx context.Context, app authz.Application, secrets []authz.Secret, grants []authz.Grant) error {
	return t.step(ctx, "create application", func() error {
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
func (s *Store) GetApplication(ctx context.Context, clientID string) (authz.Application, error) {
	return getApplication(ctx, s.r, clientID)
}

// GetApplication is Store.GetApplication within the transaction.
func (t *tx) GetApplication(ctx context.Context, clientID string) (authz.Application, error) {
	if err := t.check("get application"); err != nil {
		return authz.Application{}, err
	}
	return getApplication(ctx, t.q, clientID)
}

func getApplication(ctx context.Context, q querier, clientID string) (authz.Application, error) {
	a, err := scanApp(q.QueryRowContext(ctx, `SELECT `+appColumns+` FROM applications WHERE client_id = ?`, clientID))
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
	list, err := collect(rows, err, scanApp)
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

// UpdateApplication sets the fields p names and UpdatedAt of the
// application with clientID in one UPDATE, and returns the application as
// stored after it. TokensNotBefore only moves forward: the stored cutoff
// becomes the later of it and p.TokensNotBefore. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) UpdateApplication(ctx context.Context, clientID string, p authz.ApplicationPatch) (authz.Application, error) {
	var a authz.Application
	err := s.manage(ctx, "update application", false, func(t *tx) (err error) {
		a, err = t.UpdateApplication(ctx, clientID, p)
		return err
	})
	return a, err
}

// UpdateApplication is Store.UpdateApplication within the transaction.
func (t *tx) UpdateApplication(ctx context.Context, clientID string, p authz.ApplicationPatch) (a authz.Application, err error) {
	err = t.step(ctx, "update application", func() (err error) {
		a, err = updateApplication(ctx, t.q, clientID, p)
		return err
	})
	return a, err
}

func updateApplication(ctx context.Context, q querier, clientID string, p authz.ApplicationPatch) (authz.Application, error) {
	var set assignments
	if p.Name != nil {
		set.add(`name = ?`, *p.Name)
	}
	if p.Description != nil {
		set.add(`description = ?`, *p.Description)
	}
	if p.Disabled != nil {
		set.add(`disabled = ?`, *p.Disabled)
	}
	if p.IntrospectAudiences != nil {
		audiences, err := marshalList(*p.IntrospectAudiences)
		if err != nil {
			return authz.Application{}, err
		}
		set.add(`introspect_audiences = ?, can_introspect = ?`, audiences, len(*p.IntrospectAudiences) > 0)
	}
	if p.Policy != nil {
		policy, err := authz.EncodePolicy(*p.Policy)
		if err != nil {
			return authz.Application{}, err
		}
		set.add(`policy = ?`, policy)
	}
	if p.TokenReuse != nil {
		set.add(`token_reuse_min_remaining = ?`, reuseSeconds(*p.TokenReuse))
	}
	if !p.TokensNotBefore.IsZero() {
		nb := micros(p.TokensNotBefore)
		set.add(`tokens_not_before = max(coalesce(tokens_not_before, ?), ?)`, nb, nb)
	}
	set.add(`updated_at = ?`, micros(p.UpdatedAt))
	return scanApp(q.QueryRowContext(ctx, `UPDATE applications SET `+set.String()+
		` WHERE client_id = ? RETURNING `+appColumns, append(set.args, clientID)...))
}

// DeleteApplication removes the application with clientID and, by cascade,
// its secrets and grants. Returns an error wrapping authz.ErrNotFound if
// there is none.
func (s *Store) DeleteApplication(ctx context.Context, clientID string) error {
	return s.manage(ctx, "delete application", false, func(t *tx) error { return t.DeleteApplication(ctx, clientID) })
}

// DeleteApplication is Store.DeleteApplication within the transaction.
func (t *tx) DeleteApplication(ctx context.Context, clientID string) error {
	return t.step(ctx, "delete application", func() error {
		return changeOne(ctx, t.q, `DELETE FROM applications WHERE client_id = ?`, clientID)
	})
}

// reuseSeconds is r as token_reuse_min_remaining stores it: whole
// seconds, 0 for off.
func reuseSeconds(r authz.TokenReuse) int64 { return int64(r.MinRemaining / time.Second) }

// reuseFromSeconds reads token_reuse_min_remaining.
func reuseFromSeconds(n int64) authz.TokenReuse {
	return authz.TokenReuse{MinRemaining: time.Duration(max(n, 0)) * time.Second}
}
