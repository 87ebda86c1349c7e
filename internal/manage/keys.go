package manage

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// ListKeys returns every signing key, oldest first, without private
// material. Needs read:keys.
func (s *Service) ListKeys(ctx context.Context, actor Actor) ([]authz.SigningKey, error) {
	if err := actor.require(authz.ScopeReadKeys); err != nil {
		return nil, err
	}
	keys, err := s.SigningKeys.List(ctx)
	return keys, storeErr(err, "signing keys")
}

// RotateKeys rotates the signing keys of alg ("" for every algorithm in
// use) at once: the next key becomes active, the active key retires and a
// new next key is made. Each rotation is audited once it is stored, even if
// another algorithm's then fails.
//
// Rotations by hand are bounded, so that calling this in a loop cannot
// break resource servers. Without force, a rotation is refused (Conflict,
// nothing rotated) while an algorithm to rotate has a next key younger than
// the JWKS max-age (token.JWKSMaxAge, 300 s): resource servers honouring
// the max-age may not have fetched it yet. It is refused too if it would
// leave more than token.MaxRetiredKeys retired keys of an algorithm while
// the oldest may still have valid tokens. With force (an operator's
// explicit choice, audited as "force": true) both checks are skipped, and
// the oldest retired keys over the cap are deleted early: tokens they
// signed stop verifying. The JWKS stays bounded either way. Needs
// rotate:keys. Errors: Invalid (an unsupported alg), NotFound (no key in
// use for alg), Conflict (refused as above).
func (s *Service) RotateKeys(ctx context.Context, actor Actor, alg string, force bool) error {
	if err := actor.require(authz.ScopeRotateKeys); err != nil {
		return err
	}
	if alg != "" && !authz.ValidSigningAlg(alg) {
		return invalid("alg must be one of %s", strings.Join(authz.SigningAlgs, ", "))
	}
	opts := token.RotateOptions{MinNextAge: token.JWKSMaxAge * time.Second}
	if force {
		opts = token.RotateOptions{EvictEarly: true}
	}
	rotations, err := s.SigningKeys.Rotate(ctx, alg, opts)
	if len(rotations) > 0 {
		// The rotation is the key store's own compare-and-set; its audit
		// follows in a transaction of its own.
		aerr := s.manage(ctx, "audit", func(t *txn) error {
			for _, rot := range rotations {
				details := map[string]any{
					"alg": rot.Alg, "retired": rot.Retired, "activated": rot.Activated, "next": rot.Next,
					"remove_after": rot.RemoveAfter.UTC().Format(time.RFC3339), "force": force,
				}
				if len(rot.Evicted) > 0 {
					details["evicted"], details["evicted_early"] = rot.Evicted, rot.EarlyEvicted
				}
				if err := t.audit(ctx, actor, "key.rotate", rot.Alg, details); err != nil {
					return err
				}
			}
			return nil
		})
		if aerr != nil {
			s.Log.Error("key rotation done but not audited", "error", aerr)
		}
	}
	if err != nil {
		var refused *token.RefusedError
		switch {
		case errors.As(err, &refused):
			return refusedRotation(refused, s.now())
		case errors.Is(err, authz.ErrNotFound):
			return notFound("signing keys for " + alg)
		}
		return storeErr(err, "signing keys")
	}
	return nil
}

// refusedRotation is the Conflict a refused rotation answers, saying why,
// until when, and how to override it.
func refusedRotation(e *token.RefusedError, now time.Time) error {
	until := e.Until.UTC().Format(time.RFC3339)
	switch e.Reason {
	case token.RefusedNextTooYoung:
		return conflict("nothing rotated: the next %s key was published %d s ago, less than the JWKS max-age (%d s), so resource servers may not have it yet; rotate again after %s, or pass force to rotate now",
			e.Alg, int(now.Sub(e.Since).Seconds()), token.JWKSMaxAge, until)
	default:
		return conflict("nothing rotated: %s already has %d retired keys, and the oldest may still have valid tokens until %s; pass force to remove it early (its tokens then stop verifying)",
			e.Alg, token.MaxRetiredKeys, until)
	}
}

// ListAudit returns one page of audit events matching f, newest first.
// Needs read:audit.
func (s *Service) ListAudit(ctx context.Context, actor Actor, f authz.AuditFilter, p authz.Page) ([]authz.AuditEvent, string, error) {
	if err := actor.require(authz.ScopeReadAudit); err != nil {
		return nil, "", err
	}
	list, next, err := s.Store.ListAudit(ctx, f, p)
	return list, next, storeErr(err, "cursor")
}

// ListUsage returns the issuance counters of application clientID since
// the given hour (zero: 24 hours ago). Needs read:applications. Errors:
// NotFound.
func (s *Service) ListUsage(ctx context.Context, actor Actor, clientID string, since time.Time) ([]authz.Issuance, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetApplication(ctx, clientID); err != nil {
		return nil, storeErr(err, "application")
	}
	if since.IsZero() {
		since = s.now().Add(-24 * time.Hour).Truncate(time.Hour)
	}
	list, err := s.Store.ListIssuance(ctx, clientID, since)
	return list, storeErr(err, "usage")
}
