package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.TokenRequest("issued", "client_credentials", "client_secret_post", "a", "c")
	m.ObserveRequest("GET /healthz", 200, time.Millisecond)
	m.StartSigning("ES256")()
	m.CacheLookup("hit")
	m.StoreError("client_lookup")
	m.Watch(Sources{})
}

func TestAPILabelIsBounded(t *testing.T) {
	m := New(Options{MaxAPIs: 2})
	m.TokenRequest("invalid_client", "client_credentials", "client_secret_post", "https://never-issued", "")
	for i := range 5 {
		m.TokenRequest("issued", "client_credentials", "client_secret_post", fmt.Sprintf("https://api%d", i), "c")
	}
	m.TokenRequest("invalid_scope", "client_credentials", "client_secret_post", "https://api0", "c")
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"invalid_client", "client_credentials", "client_secret_post", "other"}, 1},
		{[]string{"issued", "client_credentials", "client_secret_post", "https://api0"}, 1},
		{[]string{"issued", "client_credentials", "client_secret_post", "https://api1"}, 1},
		{[]string{"issued", "client_credentials", "client_secret_post", "other"}, 3},
		{[]string{"invalid_scope", "client_credentials", "client_secret_post", "https://api0"}, 1},
	} {
		if got := testutil.ToFloat64(m.tokenRequests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.tokenRequests); n != 5 {
		t.Errorf("%d series, want 5", n)
	}
}

func TestClientLabelIsBounded(t *testing.T) {
	m := New(Options{PerClient: true, MaxClients: 1})
	m.TokenRequest("issued", "client_credentials", "client_secret_basic", "a", "app_1")
	m.TokenRequest("issued", "client_credentials", "client_secret_basic", "a", "app_2")
	m.TokenRequest("invalid_client", "client_credentials", "client_secret_basic", "a", "")
	m.TokenRequest("unsupported_grant_type", "password", "none", "", "")
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"issued", "client_credentials", "client_secret_basic", "a", "app_1"}, 1},
		{[]string{"issued", "client_credentials", "client_secret_basic", "a", "other"}, 1},
		{[]string{"invalid_client", "client_credentials", "client_secret_basic", "a", "none"}, 1},
		{[]string{"unsupported_grant_type", "unsupported", "none", "none", "none"}, 1},
	} {
		if got := testutil.ToFloat64(m.tokenRequests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("%v = %v, want %v", c.labels, got, c.want)
		}
	}
}

func TestRequestLatencyLabels(t *testing.T) {
	m := New(Options{})
	m.ObserveRequest("", 404, time.Millisecond)
	m.ObserveRequest("POST /oauth/token", 0, time.Millisecond)
	m.ObserveRequest("POST /oauth/token", 200, 2*time.Millisecond)
	m.ObserveRequest("POST /oauth/token", 503, time.Millisecond)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range fams {
		if f.GetName() != "m2mauth_http_request_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			var key []string
			for _, l := range s.GetLabel() {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
			got[strings.Join(key, ",")] = s.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{"code=4xx,route=none": 1, "code=2xx,route=POST /oauth/token": 2, "code=5xx,route=POST /oauth/token": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("histogram series %v, want %v", got, want)
	}
}

func TestGauges(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	m := New(Options{})
	m.Watch(Sources{
		DenyListLen:  func() int { return 3 },
		CacheEntries: func() int { return 4 },
		Audit:        func() (int, uint64) { return 5, 6 },
		Keys: func() []authz.SigningKey {
			return []authz.SigningKey{{KID: "k1", Alg: "ES256", State: authz.KeyState("active"), CreatedAt: now.Add(-time.Hour)}}
		},
		Now: func() time.Time { return now },
	})
	want := `
# HELP m2mauth_denylist_entries Revoked tokens (jti) held in this replica's in-memory deny-list.
# TYPE m2mauth_denylist_entries gauge
m2mauth_denylist_entries 3
# HELP m2mauth_client_cache_entries Applications held in the token endpoint's in-memory cache.
# TYPE m2mauth_client_cache_entries gauge
m2mauth_client_cache_entries 4
# HELP m2mauth_audit_buffered_events Audit events waiting in memory to be written to the database.
# TYPE m2mauth_audit_buffered_events gauge
m2mauth_audit_buffered_events 5
# HELP m2mauth_audit_events_dropped_total Audit events dropped: the buffer was full, or the database refused them.
# TYPE m2mauth_audit_events_dropped_total counter
m2mauth_audit_events_dropped_total 6
# HELP m2mauth_signing_key_age_seconds Seconds since each signing key was created, by algorithm, state (next, active, retired) and kid.
# TYPE m2mauth_signing_key_age_seconds gauge
m2mauth_signing_key_age_seconds{alg="ES256",kid="k1",state="active"} 3600
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"m2mauth_denylist_entries", "m2mauth_client_cache_entries", "m2mauth_audit_buffered_events",
		"m2mauth_audit_events_dropped_total", "m2mauth_signing_key_age_seconds"); err != nil {
		t.Error(err)
	}
}
