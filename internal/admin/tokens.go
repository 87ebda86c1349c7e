package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// DenyList is the set of revoked access tokens (RFC 7009), by jti.
type DenyList interface {
	// Revoked reports whether jti has been revoked.
	Revoked(jti string) bool
	// Revoke adds jti to the deny-list until expiresAt, the token's exp.
	// Returns an error only if the revocation could not be stored.
	Revoke(ctx context.Context, jti string, expiresAt time.Time) error
}

// RevokeTokenRequest is the body of POST /admin/v1/tokens/revoke.
type RevokeTokenRequest struct {
	Token string `json:"token"`
}

// RevokedToken is the answer to POST /admin/v1/tokens/revoke: the revoked
// token's jti and application, and when its deny-list entry goes (its exp).
type RevokedToken struct {
	Revoked   bool      `json:"revoked"`
	JTI       string    `json:"jti"`
	ClientID  string    `json:"client_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RevokeToken serves POST /admin/v1/tokens/revoke {"token": "…"}: revokes
// any valid access token this server issued, whoever holds it, until it
// expires; 200 with the token's jti. A token that is not valid (malformed,
// forged, expired, from another issuer) is 400: unlike RFC 7009 §2.2 at
// /oauth/revoke, an administrator is told that nothing was revoked. The
// token itself is never logged or audited, only its jti.
func (h *Handler) RevokeToken(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req RevokeTokenRequest
	if p := decode(w, r, &req); p != nil {
		return p
	}
	if req.Token == "" {
		return invalid("token is required")
	}
	claims, err := h.Verifier.Verify(req.Token)
	if err != nil {
		return invalid("nothing revoked: not a valid access token of this server: %v", err)
	}
	exp := time.Unix(claims.Expiry, 0).UTC()
	if err := h.DenyList.Revoke(r.Context(), claims.JTI, exp); err != nil {
		return storeProblem(err, "token")
	}
	h.audit(r, actor, "token.revoke", claims.JTI, map[string]any{"client_id": claims.ClientID, "audience": claims.Audience})
	writeJSON(w, http.StatusOK, RevokedToken{Revoked: true, JTI: claims.JTI, ClientID: claims.ClientID, ExpiresAt: exp})
	return nil
}

// RevokedTokens is the answer to POST
// /admin/v1/applications/{client_id}/revoke-tokens.
type RevokedTokens struct {
	ClientID string `json:"client_id"`
	// TokensNotBefore is the cutoff: tokens issued before it are revoked,
	// tokens issued at or after it are valid (see authz.NotBeforeCutoff).
	TokensNotBefore time.Time `json:"tokens_not_before"`
}

// maxCutoffWait bounds how long RevokeApplicationTokens waits for the
// cutoff: it is less than a second away, unless the clock jumps.
const maxCutoffWait = time.Second

// RevokeApplicationTokens serves POST
// /admin/v1/applications/{client_id}/revoke-tokens: every access token
// issued to the application until now stops working (introspection answers
// inactive, the management API 401), while the application can still get
// new ones. It sets the application's TokensNotBefore to now rounded up to
// the whole second (tokens' iat has one-second resolution; see
// authz.NotBeforeCutoff) and answers once that cutoff has passed, at most a
// second later, so that a token the application asks for after the answer
// is valid. Resource servers that validate tokens locally still accept the
// old tokens until they expire.
func (h *Handler) RevokeApplicationTokens(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	id := r.PathValue("client_id")
	app, err := h.Store.GetApplication(r.Context(), id)
	if err != nil {
		return storeProblem(err, "application")
	}
	now := h.Now()
	cutoff := authz.NotBeforeCutoff(now)
	app.TokensNotBefore = cutoff
	app.UpdatedAt = authz.StoreTime(now)
	if err := h.Store.UpdateApplication(r.Context(), app); err != nil {
		return storeProblem(err, "application")
	}
	h.audit(r, actor, "application.revoke_tokens", id, map[string]any{"tokens_not_before": cutoff})
	if wait := min(cutoff.Sub(now), maxCutoffWait); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The revocation is stored; the caller is gone.
			return nil
		}
	}
	writeJSON(w, http.StatusOK, RevokedTokens{ClientID: id, TokensNotBefore: cutoff})
	return nil
}
