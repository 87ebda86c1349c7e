package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const usageAPI = "http://127.0.0.1:9090"

var usageScopes = []string{"create:meter_types", "read:meter_types", "create:meters", "read:meters"}

// TestIssueFlows follows the three published integration flows (form body
// on the Usage-Engine path, JSON body, discovery then Basic plus the same
// credentials in the body) and golang.org/x/oauth2, and checks each token
// per RFC 9068 against the published JWKS.
func TestIssueFlows(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "meter reader", map[string][]string{usageAPI: nil})
	id, secret := app.ClientID, app.ClientSecret

	flowC := func() *http.Request {
		_, body := e.send(mustRequest("GET", e.url+"/.well-known/openid-configuration"))
		var md struct {
			TokenEndpoint string `json:"token_endpoint"`
		}
		json.Unmarshal(body, &md)
		req, _ := http.NewRequest("POST", md.TokenEndpoint, strings.NewReader(
			"client_id="+id+"&client_secret="+secret+"&scope=create:meters read:meters&grant_type=client_credentials"))
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	tests := []struct {
		name      string
		req       func() *http.Request
		wantScope string
	}{
		{"A: form body on the Usage-Engine path", func() *http.Request {
			req, _ := http.NewRequest("POST", e.url+"/authentication/v1/oauth/token", strings.NewReader(url.Values{
				"client_id": {id}, "client_secret": {secret}, "grant_type": {"client_credentials"}, "audience": {usageAPI},
			}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}, strings.Join(usageScopes, " ")},
		{"B: JSON body", func() *http.Request {
			req, _ := http.NewRequest("POST", e.url+"/oauth/token", strings.NewReader(fmt.Sprintf(
				`{"client_id":%q,"client_secret":%q,"audience":%q,"grant_type":"client_credentials"}`, id, secret, usageAPI)))
			req.Header.Set("content-type", "application/json")
			return req
		}, strings.Join(usageScopes, " ")},
		{"C: discovery, Basic and the same credentials in the body, scopes and no audience", flowC, "create:meters read:meters"},
		{"RFC 8707 resource", func() *http.Request {
			req, _ := http.NewRequest("POST", e.url+"/oauth/token", strings.NewReader(url.Values{
				"grant_type": {"client_credentials"}, "resource": {usageAPI}, "scope": {"read:meters"},
			}.Encode()))
			req.SetBasicAuth(id, secret)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}, "read:meters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			resp, body := e.send(tc.req())
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
				t.Fatalf("cache headers: %v", resp.Header)
			}
			var tr map[string]any
			if err := json.Unmarshal(body, &tr); err != nil {
				t.Fatal(err)
			}
			if tr["token_type"] != "Bearer" || tr["expires_in"] != float64(3600) || tr["scope"] != tc.wantScope {
				t.Fatalf("response %v", tr)
			}
			tok := tr["access_token"].(string)
			header, _ := jwtParts(t, tok)
			if header["typ"] != "at+jwt" || header["alg"] != "ES256" || header["kid"] == "" {
				t.Fatalf("header %v", header)
			}
			c := e.verifyWithJWKS(tok)
			if c["iss"] != e.url || c["sub"] != id || c["client_id"] != id || c["aud"] != usageAPI || c["scope"] != tc.wantScope {
				t.Fatalf("claims %v", c)
			}
			if c["exp"].(float64)-c["iat"].(float64) != 3600 || c["jti"] == "" {
				t.Fatalf("claims %v", c)
			}
		})
	}

	t.Run("golang.org/x/oauth2 clientcredentials", func(t *testing.T) {
		e := e.with(t)
		tok, err := e.clientCredentials(id, secret, usageAPI, "read:meters").Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tok.TokenType != "Bearer" || tok.Expiry.Before(time.Now().Add(50*time.Minute)) {
			t.Fatalf("token %+v", tok)
		}
		if c := e.verifyWithJWKS(tok.AccessToken); c["scope"] != "read:meters" {
			t.Fatalf("claims %v", c)
		}
	})

	t.Run("jti is unique per token", func(t *testing.T) {
		e := e.with(t)
		seen := map[string]bool{}
		for i := 0; i < 20; i++ {
			_, c := jwtParts(t, e.tokenFor(id, secret, usageAPI))
			jti := c["jti"].(string)
			if seen[jti] {
				t.Fatal("jti repeated")
			}
			seen[jti] = true
		}
	})
}

