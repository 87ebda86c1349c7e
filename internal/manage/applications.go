package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
)

// maxIntrospectAudiences bounds an application's introspect_audiences.
const maxIntrospectAudiences = 100

// GrantInput names an API by audience and the scopes to grant on it. Nil
// Scopes grant every scope the API defines now, except on the management
// API, where they grant the scopes the actor holds.
type GrantInput struct {
	Audience string
	Scopes   *[]string
	// Claims are static claims for the grant's tokens (see resolveClaims);
	// TokenLifetime, when not zero, shortens the API's. Setting either
	// needs update:applications.
	Claims        map[string]json.RawMessage
	TokenLifetime time.Duration
}

func (g GrantInput) tokenPolicy() bool { return len(g.Claims) > 0 || g.TokenLifetime != 0 }

// Introspection is how a request sets an application's introspection
// rights (RFC 7662 §4): Audiences, or the deprecated CanIntrospect flag,
// where true means every audience the actor may grant (every API but the
// management API) and false none. Setting either needs update:introspection.
type Introspection struct {
	Audiences     *[]string
	CanIntrospect *bool
}

func (in Introspection) given() bool { return in.Audiences != nil || in.CanIntrospect != nil }

// NewApplication is what CreateApplication creates.
type NewApplication struct {
	Name        string
	Description string
	Grants      []GrantInput
	Introspection
	// Policy, when not nil, is the application's token policy; setting it
	// needs update:applications.
	Policy *PolicyInput
	// TokenReuse is the application's opt-in token reuse
	// (docs/token-reuse.md), less than the token lifetime of every API
	// granted; the zero TokenReuse: off (the APIs' own apply). Setting it
	// needs update:applications.
	TokenReuse authz.TokenReuse
	// NoSecret creates the application without a client secret, for one
	// that authenticates with a credential added next (CreateCredential)
	// or given in Credentials. Credentials alone do not: the application
	// gets a secret as well unless NoSecret is set.
	NoSecret bool
	// Credentials are secretless credentials (CreateCredential) created
	// with the application, in its transaction: at most
	// MaxCredentialsPerApplication.
	Credentials []NewCredential
}

// CreatedApplication is a new application with its grants and the only
// copy of its client secret that will ever be shown.
type CreatedApplication struct {
	Application  authz.Application
	Grants       []authz.Grant
	Secret       authz.Secret
	ClientSecret string
	// Credentials are those created with it, in the order given.
	Credentials []authz.Credential
}

