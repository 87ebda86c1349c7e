package manage

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// MaxCredentialsPerApplication bounds how many credentials one application
// holds.
const MaxCredentialsPerApplication = 10

// maxCredentialJWKSBytes bounds an inline JWKS, and maxCredentialKeys the
// keys in it.
const (
	maxCredentialJWKSBytes = 64 << 10
	maxCredentialKeys      = 20
)

// CredentialAlgs are the JWS algorithms a credential's key may be for
// (its "alg", when it has one): the client assertion algorithms the server
// may accept (RFC 7518; never none, never HMAC).
var CredentialAlgs = []string{"PS256", "ES256", "EdDSA", "RS256"}

// NewCredential is what CreateCredential adds: Type is authz.CredentialJWKS
// with JWKS, or authz.CredentialJWKSURI with JWKSURI.
type NewCredential struct {
	Type    string
	JWKS    json.RawMessage // {"keys": [...]}, public keys only
	JWKSURI string          // https
	// ExpiresIn sets when the credential expires, in seconds; nil: never.
	ExpiresIn *int64
}

// config validates in and returns the Config to store.
func (in NewCredential) config() ([]byte, error) {
	switch in.Type {
	case authz.CredentialJWKS:
		if in.JWKSURI != "" {
			return nil, invalid("a jwks credential takes jwks, not jwks_uri")
		}
		if len(in.JWKS) == 0 {
			return nil, invalid("jwks is required")
		}
		if len(in.JWKS) > maxCredentialJWKSBytes {
			return nil, invalid("jwks is larger than %d bytes", maxCredentialJWKSBytes)
		}
		set, err := jwks.Parse(in.JWKS)
		if err != nil {
			return nil, invalid("jwks: %v", err)
		}
		if len(set.Keys) > maxCredentialKeys {
			return nil, invalid("jwks holds more than %d keys", maxCredentialKeys)
		}
		for i, k := range set.Keys {
			if !fitsCredentialAlg(k) {
				return nil, invalid("jwks key %d: its alg or type fits none of %v", i, CredentialAlgs)
			}
		}
		// Stored as parsed and written back: public members only.
		raw, err := json.Marshal(struct {
			Keys any `json:"keys"`
		}{set.Keys})
		if err != nil {
			return nil, err
		}
		return json.Marshal(authz.KeyCredentialConfig{JWKS: raw})
	case authz.CredentialJWKSURI:
		if len(in.JWKS) != 0 {
			return nil, invalid("a jwks_uri credential takes jwks_uri, not jwks")
		}
		if in.JWKSURI == "" {
			return nil, invalid("jwks_uri is required")
		}
		if len(in.JWKSURI) > 2048 {
			return nil, invalid("jwks_uri is longer than 2048 bytes")
		}
		if err := jwks.CheckURL(in.JWKSURI, false); err != nil {
			return nil, invalid("jwks_uri must be an absolute https URL without user info or fragment")
		}
		return json.Marshal(authz.KeyCredentialConfig{JWKSURI: in.JWKSURI})
	}
	return nil, invalid("type must be %q or %q", authz.CredentialJWKS, authz.CredentialJWKSURI)
}

func fitsCredentialAlg(k jwks.Key) bool {
	if k.Algorithm != "" {
		return slices.Contains(CredentialAlgs, k.Algorithm) && jwks.Fits(k, k.Algorithm)
	}
	return slices.ContainsFunc(CredentialAlgs, func(alg string) bool { return jwks.Fits(k, alg) })
}

// CreateCredential adds a secretless credential to application clientID:
// public keys inline (jwks) or by https URL (jwks_uri) that verify its
// client assertions (private_key_jwt), optionally expiring. Needs
// update:applications, and the application may hold no management scope
// the actor lacks: a credential of a stronger application would make the
// actor that application. At most MaxCredentialsPerApplication
// credentials, counted in the same transaction as the insert; audited in
// it. Errors: Invalid, Forbidden, NotFound, TooMany.
func (s *Service) CreateCredential(ctx context.Context, actor Actor, clientID string, in NewCredential) (authz.Credential, error) {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return authz.Credential{}, err
	}
	if in.ExpiresIn != nil && (*in.ExpiresIn <= 0 || *in.ExpiresIn > MaxSecretExpiry) {
		return authz.Credential{}, invalid("expires_in must be from 1 to %d seconds", MaxSecretExpiry)
	}
	config, err := in.config()
	if err != nil {
		return authz.Credential{}, err
	}
	var out authz.Credential
	err = s.manage(ctx, "application", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		existing, err := t.ListCredentials(ctx, clientID)
		if err != nil {
			return err
		}
		if len(existing) >= MaxCredentialsPerApplication {
			return &Error{Kind: TooMany, Detail: "the application already holds 10 credentials; delete one first"}
		}
		id, err := authz.NewID(s.Rand, "cred_")
		if err != nil {
			return err
		}
		now := authz.StoreTime(s.now())
		c := authz.Credential{ID: id, ClientID: clientID, Type: in.Type, Config: config, CreatedAt: now}
		details := map[string]any{"credential_id": id, "type": in.Type}
		if in.ExpiresIn != nil {
			c.ExpiresAt = now.Add(time.Duration(*in.ExpiresIn) * time.Second)
			details["expires_at"] = c.ExpiresAt
		}
		if in.Type == authz.CredentialJWKSURI {
			details["jwks_uri"] = in.JWKSURI
		}
		if err := t.CreateCredential(ctx, c); err != nil {
			return err
		}
		if err := t.audit(ctx, actor, "credential.create", clientID, details); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, err
}

// ListCredentials returns the credentials of application clientID. Needs
// read:applications. Errors: NotFound.
func (s *Service) ListCredentials(ctx context.Context, actor Actor, clientID string) ([]authz.Credential, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetApplication(ctx, clientID); err != nil {
		return nil, storeErr(err, "application")
	}
	list, err := s.Store.ListCredentials(ctx, clientID)
	return list, storeErr(err, "application")
}

// DeleteCredential removes credential id of application clientID; it
// stops working on its next use. Needs update:applications; the
// application may hold no management scope the actor lacks. The last
// administrator's last usable secret or credential cannot be deleted.
// Errors: Forbidden, NotFound, LastAdministrator.
func (s *Service) DeleteCredential(ctx context.Context, actor Actor, clientID, id string) error {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return err
	}
	return s.manage(ctx, "credential", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		if err := s.keepAdministrator(ctx, t, func() error { return t.DeleteCredential(ctx, clientID, id) }); err != nil {
			return err
		}
		return t.audit(ctx, actor, "credential.delete", clientID, map[string]any{"credential_id": id})
	})
}
