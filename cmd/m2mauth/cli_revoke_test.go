package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// introspect asks the server whether tok is active, as the application
// the token was issued to.
func (ts *testServer) introspect(t *testing.T, clientID, secret, tok string) bool {
	t.Helper()
	resp, err := http.PostForm(ts.URL+oauth.PathIntrospect, url.Values{"token": {tok}, "client_id": {clientID}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out oauth.Introspection
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("introspection: %d %s", resp.StatusCode, body)
	}
	return out.Active
}

func TestRevokeCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage")
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "worker", "--grant", usageAPI)
	token := func(t *testing.T) string {
		t.Helper()
		out, errOut, err := runCLI(t, "", "token", "--server", ts.URL, "--client-id", app.ClientID, "--client-secret", app.ClientSecret, "--audience", usageAPI)
		if err != nil {
			t.Fatalf("token: %v\n%s", err, errOut)
		}
		return strings.TrimSpace(out)
	}

	t.Run("token revoke TOKEN", func(t *testing.T) {
		tok := token(t)
		jti, _ := jwtClaims(t, tok)["jti"].(string)
		mustContain(t, ts.run(t, "token", "revoke", tok), "Revoked token "+jti+" of application "+app.ClientID+" until it expires at ")
		if ts.introspect(t, app.ClientID, app.ClientSecret, tok) {
			t.Fatal("the revoked token is active")
		}
	})

	t.Run("token revoke - reads standard input", func(t *testing.T) {
		tok := token(t)
		out, errOut, err := runCLI(t, tok+"\n", "token", "revoke", "-", "-o", "json", "--credentials", ts.Credentials)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		var got admin.RevokedToken
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !got.Revoked || got.JTI != jwtClaims(t, tok)["jti"] || got.ClientID != app.ClientID || got.ExpiresAt.IsZero() {
			t.Fatalf("answer %+v", got)
		}
		if ts.introspect(t, app.ClientID, app.ClientSecret, tok) {
			t.Fatal("the revoked token is active")
		}
	})

	t.Run("token revoke refuses what is not a token", func(t *testing.T) {
		ts.fail(t, "400 Bad Request: nothing revoked", "token", "revoke", "not-a-token")
		_, _, err := runCLI(t, "\n", "token", "revoke", "-", "--credentials", ts.Credentials)
		if err == nil || !strings.Contains(err.Error(), "no token on standard input") {
			t.Fatalf("error %v", err)
		}
		ts.fail(t, "accepts 1 arg", "token", "revoke")
	})

	t.Run("token still gets tokens", func(t *testing.T) {
		if tok := token(t); len(strings.Split(tok, ".")) != 3 {
			t.Fatalf("token printed %q", tok)
		}
	})

	t.Run("app revoke-tokens", func(t *testing.T) {
		old := token(t)
		mustContain(t, ts.run(t, "app", "revoke-tokens", app.ClientID), "Revoked every token issued to application "+app.ClientID+" before ")
		fresh := token(t)
		if ts.introspect(t, app.ClientID, app.ClientSecret, old) || !ts.introspect(t, app.ClientID, app.ClientSecret, fresh) {
			t.Fatal("want the old token inactive and the new one active")
		}
		got := runJSON[admin.RevokedTokens](t, ts, "app", "revoke-tokens", app.ClientID)
		if got.ClientID != app.ClientID || got.TokensNotBefore.IsZero() {
			t.Fatalf("answer %+v", got)
		}
		ts.fail(t, "404 Not Found: application not found", "app", "revoke-tokens", "nosuch")
	})

	t.Run("app update --introspect-audience", func(t *testing.T) {
		mustContain(t, ts.run(t, "app", "get", app.ClientID), "Introspect   its own tokens")
		got := runJSON[admin.ApplicationResource](t, ts, "app", "update", app.ClientID, "--introspect-audience", usageAPI)
		if !slices.Equal(got.IntrospectAudiences, []string{usageAPI}) || !got.CanIntrospect {
			t.Fatalf("--introspect-audience: %+v", got)
		}
		mustContain(t, ts.run(t, "app", "get", app.ClientID), "Introspect   its own tokens and those for "+usageAPI)
		got = runJSON[admin.ApplicationResource](t, ts, "app", "update", app.ClientID, "--introspect-audience=")
		if len(got.IntrospectAudiences) != 0 || got.CanIntrospect {
			t.Fatalf("--introspect-audience=: %+v", got)
		}
		// The deprecated flag still works: every audience but the management API's.
		got = runJSON[admin.ApplicationResource](t, ts, "app", "update", app.ClientID, "--can-introspect")
		if !slices.Equal(got.IntrospectAudiences, []string{usageAPI}) {
			t.Fatalf("--can-introspect: %+v", got)
		}
	})
}