// CreateApplication creates an application with a client secret (none
// with NoSecret), the grants asked and the credentials given (each
// audited as credential.create, in the same transaction). Needs
// create:applications; a management-API grant may hold only scopes the
// actor holds, and introspection rights need update:introspection.
// Errors: Invalid, Forbidden, TooMany (more than
// MaxCredentialsPerApplication credentials).
func (s *Service) CreateApplication(ctx context.Context, actor Actor, in NewApplication) (CreatedApplication, error) {
	if err := actor.require(authz.ScopeCreateApplications); err != nil {
		return CreatedApplication{}, err
	}
	if err := validText("name", in.Name, maxNameLen, true); err != nil {
		return CreatedApplication{}, err
	}
	if err := validText("description", in.Description, maxDescLen, false); err != nil {
		return CreatedApplication{}, err
	}
	if in.given() {
		if err := actor.require(authz.ScopeUpdateIntrospection); err != nil {
			return CreatedApplication{}, err
		}
	}
	// A policy, custom claims and a token lifetime shape every token the
	// application gets: the same privilege as changing them later.
	if in.Policy != nil || in.TokenReuse != (authz.TokenReuse{}) || slices.ContainsFunc(in.Grants, GrantInput.tokenPolicy) {
		if err := actor.require(authz.ScopeUpdateApplications); err != nil {
			return CreatedApplication{}, err
		}
	}
	if err := validTokenReuse(in.TokenReuse, authz.MaxTokenLifetime); err != nil {
		return CreatedApplication{}, err
	}
	var policy authz.Policy
	if in.Policy != nil {
		var err error
		if policy, err = resolvePolicy(*in.Policy); err != nil {
			return CreatedApplication{}, err
		}
	}
	if len(in.Credentials) > MaxCredentialsPerApplication {
		return CreatedApplication{}, tooManyCredentials()
	}
	configs := make([][]byte, len(in.Credentials))
	for i, c := range in.Credentials {
		var err error
		if configs[i], err = c.check(s.AllowInsecureIssuers); err != nil {
			return CreatedApplication{}, credentialErr(i, err)
		}
	}
	seen := map[string]bool{}
	for _, g := range in.Grants {
		if seen[g.Audience] {
			return CreatedApplication{}, invalid("audience %q is granted twice", g.Audience)
		}
		seen[g.Audience] = true
	}
	clientID, err := authz.NewClientID(s.Rand)
	if err != nil {
		return CreatedApplication{}, storeErr(err, "application")
	}
	var out CreatedApplication
	err = s.manage(ctx, "application", func(t *txn) error {
		now := s.now()
		var grants []authz.Grant
		for _, gi := range in.Grants {
			g, err := s.resolveGrant(ctx, t, actor, clientID, gi, now)
			if err != nil {
				return err
			}
			grants = append(grants, g)
		}
		if err := appTokenReuseFits(ctx, t, in.TokenReuse, grants); err != nil {
			return err
		}
		app := authz.Application{ClientID: clientID, Name: in.Name, Description: in.Description, Policy: policy,
			TokenReuse: in.TokenReuse, CreatedAt: now, UpdatedAt: now}
		if in.given() {
			aud, err := introspectAudiences(ctx, t, in.Introspection)
			if err != nil {
				return err
			}
			app.IntrospectAudiences = aud
		}
		var (
			sec     authz.Secret
			secrets []authz.Secret
			plain   string
		)
		details := map[string]any{"name": app.Name, "grants": grantSummary(grants)}
		if !in.NoSecret {
			var err error
			if sec, plain, err = s.newSecret(clientID, now, time.Time{}); err != nil {
				return err
			}
			secrets = []authz.Secret{sec}
			details["secret_id"] = sec.ID
		}
		if err := t.CreateApplication(ctx, app, secrets, grants); err != nil {
			return err
		}
		if len(app.IntrospectAudiences) > 0 {
			details["introspect_audiences"] = app.IntrospectAudiences
		}
		if !app.Policy.IsZero() {
			details["policy"] = app.Policy
		}
		if app.TokenReuse.Enabled() {
			details["token_reuse"] = tokenReuseDetails(app.TokenReuse)
		}
		if claims := grantClaimsSummary(grants); len(claims) > 0 {
			details["grant_token_policy"] = claims
		}
		if err := t.audit(ctx, actor, "application.create", clientID, details); err != nil {
			return err
		}
		var creds []authz.Credential
		for i, in := range in.Credentials {
			c, err := s.insertCredential(ctx, t, actor, clientID, in, configs[i])
			if err != nil {
				return credentialErr(i, err)
			}
			creds = append(creds, c)
		}
		if grants == nil {
			grants = []authz.Grant{}
		}
		out = CreatedApplication{Application: app, Grants: grants, Secret: sec, ClientSecret: plain, Credentials: creds}
		return nil
	})
	return out, err
}

// credentialErr names credential i of a NewApplication in a refusal of
// it; other errors pass through.
func credentialErr(i int, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal && e.Kind != Unavailable {
		return &Error{Kind: e.Kind, Detail: fmt.Sprintf("credentials[%d]: %s", i, e.Detail), MissingScopes: e.MissingScopes}
	}
	return err
}

