// Package audit keeps the audit log, the client secrets' last use and the
// issuance counters off the token endpoint's hot path (Recorder).
package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Recorder keeps the audit log, the secrets' last use and the issuance
// counters off the token endpoint's hot path: it gathers them in memory and
// writes them in batches. Management actions are written at once (they
// are rare and an operator expects to see them); failed authentications,
// lockouts, last-use times and counters every flushInterval. What cannot
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

	mu       sync.Mutex
	events   []authz.AuditEvent
	dropped  int
	used     map[string]time.Time // secret id → last use not yet written
	lastSeen map[string]time.Time // secret id → last use queued, to write at most once a minute
	issued   map[issuanceKey]*authz.Issuance
	failures failureLog
	// credUsed and credSeen are used and lastSeen for credentials.
	credUsed, credSeen map[string]time.Time
	federated          federatedLog
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
	// Lead runs a purge under the cluster-wide lease name (the server's
	// lead); nil runs it here. Set it before PurgeLoop runs.
	Lead func(ctx context.Context, name string, fn func() error) error
}

type issuanceKey struct {
	clientID, audience string
	hour               time.Time
}

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
		used: map[string]time.Time{}, lastSeen: map[string]time.Time{}, issued: map[issuanceKey]*authz.Issuance{},
		failures: newFailureLog(now),
		credUsed: map[string]time.Time{}, credSeen: map[string]time.Time{},
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

// SecretUsed notes a secret's use, to be written at most once a minute
// per secret (oauth.Events).
func (rc *Recorder) SecretUsed(_, secretID string, at time.Time) {
	rc.mu.Lock()
	if prev, ok := rc.lastSeen[secretID]; !ok || at.Sub(prev) >= touchInterval {
		rc.lastSeen[secretID] = at
		rc.used[secretID] = authz.StoreTime(at)
	}
	rc.mu.Unlock()
}

// CredentialUsed notes a credential's use, to be written at most once a
// minute per credential (oauth.Events).
func (rc *Recorder) CredentialUsed(_, credentialID string, at time.Time) {
	rc.mu.Lock()
	if prev, ok := rc.credSeen[credentialID]; !ok || at.Sub(prev) >= touchInterval {
		rc.credSeen[credentialID] = at
		rc.credUsed[credentialID] = authz.StoreTime(at)
	}
	rc.mu.Unlock()
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
// (oauth.Events).
func (rc *Recorder) TokenIssued(clientID, audience, _ string, at time.Time) {
	k := issuanceKey{clientID, audience, at.UTC().Truncate(time.Hour)}
	rc.mu.Lock()
	c := rc.issued[k]
	if c == nil {
		c = &authz.Issuance{ClientID: clientID, Audience: audience, Hour: k.hour}
		rc.issued[k] = c
	}
	c.Count++
	if at.After(c.LastIssuedAt) {
		c.LastIssuedAt = authz.StoreTime(at)
	}
	rc.mu.Unlock()
}

// Flush writes what is buffered, federated authentications once their
// minute is over. What fails to be written is put back.
func (rc *Recorder) Flush(ctx context.Context) error { return rc.flush(ctx, false) }

// FlushAll is Flush with every federated authentication aggregate written
// however young (at shutdown).
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
	events, dropped, used, issued, credUsed := rc.events, rc.dropped, rc.used, rc.issued, rc.credUsed
	// The next interval likely sees as many clients as this one: sized
	// alike, the maps do not grow by rehashing on the token path.
	rc.events, rc.dropped = nil, 0
	rc.used, rc.issued, rc.credUsed = make(map[string]time.Time, len(used)), make(map[issuanceKey]*authz.Issuance, len(issued)), make(map[string]time.Time, len(credUsed))
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
		list := make([]authz.Issuance, 0, len(issued))
		for _, c := range issued {
			list = append(list, *c)
		}
		if err := rc.store.AddIssuance(ctx, list); err != nil {
			firstErr = err
			rc.storeError()
			rc.mu.Lock()
			for k, c := range issued {
				if cur := rc.issued[k]; cur != nil {
					cur.Count += c.Count
					if c.LastIssuedAt.After(cur.LastIssuedAt) {
						cur.LastIssuedAt = c.LastIssuedAt
					}
				} else {
					rc.issued[k] = c
				}
			}
			rc.mu.Unlock()
		}
	}
	return firstErr
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
