package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// credentialColumns are the columns of credentials that scanCredential
// reads, in its order.
const credentialColumns = `id, client_id, type, trusted_issuer_id, config, created_at, expires_at, last_used_at`

func scanCredential(row pgx.Row) (authz.Credential, error) {
	var (
		c                 authz.Credential
		trustedIssuer     *string
		config            string
		expires, lastUsed pgtype.Timestamptz
	)
	if err := row.Scan(&c.ID, &c.ClientID, &c.Type, &trustedIssuer, &config, &c.CreatedAt, &expires, &lastUsed); err != nil {
		return authz.Credential{}, err
	}
	if trustedIssuer != nil {
		c.TrustedIssuerID = *trustedIssuer
	}
	c.Config, c.ExpiresAt, c.LastUsedAt = []byte(config), fromNull(expires), fromNull(lastUsed)
	return c, nil
}

// CreateCredential inserts c. Returns an error wrapping authz.ErrNotFound
// if the application, or the trusted issuer c.TrustedIssuerID names, does
// not exist, authz.ErrConflict if c.ID is taken.
// Notifies ChangeClient.
func (s *Store) CreateCredential(ctx context.Context, c authz.Credential) error {
	return s.manage(ctx, "create credential", false, func(t *tx) error { return t.CreateCredential(ctx, c) })
}

// CreateCredential is Store.CreateCredential within the transaction.
func (t *tx) CreateCredential(ctx context.Context, c authz.Credential) error {
	return t.step(ctx, "create credential", clientChange(c.ClientID), func() error {
		_, err := t.q.Exec(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c.ID, c.ClientID, c.Type, nullString(c.TrustedIssuerID), string(c.Config), c.CreatedAt, nullTime(c.ExpiresAt), nullTime(c.LastUsedAt))
		return err
	})
}

// ListCredentials returns the credentials of application clientID ordered
// by (CreatedAt, ID); an empty list if it has none or does not exist.
func (s *Store) ListCredentials(ctx context.Context, clientID string) (list []authz.Credential, err error) {
	err = s.retryLost(ctx, func() (err error) {
		list, err = listCredentials(ctx, s.pool, clientID)
		return err
	})
	return list, err
}

// ListCredentials is Store.ListCredentials within the transaction.
func (t *tx) ListCredentials(ctx context.Context, clientID string) ([]authz.Credential, error) {
	if err := t.check("list credentials"); err != nil {
		return nil, err
	}
	return listCredentials(ctx, t.q, clientID)
}

func listCredentials(ctx context.Context, q querier, clientID string) ([]authz.Credential, error) {
	rows, err := q.Query(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE client_id = $1 ORDER BY created_at, id`, clientID)
	list, err := collect(rows, err, scanCredential)
	if err != nil {
		return nil, wrap("list credentials", err)
	}
	return list, nil
}

// DeleteCredential removes credential id of application clientID. Returns
// an error wrapping authz.ErrNotFound if there is none. Notifies
// ChangeClient.
func (s *Store) DeleteCredential(ctx context.Context, clientID, id string) error {
	return s.manage(ctx, "delete credential", false, func(t *tx) error { return t.DeleteCredential(ctx, clientID, id) })
}

// DeleteCredential is Store.DeleteCredential within the transaction.
func (t *tx) DeleteCredential(ctx context.Context, clientID, id string) error {
	return t.step(ctx, "delete credential", clientChange(clientID), func() error {
		return changeOne(ctx, t.q, `DELETE FROM credentials WHERE id = $1 AND client_id = $2`, id, clientID)
	})
}

// ListFederatedCredentials returns every credential, of every application,
// that names trusted issuer trustedIssuerID, ordered by (ClientID,
// CreatedAt, ID), in one read of the index credentials_trusted_issuer;
// an empty list if there are none.
func (s *Store) ListFederatedCredentials(ctx context.Context, trustedIssuerID string) (list []authz.Credential, err error) {
	err = s.retryLost(ctx, func() (err error) {
		list, err = listFederatedCredentials(ctx, s.pool, trustedIssuerID)
		return err
	})
	return list, err
}

// ListFederatedCredentials is Store.ListFederatedCredentials within the
// transaction.
func (t *tx) ListFederatedCredentials(ctx context.Context, trustedIssuerID string) ([]authz.Credential, error) {
	if err := t.check("list federated credentials"); err != nil {
		return nil, err
	}
	return listFederatedCredentials(ctx, t.q, trustedIssuerID)
}

func listFederatedCredentials(ctx context.Context, q querier, trustedIssuerID string) ([]authz.Credential, error) {
	rows, err := q.Query(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE trusted_issuer_id = $1 ORDER BY client_id, created_at, id`, trustedIssuerID)
	list, err := collect(rows, err, scanCredential)
	if err != nil {
		return nil, wrap("list federated credentials", err)
	}
	return list, nil
}

// TouchCredentials raises LastUsedAt of each credential in used to its
// time of use if that is later, in one transaction of two statements
// (touch); ids that do not exist and zero times are ignored. It notifies
// nothing: caches need not know when a credential was last used.
func (s *Store) TouchCredentials(ctx context.Context, used map[string]time.Time) error {
	return s.touch(ctx, "touch credentials", "credentials", used)
}

// nullString returns an optional string as stored: NULL for "".
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