// introspectAudiences resolves in to the audiences to store: each an
// existing API's identifier, never the management API's, each once.
func introspectAudiences(ctx context.Context, tx authz.Tx, in Introspection) ([]string, error) {
	if in.Audiences != nil && in.CanIntrospect != nil {
		return nil, invalid("give introspect_audiences or the deprecated can_introspect, not both")
	}
	if in.CanIntrospect != nil {
		if !*in.CanIntrospect {
			return []string{}, nil
		}
		// Deprecated: every audience the actor may grant, as of now.
		var out []string
		pg := authz.Page{Limit: authz.MaxPageLimit}
		for {
			apis, next, err := tx.ListAPIs(ctx, authz.APIFilter{}, pg)
			if err != nil {
				return nil, err
			}
			for _, a := range apis {
				if !a.System {
					out = append(out, a.Identifier)
				}
			}
			if next == "" || len(out) >= maxIntrospectAudiences {
				break
			}
			pg.Cursor = next
		}
		if len(out) > maxIntrospectAudiences {
			return nil, invalid("can_introspect would name more than %d audiences; list them in introspect_audiences", maxIntrospectAudiences)
		}
		if out == nil {
			out = []string{}
		}
		return out, nil
	}
	list := *in.Audiences
	if len(list) > maxIntrospectAudiences {
		return nil, invalid("introspect_audiences names at most %d audiences", maxIntrospectAudiences)
	}
	out := make([]string, 0, len(list))
	for _, aud := range list {
		if aud == authz.ManagementAudience {
			return nil, invalid("management API tokens are never introspectable by an application")
		}
		if slices.Contains(out, aud) {
			return nil, invalid("audience %q is listed twice in introspect_audiences", aud)
		}
		if _, err := tx.GetAPIByIdentifier(ctx, aud); err != nil {
			if storeErr(err, "API").(*Error).Kind == NotFound {
				return nil, invalid("introspect_audiences: no API has identifier %q", aud)
			}
			return nil, err
		}
		out = append(out, aud)
	}
	return out, nil
}

// resolveGrant checks a grant request against the API it names and the
// actor's privilege, and returns the grant to store for application
// clientID.
func (s *Service) resolveGrant(ctx context.Context, tx authz.Tx, actor Actor, clientID string, in GrantInput, now time.Time) (authz.Grant, error) {
	if in.Audience == "" {
		return authz.Grant{}, invalid("a grant needs an audience")
	}
	api, err := tx.GetAPIByIdentifier(ctx, in.Audience)
	if err != nil {
		if storeErr(err, "API").(*Error).Kind == NotFound {
			return authz.Grant{}, invalid("no API has identifier %q", in.Audience)
		}
		return authz.Grant{}, err
	}
	scopes, err := grantScopes(api, actor, in.Scopes)
	if err != nil {
		return authz.Grant{}, err
	}
	claims, err := resolveClaims(api, in.Claims)
	if err != nil {
		return authz.Grant{}, err
	}
	lifetime, err := resolveTokenLifetime(api, in.TokenLifetime)
	if err != nil {
		return authz.Grant{}, err
	}
	id, err := authz.NewID(s.Rand, "grt_")
	if err != nil {
		return authz.Grant{}, err
	}
	return authz.Grant{ID: id, ClientID: clientID, APIID: api.ID, Audience: api.Identifier, Scopes: scopes,
		Claims: claims, TokenLifetime: lifetime, CreatedAt: now, UpdatedAt: now}, nil
}

// grantScopes returns the scopes a grant on api holds when asked for want
// (nil: not said): each defined by the API, each once. On the management
// API every scope must be one the actor holds, and nil means the actor's
// own scopes (OWASP ASVS V4.1.3: no one confers more than it has).
func grantScopes(api authz.API, actor Actor, want *[]string) ([]string, error) {
	var scopes []string
	switch {
	case want != nil:
		var unknown []string
		for _, sc := range *want {
			if !api.HasScope(sc) {
				unknown = append(unknown, sc)
			} else if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
		if len(unknown) > 0 {
			return nil, invalid("API %q does not define scope %s", api.Identifier, strings.Join(unknown, " "))
		}
	case api.System:
		for _, sc := range api.ScopeValues() {
			if actor.Has(sc) {
				scopes = append(scopes, sc)
			}
		}
	default:
		scopes = api.ScopeValues()
	}
	if api.System {
		if err := actor.bound(scopes, "a management API grant"); err != nil {
			return nil, err
		}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return scopes, nil
}

// newSecret generates a client secret for application clientID, returning
// the stored form and the secret to show once.
func (s *Service) newSecret(clientID string, now, expires time.Time) (authz.Secret, string, error) {
	id, plain, err := clientsecret.Generate(s.Rand)
	if err != nil {
		return authz.Secret{}, "", err
	}
	return authz.Secret{
		ID: id, ClientID: clientID, Hash: s.Hasher.Hash(plain), Prefix: clientsecret.DisplayPrefix(id),
		CreatedAt: now, UpdatedAt: now, ExpiresAt: expires,
	}, plain, nil
}

// ListApplications returns one page of applications. Needs
// read:applications.
func (s *Service) ListApplications(ctx context.Context, actor Actor, f authz.ApplicationFilter, p authz.Page) ([]authz.Application, string, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return nil, "", err
	}
	list, next, err := s.Store.ListApplications(ctx, f, p)
	return list, next, storeErr(err, "cursor")
}

// GetApplication returns the application clientID with its grants. Needs
// read:applications. Errors: NotFound.
func (s *Service) GetApplication(ctx context.Context, actor Actor, clientID string) (authz.Application, []authz.Grant, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return authz.Application{}, nil, err
	}
	app, err := s.Store.GetApplication(ctx, clientID)
	if err != nil {
		return authz.Application{}, nil, storeErr(err, "application")
	}
	grants, err := s.Store.ListGrants(ctx, clientID)
	if err != nil {
		return authz.Application{}, nil, storeErr(err, "application")
	}
	if grants == nil {
		grants = []authz.Grant{}
	}
	return app, grants, nil
}

