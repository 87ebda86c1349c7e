package manage

import (
	"context"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// MaxSecretsPerApplication bounds how many secrets one application holds.
const MaxSecretsPerApplication = 10

// MaxSecretExpiry bounds expires_in and expire_others_in: ten years, in
// seconds.
const MaxSecretExpiry = 10 * 365 * 24 * 3600

// NewSecret is what CreateSecret adds. Both fields are in seconds.
type NewSecret struct {
	// ExpiresIn sets when the new secret expires; nil: never.
	ExpiresIn *int64
	// ExpireOthersIn sets when the application's other secrets expire
	// ("keep the old one 24 h"): 0 expires them now; nil leaves them. An
	// earlier expiry already set is kept.
	ExpireOthersIn *int64
}

// CreatedSecret is a new secret with the only copy of it that will ever be
// shown.
type CreatedSecret struct {
	Secret       authz.Secret
	ClientSecret string
}

// CreateSecret adds a client secret to application clientID, optionally
// expiring, and optionally sets an expiry on the others, so that a secret
// is replaced with an overlap and no downtime; all in one transaction.
// Needs update:applications, and the application may hold no management
// scope the actor lacks: a secret of a stronger application would make the
// actor that application. At most MaxSecretsPerApplication secrets, counted
// in the same transaction as the insert. Errors: Invalid, Forbidden,
// NotFound, TooMany.
func (s *Service) CreateSecret(ctx context.Context, actor Actor, clientID string, in NewSecret) (CreatedSecret, error) {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return CreatedSecret{}, err
	}
	if in.ExpiresIn != nil && (*in.ExpiresIn <= 0 || *in.ExpiresIn > MaxSecretExpiry) {
		return CreatedSecret{}, invalid("expires_in must be from 1 to %d seconds", MaxSecretExpiry)
	}
	if in.ExpireOthersIn != nil && (*in.ExpireOthersIn < 0 || *in.ExpireOthersIn > MaxSecretExpiry) {
		return CreatedSecret{}, invalid("expire_others_in must be from 0 to %d seconds", MaxSecretExpiry)
	}
	var out CreatedSecret
	err := s.manage(ctx, "application", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		existing, err := t.ListSecrets(ctx, clientID)
		if err != nil {
			return err
		}
		if len(existing) >= MaxSecretsPerApplication {
			return &Error{Kind: TooMany, Detail: "the application already holds 10 secrets; delete one first"}
		}
		now := s.now()
		var expires time.Time
		if in.ExpiresIn != nil {
			expires = now.Add(time.Duration(*in.ExpiresIn) * time.Second)
		}
		sec, plain, err := s.newSecret(clientID, now, expires)
		if err != nil {
			return err
		}
		details := map[string]any{"secret_id": sec.ID}
		if !expires.IsZero() {
			details["expires_at"] = expires
		}
		if in.ExpireOthersIn != nil {
			at := now.Add(time.Duration(*in.ExpireOthersIn) * time.Second)
			err = t.RotateSecret(ctx, sec, at)
			details["others_expire_at"] = at
		} else {
			err = t.CreateSecret(ctx, sec)
		}
		if err != nil {
			return err
		}
		if err := t.audit(ctx, actor, "secret.create", clientID, details); err != nil {
			return err
		}
		out = CreatedSecret{Secret: sec, ClientSecret: plain}
		return nil
	})
	return out, err
}

// ListSecrets returns the secrets of application clientID (prefixes,
// dates, last use; never a secret). Needs read:applications. Errors:
// NotFound.
func (s *Service) ListSecrets(ctx context.Context, actor Actor, clientID string) ([]authz.Secret, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetApplication(ctx, clientID); err != nil {
		return nil, storeErr(err, "application")
	}
	list, err := s.Store.ListSecrets(ctx, clientID)
	return list, storeErr(err, "application")
}

// DeleteSecret removes secret secretID of application clientID; it stops
// working on its next use. Needs update:applications; the application may
// hold no management scope the actor lacks. The last administrator's last
// usable secret cannot be deleted. Errors: Forbidden, NotFound,
// LastAdministrator.
func (s *Service) DeleteSecret(ctx context.Context, actor Actor, clientID, secretID string) error {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return err
	}
	return s.manage(ctx, "secret", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		if err := s.keepAdministrator(ctx, t, func() error { return t.DeleteSecret(ctx, clientID, secretID) }); err != nil {
			return err
		}
		return t.audit(ctx, actor, "secret.delete", clientID, map[string]any{"secret_id": secretID})
	})
}
