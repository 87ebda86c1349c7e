package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// trustedIssuerColumns are the columns of trusted_issuers that
// scanTrustedIssuer reads, in its order.
const trustedIssuerColumns = `id, name, kind, issuer, jwks_uri, jwks, trust_domain, bundle_url, single_use, created_at, updated_at`

// The reads of one trusted issuer by id, and by issuer: the token
// endpoint's lookup of a JWT's iss, one read of the unique index.
const (
	trustedIssuerByIDQuery     = `SELECT ` + trustedIssuerColumns + ` FROM trusted_issuers WHERE id = $1`
	trustedIssuerByIssuerQuery = `SELECT ` + trustedIssuerColumns + ` FROM trusted_issuers WHERE issuer = $1`
)

func scanTrustedIssuer(row pgx.Row) (authz.TrustedIssuer, error) {
	var (
		ti   authz.TrustedIssuer
		jwks *string
	)
	if err := row.Scan(&ti.ID, &ti.Name, &ti.Kind, &ti.Issuer, &ti.JWKSURI, &jwks, &ti.TrustDomain, &ti.BundleURL,
		&ti.SingleUse, &ti.CreatedAt, &ti.UpdatedAt); err != nil {
		return authz.TrustedIssuer{}, err
	}
	if jwks != nil {
		ti.JWKS = json.RawMessage(*jwks)
	}
	return ti, nil
}

// CreateTrustedIssuer inserts ti. Returns an error wrapping
// authz.ErrConflict if ti.ID or ti.Issuer is taken. It notifies nothing:
// no cache keeps trusted issuers.
func (s *Store) CreateTrustedIssuer(ctx context.Context, ti authz.TrustedIssuer) error {
	return s.manage(ctx, "create trusted issuer", false, func(t *tx) error { return t.CreateTrustedIssuer(ctx, ti) })
}

// CreateTrustedIssuer is Store.CreateTrustedIssuer within the transaction.
func (t *tx) CreateTrustedIssuer(ctx context.Context, ti authz.TrustedIssuer) error {
	return t.step(ctx, "create trusted issuer", nil, func() error {
		var jwks *string
		if len(ti.JWKS) > 0 {
			s := string(ti.JWKS)
			jwks = &s
		}
		_, err := t.q.Exec(ctx, `INSERT INTO trusted_issuers (`+trustedIssuerColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			ti.ID, ti.Name, ti.Kind, ti.Issuer, ti.JWKSURI, jwks, ti.TrustDomain, ti.BundleURL,
			ti.SingleUse, ti.CreatedAt, ti.UpdatedAt)
		return err
	})
}

// GetTrustedIssuer returns trusted issuer id. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) GetTrustedIssuer(ctx context.Context, id string) (ti authz.TrustedIssuer, err error) {
	err = s.retryLost(ctx, func() (err error) {
		ti, err = getTrustedIssuer(ctx, s.pool, "get trusted issuer", trustedIssuerByIDQuery, id)
		return err
	})
	return ti, err
}

// GetTrustedIssuer is Store.GetTrustedIssuer within the transaction.
func (t *tx) GetTrustedIssuer(ctx context.Context, id string) (authz.TrustedIssuer, error) {
	const op = "get trusted issuer"
	if err := t.check(op); err != nil {
		return authz.TrustedIssuer{}, err
	}
	return getTrustedIssuer(ctx, t.q, op, trustedIssuerByIDQuery, id)
}

// TrustedIssuerByIssuer returns the trusted issuer whose Issuer is issuer
// (compared byte for byte), in one read of the unique index on issuer: the
// token endpoint's lookup of a JWT's iss. Returns an error wrapping
// authz.ErrNotFound if there is none.
func (s *Store) TrustedIssuerByIssuer(ctx context.Context, issuer string) (ti authz.TrustedIssuer, err error) {
	err = s.retryLost(ctx, func() (err error) {
		ti, err = getTrustedIssuer(ctx, s.pool, "trusted issuer by issuer", trustedIssuerByIssuerQuery, issuer)
		return err
	})
	return ti, err
}

// getTrustedIssuer reads the one trusted issuer that query (by id or by
// issuer) finds for key.
func getTrustedIssuer(ctx context.Context, q querier, op, query, key string) (authz.TrustedIssuer, error) {
	ti, err := scanTrustedIssuer(q.QueryRow(ctx, query, key))
	if err != nil {
		return authz.TrustedIssuer{}, wrap(op, err)
	}
	return ti, nil
}

// ListTrustedIssuers returns every trusted issuer ordered by (CreatedAt, ID).
func (s *Store) ListTrustedIssuers(ctx context.Context) (list []authz.TrustedIssuer, err error) {
	err = s.retryLost(ctx, func() (err error) {
		list, err = listTrustedIssuers(ctx, s.pool)
		return err
	})
	return list, err
}

// ListTrustedIssuers is Store.ListTrustedIssuers within the transaction.
func (t *tx) ListTrustedIssuers(ctx context.Context) ([]authz.TrustedIssuer, error) {
	if err := t.check("list trusted issuers"); err != nil {
		return nil, err
	}
	return listTrustedIssuers(ctx, t.q)
}

func listTrustedIssuers(ctx context.Context, q querier) ([]authz.TrustedIssuer, error) {
	rows, err := q.Query(ctx, `SELECT `+trustedIssuerColumns+` FROM trusted_issuers ORDER BY created_at, id`)
	list, err := collect(rows, err, scanTrustedIssuer)
	if err != nil {
		return nil, wrap("list trusted issuers", err)
	}
	return list, nil
}

// DeleteTrustedIssuer removes trusted issuer id. Returns an error wrapping
// authz.ErrNotFound if there is none, authz.ErrConflict if a credential
// still names it. It notifies nothing: no credential names a trusted
// issuer that can be deleted, so no cached client changes.
func (s *Store) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return s.manage(ctx, "delete trusted issuer", false, func(t *tx) error { return t.DeleteTrustedIssuer(ctx, id) })
}

// DeleteTrustedIssuer is Store.DeleteTrustedIssuer within the transaction.
// The credentials are checked first, under the management lock that every
// CreateCredential takes too, for a clear error; the foreign key of
// credentials.trusted_issuer_id, which refuses the delete too, is the
// backstop, and its violation is a conflict here rather than the
// ErrNotFound that wrap makes of a missing parent.
func (t *tx) DeleteTrustedIssuer(ctx context.Context, id string) error {
	return t.step(ctx, "delete trusted issuer", nil, func() error {
		var named bool
		if err := t.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM credentials WHERE trusted_issuer_id = $1)`, id).Scan(&named); err != nil {
			return err
		}
		if named {
			return fmt.Errorf("%w: credentials name trusted issuer %s", authz.ErrConflict, id)
		}
		err := changeOne(ctx, t.q, `DELETE FROM trusted_issuers WHERE id = $1`, id)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
			return fmt.Errorf("%w: credentials name trusted issuer %s: %v", authz.ErrConflict, id, err)
		}
		return err
	})
}
