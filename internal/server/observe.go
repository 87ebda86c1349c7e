package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/audit"
	"github.com/m2mauth/m2mauth/internal/buildinfo"
	"github.com/m2mauth/m2mauth/internal/metrics"
	"github.com/m2mauth/m2mauth/internal/store/cache"
)

// PathVersion is the endpoint answering the running build (buildinfo.Info)
// as JSON.
const PathVersion = "/version"

// newMetrics returns the server's metrics, or nil when cfg serves none.
func newMetrics(cfg Config) *metrics.Metrics {
	if cfg.MetricsAddr == "" {
		return nil
	}
	return metrics.New(metrics.Options{PerClient: cfg.MetricsPerClient, Build: buildinfo.Read()})
}

// withCacheHooks returns opt with the cache's metric hooks.
func (s *Server) withCacheHooks(opt cache.Options) cache.Options {
	if s.metrics != nil {
		opt.OnLookup = s.metrics.CacheLookup
		opt.OnStoreError = func() { s.metrics.StoreError("client_lookup") }
	}
	return opt
}

// instrument connects the audit export (--audit-sink) and, when metrics
// are on, the collectors to what they observe. It runs before the
// bootstrap, whose audit events the sink gets too.
func (s *Server) instrument() error {
	sink, err := audit.OpenSink(s.cfg.AuditSink, s.stdout, s.log)
	if err != nil {
		return err
	}
	if sink != nil {
		s.auditSink = sink
		s.recorder.Sink = sink
		s.manage.Committed = sink.Write
	}
	if s.metrics == nil {
		return nil
	}
	s.issuer.Signing = s.metrics.StartSigning
	s.recorder.OnStoreError = func() { s.metrics.StoreError("audit_write") }
	s.oauth.Metrics = s.metrics
	s.oauth.Reuse.OnLookup = s.metrics.TokenReuse
	s.metrics.Watch(metrics.Sources{
		DenyListLen:  s.denyList.Len,
		CacheEntries: s.cache.Len,
		Audit:        s.recorder.Buffered,
		Keys:         s.keys.List,
		Now:          s.now,
	})
	return nil
}

// listenMetrics opens the --metrics-addr listener, served by a background
// loop until Serve stops.
func (s *Server) listenMetrics() error {
	if s.metrics == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return err
	}
	s.metricsLn = ln
	s.background = append(s.background, s.serveMetrics)
	return nil
}

// MetricsAddr returns the metrics listener's address, "" when metrics are
// off.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// serveMetrics serves /metrics on the metrics listener until ctx is done.
func (s *Server) serveMetrics(ctx context.Context) {
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, s.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
	}()
	s.log.Info("serving metrics", "addr", s.metricsLn.Addr().String(), "path", metrics.Path)
	if err := srv.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("metrics listener stopped", "error", err)
	}
	<-done
}

// observeRequest records one request's latency by its route pattern
// (the middleware's hook).
func (s *Server) observeRequest(r *http.Request, status int, d time.Duration) {
	s.metrics.ObserveRequest(r.Pattern, status, d)
}

// handleVersion answers GET /version with the running build.
func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(buildinfo.Read())
}

// closeObservers releases the metrics listener and the audit sink.
func (s *Server) closeObservers() error {
	var errs []error
	if s.metricsLn != nil {
		if err := s.metricsLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.auditSink.Close())
	return errors.Join(errs...)
}
