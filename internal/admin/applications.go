package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// GrantResource is a grant as the management API shows it.
type GrantResource struct {
	ID       string   `json:"id"`
	Audience string   `json:"audience"`
	APIID    string   `json:"api_id"`
	Scopes   []string `json:"scopes"`
	// Claims are static claims added to every token of the grant ({} for
	// none).
	Claims map[string]json.RawMessage `json:"claims"`
	// TokenLifetime is the grant's token lifetime in seconds; absent: the
	// API's.
	TokenLifetime int64     `json:"token_lifetime,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func grantResource(g authz.Grant) GrantResource {
	sc := g.Scopes
	if sc == nil {
		sc = []string{}
	}
	claims := map[string]json.RawMessage{}
	if len(g.Claims) > 0 {
		// Stored claims are a JSON object manage wrote; an unreadable one
		// shows as none rather than failing the read.
		_ = json.Unmarshal(g.Claims, &claims)
	}
	return GrantResource{ID: g.ID, Audience: g.Audience, APIID: g.APIID, Scopes: sc, Claims: claims,
		TokenLifetime: int64(g.TokenLifetime / time.Second), CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
}

// RatePolicy is a token bucket: per_second tokens a second, at most burst
// at once.
type RatePolicy struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst,omitempty"`
}

// QuotaPolicy bounds the tokens issued per UTC hour and per UTC day.
type QuotaPolicy struct {
	PerHour int64 `json:"per_hour,omitempty"`
	PerDay  int64 `json:"per_day,omitempty"`
}

// Policy is an application's token policy: rate, quotas, their mode
// ("enforce" or "observe") and the networks (CIDRs) its requests may come
// from. {} is none: the server's default policy applies.
type Policy struct {
	Rate       *RatePolicy  `json:"rate,omitempty"`
	Quota      *QuotaPolicy `json:"quota,omitempty"`
	Mode       string       `json:"mode,omitempty"`
	AllowedIPs []string     `json:"allowed_ips,omitempty"`
}

func (p *Policy) input() *manage.PolicyInput {
	if p == nil {
		return nil
	}
	in := &manage.PolicyInput{Mode: p.Mode, AllowedIPs: p.AllowedIPs}
	if p.Rate != nil {
		in.Rate = &authz.Rate{PerSecond: p.Rate.PerSecond, Burst: p.Rate.Burst}
	}
	if p.Quota != nil {
		in.Quota = &authz.Quota{PerHour: p.Quota.PerHour, PerDay: p.Quota.PerDay}
	}
	return in
}

func policyResource(p authz.Policy) Policy {
	var out Policy
	if p.Rate != nil {
		out.Rate = &RatePolicy{PerSecond: p.Rate.PerSecond, Burst: p.Rate.Burst}
	}
	if p.Quota != nil {
		out.Quota = &QuotaPolicy{PerHour: p.Quota.PerHour, PerDay: p.Quota.PerDay}
	}
	out.Mode = string(p.Mode)
	for _, n := range p.AllowedIPs {
		out.AllowedIPs = append(out.AllowedIPs, n.String())
	}
	return out
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

	// IntrospectAudiences are the audiences whose tokens, issued to other
	// applications, the application may introspect (RFC 7662 §4).
	IntrospectAudiences []string `json:"introspect_audiences"`
	// CanIntrospect is true when IntrospectAudiences is not empty.
	// Deprecated: read introspect_audiences; removed in the next release.
	CanIntrospect bool `json:"can_introspect"`
	// Policy is the application's own token policy; {} when it has none
	// and the server's default applies.
	Policy Policy `json:"policy"`
	// TokenReuse is the application's own opt-in token reuse
	// (docs/token-reuse.md); null when it has none and its APIs' apply.
	TokenReuse *TokenReuse `json:"token_reuse"`
}

func applicationResource(a authz.Application, grants []authz.Grant) ApplicationResource {
	aud := a.IntrospectAudiences
	if aud == nil {
		aud = []string{}
	}
	out := ApplicationResource{
		ClientID: a.ClientID, Name: a.Name, Description: a.Description, Disabled: a.Disabled, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		IntrospectAudiences: aud, CanIntrospect: len(aud) > 0, Policy: policyResource(a.Policy),
		TokenReuse: tokenReuseResource(a.TokenReuse),
	}
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
	// ClientSecret and Secret are absent for an application created with
	// "client_secret": false.
	ClientSecret string          `json:"client_secret,omitempty"`
	Secret       *SecretResource `json:"secret,omitempty"`
	// Credentials are those given in the request's credentials, created
	// with the application; absent if none were.
	Credentials []CredentialResource `json:"credentials,omitempty"`
}

