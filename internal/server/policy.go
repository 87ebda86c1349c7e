package server

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/quota"
)

// reconcileInterval is how often each replica reads every replica's
// issuance counters for the applications with a quota (docs/policy.md).
const reconcileInterval = 2 * time.Second

// defaultPolicy is the token policy Config's Default* settings describe;
// the zero Policy if none is set.
func (c *Config) defaultPolicy() (authz.Policy, error) {
	var p authz.Policy
	if c.DefaultRate != "" {
		r, err := authz.ParseRate(c.DefaultRate)
		if err != nil {
			return p, fieldError("default-rate", c.DefaultRate, "%v", err)
		}
		if r > manage.MaxRatePerSecond {
			return p, fieldError("default-rate", c.DefaultRate, "must be at most %d/s", manage.MaxRatePerSecond)
		}
		if c.DefaultBurst < 0 || c.DefaultBurst > manage.MaxBurst {
			return p, fieldError("default-burst", strconv.Itoa(c.DefaultBurst), "must be 1 to %d", manage.MaxBurst)
		}
		p.Rate = &authz.Rate{PerSecond: r, Burst: c.DefaultBurst}
		if p.Rate.Burst == 0 {
			p.Rate.Burst = max(1, int(math.Ceil(r)))
		}
	} else if c.DefaultBurst != 0 {
		return p, fieldError("default-burst", "", "needs --default-rate")
	}
	if c.DefaultQuotaHour < 0 || c.DefaultQuotaDay < 0 || c.DefaultQuotaHour > manage.MaxQuota || c.DefaultQuotaDay > manage.MaxQuota {
		return p, fieldError("default-quota-hour", "", "quotas are counts from 1 to %d", manage.MaxQuota)
	}
	if c.DefaultQuotaHour > 0 || c.DefaultQuotaDay > 0 {
		p.Quota = &authz.Quota{PerHour: int64(c.DefaultQuotaHour), PerDay: int64(c.DefaultQuotaDay)}
	}
	if p.Rate != nil || p.Quota != nil {
		p.Mode = authz.PolicyEnforce
	}
	return p, nil
}

// initQuota builds the per-application limiter with the server's default
// policy, reports crossings to the audit log and reconciles quotas from
// the store's issuance counters in the background.
func (s *Server) initQuota() error {
	defaults, err := s.cfg.defaultPolicy()
	if err != nil {
		return err
	}
	s.quota = quota.New(s.now, defaults, s.limitCrossed)
	s.oauth.Quota = s.quota
	s.background = append(s.background, s.reconcileQuota)
	return nil
}

// limitCrossed writes a crossing to the audit log: "application.limit_crossed",
// once per limit and window. It runs on the token endpoint's path, so the
// write (rare: once per window) goes on in its own goroutine.
func (s *Server) limitCrossed(c quota.Crossing) {
	details, _ := json.Marshal(map[string]any{
		"limit": c.Limit, "mode": c.Mode, "quota": c.Quota, "window_start": c.WindowStart.UTC(),
	})
	e := authz.AuditEvent{Action: "application.limit_crossed", Target: c.ClientID, Details: string(details)}
	go s.recorder.Record(context.WithoutCancel(context.Background()), e)
}

// reconcileQuota runs quota.Limiter.Reconcile every reconcileInterval.
func (s *Server) reconcileQuota(ctx context.Context) {
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.quota.Reconcile(ctx, s.store); err != nil && ctx.Err() == nil {
				s.log.Warn("quota counters not reconciled with the database; using this replica's", "error", err)
			}
		}
	}
}
