package main

import (
	"os"
	"strings"
	"testing"
)

// TestPeerMatchesServer: the secret, client ids and audiences that
// peerTarget uses are the ones peer/server.mjs configures, and the lock
// file pins the oidc-provider version the docs name.
func TestPeerMatchesServer(t *testing.T) {
	js, err := os.ReadFile("peer/server.mjs")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"'" + peerSecret + "'", "`peer-${alg.toLowerCase()}`", "`https://bench-${alg.toLowerCase()}.example/`"} {
		if !strings.Contains(string(js), want) {
			t.Errorf("server.mjs does not hold %s", want)
		}
	}
	for _, alg := range peerAlgs {
		if !strings.Contains(string(js), "'"+alg+"'") {
			t.Errorf("server.mjs has no %s key", alg)
		}
		if tg := peerTarget("http://127.0.0.1:1", alg); tg.ClientID != "peer-"+strings.ToLower(alg) || tg.Path != "/token" {
			t.Errorf("peerTarget(%s) = %+v", alg, tg)
		}
	}
	lock, err := os.ReadFile("peer/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lock), `"node_modules/oidc-provider": {
      "version": "9.13.3"`) {
		t.Error("package-lock.json does not pin oidc-provider 9.13.3")
	}
}
