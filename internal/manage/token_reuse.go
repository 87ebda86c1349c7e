package manage

import (
	"context"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// validTokenReuse checks a token reuse being set (docs/token-reuse.md):
// off (the zero TokenReuse, which removes it), or min_remaining in whole
// seconds, at least one and less than lifetime, the token lifetime of the
// API it applies to (authz.MaxTokenLifetime for an application's before
// its grants are known). A token issued with no more than min_remaining
// left could never be reused.
func validTokenReuse(r authz.TokenReuse, lifetime time.Duration) error {
	if r.MinRemaining == 0 {
		return nil
	}
	if r.MinRemaining < time.Second || r.MinRemaining%time.Second != 0 {
		return invalid("token_reuse.min_remaining must be a whole number of seconds, at least 1")
	}
	if r.MinRemaining >= lifetime {
		return invalid("token_reuse.min_remaining (%d s) must be less than the token lifetime (%d s)",
			int64(r.MinRemaining/time.Second), int64(lifetime/time.Second))
	}
	return nil
}

// appTokenReuseFits checks an application's token reuse against the
// token lifetime of every API granted to it (grants), as they are in
// transaction t. A grant's own, shorter lifetime is not held against it:
// reuse simply does not apply to a token whose lifetime does not exceed
// min_remaining (docs/token-reuse.md).
func appTokenReuseFits(ctx context.Context, t *txn, r authz.TokenReuse, grants []authz.Grant) error {
	if !r.Enabled() {
		return nil
	}
	for _, g := range grants {
		api, err := t.GetAPI(ctx, g.APIID)
		if err != nil {
			return err
		}
		if r.MinRemaining >= api.TokenLifetime {
			return invalid("token_reuse.min_remaining (%d s) must be less than the token lifetime of granted API %s (%d s)",
				int64(r.MinRemaining/time.Second), api.Identifier, int64(api.TokenLifetime/time.Second))
		}
	}
	return nil
}

// tokenReuseDetails is the audit detail of a token reuse: its
// min_remaining in seconds, or nil when off.
func tokenReuseDetails(r authz.TokenReuse) any {
	if !r.Enabled() {
		return nil
	}
	return map[string]any{"min_remaining": int64(r.MinRemaining / time.Second)}
}

// tokenReuseAfter checks that API a, once ch is applied, keeps its token
// reuse below its token lifetime: ch may set either, or lower the
// lifetime under the reuse a already has.
func tokenReuseAfter(a authz.API, ch APIChange) error {
	if ch.TokenReuse == nil && ch.TokenLifetime == nil {
		return nil
	}
	r, lifetime := a.TokenReuse, a.TokenLifetime
	if ch.TokenReuse != nil {
		r = *ch.TokenReuse
	}
	if ch.TokenLifetime != nil {
		lifetime = time.Duration(*ch.TokenLifetime) * time.Second
	}
	return validTokenReuse(r, lifetime)
}