// ApplicationChange is what UpdateApplication changes: present (non-nil)
// fields replace the application's.
type ApplicationChange struct {
	Name        *string
	Description *string
	Disabled    *bool
	Introspection
	// Policy replaces the whole policy; a zero PolicyInput clears it (the
	// server's default applies).
	Policy *PolicyInput
	// TokenReuse replaces the application's token reuse
	// (docs/token-reuse.md); a pointer to the zero TokenReuse removes it
	// (the APIs' own apply).
	TokenReuse *authz.TokenReuse
}

// UpdateApplication changes the fields of application clientID that ch
// names, and no other, and returns it as it is now with its grants.
// Disabling takes effect on its next token request. Needs
// update:applications, and update:introspection to change introspection
// rights; the application may hold no management scope the actor lacks.
// An application cannot disable itself, and the last administrator cannot
// be disabled. Errors: Invalid, Forbidden, NotFound, Conflict,
// LastAdministrator.
func (s *Service) UpdateApplication(ctx context.Context, actor Actor, clientID string, ch ApplicationChange) (authz.Application, []authz.Grant, error) {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return authz.Application{}, nil, err
	}
	if ch.given() {
		if err := actor.require(authz.ScopeUpdateIntrospection); err != nil {
			return authz.Application{}, nil, err
		}
	}
	if ch.Name != nil {
		if err := validText("name", *ch.Name, maxNameLen, true); err != nil {
			return authz.Application{}, nil, err
		}
	}
	if ch.Description != nil {
		if err := validText("description", *ch.Description, maxDescLen, false); err != nil {
			return authz.Application{}, nil, err
		}
	}
	if ch.Disabled != nil && *ch.Disabled && clientID == actor.ClientID {
		return authz.Application{}, nil, conflict("an application cannot disable itself; use another administrator")
	}
	if ch.TokenReuse != nil {
		if err := validTokenReuse(*ch.TokenReuse, authz.MaxTokenLifetime); err != nil {
			return authz.Application{}, nil, err
		}
	}
	var policy *authz.Policy
	if ch.Policy != nil {
		p, err := resolvePolicy(*ch.Policy)
		if err != nil {
			return authz.Application{}, nil, err
		}
		if clientID == actor.ClientID && !allowsActor(p, actor) {
			return authz.Application{}, nil, conflict("allowed_ips would shut this application out of the address it calls from (%s); change it from there or from another administrator", actor.RemoteAddr)
		}
		policy = &p
	}
	var app authz.Application
	var grants []authz.Grant
	err := s.manage(ctx, "application", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		if ch.TokenReuse != nil {
			grants, err := t.ListGrants(ctx, clientID)
			if err != nil {
				return err
			}
			if err := appTokenReuseFits(ctx, t, *ch.TokenReuse, grants); err != nil {
				return err
			}
		}
		p := authz.ApplicationPatch{Name: ch.Name, Description: ch.Description, Disabled: ch.Disabled, Policy: policy,
			TokenReuse: ch.TokenReuse, UpdatedAt: s.now()}
		if ch.given() {
			aud, err := introspectAudiences(ctx, t, ch.Introspection)
			if err != nil {
				return err
			}
			p.IntrospectAudiences = &aud
		}
		update := func() error {
			var err error
			app, err = t.UpdateApplication(ctx, clientID, p)
			return err
		}
		var err error
		if ch.Disabled != nil && *ch.Disabled {
			err = s.keepAdministrator(ctx, t, update)
		} else {
			err = update()
		}
		if err != nil {
			return err
		}
		details := map[string]any{}
		if ch.Name != nil {
			details["name"] = app.Name
		}
		if ch.Description != nil {
			details["description_changed"] = true
		}
		if ch.Disabled != nil {
			details["disabled"] = app.Disabled
		}
		if p.IntrospectAudiences != nil {
			details["introspect_audiences"] = app.IntrospectAudiences
		}
		if p.Policy != nil {
			details["policy"] = policyDetails(app.Policy)
		}
		if p.TokenReuse != nil {
			details["token_reuse"] = tokenReuseDetails(app.TokenReuse) // null: removed
		}
		if err := t.audit(ctx, actor, "application.update", clientID, details); err != nil {
			return err
		}
		grants, err = t.ListGrants(ctx, clientID)
		return err
	})
	if err != nil {
		return authz.Application{}, nil, err
	}
	if grants == nil {
		grants = []authz.Grant{}
	}
	return app, grants, nil
}

