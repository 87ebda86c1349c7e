// Package quota applies applications' token policies at the token
// endpoint: a token bucket per application (golang.org/x/time/rate) and
// quotas per UTC hour and day, in enforce or observe mode, with the IETF
// rate-limit headers (draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy
// and RateLimit). State is per replica and in memory; quotas are
// reconciled across replicas from the store's hourly issuance counters
// (Reconcile), so they hold across replicas within a bound documented in
// docs/policy.md.
package quota

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Limit names, as the headers' policy identifiers and the audit log show
// them.
const (
	LimitRate = "rate"
	LimitHour = "hour"
	LimitDay  = "day"
)

// rateCrossingWindow is how often a crossing of the rate is recorded at
// most, per application: the rate's own window is a second or so.
const rateCrossingWindow = time.Minute

// Crossing is one limit crossed, recorded once per window.
type Crossing struct {
	ClientID    string
	Limit       string // LimitRate, LimitHour or LimitDay
	Mode        authz.PolicyMode
	Quota       int64     // the limit: burst for the rate, tokens for a quota
	WindowStart time.Time // start of the window crossed
}

// UsageSource reads the issuance counters every replica writes (the
// store's).
type UsageSource interface {
	ListIssuance(ctx context.Context, clientID string, since time.Time) ([]authz.Issuance, error)
}

// Limiter decides, per token request of an authenticated application,
// whether its policy lets the token be issued. It is safe for concurrent
// use.
type Limiter struct {
	now      func() time.Time
	defaults authz.Policy // rate, quota and mode only
	onCross  func(Crossing)

	mu   sync.Mutex
	apps map[string]*state
}

// New returns a Limiter. defaults is the policy of applications whose own
// sets neither a rate nor a quota (its allowed_ips are ignored); onCross,
// if not nil, is told each crossing, once per window and limit, and must
// not block.
func New(now func() time.Time, defaults authz.Policy, onCross func(Crossing)) *Limiter {
	defaults.AllowedIPs = nil
	if defaults.Mode == "" && (defaults.Rate != nil || defaults.Quota != nil) {
		defaults.Mode = authz.PolicyEnforce
	}
	return &Limiter{now: now, defaults: defaults, onCross: onCross, apps: map[string]*state{}}
}

// Effective returns the rate, quota and mode that apply to app: its own
// when it sets a rate or a quota, else the server's defaults. limited is
// false when neither sets any.
func (l *Limiter) Effective(app *authz.Application) (p authz.Policy, limited bool) {
	return authz.EffectiveLimits(app.Policy, l.defaults)
}

// Decision is the answer to Take.
type Decision struct {
	// Limited: the application has a rate or a quota, and the headers
	// below go on every token response.
	Limited bool
	// Refused: over a limit in enforce mode; RetryAfter says when to try
	// again.
	Refused    bool
	RetryAfter time.Duration
	Policy     string // RateLimit-Policy field value
	State      string // RateLimit field value
	// Counted: Take counted the token against an hourly or daily quota
	// (enforce or observe mode), which Reconcile reads back from the
	// store: the audit recorder writes its issuance counter at the next
	// flush (audit.Recorder.TokenIssued).
	Counted bool
}

// state is one application's counters.
type state struct {
	key    policyKey
	bucket *rate.Limiter // nil without a rate
	policy string        // RateLimit-Policy, built once per policy

	hour, day         time.Time // current UTC windows
	hourBase, dayBase int64     // every replica's count as of the last Reconcile
	hourHere, dayHere int64     // issued here since the last Reconcile

	crossed map[string]time.Time // limit → window already recorded

	lastUse time.Time // of the last Take, for pruning
	used    bool      // taken since the last Reconcile read it
	loaded  bool      // reconciled once at least
}

// idleAfter is how long an application's state is kept without a request:
// then it is dropped (its bucket would be full again, and Reconcile
// restores its counts from the store within one interval).
const idleAfter = time.Hour

type policyKey struct {
	perSecond float64
	burst     int
	perHour   int64
	perDay    int64
	mode      authz.PolicyMode
}

