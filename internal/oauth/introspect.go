package oauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// DenyList is the set of revoked access tokens (RFC 7009), by jti.
type DenyList interface {
	// Revoked reports whether jti has been revoked.
	Revoked(jti string) bool
	// Revoke adds jti to the deny-list until expiresAt, the token's exp.
	// Returns an error only if the revocation could not be stored.
	Revoke(ctx context.Context, jti string, expiresAt time.Time) error
}

// tokenParams are the parameters of an introspection request (RFC 7662
// §2.1) and of a revocation request (RFC 7009 §2.1): the calling client's
// credentials, the token, and a hint about its type that m2mauth does not
// need (it issues access tokens only) but accepts.
type tokenParams struct {
	creds credentials
	token string
	hint  string
}

// parseTokenParams reads an introspection or revocation request: a form
// or JSON body like the token endpoint's, with client authentication as
// there (RFC 7662 §2.1, RFC 7009 §2.1). A missing token is an
// invalid_request.
func parseTokenParams(w http.ResponseWriter, r *http.Request) (tokenParams, *Error) {
	p, e := readParams(w, r)
	if e != nil {
		return tokenParams{}, e
	}
	var tp tokenParams
	if tp.token, e = p.get("token"); e != nil {
		return tokenParams{}, e
	}
	if tp.hint, e = p.get("token_type_hint"); e != nil {
		return tokenParams{}, e
	}
	if tp.creds, e = readCredentials(r, p); e != nil {
		return tokenParams{}, e
	}
	if tp.token == "" {
		return tokenParams{}, invalidRequest("token is required")
	}
	return tp, nil
}

// Introspection is the answer of the introspection endpoint (RFC 7662
// §2.2). An inactive token is {"active":false} and nothing else; an active
// one carries its claims, times in NumericDate seconds.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Audience  string `json:"aud,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	Expiry    int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	JTI       string `json:"jti,omitempty"`
	TokenType string `json:"token_type,omitempty"`
}

// HandleIntrospect serves POST /oauth/introspect (RFC 7662). The caller
// authenticates as an application, as at the token endpoint (RFC 7662 §2.1);
// failing that is 401 invalid_client. It may introspect the tokens issued
// to itself, and with CanIntrospect (a resource server) any token; other
// tokens are answered inactive, so that the answer tells the caller nothing
// it may not know (RFC 7662 §4). The answer is never cached (no-store).
func (s *Server) HandleIntrospect(w http.ResponseWriter, r *http.Request) {
	req, e := parseTokenParams(w, r)
	if e == nil {
		var caller *authz.Client
		caller, e = s.authenticateClient(r, req.creds)
		if e == nil {
			var out Introspection
			out, e = s.introspect(r.Context(), &caller.Application, req.token)
			if e == nil {
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
	}
	s.writeFailure(w, e, "introspect the token")
}

// writeFailure writes e; a server-side failure is logged with its detail
// and answered without it, as one that could not do what, to be retried.
func (s *Server) writeFailure(w http.ResponseWriter, e *Error, what string) {
	if e.Status >= 500 {
		s.Log.Error("could not "+what, "error", e.Description)
		e = &Error{Code: ErrServerError, Description: "the server could not " + what + "; try again", Status: e.Status}
	}
	writeError(w, e)
}

// introspect decides whether tok is active for caller: a token this server
// issued, unexpired and validly signed (token.Issuer.Verify), that caller
// may see, not revoked by jti, issued to an application that still exists,
// is enabled, has not had its tokens revoked since (TokensNotBefore), and is
// still granted the token's audience and every one of its scopes. An error
// only if the store cannot tell (the answer must not be a guess either way).
func (s *Server) introspect(ctx context.Context, caller *authz.Application, tok string) (Introspection, *Error) {
	inactive := Introspection{}
	claims, err := s.Issuer.Verify(tok)
	if err != nil {
		s.Log.Debug("introspection: token not valid", "client_id", caller.ClientID, "error", err)
		return inactive, nil
	}
	if claims.ClientID != caller.ClientID && !caller.CanIntrospect {
		s.Log.Debug("introspection: caller may not see the token", "client_id", caller.ClientID, "jti", claims.JTI)
		return inactive, nil
	}
	reason, e := s.inactiveReason(ctx, claims)
	if e != nil {
		return inactive, e
	}
	if reason != "" {
		s.Log.Debug("introspection: token inactive", "client_id", claims.ClientID, "jti", claims.JTI, "reason", reason)
		return inactive, nil
	}
	return Introspection{
		Active:    true,
		Scope:     claims.Scope,
		ClientID:  claims.ClientID,
		Subject:   claims.Subject,
		Audience:  claims.Audience,
		Issuer:    claims.Issuer,
		Expiry:    claims.Expiry,
		IssuedAt:  claims.IssuedAt,
		JTI:       claims.JTI,
		TokenType: "Bearer",
	}, nil
}

// inactiveReason says why a verified token is no longer active, or ""
// if it is: its jti is deny-listed, or its application was deleted, is
// disabled, has had every token revoked since the token's iat
// (authz.Application.TokenRevoked), or is no longer granted the token's
// audience or one of its scopes. The reason is for the log only.
func (s *Server) inactiveReason(ctx context.Context, c *token.Claims) (string, *Error) {
	if s.DenyList.Revoked(c.JTI) {
		return "revoked", nil
	}
	owner, err := s.Clients.Client(ctx, c.ClientID)
	if errors.Is(err, authz.ErrNotFound) {
		return "application deleted", nil
	}
	if err != nil {
		return "", &Error{Code: ErrServerError, Description: "looking up client: " + err.Error(), Status: http.StatusServiceUnavailable}
	}
	app := &owner.Application
	if app.Disabled {
		return "application disabled", nil
	}
	if app.TokenRevoked(c.IssuedAt) {
		return "issued before the application's tokens were revoked", nil
	}
	for _, g := range owner.Grants {
		if g.API.Identifier != c.Audience {
			continue
		}
		for _, sc := range c.Scopes() {
			if !g.Grant.HasScope(sc) {
				return "scope no longer granted", nil
			}
		}
		return "", nil
	}
	return "audience no longer granted", nil
}
