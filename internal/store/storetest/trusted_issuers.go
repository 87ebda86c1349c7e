package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// newTrustedIssuer returns an OIDC trusted issuer found by discovery.
func newTrustedIssuer(n int) authz.TrustedIssuer {
	return authz.TrustedIssuer{
		ID:        fmt.Sprintf("ti_%02d", n),
		Name:      fmt.Sprintf("Issuer %d", n),
		Kind:      authz.TrustedIssuerOIDC,
		Issuer:    fmt.Sprintf("https://issuer%02d.example.com", n),
		SingleUse: true,
		CreatedAt: at(time.Duration(n) * time.Minute),
		UpdatedAt: at(time.Duration(n) * time.Minute),
	}
}

// newFederatedCredential returns credential n of application clientID
// matching the tokens of trusted issuer ti with subject "workload-n".
func newFederatedCredential(clientID string, ti authz.TrustedIssuer, n int) authz.Credential {
	config, err := json.Marshal(authz.FederatedCredentialConfig{TrustedIssuer: ti.ID, Subject: fmt.Sprintf("workload-%d", n)})
	if err != nil {
		panic(err)
	}
	return authz.Credential{
		ID:              fmt.Sprintf("fed_%s_%s_%d", clientID, ti.ID, n),
		ClientID:        clientID,
		Type:            authz.CredentialFederated,
		TrustedIssuerID: ti.ID,
		Config:          config,
		CreatedAt:       at(time.Duration(n) * time.Minute),
	}
}