// GrantRequest names an API by audience and the scopes to grant on it;
// omitted scopes grant every scope the API defines now, except on the
// management API, where they grant the scopes the caller holds.
type GrantRequest struct {
	Audience string    `json:"audience"`
	Scopes   *[]string `json:"scopes"`
	// Claims are static claims added to every token of the grant; needs
	// update:applications.
	Claims map[string]json.RawMessage `json:"claims"`
	// TokenLifetime, in seconds, shortens the API's token lifetime for
	// this grant (60 up to the API's); needs update:applications.
	TokenLifetime int64 `json:"token_lifetime"`
}

func (g GrantRequest) input() manage.GrantInput {
	return manage.GrantInput{Audience: g.Audience, Scopes: g.Scopes, Claims: g.Claims, TokenLifetime: seconds(g.TokenLifetime)}
}

// seconds converts a request's seconds to a Duration, saturating instead
// of overflowing so that manage refuses an absurd value as out of range.
func seconds(n int64) time.Duration {
	const most = int64(1<<63-1) / int64(time.Second)
	if n > most {
		n = most
	}
	if n < -most {
		n = -most
	}
	return time.Duration(n) * time.Second
}

// CreateApplicationRequest is the body of POST /admin/v1/applications.
type CreateApplicationRequest struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Grants      []GrantRequest `json:"grants"`
	// IntrospectAudiences lets a resource server introspect tokens of
	// these audiences (RFC 7662 §4); needs update:introspection.
	IntrospectAudiences *[]string `json:"introspect_audiences"`
	// CanIntrospect true means every audience but the management API's.
	// Deprecated: use introspect_audiences.
	CanIntrospect *bool `json:"can_introspect"`
	// Policy is the application's token policy; needs update:applications.
	Policy *Policy `json:"policy"`
	// TokenReuse is the application's opt-in token reuse
	// (docs/token-reuse.md); needs update:applications.
	TokenReuse *TokenReuse `json:"token_reuse"`
	// ClientSecret false creates the application without a client secret,
	// for one that authenticates with a credential (POST …/credentials);
	// absent: without one if credentials are given, else with one; true:
	// with one, credentials or not.
	ClientSecret *bool `json:"client_secret"`
	// Credentials are secretless credentials to create with the
	// application, each as the body of POST …/credentials (at most 10);
	// needs only create:applications.
	Credentials []CreateCredentialRequest `json:"credentials"`
}

// UpdateApplicationRequest is the body of PATCH
// /admin/v1/applications/{client_id}: present fields replace the
// application's, and only those.
type UpdateApplicationRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Disabled    *bool   `json:"disabled"`
	// IntrospectAudiences replaces the audiences the application may
	// introspect (RFC 7662 §4); needs update:introspection.
	IntrospectAudiences *[]string `json:"introspect_audiences"`
	// CanIntrospect true means every audience but the management API's,
	// false none. Deprecated: use introspect_audiences.
	CanIntrospect *bool `json:"can_introspect"`
	// Policy replaces the whole policy; {} clears it (the server's default
	// applies).
	Policy *Policy `json:"policy"`
	// TokenReuse sets the application's token reuse; null removes it (its
	// APIs' apply).
	TokenReuse TokenReusePatch `json:"token_reuse,omitzero"`
}

