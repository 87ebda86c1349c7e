package sqlite

import (
	"context"
	"database/sql"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// credentialColumns are the columns of credentials that listCredentials
// reads, in its order.
const credentialColumns = `id, client_id, type, config, created_at, expires_at, last_used_at`

// CreateCredential inserts c. Returns an error wrapping authz.ErrNotFound
// if the application does not exist, authz.ErrConflict if c.ID is taken.
func (s *Store) CreateCredential(ctx context.Context, c authz.Credential) error {
	return s.manage(ctx, "create credential", false, func(t *tx) error { return t.CreateCredential(ctx, c) })
}

// CreateCredential is Store.CreateCredential within the transaction.
func (t *tx) CreateCredential(ctx context.Context, c authz.Credential) error {
	return t.step(ctx, "create credential", func() error {
		_, err := t.q.ExecContext(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ClientID, c.Type, string(c.Config), micros(c.CreatedAt), nullMicros(c.ExpiresAt), nullMicros(c.LastUsedAt))
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
	list, err := collect(rows, err, func(sc scanner) (authz.Credential, error) {
		var (
			c                 authz.Credential
			config            string
			created           int64
			expires, lastUsed sql.NullInt64
		)
		if err := sc.Scan(&c.ID, &c.ClientID, &c.Type, &config, &created, &expires, &lastUsed); err != nil {
			return authz.Credential{}, err
		}
		c.Config, c.CreatedAt, c.ExpiresAt, c.LastUsedAt = []byte(config), fromMicros(created), fromNullMicros(expires), fromNullMicros(lastUsed)
		return c, nil
	})
	if err != nil {
		return nil, wrap("list credentials", err)
	}
	return list, nil
}

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
