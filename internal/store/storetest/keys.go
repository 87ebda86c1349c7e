package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func testKeys(t *testing.T, open func(t *testing.T) authz.Store) {
	// rotation returns three keys, one in each state, in list order.
	rotation := func() []authz.SigningKey {
		retired := newKey("kid-c", authz.KeyRetired, at(0))
		retired.Alg = authz.RS256
		retired.ActivatedAt = at(time.Minute)
		retired.RetiredAt = at(time.Hour)
		retired.RemoveAfter = at(2 * time.Hour)
		active := newKey("kid-a", authz.KeyActive, at(time.Hour))
		active.ActivatedAt = at(time.Hour)
		next := newKey("kid-b", authz.KeyNext, at(time.Hour)) // same creation time: kid orders
		return []authz.SigningKey{retired, active, next}
	}
	// setup creates the keys of rotation.
	setup := func(t *testing.T) (authz.Store, []authz.SigningKey) {
		s := open(t)
		keys := rotation()
		for _, i := range []int{2, 0, 1} {
			noErr(t, s.CreateKey(t.Context(), keys[i]))
		}
		return s, keys
	}

	t.Run("create and list round-trip every field", func(t *testing.T) {
		s, keys := setup(t)
		got, err := s.ListKeys(t.Context())
		noErr(t, err)
		same(t, "keys", got, keys)
	})

	t.Run("list without keys", func(t *testing.T) {
		s := open(t)
		got, err := s.ListKeys(t.Context())
		noErr(t, err)
		same(t, "keys", got, []authz.SigningKey(nil))
	})

	t.Run("kid taken", func(t *testing.T) {
		s, keys := setup(t)
		ctx := t.Context()
		dup := newKey(keys[1].KID, authz.KeyNext, at(3*time.Hour))
		wantErr(t, s.CreateKey(ctx, dup), authz.ErrConflict)
		got, err := s.ListKeys(ctx)
		noErr(t, err)
		same(t, "keys", got, keys)
	})

	t.Run("update keys saves the rotation when every state matches", func(t *testing.T) {
		s, keys := setup(t)
		ctx := t.Context()
		retired, active, next := keys[0], keys[1], keys[2]
		newRetired := active
		newRetired.State = authz.KeyRetired
		newRetired.RetiredAt = at(3 * time.Hour)
		newRetired.RemoveAfter = at(4 * time.Hour)
		newActive := next
		newActive.State = authz.KeyActive
		newActive.ActivatedAt = at(3 * time.Hour)
		// Fields UpdateKeys does not save.
		newActive.Alg = authz.PS256
		newActive.Private = []byte("other")
		newActive.CreatedAt = at(5 * time.Hour)

		noErr(t, s.UpdateKeys(ctx,
			map[string]authz.KeyState{active.KID: authz.KeyActive, next.KID: authz.KeyNext},
			[]authz.SigningKey{newRetired, newActive}))

		wantActive := next
		wantActive.State, wantActive.ActivatedAt = authz.KeyActive, at(3*time.Hour)
		got, err := s.ListKeys(ctx)
		noErr(t, err)
		same(t, "keys", got, []authz.SigningKey{retired, newRetired, wantActive})
	})

	t.Run("update keys can clear times", func(t *testing.T) {
		s, keys := setup(t)
		ctx := t.Context()
		k := keys[0]
		k.State = authz.KeyNext
		k.ActivatedAt, k.RetiredAt, k.RemoveAfter = time.Time{}, time.Time{}, time.Time{}
		noErr(t, s.UpdateKeys(ctx, map[string]authz.KeyState{k.KID: authz.KeyRetired}, []authz.SigningKey{k}))
		got, err := s.ListKeys(ctx)
		noErr(t, err)
		same(t, "keys", got, []authz.SigningKey{k, keys[1], keys[2]})
	})

	t.Run("update keys changes nothing if any state differs", func(t *testing.T) {
		s, keys := setup(t)
		ctx := t.Context()
		active, next := keys[1], keys[2]
		a, n := active, next
		a.State, a.RetiredAt, a.RemoveAfter = authz.KeyRetired, at(3*time.Hour), at(4*time.Hour)
		n.State, n.ActivatedAt = authz.KeyActive, at(3*time.Hour)
		// active's expected state matches; next's does not.
		err := s.UpdateKeys(ctx,
			map[string]authz.KeyState{active.KID: authz.KeyActive, next.KID: authz.KeyActive},
			[]authz.SigningKey{a, n})
		wantErr(t, err, authz.ErrConflict)
		got, err := s.ListKeys(ctx)
		noErr(t, err)
		same(t, "keys", got, keys)
	})

	t.Run("update a missing key", func(t *testing.T) {
		s, keys := setup(t)
		ctx := t.Context()
		a := keys[1]
		a.State = authz.KeyRetired
		missing := newKey("kid-missing", authz.KeyActive, at(0))
		err := s.UpdateKeys(ctx,
			map[string]authz.KeyState{a.KID: authz.KeyActive, missing.KID: authz.KeyNext},
			[]authz.SigningKey{a, missing})
		wantErr(t, err, authz.ErrNotFound)
		got, err := s.ListKeys(ctx)
		noErr(t, err)
		same(t, "keys", got, keys)
	})

	t.Run("concurrent rotations: one wins", func(t *testing.T) {
		s, keys := setup(t)
		ctx := t.Context()
		active, next := keys[1], keys[2]
		errs := parallel(10, func(i int) error {
			a, n := active, next
			a.State, a.RetiredAt, a.RemoveAfter = authz.KeyRetired, at(3*time.Hour), at(4*time.Hour)
			n.State, n.ActivatedAt = authz.KeyActive, at(time.Duration(i)*time.Second)
			return s.UpdateKeys(ctx,
				map[string]authz.KeyState{active.KID: authz.KeyActive, next.KID: authz.KeyNext},
				[]authz.SigningKey{a, n})
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, authz.ErrConflict):
				t.Errorf("UpdateKeys: %v, want nil or a conflict", err)
			}
		}
		if won != 1 {
			t.Errorf("%d rotations won, want 1", won)
		}
	})

	t.Run("delete", func(t *testing.T) {
		s, keys := setup(t)
		ctx := t.Context()
		noErr(t, s.DeleteKey(ctx, keys[0].KID))
		got, err := s.ListKeys(ctx)
		noErr(t, err)
		same(t, "keys", got, keys[1:])
		wantErr(t, s.DeleteKey(ctx, keys[0].KID), authz.ErrNotFound)
		wantErr(t, s.DeleteKey(ctx, "kid-missing"), authz.ErrNotFound)
	})
}
