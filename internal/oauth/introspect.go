package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
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
// invalid_request. With an error, tp.creds holds what readCredentials
// saw, if it ran.
func parseTokenParams(w http.ResponseWriter, r *http.Request) (tokenParams, *Error) {
	var buf [8]param // the request's parameters, on the stack
	p, e := readParams(w, r, buf[:0])
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
		return tp, e
	}
	if tp.token == "" {
		return tp, invalidRequest("token is required")
	}
	return tp, nil
}

// Introspection is the answer of the introspection endpoint (RFC 7662
// §2.2). An inactive token is {"active":false} and nothing else; an active
// one carries its claims, times in NumericDate seconds.
type Introspection struct {
	Active   bool   `json:"active"`
	Scope    string `json:"scope,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Subject  string `json:"sub,omitempty"`
	Audience string `json:"aud,omitempty"`
	Issuer   string `json:"iss,omitempty"`
	Expiry   int64  `json:"exp,omitempty"`
	IssuedAt int64  `json:"iat,omitempty"`
	JTI      string `json:"jti,omitempty"`
	// TokenType is DPoP for a DPoP-bound token (RFC 9449 §6.2), else
	// Bearer (RFC 7662 §2.2).
	TokenType string `json:"token_type,omitempty"`
	// Confirmation is the token's cnf (RFC 7800 §3.1): the DPoP key's
	// thumbprint (RFC 9449 §6.2) or the client certificate's (RFC 8705
	// §3.2), so that a resource server introspecting the token can check
	// the sender; absent for a bearer token.
	Confirmation token.Confirmation `json:"cnf,omitzero"`
	// extra are the token's custom claims (its grant's) as a JSON object
	// sorted by name, answered as extension members (RFC 7662 §2.2); their
	// names never clash with the members above (authz.ReservedClaims). ""
	// for none. A string keeps Introspection comparable.
	extra string
}

// MarshalJSON writes the members, then extra's.
func (in Introspection) MarshalJSON() ([]byte, error) {
	type plain Introspection
	b, err := json.Marshal(plain(in))
	if err != nil || len(in.extra) <= 2 {
		return b, err
	}
	b = append(b[:len(b)-1], ',')
	return append(b, in.extra[1:]...), nil
}

// HandleIntrospect serves POST /oauth/introspect (RFC 7662). The caller
// authenticates as an application, as at the token endpoint (RFC 7662
// §2.1); failing that is 401 invalid_client. The answer tells the caller
// nothing it may not know (RFC 7662 §4): it may see
//
//   - the tokens issued to itself;
//   - a token issued to another application if its audience is one of the
//     caller's introspect audiences (authz.Application.MayIntrospect: a
//     resource server sees the tokens for its API);
//   - never a token for the management API (authz.ManagementAudience),
//     not even its own holder: the management API checks its bearer
//     tokens itself, so no resource server needs to introspect them, and
//     the endpoint must not help probe an administrator's token.
//
// A token it may see is active if token.Checker says it is live: issued
// by this server, validly signed and unexpired, not revoked, and still
// backed by an existing, enabled application granted its audience and
// scopes. Every other token, the ones the caller may not see included, is
// {"active":false} and nothing else, the answer to a string that is no
// token at all. If the store cannot tell whether a token is live, the
// answer is an error (503, or 500), never a guess. The answer is never
// cached (no-store). A token introspected before is not verified again
// (verifyCached): only its signature check and parse are saved, and every
// rule above runs again on each request with the live state.
func (s *Server) HandleIntrospect(w http.ResponseWriter, r *http.Request) {
	req, e := parseTokenParams(w, r)
	if e != nil {
		s.writeFailure(w, e, req.creds, "introspect the token")
		return
	}
	caller, err := s.authenticateClient(r, req.creds)
	if err == nil {
		var out Introspection
		if out, err = s.introspect(r.Context(), &caller.Application, req.token); err == nil {
			writeJSON(w, http.StatusOK, out)
			return
		}
	}
	s.writeFailure(w, err, req.creds, "introspect the token")
}

// mayIntrospect reports whether caller may learn whether the token with
// claims is active (RFC 7662 §4); see HandleIntrospect.
func mayIntrospect(caller *authz.Application, claims *token.Claims) bool {
	if claims.Audience == authz.ManagementAudience {
		return false
	}
	return claims.ClientID == caller.ClientID || caller.MayIntrospect(claims.Audience)
}

// introspect answers whether tok is active for caller. Whether the caller
// may see the token is decided from its verified claims before the store
// is asked, so that neither the time the answer takes nor a failing store
// tells the caller anything about a token it may not see. An error only
// if the store cannot tell (the answer must not be a guess either way).
func (s *Server) introspect(ctx context.Context, caller *authz.Application, tok string) (Introspection, error) {
	inactive := Introspection{}
	claims, extra, err := s.verifyCached(tok)
	if err != nil {
		s.Log.Debug("introspection: token not valid", "client_id", caller.ClientID, "error", err)
		return inactive, nil
	}
	if !mayIntrospect(caller, claims) {
		s.Log.Debug("introspection: caller may not see the token", "client_id", caller.ClientID, "audience", claims.Audience, "jti", claims.JTI)
		return inactive, nil
	}
	checker := token.Checker{Issuer: s.Issuer, DenyList: s.DenyList, Clients: s.Clients}
	res, err := checker.CheckClaims(ctx, claims)
	if err != nil {
		return inactive, err
	}
	if res.Inactive != "" {
		s.Log.Debug("introspection: token inactive", "client_id", caller.ClientID, "jti", claims.JTI, "reason", res.Inactive)
		return inactive, nil
	}
	var cnf token.Confirmation
	if claims.Confirmation != nil {
		cnf = *claims.Confirmation
	}
	return Introspection{
		Confirmation: cnf,
		extra:        extra,
		Active:       true,
		Scope:        claims.Scope,
		ClientID:     claims.ClientID,
		Subject:      claims.Subject,
		Audience:     claims.Audience,
		Issuer:       claims.Issuer,
		Expiry:       claims.Expiry,
		IssuedAt:     claims.IssuedAt,
		JTI:          claims.JTI,
		TokenType:    tokenType(claims.Confirmation),
	}, nil
}

// verifyCached is s.Issuer.Verify(tok) with the custom claims' JSON
// (Introspection.extra), answered from s's cache of verified tokens when
// tok was verified before: then only what can change since is checked
// again, exp at s.Now (RFC 7519 §4.1.4) and the signing key still
// published, and no signature is verified. Returns Verify's error for a
// token that is not valid, or one if the custom claims do not encode.
func (s *Server) verifyCached(tok string) (*token.Claims, string, error) {
	cache := s.verifiedTokenCache()
	key := sha256.Sum256([]byte(tok))
	now := s.Now()
	if claims, kid, extra, ok := cache.get(key, now); ok {
		if now.Unix() >= claims.Expiry {
			return nil, "", token.ErrExpired
		}
		if !s.Issuer.Publishes(kid) {
			return nil, "", token.ErrUnknownKey
		}
		return claims, extra, nil
	}
	claims, err := s.Issuer.Verify(tok)
	if err != nil {
		return nil, "", err
	}
	var extra []byte
	if m, err := claims.Extra(); err != nil { // Verify read this payload; it cannot fail to decode
		return nil, "", err
	} else if len(m) > 0 {
		if extra, err = json.Marshal(m); err != nil {
			return nil, "", err
		}
	}
	if kid := headerKID(tok); kid != "" {
		cache.put(key, kid, claims, string(extra), now)
	}
	return claims, string(extra), nil
}
