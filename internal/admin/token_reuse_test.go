package admin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestTokenReusePatch: in a PATCH body token_reuse is absent (unchanged),
// null (removed) or {"min_remaining": n} (set); 0 is not a removal, and
// an unknown member is refused.
func TestTokenReusePatch(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       *authz.TokenReuse // nil: unchanged
		fails      bool
	}{
		{"absent", `{}`, nil, false},
		{"null removes", `{"token_reuse": null}`, &authz.TokenReuse{}, false},
		{"set", `{"token_reuse": {"min_remaining": 300}}`, &authz.TokenReuse{MinRemaining: 300 * time.Second}, false},
		{"zero is not a removal", `{"token_reuse": {"min_remaining": 0}}`, &authz.TokenReuse{MinRemaining: -1}, false},
		{"huge is clamped, not wrapped", `{"token_reuse": {"min_remaining": 9223372036854775807}}`, &authz.TokenReuse{MinRemaining: authz.MaxTokenLifetime}, false},
		{"unknown member", `{"token_reuse": {"min_remaining": 300, "max": 1}}`, nil, true},
		{"not an object", `{"token_reuse": 300}`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req UpdateApplicationRequest
			err := json.Unmarshal([]byte(tc.body), &req)
			if tc.fails != (err != nil) {
				t.Fatalf("Unmarshal: %v, want failure %v", err, tc.fails)
			}
			if err != nil {
				return
			}
			got := req.TokenReuse.change()
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("change() = %v, want %v", got, tc.want)
			}
			// A client encoding the request sends what it decoded.
			b, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			var again UpdateApplicationRequest
			if err := json.Unmarshal(b, &again); err != nil {
				t.Fatal(err)
			}
			if g2 := again.TokenReuse.change(); (g2 == nil) != (got == nil) || (g2 != nil && *g2 != *got) {
				t.Fatalf("round trip %s: %v, want %v", b, g2, got)
			}
		})
	}
	if b, _ := json.Marshal(applicationResource(authz.Application{}, nil)); !json.Valid(b) || !strings.Contains(string(b), `"token_reuse":null`) {
		t.Fatalf("an application without token reuse shows %s", b)
	}
	if b, _ := json.Marshal(apiResource(authz.API{TokenReuse: authz.TokenReuse{MinRemaining: 300 * time.Second}})); !strings.Contains(string(b), `"token_reuse":{"min_remaining":300}`) {
		t.Fatalf("an API with token reuse shows %s", b)
	}
}
