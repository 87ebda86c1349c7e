package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// AuditEventResource is an audit log entry as the management API shows it.
type AuditEventResource struct {
	ID         string          `json:"id"`
	Time       time.Time       `json:"time"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	Target     string          `json:"target"`
	RemoteAddr string          `json:"remote_addr"`
	Details    json.RawMessage `json:"details"`
}

// timeParam reads an RFC 3339 time query parameter; absent is zero.
func timeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalid("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t.UTC(), nil
}

// ListAudit serves GET
// /admin/v1/audit?since=&until=&actor=&target=&action=&limit=&cursor=:
// newest first. since and until are RFC 3339 times (since inclusive).
func (h *Handler) ListAudit(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := authz.AuditFilter{Actor: q.Get("actor"), Target: q.Get("target"), Action: q.Get("action")}
	if f.Since, err = timeParam(r, "since"); err != nil {
		return err
	}
	if f.Until, err = timeParam(r, "until"); err != nil {
		return err
	}
	events, next, err := h.Manage.ListAudit(r.Context(), *actor, f, pg)
	if err != nil {
		return err
	}
	out := List[AuditEventResource]{Items: make([]AuditEventResource, 0, len(events)), NextCursor: next}
	for _, e := range events {
		d := json.RawMessage("{}")
		if e.Details != "" {
			d = json.RawMessage(e.Details)
		}
		out.Items = append(out.Items, AuditEventResource{ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, RemoteAddr: e.RemoteAddr, Details: d})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// IssuanceResource counts the tokens issued to one application for one
// audience in one UTC hour.
type IssuanceResource struct {
	ClientID     string    `json:"client_id"`
	Audience     string    `json:"audience"`
	Hour         time.Time `json:"hour"`
	Count        int64     `json:"count"`
	LastIssuedAt time.Time `json:"last_issued_at"`
}

// UsageResource is the answer of GET /admin/v1/applications/{client_id}/usage:
// the issuance counters (items) and the use of the quotas that apply, as
// the replicas have written them: tokens counted against a quota within
// 2 s of issuance, the others within --usage-interval (default 30 s) plus
// 2 s (docs/policy.md, Usage).
type UsageResource struct {
	List[IssuanceResource]
	// Policy is the rate, quota and mode that apply: the application's,
	// or the server's default (policy_is_default); {} for none.
	Policy          Policy `json:"policy"`
	PolicyIsDefault bool   `json:"policy_is_default"`
	// Hour and Day are the starts of the current UTC hour and day;
	// HourUsed and DayUsed the tokens issued in them by every replica.
	Hour     time.Time `json:"hour"`
	HourUsed int64     `json:"hour_used"`
	Day      time.Time `json:"day"`
	DayUsed  int64     `json:"day_used"`
}

// ListUsage serves GET /admin/v1/applications/{client_id}/usage?since=:
// tokens issued per audience and hour (since defaults to 24 hours ago),
// and the use of the application's quotas. Counts reach the database
// within a few seconds of issuance.
func (h *Handler) ListUsage(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	since, err := timeParam(r, "since")
	if err != nil {
		return err
	}
	counts, err := h.Manage.ListUsage(r.Context(), *actor, r.PathValue("client_id"), since)
	if err != nil {
		return err
	}
	pu, err := h.Manage.GetPolicyUsage(r.Context(), *actor, r.PathValue("client_id"))
	if err != nil {
		return err
	}
	out := UsageResource{List: List[IssuanceResource]{Items: make([]IssuanceResource, 0, len(counts))},
		Policy: policyResource(pu.Policy), PolicyIsDefault: pu.Default,
		Hour: pu.Hour, HourUsed: pu.HourUsed, Day: pu.Day, DayUsed: pu.DayUsed}
	for _, c := range counts {
		out.Items = append(out.Items, IssuanceResource{ClientID: c.ClientID, Audience: c.Audience, Hour: c.Hour, Count: c.Count, LastIssuedAt: c.LastIssuedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
