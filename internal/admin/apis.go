package admin

import (
	"cmp"
	"net/http"
	"strconv"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// APIResource is an API as the management API shows it. token_lifetime is
// in seconds. dpop and mtls_bound are "optional" or "required", profile
// "none" or "fapi2": always the effective value, never left out.
type APIResource struct {
	ID            string        `json:"id"`
	Identifier    string        `json:"identifier"`
	Name          string        `json:"name"`
	Scopes        []authz.Scope `json:"scopes"`
	TokenLifetime int64         `json:"token_lifetime"`
	SigningAlg    string        `json:"signing_alg"`
	DPoP          string        `json:"dpop"`
	DPoPNonce     bool          `json:"dpop_nonce"`
	MTLSBound     string        `json:"mtls_bound"`
	Profile       string        `json:"profile"`
	TokenReuse    *TokenReuse   `json:"token_reuse"` // null: off
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
		DPoP: cmp.Or(a.DPoP, authz.PolicyOptional), DPoPNonce: a.DPoPNonce,
		MTLSBound: cmp.Or(a.MTLSBound, authz.PolicyOptional), Profile: cmp.Or(a.Profile, authz.ProfileNone),
		TokenReuse: tokenReuseResource(a.TokenReuse),
		System:     a.System, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
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
	DPoP          string        `json:"dpop"`           // "optional" or "required"; "": optional
	DPoPNonce     bool          `json:"dpop_nonce"`     // DPoP proofs need a server nonce (RFC 9449 §8)
	MTLSBound     string        `json:"mtls_bound"`     // "optional" or "required"; "": optional
	Profile       string        `json:"profile"`        // "none" or "fapi2"; "": none
	TokenReuse    *TokenReuse   `json:"token_reuse"`    // opt-in token reuse; null or absent: off
}

// UpdateAPIRequest is the body of PATCH /admin/v1/apis/{id}: present
// fields replace the API's, and only those. The identifier never changes,
// and the management API not at all.
type UpdateAPIRequest struct {
	Identifier    *string        `json:"identifier"`
	Name          *string        `json:"name"`
	Scopes        *[]authz.Scope `json:"scopes"`
	TokenLifetime *int64         `json:"token_lifetime"`
	SigningAlg    *string        `json:"signing_alg"`
	DPoP          *string        `json:"dpop"`
	DPoPNonce     *bool          `json:"dpop_nonce"`
	MTLSBound     *string        `json:"mtls_bound"`
	Profile       *string        `json:"profile"`
	// TokenReuse sets the token reuse; null removes it.
	TokenReuse TokenReusePatch `json:"token_reuse,omitzero"`
}

// CreateAPI serves POST /admin/v1/apis: 201 with the API.
func (h *Handler) CreateAPI(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req CreateAPIRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	a, err := h.Manage.CreateAPI(r.Context(), *actor, manage.NewAPI{
		Identifier: req.Identifier, Name: req.Name, Scopes: req.Scopes, TokenLifetime: req.TokenLifetime, SigningAlg: req.SigningAlg,
		DPoP: req.DPoP, DPoPNonce: req.DPoPNonce, MTLSBound: req.MTLSBound, Profile: req.Profile,
		TokenReuse: tokenReuseInput(req.TokenReuse),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/apis/"+a.ID)
	writeJSON(w, http.StatusCreated, apiResource(a))
	return nil
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (authz.Page, error) {
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
func (h *Handler) ListAPIs(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	apis, next, err := h.Manage.ListAPIs(r.Context(), *actor, authz.APIFilter{Identifier: r.URL.Query().Get("identifier")}, pg)
	if err != nil {
		return err
	}
	out := List[APIResource]{Items: make([]APIResource, 0, len(apis)), NextCursor: next}
	for _, a := range apis {
		out.Items = append(out.Items, apiResource(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GetAPI serves GET /admin/v1/apis/{id}.
func (h *Handler) GetAPI(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	a, err := h.Manage.GetAPI(r.Context(), *actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiResource(a))
	return nil
}

// UpdateAPI serves PATCH /admin/v1/apis/{id}.
func (h *Handler) UpdateAPI(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req UpdateAPIRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	a, err := h.Manage.UpdateAPI(r.Context(), *actor, r.PathValue("id"), manage.APIChange{
		Identifier: req.Identifier, Name: req.Name, Scopes: req.Scopes, TokenLifetime: req.TokenLifetime, SigningAlg: req.SigningAlg,
		DPoP: req.DPoP, DPoPNonce: req.DPoPNonce, MTLSBound: req.MTLSBound, Profile: req.Profile,
		TokenReuse: req.TokenReuse.change(),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiResource(a))
	return nil
}

// DeleteAPI serves DELETE /admin/v1/apis/{id}: 204.
func (h *Handler) DeleteAPI(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	if err := h.Manage.DeleteAPI(r.Context(), *actor, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
