package fake

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Events is an oauth.Events that records what it is told, in the order it
// was told. It is safe for concurrent use.
type Events struct {
	mu        sync.Mutex
	failures  []AuthFailure
	uses      []SecretUse
	issued    []Issued
	revoked   []Revoked
	credUses  []CredentialUse
	federated []Federated
}

// AuthFailure is one failed client authentication (ClientAuthFailed).
type AuthFailure struct{ ClientID, RemoteAddr, Reason string }

// SecretUse is one successful authentication with a secret (SecretUsed).
type SecretUse struct {
	ClientID, SecretID string
	At                 time.Time
}

// Issued is one access token issued (TokenIssued).
type Issued struct {
	ClientID, Audience, JTI string
	At                      time.Time
	Quota                   bool
}

// Revoked is one token an application revoked (TokenRevoked).
type Revoked struct{ ClientID, JTI, Audience, RemoteAddr string }

// ClientAuthFailed records a failed client authentication.
func (e *Events) ClientAuthFailed(_ context.Context, clientID, remoteAddr, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures = append(e.failures, AuthFailure{clientID, remoteAddr, reason})
}

// SecretUsed records a secret's use.
func (e *Events) SecretUsed(clientID, secretID string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.uses = append(e.uses, SecretUse{clientID, secretID, at})
}

// TokenIssued records an issued token.
func (e *Events) TokenIssued(clientID, audience, jti string, at time.Time, quota bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.issued = append(e.issued, Issued{clientID, audience, jti, at, quota})
}

// TokenRevoked records a token revoked by its application.
func (e *Events) TokenRevoked(_ context.Context, clientID, jti, audience, remoteAddr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.revoked = append(e.revoked, Revoked{clientID, jti, audience, remoteAddr})
}

// AuthFailures returns the failed client authentications recorded so far.
func (e *Events) AuthFailures() []AuthFailure {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.failures)
}

// SecretUses returns the secrets' uses recorded so far.
func (e *Events) SecretUses() []SecretUse {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.uses)
}

// TokensIssued returns the issued tokens recorded so far.
func (e *Events) TokensIssued() []Issued {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.issued)
}

// TokensRevoked returns the revocations recorded so far.
func (e *Events) TokensRevoked() []Revoked {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.revoked)
}

// CredentialUse is one successful authentication with a credential
// (CredentialUsed).
type CredentialUse struct {
	ClientID, CredentialID string
	At                     time.Time
}

// Federated is one authentication by a trusted issuer's JWT
// (FederatedAuthenticated).
type Federated struct{ ClientID, CredentialID, Issuer, Subject, RemoteAddr string }

// CredentialUsed records a credential's use.
func (e *Events) CredentialUsed(clientID, credentialID string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.credUses = append(e.credUses, CredentialUse{clientID, credentialID, at})
}

// FederatedAuthenticated records an authentication by a trusted issuer's JWT.
func (e *Events) FederatedAuthenticated(_ context.Context, clientID, credentialID, issuer, subject, remoteAddr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.federated = append(e.federated, Federated{clientID, credentialID, issuer, subject, remoteAddr})
}

// CredentialUses returns the credentials' uses recorded so far.
func (e *Events) CredentialUses() []CredentialUse {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.credUses)
}

// FederatedAuthentications returns the federated authentications recorded
// so far.
func (e *Events) FederatedAuthentications() []Federated {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.federated)
}