func testTrustedIssuers(t *testing.T, open func(t *testing.T) authz.Store) {
	// setup returns a store with two applications and two trusted issuers.
	setup := func(t *testing.T) (authz.Store, []authz.Application, []authz.TrustedIssuer) {
		s := open(t)
		ctx := t.Context()
		apps := []authz.Application{newApp(1), newApp(2)}
		for _, a := range apps {
			noErr(t, s.CreateApplication(ctx, a, nil, nil))
		}
		tis := []authz.TrustedIssuer{newTrustedIssuer(1), newTrustedIssuer(2)}
		for _, ti := range tis {
			noErr(t, s.CreateTrustedIssuer(ctx, ti))
		}
		return s, apps, tis
	}

	t.Run("create, get, by issuer and list round-trip every field", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		oidc := newTrustedIssuer(1)
		oidc.JWKSURI = "https://issuer01.example.com/keys"
		k8s := newTrustedIssuer(2)
		k8s.Kind = authz.TrustedIssuerKubernetes
		k8s.Issuer = "https://kubernetes.default.svc.cluster.local"
		k8s.SingleUse = false
		// Inline keys are kept byte for byte, spacing and key order too.
		k8s.JWKS = json.RawMessage(`{ "keys": [{"kty":"OKP", "crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid":"k1"}] }`)
		k8s.UpdatedAt = at(time.Hour)
		spiffe := newTrustedIssuer(3)
		spiffe.Kind = authz.TrustedIssuerSPIFFE
		spiffe.TrustDomain = "prod.example.org"
		spiffe.Issuer = "spiffe://prod.example.org"
		spiffe.BundleURL = "https://bundle.prod.example.org/bundle.json"
		spiffe.SingleUse = false
		spiffe.CreatedAt = k8s.CreatedAt // the ids order these two
		spiffe.UpdatedAt = at(2 * time.Hour)
		for _, ti := range []authz.TrustedIssuer{spiffe, oidc, k8s} {
			noErr(t, s.CreateTrustedIssuer(ctx, ti))
		}
		for _, want := range []authz.TrustedIssuer{oidc, k8s, spiffe} {
			got, err := s.GetTrustedIssuer(ctx, want.ID)
			noErr(t, err)
			same(t, "GetTrustedIssuer "+want.ID, got, want)
			got, err = s.TrustedIssuerByIssuer(ctx, want.Issuer)
			noErr(t, err)
			same(t, "TrustedIssuerByIssuer "+want.Issuer, got, want)
		}
		list, err := s.ListTrustedIssuers(ctx)
		noErr(t, err)
		same(t, "ListTrustedIssuers", list, []authz.TrustedIssuer{oidc, k8s, spiffe})
		if string(list[1].JWKS) != string(k8s.JWKS) {
			t.Errorf("stored JWKS = %s, want %s", list[1].JWKS, k8s.JWKS)
		}
		if list[0].JWKS != nil || list[2].JWKS != nil {
			t.Errorf("JWKS of issuers without inline keys = %q, %q, want nil", list[0].JWKS, list[2].JWKS)
		}
	})

	t.Run("no trusted issuers", func(t *testing.T) {
		s := open(t)
		list, err := s.ListTrustedIssuers(t.Context())
		noErr(t, err)
		same(t, "ListTrustedIssuers", list, []authz.TrustedIssuer(nil))
	})

	t.Run("missing trusted issuer", func(t *testing.T) {
		s, _, tis := setup(t)
		ctx := t.Context()
		_, err := s.GetTrustedIssuer(ctx, "ti_missing")
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetTrustedIssuer(ctx, tis[0].Issuer) // an issuer is not an id
		wantErr(t, err, authz.ErrNotFound)
		// Issuers are compared exactly: RFC 8414 §2 and OpenID Connect
		// Discovery 1.0 §3 compare issuer identifiers as strings.
		for _, issuer := range []string{"https://issuer99.example.com", tis[0].Issuer + "/", "HTTPS://ISSUER01.EXAMPLE.COM", tis[0].ID} {
			_, err = s.TrustedIssuerByIssuer(ctx, issuer)
			wantErr(t, err, authz.ErrNotFound)
		}
	})

	t.Run("id taken", func(t *testing.T) {
		s, _, tis := setup(t)
		ctx := t.Context()
		dup := newTrustedIssuer(3)
		dup.ID = tis[0].ID
		wantErr(t, s.CreateTrustedIssuer(ctx, dup), authz.ErrConflict)
		_, err := s.TrustedIssuerByIssuer(ctx, dup.Issuer)
		wantErr(t, err, authz.ErrNotFound)
		got, err := s.GetTrustedIssuer(ctx, tis[0].ID)
		noErr(t, err)
		same(t, "trusted issuer", got, tis[0])
	})

	t.Run("issuer taken", func(t *testing.T) {
		s, _, tis := setup(t)
		ctx := t.Context()
		dup := newTrustedIssuer(3)
		dup.Kind = authz.TrustedIssuerKubernetes
		dup.Issuer = tis[1].Issuer
		wantErr(t, s.CreateTrustedIssuer(ctx, dup), authz.ErrConflict)
		_, err := s.GetTrustedIssuer(ctx, dup.ID)
		wantErr(t, err, authz.ErrNotFound)
		list, err := s.ListTrustedIssuers(ctx)
		noErr(t, err)
		same(t, "ListTrustedIssuers", list, tis)
	})

	t.Run("delete", func(t *testing.T) {
		s, _, tis := setup(t)
		ctx := t.Context()
		noErr(t, s.DeleteTrustedIssuer(ctx, tis[0].ID))
		wantErr(t, s.DeleteTrustedIssuer(ctx, tis[0].ID), authz.ErrNotFound)
		wantErr(t, s.DeleteTrustedIssuer(ctx, "ti_missing"), authz.ErrNotFound)
		_, err := s.GetTrustedIssuer(ctx, tis[0].ID)
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.TrustedIssuerByIssuer(ctx, tis[0].Issuer)
		wantErr(t, err, authz.ErrNotFound)
		list, err := s.ListTrustedIssuers(ctx)
		noErr(t, err)
		same(t, "ListTrustedIssuers", list, tis[1:])
		// The issuer may be added again, under its id and issuer.
		noErr(t, s.CreateTrustedIssuer(ctx, tis[0]))
	})

	t.Run("delete refused while a credential names the issuer", func(t *testing.T) {
		s, apps, tis := setup(t)
		ctx := t.Context()
		c := newFederatedCredential(apps[0].ClientID, tis[0], 1)
		noErr(t, s.CreateCredential(ctx, c))
		wantErr(t, s.DeleteTrustedIssuer(ctx, tis[0].ID), authz.ErrConflict)
		got, err := s.GetTrustedIssuer(ctx, tis[0].ID)
		noErr(t, err)
		same(t, "trusted issuer after the refused delete", got, tis[0])
		noErr(t, s.DeleteTrustedIssuer(ctx, tis[1].ID)) // named by none
		noErr(t, s.DeleteCredential(ctx, c.ClientID, c.ID))
		noErr(t, s.DeleteTrustedIssuer(ctx, tis[0].ID))
	})

	t.Run("deleting the application deletes its credentials and frees the issuer", func(t *testing.T) {
		s, apps, tis := setup(t)
		ctx := t.Context()
		noErr(t, s.CreateCredential(ctx, newFederatedCredential(apps[0].ClientID, tis[0], 1)))
		noErr(t, s.CreateCredential(ctx, newFederatedCredential(apps[0].ClientID, tis[0], 2)))
		wantErr(t, s.DeleteTrustedIssuer(ctx, tis[0].ID), authz.ErrConflict)
		noErr(t, s.DeleteApplication(ctx, apps[0].ClientID))
		list, err := s.ListFederatedCredentials(ctx, tis[0].ID)
		noErr(t, err)
		same(t, "federated credentials", list, []authz.Credential(nil))
		noErr(t, s.DeleteTrustedIssuer(ctx, tis[0].ID))
	})

	t.Run("a credential naming a missing issuer", func(t *testing.T) {
		s, apps, _ := setup(t)
		ctx := t.Context()
		missing := newTrustedIssuer(9)
		wantErr(t, s.CreateCredential(ctx, newFederatedCredential(apps[0].ClientID, missing, 1)), authz.ErrNotFound)
		list, err := s.ListCredentials(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "credentials", list, []authz.Credential(nil))
	})

	t.Run("federated credentials of every application in (client_id, created_at, id) order", func(t *testing.T) {
		s, apps, tis := setup(t)
		ctx := t.Context()
		a1, a2 := apps[0].ClientID, apps[1].ClientID
		late1 := newFederatedCredential(a1, tis[0], 5)
		early1 := newFederatedCredential(a1, tis[0], 2)
		tied1 := newFederatedCredential(a1, tis[0], 3)
		tied1.CreatedAt = late1.CreatedAt // the ids order these two: "…_3" < "…_5"
		tied1.ExpiresAt = at(30 * 24 * time.Hour)
		tied1.LastUsedAt = at(10 * time.Minute)
		early2 := newFederatedCredential(a2, tis[0], 1) // earlier, but of the later client_id
		other := newFederatedCredential(a1, tis[1], 4)  // another issuer's
		keys := newCredential(a1, 1)                    // not federated
		for _, c := range []authz.Credential{late1, early2, other, keys, tied1, early1} {
			noErr(t, s.CreateCredential(ctx, c))
		}
		got, err := s.ListFederatedCredentials(ctx, tis[0].ID)
		noErr(t, err)
		same(t, "ListFederatedCredentials "+tis[0].ID, got, []authz.Credential{early1, tied1, late1, early2})
		got, err = s.ListFederatedCredentials(ctx, tis[1].ID)
		noErr(t, err)
		same(t, "ListFederatedCredentials "+tis[1].ID, got, []authz.Credential{other})
		got, err = s.ListFederatedCredentials(ctx, "ti_missing")
		noErr(t, err)
		same(t, "ListFederatedCredentials ti_missing", got, []authz.Credential(nil))
		// ListCredentials reads TrustedIssuerID back too, "" for the others.
		got, err = s.ListCredentials(ctx, a1)
		noErr(t, err)
		same(t, "ListCredentials", got, []authz.Credential{keys, early1, other, tied1, late1})
	})

	t.Run("touch raises last use only", func(t *testing.T) {
		s, apps, tis := setup(t)
		ctx := t.Context()
		used := newFederatedCredential(apps[0].ClientID, tis[0], 1)
		used.LastUsedAt = at(time.Hour)
		never := newFederatedCredential(apps[1].ClientID, tis[0], 2)
		keys := newCredential(apps[0].ClientID, 3)
		for _, c := range []authz.Credential{used, never, keys} {
			noErr(t, s.CreateCredential(ctx, c))
		}
		noErr(t, s.TouchCredentials(ctx, nil))
		noErr(t, s.TouchCredentials(ctx, map[string]time.Time{
			used.ID:        at(30 * time.Minute), // earlier: kept
			never.ID:       at(2 * time.Hour),
			keys.ID:        {}, // zero: ignored
			"cred_missing": at(3 * time.Hour),
		}))
		never.LastUsedAt = at(2 * time.Hour)
		got, err := s.ListFederatedCredentials(ctx, tis[0].ID)
		noErr(t, err)
		same(t, "after the first touch", got, []authz.Credential{used, never})
		noErr(t, s.TouchCredentials(ctx, map[string]time.Time{used.ID: at(90 * time.Minute), keys.ID: at(time.Minute)}))
		used.LastUsedAt, keys.LastUsedAt = at(90*time.Minute), at(time.Minute)
		got, err = s.ListCredentials(ctx, apps[0].ClientID)
		noErr(t, err)
		same(t, "after the second touch", got, []authz.Credential{used, keys})
	})

	t.Run("in a management transaction", func(t *testing.T) {
		s, apps, tis := setup(t)
		ctx := t.Context()
		ti := newTrustedIssuer(3)
		c := newFederatedCredential(apps[0].ClientID, ti, 1)
		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			if err := tx.CreateTrustedIssuer(ctx, ti); err != nil {
				return err
			}
			dup := newTrustedIssuer(4)
			dup.Issuer = ti.Issuer
			wantErr(t, tx.CreateTrustedIssuer(ctx, dup), authz.ErrConflict) // the transaction goes on
			got, err := tx.GetTrustedIssuer(ctx, ti.ID)
			noErr(t, err)
			same(t, "GetTrustedIssuer in the transaction", got, ti)
			list, err := tx.ListTrustedIssuers(ctx)
			noErr(t, err)
			same(t, "ListTrustedIssuers in the transaction", list, append(append([]authz.TrustedIssuer(nil), tis...), ti))
			noErr(t, tx.CreateCredential(ctx, c))
			creds, err := tx.ListFederatedCredentials(ctx, ti.ID)
			noErr(t, err)
			same(t, "ListFederatedCredentials in the transaction", creds, []authz.Credential{c})
			wantErr(t, tx.DeleteTrustedIssuer(ctx, ti.ID), authz.ErrConflict) // the transaction goes on
			wantErr(t, tx.DeleteTrustedIssuer(ctx, "ti_missing"), authz.ErrNotFound)
			return tx.DeleteTrustedIssuer(ctx, tis[1].ID)
		}))
		got, err := s.TrustedIssuerByIssuer(ctx, ti.Issuer)
		noErr(t, err)
		same(t, "trusted issuer after the commit", got, ti)
		list, err := s.ListTrustedIssuers(ctx)
		noErr(t, err)
		same(t, "ListTrustedIssuers after the commit", list, []authz.TrustedIssuer{tis[0], ti})
		creds, err := s.ListFederatedCredentials(ctx, ti.ID)
		noErr(t, err)
		same(t, "ListFederatedCredentials after the commit", creds, []authz.Credential{c})

		noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
			if err := tx.DeleteCredential(ctx, c.ClientID, c.ID); err != nil {
				return err
			}
			return tx.DeleteTrustedIssuer(ctx, ti.ID)
		}))
		_, err = s.GetTrustedIssuer(ctx, ti.ID)
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("a management transaction that fails leaves nothing", func(t *testing.T) {
		s, _, tis := setup(t)
		ctx := t.Context()
		ti := newTrustedIssuer(3)
		errStop := errors.New("stop")
		err := s.Manage(ctx, func(tx authz.Tx) error {
			if err := tx.CreateTrustedIssuer(ctx, ti); err != nil {
				return err
			}
			if err := tx.DeleteTrustedIssuer(ctx, tis[0].ID); err != nil {
				return err
			}
			return errStop
		})
		if err != errStop {
			t.Fatalf("Manage = %v, want fn's error as it is", err)
		}
		list, err := s.ListTrustedIssuers(ctx)
		noErr(t, err)
		same(t, "ListTrustedIssuers after the rollback", list, tis)
	})

	t.Run("concurrent creators of one issuer: exactly one wins", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithTimeout(t.Context(), concurrencyWait)
		defer cancel()
		const creators = 16
		errs := parallel(creators, func(i int) error {
			ti := newTrustedIssuer(i + 1)
			ti.Issuer = "https://token.actions.githubusercontent.com"
			return s.CreateTrustedIssuer(ctx, ti)
		})
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won < 0:
				won = i
			case err == nil:
				t.Errorf("creators %d and %d both succeeded", won, i)
			case !errors.Is(err, authz.ErrConflict):
				t.Errorf("creator %d: %v, want nil or one wrapping %q", i, err, authz.ErrConflict)
			}
		}
		if won < 0 {
			t.Fatal("no creator succeeded")
		}
		list, err := s.ListTrustedIssuers(ctx)
		noErr(t, err)
		want := newTrustedIssuer(won + 1)
		want.Issuer = "https://token.actions.githubusercontent.com"
		same(t, "ListTrustedIssuers", list, []authz.TrustedIssuer{want})
	})

	t.Run("a delete racing credentials that name the issuer", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithTimeout(t.Context(), concurrencyWait)
		defer cancel()
		const (
			rounds   = 6
			creators = 16
		)
		app := newApp(1)
		noErr(t, s.CreateApplication(ctx, app, nil, nil))
		deleted := 0
		for round := range rounds {
			ti := newTrustedIssuer(round + 1)
			noErr(t, s.CreateTrustedIssuer(ctx, ti))
			// Writer 0 deletes the issuer; the others each create a
			// credential naming it, after reading it in their transaction:
			// what manage does.
			var want []authz.Credential
			for i := range creators {
				c := newFederatedCredential(app.ClientID, ti, i+1)
				c.ID = fmt.Sprintf("fed_%d_%02d", round, i+1)
				want = append(want, c)
			}
			errs := parallel(1+creators, func(i int) error {
				if i == 0 {
					return s.DeleteTrustedIssuer(ctx, ti.ID)
				}
				return s.Manage(ctx, func(tx authz.Tx) error {
					if _, err := tx.GetTrustedIssuer(ctx, ti.ID); err != nil {
						return err
					}
					return tx.CreateCredential(ctx, want[i-1])
				})
			})
			var created []authz.Credential
			for i, err := range errs[1:] {
				switch {
				case err == nil:
					created = append(created, want[i])
				case !errors.Is(err, authz.ErrNotFound):
					t.Errorf("round %d, creator %d: %v, want nil or one wrapping %q", round, i+1, err, authz.ErrNotFound)
				}
			}
			stored, err := s.ListFederatedCredentials(ctx, ti.ID)
			noErr(t, err)
			_, getErr := s.GetTrustedIssuer(ctx, ti.ID)
			switch deleteErr := errs[0]; {
			case deleteErr == nil:
				deleted++
				wantErr(t, getErr, authz.ErrNotFound)
				same(t, fmt.Sprintf("round %d: credentials naming the deleted issuer", round), stored, []authz.Credential(nil))
				if len(created) > 0 {
					t.Errorf("round %d: the issuer was deleted, yet %d credentials naming it were created", round, len(created))
				}
			case errors.Is(deleteErr, authz.ErrConflict):
				noErr(t, getErr)
				if len(created) == 0 {
					t.Errorf("round %d: the delete was refused, yet no credential names the issuer", round)
				}
				same(t, fmt.Sprintf("round %d: credentials naming the kept issuer", round), stored,
					sortedBy(created, func(c authz.Credential) string { return c.ID }))
			default:
				t.Fatalf("round %d: delete: %v, want nil or one wrapping %q", round, deleteErr, authz.ErrConflict)
			}
		}
		// Which side wins is the scheduler's choice; both are correct.
		t.Logf("the delete won %d of %d rounds", deleted, rounds)
	})
}
