package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// clientQuery is the token endpoint's lookup. It reads everything Client
// returns in one statement, so in one round trip and from one snapshot: a
// row for the application (kind 0), one per secret (kind 1) and one per
// grant joined with its API (kind 2). The three branches share columns:
//
//	column     application           secret        grant and its API
//	id         client_id             id            g.id
//	t1         name                  prefix        g.api_id
//	t2         description           ''            a.identifier
//	t3         policy                ''            a.name
//	t4         ''                    ''            a.signing_alg
//	hash       NULL                  hash          NULL
//	list       introspect_audiences  NULL          g.scopes
//	ascopes    NULL                  NULL          a.scopes
//	lifetime   0                     0             a.token_lifetime
//	flag       disabled              false         a.system
//	created    created_at            created_at    g.created_at
//	updated    updated_at            updated_at    g.updated_at
//	n1         tokens_not_before     expires_at    a.created_at
//	n2         NULL                  last_used_at  a.updated_at
//	claims     ''                    ''            g.claims
//	glifetime  0                     0             g.token_lifetime
//	dpop       ''                    ''            a.dpop
//	nonce      false                 false         a.dpop_nonce
//	mtls       ''                    ''            a.mtls_bound
//	profile    ''                    ''            a.profile
//	reuse      token_reuse_min_rem.  0             a.token_reuse_min_remaining
//
// Secrets and grants come ordered by (created_at, id), like ListSecrets and
// ListGrants.
const clientQuery = `
SELECT 0 AS kind, client_id AS id, name AS t1, description AS t2, policy AS t3, '' AS t4,
       NULL::bytea AS hash, introspect_audiences AS list, NULL::jsonb AS ascopes, 0::bigint AS lifetime,
       disabled AS flag,
       created_at AS created, updated_at AS updated, tokens_not_before AS n1, NULL::timestamptz AS n2,
       '' AS claims, 0::bigint AS glifetime,
       '' AS dpop, false AS nonce, '' AS mtls, '' AS profile, token_reuse_min_remaining AS reuse
  FROM applications WHERE client_id = $1
UNION ALL
SELECT 1, id, prefix, '', '', '',
       hash, NULL, NULL, 0,
       false,
       created_at, updated_at, expires_at, last_used_at,
       '', 0,
       '', false, '', '', 0
  FROM client_secrets WHERE client_id = $1
UNION ALL
SELECT 2, g.id, g.api_id, a.identifier, a.name, a.signing_alg,
       NULL, g.scopes, a.scopes, a.token_lifetime,
       a.system,
       g.created_at, g.updated_at, a.created_at, a.updated_at,
       g.claims, g.token_lifetime,
       a.dpop, a.dpop_nonce, a.mtls_bound, a.profile, a.token_reuse_min_remaining
  FROM grants g JOIN apis a ON a.id = g.api_id WHERE g.client_id = $1
ORDER BY kind, created, id`

// Client returns the application with clientID, its secrets and its grants
// each with its API (both ordered by (CreatedAt, ID)), read in one
// statement: one round trip and one consistent snapshot. Returns an error
// wrapping authz.ErrNotFound if there is no such application.
func (s *Store) Client(ctx context.Context, clientID string) (*authz.Client, error) {
	var c *authz.Client
	err := s.retryLost(ctx, func() (err error) {
		c, err = s.readClient(ctx, clientID)
		return err
	})
	if err != nil {
		return nil, wrap("client", err)
	}
	return c, nil
}

// readClient runs clientQuery.
func (s *Store) readClient(ctx context.Context, clientID string) (*authz.Client, error) {
	rows, err := s.pool.Query(ctx, clientQuery, clientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		c               *authz.Client
		kind            int32
		id              string
		t               [4]string
		hash            []byte
		list            []string
		ascopes         []byte
		lifetime        int64
		flag            bool
		created         time.Time
		updated, n1, n2 pgtype.Timestamptz
		claims          string
		glifetime       int64
		policy          [3]string // dpop, mtls_bound, profile
		nonce           bool
		reuse           int32 // token_reuse_min_remaining, seconds
	)
	for rows.Next() {
		hash, list, ascopes = nil, nil, nil
		if err := rows.Scan(&kind, &id, &t[0], &t[1], &t[2], &t[3], &hash, &list, &ascopes, &lifetime,
			&flag, &created, &updated, &n1, &n2, &claims, &glifetime,
			&policy[0], &nonce, &policy[1], &policy[2], &reuse); err != nil {
			return nil, err
		}
		switch kind {
		case 0:
			policy, err := authz.DecodePolicy(t[2])
			if err != nil {
				return nil, err
			}
			c = &authz.Client{
				Application: authz.Application{
					ClientID:            id,
					Name:                t[0],
					Description:         t[1],
					Disabled:            flag,
					IntrospectAudiences: nonNil(list),
					TokensNotBefore:     fromNull(n1),
					Policy:              policy,
					TokenReuse:          reuseFromSeconds(reuse),
					CreatedAt:           created,
					UpdatedAt:           updated.Time,
				},
				Secrets: []authz.Secret{},
				Grants:  []authz.ClientGrant{},
			}
		case 1:
			c.Secrets = append(c.Secrets, authz.Secret{
				ID:         id,
				ClientID:   clientID,
				Hash:       hash,
				Prefix:     t[0],
				CreatedAt:  created,
				UpdatedAt:  updated.Time,
				ExpiresAt:  fromNull(n1),
				LastUsedAt: fromNull(n2),
			})
		case 2:
			apiScopes, err := s.apiScopes.decode(ascopes)
			if err != nil {
				return nil, err
			}
			api := authz.API{
				ID:            t[0],
				Identifier:    t[1],
				Name:          t[2],
				Scopes:        apiScopes,
				TokenLifetime: time.Duration(lifetime) * time.Second,
				SigningAlg:    t[3],
				System:        flag,
				DPoP:          policy[0],
				DPoPNonce:     nonce,
				MTLSBound:     policy[1],
				Profile:       policy[2],
				TokenReuse:    reuseFromSeconds(reuse),
				CreatedAt:     n1.Time,
				UpdatedAt:     n2.Time,
			}
			policyDefaults(&api)
			c.Grants = append(c.Grants, authz.ClientGrant{
				Grant: authz.Grant{
					ID:            id,
					ClientID:      clientID,
					APIID:         t[0],
					Audience:      t[1],
					Scopes:        nonNil(list),
					Claims:        claimsFromText(claims),
					TokenLifetime: time.Duration(glifetime) * time.Second,
					CreatedAt:     created,
					UpdatedAt:     updated.Time,
				},
				API: &api,
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, authz.ErrNotFound
	}
	return c, nil
}
