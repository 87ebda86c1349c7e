// Package audit keeps the audit log, the client secrets' last use and the
// issuance counters off the token endpoint's hot path (Recorder).
package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Recorder keeps the audit log, the secrets' last use and the issuance
// counters off the token endpoint's hot path: it gathers them in memory and
// writes them in batches. Management actions are written at once (they
// are rare and an operator expects to see them); failed authentications,
// lockouts, last-use times and the issuance counters of tokens counted
// against a quota every flushInterval; the other issuance counters
// UsageInterval after their application's first token not yet written,
// summed (docs/policy.md, Usage). What cannot
// be written (the database is down) stays buffered and is written when it
// returns. Past maxBuffered events, buffered events other than management
// actions are counted but dropped (an attack must not exhaust memory), and
// the count is itself recorded as an "audit.events_dropped" event.
//
// Failed authentications are aggregated: one event per client_id, source
// address and reason per interval, with the count and the first and last
// time (failures.go), within a row budget; their log line is sampled.
// Events older than Retention are purged (PurgeLoop).
type Recorder struct {
	store interface {
		authz.Audit
		TouchSecrets(ctx context.Context, used map[string]time.Time) error
		TouchCredentials(ctx context.Context, used map[string]time.Time) error
	}
	now  func() time.Time
	rand io.Reader
	log  *slog.Logger

	mu      sync.Mutex
	events  []authz.AuditEvent
	dropped int
	used    map[string]time.Time // secret id → last use not yet written
	// clients holds, per application, its issuance counters not yet
	// written and when its secrets' and credentials' uses were last
	// queued (clientUsage). queue lists the entries with counters, in the
	// order they got them; urgent those with a token counted against a
	// quota since their last write.
	clients  map[string]*clientUsage
	queue    []queuedUsage
	urgent   []*clientUsage
	pruned   time.Time // when clients was last swept of idle entries
	failures failureLog
	// credUsed is used for credentials.
	credUsed  map[string]time.Time
	federated federatedLog
	// droppedTotal counts every event dropped since New, for the metrics.
	droppedTotal uint64

	// Sink, if set before the first event, also gets every event once
	// the store has taken it (the SIEM export).
	Sink *Sink
	// OnStoreError, if set before the first event, is told of each write
	// the database refused (metrics).
	OnStoreError func()

	// Retention is how long events are kept; 0 keeps them forever.
	Retention time.Duration
	// UsageInterval is how long the issuance counters of tokens not
	// counted against a quota are summed in memory before they are
	// written, from an application's first token not yet written; 0 is
	// DefaultUsageInterval. Set it before the first event.
	UsageInterval time.Duration
	// Lead runs a purge under the cluster-wide lease name (the server's
	// lead); nil runs it here. Set it before PurgeLoop runs.
	Lead func(ctx context.Context, name string, fn func() error) error
}

// clientUsage is what the recorder holds of one application between
// flushes: its issuance counters not yet written, and when the use of each
// of its secrets and credentials was last queued for writing, so that each
// is written at most once a minute. A token request's two events
// (SecretUsed, then TokenIssued) find it by one client_id, and the entry
// outlives the flush, so that a client asking in every interval costs one
// map lookup and no allocation; an entry with nothing to write, none of
// whose uses is younger than touchInterval, is dropped (prune). Guarded by
// Recorder.mu.
type clientUsage struct {
	clientID string
	counts   []pendingCount // usually one: one audience, one hour
	seen     []seenUse      // usually one secret
	queued   bool           // in Recorder.queue: counted since it was last taken from it
	urgent   bool           // in Recorder.urgent
	inline   struct {
		counts [1]pendingCount
		seen   [1]seenUse
	} // the first count's and use's memory, allocated with the entry
}

// pendingCount is an issuance counter not yet written: tokens issued for
// audience within the UTC hour starting at hour, the last at last.
type pendingCount struct {
	audience   string
	hour, last time.Time
	count      int64
}

