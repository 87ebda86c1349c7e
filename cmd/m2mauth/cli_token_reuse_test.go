package main

import (
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// TestTokenReuseCommands: --token-reuse-min-remaining on api and app
// create and update sets token_reuse (docs/token-reuse.md), update changes
// it only when given, 0 on update removes it, and the server's refusals come
// through.
func TestTokenReuseCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	api := runJSON[admin.APIResource](t, ts, "api", "create", "--identifier", usageAPI, "--scope", "read:usage",
		"--token-lifetime", "3600", "--token-reuse-min-remaining", "300")
	if api.TokenReuse == nil || api.TokenReuse.MinRemaining != 300 {
		t.Fatalf("api create --token-reuse-min-remaining 300: token_reuse %+v", api.TokenReuse)
	}
	ts.fail(t, "400 Bad Request: token_reuse.min_remaining (3600 s) must be less than the token lifetime (3600 s)",
		"api", "update", usageAPI, "--token-reuse-min-remaining", "3600")
	ts.fail(t, "token_reuse.min_remaining must be a whole number of seconds, at least 1",
		"api", "create", "--identifier", "https://other.example.com", "--token-reuse-min-remaining", "-5")

	got := runJSON[admin.APIResource](t, ts, "api", "update", usageAPI, "--name", "Usage")
	if got.TokenReuse == nil || got.TokenReuse.MinRemaining != 300 {
		t.Errorf("an update without the flag changed token_reuse: %+v", got.TokenReuse)
	}
	got = runJSON[admin.APIResource](t, ts, "api", "update", usageAPI, "--token-reuse-min-remaining", "600")
	if got.TokenReuse == nil || got.TokenReuse.MinRemaining != 600 {
		t.Errorf("api update --token-reuse-min-remaining 600: %+v", got.TokenReuse)
	}
	got = runJSON[admin.APIResource](t, ts, "api", "update", usageAPI, "--token-reuse-min-remaining", "0")
	if got.TokenReuse != nil {
		t.Errorf("api update --token-reuse-min-remaining 0 left token_reuse %+v, want null", got.TokenReuse)
	}

	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "billing", "--grant", usageAPI,
		"--token-reuse-min-remaining", "120")
	if app.TokenReuse == nil || app.TokenReuse.MinRemaining != 120 {
		t.Fatalf("app create --token-reuse-min-remaining 120: token_reuse %+v", app.TokenReuse)
	}
	upd := runJSON[admin.ApplicationResource](t, ts, "app", "update", app.ClientID, "--description", "nightly")
	if upd.TokenReuse == nil || upd.TokenReuse.MinRemaining != 120 {
		t.Errorf("an app update without the flag changed token_reuse: %+v", upd.TokenReuse)
	}
	upd = runJSON[admin.ApplicationResource](t, ts, "app", "update", app.ClientID, "--token-reuse-min-remaining", "0")
	if upd.TokenReuse != nil {
		t.Errorf("app update --token-reuse-min-remaining 0 left token_reuse %+v, want null", upd.TokenReuse)
	}
	ts.fail(t, "must be less than the token lifetime of granted API", "app", "update", app.ClientID, "--token-reuse-min-remaining", "7200")
}
