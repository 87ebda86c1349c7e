// Package metrics holds m2mauth's Prometheus collectors on a registry of
// its own (never the global default), and the /metrics handler that
// exposes them. docs/metrics.md lists every metric.
//
// Every label is bounded: route patterns come from the routes table, API
// identifiers and client_ids enter a label only after a token was issued
// for them (or, for client_id, after the client authenticated), up to a
// cap, and anything else is counted under "other". No label ever holds a
// secret or a token.
//
// A nil *Metrics is valid and records nothing, so that instrumented code
// needs no check when metrics are off.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/buildinfo"
)

// Path is where Handler is served on the metrics listener.
const Path = "/metrics"

// Label values used when the real value is absent or not admitted.
const (
	LabelNone  = "none"  // the request named no API, or no route matched
	LabelOther = "other" // a value outside the bounded set
)

// Defaults of Options.
const (
	DefaultMaxAPIs    = 100
	DefaultMaxClients = 50
)

// Options configure New. Zero fields take the defaults.
type Options struct {
	// PerClient adds a client_id label to the token request counter, for
	// deployments with few applications (--metrics-per-client).
	PerClient bool
	// MaxAPIs bounds the api label's values; past it, "other".
	MaxAPIs int
	// MaxClients bounds the client_id label's values; past it, "other".
	MaxClients int
	// Build is exported as m2mauth_build_info.
	Build buildinfo.Info
}

// Metrics are m2mauth's collectors. Build it with New; it is safe for
// concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	perClient bool
	apis      *labelSet
	clients   *labelSet

	tokenRequests   *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	signingDuration *prometheus.HistogramVec
	cacheLookups    *prometheus.CounterVec
	storeErrors     *prometheus.CounterVec
	tokenReuse      *prometheus.CounterVec
}

// New returns Metrics on a new registry holding m2mauth's collectors,
// m2mauth_build_info and the Go runtime and process collectors.
func New(o Options) *Metrics {
	if o.MaxAPIs <= 0 {
		o.MaxAPIs = DefaultMaxAPIs
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		perClient: o.PerClient,
		apis:      newLabelSet(o.MaxAPIs),
		clients:   newLabelSet(o.MaxClients),
	}
	tokenLabels := []string{"result", "grant_type", "auth_method", "api"}
	if o.PerClient {
		tokenLabels = append(tokenLabels, "client_id")
	}
	m.tokenRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "m2mauth_token_requests_total",
		Help: "Token endpoint requests by result (issued or the OAuth error code), grant type, client authentication method and API.",
	}, tokenLabels)
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "m2mauth_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern and status class.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "code"})
	m.signingDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "m2mauth_token_signing_duration_seconds",
		Help:    "Time to sign an access token, by signing algorithm.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05},
	}, []string{"alg"})
	m.cacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "m2mauth_client_cache_lookups_total",
		Help: "Application lookups of the token endpoint's in-memory cache, by result: hit, stale (older than the cache TTL: answered, and reread in the background), negative_hit (a client_id remembered as unknown) or miss (read from the database).",
	}, []string{"result"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "m2mauth_store_errors_total",
		Help: "Database errors seen by the server, by operation.",
	}, []string{"op"})
	m.tokenReuse = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "m2mauth_token_reuse_total",
		Help: "Token requests under opt-in token reuse, by result: hit (the cached token answered, no signature), miss (none cached: a new token) or invalidated (the cached one was revoked, its application or key changed, or too little of it was left: a new token).",
	}, []string{"result"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "m2mauth_build_info",
		Help:        "Always 1; its labels describe the running build.",
		ConstLabels: prometheus.Labels{"version": o.Build.Version, "revision": o.Build.Revision, "go_version": o.Build.GoVersion},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.tokenRequests, m.requestDuration, m.signingDuration, m.cacheLookups, m.storeErrors, m.tokenReuse, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry of m's collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition of m's registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// TokenRequest counts one token endpoint request (oauth.TokenMetrics).
// result is "issued" or the error code answered; audience is the API
// asked for or issued for, and clientID the client that authenticated
// ("" if none did). An API enters the api label only once a token was
// issued for it; a client_id enters the client_id label once it
// authenticated: an unauthenticated caller can never add a label value.
func (m *Metrics) TokenRequest(result, grantType, authMethod, audience, clientID string) {
	if m == nil {
		return
	}
	api := LabelNone
	if audience != "" {
		api = m.apis.value(audience, result == ResultIssued)
	}
	values := []string{result, grantTypeLabel(grantType), authMethod, api}
	if m.perClient {
		client := LabelNone
		if clientID != "" {
			client = m.clients.value(clientID, true)
		}
		values = append(values, client)
	}
	m.tokenRequests.WithLabelValues(values...).Inc()
}

// ResultIssued is TokenRequest's result for a token issued.
const ResultIssued = "issued"

func grantTypeLabel(gt string) string {
	switch gt {
	// Literals, never gt: a label value is kept for the life of the
	// process, and gt is a substring of the request body, which may hold
	// a client secret.
	case "client_credentials": // RFC 6749 §4.4
		return "client_credentials"
	case "urn:ietf:params:oauth:grant-type:jwt-bearer": // RFC 7523 §2.1
		return "urn:ietf:params:oauth:grant-type:jwt-bearer"
	case "":
		return LabelNone
	}
	return "unsupported"
}

// ObserveRequest records the time to answer one HTTP request. route is the
// ServeMux pattern that matched (http.Request.Pattern; "" for none) and
// status the status written.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = LabelNone
	}
	m.requestDuration.WithLabelValues(route, statusClass(status)).Observe(d.Seconds())
}