// queuedUsage is an entry of Recorder.queue: u got its first counter not
// yet written at at (the token's issued-at, in whole seconds, so the queue
// is in order to within the second two concurrent requests may straddle;
// an entry out of order is written a flush early or late).
type queuedUsage struct {
	u  *clientUsage
	at time.Time
}

// seenUse is when the use of a secret or credential (by its id) was last
// queued for writing.
type seenUse struct {
	id         string
	credential bool
	at         time.Time
}

// DefaultUsageInterval is Recorder.UsageInterval's default, 30 s
// (docs/policy.md, Usage): a client asking every few seconds costs the
// store one counter row per 30 s rather than one per flush, so the
// store's counter writes per second are bounded by the clients active in
// 30 s, however often each asks. Usage read from the store lags issuance
// by up to that much, and a crash loses at most that much of it.
const DefaultUsageInterval = 30 * time.Second

const (
	flushInterval   = 2 * time.Second
	touchInterval   = time.Minute
	maxBuffered     = 10_000
	maxClientIDAttr = 128 // an unknown client_id is attacker-chosen: bounded in the log
)

// New returns a Recorder writing to store, stamping events with now and
// ids drawn from r. Its buffer is written by Run, or by Flush.
func New(store authz.Store, now func() time.Time, r io.Reader, log *slog.Logger) *Recorder {
	return &Recorder{
		store: store, now: now, rand: r, log: log,
		used: map[string]time.Time{}, clients: map[string]*clientUsage{},
		failures:  newFailureLog(now),
		credUsed:  map[string]time.Time{},
		federated: federatedLog{aggs: map[federatedKey]*federatedAgg{}},
	}
}

// Record writes a management action's audit event now, or buffers it if
// the database cannot take it.
func (rc *Recorder) Record(ctx context.Context, e authz.AuditEvent) {
	if !rc.stamp(&e) {
		return
	}
	if err := rc.store.AppendAudit(ctx, []authz.AuditEvent{e}); err != nil {
		rc.storeError()
		rc.log.Warn("audit event buffered: the database did not take it", "action", e.Action, "error", err)
		rc.mu.Lock()
		rc.events = append(rc.events, e) // management actions are never dropped
		rc.mu.Unlock()
		return
	}
	rc.Sink.Write([]authz.AuditEvent{e})
}

func (rc *Recorder) storeError() {
	if rc.OnStoreError != nil {
		rc.OnStoreError()
	}
}

// Buffered returns the number of audit events waiting to be written, and
// the number dropped since New because the buffer was full or the
// database refused them.
func (rc *Recorder) Buffered() (waiting int, dropped uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.events), rc.droppedTotal
}

// stamp gives e an id and, if unset, a time.
func (rc *Recorder) stamp(e *authz.AuditEvent) bool {
	id, err := authz.NewID(rc.rand, "evt_")
	if err != nil {
		rc.log.Error("audit event lost: no randomness", "error", err)
		return false
	}
	e.ID = id
	if e.Time.IsZero() {
		e.Time = authz.StoreTime(rc.now())
	}
	return true
}

// ClientAuthFailed counts a failed client authentication (oauth.Events)
// in the current interval's aggregate of its client_id, address and reason.
func (rc *Recorder) ClientAuthFailed(_ context.Context, clientID, remoteAddr, reason string) {
	if len(clientID) > maxClientIDAttr {
		clientID = clientID[:maxClientIDAttr]
	}
	k := failureKey{clientID: clientID, addr: remoteAddr, reason: reason}
	at := rc.now()
	rc.mu.Lock()
	logIt := rc.failures.add(k, at)
	rc.mu.Unlock()
	if logIt {
		rc.log.Info("client authentication failed", "client_id", clientID, "remote_addr", remoteAddr, "reason", reason)
	}
}

