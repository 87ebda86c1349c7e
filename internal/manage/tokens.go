package manage

import (
	"context"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// RevokeToken deny-lists any valid access token this server issued,
// whoever holds it, until it expires (RFC 7009 §2 semantics, for an
// administrator). A token that is not valid (malformed, forged, expired,
// from another issuer) is Invalid: an administrator is told that nothing
// was revoked. The token is never logged or audited, only its jti. Needs
// revoke:tokens. Errors: Invalid.
func (s *Service) RevokeToken(ctx context.Context, actor Actor, tok string) (*token.Claims, error) {
	if err := actor.require(authz.ScopeRevokeTokens); err != nil {
		return nil, err
	}
	if tok == "" {
		return nil, invalid("token is required")
	}
	claims, err := s.Verifier.Verify(tok)
	if err != nil {
		return nil, invalid("nothing revoked: not a valid access token of this server: %v", err)
	}
	exp := authz.StoreTime(time.Unix(claims.Expiry, 0))
	err = s.manage(ctx, "token", func(t *txn) error {
		if err := t.RevokeToken(ctx, claims.JTI, exp); err != nil {
			return err
		}
		return t.audit(ctx, actor, "token.revoke", claims.JTI, map[string]any{"client_id": claims.ClientID, "audience": claims.Audience})
	})
	if err != nil {
		return nil, err
	}
	s.DenyList.Add(claims.JTI, exp)
	return claims, nil
}

// maxCutoffWait bounds how long RevokeApplicationTokens waits for the
// cutoff: it is less than a second away, unless the clock jumps.
const maxCutoffWait = time.Second

// RevokeApplicationTokens kills every access token issued to application
// clientID until now (introspection answers inactive, the management API
// 401), while the application can still get new ones. It raises the
// application's TokensNotBefore to now rounded up to the whole second
// (tokens' iat has one-second resolution; see authz.NotBeforeCutoff) and
// returns once that cutoff has passed, at most a second later, so that a
// token asked for after it returns is valid. The cutoff only moves
// forward: a concurrent change of the application never undoes it.
// Resource servers that validate tokens locally still accept the old
// tokens until they expire. Revoking is defensive, so it is allowed on an
// application stronger than the actor. Needs revoke:tokens. Errors:
// NotFound.
func (s *Service) RevokeApplicationTokens(ctx context.Context, actor Actor, clientID string) (time.Time, error) {
	if err := actor.require(authz.ScopeRevokeTokens); err != nil {
		return time.Time{}, err
	}
	now := s.Now()
	cutoff := authz.NotBeforeCutoff(now)
	err := s.manage(ctx, "application", func(t *txn) error {
		if _, err := t.UpdateApplication(ctx, clientID, authz.ApplicationPatch{TokensNotBefore: cutoff, UpdatedAt: authz.StoreTime(now)}); err != nil {
			return err
		}
		return t.audit(ctx, actor, "application.revoke_tokens", clientID, map[string]any{"tokens_not_before": cutoff})
	})
	if err != nil {
		return time.Time{}, err
	}
	if wait := min(cutoff.Sub(now), maxCutoffWait); wait > 0 {
		tm := time.NewTimer(wait)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done(): // the revocation is stored; the caller is gone
		}
	}
	return cutoff, nil
}
