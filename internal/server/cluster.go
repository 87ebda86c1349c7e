package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Replicas sharing one store (PostgreSQL) agree through it: each write
// publishes a change that every replica's caches follow at once (the
// change feed), and work that must happen once per cluster runs under a
// lease (the leader).

// followChanges drops or rereads what other replicas' writes changed, until
// ctx is done: an application → its cache entry; keys → the key set; a
// revocation → the deny-list (what is new in it); anything, or
// notifications lost → all of it (the whole deny-list reread); the feed's
// version check found none lost → the cache's entries stay current.
func (s *Server) followChanges(ctx context.Context, feed authz.ChangeFeed) {
	for ch := range feed.Changes(ctx) {
		switch ch.Kind {
		case authz.ChangeClient:
			s.cache.Invalidate(ch.Key)
		case authz.ChangeKeys:
			s.refreshKeys(ctx)
		case authz.ChangeRevoked:
			s.refreshDenyList(ctx)
		case authz.ChangeSynced: // no notification lost: entries need no reread by age
			s.cache.Synced()
		case authz.ChangeAll:
			s.cache.Invalidate("")
			s.refreshKeys(ctx)
			s.reloadDenyList(ctx)
		}
	}
}

func (s *Server) refreshKeys(ctx context.Context) {
	if _, err := s.keys.Refresh(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("reloading the signing keys after a change failed; the periodic reload retries", "error", err)
	}
}

func (s *Server) refreshDenyList(ctx context.Context) {
	if err := s.denyList.Refresh(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("reloading the deny-list after a change failed; the periodic reload retries", "error", err)
	}
}

// lead runs fn if this replica gets the cluster-wide lease name, or always
// when the store is not shared. Another replica holding the lease means the
// work is being done there: lead then returns nil without running fn.
// The lease is held only while fn runs, so when its holder dies the next
// attempt anywhere takes it.
func (s *Server) lead(ctx context.Context, name string, fn func() error) error {
	leader, ok := s.db.(authz.Leader)
	if !ok {
		return fn()
	}
	release, ok, err := leader.TryLead(ctx, name)
	if err != nil || !ok {
		return err
	}
	defer release()
	return fn()
}

// startupLease serialises the start of replicas on one database: creating
// signing keys, bootstrapping and upgrading happen on one replica at a
// time, so two replicas starting together do not both create keys. It
// waits up to 60 s for the lease and returns its release.
func (s *Server) startupLease(ctx context.Context) (func(), error) {
	leader, ok := s.db.(authz.Leader)
	if !ok {
		return func() {}, nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		release, ok, err := leader.TryLead(ctx, "startup")
		if err != nil {
			return nil, err
		}
		if ok {
			return release, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("another replica has held the startup lease for 60 s")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// handleReady serves GET /readyz: 503 from the start of a shutdown (the
// drain), else 200 when the database answers within a second, else 503 with Retry-After (a load balancer takes the replica out
// of rotation; cached applications still get tokens from it meanwhile).
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.drain.draining.Load() {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: shutting down\n"))
		return
	}
	if _, err := s.db.GetAPIByIdentifier(ctx, authz.ManagementAudience); err != nil {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: the database does not answer\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
