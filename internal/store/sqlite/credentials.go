package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// credentialColumns are the columns of credentials that listCredentials
// reads, in its order.
const credentialColumns = `id, client_id, type, trusted_issuer_id, config, created_at, expires_at, last_used_at`

// CreateCredential inserts c. Returns an error wrapping authz.ErrNotFound
// if the application, or the trusted issuer c.TrustedIssuerID names, does
// not exist, authz.ErrConflict if c.ID is taken.
func (s *Store) CreateCredential(ctx context.Context, c authz.Credential) error {
	return s.manage(ctx, "create credential", false, func(t *tx) error { return t.CreateCredential(ctx, c) })
}

// CreateCredential is Store.CreateCredential within the transaction.
func (t *tx) CreateCredential(ctx context.Context, c authz.Credential) error {
	return t.step(ctx, "create credential", func() error {
		_, err := t.q.ExecContext(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ClientID, c.Type, nullString(c.TrustedIssuerID), string(c.Config), micros(c.CreatedAt), nullMicros(c.ExpiresAt), nullMicros(c.LastUsedAt))
		return err
	})
}

// ListCredentials returns the credentials of application clientID ordered
// by (CreatedAt, ID); an empty list if it has none or does not exist.
func (s *Store) ListCredentials(ctx context.Context, clientID string) ([]authz.Credential, error) {
	return listCredentials(ctx, s.r, clientID)
}

// ListCredentials is Store.ListCredentials within the transaction.
func (t *tx) ListCredentials(ctx context.Context, clientID string) ([]authz.Credential, error) {
	if err := t.check("list credentials"); err != nil {
		return nil, err
	}
	return listCredentials(ctx, t.q, clientID)
}

func listCredentials(ctx context.Context, q querier, clientID string) ([]authz.Credential, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE client_id = ? ORDER BY created_at, id`, clientID)
	list, err := collect(rows, err, scanCredential)
	if err != nil {
		return nil, wrap("list credentials", err)
	}
	return list, nil
}

// scanCredential reads credentialColumns.
func scanCredential(sc scanner) (authz.Credential, error) {
	var (
		c                 authz.Credential
		trustedIssuer     sql.NullString
		config            string
		created           int64
		expires, lastUsed sql.NullInt64
	)
	if err := sc.Scan(&c.ID, &c.ClientID, &c.Type, &trustedIssuer, &config, &created, &expires, &lastUsed); err != nil {
		return authz.Credential{}, err
	}
	c.TrustedIssuerID = trustedIssuer.String
	c.Config, c.CreatedAt, c.ExpiresAt, c.LastUsedAt = []byte(config), fromMicros(created), fromNullMicros(expires), fromNullMicros(lastUsed)
	return c, nil
}

// ListFederatedCredentials returns every credential, of every application,
// that names trusted issuer trustedIssuerID, ordered by (ClientID,
// CreatedAt, ID), in one read of the index credentials_trusted_issuer;
// an empty list if there are none.
func (s *Store) ListFederatedCredentials(ctx context.Context, trustedIssuerID string) ([]authz.Credential, error) {
	return listFederatedCredentials(ctx, s.r, trustedIssuerID)
}

// ListFederatedCredentials is Store.ListFederatedCredentials within the
// transaction.
func (t *tx) ListFederatedCredentials(ctx context.Context, trustedIssuerID string) ([]authz.Credential, error) {
	if err := t.check("list federated credentials"); err != nil {
		return nil, err
	}
	return listFederatedCredentials(ctx, t.q, trustedIssuerID)
}

// federatedCredentialsQuery reads the credentials that name a trusted
// issuer in their order, from the index credentials_trusted_issuer.
const federatedCredentialsQuery = `SELECT ` + credentialColumns + ` FROM credentials
	WHERE trusted_issuer_id = ? ORDER BY client_id, created_at, id`

func listFederatedCredentials(ctx context.Context, q querier, trustedIssuerID string) ([]authz.Credential, error) {
	rows, err := q.QueryContext(ctx, federatedCredentialsQuery, trustedIssuerID)
	list, err := collect(rows, err, scanCredential)
	if err != nil {
		return nil, wrap("list federated credentials", err)
	}
	return list, nil
}

// TouchCredentials raises LastUsedAt of each credential in used to its
// time of use if that is later, in one transaction; ids that do not exist
// and zero times are ignored.
func (s *Store) TouchCredentials(ctx context.Context, used map[string]time.Time) error {
	return s.touch(ctx, "touch credentials", "credentials", used)
}

// nullString returns an optional string as stored: NULL for "".
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// DeleteCredential removes credential id of application clientID. Returns
// an error wrapping authz.ErrNotFound if there is none.
func (s *Store) DeleteCredential(ctx context.Context, clientID, id string) error {
	return s.manage(ctx, "delete credential", false, func(t *tx) error { return t.DeleteCredential(ctx, clientID, id) })
}

// DeleteCredential is Store.DeleteCredential within the transaction.
func (t *tx) DeleteCredential(ctx context.Context, clientID, id string) error {
	return t.step(ctx, "delete credential", func() error {
		return changeOne(ctx, t.q, `DELETE FROM credentials WHERE id = ? AND client_id = ?`, id, clientID)
	})
}
