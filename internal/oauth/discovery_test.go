package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// countingAPIs lists one API and counts the reads; it fails when down.
type countingAPIs struct {
	reads int
	down  bool
	scope string
}

func (c *countingAPIs) ListAPIs(context.Context, authz.APIFilter, authz.Page) ([]authz.API, string, error) {
	c.reads++
	if c.down {
		return nil, "", errors.New("database down")
	}
	return []authz.API{{Identifier: "https://api/", Scopes: []authz.Scope{{Value: c.scope}}}}, "", nil
}

// TestMetadataIsCached: the public metadata document reads the APIs at
// most once per metadataCacheTTL, and keeps serving the last document when
// a rebuild fails.
func TestMetadataIsCached(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	apis := &countingAPIs{scope: "read:a"}
	d := &Discovery{Issuer: "https://auth", APIs: apis, Now: func() time.Time { return now }}
	get := func() (int, string) {
		w := httptest.NewRecorder()
		d.HandleMetadata(w, httptest.NewRequest(http.MethodGet, PathASMetadata, nil))
		return w.Code, w.Body.String()
	}
	for i := 0; i < 3; i++ {
		if code, body := get(); code != 200 || !strings.Contains(body, "read:a") {
			t.Fatalf("%d %s", code, body)
		}
	}
	if apis.reads != 1 {
		t.Fatalf("%d reads for 3 requests within the TTL", apis.reads)
	}
	apis.scope = "read:b"
	now = now.Add(metadataCacheTTL)
	if _, body := get(); !strings.Contains(body, "read:b") || apis.reads != 2 {
		t.Fatalf("after the TTL: %d reads, %s", apis.reads, body)
	}
	apis.down = true
	now = now.Add(metadataCacheTTL)
	if code, body := get(); code != 200 || !strings.Contains(body, "read:b") {
		t.Fatalf("with the database down: %d %s", code, body)
	}
	fresh := &Discovery{Issuer: "https://auth", APIs: &countingAPIs{down: true}}
	w := httptest.NewRecorder()
	fresh.HandleMetadata(w, httptest.NewRequest(http.MethodGet, PathASMetadata, nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("nothing cached and the database down: %d", w.Code)
	}
}
