package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// stopError is an error of fn's own, which Manage must return as it is.
type stopError struct{ reason string }

func (e *stopError) Error() string { return "stopped: " + e.reason }

func testManage(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("commits every write together", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api, app := newAPI(1), newApp(1)
		sec, g := newSecret(app.ClientID, 1), newGrant(app.ClientID, api, 1, "read:things")
		later := newSecret(app.ClientID, 2)
		event := authz.AuditEvent{ID: "evt_1", Time: at(time.Minute), Actor: "app_admin", Action: "application.create", Target: app.ClientID}
		name := "Renamed"
		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			noErr(t, tx.CreateAPI(ctx, api))
			noErr(t, tx.CreateApplication(ctx, app, []authz.Secret{sec}, nil))
			noErr(t, tx.CreateGrant(ctx, g))
			noErr(t, tx.CreateSecret(ctx, later))
			_, err := tx.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{Name: &name, UpdatedAt: at(time.Hour)})
			noErr(t, err)
			noErr(t, tx.RevokeToken(ctx, "jti-1", at(2*time.Hour)))
			return tx.AppendAudit(ctx, []authz.AuditEvent{event})
		}))

		app.Name, app.UpdatedAt = name, at(time.Hour)
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "client", *c, authz.Client{
			Application: app,
			Secrets:     []authz.Secret{sec, later},
			Grants:      []authz.ClientGrant{{Grant: g, API: &api}},
		})
		revoked, err := s.ListRevoked(ctx)
		noErr(t, err)
		same(t, "deny-list", revoked, map[string]time.Time{"jti-1": at(2 * time.Hour)})
		events, _, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "audit log", events, []authz.AuditEvent{event})
	})

	t.Run("reads see the transaction's own writes, others only after the commit", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api, app := newAPI(1), newApp(1)
		sec, g := newSecret(app.ClientID, 1), newGrant(app.ClientID, api, 1, "read:things", "write:things")
		yes := true
		scopes := []authz.Scope{{Value: "read:things"}}
		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			noErr(t, tx.CreateAPI(ctx, api))
			got, err := tx.GetAPI(ctx, api.ID)
			noErr(t, err)
			same(t, "GetAPI", got, api)
			got, err = tx.GetAPIByIdentifier(ctx, api.Identifier)
			noErr(t, err)
			same(t, "GetAPIByIdentifier", got, api)
			list, _, err := tx.ListAPIs(ctx, authz.APIFilter{}, authz.Page{})
			noErr(t, err)
			same(t, "ListAPIs", list, []authz.API{api})

			noErr(t, tx.CreateApplication(ctx, app, nil, nil))
			noErr(t, tx.CreateSecret(ctx, sec))
			noErr(t, tx.CreateGrant(ctx, g))
			gotApp, err := tx.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: at(time.Hour)})
			noErr(t, err)
			app.Disabled, app.UpdatedAt = true, at(time.Hour)
			same(t, "UpdateApplication", gotApp, app)
			gotApp, err = tx.GetApplication(ctx, app.ClientID)
			noErr(t, err)
			same(t, "GetApplication", gotApp, app)
			secrets, err := tx.ListSecrets(ctx, app.ClientID)
			noErr(t, err)
			same(t, "ListSecrets", secrets, []authz.Secret{sec})
			gotGrant, err := tx.GetGrant(ctx, app.ClientID, g.ID)
			noErr(t, err)
			same(t, "GetGrant", gotGrant, g)
			grants, err := tx.ListGrants(ctx, app.ClientID)
			noErr(t, err)
			same(t, "ListGrants", grants, []authz.Grant{g})

			got, err = tx.UpdateAPI(ctx, api.ID, authz.APIPatch{Scopes: &scopes, UpdatedAt: at(time.Hour)})
			noErr(t, err)
			api.Scopes, api.UpdatedAt = scopes, at(time.Hour)
			same(t, "UpdateAPI", got, api)
			g.Scopes, g.UpdatedAt = []string{"read:things"}, at(time.Hour)
			grants, err = tx.ListGrantsForAPI(ctx, api.ID)
			noErr(t, err)
			same(t, "ListGrantsForAPI after the API's update", grants, []authz.Grant{g})

			noErr(t, tx.DeleteSecret(ctx, app.ClientID, sec.ID))
			secrets, err = tx.ListSecrets(ctx, app.ClientID)
			noErr(t, err)
			same(t, "ListSecrets after the delete", secrets, []authz.Secret(nil))

			// The Store's own reads see what is committed: nothing yet.
			_, err = s.GetApplication(ctx, app.ClientID)
			wantErr(t, err, authz.ErrNotFound)
			_, err = s.GetAPI(ctx, api.ID)
			wantErr(t, err, authz.ErrNotFound)
			return nil
		}))
		got, err := s.GetApplication(ctx, app.ClientID)
		noErr(t, err)
		same(t, "GetApplication after the commit", got, app)
		grants, err := s.ListGrantsForAPI(ctx, api.ID)
		noErr(t, err)
		same(t, "ListGrantsForAPI after the commit", grants, []authz.Grant{g})
	})

	t.Run("an error from fn rolls back every write and comes back as it is", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api, app := newAPI(1), newApp(1)
		sec := newSecret(app.ClientID, 1)
		noErr(t, s.CreateAPI(ctx, api))
		noErr(t, s.CreateApplication(ctx, app, []authz.Secret{sec}, nil))
		stop := &stopError{"after several writes"}
		name, lifetime := "Renamed", time.Minute
		err := s.Manage(ctx, func(tx authz.Tx) error {
			noErr(t, tx.CreateAPI(ctx, newAPI(2)))
			noErr(t, tx.CreateApplication(ctx, newApp(2), []authz.Secret{newSecret(newApp(2).ClientID, 1)}, nil))
			_, err := tx.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{Name: &name, TokensNotBefore: at(time.Hour), UpdatedAt: at(time.Hour)})
			noErr(t, err)
			_, err = tx.UpdateAPI(ctx, api.ID, authz.APIPatch{TokenLifetime: &lifetime, UpdatedAt: at(time.Hour)})
			noErr(t, err)
			noErr(t, tx.CreateGrant(ctx, newGrant(app.ClientID, api, 1)))
			noErr(t, tx.RotateSecret(ctx, newSecret(app.ClientID, 2), at(time.Hour)))
			noErr(t, tx.RevokeToken(ctx, "jti-1", at(time.Hour)))
			noErr(t, tx.AppendAudit(ctx, []authz.AuditEvent{{ID: "evt_1", Time: at(0), Action: "application.update"}}))
			return stop
		})
		if err != stop {
			t.Errorf("Manage returned %v (%T), want fn's error itself", err, err)
		}
		var target *stopError
		if !errors.As(err, &target) || target != stop {
			t.Errorf("errors.As(%v) = %v, want fn's error", err, target)
		}

		_, err = s.GetAPI(ctx, newAPI(2).ID)
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetApplication(ctx, newApp(2).ClientID)
		wantErr(t, err, authz.ErrNotFound)
		gotAPI, err := s.GetAPI(ctx, api.ID)
		noErr(t, err)
		same(t, "API", gotAPI, api)
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "client", *c, authz.Client{Application: app, Secrets: []authz.Secret{sec}})
		revoked, err := s.ListRevoked(ctx)
		noErr(t, err)
		same(t, "deny-list", revoked, map[string]time.Time{})
		events, _, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "audit log", events, []authz.AuditEvent(nil))
	})

	t.Run("a Tx method's error comes back as it is", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		name := "Renamed"
		var txErr error
		err := s.Manage(ctx, func(tx authz.Tx) error {
			_, txErr = tx.UpdateApplication(ctx, "app_missing", authz.ApplicationPatch{Name: &name, UpdatedAt: at(0)})
			return txErr
		})
		wantErr(t, err, authz.ErrNotFound)
		if err != txErr {
			t.Errorf("Manage returned %v, want the Tx method's error %v", err, txErr)
		}
	})

	t.Run("a failed method changes nothing and the transaction goes on", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api, app := newAPI(1), newApp(1)
		sec := newSecret(app.ClientID, 1)
		noErr(t, s.CreateAPI(ctx, api))
		noErr(t, s.CreateApplication(ctx, app, []authz.Secret{sec}, nil))
		fresh := newApp(2)
		name := "Renamed"
		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			// The application goes in before the second grant fails.
			err := tx.CreateApplication(ctx, fresh, []authz.Secret{newSecret(fresh.ClientID, 1)},
				[]authz.Grant{newGrant(fresh.ClientID, api, 1), newGrant(fresh.ClientID, api, 2)})
			wantErr(t, err, authz.ErrConflict)
			_, err = tx.GetApplication(ctx, fresh.ClientID)
			wantErr(t, err, authz.ErrNotFound)
			dup := newSecret(app.ClientID, 2)
			dup.ID = sec.ID
			wantErr(t, tx.RotateSecret(ctx, dup, at(time.Hour)), authz.ErrConflict)
			wantErr(t, tx.CreateAPI(ctx, api), authz.ErrConflict)
			_, err = tx.UpdateAPI(ctx, "api_missing", authz.APIPatch{Name: &name, UpdatedAt: at(time.Hour)})
			wantErr(t, err, authz.ErrNotFound)
			wantErr(t, tx.DeleteApplication(ctx, "app_missing"), authz.ErrNotFound)
			wantErr(t, tx.ExpireSecrets(ctx, "app_missing", "", at(time.Hour), at(0)), authz.ErrNotFound)
			wantErr(t, tx.CreateGrant(ctx, newGrant("app_missing", api, 1)), authz.ErrNotFound)
			_, _, err = tx.ListAPIs(ctx, authz.APIFilter{}, authz.Page{Cursor: "!not a cursor!"})
			wantErr(t, err, authz.ErrInvalid)
			_, err = tx.GetGrant(ctx, app.ClientID, "grant_missing")
			wantErr(t, err, authz.ErrNotFound)

			_, err = tx.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{Name: &name, UpdatedAt: at(time.Hour)})
			return err
		}))
		_, err := s.GetApplication(ctx, fresh.ClientID)
		wantErr(t, err, authz.ErrNotFound)
		grants, err := s.ListGrantsForAPI(ctx, api.ID)
		noErr(t, err)
		same(t, "grants", grants, []authz.Grant(nil))
		app.Name, app.UpdatedAt = name, at(time.Hour)
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "client", *c, authz.Client{Application: app, Secrets: []authz.Secret{sec}})
	})

	t.Run("revocations and audit events inside a transaction", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		events := []authz.AuditEvent{
			{ID: "evt_1", Time: at(time.Minute), Actor: "app_admin", Action: "token.revoke", Target: "jti-1"},
			{ID: "evt_2", Time: at(2 * time.Minute), Actor: "app_admin", Action: "token.revoke", Target: "jti-2"},
		}
		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			noErr(t, tx.RevokeToken(ctx, "jti-1", at(time.Hour)))
			noErr(t, tx.RevokeToken(ctx, "jti-2", at(2*time.Hour)))
			noErr(t, tx.RevokeToken(ctx, "jti-1", at(30*time.Minute))) // the later expiry stays
			noErr(t, tx.AppendAudit(ctx, nil))
			noErr(t, tx.AppendAudit(ctx, events[:1]))
			// An id taken inserts none of the batch, and the rest stays.
			wantErr(t, tx.AppendAudit(ctx, []authz.AuditEvent{events[1], events[0]}), authz.ErrConflict)
			return tx.AppendAudit(ctx, events[1:])
		}))
		revoked, err := s.ListRevoked(ctx)
		noErr(t, err)
		same(t, "deny-list", revoked, map[string]time.Time{"jti-1": at(time.Hour), "jti-2": at(2 * time.Hour)})
		got, _, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "audit log", got, []authz.AuditEvent{events[1], events[0]})
	})

	t.Run("a Tx refuses use after fn returns", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		var leaked authz.Tx
		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			leaked = tx
			return nil
		}))
		if err := leaked.CreateAPI(ctx, newAPI(1)); err == nil {
			t.Error("CreateAPI on a finished Tx succeeded")
		}
		if _, err := leaked.GetAPI(ctx, newAPI(1).ID); err == nil {
			t.Error("GetAPI on a finished Tx succeeded")
		}
		_, err := s.GetAPI(ctx, newAPI(1).ID)
		wantErr(t, err, authz.ErrNotFound)
	})
}
