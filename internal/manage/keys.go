package manage

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
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
// another algorithm's then fails. Needs rotate:keys. Errors: Invalid (an
// unsupported alg), NotFound (no key in use for alg).
func (s *Service) RotateKeys(ctx context.Context, actor Actor, alg string) error {
	if err := actor.require(authz.ScopeRotateKeys); err != nil {
		return err
	}
	if alg != "" && !authz.ValidSigningAlg(alg) {
		return invalid("alg must be one of %s", strings.Join(authz.SigningAlgs, ", "))
	}
	rotations, err := s.SigningKeys.Rotate(ctx, alg)
	if len(rotations) > 0 {
		// The rotation is the key store's own compare-and-set; its audit
		// follows in a transaction of its own.
		aerr := s.manage(ctx, "audit", func(t *txn) error {
			for _, rot := range rotations {
				if err := t.audit(ctx, actor, "key.rotate", rot.Alg, map[string]any{
					"alg": rot.Alg, "retired": rot.Retired, "activated": rot.Activated, "next": rot.Next,
					"remove_after": rot.RemoveAfter.UTC().Format(time.RFC3339),
				}); err != nil {
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
		if errors.Is(err, authz.ErrNotFound) {
			return notFound("signing keys for " + alg)
		}
		return storeErr(err, "signing keys")
	}
	return nil
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