func keyOf(p authz.Policy) policyKey {
	k := policyKey{mode: p.Mode}
	if p.Rate != nil {
		k.perSecond, k.burst = p.Rate.PerSecond, p.Rate.Burst
	}
	if p.Quota != nil {
		k.perHour, k.perDay = p.Quota.PerHour, p.Quota.PerDay
	}
	return k
}

// Take counts one token request of app, authenticated and authorized, and
// says whether to issue it. An application with no rate or quota (its own
// or the default) costs nothing: no lock, no allocation. In observe mode
// nothing is refused; in either mode each crossing is reported once per
// window. A request that is let through counts against the quotas.
func (l *Limiter) Take(app *authz.Application) Decision { return l.decide(app, true, true) }

// TakeRate is Take for a request answered with a token already issued
// (the token endpoint's opt-in reuse, docs/token-reuse.md): the rate
// applies as to any request, but the hourly and daily quotas, which count
// issued tokens, neither refuse it nor count it.
func (l *Limiter) TakeRate(app *authz.Application) Decision { return l.decide(app, true, false) }

// Peek is Take without counting or reporting anything: the headers of a
// token response that issues nothing for another reason (invalid_scope).
func (l *Limiter) Peek(app *authz.Application) Decision { return l.decide(app, false, false) }

// decide is Take (take and quotas), TakeRate (take only) or Peek.
func (l *Limiter) decide(app *authz.Application, take, quotas bool) Decision {
	p, limited := l.Effective(app)
	if !limited {
		return Decision{}
	}
	now := l.now()
	k := keyOf(p)
	var crossings [3]Crossing
	n := 0
	l.mu.Lock()
	st := l.apps[app.ClientID]
	if st == nil || st.key != k {
		st = l.reset(app.ClientID, st, k)
	}
	st.roll(now)
	observe := p.Mode == authz.PolicyObserve
	d := Decision{Limited: true, Policy: st.policy}
	if !take {
		d.State = st.header(now, k)
		l.mu.Unlock()
		return d
	}
	cross := func(limit string, quota int64, window time.Time, retry time.Duration) {
		if st.crossed[limit] != window {
			st.crossed[limit] = window
			crossings[n] = Crossing{ClientID: app.ClientID, Limit: limit, Mode: p.Mode, Quota: quota, WindowStart: window}
			n++
		}
		if !observe && retry > d.RetryAfter {
			d.Refused, d.RetryAfter = true, retry
		}
	}
	if quotas && k.perHour > 0 && st.hourBase+st.hourHere >= k.perHour {
		cross(LimitHour, k.perHour, st.hour, st.hour.Add(time.Hour).Sub(now))
	}
	if quotas && k.perDay > 0 && st.dayBase+st.dayHere >= k.perDay {
		cross(LimitDay, k.perDay, st.day, st.day.Add(24*time.Hour).Sub(now))
	}
	if st.bucket != nil && !d.Refused {
		if !st.bucket.AllowN(now, 1) {
			r := st.bucket.ReserveN(now, 1)
			wait := r.DelayFrom(now)
			r.CancelAt(now)
			cross(LimitRate, int64(k.burst), now.Truncate(rateCrossingWindow), wait)
		}
	}
	st.lastUse, st.used = now, true
	if quotas && !d.Refused {
		st.hourHere++
		st.dayHere++
		d.Counted = k.perHour > 0 || k.perDay > 0
	}
	d.State = st.header(now, k)
	l.mu.Unlock()
	if l.onCross != nil {
		for _, c := range crossings[:n] {
			l.onCross(c)
		}
	}
	return d
}

// reset (re)builds the state of clientID for policy k, keeping the
// counts of old.
func (l *Limiter) reset(clientID string, old *state, k policyKey) *state {
	st := &state{key: k, crossed: map[string]time.Time{}}
	if old != nil {
		st.hour, st.day = old.hour, old.day
		st.hourBase, st.dayBase, st.hourHere, st.dayHere = old.hourBase, old.dayBase, old.hourHere, old.dayHere
		st.loaded = old.loaded
	}
	var b []byte
	add := func(id string, q, w int64) {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, `";q=`...)
		b = strconv.AppendInt(b, q, 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, w, 10)
	}
	if k.burst > 0 {
		st.bucket = rate.NewLimiter(rate.Limit(k.perSecond), k.burst)
		add(LimitRate, int64(k.burst), int64(math.Ceil(float64(k.burst)/k.perSecond)))
	}
	if k.perHour > 0 {
		add(LimitHour, k.perHour, 3600)
	}
	if k.perDay > 0 {
		add(LimitDay, k.perDay, 86400)
	}
	st.policy = string(b)
	l.apps[clientID] = st
	return st
}

