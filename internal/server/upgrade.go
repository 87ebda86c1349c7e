package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// bootstrapAdminSetting records the client_id of the administrator the
// server created on the empty database.
const bootstrapAdminSetting = "bootstrap_admin_client_id"

// upgradeManagement brings a database bootstrapped by an older m2mauth up
// to this version's management scopes: the management API defines exactly
// authz.ManagementScopes, and the bootstrap administrator's grant holds
// every one of them (scopes added since are added to it; none is removed).
// Replicas starting together all reach the same state.
func (s *Server) upgradeManagement(ctx context.Context) error {
	api, err := s.store.GetAPIByIdentifier(ctx, authz.ManagementAudience)
	if err != nil {
		return fmt.Errorf("management API: %w", err)
	}
	now := authz.StoreTime(s.now())
	if !slices.Equal(api.Scopes, authz.ManagementScopes) {
		api.Scopes = slices.Clone(authz.ManagementScopes)
		api.UpdatedAt = now
		if err := s.store.UpdateAPI(ctx, api); err != nil {
			return fmt.Errorf("updating the management API's scopes: %w", err)
		}
		s.log.Info("management API scopes updated to this version's", "scopes", api.ScopeValues())
	}
	clientID, err := s.bootstrapAdmin(ctx, api)
	if err != nil || clientID == "" {
		return err
	}
	grants, err := s.store.ListGrants(ctx, clientID)
	if err != nil {
		return fmt.Errorf("bootstrap administrator's grants: %w", err)
	}
	for _, g := range grants {
		if g.APIID != api.ID {
			continue
		}
		var missing []string
		for _, sc := range authz.ManagementScopes {
			if !g.HasScope(sc.Value) {
				missing = append(missing, sc.Value)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		g.Scopes = append(g.Scopes, missing...)
		g.UpdatedAt = now
		if err := s.store.UpdateGrant(ctx, g); err != nil && !errors.Is(err, authz.ErrNotFound) {
			return fmt.Errorf("granting the bootstrap administrator the new management scopes: %w", err)
		}
		s.log.Info("bootstrap administrator granted the new management scopes", "client_id", clientID, "scopes", missing)
	}
	return nil
}

// bootstrapAdmin returns the client_id of the bootstrap administrator, or
// "" if it cannot be told (it was deleted before it was recorded). A
// database bootstrapped before the client_id was recorded gets it recorded
// now: the administrator is the application created in the same
// transaction as the management API, so with the same creation time.
func (s *Server) bootstrapAdmin(ctx context.Context, api authz.API) (string, error) {
	apps, _, err := s.store.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{Limit: 20})
	if err != nil {
		return "", fmt.Errorf("looking for the bootstrap administrator: %w", err)
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
		s.log.Debug("no bootstrap administrator found: its management scopes are not upgraded")
		return "", nil
	}
	stored, _, err := s.store.InitSetting(ctx, bootstrapAdminSetting, []byte(candidate))
	if err != nil {
		return "", fmt.Errorf("recording the bootstrap administrator: %w", err)
	}
	return string(stored), nil
}
