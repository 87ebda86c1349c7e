package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/server"
)

func TestMain(m *testing.M) {
	// Flag defaults come from M2MAUTH_* variables when newRoot runs; the
	// tests pass every setting as a flag, so none may leak in.
	for _, kv := range os.Environ() {
		// M2MAUTH_TEST_* configure the test harness itself (log scanning,
		// PostgreSQL) and stay.
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "M2MAUTH_") && !strings.HasPrefix(name, "M2MAUTH_TEST_") {
			os.Unsetenv(name)
		}
	}
	// serve records its credentials file's path in the user's config
	// directory (recordCredentialsPath): the tests' go to a directory of
	// their own, never the user's.
	cfgHome, err := os.MkdirTemp("", "m2mauth-test-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", cfgHome)
	code := m.Run()
	os.RemoveAll(cfgHome)
	os.Exit(code)
}

// testServer is an m2mauth server on a loopback port, running until the
// test ends.
type testServer struct {
	URL         string // the issuer
	DataDir     string
	Credentials string // path of admin-credentials.json
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with set, if not nil, changing the
// configuration before it is validated.
func startServerWith(t *testing.T, set func(*server.Config)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Addr: ln.Addr().String(), Issuer: "http://" + ln.Addr().String(), DataDir: t.TempDir()}
	if set != nil {
		set(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return &testServer{URL: cfg.Issuer, DataDir: cfg.DataDir, Credentials: filepath.Join(cfg.DataDir, server.CredentialsFile)}
}

// runCLI runs m2mauth in-process with args and stdin, returning what it
// wrote to stdout and stderr.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// try runs a client command against ts with the administrator's
// credentials file.
func (ts *testServer) try(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCLI(t, "", append(args, "--credentials", ts.Credentials)...)
}

// run is try for a command that must succeed; it returns stdout.
func (ts *testServer) run(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := ts.try(t, args...)
	if err != nil {
		t.Fatalf("m2mauth %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fail is try for a command that must fail with an error containing want.
func (ts *testServer) fail(t *testing.T, want string, args ...string) {
	t.Helper()
	_, _, err := ts.try(t, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("m2mauth %s: error %v, want one containing %q", strings.Join(args, " "), err, want)
	}
}

// runJSON runs a command with -o json and decodes its output into a T.
func runJSON[T any](t *testing.T, ts *testServer, args ...string) T {
	t.Helper()
	var v T
	out := ts.run(t, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("m2mauth %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// jwtClaims decodes the payload of a JWT without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// adminClientID is the bootstrap administrator's client_id.
func (ts *testServer) adminClientID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(ts.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	var c server.Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.ClientID
}

const usageAPI = "https://usage.example.com"

func TestAPICommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	out := ts.run(t, "api", "create", "--identifier", usageAPI, "--name", "Usage API",
		"--scope", "read:usage=Read usage records", "--scope", "write:usage", "--token-lifetime", "600")
	mustContain(t, out, "Identifier      "+usageAPI, "Name            Usage API", "Token lifetime  600 s",
		"read:usage   Read usage records", "write:usage  -")

	ts.fail(t, `409 Conflict: an API with identifier "`+usageAPI+`" already exists`, "api", "create", "--identifier", usageAPI)

	listed := ts.run(t, "api", "list")
	mustContain(t, listed, "IDENTIFIER", authz.ManagementAudience, usageAPI, "read:usage write:usage")

	filtered := runJSON[admin.List[admin.APIResource]](t, ts, "api", "list", "--identifier", usageAPI)
	if len(filtered.Items) != 1 || filtered.Items[0].Identifier != usageAPI {
		t.Fatalf("api list --identifier: %+v", filtered)
	}
	api := filtered.Items[0]

	t.Run("get by identifier and by id", func(t *testing.T) {
		for _, arg := range []string{usageAPI, api.ID} {
			got := runJSON[admin.APIResource](t, ts, "api", "get", arg)
			if !reflect.DeepEqual(got, api) {
				t.Errorf("api get %s = %+v, want %+v", arg, got, api)
			}
		}
		mustContain(t, ts.run(t, "api", "get", api.ID), "ID              "+api.ID)
	})

	t.Run("update replaces the scopes", func(t *testing.T) {
		got := runJSON[admin.APIResource](t, ts, "api", "update", usageAPI, "--name", "Usage", "--scope", "export:usage=Export", "--signing-alg", "EdDSA")
		want := []authz.Scope{{Value: "export:usage", Description: "Export"}}
		if got.Name != "Usage" || !reflect.DeepEqual(got.Scopes, want) || got.SigningAlg != "EdDSA" || got.TokenLifetime != 600 {
			t.Errorf("after update: %+v", got)
		}
		got = runJSON[admin.APIResource](t, ts, "api", "update", api.ID, "--token-lifetime", "120")
		if got.TokenLifetime != 120 || got.Name != "Usage" {
			t.Errorf("after update by id: %+v", got)
		}
		ts.fail(t, "nothing to change", "api", "update", usageAPI)
		ts.fail(t, "400 Bad Request: token_lifetime must be between", "api", "update", usageAPI, "--token-lifetime", "5")
	})

	t.Run("delete", func(t *testing.T) {
		mustContain(t, ts.run(t, "api", "delete", usageAPI), "Deleted API "+usageAPI)
		ts.fail(t, `no API has identifier "`+usageAPI+`"`, "api", "get", usageAPI)
		ts.fail(t, "404 Not Found: API not found", "api", "get", api.ID)
	})
}

func TestAppAndToken(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage", "--scope", "write:usage", "--token-lifetime", "600")

	out := ts.run(t, "app", "create", "--name", "billing-worker", "--description", "nightly billing",
		"--grant", usageAPI+"=read:usage")
	mustContain(t, out, `Created application "billing-worker"`, "shown only this once", usageAPI+"  read:usage")
	var clientID, secret string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "client_id" {
			clientID = f[1]
		} else if len(f) == 2 && f[0] == "client_secret" {
			secret = f[1]
		}
	}
	if clientID == "" || !strings.HasPrefix(secret, "m2ms_") {
		t.Fatalf("app create printed no client_id or client_secret:\n%s", out)
	}
	token := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		out, _, err := runCLI(t, "", append([]string{"token", "--server", ts.URL, "--client-id", clientID, "--client-secret", secret}, args...)...)
		return out, err
	}

	t.Run("token for the new application", func(t *testing.T) {
		out, err := token(t, "--audience", usageAPI)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(out, "\n") != 1 {
			t.Errorf("token printed more than the token: %q", out)
		}
		claims := jwtClaims(t, out)
		if claims["aud"] != usageAPI || claims["scope"] != "read:usage" || claims["client_id"] != clientID {
			t.Errorf("claims = %v", claims)
		}
	})

	t.Run("token as JSON, secret from stdin, server from the credentials file", func(t *testing.T) {
		out, _, err := runCLI(t, secret+"\n", "token", "--credentials", ts.Credentials, "--client-id", clientID, "--client-secret", "-", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var resp tokenResponse
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.TokenType != "Bearer" || resp.ExpiresIn != 600 || resp.Scope != "read:usage" {
			t.Errorf("response = %+v", resp)
		}
		if jwtClaims(t, resp.AccessToken)["aud"] != usageAPI {
			t.Errorf("token for the wrong audience")
		}
	})

	t.Run("token with a scope not granted", func(t *testing.T) {
		_, err := token(t, "--scope", "write:usage")
		if err == nil || !strings.Contains(err.Error(), "400 Bad Request: scope not granted for "+usageAPI+": write:usage (invalid_scope)") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("get, list and update never show the secret", func(t *testing.T) {
		outs := []string{
			ts.run(t, "app", "get", clientID),
			ts.run(t, "app", "get", clientID, "-o", "json"),
			ts.run(t, "app", "list"),
			ts.run(t, "app", "update", clientID, "--description", "billing, nightly"),
		}
		mustContain(t, outs[0], "Client ID    "+clientID, "nightly billing", "enabled", usageAPI)
		mustContain(t, outs[2], "billing-worker", "m2mauth administrator")
		mustContain(t, outs[3], "billing, nightly")
		for _, out := range outs {
			if strings.Contains(out, secret) {
				t.Errorf("output shows the client secret:\n%s", out)
			}
		}
	})

	t.Run("disabled application gets no token", func(t *testing.T) {
		app := runJSON[admin.ApplicationResource](t, ts, "app", "update", clientID, "--disable")
		if !app.Disabled {
			t.Fatalf("app update --disable: %+v", app)
		}
		disabled := runJSON[admin.List[admin.ApplicationResource]](t, ts, "app", "list", "--disabled", "true")
		if len(disabled.Items) != 1 || disabled.Items[0].ClientID != clientID {
			t.Errorf("app list --disabled true: %+v", disabled)
		}
		_, err := token(t)
		if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: client authentication failed (invalid_client)") {
			t.Fatalf("err = %v", err)
		}
		ts.run(t, "app", "update", clientID, "--enable")
		if _, err := token(t); err != nil {
			t.Fatalf("after --enable: %v", err)
		}
	})

	t.Run("create as JSON keeps the warning off stdout", func(t *testing.T) {
		out, errOut, err := ts.try(t, "app", "create", "--name", "reporter", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var created admin.CreatedApplication
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			t.Fatal(err)
		}
		if created.ClientSecret == "" || created.Name != "reporter" {
			t.Errorf("created = %+v", created)
		}
		mustContain(t, errOut, "shown only this once")
	})

	t.Run("delete", func(t *testing.T) {
		mustContain(t, ts.run(t, "app", "delete", clientID), "Deleted application "+clientID)
		ts.fail(t, "404 Not Found: application not found", "app", "get", clientID)
		if _, err := token(t); err == nil {
			t.Fatal("a deleted application got a token")
		}
	})
}

func TestGrantCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const reportsAPI = "https://reports.example.com"
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage", "--scope", "write:usage")
	ts.run(t, "api", "create", "--identifier", reportsAPI, "--scope", "read:reports")
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "worker")
	id := app.ClientID
	mustContain(t, ts.run(t, "app", "get", id), "Client ID", "No grants.")

	all := runJSON[admin.GrantResource](t, ts, "grant", "add", id, "--audience", usageAPI)
	if !reflect.DeepEqual(all.Scopes, []string{"read:usage", "write:usage"}) {
		t.Errorf("grant add without --scope granted %v, want every scope", all.Scopes)
	}
	out := ts.run(t, "grant", "add", id, "--audience", reportsAPI, "--scope", "read:reports")
	mustContain(t, out, "Audience  "+reportsAPI, "Scopes    read:reports")
	ts.fail(t, `409 Conflict: the application already has a grant for "`+usageAPI+`"`, "grant", "add", id, "--audience", usageAPI)
	ts.fail(t, `400 Bad Request: no API has identifier "https://nope.example.com"`, "grant", "add", id, "--audience", "https://nope.example.com")
	ts.fail(t, `does not define scope delete:usage`, "grant", "add", id, "--audience", usageAPI, "--scope", "delete:usage")

	mustContain(t, ts.run(t, "grant", "list", id), "GRANT ID", all.ID, usageAPI, "read:usage write:usage", reportsAPI)

	t.Run("update by audience and by grant id", func(t *testing.T) {
		g := runJSON[admin.GrantResource](t, ts, "grant", "update", id, usageAPI, "--scope", "read:usage")
		if g.ID != all.ID || !reflect.DeepEqual(g.Scopes, []string{"read:usage"}) {
			t.Errorf("grant update by audience: %+v", g)
		}
		g = runJSON[admin.GrantResource](t, ts, "grant", "update", id, all.ID, "--scope", "write:usage read:usage")
		if !reflect.DeepEqual(g.Scopes, []string{"write:usage", "read:usage"}) {
			t.Errorf("grant update by id: %+v", g)
		}
	})

	t.Run("remove", func(t *testing.T) {
		mustContain(t, ts.run(t, "grant", "remove", id, reportsAPI), "Removed grant "+reportsAPI)
		l := runJSON[admin.List[admin.GrantResource]](t, ts, "grant", "list", id)
		if len(l.Items) != 1 || l.Items[0].Audience != usageAPI {
			t.Errorf("grants after remove: %+v", l.Items)
		}
		ts.fail(t, `has no grant for audience "`+reportsAPI+`"`, "grant", "remove", id, reportsAPI)
		ts.fail(t, "404 Not Found: grant not found", "grant", "remove", id, "grt_00000000000000000000")
	})
}

func TestListPages(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, name := range []string{"a", "b", "c", "d"} {
		ts.run(t, "api", "create", "--identifier", "https://"+name+".example.com")
		ts.run(t, "app", "create", "--name", "job-"+name)
	}

	tests := []struct {
		name      string
		args      []string
		wantItems int
	}{
		{"first page of APIs", []string{"api", "list", "--limit", "2"}, 2},
		{"every API", []string{"api", "list", "--limit", "2", "--all"}, 5}, // and the management API
		{"first page of applications", []string{"app", "list", "--limit", "3", "--name-prefix", "job-"}, 3},
		{"every application named job-", []string{"app", "list", "--limit", "3", "--name-prefix", "job-", "--all"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l admin.List[json.RawMessage]
			out := ts.run(t, append(tt.args, "-o", "json")...)
			if err := json.Unmarshal([]byte(out), &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != tt.wantItems {
				t.Errorf("%d items, want %d", len(l.Items), tt.wantItems)
			}
			more := l.NextCursor != ""
			if wantMore := !slices.Contains(tt.args, "--all"); more != wantMore {
				t.Errorf("next_cursor %q; want one: %v", l.NextCursor, wantMore)
			}
		})
	}

	t.Run("table hints at more pages", func(t *testing.T) {
		_, errOut, err := ts.try(t, "api", "list", "--limit", "2")
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, errOut, "use --all")
	})
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	out, _, err := runCLI(t, "", "token", "--credentials", ts.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwtClaims(t, out)
	if claims["aud"] != authz.ManagementAudience || claims["client_id"] != ts.adminClientID(t) {
		t.Errorf("claims = %v", claims)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown API by identifier", []string{"api", "get", "https://nope.example.com"}, `no API has identifier "https://nope.example.com"`},
		{"unknown API by id", []string{"api", "get", "api_00000000000000000000"}, "404 Not Found: API not found"},
		{"deleting the management API", []string{"api", "delete", authz.ManagementAudience}, "409 Conflict: the management API cannot be deleted"},
		{"token lifetime too short", []string{"api", "create", "--identifier", "https://x.example.com", "--token-lifetime", "5"}, "400 Bad Request: token_lifetime must be between 60 and 86400 seconds"},
		{"scope description without value", []string{"api", "create", "--identifier", "https://x.example.com", "--scope", "=Read"}, "has a description but no value"},
		{"identifier missing", []string{"api", "create"}, `required flag(s) "identifier" not set`},
		{"unknown application", []string{"app", "get", "nosuchclient"}, "404 Not Found: application not found"},
		{"administrator disabling itself", []string{"app", "update", ts.adminClientID(t), "--disable"}, "409 Conflict: an application cannot disable itself"},
		{"both --disable and --enable", []string{"app", "update", "x", "--disable", "--enable"}, "none of the others can be"},
		{"--disabled not a boolean", []string{"app", "list", "--disabled", "maybe"}, `--disabled "maybe" must be true or false`},
		{"limit out of range", []string{"app", "list", "--limit", "100000"}, "400 Bad Request: limit must be a whole number"},
		{"grants of an unknown application", []string{"grant", "list", "nosuchclient"}, "404 Not Found: application not found"},
		{"unknown output format", []string{"api", "list", "-o", "yaml"}, `--output "yaml" must be table or json`},
		{"secret without client_id", []string{"token", "--client-secret", "s"}, "--client-secret needs --client-id"},
		{"client_id without secret", []string{"token", "--client-id", "c"}, "--client-secret is required with --client-id"},
		{"wrong application credentials", []string{"token", "--client-id", "nosuchclient", "--client-secret", "m2ms_00000000000000000000_x"}, "token request: 401 Unauthorized: client authentication failed (invalid_client)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.fail(t, tt.want, tt.args...)
		})
	}
}

func TestCredentialsErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	missing := filepath.Join(dir, "missing.json")
	notJSON := write("not.json", "client_id: x\n")
	noSecret := write("nosecret.json", `{"issuer":"`+ts.URL+`","client_id":"x"}`)
	wrongSecret := write("wrong.json", `{"issuer":"`+ts.URL+`","client_id":"x","client_secret":"m2ms_00000000000000000000_x"}`)
	noIssuer := write("noissuer.json", `{"client_id":"x","client_secret":"y"}`)

	// A port that refuses connections: listen, then close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"credentials file missing", []string{"api", "list", "--credentials", missing}, "credentials file " + missing + " does not exist: start `m2mauth serve` once"},
		{"data dir without credentials", []string{"app", "list", "--data-dir", dir}, "credentials file " + filepath.Join(dir, server.CredentialsFile) + " does not exist"},
		{"credentials file not JSON", []string{"api", "list", "--credentials", notJSON}, "credentials file " + notJSON + " is not valid JSON"},
		{"credentials without secret", []string{"api", "list", "--credentials", noSecret}, "has no client_id or client_secret"},
		{"credentials rejected", []string{"api", "list", "--credentials", wrongSecret}, "getting a management API token with the credentials in " + wrongSecret + ": 401 Unauthorized: client authentication failed (invalid_client)"},
		{"credentials without issuer", []string{"api", "list", "--credentials", noIssuer}, "no server: give --server"},
		{"server not an URL", []string{"api", "list", "--credentials", ts.Credentials, "--server", "localhost:8080"}, `server "localhost:8080" must be an http(s) URL`},
		{"server unreachable", []string{"api", "list", "--credentials", ts.Credentials, "--server", closed}, "cannot reach the server at " + closed + ": dial tcp"},
		{"token server unreachable", []string{"token", "--credentials", ts.Credentials, "--server", closed}, "cannot reach the server at " + closed},
		{"token without server or credentials", []string{"token", "--client-id", "x", "--client-secret", "y", "--credentials", missing}, "no server: give --server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "m2ms_") {
				t.Errorf("the error shows a client secret: %v", err)
			}
		})
	}
}

// TestEnvironment checks the precedence flag > environment > default. It
// sets environment variables, so it cannot run in parallel.
func TestEnvironment(t *testing.T) {
	ts := startServer(t)

	t.Setenv("M2MAUTH_DATA_DIR", ts.DataDir)
	if _, _, err := runCLI(t, "", "api", "list"); err != nil {
		t.Errorf("M2MAUTH_DATA_DIR: %v", err)
	}

	t.Setenv("M2MAUTH_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	if _, _, err := runCLI(t, "", "api", "list"); err == nil {
		t.Error("M2MAUTH_CREDENTIALS does not take precedence over M2MAUTH_DATA_DIR")
	}
	if _, _, err := runCLI(t, "", "api", "list", "--credentials", ts.Credentials); err != nil {
		t.Errorf("--credentials does not take precedence over M2MAUTH_CREDENTIALS: %v", err)
	}

	t.Setenv("M2MAUTH_CREDENTIALS", ts.Credentials)
	t.Setenv("M2MAUTH_SERVER", "http://127.0.0.1:1")
	if _, _, err := runCLI(t, "", "api", "list", "--server", ts.URL); err != nil {
		t.Errorf("--server does not take precedence over M2MAUTH_SERVER: %v", err)
	}
	t.Setenv("M2MAUTH_SERVER", ts.URL)

	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "env-worker", "--grant", authz.ManagementAudience+"=read:apis")
	t.Setenv("M2MAUTH_CLIENT_ID", app.ClientID)
	t.Setenv("M2MAUTH_CLIENT_SECRET", app.ClientSecret)
	out, _, err := runCLI(t, "", "token")
	if err != nil {
		t.Fatalf("token from M2MAUTH_CLIENT_ID and M2MAUTH_CLIENT_SECRET: %v", err)
	}
	if claims := jwtClaims(t, out); claims["client_id"] != app.ClientID || claims["scope"] != "read:apis" {
		t.Errorf("claims = %v", claims)
	}
	help, _, err := runCLI(t, "", "token", "--help")
	if err != nil || strings.Contains(help, app.ClientSecret) {
		t.Errorf("token --help shows the secret from M2MAUTH_CLIENT_SECRET (err %v)", err)
	}
}

func TestParseFlags(t *testing.T) {
	t.Run("scope definitions", func(t *testing.T) {
		got, err := parseScopeDefs([]string{"read:usage=Read usage = records", " write:usage ", ""})
		want := []authz.Scope{{Value: "read:usage", Description: "Read usage = records"}, {Value: "write:usage"}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseScopeDefs = %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("grants", func(t *testing.T) {
		scopes := func(s ...string) *[]string {
			if s == nil {
				s = []string{}
			}
			return &s
		}
		got := parseGrants([]string{"urn:all", "urn:some=a, b,c", "urn:none="})
		want := []admin.GrantRequest{
			{Audience: "urn:all"},
			{Audience: "urn:some", Scopes: scopes("a", "b", "c")},
			{Audience: "urn:none", Scopes: scopes()},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseGrants = %+v, want %+v", got, want)
		}
	})
}
