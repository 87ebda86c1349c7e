package oauth

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
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
// unsupported_token_type is never answered. A client over its cap of
// revocations (RevocationCap) is answered 429 temporarily_unavailable with
// Retry-After instead. If the deny-list cannot be
// written the answer is a server_error: 503 with Retry-After if the store
// could not be reached (RFC 7009 §2.2.1: the client should retry), else
// 500.
func (s *Server) HandleRevoke(w http.ResponseWriter, r *http.Request) {
	req, e := parseTokenParams(w, r)
	if e != nil {
		s.writeFailure(w, e, req.creds, "revoke the token")
		return
	}
	caller, err := s.authenticateClient(r, req.creds)
	if err == nil {
		if err = s.revoke(r.Context(), &caller.Application, req.token, s.clientAddr(r)); err == nil {
			h := w.Header()
			h.Set("Cache-Control", "no-store")
			h.Set("Pragma", "no-cache")
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	s.writeFailure(w, err, req.creds, "revoke the token")
}

// RevocationCap bounds how many tokens each client may revoke
// (denylist.Cap).
type RevocationCap interface {
	// Take counts one revocation by clientID and reports ok if it is
	// within the cap; otherwise it counts nothing and returns how long
	// until it will be.
	Take(clientID string) (retryAfter time.Duration, ok bool)
}

// tooManyRevocations is the answer to a revocation over the client's cap:
// 429 with Retry-After and an RFC 6749 §5.2 body. RFC 7009 §2.2 answers
// 200 to every well-formed request; this is the one exception, so that a
// client cannot grow the deny-list without bound (RFC 7009 §2.2.1 lets
// the endpoint refuse a request it cannot serve now).
func tooManyRevocations(retryAfter time.Duration) *Error {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	return &Error{
		Code:        ErrTemporarilyUnavailable,
		Description: "too many tokens revoked by this client; try again in " + strconv.FormatInt(secs, 10) + " s",
		Status:      http.StatusTooManyRequests,
		RetryAfter:  retryAfter,
	}
}

// revoke deny-lists tok if it is a valid token issued to caller, and does
// nothing otherwise. Returns the deny-list's error, wrapped, if it cannot
// be written, or tooManyRevocations if the caller is over its cap (only a
// revocation that would write the deny-list counts).
func (s *Server) revoke(ctx context.Context, caller *authz.Application, tok, remoteAddr string) error {
	claims, err := s.Issuer.Verify(tok)
	if err != nil {
		s.Log.Debug("revocation: token not valid, nothing to revoke", "client_id", caller.ClientID, "error", err)
		return nil
	}
	if claims.ClientID != caller.ClientID {
		s.Log.Info("revocation: token of another application left alone", "client_id", caller.ClientID, "jti", claims.JTI)
		return nil
	}
	if s.RevocationCap != nil {
		if retryAfter, ok := s.RevocationCap.Take(caller.ClientID); !ok {
			s.Log.Debug("revocation: over the client's cap", "client_id", caller.ClientID, "retry_after", retryAfter)
			return tooManyRevocations(retryAfter)
		}
	}
	if err := s.DenyList.Revoke(ctx, claims.JTI, time.Unix(claims.Expiry, 0)); err != nil {
		return fmt.Errorf("revoking token %s: %w", claims.JTI, err)
	}
	s.Log.Info("access token revoked", "client_id", claims.ClientID, "audience", claims.Audience, "jti", claims.JTI)
	if s.Events != nil {
		s.Events.TokenRevoked(ctx, claims.ClientID, claims.JTI, claims.Audience, remoteAddr)
	}
	return nil
}