func statusClass(status int) string {
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	if status < 100 || status > 599 {
		return LabelOther
	}
	return strconv.Itoa(status/100) + "xx"
}

// StartSigning starts timing the signature of one token with alg; the
// function it returns records the time (token.Issuer.Signing).
func (m *Metrics) StartSigning(alg string) func() {
	if m == nil {
		return func() {}
	}
	if !authz.ValidSigningAlg(alg) {
		alg = LabelOther
	}
	start := time.Now()
	obs := m.signingDuration.WithLabelValues(alg)
	return func() { obs.Observe(time.Since(start).Seconds()) }
}

// CacheLookup counts one application cache lookup by its result
// (cache.Options.OnLookup).
func (m *Metrics) CacheLookup(result string) {
	if m == nil {
		return
	}
	m.cacheLookups.WithLabelValues(result).Inc()
}

// TokenReuse counts one token request under token reuse by its result:
// hit, miss or invalidated (oauth.ReuseCache.OnLookup).
func (m *Metrics) TokenReuse(result string) {
	if m == nil {
		return
	}
	m.tokenReuse.WithLabelValues(result).Inc()
}

// StoreError counts one database error of operation op (a fixed name, such
// as "client_lookup").
func (m *Metrics) StoreError(op string) {
	if m == nil {
		return
	}
	m.storeErrors.WithLabelValues(op).Inc()
}

// labelSet admits up to max distinct values of a label; others read as
// LabelOther.
type labelSet struct {
	max int
	mu  sync.RWMutex
	// seen maps an admitted value to the copy of it that is the label:
	// a value comes from a request (an audience, a client_id), and a
	// substring of the request body may hold a client secret, so the
	// label never shares its memory.
	seen map[string]string
}

func newLabelSet(max int) *labelSet { return &labelSet{max: max, seen: map[string]string{}} }

// value returns v if it was admitted, admitting it first if admit and
// there is room; otherwise LabelOther.
func (l *labelSet) value(v string, admit bool) string {
	l.mu.RLock()
	label, ok := l.seen[v]
	l.mu.RUnlock()
	if ok {
		return label
	}
	if !admit {
		return LabelOther
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if label, ok := l.seen[v]; ok {
		return label
	}
	if len(l.seen) >= l.max {
		return LabelOther
	}
	label = strings.Clone(v)
	l.seen[label] = label
	return label
}
