package server

import (
	"context"

	"github.com/m2mauth/m2mauth/internal/denylist"
)

// initRevocation loads the deny-list and gives it to the introspection and
// revocation endpoints (RFC 7662, RFC 7009), which discovery then
// advertises, and to the management API's bearer check; its refresh and
// purge loops run with the server.
func (s *Server) initRevocation(ctx context.Context) error {
	s.denyList = denylist.New(s.store, s.now, s.log)
	s.denyList.Lead = s.lead
	if err := s.denyList.Refresh(ctx); err != nil {
		return err
	}
	s.background = append(s.background, s.denyList.RefreshLoop, s.denyList.PurgeLoop)
	s.oauth.DenyList = s.denyList
	s.discovery.Introspection = true
	s.discovery.Revocation = true
	return nil
}
