package admin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
)

// GrantResource is a grant as the management API shows it.
type GrantResource struct {
	ID        string    `json:"id"`
	Audience  string    `json:"audience"`
	APIID     string    `json:"api_id"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func grantResource(g authz.Grant) GrantResource {
	sc := g.Scopes
	if sc == nil {
		sc = []string{}
	}
	return GrantResource{ID: g.ID, Audience: g.Audience, APIID: g.APIID, Scopes: sc, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
}

// SecretResource describes a client secret without the secret.
type SecretResource struct {
	ID         string     `json:"id"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"` // last change of its expiry; a use moves last_used_at only
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func secretResource(s authz.Secret) SecretResource {
	return SecretResource{ID: s.ID, Prefix: s.Prefix, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, ExpiresAt: optTime(s.ExpiresAt), LastUsedAt: optTime(s.LastUsedAt)}
}

// ApplicationResource is an application as the management API shows it.
// Grants are listed by GET of one application, not in lists.
type ApplicationResource struct {
	ClientID    string          `json:"client_id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Disabled    bool            `json:"disabled"`
	Grants      []GrantResource `json:"grants,omitzero"` // [] when it has none; absent in lists
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`

	// CanIntrospect lets the application introspect every token (RFC 7662).
	CanIntrospect bool `json:"can_introspect"`
}

func applicationResource(a authz.Application, grants []authz.Grant) ApplicationResource {
	out := ApplicationResource{ClientID: a.ClientID, Name: a.Name, Description: a.Description, Disabled: a.Disabled, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, CanIntrospect: a.CanIntrospect}
	if grants != nil {
		out.Grants = make([]GrantResource, 0, len(grants))
		for _, g := range grants {
			out.Grants = append(out.Grants, grantResource(g))
		}
	}
	return out
}

// CreatedApplication is the answer to POST /admin/v1/applications: the
// application with the only copy of its client secret that will ever be
// shown.
type CreatedApplication struct {
	ApplicationResource
	ClientSecret string         `json:"client_secret"`
	Secret       SecretResource `json:"secret"`
}

// GrantRequest names an API by audience and the scopes to grant on it;
// omitted scopes grant every scope the API defines now.
type GrantRequest struct {
	Audience string    `json:"audience"`
	Scopes   *[]string `json:"scopes"`
}

// CreateApplicationRequest is the body of POST /admin/v1/applications.
type CreateApplicationRequest struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Grants      []GrantRequest `json:"grants"`
	// CanIntrospect lets a resource server introspect every token (RFC 7662).
	CanIntrospect bool `json:"can_introspect"`
}

// UpdateApplicationRequest is the body of PATCH
// /admin/v1/applications/{client_id}: present fields replace the
// application's.
type UpdateApplicationRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Disabled    *bool   `json:"disabled"`
	// CanIntrospect lets a resource server introspect every token (RFC 7662).
	CanIntrospect *bool `json:"can_introspect"`
}