// TestSigningAlgorithms issues tokens for APIs that chose each algorithm
// and verifies them against the JWKS.
func TestSigningAlgorithms(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			e := e.with(t)
			aud := "https://" + strings.ToLower(alg) + ".example/"
			e.createAPI(adm, aud, alg, "read")
			app := e.createApp(adm, alg+" client", map[string][]string{aud: nil})
			tok := e.tokenFor(app.ClientID, app.ClientSecret, aud)
			h, _ := jwtParts(t, tok)
			if h["alg"] != alg {
				t.Fatalf("alg %v", h["alg"])
			}
			if c := e.verifyWithJWKS(tok); c["aud"] != aud {
				t.Fatalf("claims %v", c)
			}
		})
	}
}

type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// TestTokenErrors sends bad requests to a real server and checks the RFC
// 6749 §5.2 status, error code and headers of each.
func TestTokenErrors(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	e.createAPI(adm, "https://billing/", "", "read:invoices")
	app := e.createApp(adm, "reader", map[string][]string{usageAPI: {"read:meters"}})
	off := e.createApp(adm, "switched off", map[string][]string{usageAPI: nil})
	e.mustCall(200, "PATCH", "/admin/v1/applications/"+off.ClientID, adm, map[string]any{"disabled": true}, nil)
	wrong := app.ClientSecret[:len(app.ClientSecret)-4] + "AAAA"
	if wrong == app.ClientSecret {
		wrong = app.ClientSecret[:len(app.ClientSecret)-4] + "BBBB"
	}
	base := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	tests := []struct {
		name       string
		form       url.Values
		header     http.Header
		wantStatus int
		wantError  string
	}{
		{"wrong secret", base("client_secret", wrong), nil, 401, "invalid_client"},
		{"malformed secret", base("client_secret", "hunter2"), nil, 401, "invalid_client"},
		{"no secret", base("client_secret", ""), nil, 401, "invalid_client"},
		{"unknown client_id", base("client_id", "nosuchclient"), nil, 401, "invalid_client"},
		{"another application's secret", base("client_secret", off.ClientSecret), nil, 401, "invalid_client"},
		{"disabled application", base("client_id", off.ClientID, "client_secret", off.ClientSecret), nil, 401, "invalid_client"},
		{"wrong secret with Basic", base("client_id", "", "client_secret", ""),
			http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(app.ClientID+":"+wrong))}}, 401, "invalid_client"},
		{"Basic and a different client_id in the body", base("client_id", off.ClientID, "client_secret", ""),
			http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(app.ClientID+":"+app.ClientSecret))}}, 400, "invalid_request"},
		{"password grant", base("grant_type", "password"), nil, 400, "unsupported_grant_type"},
		{"no grant_type", base("grant_type", ""), nil, 400, "invalid_request"},
		{"audience without a grant", base("audience", "https://billing/"), nil, 400, "invalid_target"},
		{"unknown audience", base("audience", "https://nowhere/"), nil, 400, "invalid_target"},
		{"scope not granted", base("audience", usageAPI, "scope", "create:meters"), nil, 400, "invalid_scope"},
		{"audience and resource differ", base("audience", usageAPI, "resource", "https://billing/"), nil, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			req, _ := http.NewRequest("POST", e.url+"/oauth/token", strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, body := e.send(req)
			var oe oauthErr
			json.Unmarshal(body, &oe)
			if resp.StatusCode != tc.wantStatus || oe.Error != tc.wantError || oe.Description == "" {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tc.wantStatus, tc.wantError)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", resp.Header)
			}
			// RFC 6749 §5.2: a Basic challenge when the client used HTTP
			// Basic, none otherwise (client_secret_post clients such as
			// openid-client treat a challenge as another error).
			wantChallenge := ""
			if tc.wantStatus == 401 && tc.header.Get("Authorization") != "" {
				wantChallenge = `Basic realm="m2mauth"`
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != wantChallenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, wantChallenge)
			}
			if strings.Contains(string(body), app.ClientSecret) || strings.Contains(string(body), wrong) {
				t.Fatal("the response echoes a secret")
			}
		})
	}

	t.Run("GET is 405 with Allow", func(t *testing.T) {
		e := e.with(t)
		resp, body := e.send(mustRequest("GET", e.url+"/oauth/token"))
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(string(body), "invalid_request") {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("oversized body is 413", func(t *testing.T) {
		e := e.with(t)
		status, body := e.postForm("/oauth/token", base("pad", strings.Repeat("x", 20000)), nil)
		if status != 413 || !strings.Contains(string(body), "invalid_request") {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("no audience and two grants names the choices", func(t *testing.T) {
		e := e.with(t)
		two := e.createApp(adm, "two", map[string][]string{usageAPI: nil, "https://billing/": nil})
		status, body := e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {two.ClientID}, "client_secret": {two.ClientSecret}}, nil)
		if status != 400 || !strings.Contains(string(body), usageAPI) || !strings.Contains(string(body), "https://billing/") {
			t.Fatalf("%d %s", status, body)
		}
		// A scope only one of them defines picks it.
		status, body = e.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {two.ClientID}, "client_secret": {two.ClientSecret}, "scope": {"read:invoices"}}, nil)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("bad requests change nothing", func(t *testing.T) {
		e := e.with(t)
		// The application that failed to authenticate still works.
		e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	})
}

// TestExpiryFollowsTheClock checks exp against an injected clock and the
// API's token lifetime.
func TestExpiryFollowsTheClock(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newTestEnv(t, withClock(func() time.Time { return at }))
	adm := e.adminToken()
	var api struct{ ID string }
	e.mustCall(201, "POST", "/admin/v1/apis", adm, map[string]any{"identifier": "short", "token_lifetime": 120, "scopes": []map[string]string{{"value": "x"}}}, &api)
	app := e.createApp(adm, "a", map[string][]string{"short": nil})
	_, c := jwtParts(t, e.tokenFor(app.ClientID, app.ClientSecret, "short"))
	if int64(c["iat"].(float64)) != at.Unix() || int64(c["exp"].(float64)) != at.Unix()+120 {
		t.Fatalf("iat %v exp %v", c["iat"], c["exp"])
	}
}

// TestBootstrap checks the administrator created on an empty database: its
// credentials file is 0600, written once, and is the only place its secret
// appears (not the logs, not the database).
func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	e := newTestEnv(t, withDataDir(dir))
	path := filepath.Join(dir, CredentialsFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if e.admin.Audience != "urn:m2mauth:admin" || e.admin.TokenEndpoint != e.url+"/oauth/token" || e.admin.Issuer != e.url {
		t.Fatalf("credentials %+v", e.admin)
	}
	if !strings.Contains(e.logs.String(), path) {
		t.Fatal("the log does not name the credentials file")
	}
	e.adminToken()
	secret := e.admin.ClientSecret
	e.stop()
	entries, _ := os.ReadDir(dir)
	for _, ent := range entries {
		if ent.Name() == CredentialsFile || ent.IsDir() {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, ent.Name()))
		if strings.Contains(string(b), secret) || strings.Contains(string(b), secret[len(secret)-43:]) {
			t.Fatalf("the admin secret appears in %s", ent.Name())
		}
	}

	// A restart on the same database keeps the administrator and the file.
	before, _ := os.ReadFile(path)
	e2 := newTestEnv(t, withDataDir(dir))
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("the credentials file changed on restart")
	}
	if strings.Contains(e2.logs.String(), "bootstrapped") {
		t.Fatal("bootstrapped twice")
	}
	e2.adminToken()
}

// TestOAuth2LibraryErrors checks x/oauth2 surfaces the RFC error code.
func TestOAuth2LibraryErrors(t *testing.T) {
	e := newTestEnv(t)
	_, err := e.clientCredentials(e.admin.ClientID, "m2ms_00000000000000000000_"+strings.Repeat("A", 43), "urn:m2mauth:admin").Token(context.Background())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Fatalf("err = %v", err)
	}
}

func formOf(id, secret, audience string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "audience": {audience}}
}
