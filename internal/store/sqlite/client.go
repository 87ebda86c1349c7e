package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// clientQuery is the token endpoint's lookup. It reads everything Client
// returns in one statement, so in one round trip and from one snapshot: a
// row for the application (kind 0), one per secret (kind 1) and one per
// grant joined with its API (kind 2). The three branches share columns:
//
//	column  application           secret        grant and its API
//	t1      client_id             id            g.id
//	t2      name                  prefix        g.api_id
//	t3      description           ''            g.scopes
//	t4      introspect_audiences  ''            a.identifier
//	t5      policy                ''            a.name
//	t6      ''                    ''            a.scopes
//	t7      ''                    ''            a.signing_alg
//	b       x''                   hash          x''
//	i1      disabled              0             a.token_lifetime
//	i2      0                     0             a.system
//	i3      created_at            created_at    g.created_at
//	i4      updated_at            updated_at    g.updated_at
//	n1      tokens_not_before     expires_at    a.created_at
//	n2      NULL                  last_used_at  a.updated_at
//	t8      ''                    ''            g.claims
//	i5      0                     0             g.token_lifetime
//	t9      ''                    ''            a.dpop
//	i6      0                     0             a.dpop_nonce
//	t10     ''                    ''            a.mtls_bound
//	t11     ''                    ''            a.profile
//	i7      token_reuse_min_rem.  0             a.token_reuse_min_remaining
//
// Secrets and grants come ordered by (created_at, id), like ListSecrets and
// ListGrants.
const clientQuery = `
SELECT 0, client_id, name, description, introspect_audiences, policy, '', '', x'',
       disabled, 0, created_at, updated_at, tokens_not_before, NULL, '', 0, '', 0, '', '', token_reuse_min_remaining
  FROM applications WHERE client_id = ?1
UNION ALL
SELECT 1, id, prefix, '', '', '', '', '', hash,
       0, 0, created_at, updated_at, expires_at, last_used_at, '', 0, '', 0, '', '', 0
  FROM client_secrets WHERE client_id = ?1
UNION ALL
SELECT 2, g.id, g.api_id, g.scopes, a.identifier, a.name, a.scopes, a.signing_alg, x'',
       a.token_lifetime, a.system, g.created_at, g.updated_at, a.created_at, a.updated_at, g.claims, g.token_lifetime,
       a.dpop, a.dpop_nonce, a.mtls_bound, a.profile, a.token_reuse_min_remaining
  FROM grants g JOIN apis a ON a.id = g.api_id WHERE g.client_id = ?1
ORDER BY 1, 12, 2`

func (s *Store) prepare(ctx context.Context) error {
	var err error
	s.client, err = s.r.PrepareContext(ctx, clientQuery)
	return err
}

// Client returns the application with clientID, its secrets and its grants
// each with its API (both ordered by (CreatedAt, ID)), read in one
// statement. Returns an error wrapping authz.ErrNotFound if there is no
// such application.
func (s *Store) Client(ctx context.Context, clientID string) (*authz.Client, error) {
	const op = "client"
	rows, err := s.client.QueryContext(ctx, clientID)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var c *authz.Client
	for rows.Next() {
		var (
			kind   int
			t      [11]string
			b      []byte
			i      [7]int64
			n1, n2 sql.NullInt64
		)
		if err := rows.Scan(&kind, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &b,
			&i[0], &i[1], &i[2], &i[3], &n1, &n2, &t[7], &i[4],
			&t[8], &i[5], &t[9], &t[10], &i[6]); err != nil {
			return nil, wrap(op, err)
		}
		switch kind {
		case 0:
			audiences, err := s.stringLists.decode(t[3])
			if err != nil {
				return nil, wrap(op, err)
			}
			policy, err := authz.DecodePolicy(t[4])
			if err != nil {
				return nil, wrap(op, err)
			}
			c = &authz.Client{
				Application: authz.Application{
					ClientID:            t[0],
					Name:                t[1],
					Description:         t[2],
					Disabled:            i[0] != 0,
					IntrospectAudiences: audiences,
					TokensNotBefore:     fromNullMicros(n1),
					Policy:              policy,
					TokenReuse:          reuseFromSeconds(i[6]),
					CreatedAt:           fromMicros(i[2]),
					UpdatedAt:           fromMicros(i[3]),
				},
				Secrets: []authz.Secret{},
				Grants:  []authz.ClientGrant{},
			}
		case 1:
			c.Secrets = append(c.Secrets, authz.Secret{
				ID:         t[0],
				ClientID:   clientID,
				Hash:       b,
				Prefix:     t[1],
				CreatedAt:  fromMicros(i[2]),
				UpdatedAt:  fromMicros(i[3]),
				ExpiresAt:  fromNullMicros(n1),
				LastUsedAt: fromNullMicros(n2),
			})
		case 2:
			grantScopes, err := s.stringLists.decode(t[2])
			if err != nil {
				return nil, wrap(op, err)
			}
			apiScopes, err := s.apiScopes.decode(t[5])
			if err != nil {
				return nil, wrap(op, err)
			}
			api := authz.API{
				ID:            t[1],
				Identifier:    t[3],
				Name:          t[4],
				Scopes:        apiScopes,
				TokenLifetime: time.Duration(i[0]) * time.Second,
				SigningAlg:    t[6],
				System:        i[1] != 0,
				DPoP:          t[8],
				DPoPNonce:     i[5] != 0,
				MTLSBound:     t[9],
				Profile:       t[10],
				TokenReuse:    reuseFromSeconds(i[6]),
				CreatedAt:     fromMicros(n1.Int64),
				UpdatedAt:     fromMicros(n2.Int64),
			}
			policyDefaults(&api)
			c.Grants = append(c.Grants, authz.ClientGrant{
				Grant: authz.Grant{
					ID:            t[0],
					ClientID:      clientID,
					APIID:         t[1],
					Audience:      t[3],
					Scopes:        grantScopes,
					Claims:        claimsFromText(t[7]),
					TokenLifetime: time.Duration(i[4]) * time.Second,
					CreatedAt:     fromMicros(i[2]),
					UpdatedAt:     fromMicros(i[3]),
				},
				API: &api,
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	if c == nil {
		return nil, wrap(op, authz.ErrNotFound)
	}
	return c, nil
}
