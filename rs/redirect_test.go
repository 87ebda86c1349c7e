package rs_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/m2mauth/m2mauth/rs"
)

// tlsIssuer is an issuer on a TLS loopback server, with iss's keys. Its
// metadata names itself as the issuer, its JWKS at /jwks.json and its
// introspection endpoint at /introspect; the test mounts those and what
// else it needs on mux.
type tlsIssuer struct {
	*testIssuer
	srv *httptest.Server
	mux *http.ServeMux
}

func newTLSIssuer(t *testing.T) *tlsIssuer {
	t.Helper()
	ti := &tlsIssuer{testIssuer: newTestIssuer(t), mux: http.NewServeMux()}
	ti.addKey("k1", "ES256")
	ti.srv = httptest.NewTLSServer(ti.mux)
	t.Cleanup(ti.srv.Close)
	ti.mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/jwks.json", "introspection_endpoint": ti.srv.URL + "/introspect",
		})
	})
	return ti
}

// plainServer counts the requests a plain-http loopback server receives and
// answers them with h.
func plainServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestRedirectToPlainHTTPRefused: for an https issuer, a redirect of the
// JWKS fetch to plain http is refused (net/http alone follows it, and a
// network attacker could then serve keys), while a redirect that stays on
// https is followed.
func TestRedirectToPlainHTTPRefused(t *testing.T) {
	ti := newTLSIssuer(t)
	plain, hits := plainServer(t, ti.jwks)
	ti.mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/jwks.json", http.StatusFound)
	})
	_, err := rs.New(context.Background(), rs.Config{Issuer: ti.srv.URL, Audience: audience, HTTPClient: ti.srv.Client()})
	if err == nil || hits.Load() != 0 {
		t.Fatalf("New = %v after %d plain-http requests; want an error and none", err, hits.Load())
	}

	t.Run("a redirect that stays on https is followed", func(t *testing.T) {
		ti := newTLSIssuer(t)
		ti.mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/keys", http.StatusFound)
		})
		ti.mux.HandleFunc("GET /keys", ti.jwks)
		if _, err := rs.New(context.Background(), rs.Config{Issuer: ti.srv.URL, Audience: audience, HTTPClient: ti.srv.Client()}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the client's own redirect policy still applies", func(t *testing.T) {
		ti := newTLSIssuer(t)
		ti.mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/keys", http.StatusFound)
		})
		ti.mux.HandleFunc("GET /keys", ti.jwks)
		client := ti.srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return errors.New("no redirects here") }
		if _, err := rs.New(context.Background(), rs.Config{Issuer: ti.srv.URL, Audience: audience, HTTPClient: client}); err == nil {
			t.Fatal("New followed a redirect the client's CheckRedirect refuses")
		}
	})
}

// TestIntrospectionFollowsNoRedirect: the introspection request carries
// this API's secret and the token, so a redirect (here a 307 to plain http
// on the same host, which net/http would follow with both) is not
// followed: the token cannot be checked, and is not accepted.
func TestIntrospectionFollowsNoRedirect(t *testing.T) {
	ti := newTLSIssuer(t)
	ti.mux.HandleFunc("GET /jwks.json", ti.jwks)
	plain, hits := plainServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"active":true}`))
	})
	ti.mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/introspect", http.StatusTemporaryRedirect)
	})
	v, err := rs.New(context.Background(), rs.Config{
		Issuer: ti.srv.URL, Audience: audience, HTTPClient: ti.srv.Client(), Now: ti.clock.Now,
		Introspection: &rs.IntrospectionConfig{ClientID: rsClientID, ClientSecret: rsSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := ti.claims("read")
	claims["iss"] = ti.srv.URL
	_, err = v.Validate(context.Background(), ti.token("k1", "ES256", "at+jwt", claims))
	if !errors.Is(err, rs.ErrIntrospectionUnavailable) || hits.Load() != 0 {
		t.Fatalf("Validate = %v after %d plain-http requests; want ErrIntrospectionUnavailable and none", err, hits.Load())
	}
}
