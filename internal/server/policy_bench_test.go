package server

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// BenchmarkTokenEndpointPolicy is BenchmarkTokenEndpoint's ES256 case for
// an application without a policy and for one with a rate limit (never
// reached) and three custom claims: the difference is the policy's cost.
func BenchmarkTokenEndpointPolicy(b *testing.B) {
	e := newTestEnv(b, quietLog(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	adm := e.adminToken()
	const aud = "https://bench-policy/"
	e.createAPI(adm, aud, "ES256", "read:meters", "create:meters")
	plain := e.createApp(adm, "bench plain", map[string][]string{aud: nil})
	var limited struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name":   "bench limited",
		"grants": []map[string]any{{"audience": aud, "claims": map[string]any{"tenant_id": "t-42", "org": "acme", "env": "prod"}}},
		"policy": map[string]any{"rate": map[string]any{"per_second": 1e6, "burst": 1e6}, "quota": map[string]any{"per_day": 1e9}},
	}, &limited)
	e.addSecret(limited.ClientSecret)
	h := e.srv.Handler()
	b.Run("no-policy", func(b *testing.B) { benchTokenRequests(b, h, formOf(plain.ClientID, plain.ClientSecret, aud).Encode()) })
	b.Run("rate+quota+claims", func(b *testing.B) {
		benchTokenRequests(b, h, formOf(limited.ClientID, limited.ClientSecret, aud).Encode())
	})
}
