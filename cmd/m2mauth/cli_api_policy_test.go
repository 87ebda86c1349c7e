package main

import (
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// TestAPIPolicyCommands: api create and update set the sender-constraint
// policies and the profile; update sends only the flags given; the server's
// refusals come through.
func TestAPIPolicyCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	plain := runJSON[admin.APIResource](t, ts, "api", "create", "--identifier", usageAPI)
	if plain.DPoP != "optional" || plain.DPoPNonce || plain.MTLSBound != "optional" || plain.Profile != "none" {
		t.Errorf("api create without policy flags: %+v, want optional, false, optional, none", plain)
	}
	out := ts.run(t, "api", "create", "--identifier", "https://payments.example.com", "--signing-alg", "PS256",
		"--dpop", "required", "--dpop-nonce", "--mtls-bound", "required", "--profile", "fapi2")
	mustContain(t, out, "DPoP            required", "DPoP nonce      yes", "mTLS bound      required", "Profile         fapi2")

	ts.fail(t, "400 Bad Request: dpop must be optional or required", "api", "create", "--identifier", "https://a.example.com", "--dpop", "always")
	ts.fail(t, "400 Bad Request: an API with profile fapi2 signs its tokens with PS256, ES256 or EdDSA",
		"api", "create", "--identifier", "https://b.example.com", "--signing-alg", "RS256", "--profile", "fapi2")

	t.Run("update changes only the flags given", func(t *testing.T) {
		got := runJSON[admin.APIResource](t, ts, "api", "update", usageAPI, "--dpop", "required")
		if got.DPoP != "required" || got.DPoPNonce || got.MTLSBound != "optional" || got.Profile != "none" {
			t.Errorf("after --dpop required: %+v", got)
		}
		got = runJSON[admin.APIResource](t, ts, "api", "update", usageAPI, "--dpop-nonce", "--mtls-bound", "required")
		if got.DPoP != "required" || !got.DPoPNonce || got.MTLSBound != "required" || got.Profile != "none" {
			t.Errorf("after --dpop-nonce --mtls-bound required: %+v", got)
		}
		got = runJSON[admin.APIResource](t, ts, "api", "update", plain.ID, "--profile", "fapi2")
		if got.DPoP != "required" || !got.DPoPNonce || got.MTLSBound != "required" || got.Profile != "fapi2" || got.Name != plain.Name {
			t.Errorf("after --profile fapi2: %+v", got)
		}
		got = runJSON[admin.APIResource](t, ts, "api", "update", usageAPI, "--dpop-nonce=false", "--dpop", "optional")
		if got.DPoP != "optional" || got.DPoPNonce || got.MTLSBound != "required" || got.Profile != "fapi2" {
			t.Errorf("after --dpop-nonce=false --dpop optional: %+v", got)
		}
		ts.fail(t, "400 Bad Request: an API with profile fapi2 signs its tokens with PS256, ES256 or EdDSA", "api", "update", usageAPI, "--signing-alg", "RS256")
		ts.fail(t, "400 Bad Request: profile must be none or fapi2", "api", "update", usageAPI, "--profile", "fapi1")
		ts.fail(t, "400 Bad Request: mtls_bound must be optional or required", "api", "update", usageAPI, "--mtls-bound", "")
	})
}
