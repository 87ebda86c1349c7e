package admin

import (
	"net/http"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// APIResource is an API as the management API shows it. token_lifetime is
// in seconds.
type APIResource struct {
	ID            string        `json:"id"`
	Identifier    string        `json:"identifier"`
	Name          string        `json:"name"`
	Scopes        []authz.Scope `json:"scopes"`
	TokenLifetime int64         `json:"token_lifetime"`
	SigningAlg    string        `json:"signing_alg"`
	System        bool          `json:"system"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
}

func apiResource(a authz.API) APIResource {
	sc := a.Scopes
	if sc == nil {
		sc = []authz.Scope{}
	}
	return APIResource{
		ID: a.ID, Identifier: a.Identifier, Name: a.Name, Scopes: sc,
		TokenLifetime: int64(a.TokenLifetime / time.Second), SigningAlg: a.SigningAlg,
		System: a.System, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
}

// List is one page of a list endpoint: the items and the cursor of the next
// page, absent after the last.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// CreateAPIRequest is the body of POST /admin/v1/apis.
type CreateAPIRequest struct {
	Identifier    string        `json:"identifier"`
	Name          string        `json:"name"`
	Scopes        []authz.Scope `json:"scopes"`
	TokenLifetime int64         `json:"token_lifetime"` // seconds; 0: 3600
	SigningAlg    string        `json:"signing_alg"`    // "": the server default
}

// UpdateAPIRequest is the body of PATCH /admin/v1/apis/{id}: present
// fields replace the API's. The identifier never changes.
type UpdateAPIRequest struct {
	Identifier    *string        `json:"identifier"`
	Name          *string        `json:"name"`
	Scopes        *[]authz.Scope `json:"scopes"`
	TokenLifetime *int64         `json:"token_lifetime"`
	SigningAlg    *string        `json:"signing_alg"`
}

const (
	maxIdentifierLen = 255
	maxNameLen       = 200
	maxDescLen       = 1000
	maxScopes        = 200
	maxScopeLen      = 128
	maxScopeBytes    = 4096 // all of an API's scope values, space-separated
	minLifetime      = 60
)

func validIdentifier(s string) *Problem {
	if s == "" {
		return invalid("identifier is required")
	}
	if len(s) > maxIdentifierLen {
		return invalid("identifier is longer than %d bytes", maxIdentifierLen)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return invalid("identifier must not contain white space or control characters")
		}
	}
	return nil
}

func validText(field, s string, max int, required bool) *Problem {
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

func validScopes(scopes []authz.Scope) *Problem {
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
		if p := validText("scope description", sc.Description, maxDescLen, false); p != nil {
			return p
		}
	}
	return nil
}

func validLifetime(s int64) *Problem {
	if s < minLifetime || s > int64(authz.MaxTokenLifetime/time.Second) {
		return invalid("token_lifetime must be between %d and %d seconds", minLifetime, int64(authz.MaxTokenLifetime/time.Second))
	}
	return nil
}

func (h *Handler) validAlg(r *http.Request, alg string) *Problem {
	if !authz.ValidSigningAlg(alg) {
		return invalid("signing_alg must be one of ES256, EdDSA, RS256, PS256")
	}
	if err := h.Keys.Ensure(r.Context(), alg); err != nil {
		return storeProblem(err, "signing key")
	}
	return nil
}

// CreateAPI serves POST /admin/v1/apis: 201 with the API.
func (h *Handler) CreateAPI(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req CreateAPIRequest
	if p := decode(w, r, &req); p != nil {
		return p
	}
	if p := validIdentifier(req.Identifier); p != nil {
		return p
	}
	if req.Name == "" {
		req.Name = req.Identifier
	}
	if p := validText("name", req.Name, maxNameLen, true); p != nil {
		return p
	}
	if p := validScopes(req.Scopes); p != nil {
		return p
	}
	if req.TokenLifetime == 0 {
		req.TokenLifetime = int64(authz.DefaultTokenLifetime / time.Second)
	}
	if p := validLifetime(req.TokenLifetime); p != nil {
		return p
	}
	if req.SigningAlg == "" {
		req.SigningAlg = h.DefaultAlg
	}
	if p := h.validAlg(r, req.SigningAlg); p != nil {
		return p
	}
	id, err := authz.NewID(h.Rand, "api_")
	if err != nil {
		return storeProblem(err, "API")
	}
	now := h.now()
	a := authz.API{
		ID: id, Identifier: req.Identifier, Name: req.Name, Scopes: req.Scopes,
		TokenLifetime: time.Duration(req.TokenLifetime) * time.Second, SigningAlg: req.SigningAlg,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := h.Store.CreateAPI(r.Context(), a); err != nil {
		p := storeProblem(err, "API")
		if p.Status == http.StatusConflict {
			p.Detail = "an API with identifier " + strconv.Quote(req.Identifier) + " already exists"
		}
		return p
	}
	h.audit(r, actor, "api.create", a.ID, map[string]any{"identifier": a.Identifier, "scopes": a.ScopeValues(), "signing_alg": a.SigningAlg})
	w.Header().Set("Location", "/admin/v1/apis/"+a.ID)
	writeJSON(w, http.StatusCreated, apiResource(a))
	return nil
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (authz.Page, *Problem) {
	q := r.URL.Query()
	p := authz.Page{Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > authz.MaxPageLimit {
			return p, invalid("limit must be a whole number from 1 to %d", authz.MaxPageLimit)
		}
		p.Limit = n
	}
	return p.Normalize(), nil
}

// ListAPIs serves GET /admin/v1/apis?identifier=&limit=&cursor=.
func (h *Handler) ListAPIs(w http.ResponseWriter, r *http.Request, _ *Actor) *Problem {
	pg, p := page(r)
	if p != nil {
		return p
	}
	apis, next, err := h.Store.ListAPIs(r.Context(), authz.APIFilter{Identifier: r.URL.Query().Get("identifier")}, pg)
	if err != nil {
		return storeProblem(err, "cursor")
	}
	out := List[APIResource]{Items: make([]APIResource, 0, len(apis)), NextCursor: next}
	for _, a := range apis {
		out.Items = append(out.Items, apiResource(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GetAPI serves GET /admin/v1/apis/{id}.
func (h *Handler) GetAPI(w http.ResponseWriter, r *http.Request, _ *Actor) *Problem {
	a, err := h.Store.GetAPI(r.Context(), r.PathValue("id"))
	if err != nil {
		return storeProblem(err, "API")
	}
	writeJSON(w, http.StatusOK, apiResource(a))
	return nil
}

// UpdateAPI serves PATCH /admin/v1/apis/{id}. Scopes removed from the API
// are removed from every grant for it. The management API's identifier and
// scopes are m2mauth's own and cannot change.
func (h *Handler) UpdateAPI(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req UpdateAPIRequest
	if p := decode(w, r, &req); p != nil {
		return p
	}
	a, err := h.Store.GetAPI(r.Context(), r.PathValue("id"))
	if err != nil {
		return storeProblem(err, "API")
	}
	if req.Identifier != nil && *req.Identifier != a.Identifier {
		return invalid("identifier cannot change: tokens already carry it as their audience; create a new API instead")
	}
	if req.Name != nil {
		if p := validText("name", *req.Name, maxNameLen, true); p != nil {
			return p
		}
		a.Name = *req.Name
	}
	if req.Scopes != nil {
		if a.System {
			return problem(http.StatusConflict, CodeConflict, "the management API's scopes are m2mauth's own and cannot change")
		}
		if p := validScopes(*req.Scopes); p != nil {
			return p
		}
		a.Scopes = *req.Scopes
	}
	if req.TokenLifetime != nil {
		if p := validLifetime(*req.TokenLifetime); p != nil {
			return p
		}
		a.TokenLifetime = time.Duration(*req.TokenLifetime) * time.Second
	}
	if req.SigningAlg != nil {
		if p := h.validAlg(r, *req.SigningAlg); p != nil {
			return p
		}
		a.SigningAlg = *req.SigningAlg
	}
	a.UpdatedAt = h.now()
	if err := h.Store.UpdateAPI(r.Context(), a); err != nil {
		return storeProblem(err, "API")
	}
	h.audit(r, actor, "api.update", a.ID, map[string]any{"identifier": a.Identifier, "scopes": a.ScopeValues(), "token_lifetime": int64(a.TokenLifetime / time.Second), "signing_alg": a.SigningAlg})
	writeJSON(w, http.StatusOK, apiResource(a))
	return nil
}

// DeleteAPI serves DELETE /admin/v1/apis/{id}: 204, and every grant for
// the API goes with it. The management API cannot be deleted (409).
func (h *Handler) DeleteAPI(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	id := r.PathValue("id")
	a, err := h.Store.GetAPI(r.Context(), id)
	if err != nil {
		return storeProblem(err, "API")
	}
	if a.System {
		return problem(http.StatusConflict, CodeConflict, "the management API cannot be deleted")
	}
	if err := h.Store.DeleteAPI(r.Context(), id); err != nil {
		return storeProblem(err, "API")
	}
	h.audit(r, actor, "api.delete", id, map[string]any{"identifier": a.Identifier})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
