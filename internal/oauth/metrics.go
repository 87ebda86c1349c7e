package oauth

import (
	"errors"
	"net/http"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TokenMetrics counts token endpoint requests (metrics.Metrics).
type TokenMetrics interface {
	// TokenRequest counts one request. result is "issued", the OAuth error
	// code answered (RFC 6749 §5.2, RFC 8707 §2), "store_unavailable" for a
	// 503 or "server_error" for another 5xx. authMethod is
	// client_secret_basic, client_secret_post or none. audience is the API
	// the token was issued or authorized for, else the one asked for ("" if
	// none); clientID is the client once it authenticated, else "".
	TokenRequest(result, grantType, authMethod, audience, clientID string)
}

// tokenOutcome is what a token request established before it ended.
type tokenOutcome struct {
	clientID string // the authenticated client; "" before
	audience string // the authorized API; "" before
}

// countToken reports a finished token request to s.Metrics; err is what
// the pipeline returned (nil: issued).
func (s *Server) countToken(req tokenRequest, out tokenOutcome, err error) {
	if s.Metrics == nil {
		return
	}
	aud := out.audience
	if aud == "" {
		aud = req.audience
	}
	s.Metrics.TokenRequest(tokenResult(err), req.grantType, authMethod(req.creds), aud, out.clientID)
}

// tokenResult names the outcome as writeFailure answers it.
func tokenResult(err error) string {
	if err == nil {
		return "issued"
	}
	e, ok := errors.AsType[*Error](err)
	switch {
	case ok && e.Status < 500:
		return e.Code
	case errors.Is(err, authz.ErrUnavailable), ok && e.Status == http.StatusServiceUnavailable:
		return "store_unavailable"
	}
	return ErrServerError
}

// authMethod names the client authentication method a request used
// (RFC 8414 §2 token_endpoint_auth_methods_supported values).
func authMethod(c credentials) string {
	switch {
	case c.method != "":
		return c.method
	case c.basic:
		return MethodSecretBasic
	case c.clientID != "":
		return MethodSecretPost
	}
	return "none"
}
