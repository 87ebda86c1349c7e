package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/denylist"
)

// initRevocation loads the deny-list and gives it to the introspection and
// revocation endpoints (RFC 7662, RFC 7009), which discovery then
// advertises, and to the management API's bearer check; its refresh and
// purge loops run with the server. Revocations at /oauth/revoke are capped
// per client per hour (Config.MaxRevocationsPerHour); a client's first
// refusal in an hour is audited as token.revoke_limited.
func (s *Server) initRevocation(ctx context.Context) error {
	s.denyList = denylist.New(s.store, s.now, s.log)
	s.denyList.Lead = s.lead
	if err := s.denyList.Refresh(ctx); err != nil {
		return err
	}
	s.background = append(s.background, s.denyList.RefreshLoop, s.denyList.PurgeLoop)
	s.oauth.DenyList = s.denyList
	s.oauth.RevocationCap = denylist.NewCap(s.cfg.MaxRevocationsPerHour, time.Hour, s.now, s.revocationLimited)
	s.discovery.Introspection = true
	s.discovery.Revocation = true
	return nil
}

// revocationLimited audits a client's first revocation refused by its cap
// in a window, which closes at until.
func (s *Server) revocationLimited(clientID string, until time.Time) {
	s.log.Warn("client over its cap of revocations; refused with 429 until the window closes", "client_id", clientID, "limit", s.cfg.MaxRevocationsPerHour, "until", until)
	details, _ := json.Marshal(map[string]any{"limit_per_hour": s.cfg.MaxRevocationsPerHour, "until": until.UTC().Format(time.RFC3339)})
	s.recorder.Record(context.Background(), authz.AuditEvent{Action: "token.revoke_limited", Actor: clientID, Target: clientID, Details: string(details)})
}

// reloadDenyList rereads the whole deny-list, after the change feed lost
// notifications: an incremental refresh may have missed what they were
// about.
func (s *Server) reloadDenyList(ctx context.Context) {
	if err := s.denyList.RefreshAll(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("rereading the deny-list after lost change notifications failed; the periodic refresh reads what is new", "error", err)
	}
}
