package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/token"
)

// KeyRefreshInterval is how often a server rereads the signing keys from
// the store, so that replicas agree within seconds on the keys another one
// created, rotated or pruned: 5 s.
const KeyRefreshInterval = 5 * time.Second

// keyRotationInterval is how often the rotation step runs: 1 minute. A
// rotation therefore happens at most this late after its period elapses.
const keyRotationInterval = time.Minute

// runKeyRotation is the background loop of signing-key rotation: the
// rotation step at start and every keyRotationInterval, and a reload of the
// keys every KeyRefreshInterval. It returns when ctx is done.
func (s *Server) runKeyRotation(ctx context.Context) {
	if err := s.lead(ctx, "key-rotation", func() error { return s.rotateKeysStep(ctx) }); err != nil {
		s.log.Error("signing-key rotation failed; retrying in a minute", "error", err)
	}
	rotate := time.NewTicker(keyRotationInterval)
	defer rotate.Stop()
	refresh := time.NewTicker(KeyRefreshInterval)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			if changed, err := s.keys.Refresh(ctx); err != nil {
				s.log.Warn("reloading the signing keys failed; keeping the current ones", "error", err)
			} else if changed {
				s.log.Debug("signing keys reloaded: they changed in the store")
			}
		case <-rotate.C:
			if err := s.lead(ctx, "key-rotation", func() error { return s.rotateKeysStep(ctx) }); err != nil {
				s.log.Error("signing-key rotation failed; retrying in a minute", "error", err)
			}
		}
	}
}

// rotateKeysStep rotates every algorithm whose active key has signed for
// the configured rotation period, and deletes retired keys whose
// RemoveAfter has come. Both are audited as the server's own actions.
// Replicas may run it at the same moment: each rotation happens once.
func (s *Server) rotateKeysStep(ctx context.Context) error {
	maxLifetime, err := s.maxTokenLifetime(ctx)
	if err != nil {
		return err
	}
	var errs []error
	rotations, err := s.keys.RotateIfDue(ctx, s.cfg.KeyRotationPeriod, maxLifetime)
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range rotations {
		s.recordKeyEvent(ctx, "key.rotate", r.Alg, rotationDetails(r))
	}
	deleted, err := s.keys.Prune(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, kid := range deleted {
		s.recordKeyEvent(ctx, "key.remove", kid, nil)
	}
	return errors.Join(errs...)
}

// rotationDetails is the audit detail of a rotation: kids and times only.
func rotationDetails(r token.Rotation) map[string]any {
	d := map[string]any{
		"alg": r.Alg, "retired": r.Retired, "activated": r.Activated, "next": r.Next,
		"remove_after": r.RemoveAfter.UTC().Format(time.RFC3339),
	}
	if len(r.Evicted) > 0 {
		d["evicted"], d["evicted_early"] = r.Evicted, r.EarlyEvicted
	}
	return d
}

// recordKeyEvent audits an action the server took on its own (no actor).
func (s *Server) recordKeyEvent(ctx context.Context, action, target string, details map[string]any) {
	e := authz.AuditEvent{Action: action, Target: target}
	if len(details) > 0 {
		if b, err := json.Marshal(details); err == nil {
			e.Details = string(b)
		}
	}
	s.recorder.Record(ctx, e)
}

// maxTokenLifetime returns the longest token lifetime of any API: how long
// a token signed now may stay valid, and so how long a key retired now must
// stay published.
func (s *Server) maxTokenLifetime(ctx context.Context) (time.Duration, error) {
	var longest time.Duration
	pg := authz.Page{Limit: authz.MaxPageLimit}
	for {
		apis, next, err := s.store.ListAPIs(ctx, authz.APIFilter{}, pg)
		if err != nil {
			return 0, fmt.Errorf("listing APIs for their token lifetimes: %w", err)
		}
		for _, a := range apis {
			longest = max(longest, a.TokenLifetime)
		}
		if next == "" {
			return longest, nil
		}
		pg.Cursor = next
	}
}

// keyManager is the management API's access to the signing keys
// (admin.KeyManager).
type keyManager struct{ s *Server }

// List rereads the keys, so that the answer includes what another replica
// did a moment ago, and returns them without private material.
func (m keyManager) List(ctx context.Context) ([]authz.SigningKey, error) {
	if _, err := m.s.keys.Refresh(ctx); err != nil {
		return nil, err
	}
	return m.s.keys.List(), nil
}

// Rotate rotates the keys of alg ("" for every algorithm in use) now,
// within the limits of opts.
func (m keyManager) Rotate(ctx context.Context, alg string, opts token.RotateOptions) ([]token.Rotation, error) {
	maxLifetime, err := m.s.maxTokenLifetime(ctx)
	if err != nil {
		return nil, err
	}
	var algs []string
	if alg != "" {
		algs = []string{alg}
	}
	return m.s.keys.RotateWith(ctx, maxLifetime, opts, algs...)
}

// resealKeys seals again under the primary master key every signing key a
// previous master key sealed (after a master-key rotation).
func (s *Server) resealKeys(ctx context.Context) error {
	n, err := s.keys.Reseal(ctx)
	if err != nil {
		return fmt.Errorf("resealing the signing keys under the master key: %w", err)
	}
	if n > 0 {
		s.log.Info("signing keys resealed under the new master key", "count", n)
	}
	if s.cfg.PreviousMasterKey != "" || s.cfg.PreviousMasterKeyFile != "" {
		s.log.Info("everything this server keeps sealed is now under the new master key; remove the previous master key once every replica runs with the new one")
	}
	return nil
}

// resealSetting replaces setting name, sealed under a previous master key,
// with plaintext sealed under the primary one.
func (s *Server) resealSetting(ctx context.Context, sealer *masterkey.Sealer, name string, plaintext []byte) error {
	sealed, err := sealer.Seal(plaintext, []byte(name))
	if err != nil {
		return err
	}
	if err := s.store.PutSetting(ctx, name, sealed); err != nil {
		return fmt.Errorf("resealing %s under the master key: %w", name, err)
	}
	s.log.Info("setting resealed under the new master key", "setting", name)
	return nil
}
