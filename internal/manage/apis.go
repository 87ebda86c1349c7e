package manage

import (
	"cmp"
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Bounds of management input, in bytes unless said otherwise.
const (
	maxIdentifierLen = 255
	maxNameLen       = 200
	maxDescLen       = 1000
	maxScopes        = 200 // scopes per API
	maxScopeLen      = 128
	maxScopeBytes    = 4096 // all of an API's scope values, space-separated
	minLifetime      = 60   // seconds
)

// reservedPrefix is the identifier namespace of m2mauth's own APIs.
const reservedPrefix = "urn:m2mauth:"

func validIdentifier(s string) error {
	if s == "" {
		return invalid("identifier is required")
	}
	if len(s) > maxIdentifierLen {
		return invalid("identifier is longer than %d bytes", maxIdentifierLen)
	}
	if !utf8.ValidString(s) {
		return invalid("identifier is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return invalid("identifier must not contain white space or control characters")
		}
	}
	if strings.HasPrefix(s, reservedPrefix) {
		return invalid("identifiers starting with %s are m2mauth's own", reservedPrefix)
	}
	return nil
}

func validText(field, s string, max int, required bool) error {
	if required && s == "" {
		return invalid("%s is required", field)
	}
	if len(s) > max {
		return invalid("%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", field)
	}
	return nil
}

// validScopeValue checks one scope-token (RFC 6749 §3.3: 1*NQCHAR).
func validScopeValue(s string) bool {
	if s == "" || len(s) > maxScopeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

func validScopes(scopes []authz.Scope) error {
	if len(scopes) > maxScopes {
		return invalid("an API defines at most %d scopes", maxScopes)
	}
	total := 0
	for _, sc := range scopes {
		total += len(sc.Value) + 1
	}
	if total > maxScopeBytes {
		// A token with every scope must stay well under the 16 KiB that
		// verifiers accept (token.MaxTokenBytes).
		return invalid("an API's scope values add up to at most %d bytes", maxScopeBytes)
	}
	seen := map[string]bool{}
	for _, sc := range scopes {
		if !validScopeValue(sc.Value) {
			return invalid("scope value %q must be 1 to %d printable ASCII characters without space, quote or backslash (RFC 6749 §3.3)", sc.Value, maxScopeLen)
		}
		if seen[sc.Value] {
			return invalid("scope %q is listed twice", sc.Value)
		}
		seen[sc.Value] = true
		if err := validText("scope description", sc.Description, maxDescLen, false); err != nil {
			return err
		}
	}
	return nil
}

// validLifetime checks a token lifetime in seconds.
func validLifetime(s int64) error {
	if s < minLifetime || s > int64(authz.MaxTokenLifetime/time.Second) {
		return invalid("token_lifetime must be between %d and %d seconds", minLifetime, int64(authz.MaxTokenLifetime/time.Second))
	}
	return nil
}

// ensureAlg checks alg and makes sure it has signing keys.
func (s *Service) ensureAlg(ctx context.Context, alg string) error {
	if !authz.ValidSigningAlg(alg) {
		return invalid("signing_alg must be one of %s", strings.Join(authz.SigningAlgs, ", "))
	}
	return storeErr(s.Keys.Ensure(ctx, alg), "signing key")
}

// validPolicy checks a sender-constraint policy (dpop, mtls_bound).
func validPolicy(field, v string) error {
	if v != authz.PolicyOptional && v != authz.PolicyRequired {
		return invalid("%s must be %s or %s", field, authz.PolicyOptional, authz.PolicyRequired)
	}
	return nil
}

// validProfile checks a security profile.
func validProfile(v string) error {
	if v != authz.ProfileNone && v != authz.ProfileFAPI2 {
		return invalid("profile must be %s or %s", authz.ProfileNone, authz.ProfileFAPI2)
	}
	return nil
}

// fapi2Alg reports whether tokens signed with alg meet the FAPI 2.0
// Security Profile (§5.4.1: PS256, ES256 or EdDSA; RS256 is not allowed).
func fapi2Alg(alg string) bool {
	return alg == authz.PS256 || alg == authz.ES256 || alg == authz.EdDSA
}

// errFAPI2Alg is the refusal of a signing algorithm on a fapi2 API.
func errFAPI2Alg(alg string) error {
	return invalid("an API with profile %s signs its tokens with PS256, ES256 or EdDSA (FAPI 2.0 Security Profile §5.4.1), not %s", authz.ProfileFAPI2, alg)
}

// fapi2After checks the signing algorithm of a as ch leaves it if a then
// has profile fapi2 (Invalid if it is not one the profile allows).
func fapi2After(a authz.API, ch APIChange) error {
	profile, alg := a.Profile, a.SigningAlg
	if ch.Profile != nil {
		profile = *ch.Profile
	}
	if ch.SigningAlg != nil {
		alg = *ch.SigningAlg
	}
	if profile == authz.ProfileFAPI2 && authz.ValidSigningAlg(alg) && !fapi2Alg(alg) {
		return errFAPI2Alg(alg)
	}
	return nil
}

// senderDetails are the audit details of a's sender-constraint policies
// and profile.
func senderDetails(d map[string]any, a authz.API) map[string]any {
	d["dpop"], d["dpop_nonce"], d["mtls_bound"], d["profile"] = a.DPoP, a.DPoPNonce, a.MTLSBound, a.Profile
	return d
}

// NewAPI is what CreateAPI registers.
type NewAPI struct {
	Identifier    string
	Name          string // "": the identifier
	Scopes        []authz.Scope
	TokenLifetime int64  // seconds; 0: 3600
	SigningAlg    string // "": the server default
	DPoP          string // authz.PolicyOptional or PolicyRequired; "": optional
	DPoPNonce     bool   // require server nonces in DPoP proofs (RFC 9449 §8)
	MTLSBound     string // authz.PolicyOptional or PolicyRequired; "": optional
	Profile       string // authz.ProfileNone or ProfileFAPI2; "": none
	// TokenReuse is the API's opt-in token reuse (docs/token-reuse.md);
	// the zero TokenReuse: off.
	TokenReuse authz.TokenReuse
}

// CreateAPI registers an API (a resource server). An API with profile
// fapi2 signs with PS256, ES256 or EdDSA. Needs create:apis. Errors:
// Invalid, Conflict (the identifier is taken), Forbidden.
func (s *Service) CreateAPI(ctx context.Context, actor Actor, in NewAPI) (authz.API, error) {
	if err := actor.require(authz.ScopeCreateAPIs); err != nil {
		return authz.API{}, err
	}
	if err := validIdentifier(in.Identifier); err != nil {
		return authz.API{}, err
	}
	if in.Name == "" {
		in.Name = in.Identifier
	}
	if err := validText("name", in.Name, maxNameLen, true); err != nil {
		return authz.API{}, err
	}
	if err := validScopes(in.Scopes); err != nil {
		return authz.API{}, err
	}
	if in.TokenLifetime == 0 {
		in.TokenLifetime = int64(authz.DefaultTokenLifetime / time.Second)
	}
	if err := validLifetime(in.TokenLifetime); err != nil {
		return authz.API{}, err
	}
	if err := validTokenReuse(in.TokenReuse, time.Duration(in.TokenLifetime)*time.Second); err != nil {
		return authz.API{}, err
	}
	in.DPoP = cmp.Or(in.DPoP, authz.PolicyOptional)
	if err := validPolicy("dpop", in.DPoP); err != nil {
		return authz.API{}, err
	}
	in.MTLSBound = cmp.Or(in.MTLSBound, authz.PolicyOptional)
	if err := validPolicy("mtls_bound", in.MTLSBound); err != nil {
		return authz.API{}, err
	}
	in.Profile = cmp.Or(in.Profile, authz.ProfileNone)
	if err := validProfile(in.Profile); err != nil {
		return authz.API{}, err
	}
	if in.SigningAlg == "" {
		in.SigningAlg = s.DefaultAlg
	}
	if !authz.ValidSigningAlg(in.SigningAlg) {
		return authz.API{}, invalid("signing_alg must be one of %s", strings.Join(authz.SigningAlgs, ", "))
	}
	if in.Profile == authz.ProfileFAPI2 && !fapi2Alg(in.SigningAlg) {
		return authz.API{}, errFAPI2Alg(in.SigningAlg)
	}
	if err := s.ensureAlg(ctx, in.SigningAlg); err != nil {
		return authz.API{}, err
	}
	id, err := authz.NewID(s.Rand, "api_")
	if err != nil {
		return authz.API{}, storeErr(err, "API")
	}
	now := s.now()
	a := authz.API{
		ID: id, Identifier: in.Identifier, Name: in.Name, Scopes: in.Scopes,
		TokenLifetime: time.Duration(in.TokenLifetime) * time.Second, SigningAlg: in.SigningAlg,
		DPoP: in.DPoP, DPoPNonce: in.DPoPNonce, MTLSBound: in.MTLSBound, Profile: in.Profile,
		TokenReuse: in.TokenReuse, CreatedAt: now, UpdatedAt: now,
	}
	if a.Scopes == nil {
		a.Scopes = []authz.Scope{}
	}
	err = s.manage(ctx, "API", func(t *txn) error {
		if err := t.CreateAPI(ctx, a); err != nil {
			if e := storeErr(err, "API"); e.(*Error).Kind == Conflict {
				return conflict("an API with identifier %s already exists", strconv.Quote(in.Identifier))
			}
			return err
		}
		d := senderDetails(map[string]any{
			"identifier": a.Identifier, "scopes": a.ScopeValues(), "signing_alg": a.SigningAlg,
		}, a)
		if a.TokenReuse.Enabled() {
			d["token_reuse"] = tokenReuseDetails(a.TokenReuse)
		}
		return t.audit(ctx, actor, "api.create", a.ID, d)
	})
	return a, err
}

// ListAPIs returns one page of APIs. Needs read:apis.
func (s *Service) ListAPIs(ctx context.Context, actor Actor, f authz.APIFilter, p authz.Page) ([]authz.API, string, error) {
	if err := actor.require(authz.ScopeReadAPIs); err != nil {
		return nil, "", err
	}
	list, next, err := s.Store.ListAPIs(ctx, f, p)
	return list, next, storeErr(err, "cursor")
}

// GetAPI returns the API with id. Needs read:apis. Errors: NotFound.
func (s *Service) GetAPI(ctx context.Context, actor Actor, id string) (authz.API, error) {
	if err := actor.require(authz.ScopeReadAPIs); err != nil {
		return authz.API{}, err
	}
	a, err := s.Store.GetAPI(ctx, id)
	return a, storeErr(err, "API")
}

// APIChange is what UpdateAPI changes: present (non-nil) fields replace
// the API's. TokenLifetime is in seconds.
type APIChange struct {
	Identifier    *string // may only repeat the identifier: it never changes
	Name          *string
	Scopes        *[]authz.Scope
	TokenLifetime *int64
	SigningAlg    *string
	DPoP          *string // authz.PolicyOptional or PolicyRequired
	DPoPNonce     *bool
	MTLSBound     *string // authz.PolicyOptional or PolicyRequired
	Profile       *string // authz.ProfileNone or ProfileFAPI2
	// TokenReuse replaces the API's token reuse (docs/token-reuse.md); a
	// pointer to the zero TokenReuse removes it.
	TokenReuse *authz.TokenReuse
}

// UpdateAPI changes the fields of the API with id that ch names, and no
// other, and returns the API as it is now. Scopes removed from the API
// leave every grant for it. An API with profile fapi2 (as it is after the
// change) signs with PS256, ES256 or EdDSA. The management API is
// m2mauth's own and never changes through here (Forbidden, for every
// actor): its token lifetime is set by operator configuration. Needs
// update:apis. Errors: Invalid, Forbidden, NotFound.
func (s *Service) UpdateAPI(ctx context.Context, actor Actor, id string, ch APIChange) (authz.API, error) {
	if err := actor.require(authz.ScopeUpdateAPIs); err != nil {
		return authz.API{}, err
	}
	p := authz.APIPatch{Name: ch.Name, Scopes: ch.Scopes, SigningAlg: ch.SigningAlg,
		DPoP: ch.DPoP, DPoPNonce: ch.DPoPNonce, MTLSBound: ch.MTLSBound, Profile: ch.Profile, TokenReuse: ch.TokenReuse}
	if ch.TokenReuse != nil {
		// Checked against the lifetime again in the transaction.
		if err := validTokenReuse(*ch.TokenReuse, authz.MaxTokenLifetime); err != nil {
			return authz.API{}, err
		}
	}
	if ch.DPoP != nil {
		if err := validPolicy("dpop", *ch.DPoP); err != nil {
			return authz.API{}, err
		}
	}
	if ch.MTLSBound != nil {
		if err := validPolicy("mtls_bound", *ch.MTLSBound); err != nil {
			return authz.API{}, err
		}
	}
	if ch.Profile != nil {
		if err := validProfile(*ch.Profile); err != nil {
			return authz.API{}, err
		}
	}
	if ch.Name != nil {
		if err := validText("name", *ch.Name, maxNameLen, true); err != nil {
			return authz.API{}, err
		}
	}
	if ch.Scopes != nil {
		if err := validScopes(*ch.Scopes); err != nil {
			return authz.API{}, err
		}
	}
	if ch.TokenLifetime != nil {
		if err := validLifetime(*ch.TokenLifetime); err != nil {
			return authz.API{}, err
		}
		d := time.Duration(*ch.TokenLifetime) * time.Second
		p.TokenLifetime = &d
	}
	if ch.SigningAlg != nil {
		// Keys are made outside the transaction: the key store writes on
		// its own, and SQLite has one writer. A key made for an update
		// that is then refused is only an unused key.
		if a, err := s.Store.GetAPI(ctx, id); err != nil {
			return authz.API{}, storeErr(err, "API")
		} else if !a.System {
			// Checked again in the transaction; here it saves making a
			// key for an algorithm the profile refuses.
			if err := fapi2After(a, ch); err != nil {
				return authz.API{}, err
			}
			if err := s.ensureAlg(ctx, *ch.SigningAlg); err != nil {
				return authz.API{}, err
			}
		}
	}
	var out authz.API
	err := s.manage(ctx, "API", func(t *txn) error {
		a, err := t.GetAPI(ctx, id)
		if err != nil {
			return err
		}
		if a.System {
			// Changing it would change every administrator's power: no
			// scope allows it (403, like any other privilege bound).
			return &Error{Kind: Forbidden, Detail: "the management API (" + authz.ManagementAudience + ") is m2mauth's own: no scope allows changing it through the API; its token lifetime is the operator's --admin-token-lifetime"}
		}
		if ch.Identifier != nil && *ch.Identifier != a.Identifier {
			return invalid("identifier cannot change: tokens already carry it as their audience; create a new API instead")
		}
		if ch.SigningAlg != nil && !authz.ValidSigningAlg(*ch.SigningAlg) {
			return invalid("signing_alg must be one of %s", strings.Join(authz.SigningAlgs, ", "))
		}
		// a is read in this transaction: a concurrent change of the
		// profile or the algorithm cannot slip between check and write.
		if err := fapi2After(a, ch); err != nil {
			return err
		}
		if err := tokenReuseAfter(a, ch); err != nil {
			return err
		}
		p.UpdatedAt = s.now()
		if out, err = t.UpdateAPI(ctx, id, p); err != nil {
			return err
		}
		d := senderDetails(map[string]any{
			"identifier": out.Identifier, "scopes": out.ScopeValues(),
			"token_lifetime": int64(out.TokenLifetime / time.Second), "signing_alg": out.SigningAlg,
			"changed": changedFields(ch),
		}, out)
		if ch.TokenReuse != nil || out.TokenReuse.Enabled() {
			d["token_reuse"] = tokenReuseDetails(out.TokenReuse) // null: removed
		}
		return t.audit(ctx, actor, "api.update", id, d)
	})
	return out, err
}

// changedFields lists the JSON names of the fields ch names, in a fixed
// order: what an api.update audit event says changed.
func changedFields(ch APIChange) []string {
	out := []string{}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"name", ch.Name != nil}, {"scopes", ch.Scopes != nil}, {"token_lifetime", ch.TokenLifetime != nil},
		{"signing_alg", ch.SigningAlg != nil}, {"dpop", ch.DPoP != nil}, {"dpop_nonce", ch.DPoPNonce != nil},
		{"mtls_bound", ch.MTLSBound != nil}, {"profile", ch.Profile != nil},
		{"token_reuse", ch.TokenReuse != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// DeleteAPI removes the API with id and every grant for it. The management
// API cannot be deleted (Conflict). Needs delete:apis. Errors: NotFound,
// Conflict.
func (s *Service) DeleteAPI(ctx context.Context, actor Actor, id string) error {
	if err := actor.require(authz.ScopeDeleteAPIs); err != nil {
		return err
	}
	return s.manage(ctx, "API", func(t *txn) error {
		a, err := t.GetAPI(ctx, id)
		if err != nil {
			return err
		}
		if a.System {
			return conflict("the management API cannot be deleted")
		}
		if err := t.DeleteAPI(ctx, id); err != nil {
			return err
		}
		return t.audit(ctx, actor, "api.delete", id, map[string]any{"identifier": a.Identifier})
	})
}