// DeleteApplication removes application clientID with its secrets and
// grants; its next token request fails. Needs delete:applications; the
// application may hold no management scope the actor lacks. An
// application cannot delete itself, and the last administrator cannot be
// deleted. Errors: Forbidden, NotFound, Conflict, LastAdministrator.
func (s *Service) DeleteApplication(ctx context.Context, actor Actor, clientID string) error {
	if err := actor.require(authz.ScopeDeleteApplications); err != nil {
		return err
	}
	if clientID == actor.ClientID {
		return conflict("an application cannot delete itself; use another administrator")
	}
	return s.manage(ctx, "application", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		if err := s.keepAdministrator(ctx, t, func() error { return t.DeleteApplication(ctx, clientID) }); err != nil {
			return err
		}
		return t.audit(ctx, actor, "application.delete", clientID, nil)
	})
}

// CreateGrant grants application clientID scopes of one more API. Needs
// update:applications; the application may hold no management scope the
// actor lacks, and a management-API grant only scopes the actor holds.
// Errors: Invalid, Forbidden, NotFound, Conflict (it already has a grant
// for the API).
func (s *Service) CreateGrant(ctx context.Context, actor Actor, clientID string, in GrantInput) (authz.Grant, error) {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return authz.Grant{}, err
	}
	var g authz.Grant
	err := s.manage(ctx, "application", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		var err error
		if g, err = s.resolveGrant(ctx, t, actor, clientID, in, s.now()); err != nil {
			return err
		}
		if err := t.CreateGrant(ctx, g); err != nil {
			if e := storeErr(err, "grant"); e.(*Error).Kind == Conflict {
				return conflict("the application already has a grant for %s; change its scopes with PATCH", strconv.Quote(g.Audience))
			}
			return err
		}
		details := map[string]any{"grant_id": g.ID, "audience": g.Audience, "scopes": g.Scopes}
		if len(g.Claims) > 0 {
			details["claims"] = g.Claims
		}
		if g.TokenLifetime != 0 {
			details["token_lifetime"] = int64(g.TokenLifetime / time.Second)
		}
		return t.audit(ctx, actor, "grant.create", clientID, details)
	})
	return g, err
}

// ListGrants returns the grants of application clientID. Needs
// read:applications. Errors: NotFound.
func (s *Service) ListGrants(ctx context.Context, actor Actor, clientID string) ([]authz.Grant, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetApplication(ctx, clientID); err != nil {
		return nil, storeErr(err, "application")
	}
	grants, err := s.Store.ListGrants(ctx, clientID)
	return grants, storeErr(err, "grant")
}

