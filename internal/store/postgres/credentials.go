package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// credentialColumns are the columns of credentials that scanCredential
// reads, in its order.
const credentialColumns = `id, client_id, type, config, created_at, expires_at, last_used_at`

func scanCredential(row pgx.Row) (authz.Credential, error) {
	var (
		c                 authz.Credential
		config            string
		expires, lastUsed pgtype.Timestamptz
	)
	if err := row.Scan(&c.ID, &c.ClientID, &c.Type, &config, &c.CreatedAt, &expires, &lastUsed); err != nil {
		return authz.Credential{}, err
	}
	c.Config, c.ExpiresAt, c.LastUsedAt = []byte(config), fromNull(expires), fromNull(lastUsed)
	return c, nil
}

// CreateCredential inserts c. Returns an error wrapping authz.ErrNotFound
// if the application does not exist, authz.ErrConflict if c.ID is taken.
// Notifies ChangeClient.
func (s *Store) CreateCredential(ctx context.Context, c authz.Credential) error {
	return s.manage(ctx, "create credential", false, func(t *tx) error { return t.CreateCredential(ctx, c) })
}

// CreateCredential is Store.CreateCredential within the transaction.
func (t *tx) CreateCredential(ctx context.Context, c authz.Credential) error {
	return t.step(ctx, "create credential", clientChange(c.ClientID), func() error {
		_, err := t.q.Exec(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.ID, c.ClientID, c.Type, string(c.Config), c.CreatedAt, nullTime(c.ExpiresAt), nullTime(c.LastUsedAt))
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
