package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Sources are the functions the gauges read at each scrape. Nil fields
// export nothing.
type Sources struct {
	DenyListLen  func() int                           // revoked tokens held in memory
	CacheEntries func() int                           // applications held in memory
	Audit        func() (waiting int, dropped uint64) // audit.Recorder.Buffered
	Keys         func() []authz.SigningKey            // token.Keys.List
	Now          func() time.Time                     // for key ages; default time.Now
}

// Watch registers the gauges read from src. Call it once.
func (m *Metrics) Watch(src Sources) {
	if m == nil {
		return
	}
	if src.DenyListLen != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "m2mauth_denylist_entries",
			Help: "Revoked tokens (jti) held in this replica's in-memory deny-list.",
		}, func() float64 { return float64(src.DenyListLen()) }))
	}
	if src.CacheEntries != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "m2mauth_client_cache_entries",
			Help: "Applications held in the token endpoint's in-memory cache.",
		}, func() float64 { return float64(src.CacheEntries()) }))
	}
	if src.Audit != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "m2mauth_audit_buffered_events",
			Help: "Audit events waiting in memory to be written to the database.",
		}, func() float64 { w, _ := src.Audit(); return float64(w) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "m2mauth_audit_events_dropped_total",
			Help: "Audit events dropped: the buffer was full, or the database refused them.",
		}, func() float64 { _, d := src.Audit(); return float64(d) }))
	}
	if src.Keys != nil {
		now := src.Now
		if now == nil {
			now = time.Now
		}
		m.reg.MustRegister(&keyAges{list: src.Keys, now: now})
	}
}

// keyAges exports each signing key's age: a handful of keys per
// algorithm, so kid is a bounded label.
type keyAges struct {
	list func() []authz.SigningKey
	now  func() time.Time
}

var keyAgeDesc = prometheus.NewDesc("m2mauth_signing_key_age_seconds",
	"Seconds since each signing key was created, by algorithm, state (next, active, retired) and kid.",
	[]string{"alg", "state", "kid"}, nil)

func (k *keyAges) Describe(ch chan<- *prometheus.Desc) { ch <- keyAgeDesc }

func (k *keyAges) Collect(ch chan<- prometheus.Metric) {
	now := k.now()
	for _, key := range k.list() {
		ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, now.Sub(key.CreatedAt).Seconds(), key.Alg, string(key.State), key.KID)
	}
}
