package manage

import (
	"context"
	"slices"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// managementAPI returns the management API as tx sees it.
func managementAPI(ctx context.Context, tx authz.Tx) (authz.API, error) {
	return tx.GetAPIByIdentifier(ctx, authz.ManagementAudience)
}

// managementScopesOf returns the management scopes application clientID
// is granted, nil if none.
func managementScopesOf(ctx context.Context, tx authz.Tx, clientID string) ([]string, error) {
	grants, err := tx.ListGrants(ctx, clientID)
	if err != nil {
		return nil, err
	}
	for _, g := range grants {
		if g.Audience == authz.ManagementAudience {
			return g.Scopes, nil
		}
	}
	return nil, nil
}

// mayActOn returns a Forbidden error unless every management scope of
// application clientID is one the actor holds: an administrator changes,
// grants, gives credentials to or deletes only applications no stronger
// than itself, so that no action hands it (or takes from someone) more than
// it has (OWASP ASVS V4.1.3).
func mayActOn(ctx context.Context, tx authz.Tx, actor Actor, clientID string) error {
	scopes, err := managementScopesOf(ctx, tx, clientID)
	if err != nil {
		return err
	}
	return actor.bound(scopes, "acting on application "+clientID)
}

// isFullAdministrator reports whether grant g of the management API holds
// every management scope.
func isFullAdministrator(g authz.Grant) bool {
	for _, sc := range authz.ManagementScopes {
		if !slices.Contains(g.Scopes, sc.Value) {
			return false
		}
	}
	return true
}

// hasAdministrator reports whether some enabled application holds every
// management scope and a secret or credential that has not expired at now: someone who
// can still administer the server. mgmtAPIID is the management API's id.
func hasAdministrator(ctx context.Context, tx authz.Tx, mgmtAPIID string, now func() time.Time) (bool, error) {
	grants, err := tx.ListGrantsForAPI(ctx, mgmtAPIID)
	if err != nil {
		return false, err
	}
	for _, g := range grants {
		if !isFullAdministrator(g) {
			continue
		}
		app, err := tx.GetApplication(ctx, g.ClientID)
		if err != nil {
			return false, err
		}
		if app.Disabled {
			continue
		}
		secrets, err := tx.ListSecrets(ctx, g.ClientID)
		if err != nil {
			return false, err
		}
		for _, sec := range secrets {
			if !sec.Expired(now()) {
				return true, nil
			}
		}
		creds, err := tx.ListCredentials(ctx, g.ClientID)
		if err != nil {
			return false, err
		}
		for _, c := range creds {
			if !c.Expired(now()) {
				return true, nil
			}
		}
	}
	return false, nil
}

// keepAdministrator runs change in tx and refuses it with a
// LastAdministrator error if it took away the last administrator
// (hasAdministrator): a server nobody can administer is recovered only
// offline. A server that had no administrator before the change is not
// guarded (there is none to keep).
func (s *Service) keepAdministrator(ctx context.Context, tx authz.Tx, change func() error) error {
	api, err := managementAPI(ctx, tx)
	if err != nil {
		return err
	}
	before, err := hasAdministrator(ctx, tx, api.ID, s.now)
	if err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	if !before {
		return nil
	}
	after, err := hasAdministrator(ctx, tx, api.ID, s.now)
	if err != nil {
		return err
	}
	if !after {
		return &Error{Kind: LastAdministrator, Detail: "this change would leave no enabled application holding every management scope with a usable secret or credential; give another application a full management grant and a secret or credential first"}
	}
	return nil
}
