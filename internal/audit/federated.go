package audit

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// maxFederatedKeys bounds the federated authentication aggregates held at
// once. Only authenticated callers reach them, but a subject glob lets one
// credential match many subjects; past the bound, authentications are
// counted into one overflow event per window.
const maxFederatedKeys = 1000

// federatedWindow is how long one aggregate gathers authentications
// before its event is written.
const federatedWindow = time.Minute

// federatedKey is what federated authentications are aggregated by.
type federatedKey struct {
	clientID, credentialID, issuer, subject, addr string
}

type federatedAgg struct {
	count       int
	first, last time.Time
}

// federatedLog aggregates successful authentications by trusted issuers'
// JWTs. It is not safe for concurrent use (the Recorder's lock guards it).
type federatedLog struct {
	aggs     map[federatedKey]*federatedAgg
	overflow federatedAgg
}

func (l *federatedLog) add(k federatedKey, at time.Time) {
	a := l.aggs[k]
	if a == nil {
		if len(l.aggs) >= maxFederatedKeys {
			l.overflow.count++
			if l.overflow.first.IsZero() {
				l.overflow.first = at
			}
			l.overflow.last = at
			return
		}
		a = &federatedAgg{first: at}
		l.aggs[k] = a
	}
	a.count++
	a.last = at
}

// take removes and returns, as "client.federated_authentication" audit
// events (unstamped), the aggregates whose window is over at now, or all
// of them if all is set; ordered by first authentication.
func (l *federatedLog) take(now time.Time, all bool) []authz.AuditEvent {
	type ranked struct {
		first time.Time
		e     authz.AuditEvent
	}
	var out []ranked
	for k, a := range l.aggs {
		if !all && now.Sub(a.first) < federatedWindow {
			continue
		}
		delete(l.aggs, k)
		b, _ := json.Marshal(map[string]any{
			"issuer": k.issuer, "subject": k.subject, "credential_id": k.credentialID,
			"count": a.count, "first": authz.StoreTime(a.first), "last": authz.StoreTime(a.last),
		})
		out = append(out, ranked{a.first, authz.AuditEvent{
			Time: authz.StoreTime(a.last), Action: "client.federated_authentication",
			Actor: k.clientID, Target: k.clientID, RemoteAddr: k.addr, Details: string(b),
		}})
	}
	if o := l.overflow; o.count > 0 && (all || now.Sub(o.first) >= federatedWindow) {
		b, _ := json.Marshal(map[string]any{"count": o.count, "first": authz.StoreTime(o.first), "last": authz.StoreTime(o.last), "overflow": true})
		out = append(out, ranked{o.first, authz.AuditEvent{Time: authz.StoreTime(o.last), Action: "client.federated_authentication", Details: string(b)}})
		l.overflow = federatedAgg{}
	}
	slices.SortStableFunc(out, func(a, b ranked) int { return cmp.Compare(a.first.UnixNano(), b.first.UnixNano()) })
	events := make([]authz.AuditEvent, len(out))
	for i, r := range out {
		events[i] = r.e
	}
	return events
}
