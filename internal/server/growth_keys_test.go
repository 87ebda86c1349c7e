package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// TestRotationLimits: a rotation by hand is refused (409 conflict) while
// the next key is younger than the JWKS max-age, so rotating twice in a
// row fails the second time; {"force": true} rotates anyway and is
// audited as forced; and 50 forced rotations leave the JWKS bounded.
func TestRotationLimits(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	rotate := map[string]any{"alg": authz.ES256}
	force := map[string]any{"alg": authz.ES256, "force": true}

	clk.Add(token.JWKSMaxAge * time.Second)
	adm := e.adminToken()
	e.mustCall(http.StatusOK, "POST", "/admin/v1/keys/rotate", adm, rotate, nil)
	before := keyIn(t, e.keyList(adm), authz.ES256, authz.KeyActive)

	var p problemBody
	resp := e.call("POST", "/admin/v1/keys/rotate", adm, rotate, &p)
	if resp.StatusCode != http.StatusConflict || p.Code != "conflict" || !strings.Contains(p.Detail, "max-age") || !strings.Contains(p.Detail, "force") {
		t.Fatalf("second rotation in a row: %d %+v, want 409 conflict naming the max-age and force", resp.StatusCode, p)
	}
	if got := keyIn(t, e.keyList(adm), authz.ES256, authz.KeyActive); got.KID != before.KID {
		t.Fatal("the refused rotation rotated")
	}
	resp = e.call("POST", "/admin/v1/keys/rotate", adm, map[string]any{}, &p)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("every algorithm, ES256's next key young: %d, want 409", resp.StatusCode)
	}

	e.mustCall(http.StatusOK, "POST", "/admin/v1/keys/rotate", adm, force, nil)
	if got := keyIn(t, e.keyList(adm), authz.ES256, authz.KeyActive); got.KID == before.KID {
		t.Fatal("a forced rotation did not rotate")
	}
	var forced, unforced int
	for _, ev := range e.auditEvents("key.rotate") {
		var d struct {
			Force *bool `json:"force"`
		}
		if err := json.Unmarshal([]byte(ev.Details), &d); err != nil || d.Force == nil {
			t.Fatalf("key.rotate details %q: no force member", ev.Details)
		}
		if ev.Actor != e.admin.ClientID {
			t.Errorf("key.rotate by %q, want the administrator", ev.Actor)
		}
		if *d.Force {
			forced++
		} else {
			unforced++
		}
	}
	if forced != 1 || unforced != 1 {
		t.Errorf("audited %d forced and %d unforced rotations, want 1 and 1", forced, unforced)
	}

	old := adm // signed by a key that the forced rotations below remove early
	for i := range 50 {
		clk.Add(time.Second) // rotations by hand are apart in time: the oldest retired key goes first
		if i%10 == 0 {
			adm = e.adminToken() // signed by a key still published
		}
		if resp := e.call("POST", "/admin/v1/keys/rotate", adm, force, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("forced rotation %d: %d %s", i, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp := e.call("GET", "/admin/v1/keys", old, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a token of a key removed early: %d, want 401 (the trade-off of force)", resp.StatusCode)
	}
	adm = e.adminToken()
	kids := e.jwksKIDs()
	// ES256: the cap of retired keys, an active and a next key.
	if want := token.MaxRetiredKeys + 2; len(kids) != want {
		t.Errorf("JWKS of %d keys after 52 rotations, want %d", len(kids), want)
	}
	var l admin.List[admin.KeyResource]
	e.mustCall(http.StatusOK, "GET", "/admin/v1/keys?limit=100", adm, nil, &l)
	if len(l.Items) != len(kids) {
		t.Errorf("%d keys listed, %d published", len(l.Items), len(kids))
	}
	evicted := 0
	for _, ev := range e.auditEvents("key.rotate") {
		var d struct {
			EarlyEvicted []string `json:"evicted_early"`
		}
		_ = json.Unmarshal([]byte(ev.Details), &d)
		evicted += len(d.EarlyEvicted)
	}
	if want := 52 - token.MaxRetiredKeys; evicted != want {
		t.Errorf("%d keys audited as evicted early, want %d", evicted, want)
	}
}
