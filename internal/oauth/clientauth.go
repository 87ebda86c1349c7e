package oauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
)

// Client authentication methods (RFC 8414 §2
// token_endpoint_auth_methods_supported values).
const (
	MethodSecretBasic = "client_secret_basic" // RFC 6749 §2.3.1, HTTP Basic
	MethodSecretPost  = "client_secret_post"  // RFC 6749 §2.3.1, in the body
)

// ClientAuthenticator is one client authentication method: the step of
// authenticateClient that checks what the request presented for its
// method. The steps every method shares (the failure limiter first, then a
// well-formed client_id; after the method's check, a disabled application
// and the policy's allowed addresses) are authenticateClient's, so that no
// method skips them. Implementations live in this package, one file each.
type ClientAuthenticator interface {
	// Method is the method's name, as discovery lists it and as readCredentials
	// marks the credentials that use it.
	Method() string
	// authenticate checks c, whose method is Method() and whose client_id
	// is well-formed, and returns the application it authenticates. A
	// refusal is an authFailure (answered invalid_client); any other error
	// is the server's (a store that cannot answer).
	authenticate(ctx context.Context, c credentials) (authenticated, error)
}

// authenticated is what a ClientAuthenticator established.
type authenticated struct {
	client   *authz.Client
	secretID string // the secret used, for its last use; "" if none
	// credentialID is the credential used (private_key_jwt, federated),
	// for its last use; "" if none.
	credentialID string
	// notAfter, when not zero, is the exp of the JWT presented: with
	// Server.FederatedLifetimeFull false, no token issued on this
	// authentication outlives it.
	notAfter time.Time
	// issuer and subject, for a trusted issuer's JWT, are its iss (or
	// SPIFFE trust domain) and sub, for the audit log (FederatedAuthenticated).
	issuer, subject string
	// alg is the JWS algorithm of a private_key_jwt assertion, for the
	// FAPI 2.0 profile's allow-list; "" for other methods.
	alg string
}

// authFailure is a ClientAuthenticator's refusal; its text is the reason
// for the audit log and the debug log, never anything presented.
type authFailure string

func (f authFailure) Error() string { return string(f) }

// SecretAuthenticators returns the client secret methods of s,
// client_secret_basic and client_secret_post: the default when
// Server.ClientAuth is nil.
func SecretAuthenticators(s *Server) []ClientAuthenticator {
	return []ClientAuthenticator{secretAuth{s, MethodSecretBasic}, secretAuth{s, MethodSecretPost}}
}

// AuthMethods lists the methods of s's authenticators, in order: what
// discovery advertises for the token, introspection and revocation
// endpoints, which all authenticate clients with them.
func (s *Server) AuthMethods() []string {
	var out []string
	for _, a := range s.authenticators() {
		out = append(out, a.Method())
	}
	return out
}

func (s *Server) authenticators() []ClientAuthenticator {
	if s.ClientAuth != nil {
		return s.ClientAuth
	}
	s.defaultOnce.Do(func() { s.defaultAuth = SecretAuthenticators(s) })
	return s.defaultAuth
}

// authenticator returns the registered authenticator of method, or nil.
func (s *Server) authenticator(method string) ClientAuthenticator {
	for _, a := range s.authenticators() {
		if a.Method() == method {
			return a
		}
	}
	return nil
}

// secretAuth is client_secret_basic or client_secret_post: the presented
// secret checked against the one stored hash its embedded id names, in
// constant time, and not expired. An unknown client_id or secret id costs
// the same HMAC as a wrong secret, so timing does not tell which
// client_ids exist.
type secretAuth struct {
	s      *Server
	method string
}

func (a secretAuth) Method() string { return a.method }

func (a secretAuth) authenticate(ctx context.Context, c credentials) (authenticated, error) {
	s := a.s
	if c.secret == "" {
		return authenticated{}, authFailure("no client secret")
	}
	secretID, err := clientsecret.Parse(c.secret)
	if err != nil {
		return authenticated{}, authFailure("malformed client secret")
	}
	client, err := s.Clients.Client(ctx, c.clientID)
	if errors.Is(err, authz.ErrNotFound) {
		s.verify(c.secret, dummyHash)
		return authenticated{}, authFailure("unknown client_id")
	}
	if err != nil {
		return authenticated{}, fmt.Errorf("looking up client: %w", err)
	}
	sec := client.Secret(secretID)
	if sec == nil {
		s.verify(c.secret, dummyHash)
		return authenticated{}, authFailure("unknown secret id")
	}
	if !s.verify(c.secret, sec.Hash) {
		return authenticated{}, authFailure("wrong client secret")
	}
	if sec.Expired(s.Now()) {
		return authenticated{}, authFailure("client secret expired")
	}
	return authenticated{client: client, secretID: sec.ID}, nil
}
