package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func newCredential(clientID string, n int) authz.Credential {
	return authz.Credential{
		ID:        fmt.Sprintf("cred_%s_%d", clientID, n),
		ClientID:  clientID,
		Type:      authz.CredentialJWKSURI,
		Config:    []byte(fmt.Sprintf(`{"jwks_uri":"https://keys.example/%d"}`, n)),
		CreatedAt: at(time.Duration(n) * time.Minute),
	}
}

func testCredentials(t *testing.T, open func(t *testing.T) authz.Store) {
	setup := func(t *testing.T) (authz.Store, []authz.Application) {
		s := open(t)
		apps := []authz.Application{newApp(1), newApp(2)}
		for _, a := range apps {
			noErr(t, s.CreateApplication(t.Context(), a, nil, nil))
		}
		return s, apps
	}

	t.Run("create and list round-trip every field in creation order", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		plain := newCredential(apps[0].ClientID, 1)
		full := newCredential(apps[0].ClientID, 2)
		full.Type = authz.CredentialJWKS
		full.Config = []byte(`{"jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}`)
		full.ExpiresAt = at(90 * 24 * time.Hour)
		full.LastUsedAt = at(3 * time.Minute)
		tied := newCredential(apps[0].ClientID, 3)
		tied.CreatedAt = full.CreatedAt // the ids order these two
		for _, c := range []authz.Credential{tied, plain, full} {
			noErr(t, s.CreateCredential(ctx, c))
		}
		noErr(t, s.CreateCredential(ctx, newCredential(apps[1].ClientID, 1)))
		got, err := s.ListCredentials(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "credentials", got, []authz.Credential{plain, full, tied})
	})

	t.Run("create for a missing application", func(t *testing.T) {
		s, _ := setup(t)
		wantErr(t, s.CreateCredential(t.Context(), newCredential("app_missing", 1)), authz.ErrNotFound)
	})

	t.Run("credential id taken", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		first := newCredential(apps[0].ClientID, 1)
		noErr(t, s.CreateCredential(ctx, first))
		dup := newCredential(apps[1].ClientID, 1)
		dup.ID = first.ID
		wantErr(t, s.CreateCredential(ctx, dup), authz.ErrConflict)
	})

	t.Run("delete", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		c := newCredential(apps[0].ClientID, 1)
		noErr(t, s.CreateCredential(ctx, c))
		wantErr(t, s.DeleteCredential(ctx, apps[1].ClientID, c.ID), authz.ErrNotFound) // another application's
		noErr(t, s.DeleteCredential(ctx, apps[0].ClientID, c.ID))
		wantErr(t, s.DeleteCredential(ctx, apps[0].ClientID, c.ID), authz.ErrNotFound)
		got, err := s.ListCredentials(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "credentials", got, []authz.Credential(nil))
	})

	t.Run("deleting the application deletes its credentials", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		noErr(t, s.CreateCredential(ctx, newCredential(apps[0].ClientID, 1)))
		noErr(t, s.DeleteApplication(ctx, apps[0].ClientID))
		noErr(t, s.CreateApplication(ctx, apps[0], nil, nil))
		got, err := s.ListCredentials(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "credentials", got, []authz.Credential(nil))
	})

	t.Run("in a management transaction", func(t *testing.T) {
		s, apps := setup(t)
		ctx := t.Context()
		c := newCredential(apps[0].ClientID, 1)
		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			if err := tx.CreateCredential(ctx, c); err != nil {
				return err
			}
			got, err := tx.ListCredentials(ctx, apps[0].ClientID)
			if err != nil {
				return err
			}
			same(t, "credentials in the transaction", got, []authz.Credential{c})
			return tx.DeleteCredential(ctx, apps[0].ClientID, c.ID)
		}))
		got, err := s.ListCredentials(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "credentials", got, []authz.Credential(nil))
	})
}
