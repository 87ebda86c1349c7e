package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Bounds of the concurrency tests: a fixed number of writers, and a
// deadline after which a writer still waiting (a lost wake-up, a deadlock)
// fails the test rather than hanging it.
const (
	writers         = 32
	writesEach      = 4
	concurrencyWait = 60 * time.Second
)

// testConcurrency checks that writes racing each other are not lost: the
// patches of different fields of one application, a limit checked and
// kept inside Manage, and a revoke-all racing other changes.
func testConcurrency(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("patches of different fields all survive", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithTimeout(t.Context(), concurrencyWait)
		defer cancel()
		app := newApp(1)
		noErr(t, s.CreateApplication(ctx, app, nil, nil))

		// Writers of one field take turns (fields[kind].mu), so that the
		// last value acknowledged is the last one written; writers of
		// different fields run at once. Each write returns the row as it
		// is after it, which must hold the value it wrote.
		const (
			name = iota
			description
			disabled
			audiences
			tokenReuse
			notBefore
			kinds
		)
		var fields [kinds]struct {
			mu   sync.Mutex
			last any
		}
		var (
			maxMu   sync.Mutex
			maxSeen time.Time
		)
		errs := parallel(writers, func(i int) error {
			kind := i % kinds
			for n := range writesEach {
				p := authz.ApplicationPatch{UpdatedAt: at(time.Duration(i*writesEach+n) * time.Second)}
				var value any
				switch kind {
				case name:
					v := fmt.Sprintf("Name %d.%d", i, n)
					p.Name, value = &v, v
				case description:
					v := fmt.Sprintf("Description %d.%d", i, n)
					p.Description, value = &v, v
				case disabled:
					v := (i+n)%2 == 0
					p.Disabled, value = &v, v
				case audiences:
					v := []string{fmt.Sprintf("https://api%02d.example.com", i), fmt.Sprintf("https://round%d.example.com", n)}
					p.IntrospectAudiences, value = &v, v
				case tokenReuse:
					v := authz.TokenReuse{MinRemaining: time.Duration(60+i*writesEach+n) * time.Second}
					p.TokenReuse, value = &v, v
				case notBefore:
					// Spread over an hour in an order unlike the writers':
					// some raises come after later ones.
					p.TokensNotBefore = at(time.Duration((i*37+n*11)%60) * time.Minute)
				}
				if kind == notBefore {
					got, err := s.UpdateApplication(ctx, app.ClientID, p)
					if err != nil {
						return err
					}
					if got.TokensNotBefore.Before(p.TokensNotBefore) {
						return fmt.Errorf("raise to %v returned TokensNotBefore %v", p.TokensNotBefore, got.TokensNotBefore)
					}
					maxMu.Lock()
					if p.TokensNotBefore.After(maxSeen) {
						maxSeen = p.TokensNotBefore
					}
					maxMu.Unlock()
					continue
				}
				f := &fields[kind]
				f.mu.Lock()
				got, err := s.UpdateApplication(ctx, app.ClientID, p)
				if err == nil {
					f.last = value
				}
				f.mu.Unlock()
				if err != nil {
					return err
				}
				if written := appField(got, kind); !equalValues(written, value) {
					return fmt.Errorf("patch of field %d to %v returned %v", kind, value, written)
				}
			}
			return nil
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
		if t.Failed() {
			return
		}

		want := app
		want.Name = fields[name].last.(string)
		want.Description = fields[description].last.(string)
		want.Disabled = fields[disabled].last.(bool)
		want.IntrospectAudiences = fields[audiences].last.([]string)
		want.TokenReuse = fields[tokenReuse].last.(authz.TokenReuse)
		want.TokensNotBefore = maxSeen
		got, err := s.GetApplication(ctx, app.ClientID)
		noErr(t, err)
		want.UpdatedAt = got.UpdatedAt // one of the writers', whichever came last
		same(t, "application after the writers", got, want)
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "Client's application after the writers", c.Application, want)
	})

	t.Run("a limit checked inside Manage holds", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithTimeout(t.Context(), concurrencyWait)
		defer cancel()
		app := newApp(1)
		noErr(t, s.CreateApplication(ctx, app, nil, nil))
		const limit = 10
		errLimit := errors.New("the application has 10 secrets")
		errs := parallel(writers, func(i int) error {
			return s.Manage(ctx, func(tx authz.Tx) error {
				secrets, err := tx.ListSecrets(ctx, app.ClientID)
				if err != nil {
					return err
				}
				if len(secrets) >= limit {
					return errLimit
				}
				return tx.CreateSecret(ctx, newSecret(app.ClientID, i))
			})
		})
		created, limited := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				created++
			case err == errLimit:
				limited++
			default:
				t.Errorf("writer %d: %v, want nil or the limit's error itself", i, err)
			}
		}
		if created != limit || limited != writers-limit {
			t.Errorf("%d created and %d saw the limit, want %d and %d", created, limited, limit, writers-limit)
		}
		secrets, err := s.ListSecrets(ctx, app.ClientID)
		noErr(t, err)
		if len(secrets) != limit {
			t.Errorf("%d secrets stored, want %d", len(secrets), limit)
		}
	})

	t.Run("a revoke-all racing patches of other fields survives", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithTimeout(t.Context(), concurrencyWait)
		defer cancel()
		app := newApp(1)
		app.TokensNotBefore = at(time.Minute)
		noErr(t, s.CreateApplication(ctx, app, nil, nil))
		cutoff := at(time.Hour)
		var revoked atomic.Bool
		errs := parallel(writers, func(i int) error {
			if i == 0 {
				got, err := s.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{TokensNotBefore: cutoff, UpdatedAt: cutoff})
				if err != nil {
					return err
				}
				revoked.Store(true)
				if !got.TokensNotBefore.Equal(cutoff) {
					return fmt.Errorf("the revoke-all returned TokensNotBefore %v", got.TokensNotBefore)
				}
				return nil
			}
			for n := range writesEach {
				v := fmt.Sprintf("Value %d.%d", i, n)
				yes := n%2 == 0
				aud := []string{v}
				p := authz.ApplicationPatch{UpdatedAt: at(time.Duration(n) * time.Second)}
				switch i % 3 {
				case 0:
					p.Name, p.Disabled = &v, &yes
				case 1:
					p.Description = &v
				case 2:
					p.IntrospectAudiences, p.Name = &aud, &v
				}
				after := revoked.Load()
				got, err := s.UpdateApplication(ctx, app.ClientID, p)
				if err != nil {
					return err
				}
				if after && !got.TokensNotBefore.Equal(cutoff) {
					return fmt.Errorf("a patch after the revoke-all returned TokensNotBefore %v, want %v", got.TokensNotBefore, cutoff)
				}
			}
			return nil
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
		got, err := s.GetApplication(ctx, app.ClientID)
		noErr(t, err)
		if !got.TokensNotBefore.Equal(cutoff) {
			t.Errorf("TokensNotBefore = %v after the writers, want the revoke-all's %v", got.TokensNotBefore, cutoff)
		}
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		if !c.Application.TokensNotBefore.Equal(cutoff) {
			t.Errorf("Client's TokensNotBefore = %v after the writers, want %v", c.Application.TokensNotBefore, cutoff)
		}
	})
}

// appField returns field kind of a, as the patches test numbers them.
func appField(a authz.Application, kind int) any {
	return []any{a.Name, a.Description, a.Disabled, a.IntrospectAudiences, a.TokenReuse}[kind]
}

// equalValues compares two field values of appField.
func equalValues(a, b any) bool {
	if x, ok := a.([]string); ok {
		y, _ := b.([]string)
		return slices.Equal(x, y)
	}
	return a == b
}
