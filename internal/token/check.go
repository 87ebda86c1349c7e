package token

import (
	"context"
	"errors"
	"fmt"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// DenyList is the set of revoked tokens, by jti.
type DenyList interface {
	// Revoked reports whether the token with jti has been revoked (RFC
	// 7009).
	Revoked(jti string) bool
}

// ClientSource looks up an application with its secrets and grants.
type ClientSource interface {
	// Client returns an error wrapping authz.ErrNotFound if no application
	// has clientID, and one wrapping authz.ErrUnavailable if the store
	// cannot be reached.
	Client(ctx context.Context, clientID string) (*authz.Client, error)
}

// Checker decides whether an access token this server issued is still
// good. It is the one liveness rule of the server's own tokens: the
// introspection endpoint (RFC 7662) and the management API's bearer check
// both use it. Build it with every field set; it is safe for concurrent
// use if they are.
type Checker struct {
	Issuer   *Issuer
	DenyList DenyList
	Clients  ClientSource
}

// Result of Check: Claims and Client are set when the token is live;
// Inactive says why it is not ("" when live), safe to log or show (never
// the token).
type Result struct {
	Claims   *Claims
	Client   *authz.Client
	Inactive string
}

// Reasons a verified token is no longer live, as Result.Inactive gives them.
const (
	inactiveRevoked         = "the token has been revoked"
	inactiveDeleted         = "the token's application no longer exists"
	inactiveDisabled        = "the token's application is disabled"
	inactiveTokensRevoked   = "the token was issued before its application's tokens were revoked"
	inactiveAudienceDropped = "the token's application is no longer granted its audience"
	inactiveScopeDropped    = "the token's application is no longer granted one of its scopes"
)

// Check verifies tok (Issuer.Verify) and its liveness: not deny-listed by
// jti, its application still exists, is enabled, its tokens were not
// revoked since iat (Application.TokenRevoked), and it is still granted
// the token's audience and every scope. Returns an error only when the
// store cannot tell (the answer must not be a guess either way); that
// error wraps the store's.
//
// A token that fails Verify is inactive with Verify's error text as the
// reason, which never holds the token.
func (c *Checker) Check(ctx context.Context, tok string) (Result, error) {
	claims, err := c.Issuer.Verify(tok)
	if err != nil {
		return Result{Inactive: err.Error()}, nil
	}
	return c.CheckClaims(ctx, claims)
}

// CheckClaims is Check for claims that Issuer.Verify already returned:
// the liveness half alone. A caller that must decide something from the
// verified claims before the store is asked (introspection decides whether
// the caller may see the token at all, so that neither the store's answer
// nor its failure tells it anything, RFC 7662 §4) verifies, decides, then
// calls this. claims must come from Verify.
func (c *Checker) CheckClaims(ctx context.Context, claims *Claims) (Result, error) {
	if c.DenyList.Revoked(claims.JTI) {
		return Result{Inactive: inactiveRevoked}, nil
	}
	client, err := c.Clients.Client(ctx, claims.ClientID)
	if errors.Is(err, authz.ErrNotFound) {
		return Result{Inactive: inactiveDeleted}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("token: looking up application %s: %w", claims.ClientID, err)
	}
	if reason := inactiveReason(client, claims); reason != "" {
		return Result{Inactive: reason}, nil
	}
	return Result{Claims: claims, Client: client}, nil
}

// inactiveReason says why the application client no longer stands behind
// its token with claims, or "" if it does.
func inactiveReason(client *authz.Client, claims *Claims) string {
	app := &client.Application
	if app.Disabled {
		return inactiveDisabled
	}
	if app.TokenRevoked(claims.IssuedAt) {
		return inactiveTokensRevoked
	}
	for i := range client.Grants {
		g := &client.Grants[i]
		if g.API.Identifier != claims.Audience {
			continue
		}
		for _, sc := range claims.Scopes() {
			if !g.Grant.HasScope(sc) {
				return inactiveScopeDropped
			}
		}
		return ""
	}
	return inactiveAudienceDropped
}
