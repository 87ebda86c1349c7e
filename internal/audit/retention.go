package audit

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/limits"
)

// Lockout records a failed-authentication lockout starting or ending
// (limits.Config.OnLockout) as a "client.lockout_started" or
// "client.lockout_ended" event at the next flush. Lockouts are as many as
// an attacker's addresses, so they share the failures' row budget (ahead
// of them, address lockouts aside) and their sampled log lines.
func (rc *Recorder) Lockout(l limits.Lockout) {
	action, msg := "client.lockout_ended", "failed-authentication lockout ended"
	if l.Started {
		action, msg = "client.lockout_started", "failed-authentication lockout started"
	}
	clientID := l.ClientID
	if len(clientID) > maxClientIDAttr {
		clientID = clientID[:maxClientIDAttr]
	}
	addr := ""
	if l.Addr.IsValid() {
		addr = l.Addr.String()
	}
	b, _ := json.Marshal(struct {
		Scope    limits.Scope `json:"scope"`
		Until    time.Time    `json:"until"`
		Failures int          `json:"failures,omitempty"`
	}{l.Scope, l.Until.UTC(), l.Failures})
	e := authz.AuditEvent{Time: authz.StoreTime(rc.now()), Action: action, Target: clientID, RemoteAddr: addr, Details: string(b)}
	r := rankClientLockout
	if l.Scope == limits.ScopeAddr {
		r = rankAddrLockout
	}
	rc.mu.Lock()
	logIt := rc.failures.addLockout(e, r, e.Time)
	rc.mu.Unlock()
	if logIt && l.Started {
		rc.log.Info(msg, "scope", string(l.Scope), "client_id", clientID, "remote_addr", addr, "until", l.Until.UTC())
	}
}

// PurgeInterval is how often PurgeLoop purges events past Retention.
const PurgeInterval = time.Hour

// Purge removes the events older than Retention (none if it is 0) and,
// if it removed any, records an "audit.purged" event saying how many.
func (rc *Recorder) Purge(ctx context.Context) error {
	if rc.Retention <= 0 {
		return nil
	}
	before := rc.now().Add(-rc.Retention)
	n, err := rc.store.PurgeAudit(ctx, before)
	if n > 0 {
		rc.log.Info("audit events past the retention period purged", "count", n, "before", before.UTC())
		rc.Record(ctx, authz.AuditEvent{Action: "audit.purged",
			Details: `{"count":` + strconv.Itoa(n) + `,"before":"` + before.UTC().Format(time.RFC3339) + `"}`})
	}
	return err
}

// PurgeLoop purges once soon after it starts, then every PurgeInterval,
// until ctx is done, under the cluster lease "audit-purge" (Lead): one
// replica purges.
func (rc *Recorder) PurgeLoop(ctx context.Context) {
	if rc.Retention <= 0 {
		return
	}
	purge := func() {
		run := func() error { return rc.Purge(ctx) }
		var err error
		if rc.Lead != nil {
			err = rc.Lead(ctx, "audit-purge", run)
		} else {
			err = run()
		}
		if err != nil && ctx.Err() == nil {
			rc.log.Warn("purging the audit log failed; the next purge retries", "error", err)
		}
	}
	first := time.NewTimer(10 * time.Second) // not in the way of the start
	defer first.Stop()
	t := time.NewTicker(PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-first.C:
			purge()
		case <-t.C:
			purge()
		}
	}
}