// GrantChange is what UpdateGrant changes: present fields replace the
// grant's. Claims, when not nil, replace every claim (empty: none);
// TokenLifetime, when not nil, replaces the lifetime (0: the API's).
type GrantChange struct {
	Scopes        *[]string
	Claims        map[string]json.RawMessage
	TokenLifetime *time.Duration
}

// UpdateGrant changes the scopes, custom claims or token lifetime of grant
// grantID of application clientID, as ch names. Needs update:applications;
// the application may hold no management scope the actor lacks, and a
// management-API grant only scopes the actor holds. Narrowing the last
// administrator's management grant is refused. Errors: Invalid,
// Forbidden, NotFound, LastAdministrator.
func (s *Service) UpdateGrant(ctx context.Context, actor Actor, clientID, grantID string, ch GrantChange) (authz.Grant, error) {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return authz.Grant{}, err
	}
	if ch.Scopes == nil && ch.Claims == nil && ch.TokenLifetime == nil {
		return authz.Grant{}, invalid("give scopes, claims or token_lifetime")
	}
	if ch.Scopes != nil && *ch.Scopes == nil {
		return authz.Grant{}, invalid("scopes must be a list")
	}
	var g authz.Grant
	err := s.manage(ctx, "grant", func(t *txn) error {
		var err error
		if g, err = t.GetGrant(ctx, clientID, grantID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		api, err := t.GetAPI(ctx, g.APIID)
		if err != nil {
			return err
		}
		details := map[string]any{"grant_id": g.ID, "audience": g.Audience}
		if ch.Scopes != nil {
			if g.Scopes, err = grantScopes(api, actor, ch.Scopes); err != nil {
				return err
			}
			details["scopes"] = g.Scopes
		}
		if ch.Claims != nil {
			if g.Claims, err = resolveClaims(api, ch.Claims); err != nil {
				return err
			}
			details["claims"] = claimsDetails(g.Claims)
		}
		if ch.TokenLifetime != nil {
			if g.TokenLifetime, err = resolveTokenLifetime(api, *ch.TokenLifetime); err != nil {
				return err
			}
			details["token_lifetime"] = int64(g.TokenLifetime / time.Second)
		}
		g.UpdatedAt = s.now()
		update := func() error { return t.UpdateGrant(ctx, g) }
		if api.System && ch.Scopes != nil {
			err = s.keepAdministrator(ctx, t, update)
		} else {
			err = update()
		}
		if err != nil {
			return err
		}
		return t.audit(ctx, actor, "grant.update", clientID, details)
	})
	return g, err
}

// DeleteGrant removes grant grantID of application clientID. Needs
// update:applications; the application may hold no management scope the
// actor lacks. The last administrator's management grant cannot be
// deleted. Errors: Forbidden, NotFound, LastAdministrator.
func (s *Service) DeleteGrant(ctx context.Context, actor Actor, clientID, grantID string) error {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return err
	}
	return s.manage(ctx, "grant", func(t *txn) error {
		g, err := t.GetGrant(ctx, clientID, grantID)
		if err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		if err := s.keepAdministrator(ctx, t, func() error { return t.DeleteGrant(ctx, clientID, grantID) }); err != nil {
			return err
		}
		return t.audit(ctx, actor, "grant.delete", clientID, map[string]any{"grant_id": g.ID, "audience": g.Audience})
	})
}

// grantClaimsSummary lists audience → claims and token lifetime of the
// grants that have either, for the audit log.
func grantClaimsSummary(grants []authz.Grant) map[string]any {
	out := map[string]any{}
	for _, g := range grants {
		if len(g.Claims) == 0 && g.TokenLifetime == 0 {
			continue
		}
		d := map[string]any{}
		if len(g.Claims) > 0 {
			d["claims"] = g.Claims
		}
		if g.TokenLifetime != 0 {
			d["token_lifetime"] = int64(g.TokenLifetime / time.Second)
		}
		out[g.Audience] = d
	}
	return out
}

// grantSummary lists audience → scopes for the audit log.
func grantSummary(grants []authz.Grant) map[string][]string {
	out := make(map[string][]string, len(grants))
	for _, g := range grants {
		out[g.Audience] = g.Scopes
	}
	return out
}