// CreateApplication serves POST /admin/v1/applications: 201 with the
// application, its grants and its client secret, shown this once.
func (h *Handler) CreateApplication(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req CreateApplicationRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	in := manage.NewApplication{Name: req.Name, Description: req.Description,
		Introspection: manage.Introspection{Audiences: req.IntrospectAudiences, CanIntrospect: req.CanIntrospect},
		Policy:        req.Policy.input(),
		TokenReuse:    tokenReuseInput(req.TokenReuse),
		// client_secret false, or credentials given without client_secret:
		// no secret (issue 10: a secretless application needs none).
		NoSecret: (req.ClientSecret != nil && !*req.ClientSecret) || (req.ClientSecret == nil && len(req.Credentials) > 0)}
	for _, g := range req.Grants {
		in.Grants = append(in.Grants, g.input())
	}
	for _, c := range req.Credentials {
		in.Credentials = append(in.Credentials, c.input())
	}
	created, err := h.Manage.CreateApplication(r.Context(), *actor, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/applications/"+created.Application.ClientID)
	out := CreatedApplication{ApplicationResource: applicationResource(created.Application, created.Grants), ClientSecret: created.ClientSecret}
	if created.ClientSecret != "" {
		sec := secretResource(created.Secret)
		out.Secret = &sec
	}
	for _, c := range created.Credentials {
		out.Credentials = append(out.Credentials, credentialResource(c))
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// ListApplications serves GET
// /admin/v1/applications?name_prefix=&disabled=&limit=&cursor=.
func (h *Handler) ListApplications(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
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
	apps, next, err := h.Manage.ListApplications(r.Context(), *actor, f, pg)
	if err != nil {
		return err
	}
	out := List[ApplicationResource]{Items: make([]ApplicationResource, 0, len(apps)), NextCursor: next}
	for _, a := range apps {
		out.Items = append(out.Items, applicationResource(a, nil))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GetApplication serves GET /admin/v1/applications/{client_id}, with grants.
func (h *Handler) GetApplication(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	app, grants, err := h.Manage.GetApplication(r.Context(), *actor, r.PathValue("client_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, applicationResource(app, grants))
	return nil
}

// UpdateApplication serves PATCH /admin/v1/applications/{client_id}.
func (h *Handler) UpdateApplication(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req UpdateApplicationRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	app, grants, err := h.Manage.UpdateApplication(r.Context(), *actor, r.PathValue("client_id"), manage.ApplicationChange{
		Name: req.Name, Description: req.Description, Disabled: req.Disabled,
		Introspection: manage.Introspection{Audiences: req.IntrospectAudiences, CanIntrospect: req.CanIntrospect},
		Policy:        req.Policy.input(),
		TokenReuse:    req.TokenReuse.change(),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, applicationResource(app, grants))
	return nil
}

// DeleteApplication serves DELETE /admin/v1/applications/{client_id}: 204.
func (h *Handler) DeleteApplication(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	if err := h.Manage.DeleteApplication(r.Context(), *actor, r.PathValue("client_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// CreateGrant serves POST /admin/v1/applications/{client_id}/grants: 201
// with the grant; 409 if the application already has a grant for the API.
func (h *Handler) CreateGrant(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req GrantRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	id := r.PathValue("client_id")
	g, err := h.Manage.CreateGrant(r.Context(), *actor, id, req.input())
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/applications/"+id+"/grants/"+g.ID)
	writeJSON(w, http.StatusCreated, grantResource(g))
	return nil
}

// ListGrants serves GET /admin/v1/applications/{client_id}/grants.
func (h *Handler) ListGrants(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	grants, err := h.Manage.ListGrants(r.Context(), *actor, r.PathValue("client_id"))
	if err != nil {
		return err
	}
	out, err := listPage(grants, func(g authz.Grant) string { return g.ID }, grantResource, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// UpdateGrantRequest is the body of PATCH
// /admin/v1/applications/{client_id}/grants/{grant_id}.
type UpdateGrantRequest struct {
	Scopes *[]string `json:"scopes"`
	// Claims replace every custom claim of the grant; {} removes them.
	Claims map[string]json.RawMessage `json:"claims"`
	// TokenLifetime replaces the grant's token lifetime in seconds; 0
	// returns to the API's.
	TokenLifetime *int64 `json:"token_lifetime"`
}

// UpdateGrant serves PATCH /admin/v1/applications/{client_id}/grants/{grant_id}:
// changes the scopes, claims or token lifetime the body names.
func (h *Handler) UpdateGrant(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req UpdateGrantRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	ch := manage.GrantChange{Scopes: req.Scopes, Claims: req.Claims}
	if req.TokenLifetime != nil {
		d := seconds(*req.TokenLifetime)
		ch.TokenLifetime = &d
	}
	g, err := h.Manage.UpdateGrant(r.Context(), *actor, r.PathValue("client_id"), r.PathValue("grant_id"), ch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, grantResource(g))
	return nil
}

// DeleteGrant serves DELETE /admin/v1/applications/{client_id}/grants/{grant_id}: 204.
func (h *Handler) DeleteGrant(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	if err := h.Manage.DeleteGrant(r.Context(), *actor, r.PathValue("client_id"), r.PathValue("grant_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