// TokenRevoked records an application revoking its own token at the
// revocation endpoint (oauth.Events): a rare, deliberate act, written at
// once like a management action.
func (rc *Recorder) TokenRevoked(ctx context.Context, clientID, jti, audience, remoteAddr string) {
	b, _ := json.Marshal(map[string]string{"audience": audience, "via": "revocation endpoint"})
	rc.Record(ctx, authz.AuditEvent{Action: "token.revoke", Actor: clientID, Target: jti, RemoteAddr: remoteAddr, Details: string(b)})
}

// SecretUsed notes the use of application clientID's secret secretID, to
// be written at most once a minute per secret (oauth.Events).
func (rc *Recorder) SecretUsed(clientID, secretID string, at time.Time) {
	rc.mu.Lock()
	if rc.usage(clientID).queueUse(secretID, false, at) {
		rc.used[secretID] = authz.StoreTime(at)
	}
	rc.mu.Unlock()
}

// CredentialUsed notes the use of application clientID's credential
// credentialID, to be written at most once a minute per credential
// (oauth.Events).
func (rc *Recorder) CredentialUsed(clientID, credentialID string, at time.Time) {
	rc.mu.Lock()
	if rc.usage(clientID).queueUse(credentialID, true, at) {
		rc.credUsed[credentialID] = authz.StoreTime(at)
	}
	rc.mu.Unlock()
}

// usage returns clientID's entry, creating it. clientID is kept as the
// map's key: callers pass the application's own client_id (the cache's
// memory), never a substring of a request. Runs under rc.mu.
func (rc *Recorder) usage(clientID string) *clientUsage {
	u := rc.clients[clientID]
	if u == nil {
		u = &clientUsage{clientID: clientID}
		u.counts, u.seen = u.inline.counts[:0:1], u.inline.seen[:0:1]
		rc.clients[clientID] = u
	}
	return u
}

// queueUse reports whether the use of id at at is to be written: its
// first, or its first touchInterval or more after the last one queued.
func (u *clientUsage) queueUse(id string, credential bool, at time.Time) bool {
	for i := range u.seen {
		if v := &u.seen[i]; v.id == id && v.credential == credential {
			if at.Sub(v.at) < touchInterval {
				return false
			}
			v.at = at
			return true
		}
	}
	u.seen = append(u.seen, seenUse{id: id, credential: credential, at: at})
	return true
}

// add counts n tokens issued for audience in the hour starting at hour,
// the last at last, counted at at; urgent: written at the next flush (a
// quota counted them). Runs under rc.mu.
func (rc *Recorder) add(u *clientUsage, audience string, hour, last time.Time, n int64, at time.Time, urgent bool) {
	if !u.queued {
		u.queued = true
		rc.queue = append(rc.queue, queuedUsage{u, at})
	}
	if urgent && !u.urgent {
		u.urgent = true
		rc.urgent = append(rc.urgent, u)
	}
	for i := range u.counts {
		if c := &u.counts[i]; c.audience == audience && c.hour.Equal(hour) {
			c.count += n
			if last.After(c.last) {
				c.last = last
			}
			return
		}
	}
	u.counts = append(u.counts, pendingCount{audience: audience, hour: hour, last: last, count: n})
}

// prune drops the entries with no counter to write and no use younger
// than touchInterval (a later use of theirs is written whether or not the
// entry is kept), at most once per touchInterval, so that clients holds
// only the applications active in about the last two minutes. Counters
// that fail to be written go back into an entry, a new one if need be.
// Runs under rc.mu.
func (rc *Recorder) prune(now time.Time) {
	if now.Sub(rc.pruned) < touchInterval {
		return
	}
	rc.pruned = now
	for id, u := range rc.clients {
		idle := !u.queued && !u.urgent
		for _, v := range u.seen {
			if now.Sub(v.at) < touchInterval {
				idle = false
				break
			}
		}
		if idle {
			delete(rc.clients, id)
		}
	}
}

