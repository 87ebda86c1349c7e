package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/dpop"
)

// newProofSigner returns a DPoP key's proof signer.
func newProofSigner(t *testing.T) *dpop.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, rand.Reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request with the given headers and returns the status, the
// WWW-Authenticate fields and the body.
func do(t *testing.T, client *http.Client, method, url string, header http.Header) (int, []string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Values("WWW-Authenticate"), string(b)
}

func TestResourceMetadata(t *testing.T) {
	iss, api := newTestAPI(t)
	resp, err := api.Client().Get(api.URL + "/.well-known/oauth-protected-resource")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("metadata: %d %v", resp.StatusCode, err)
	}
	if m["resource"] != testAudience || m["resource_name"] != "Usage API" ||
		len(m["authorization_servers"].([]any)) != 1 || m["authorization_servers"].([]any)[0] != iss.url ||
		len(m["scopes_supported"].([]any)) != 4 || m["bearer_methods_supported"].([]any)[0] != "header" ||
		m["dpop_bound_access_tokens_required"] != false || len(m["dpop_signing_alg_values_supported"].([]any)) == 0 {
		t.Errorf("metadata = %v", m)
	}
}

func TestSenderConstrainedRoutes(t *testing.T) {
	iss, api := newTestAPI(t)
	signer := newProofSigner(t)
	bearer := iss.token(t, "read:meters")
	bound := iss.tokenFor(t, testAudience, "read:meters", map[string]any{"cnf": map[string]any{"jkt": signer.Thumbprint()}})
	dpopCall := func(token, proofURL string) http.Header {
		proof, err := signer.Proof("GET", proofURL, token, "")
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Authorization": {"DPoP " + token}, "Dpop": {proof}}
	}
	export, meters := api.URL+"/meters/export", api.URL+"/meters"
	replayed := dpopCall(bound, export)

	for _, tc := range []struct {
		name       string
		url        string
		header     http.Header
		wantStatus int
		wantAuth   string // substring of the challenge carrying the error
	}{
		{"DPoP token on the DPoP-required route", export, replayed, 200, ""},
		{"replayed proof", export, replayed, 401, `DPoP realm="` + testAudience + `", algs="ES256 PS256 EdDSA RS256", error="invalid_dpop_proof", error_description="invalid DPoP proof: jti already used"`},
		{"proof for another URL", export, dpopCall(bound, meters), 401, `error="invalid_dpop_proof"`},
		{"bearer token on the DPoP-required route", export, http.Header{"Authorization": {"Bearer " + bearer}}, 401, `DPoP realm="` + testAudience + `", algs="ES256 PS256 EdDSA RS256", error="invalid_token"`},
		{"no token on the DPoP-required route", export, http.Header{}, 401, `DPoP realm="` + testAudience + `", algs="ES256 PS256 EdDSA RS256"`},
		{"bearer token on a bearer route", meters, http.Header{"Authorization": {"Bearer " + bearer}}, 200, ""},
		{"DPoP token on a bearer route", meters, dpopCall(bound, meters), 200, ""},
		{"DPoP-bound token as Bearer", meters, http.Header{"Authorization": {"Bearer " + bound}}, 401, `Bearer realm="` + testAudience + `", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, auth, body := do(t, api.Client(), "GET", tc.url, tc.header)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", status, tc.wantStatus, body)
			}
			if status == 200 {
				return
			}
			if !strings.Contains(strings.Join(auth, "\n"), tc.wantAuth) {
				t.Errorf("WWW-Authenticate = %q, want %q", auth, tc.wantAuth)
			}
			meta := `resource_metadata="` + testAudience + `/.well-known/oauth-protected-resource"`
			for _, a := range auth {
				if !strings.Contains(a, meta) {
					t.Errorf("challenge %q lacks %s", a, meta)
				}
			}
			if tc.url == export && len(auth) != 1 {
				t.Errorf("DPoP-required route: challenges %q, want DPoP alone", auth)
			}
		})
	}
}
