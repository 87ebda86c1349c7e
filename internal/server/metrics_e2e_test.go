package server

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/buildinfo"
)

func withMetrics(perClient bool) envOption {
	return func(c *Config, _ *Deps) {
		c.MetricsAddr = "127.0.0.1:0"
		c.MetricsPerClient = perClient
	}
}

// scrape returns the whole exposition of the metrics listener.
func (e *testEnv) scrape() string {
	e.t.Helper()
	addr := e.srv.MetricsAddr()
	if addr == "" {
		e.t.Fatal("no metrics listener")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// metricSum adds the samples of name in text whose labels include every
// pair of want.
func metricSum(t testing.TB, text, name string, want map[string]string) float64 {
	t.Helper()
	var sum float64
	for line := range strings.SplitSeq(text, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		labels := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			labels[p[1]] = p[2]
		}
		ok := true
		for k, v := range want {
			if labels[k] != v {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// tokenRequest sends a token request for usageAPI with client_secret_post,
// or client_secret_basic if basic, and returns the status and the access
// token ("" on failure).
func (e *testEnv) tokenRequest(id, secret, audience, scope string, basic bool) (int, string) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {audience}}
	if scope != "" {
		form.Set("scope", scope)
	}
	h := http.Header{}
	if basic {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
	} else {
		form.Set("client_id", id)
		form.Set("client_secret", secret)
	}
	status, body := e.postForm("/oauth/token", form, h)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(body, &tr)
	return status, tr.AccessToken
}

func TestMetricsEndToEnd(t *testing.T) {
	e := newTestEnv(t, withMetrics(false))
	admin := e.adminToken()
	const api = "https://usage.example"
	e.createAPI(admin, api, "ES256", "read:meters")
	app := e.createApp(admin, "metered", map[string][]string{api: nil})
	tokens := []string{admin}

	before := e.scrape()
	issued := map[string]string{"result": "issued", "grant_type": "client_credentials", "api": api}
	for i := range 7 {
		basic := i%2 == 1 // 4 client_secret_post, 3 client_secret_basic
		status, tok := e.tokenRequest(app.ClientID, app.ClientSecret, api, "", basic)
		if status != http.StatusOK {
			t.Fatalf("token %d: status %d", i, status)
		}
		tokens = append(tokens, tok)
	}
	wrong := "m2ms_" + strings.Repeat("0", 20) + "_" + strings.Repeat("A", 43)
	for range 3 {
		if status, _ := e.tokenRequest(app.ClientID, wrong, api, "", false); status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: status %d", status)
		}
	}
	for range 2 {
		if status, _ := e.tokenRequest(app.ClientID, app.ClientSecret, api, "write:everything", false); status != http.StatusBadRequest {
			t.Fatalf("scope not granted: status %d", status)
		}
	}
	after := e.scrape()

	delta := func(name string, labels map[string]string) float64 {
		return metricSum(t, after, name, labels) - metricSum(t, before, name, labels)
	}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range m {
			out[a] = b
		}
		return out
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"issued", issued, 7},
		{"issued with client_secret_post", with(issued, "auth_method", "client_secret_post"), 4},
		{"issued with client_secret_basic", with(issued, "auth_method", "client_secret_basic"), 3},
		{"invalid_client", map[string]string{"result": "invalid_client"}, 3},
		{"invalid_client for the API asked", map[string]string{"result": "invalid_client", "api": api}, 3},
		{"invalid_scope", map[string]string{"result": "invalid_scope", "api": api}, 2},
		{"every token request", map[string]string{}, 12},
	} {
		if got := delta("m2mauth_token_requests_total", c.labels); got != c.want {
			t.Errorf("%s: m2mauth_token_requests_total moved by %v, want %v", c.name, got, c.want)
		}
	}
	route := map[string]string{"route": "POST /oauth/token"}
	if got := delta("m2mauth_http_request_duration_seconds_count", route); got != 12 {
		t.Errorf("latency histogram of POST /oauth/token counted %v requests, want 12", got)
	}
	if got := delta("m2mauth_http_request_duration_seconds_bucket", map[string]string{"route": "POST /oauth/token", "le": "+Inf"}); got != 12 {
		t.Errorf("latency histogram's +Inf bucket counted %v, want 12", got)
	}
	if got := delta("m2mauth_token_signing_duration_seconds_count", map[string]string{"alg": "ES256"}); got != 7 {
		t.Errorf("signing histogram of ES256 counted %v, want 7", got)
	}
	if got := metricSum(t, after, "m2mauth_http_request_duration_seconds_count", map[string]string{"route": "POST /admin/v1/apis", "code": "2xx"}); got != 1 {
		t.Errorf("latency histogram of POST /admin/v1/apis counted %v, want 1", got)
	}
	bi := buildinfo.Read()
	if got := metricSum(t, after, "m2mauth_build_info", map[string]string{"go_version": runtime.Version(), "revision": bi.Revision, "version": bi.Version}); got != 1 {
		t.Errorf("m2mauth_build_info: %v, want 1", got)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "m2mauth_denylist_entries", "m2mauth_audit_buffered_events",
		"m2mauth_audit_events_dropped_total", "m2mauth_client_cache_entries", "m2mauth_client_cache_lookups_total", "m2mauth_signing_key_age_seconds"} {
		if !regexp.MustCompile(`(?m)^` + name + `[ {]`).MatchString(after) {
			t.Errorf("no %s in the exposition", name)
		}
	}
	if got := delta("m2mauth_client_cache_lookups_total", map[string]string{}); got != 12 {
		t.Errorf("cache lookups moved by %v, want 12 (one per authenticated token request)", got)
	}

	// No secret, no token and nothing shaped like a client secret.
	if regexp.MustCompile(`m2ms_[0-9a-f]{20}_`).MatchString(after) {
		t.Error("the exposition holds something shaped like a client secret")
	}
	e.seen.mu.Lock()
	secrets := append([]string(nil), e.seen.secrets...)
	e.seen.mu.Unlock()
	for _, s := range append(secrets, tokens...) {
		if s == "" {
			t.Fatal("an empty secret or token")
		}
		if strings.Contains(after, s) {
			t.Error("the exposition holds a client secret or a token")
		}
	}
	if strings.Contains(after, app.ClientID) {
		t.Error("the exposition names a client_id without --metrics-per-client")
	}

	// Metrics are on their own listener only.
	resp, _ := e.send(mustRequest("GET", e.url+"/metrics"))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the main listener: %d, want 404", resp.StatusCode)
	}
}