// roll starts new windows when now has left the current ones.
func (st *state) roll(now time.Time) {
	now = now.UTC()
	if h := now.Truncate(time.Hour); !h.Equal(st.hour) {
		st.hour, st.hourBase, st.hourHere = h, 0, 0
	}
	if d := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC); !d.Equal(st.day) {
		st.day, st.dayBase, st.dayHere = d, 0, 0
	}
}

// header is the RateLimit field value: for each limit, r the tokens left
// and t the seconds (rounded up) until the next is available (the rate)
// or the window ends (a quota).
func (st *state) header(now time.Time, k policyKey) string {
	var buf [128]byte
	b := buf[:0]
	add := func(id string, r int64, t time.Duration) {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, `";r=`...)
		b = strconv.AppendInt(b, max(r, 0), 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, int64((t+time.Second-1)/time.Second), 10)
	}
	if st.bucket != nil {
		tokens := st.bucket.TokensAt(now)
		var next time.Duration
		if tokens < 1 {
			next = time.Duration((1 - tokens) / k.perSecond * float64(time.Second))
		}
		add(LimitRate, int64(math.Floor(tokens)), next)
	}
	if k.perHour > 0 {
		add(LimitHour, k.perHour-st.hourBase-st.hourHere, st.hour.Add(time.Hour).Sub(now))
	}
	if k.perDay > 0 {
		add(LimitDay, k.perDay-st.dayBase-st.dayHere, st.day.Add(24*time.Hour).Sub(now))
	}
	return string(b)
}

// Reconcile reads, for each application with a quota that asked for a
// token here since the last call (or was never reconciled), every
// replica's issuance counters of the current UTC day from src (one read
// per application), and makes them the base of its counts; what this
// replica issued meanwhile is kept on top. Counters reach the store from
// each replica's audit recorder (every 2 s), so a replica's view lags the
// others' issuance by at most that flush interval plus the interval
// between calls of Reconcile. States idle for idleAfter are dropped.
func (l *Limiter) Reconcile(ctx context.Context, src UsageSource) error {
	type job struct {
		clientID          string
		day               time.Time
		hourHere, dayHere int64
	}
	now := l.now().UTC()
	l.mu.Lock()
	var jobs []job
	for id, st := range l.apps {
		if now.Sub(st.lastUse) > idleAfter {
			delete(l.apps, id)
			continue
		}
		if (st.key.perHour == 0 && st.key.perDay == 0) || (st.loaded && !st.used) {
			continue
		}
		st.used = false
		st.roll(now)
		jobs = append(jobs, job{id, st.day, st.hourHere, st.dayHere})
	}
	l.mu.Unlock()
	for _, j := range jobs {
		counts, err := src.ListIssuance(ctx, j.clientID, j.day)
		if err != nil {
			l.mu.Lock()
			if st := l.apps[j.clientID]; st != nil {
				st.used = true // read it next time
			}
			l.mu.Unlock()
			return err
		}
		hour := now.Truncate(time.Hour)
		var h, d int64
		for _, c := range counts {
			if c.Hour.Before(j.day) {
				continue
			}
			d += c.Count
			if c.Hour.Equal(hour) {
				h += c.Count
			}
		}
		l.mu.Lock()
		if st := l.apps[j.clientID]; st != nil && st.day.Equal(j.day) {
			if st.hour.Equal(hour) {
				st.hourBase, st.hourHere = h, st.hourHere-j.hourHere
			}
			st.dayBase, st.dayHere = d, st.dayHere-j.dayHere
			st.loaded = true
		}
		l.mu.Unlock()
	}
	return nil
}

// Defaults returns the server's default policy (rate, quota and mode).
func (l *Limiter) Defaults() authz.Policy { return l.defaults }