// FederatedAuthenticated counts an authentication by a trusted issuer's
// JWT (oauth.Events) in the aggregate of its application, credential,
// external issuer, subject and address: one "client.federated_authentication"
// audit event per aggregate and minute, with the count.
func (rc *Recorder) FederatedAuthenticated(_ context.Context, clientID, credentialID, issuer, subject, remoteAddr string) {
	k := federatedKey{clientID: clientID, credentialID: credentialID, issuer: issuer, subject: subject, addr: remoteAddr}
	at := rc.now()
	rc.mu.Lock()
	rc.federated.add(k, at)
	rc.mu.Unlock()
}

// TokenIssued counts an issued token per application, audience and hour
// (oauth.Events). A token counted against a quota has its counter written
// at the next flush, as quota.Limiter.Reconcile reads it back from every
// replica; the others' are written UsageInterval after the first of them,
// summed (docs/policy.md).
func (rc *Recorder) TokenIssued(clientID, audience, _ string, at time.Time, quota bool) {
	hour, last := at.UTC().Truncate(time.Hour), authz.StoreTime(at)
	rc.mu.Lock()
	rc.add(rc.usage(clientID), audience, hour, last, 1, at, quota)
	rc.mu.Unlock()
}

// Flush writes what is buffered: federated authentications once their
// minute is over, and issuance counters not counted against a quota once
// UsageInterval has passed since their first token. What fails to be
// written is put back.
func (rc *Recorder) Flush(ctx context.Context) error { return rc.flush(ctx, false) }

// FlushAll is Flush with every federated authentication aggregate and
// every issuance counter written however young (at shutdown).
func (rc *Recorder) FlushAll(ctx context.Context) error { return rc.flush(ctx, true) }

func (rc *Recorder) flush(ctx context.Context, all bool) error {
	rc.mu.Lock()
	failed, summary := rc.failures.take(rc.now())
	failed = append(failed, rc.federated.take(rc.now(), all)...)
	for _, e := range failed {
		if rc.stamp(&e) {
			if len(rc.events) >= maxBuffered {
				rc.dropped++
				rc.droppedTotal++
			} else {
				rc.events = append(rc.events, e)
			}
		}
	}
	events, dropped, used, credUsed := rc.events, rc.dropped, rc.used, rc.credUsed
	rc.events, rc.dropped = nil, 0
	rc.used, rc.credUsed = make(map[string]time.Time, len(used)), make(map[string]time.Time, len(credUsed))
	now := rc.now()
	issued := rc.takeCounts(now, all)
	rc.prune(now)
	rc.mu.Unlock()
	if summary.suppressed > 0 {
		rc.log.Info("failed client authentications in the last interval", "count", summary.count, "keys", summary.keys,
			"log_lines_suppressed", summary.suppressed, "audit_events", len(failed))
	}

	if dropped > 0 {
		e := authz.AuditEvent{Action: "audit.events_dropped", Details: `{"count":` + strconv.Itoa(dropped) + `}`}
		if rc.stamp(&e) {
			events = append(events, e)
		}
	}
	var firstErr error
	if len(events) > 0 {
		if err := rc.store.AppendAudit(ctx, events); err != nil {
			firstErr = err
			rc.storeError()
			kept := rc.appendEach(ctx, events)
			rc.mu.Lock()
			rc.events = append(kept, rc.events...)
			rc.mu.Unlock()
		} else {
			rc.Sink.Write(events)
		}
	}
	if len(used) > 0 {
		if err := rc.store.TouchSecrets(ctx, used); err != nil {
			firstErr = err
			rc.storeError()
			rc.mu.Lock()
			for id, t := range used {
				if t.After(rc.used[id]) {
					rc.used[id] = t
				}
			}
			rc.mu.Unlock()
		}
	}
	if len(credUsed) > 0 {
		if err := rc.store.TouchCredentials(ctx, credUsed); err != nil {
			firstErr = err
			rc.storeError()
			rc.mu.Lock()
			for id, t := range credUsed {
				if t.After(rc.credUsed[id]) {
					rc.credUsed[id] = t
				}
			}
			rc.mu.Unlock()
		}
	}
	if len(issued) > 0 {
		if err := rc.store.AddIssuance(ctx, issued); err != nil {
			firstErr = err
			rc.storeError()
			// Retried at the next flush, whatever their age.
			rc.mu.Lock()
			for _, c := range issued {
				rc.add(rc.usage(c.ClientID), c.Audience, c.Hour, c.LastIssuedAt, c.Count, now, true)
			}
			rc.mu.Unlock()
		}
	}
	return firstErr
}

