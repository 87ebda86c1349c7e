package server

import (
	"context"
	"time"
)

// jtiPurgeInterval is how often used one-time keys whose lifetime is over
// leave the replay store.
const jtiPurgeInterval = time.Minute

// purgeJTIsLoop removes expired entries of the replay store (authz.Replay)
// every jtiPurgeInterval until ctx is done, on one replica of a cluster
// (the lease "jti-purge"). Work done twice for a moment, by a replica that
// lost the lease without knowing, is harmless: the delete is idempotent.
func (s *Server) purgeJTIsLoop(ctx context.Context) {
	t := time.NewTicker(jtiPurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.purgeJTIs(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("purging expired one-time keys (jti) failed; the next purge retries", "error", err)
			}
		}
	}
}

// purgeJTIs is one step of purgeJTIsLoop.
func (s *Server) purgeJTIs(ctx context.Context) error {
	return s.lead(ctx, "jti-purge", func() error {
		n, err := s.db.PurgeJTIs(ctx)
		if err == nil && n > 0 {
			s.log.Debug("purged expired one-time keys (jti)", "count", n)
		}
		return err
	})
}
