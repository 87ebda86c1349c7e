package audit

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Bounds of the failed-authentication aggregates. A flood of failures
// with random client_ids from random addresses is what they are for: it
// must cost bounded memory, rows and log lines however fast it comes.
const (
	// maxFailureKeys bounds the (client_id, address, reason) aggregates
	// kept per flush interval; failures beyond it are only counted, into
	// the interval's overflow event.
	maxFailureKeys = 1000
	// failureRowBurst and failureRowRate are the row budget of
	// failed-authentication events: a token bucket of failureRowBurst
	// rows refilled at failureRowRate a second. Aggregates past the
	// budget are merged into the interval's one overflow event. At most
	// failureRowRate + 1/flushInterval rows a second are written,
	// sustained, whatever the flood: about 1.5 rows/s, ≈ 130 000 a day.
	failureRowBurst = 1000
	failureRowRate  = 1.0
	// maxFailureLogLines bounds the "client authentication failed" info
	// lines per flush interval: the first failure of an aggregate logs
	// one, up to this many; the rest are summed in one summary line.
	maxFailureLogLines = 20
)

// failureKey is what failed authentications are aggregated by.
type failureKey struct {
	clientID, addr, reason string
}

type failureAgg struct {
	count       int
	first, last time.Time
}

// failureLog aggregates the failed authentications of one flush interval.
// It is not safe for concurrent use (the Recorder's lock guards it).
type failureLog struct {
	aggs         map[failureKey]*failureAgg
	lockouts     []rankedEvent // lockouts started and ended, at most 2×maxFailureKeys
	addrLockouts int           // of them, address lockouts: at most maxFailureKeys
	overflow     failureAgg    // failures past maxFailureKeys this interval
	logged       int           // info lines this interval
	count        int           // failures this interval
	budget       float64       // rows that may be written now
	refilled     time.Time
	suppressed   int // log lines not written this interval
}

func newFailureLog(now func() time.Time) failureLog {
	return failureLog{aggs: map[failureKey]*failureAgg{}, budget: failureRowBurst, refilled: now()}
}

// add counts one failure of k at at and reports whether to log it (the
// first of its aggregate this interval, within maxFailureLogLines).
func (f *failureLog) add(k failureKey, at time.Time) bool {
	f.count++
	a := f.aggs[k]
	if a == nil {
		if len(f.aggs) >= maxFailureKeys {
			f.overflow.note(at)
			f.suppressed++
			return false
		}
		a = &failureAgg{first: at}
		f.aggs[k] = a
		if f.logged < maxFailureLogLines {
			f.logged++
			a.note(at)
			return true
		}
	}
	a.note(at)
	f.suppressed++
	return false
}

func (a *failureAgg) note(at time.Time) {
	if a.count == 0 || at.Before(a.first) {
		a.first = at
	}
	if at.After(a.last) {
		a.last = at
	}
	a.count++
}

// rankedEvent is an event competing for the row budget.
type rankedEvent struct {
	rank  int
	count int
	first time.Time
	e     authz.AuditEvent
}

// addLockout queues a lockout event of rank (lower is kept first) and
// reports whether to log it, within maxFailureLogLines.
func (f *failureLog) addLockout(e authz.AuditEvent, rank int, at time.Time) bool {
	// Address lockouts, which an attacker's addresses make, must not
	// crowd out a client_id's: each kind has its own bound.
	if (rank == rankAddrLockout && f.addrLockouts >= maxFailureKeys) || len(f.lockouts) >= 2*maxFailureKeys {
		f.overflow.note(at)
		f.suppressed++
		return false
	}
	if rank == rankAddrLockout {
		f.addrLockouts++
	}
	f.lockouts = append(f.lockouts, rankedEvent{rank: rank, count: 1, first: at, e: e})
	if f.logged < maxFailureLogLines {
		f.logged++
		return true
	}
	f.suppressed++
	return false
}

// failureSummary describes a taken interval, for its summary log line.
type failureSummary struct {
	count, keys, suppressed int
}

// take returns the interval's audit events (unstamped but for lockouts)
// and starts the next interval. Within the row budget, lockouts of a
// client_id come first, then aggregates naming an existing application's
// failure (a wrong or expired secret, a disabled application), then the
// largest counts; the rest are merged into one overflow event.
func (f *failureLog) take(now time.Time) ([]authz.AuditEvent, failureSummary) {
	sum := failureSummary{count: f.count, keys: len(f.aggs), suppressed: f.suppressed}
	f.budget = min(failureRowBurst, f.budget+now.Sub(f.refilled).Seconds()*failureRowRate)
	f.refilled = now
	if len(f.aggs) == 0 && len(f.lockouts) == 0 && f.overflow.count == 0 {
		f.count, f.logged, f.suppressed = 0, 0, 0
		return nil, sum
	}
	cands := f.lockouts
	for k, a := range f.aggs {
		cands = append(cands, rankedEvent{rank: rank(k.reason), count: a.count, first: a.first, e: authz.AuditEvent{
			Time: authz.StoreTime(a.first), Action: "client.authentication_failed",
			Actor: k.clientID, Target: k.clientID, RemoteAddr: k.addr,
			Details: failureDetails(k.reason, a),
		}})
	}
	slices.SortFunc(cands, func(a, b rankedEvent) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return a.first.Compare(b.first)
	})
	var events []authz.AuditEvent
	over := f.overflow
	for _, c := range cands {
		if f.budget < 1 {
			over.merge(&failureAgg{count: c.count, first: c.first, last: c.first})
			continue
		}
		f.budget--
		events = append(events, c.e)
	}
	if over.count > 0 {
		events = append(events, authz.AuditEvent{
			Time: authz.StoreTime(over.first), Action: "client.authentication_failed",
			Details: failureDetails(overflowReason, &over),
		})
	}
	f.aggs = make(map[failureKey]*failureAgg, min(len(f.aggs), maxFailureKeys))
	f.lockouts, f.addrLockouts = nil, 0
	f.overflow = failureAgg{}
	f.count, f.logged, f.suppressed = 0, 0, 0
	return events, sum
}

// overflowReason is the reason of the interval's overflow event: failures
// beyond the aggregates or the row budget, of any client_id and address.
const overflowReason = "more failures than one interval records one by one (client_ids and addresses not kept)"

func (a *failureAgg) merge(b *failureAgg) {
	if a.count == 0 || b.first.Before(a.first) {
		a.first = b.first
	}
	if b.last.After(a.last) {
		a.last = b.last
	}
	a.count += b.count
}

// Ranks for the row budget: lower is kept first.
const (
	rankClientLockout = iota // a client_id locked out (from an address or everywhere)
	rankKnownClient          // a failure of an application that exists
	rankOther                // unknown client_ids, malformed requests, refused attempts
	rankAddrLockout          // an address held back: as many as an attacker's addresses
)

// rank is the rank of a failure's reason.
func rank(reason string) int {
	switch reason {
	case "wrong client secret", "client secret expired", "application disabled", "unknown secret id":
		return rankKnownClient
	}
	return rankOther
}

// failureDetails is an aggregate's Details: {"reason", "count", "first",
// "last"}, times in RFC 3339 UTC.
func failureDetails(reason string, a *failureAgg) string {
	b, _ := json.Marshal(struct {
		Reason string    `json:"reason"`
		Count  int       `json:"count"`
		First  time.Time `json:"first"`
		Last   time.Time `json:"last"`
	}{reason, a.count, a.first.UTC(), a.last.UTC()})
	return string(b)
}
