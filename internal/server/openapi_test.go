package server

import (
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestOpenAPICoversEveryRoute: every management route the server serves is
// in the OpenAPI document with its scope and documentation, and every
// operation in the document is a route the server serves.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newTestEnv(t)
	resp, body := e.send(mustRequest("GET", e.url+PathOpenAPI))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Summary  string                `json:"summary"`
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			inDoc[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range e.srv.adminRoutes() {
		key := rt.Method + " " + rt.Path
		served[key] = true
		t.Run(key, func(t *testing.T) {
			if !inDoc[key] {
				t.Fatal("served but not in the OpenAPI document")
			}
			op := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
			if _, ok := adminOps[key]; !ok || op.Summary == "" {
				t.Fatal("no documentation in adminOps")
			}
			if len(op.Security) != 1 || strings.Join(op.Security[0]["oauth2"], " ") != rt.Scope {
				t.Fatalf("security %v, want scope %s", op.Security, rt.Scope)
			}
		})
	}
	// Every documented operation reaches a handler of exactly that pattern.
	mux := e.srv.routes()
	for key := range inDoc {
		method, path, _ := strings.Cut(key, " ")
		if !served[key] {
			t.Errorf("%s is documented but not served", key)
			continue
		}
		req := httptest.NewRequest(method, strings.NewReplacer("{", "x", "}", "x").Replace(path), nil)
		if _, pattern := mux.Handler(req); pattern != key {
			t.Errorf("%s routes to pattern %q", key, pattern)
		}
	}
	for key := range adminOps {
		if !served[key] {
			t.Errorf("adminOps documents %s, which is not served", key)
		}
	}
}

// TestOpenAPIGolden keeps testdata/openapi.json equal to the served
// document (issuer http://127.0.0.1:8080); the tools module validates that
// file against the OpenAPI 3.1 schema. Run with -update after changing the
// management API.
func TestOpenAPIGolden(t *testing.T) {
	e := newTestEnv(t)
	doc, err := adminOpenAPI("http://127.0.0.1:8080", e.srv)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "openapi.json")
	if *update {
		if err := os.WriteFile(golden, append(doc, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(doc)) {
		t.Fatalf("testdata/openapi.json is stale: run go test ./internal/server -run TestOpenAPIGolden -update")
	}
}
