package admin

import (
	"net/http"
	"time"
)

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
// any valid access token this server issued until it expires; 200 with
// the token's jti, 400 if the token is not valid.
func (h *Handler) RevokeToken(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req RevokeTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	claims, err := h.Manage.RevokeToken(r.Context(), *actor, req.Token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RevokedToken{Revoked: true, JTI: claims.JTI, ClientID: claims.ClientID, ExpiresAt: time.Unix(claims.Expiry, 0).UTC()})
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

// RevokeApplicationTokens serves POST
// /admin/v1/applications/{client_id}/revoke-tokens: every access token
// issued to the application until now stops working; the answer comes once
// the whole-second cutoff has passed (manage.Service.RevokeApplicationTokens).
func (h *Handler) RevokeApplicationTokens(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	id := r.PathValue("client_id")
	cutoff, err := h.Manage.RevokeApplicationTokens(r.Context(), *actor, id)
	if err != nil {
		return err
	}
	if r.Context().Err() != nil {
		return nil // the revocation is stored; the caller is gone
	}
	writeJSON(w, http.StatusOK, RevokedTokens{ClientID: id, TokensNotBefore: cutoff})
	return nil
}
