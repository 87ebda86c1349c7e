package oauth

import (
	"context"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// HandleRevoke serves POST /oauth/revoke (RFC 7009). The caller
// authenticates as an application, as at the token endpoint (RFC 7009
// §2.1); failing that is 401 invalid_client. A well-formed request is
// answered 200 with an empty body whatever became of the token (RFC 7009
// §2.2): a token issued to the caller is deny-listed until it expires; an
// invalid or expired token, or one issued to another application, is left
// alone, so that the answer does not tell the caller whether someone else's
// token exists. token_type_hint is accepted and ignored: m2mauth issues
// access tokens only, so even a refresh_token hint is tried as an access
// token (RFC 7009 §2.1 allows extending the search), and
// unsupported_token_type is never answered. If the deny-list cannot be
// written the answer is 503, and the client should retry (RFC 7009 §2.2.1).
func (s *Server) HandleRevoke(w http.ResponseWriter, r *http.Request) {
	req, e := parseTokenParams(w, r)
	if e == nil {
		var caller *authz.Client
		caller, e = s.authenticateClient(r, req.creds)
		if e == nil {
			if e = s.revoke(r.Context(), &caller.Application, req.token, r.RemoteAddr); e == nil {
				h := w.Header()
				h.Set("Cache-Control", "no-store")
				h.Set("Pragma", "no-cache")
				w.WriteHeader(http.StatusOK)
				return
			}
		}
	}
	s.writeFailure(w, e, "revoke the token")
}

// revoke deny-lists tok if it is a valid token issued to caller, and does
// nothing otherwise.
func (s *Server) revoke(ctx context.Context, caller *authz.Application, tok, remoteAddr string) *Error {
	claims, err := s.Issuer.Verify(tok)
	if err != nil {
		s.Log.Debug("revocation: token not valid, nothing to revoke", "client_id", caller.ClientID, "error", err)
		return nil
	}
	if claims.ClientID != caller.ClientID {
		s.Log.Info("revocation: token of another application left alone", "client_id", caller.ClientID, "jti", claims.JTI)
		return nil
	}
	if err := s.DenyList.Revoke(ctx, claims.JTI, time.Unix(claims.Expiry, 0)); err != nil {
		return &Error{Code: ErrServerError, Description: "revoking token: " + err.Error(), Status: http.StatusServiceUnavailable}
	}
	s.Log.Info("access token revoked", "client_id", claims.ClientID, "audience", claims.Audience, "jti", claims.JTI)
	if s.Events != nil {
		s.Events.TokenRevoked(ctx, claims.ClientID, claims.JTI, claims.Audience, remoteAddr)
	}
	return nil
}
