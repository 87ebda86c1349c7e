package manage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// BootstrapAdminSetting records the client_id of the administrator the
// server created on the empty database.
const BootstrapAdminSetting = "bootstrap_admin_client_id"

// DefaultAdminTokenLifetime and MaxAdminTokenLifetime bound the
// management API's token lifetime: 900 s by default, at most 3600 s.
const (
	DefaultAdminTokenLifetime = 15 * time.Minute
	MaxAdminTokenLifetime     = time.Hour
)

// administrator creates, in t, an application holding every management
// scope on the management API api, with a secret.
// now is the creation time: the bootstrap administrator's is the
// management API's, which is how an old database's is told (bootstrapAdminID).
func (s *Service) administrator(ctx context.Context, t *txn, api authz.API, name, description string, now time.Time) (CreatedApplication, error) {
	clientID, err := authz.NewClientID(s.Rand)
	if err != nil {
		return CreatedApplication{}, err
	}
	grantID, err := authz.NewID(s.Rand, "grt_")
	if err != nil {
		return CreatedApplication{}, err
	}
	sec, plain, err := s.newSecret(clientID, now, time.Time{})
	if err != nil {
		return CreatedApplication{}, err
	}
	app := authz.Application{ClientID: clientID, Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	g := authz.Grant{ID: grantID, ClientID: clientID, APIID: api.ID, Audience: api.Identifier, Scopes: allManagementScopes(), CreatedAt: now, UpdatedAt: now}
	if err := t.CreateApplication(ctx, app, []authz.Secret{sec}, []authz.Grant{g}); err != nil {
		return CreatedApplication{}, err
	}
	return CreatedApplication{Application: app, Grants: []authz.Grant{g}, Secret: sec, ClientSecret: plain}, nil
}

// Bootstrap creates, on a database without the management API, the
// management API and the first administrator, with its secret, and
// returns the administrator; on any other database it changes nothing and
// returns nil. Of servers starting together on one database exactly one
// creates them (management transactions are serialized).
func (s *Service) Bootstrap(ctx context.Context) (*CreatedApplication, error) {
	var out *CreatedApplication
	err := s.manage(ctx, "management API", func(t *txn) error {
		out = nil
		if _, err := managementAPI(ctx, t); err == nil {
			return nil
		} else if !errors.Is(err, authz.ErrNotFound) {
			return err
		}
		now := s.now()
		id, err := authz.NewID(s.Rand, "api_")
		if err != nil {
			return err
		}
		api := authz.API{
			ID: id, Identifier: authz.ManagementAudience, Name: "m2mauth management API",
			Scopes: slices.Clone(authz.ManagementScopes), TokenLifetime: s.adminTokenLifetime(), SigningAlg: s.DefaultAlg,
			System: true, CreatedAt: now, UpdatedAt: now,
		}
		if err := t.CreateAPI(ctx, api); err != nil {
			return err
		}
		admin, err := s.administrator(ctx, t, api, "m2mauth administrator", "Created when the server first started.", now)
		if err != nil {
			return err
		}
		if err := t.audit(ctx, System(), "administrator.bootstrap", admin.Application.ClientID, map[string]any{"secret_id": admin.Secret.ID}); err != nil {
			return err
		}
		out = &admin
		return nil
	})
	if err != nil || out == nil {
		return nil, err
	}
	if _, _, err := s.Store.InitSetting(ctx, BootstrapAdminSetting, []byte(out.Application.ClientID)); err != nil {
		return nil, fmt.Errorf("recording the bootstrap administrator: %w", err)
	}
	return out, nil
}

func (s *Service) adminTokenLifetime() time.Duration {
	if s.AdminTokenLifetime <= 0 {
		return DefaultAdminTokenLifetime
	}
	return min(s.AdminTokenLifetime, MaxAdminTokenLifetime)
}

// Upgrade brings the management API of a database made by an older
// m2mauth, or under another configuration, to this server's: it defines
// exactly authz.ManagementScopes, its token lifetime is AdminTokenLifetime,
// and the bootstrap administrator is granted the scopes this version adds
// (only those: a scope an operator took from it stays taken). Audited as
// "management.upgrade" when it changes anything. Servers starting together
// all reach the same state.
func (s *Service) Upgrade(ctx context.Context) error {
	bootstrapAdmin, err := s.bootstrapAdminID(ctx)
	if err != nil {
		return err
	}
	return s.manage(ctx, "management API", func(t *txn) error {
		api, err := managementAPI(ctx, t)
		if err != nil {
			return err
		}
		var added []string
		for _, sc := range authz.ManagementScopes {
			if !api.HasScope(sc.Value) {
				added = append(added, sc.Value)
			}
		}
		p := authz.APIPatch{UpdatedAt: s.now()}
		details := map[string]any{}
		if !slices.Equal(api.Scopes, authz.ManagementScopes) {
			scopes := slices.Clone(authz.ManagementScopes)
			p.Scopes = &scopes
			details["scopes"] = allManagementScopes()
		}
		if lt := s.adminTokenLifetime(); api.TokenLifetime != lt {
			p.TokenLifetime = &lt
			details["token_lifetime"] = int64(lt / time.Second)
		}
		if p.Scopes != nil || p.TokenLifetime != nil {
			if _, err := t.UpdateAPI(ctx, api.ID, p); err != nil {
				return err
			}
		}
		if len(added) > 0 && bootstrapAdmin != "" {
			grants, err := t.ListGrants(ctx, bootstrapAdmin)
			if err != nil {
				return err
			}
			for _, g := range grants {
				if g.APIID != api.ID {
					continue
				}
				for _, sc := range added {
					if !slices.Contains(g.Scopes, sc) {
						g.Scopes = append(g.Scopes, sc)
					}
				}
				g.UpdatedAt = s.now()
				if err := t.UpdateGrant(ctx, g); err != nil {
					return err
				}
				details["bootstrap_administrator_granted"] = added
			}
		}
		if len(details) == 0 {
			return nil
		}
		return t.audit(ctx, System(), "management.upgrade", api.ID, details)
	})
}

// bootstrapAdminID returns the client_id of the bootstrap administrator,
// or "" if it cannot be told. A database bootstrapped before the client_id
// was recorded gets it recorded now: the administrator is the application
// created in the same transaction as the management API, so with the same
// creation time.
func (s *Service) bootstrapAdminID(ctx context.Context) (string, error) {
	api, err := s.Store.GetAPIByIdentifier(ctx, authz.ManagementAudience)
	if err != nil {
		return "", storeErr(err, "management API")
	}
	apps, _, err := s.Store.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{Limit: 20})
	if err != nil {
		return "", storeErr(err, "application")
	}
	candidate := ""
	for _, a := range apps {
		if a.CreatedAt.Equal(api.CreatedAt) {
			candidate = a.ClientID
			break
		}
	}
	if candidate == "" {
		// Settings cannot be read without a value to initialise them with;
		// with no candidate there is nothing to record or upgrade.
		return "", nil
	}
	stored, _, err := s.Store.InitSetting(ctx, BootstrapAdminSetting, []byte(candidate))
	if err != nil {
		return "", fmt.Errorf("recording the bootstrap administrator: %w", err)
	}
	return string(stored), nil
}

// Recover creates a new administrator holding every management scope,
// with a secret, whatever the state of the other applications: the way
// back when no administrator is left. It is for the offline recovery
// command, run on the server's machine with the master key; audited as
// "administrator.recover". Errors: NotFound if the database was never
// bootstrapped.
func (s *Service) Recover(ctx context.Context) (CreatedApplication, error) {
	var out CreatedApplication
	err := s.manage(ctx, "management API", func(t *txn) error {
		api, err := managementAPI(ctx, t)
		if err != nil {
			return err
		}
		now := s.now()
		name := "m2mauth recovery administrator " + now.Format(time.RFC3339)
		if out, err = s.administrator(ctx, t, api, name, "Created by m2mauth admin recover.", now); err != nil {
			return err
		}
		return t.audit(ctx, System(), "administrator.recover", out.Application.ClientID, map[string]any{"secret_id": out.Secret.ID, "via": "m2mauth admin recover"})
	})
	return out, err
}