// takeCounts returns the issuance counters to write now and empties
// them: those of the urgent entries, and those of the queued entries that
// got their first counter UsageInterval or more before now, or every one
// with all. The entries stay for the clients' next requests. Runs under
// rc.mu; costs the counters taken plus the urgent entries, and a memmove
// of the entries still held (16 bytes each), not a walk over them.
func (rc *Recorder) takeCounts(now time.Time, all bool) []authz.Issuance {
	due := len(rc.queue)
	if !all {
		hold := rc.UsageInterval
		if hold <= 0 {
			hold = DefaultUsageInterval
		}
		cutoff := now.Add(-hold)
		due, _ = slices.BinarySearchFunc(rc.queue, cutoff, func(q queuedUsage, t time.Time) int {
			if q.at.After(t) {
				return 1
			}
			return -1
		})
	}
	if due == 0 && len(rc.urgent) == 0 {
		return nil
	}
	var list []authz.Issuance
	take := func(u *clientUsage) {
		for _, c := range u.counts {
			list = append(list, authz.Issuance{ClientID: u.clientID, Audience: c.audience, Hour: c.hour, Count: c.count, LastIssuedAt: c.last})
		}
		clear(u.counts)
		u.counts = u.counts[:0]
	}
	for i, u := range rc.urgent {
		take(u)
		u.urgent = false
		rc.urgent[i] = nil
	}
	rc.urgent = rc.urgent[:0]
	for i := range rc.queue[:due] {
		u := rc.queue[i].u
		take(u)
		u.queued = false
	}
	// The entries still held move to the front, so that the queue's
	// memory is reused rather than grown.
	n := copy(rc.queue, rc.queue[due:])
	clear(rc.queue[n:])
	rc.queue = rc.queue[:n]
	return list
}

// appendEach writes a batch that failed as a whole one event at a time and
// returns the events to keep for the next flush. If the database took none,
// it is unreachable and every event is kept. If it took some, those it
// refused can never be written (bad data): they are dropped and logged
// (action only) rather than retried forever in front of every later event.
func (rc *Recorder) appendEach(ctx context.Context, events []authz.AuditEvent) []authz.AuditEvent {
	var failed []authz.AuditEvent
	wrote := 0
	for _, e := range events {
		if err := rc.store.AppendAudit(ctx, []authz.AuditEvent{e}); err != nil {
			failed = append(failed, e)
		} else {
			wrote++
			rc.Sink.Write([]authz.AuditEvent{e})
		}
	}
	if wrote == 0 {
		return failed
	}
	rc.mu.Lock()
	rc.droppedTotal += uint64(len(failed))
	rc.mu.Unlock()
	for _, e := range failed {
		rc.log.Error("audit event dropped: the database refuses it", "action", e.Action, "id", e.ID)
	}
	return nil
}

// Run flushes every flushInterval until ctx is done, then once more.
func (rc *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := rc.FlushAll(fctx); err != nil {
				rc.log.Error("audit and usage records lost at shutdown: the database did not take them", "error", err)
			}
			cancel()
			return
		case <-t.C:
			if err := rc.Flush(ctx); err != nil {
				rc.log.Warn("audit and usage records kept for the next flush", "error", err)
			}
		}
	}
}