// resolveGrant checks a grant request against the API it names and
// returns the grant to store for application clientID.
func (h *Handler) resolveGrant(r *http.Request, clientID string, gr GrantRequest, now time.Time) (authz.Grant, *Problem) {
	if gr.Audience == "" {
		return authz.Grant{}, invalid("a grant needs an audience")
	}
	api, err := h.Store.GetAPIByIdentifier(r.Context(), gr.Audience)
	if errors.Is(err, authz.ErrNotFound) {
		return authz.Grant{}, invalid("no API has identifier %q", gr.Audience)
	}
	if err != nil {
		return authz.Grant{}, storeProblem(err, "API")
	}
	scopes := api.ScopeValues()
	if gr.Scopes != nil {
		scopes = nil
		var unknown []string
		for _, sc := range *gr.Scopes {
			if !api.HasScope(sc) {
				unknown = append(unknown, sc)
			} else if !hasScope(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
		if len(unknown) > 0 {
			return authz.Grant{}, invalid("API %q does not define scope %s", gr.Audience, strings.Join(unknown, " "))
		}
	}
	id, err := authz.NewID(h.Rand, "grt_")
	if err != nil {
		return authz.Grant{}, storeProblem(err, "grant")
	}
	return authz.Grant{ID: id, ClientID: clientID, APIID: api.ID, Audience: api.Identifier, Scopes: scopes, CreatedAt: now, UpdatedAt: now}, nil
}

// newSecret generates a client secret for application clientID, returning
// the stored form and the secret to show once.
func (h *Handler) newSecret(clientID string, now, expires time.Time) (authz.Secret, string, *Problem) {
	id, plain, err := clientsecret.Generate(h.Rand)
	if err != nil {
		return authz.Secret{}, "", storeProblem(err, "secret")
	}
	return authz.Secret{
		ID: id, ClientID: clientID, Hash: h.Hasher.Hash(plain), Prefix: clientsecret.DisplayPrefix(id),
		CreatedAt: now, UpdatedAt: now, ExpiresAt: expires,
	}, plain, nil
}

// CreateApplication serves POST /admin/v1/applications: 201 with the
// application, its grants and its client secret, shown this once.
func (h *Handler) CreateApplication(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req CreateApplicationRequest
	if p := decode(w, r, &req); p != nil {
		return p
	}
	if p := validText("name", req.Name, maxNameLen, true); p != nil {
		return p
	}
	if p := validText("description", req.Description, maxDescLen, false); p != nil {
		return p
	}
	clientID, err := authz.NewClientID(h.Rand)
	if err != nil {
		return storeProblem(err, "application")
	}
	now := h.now()
	var grants []authz.Grant
	seen := map[string]bool{}
	for _, gr := range req.Grants {
		if seen[gr.Audience] {
			return invalid("audience %q is granted twice", gr.Audience)
		}
		seen[gr.Audience] = true
		g, p := h.resolveGrant(r, clientID, gr, now)
		if p != nil {
			return p
		}
		grants = append(grants, g)
	}
	sec, plain, p := h.newSecret(clientID, now, time.Time{})
	if p != nil {
		return p
	}
	app := authz.Application{ClientID: clientID, Name: req.Name, Description: req.Description, CanIntrospect: req.CanIntrospect, CreatedAt: now, UpdatedAt: now}
	if err := h.Store.CreateApplication(r.Context(), app, []authz.Secret{sec}, grants); err != nil {
		return storeProblem(err, "application")
	}
	h.audit(r, actor, "application.create", clientID, map[string]any{"name": app.Name, "secret_id": sec.ID, "grants": grantSummary(grants)})
	if grants == nil {
		grants = []authz.Grant{}
	}
	w.Header().Set("Location", "/admin/v1/applications/"+clientID)
	writeJSON(w, http.StatusCreated, CreatedApplication{
		ApplicationResource: applicationResource(app, grants),
		ClientSecret:        plain,
		Secret:              secretResource(sec),
	})
	return nil
}

// ListApplications serves GET
// /admin/v1/applications?name_prefix=&disabled=&limit=&cursor=.
func (h *Handler) ListApplications(w http.ResponseWriter, r *http.Request, _ *Actor) *Problem {
	pg, p := page(r)
	if p != nil {
		return p
	}
	q := r.URL.Query()
	f := authz.ApplicationFilter{NamePrefix: q.Get("name_prefix")}
	if d := q.Get("disabled"); d != "" {
		b, err := strconv.ParseBool(d)
		if err != nil {
			return invalid("disabled must be true or false")
		}
		f.Disabled = &b
	}
	apps, next, err := h.Store.ListApplications(r.Context(), f, pg)
	if err != nil {
		return storeProblem(err, "cursor")
	}
	out := List[ApplicationResource]{Items: make([]ApplicationResource, 0, len(apps)), NextCursor: next}
	for _, a := range apps {
		out.Items = append(out.Items, applicationResource(a, nil))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GetApplication serves GET /admin/v1/applications/{client_id}, with grants.
func (h *Handler) GetApplication(w http.ResponseWriter, r *http.Request, _ *Actor) *Problem {
	id := r.PathValue("client_id")
	app, err := h.Store.GetApplication(r.Context(), id)
	if err != nil {
		return storeProblem(err, "application")
	}
	grants, err := h.Store.ListGrants(r.Context(), id)
	if err != nil {
		return storeProblem(err, "application")
	}
	if grants == nil {
		grants = []authz.Grant{}
	}
	writeJSON(w, http.StatusOK, applicationResource(app, grants))
	return nil
}

// UpdateApplication serves PATCH /admin/v1/applications/{client_id}.
// Disabling takes effect on the application's next token request.
func (h *Handler) UpdateApplication(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req UpdateApplicationRequest
	if p := decode(w, r, &req); p != nil {
		return p
	}
	id := r.PathValue("client_id")
	app, err := h.Store.GetApplication(r.Context(), id)
	if err != nil {
		return storeProblem(err, "application")
	}
	if req.Name != nil {
		if p := validText("name", *req.Name, maxNameLen, true); p != nil {
			return p
		}
		app.Name = *req.Name
	}
	if req.Description != nil {
		if p := validText("description", *req.Description, maxDescLen, false); p != nil {
			return p
		}
		app.Description = *req.Description
	}
	if req.Disabled != nil {
		if *req.Disabled && id == actor.ClientID {
			return problem(http.StatusConflict, CodeConflict, "an application cannot disable itself; use another administrator")
		}
		app.Disabled = *req.Disabled
	}
	if req.CanIntrospect != nil {
		app.CanIntrospect = *req.CanIntrospect
	}
	app.UpdatedAt = h.now()
	if err := h.Store.UpdateApplication(r.Context(), app); err != nil {
		return storeProblem(err, "application")
	}
	h.audit(r, actor, "application.update", id, map[string]any{"name": app.Name, "disabled": app.Disabled, "can_introspect": app.CanIntrospect})
	grants, err := h.Store.ListGrants(r.Context(), id)
	if err != nil {
		return storeProblem(err, "application")
	}
	if grants == nil {
		grants = []authz.Grant{}
	}
	writeJSON(w, http.StatusOK, applicationResource(app, grants))
	return nil
}

// DeleteApplication serves DELETE /admin/v1/applications/{client_id}: 204;
// its secrets and grants go with it and its next token request fails.
func (h *Handler) DeleteApplication(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	id := r.PathValue("client_id")
	if id == actor.ClientID {
		return problem(http.StatusConflict, CodeConflict, "an application cannot delete itself; use another administrator")
	}
	if err := h.Store.DeleteApplication(r.Context(), id); err != nil {
		return storeProblem(err, "application")
	}
	h.audit(r, actor, "application.delete", id, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// CreateGrant serves POST /admin/v1/applications/{client_id}/grants: 201
// with the grant; 409 if the application already has a grant for the API.
func (h *Handler) CreateGrant(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req GrantRequest
	if p := decode(w, r, &req); p != nil {
		return p
	}
	id := r.PathValue("client_id")
	if _, err := h.Store.GetApplication(r.Context(), id); err != nil {
		return storeProblem(err, "application")
	}
	g, p := h.resolveGrant(r, id, req, h.now())
	if p != nil {
		return p
	}
	if err := h.Store.CreateGrant(r.Context(), g); err != nil {
		p := storeProblem(err, "grant")
		if p.Status == http.StatusConflict {
			p.Detail = "the application already has a grant for " + strconv.Quote(g.Audience) + "; change its scopes with PATCH"
		}
		return p
	}
	h.audit(r, actor, "grant.create", id, map[string]any{"grant_id": g.ID, "audience": g.Audience, "scopes": g.Scopes})
	w.Header().Set("Location", "/admin/v1/applications/"+id+"/grants/"+g.ID)
	writeJSON(w, http.StatusCreated, grantResource(g))
	return nil
}

// ListGrants serves GET /admin/v1/applications/{client_id}/grants.
func (h *Handler) ListGrants(w http.ResponseWriter, r *http.Request, _ *Actor) *Problem {
	id := r.PathValue("client_id")
	if _, err := h.Store.GetApplication(r.Context(), id); err != nil {
		return storeProblem(err, "application")
	}
	pg, p := page(r)
	if p != nil {
		return p
	}
	grants, err := h.Store.ListGrants(r.Context(), id)
	if err != nil {
		return storeProblem(err, "grant")
	}
	out, p := listPage(grants, func(g authz.Grant) string { return g.ID }, grantResource, pg)
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// UpdateGrantRequest is the body of PATCH
// /admin/v1/applications/{client_id}/grants/{grant_id}.
type UpdateGrantRequest struct {
	Scopes []string `json:"scopes"`
}

// UpdateGrant serves PATCH /admin/v1/applications/{client_id}/grants/{grant_id}:
// replaces the granted scopes.
func (h *Handler) UpdateGrant(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req UpdateGrantRequest
	if p := decode(w, r, &req); p != nil {
		return p
	}
	if req.Scopes == nil {
		return invalid("scopes is required")
	}
	g, err := h.Store.GetGrant(r.Context(), r.PathValue("client_id"), r.PathValue("grant_id"))
	if err != nil {
		return storeProblem(err, "grant")
	}
	resolved, p := h.resolveGrant(r, g.ClientID, GrantRequest{Audience: g.Audience, Scopes: &req.Scopes}, h.now())
	if p != nil {
		return p
	}
	g.Scopes, g.UpdatedAt = resolved.Scopes, resolved.UpdatedAt
	if err := h.Store.UpdateGrant(r.Context(), g); err != nil {
		return storeProblem(err, "grant")
	}
	h.audit(r, actor, "grant.update", g.ClientID, map[string]any{"grant_id": g.ID, "audience": g.Audience, "scopes": g.Scopes})
	writeJSON(w, http.StatusOK, grantResource(g))
	return nil
}

// DeleteGrant serves DELETE /admin/v1/applications/{client_id}/grants/{grant_id}: 204.
func (h *Handler) DeleteGrant(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	id, gid := r.PathValue("client_id"), r.PathValue("grant_id")
	if err := h.Store.DeleteGrant(r.Context(), id, gid); err != nil {
		return storeProblem(err, "grant")
	}
	h.audit(r, actor, "grant.delete", id, map[string]any{"grant_id": gid})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// grantSummary lists audience → scopes for the audit log.
func grantSummary(grants []authz.Grant) map[string][]string {
	out := make(map[string][]string, len(grants))
	for _, g := range grants {
		out[g.Audience] = g.Scopes
	}
	return out
}
