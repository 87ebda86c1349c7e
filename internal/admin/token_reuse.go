package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TokenReuse is the opt-in token reuse of an application or an API
// (docs/token-reuse.md): {"min_remaining": 300}. min_remaining is in whole
// seconds, at least 1 and less than the API's token lifetime.
type TokenReuse struct {
	MinRemaining int64 `json:"min_remaining"`
}

func (r *TokenReuse) domain() authz.TokenReuse {
	if r == nil {
		return authz.TokenReuse{}
	}
	// Clamped so that no value overflows into the range manage accepts:
	// above the longest lifetime, manage refuses it as too long.
	n := min(r.MinRemaining, int64(authz.MaxTokenLifetime/time.Second))
	return authz.TokenReuse{MinRemaining: time.Duration(n) * time.Second}
}

// tokenReuseResource is r as responses show it: nil (JSON null) when off.
func tokenReuseResource(r authz.TokenReuse) *TokenReuse {
	if !r.Enabled() {
		return nil
	}
	return &TokenReuse{MinRemaining: int64(r.MinRemaining / time.Second)}
}

// TokenReusePatch is token_reuse in a PATCH body: absent (unchanged),
// null (removed) or a TokenReuse (set).
type TokenReusePatch struct {
	set   bool
	value *TokenReuse
}

// UnmarshalJSON reads null or a TokenReuse object, refusing unknown
// members as every request body does.
func (p *TokenReusePatch) UnmarshalJSON(b []byte) error {
	p.set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		p.value = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v TokenReuse
	if err := dec.Decode(&v); err != nil {
		return errors.New(`token_reuse is null or an object {"min_remaining": seconds}: ` + err.Error())
	}
	p.value = &v
	return nil
}

// SetTokenReuse returns the patch that sets r, or removes the token reuse
// if r is nil: for clients that build PATCH bodies (the CLI).
func SetTokenReuse(r *TokenReuse) TokenReusePatch { return TokenReusePatch{set: true, value: r} }

// IsZero reports whether p is absent, so that omitzero leaves it out.
func (p TokenReusePatch) IsZero() bool { return !p.set }

// MarshalJSON writes null or the TokenReuse: as a PATCH body sends it.
func (p TokenReusePatch) MarshalJSON() ([]byte, error) { return json.Marshal(p.value) }

// change is the patch as manage.ApplicationChange and manage.APIChange
// take it: nil if absent, the zero TokenReuse if null.
func (p TokenReusePatch) change() *authz.TokenReuse {
	if !p.set {
		return nil
	}
	r := p.value.domain()
	if p.value != nil && r.MinRemaining == 0 {
		// {"min_remaining": 0} is not a way to remove it (null is):
		// manage refuses it as below 1.
		r.MinRemaining = -1
	}
	return &r
}

// tokenReuseInput is token_reuse in a create body; {"min_remaining": 0}
// is refused by manage like any value below 1.
func tokenReuseInput(r *TokenReuse) authz.TokenReuse {
	if r != nil && r.MinRemaining == 0 {
		return authz.TokenReuse{MinRemaining: -1}
	}
	return r.domain()
}

// tokenReusePatchType is described to OpenAPI as TokenReuse or null.
var tokenReusePatchType = reflect.TypeOf(TokenReusePatch{})
