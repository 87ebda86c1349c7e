package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// testReseal covers the two writes a master-key rotation makes: a setting
// replaced with its value sealed again, and a signing key's private half
// replaced likewise.
func testReseal(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("put setting replaces the value", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, _, err := s.InitSetting(ctx, "pepper", []byte("under old key"))
		noErr(t, err)
		noErr(t, s.PutSetting(ctx, "pepper", []byte{0, 1, 0xff}))
		stored, created, err := s.InitSetting(ctx, "pepper", []byte("other"))
		noErr(t, err)
		if created || !bytes.Equal(stored, []byte{0, 1, 0xff}) {
			t.Errorf("InitSetting after PutSetting = %x, %v; want 0001ff, false", stored, created)
		}
	})

	t.Run("put setting creates a missing one", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.PutSetting(ctx, "pepper", []byte("value")))
		stored, created, err := s.InitSetting(ctx, "pepper", []byte("other"))
		noErr(t, err)
		if created || string(stored) != "value" {
			t.Errorf("InitSetting after PutSetting = %q, %v; want \"value\", false", stored, created)
		}
	})

	t.Run("update key private replaces only the private key", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		k := newKey("kid-a", authz.KeyActive, at(0))
		k.ActivatedAt = at(time.Minute)
		other := newKey("kid-b", authz.KeyNext, at(time.Minute))
		noErr(t, s.CreateKey(ctx, k))
		noErr(t, s.CreateKey(ctx, other))
		noErr(t, s.UpdateKeyPrivate(ctx, k.KID, []byte("sealed again")))
		got, err := s.ListKeys(ctx)
		noErr(t, err)
		k.Private = []byte("sealed again")
		same(t, "keys", got, []authz.SigningKey{k, other})
	})

	t.Run("update key private of a missing key", func(t *testing.T) {
		s := open(t)
		wantErr(t, s.UpdateKeyPrivate(t.Context(), "nope", []byte("x")), authz.ErrNotFound)
	})
}