func TestMetricsPerClient(t *testing.T) {
	e := newTestEnv(t, withMetrics(true))
	admin := e.adminToken()
	const api = "https://usage.example"
	e.createAPI(admin, api, "ES256", "read:meters")
	app := e.createApp(admin, "metered", map[string][]string{api: nil})
	for range 2 {
		if status, _ := e.tokenRequest(app.ClientID, app.ClientSecret, api, "", false); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
	}
	// A caller that never authenticated adds no label value: neither its
	// client_id nor the API it names.
	const stranger, unknownAPI = "stranger-chosen-id", "https://unknown.example"
	if status, _ := e.tokenRequest(stranger, "m2ms_"+strings.Repeat("1", 20)+"_x", unknownAPI, "", false); status != http.StatusUnauthorized {
		t.Fatalf("stranger: status %d", status)
	}
	text := e.scrape()
	if got := metricSum(t, text, "m2mauth_token_requests_total", map[string]string{"client_id": app.ClientID, "result": "issued"}); got != 2 {
		t.Errorf("issued to %s: %v, want 2", app.ClientID, got)
	}
	if got := metricSum(t, text, "m2mauth_token_requests_total", map[string]string{"client_id": "none", "api": "other", "result": "invalid_client"}); got != 1 {
		t.Errorf("the stranger's failure: %v, want 1 under client_id none, api other", got)
	}
	if strings.Contains(text, stranger) || strings.Contains(text, unknownAPI) {
		t.Error("an unauthenticated caller's client_id or audience became a label value")
	}
}

func TestVersionEndpoint(t *testing.T) {
	e := newTestEnv(t)
	resp, body := e.send(mustRequest("GET", e.url+PathVersion))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /version: %d %s", resp.StatusCode, body)
	}
	var got buildinfo.Info
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if want := buildinfo.Read(); got != want {
		t.Errorf("GET /version = %+v, want %+v", got, want)
	}
	if got.GoVersion != runtime.Version() {
		t.Errorf("go_version %q, want %q", got.GoVersion, runtime.Version())
	}
	if e.srv.MetricsAddr() != "" {
		t.Error("a metrics listener without --metrics-addr")
	}
}
