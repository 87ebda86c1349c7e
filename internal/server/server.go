package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/audit"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientcert"
	"github.com/m2mauth/m2mauth/internal/clientip"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/connlimit"
	"github.com/m2mauth/m2mauth/internal/denylist"
	"github.com/m2mauth/m2mauth/internal/jwks"
	"github.com/m2mauth/m2mauth/internal/limits"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/metrics"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/internal/quota"
	"github.com/m2mauth/m2mauth/internal/store/cache"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
	"github.com/m2mauth/m2mauth/internal/token"
)

// CredentialsFile is the name of the bootstrap administrator's credentials
// file in the data directory.
const CredentialsFile = "admin-credentials.json"

// MasterKeyFile is the name of the master key generated into the data
// directory when none is configured.
const MasterKeyFile = "master.key"

// Credentials is the content of admin-credentials.json: what the CLI needs
// to call the management API.
type Credentials struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	Audience      string `json:"audience"`
}

// Deps are the server's injected clock, randomness and logger.
type Deps struct {
	Now  func() time.Time // default time.Now
	Rand io.Reader        // default crypto/rand.Reader
	Log  *slog.Logger     // default slog.Default()
	// Stdout is where --audit-sink stdout writes; default os.Stdout.
	Stdout io.Writer
}

// Server is a running m2mauth: built by New, served by Serve, released by
// Close.
type Server struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	rand      io.Reader
	db        authz.Store  // the database itself
	cache     *cache.Store // db with applications kept in memory
	store     authz.Store  // what everything reads and writes through: cache
	keys      *token.Keys
	issuer    *token.Issuer
	oauth     *oauth.Server
	discovery *oauth.Discovery
	manage    *manage.Service
	checker   *token.Checker
	admin     *admin.Handler
	recorder  *audit.Recorder
	limiter   *limits.Limiter // failed client authentications
	quota     *quota.Limiter  // applications' rates and quotas
	denyList  *denylist.DenyList
	metrics   *metrics.Metrics // nil: no --metrics-addr
	metricsLn net.Listener     // the --metrics-addr listener
	auditSink *audit.Sink      // nil: no --audit-sink
	stdout    io.Writer
	openAPI   []byte
	handler   http.Handler
	tls       *tls.Config // nil: plain HTTP
	lock      *os.File    // the SQLite data dir's lock, held until Close
	cors      corsPolicy
	drain     drainState
	access    atomic.Pointer[accessHandlers] // the access log's handlers per route (accessHandler)
	// background are the loops Serve runs until it stops (flushing the
	// audit log, rotating keys, purging the deny-list); each returns when
	// its context is done.
	background []func(ctx context.Context)

	// dpopNonceKey keys the token endpoint's DPoP nonces: derived from the
	// master key by sealer (dpopNonceKey).
	dpopNonceKey []byte
}

// New opens the data directory's SQLite database (applying migrations),
// loads or creates the master key, the client-secret pepper and the
// signing keys, and on an empty database creates the management API and an
// administrator whose credentials go to admin-credentials.json (mode 0600).
// cfg must have passed Validate.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Stdout == nil {
		deps.Stdout = os.Stdout
	}
	s := &Server{cfg: cfg, log: deps.Log, now: deps.Now, rand: deps.Rand, stdout: deps.Stdout, metrics: newMetrics(cfg)}
	var err error
	if s.tls, err = s.newTLS(); err != nil {
		return nil, err
	}
	if s.cors, err = newCORSPolicy(cfg.CORSAllowedOrigins); err != nil {
		return nil, err
	}
	if err := s.prepareDataDir(); err != nil {
		return nil, err
	}
	sealer, err := s.sealer()
	if err != nil {
		s.unlockDataDir()
		return nil, err
	}
	st, err := s.openStore(ctx)
	if err == nil {
		err = s.restrictDataFiles()
		if err != nil {
			st.Close()
		}
	}
	if err != nil {
		s.unlockDataDir()
		return nil, err
	}
	s.db = st
	// The token endpoint reads applications from memory; writes made
	// through this replica drop what they change at once, other replicas'
	// writes through the change feed.
	// On SQLite this process is the only writer (it holds the data
	// directory's lock) and every write goes through the cache, so entries
	// never go stale by age; PostgreSQL replicas learn of each other's
	// writes from the change feed, whose version check (ChangeSynced every
	// second) keeps entries from going stale by age; CacheTTL bounds
	// staleness only while that check cannot run.
	_, shared := st.(authz.ChangeFeed)
	s.cache = cache.New(st, s.withCacheHooks(cache.Options{Now: s.now, SoleWriter: !shared, TTL: cfg.CacheTTL, MaxStale: cfg.CacheMaxStale, MaxEntries: cfg.CacheMaxEntries}))
	s.store = s.cache
	if err := s.init(ctx, sealer); err != nil {
		st.Close()
		s.unlockDataDir()
		return nil, err
	}
	return s, nil
}

// openStore opens the PostgreSQL database of cfg.DatabaseURL, or SQLite in
// the data directory.
func (s *Server) openStore(ctx context.Context) (authz.Store, error) {
	if s.cfg.DatabaseURL != "" {
		return openPostgres(ctx, s.cfg.DatabaseURL, s.log)
	}
	if err := s.createDatabaseFile(); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, filepath.Join(s.cfg.DataDir, DatabaseFile), s.log)
}

func (s *Server) init(ctx context.Context, sealer *masterkey.Sealer) error {
	release, err := s.startupLease(ctx)
	if err != nil {
		return err
	}
	defer release()
	hasher, err := s.pepper(ctx, sealer)
	if err != nil {
		return err
	}
	if feed, ok := s.db.(authz.ChangeFeed); ok {
		s.background = append(s.background, func(ctx context.Context) { s.followChanges(ctx, feed) })
	}
	s.keys = token.NewKeys(s.store, sealer, s.now, s.rand, s.log)
	if err := s.keys.Load(ctx); err != nil {
		return err
	}
	if err := s.resealKeys(ctx); err != nil {
		return err
	}
	if err := s.ensureKeys(ctx); err != nil {
		return err
	}
	s.issuer = token.NewIssuer(s.cfg.Issuer, s.keys, s.now, s.rand)
	s.recorder = audit.New(s.store, s.now, s.rand, s.log)
	s.recorder.Retention, s.recorder.Lead, s.recorder.UsageInterval = s.cfg.AuditRetention, s.lead, s.cfg.UsageInterval
	s.background = append(s.background, s.recorder.Run, s.recorder.PurgeLoop)
	// Failed client authentications are held back before any hash or
	// store work (docs/abuse.md); lockouts go to the audit log.
	s.limiter = limits.New(limits.Config{MaxFailures: s.cfg.AuthMaxFailures, Window: s.cfg.AuthLockoutWindow, Now: s.now, OnLockout: s.recorder.Lockout})
	s.background = append(s.background, s.limiter.Run)
	s.background = append(s.background, s.runKeyRotation)
	s.background = append(s.background, s.purgeJTIsLoop)
	clientIP, err := clientip.New(strings.Split(s.cfg.TrustedProxies, ","))
	if err != nil {
		return err
	}
	s.oauth = &oauth.Server{Clients: s.store, Hasher: hasher, Issuer: s.issuer, Now: s.now, Log: s.log, Events: s.recorder, ClientIP: clientIP, Limiter: s.limiter}
	// DPoP (RFC 9449): proofs' jti in the replay store every replica
	// shares; nonces keyed from the master key, valid on every replica.
	s.oauth.DPoPReplay = s.store
	s.oauth.DPoPNonces = dpop.NewNonces(s.dpopNonceKey, dpop.DefaultNonceWindow, s.now)
	// Opt-in token reuse (docs/token-reuse.md): per replica, bounded.
	s.oauth.Reuse = oauth.NewReuseCache(s.cfg.TokenReuseMaxEntries)
	// One fetcher of JWKS, discovery documents and SPIFFE bundles for
	// every method that needs keys from elsewhere (docs/secretless-clients.md).
	fetcher := jwks.NewFetcher(jwks.FetcherConfig{RootCAs: s.cfg.FetchRootCAs, AllowInsecure: s.cfg.AllowInsecureIssuers, Now: s.now, Log: s.log})
	s.oauth.ClientAuth = append(oauth.SecretAuthenticators(s.oauth), &oauth.PrivateKeyJWT{S: s.oauth, Credentials: s.store, Fetcher: fetcher, Replay: s.store, Audience: s.cfg.ClientAssertionAudience,
		Algs: strings.Split(s.cfg.ClientAssertionAlgs, ","), RequireTyp: s.cfg.ClientAssertionTyp == "required"})
	// Workload identity federation: trusted issuers' JWTs (federated_jwt,
	// spiffe_jwt), also as the jwt-bearer grant (RFC 7523 §2.1).
	federated := &oauth.Federated{S: s.oauth, Issuers: s.store, Credentials: s.store, Keys: fetcher, Replay: s.store, Audience: s.cfg.ClientAssertionAudience}
	s.oauth.ClientAuth = append(s.oauth.ClientAuth, federated.Authenticators()...)
	// Mutual TLS (RFC 8705), when client certificates can arrive: over
	// this server's TLS with a client CA file, or forwarded by a trusted
	// proxy.
	mtls := s.cfg.TLSClientCAFile != "" || s.cfg.ClientCertHeader != ""
	if mtls {
		tlsAuth := &oauth.TLSClientAuth{S: s.oauth, Credentials: s.store, Issuers: s.store, Bundles: fetcher}
		if s.cfg.TLSClientCAFile != "" {
			if tlsAuth.CAs, err = clientCAs(s.cfg.TLSClientCAFile); err != nil {
				return err
			}
		}
		s.oauth.ClientAuth = append(s.oauth.ClientAuth, tlsAuth.Authenticators()...)
	}
	s.oauth.FederatedLifetimeFull = s.cfg.FederatedTokenLifetime == "api"
	if err := s.initQuota(); err != nil {
		return err
	}
	s.discovery = &oauth.Discovery{Issuer: s.cfg.Issuer, Keys: s.keys, APIs: s.store, Now: s.now, AuthMethods: s.oauth.AuthMethods(), AuthSigningAlgs: s.oauth.AuthSigningAlgs(), DPoPAlgs: s.oauth.DPoPSigningAlgs(), MTLS: mtls}
	if err := s.initRevocation(ctx); err != nil {
		return err
	}
	s.checker = &token.Checker{Issuer: s.issuer, DenyList: s.denyList, Clients: s.store}
	s.manage = &manage.Service{
		Store: s.store, Hasher: hasher, Keys: s.keys, SigningKeys: keyManager{s}, Verifier: s.issuer, DenyList: s.denyList,
		DefaultAlg: s.cfg.DefaultSigningAlg, AdminTokenLifetime: s.cfg.AdminTokenLifetime, DefaultPolicy: s.quota.Defaults(),
		Now: s.now, Rand: s.rand, Log: s.log, AllowInsecureIssuers: s.cfg.AllowInsecureIssuers,
	}
	s.admin = &admin.Handler{Manage: s.manage, Checker: s.checker, Log: s.log, RemoteAddr: s.oauth.ClientIP.String}
	if err := s.instrument(); err != nil {
		return err
	}
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	if err := s.manage.Upgrade(ctx); err != nil {
		return fmt.Errorf("upgrading the management API: %w", err)
	}
	if s.openAPI, err = adminOpenAPI(s.cfg.Issuer, s); err != nil {
		return err
	}
	if err := s.listenMetrics(); err != nil {
		return fmt.Errorf("metrics-addr: %w", err)
	}
	s.handler = s.middleware(s.routes())
	if mtls {
		// Each request's client certificate, for the mutual TLS methods
		// and certificate-bound tokens (clientcert.FromContext).
		s.handler = (&clientcert.Source{Header: s.cfg.ClientCertHeader, Proxies: clientIP}).Middleware(s.handler)
	}
	return nil
}

// sealer loads the master key: from M2MAUTH_MASTER_KEY, from
// --master-key-file, or from (creating) master.key in the data directory.
func (s *Server) sealer() (*masterkey.Sealer, error) {
	var key []byte
	var err error
	switch {
	case s.cfg.MasterKey != "":
		key, err = masterkey.Parse(s.cfg.MasterKey)
	case s.cfg.MasterKeyFile != "":
		key, err = masterkey.LoadFile(s.cfg.MasterKeyFile)
	default:
		path := filepath.Join(s.cfg.DataDir, MasterKeyFile)
		var created bool
		key, created, err = masterkey.LoadOrCreateFile(path, s.rand)
		if err == nil {
			msg := "using the master key in the data directory"
			if created {
				msg = "generated a master key into the data directory"
			}
			s.log.Warn(msg+"; anyone who can read the data directory can open the signing keys: set M2MAUTH_MASTER_KEY or --master-key-file in production", "path", path)
		}
	}
	if err != nil {
		return nil, err
	}
	if s.dpopNonceKey, err = dpopNonceKey(key); err != nil {
		return nil, err
	}
	// During a master-key rotation, what the previous key sealed still
	// opens; init seals it again under the new key.
	var previous [][]byte
	switch {
	case s.cfg.PreviousMasterKey != "":
		p, err := masterkey.Parse(s.cfg.PreviousMasterKey)
		if err != nil {
			return nil, fmt.Errorf("previous master key: %w", err)
		}
		previous = append(previous, p)
	case s.cfg.PreviousMasterKeyFile != "":
		p, err := masterkey.LoadFile(s.cfg.PreviousMasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("previous master key: %w", err)
		}
		previous = append(previous, p)
	}
	return masterkey.NewSealer(s.rand, key, previous...)
}

const pepperSetting = "client_secret_pepper"

// pepper loads the client-secret pepper, creating it on a new database
// (OpenPepper), and reseals it under the primary master key if an older
// key sealed it.
func (s *Server) pepper(ctx context.Context, sealer *masterkey.Sealer) (*clientsecret.Hasher, error) {
	pepper, stored, err := OpenPepper(ctx, s.store, sealer, s.rand)
	if err != nil {
		return nil, err
	}
	if !sealer.SealedByPrimary(stored) {
		if err := s.resealSetting(ctx, sealer, pepperSetting, pepper); err != nil {
			return nil, err
		}
	}
	return clientsecret.NewHasher(pepper)
}

// OpenPepper returns the client-secret pepper of st and its sealed form as
// stored, creating it (clientsecret.PepperLen bytes from r) on a database
// without one. It is stored sealed under the master key, so a stolen
// database alone cannot be used to test secret guesses. Returns an error
// if the store fails or sealer cannot open the stored value (another
// master key). internal/loadseed hashes the secrets it seeds with it.
func OpenPepper(ctx context.Context, st authz.Store, sealer *masterkey.Sealer, r io.Reader) (pepper, stored []byte, err error) {
	fresh := make([]byte, clientsecret.PepperLen)
	if _, err := io.ReadFull(r, fresh); err != nil {
		return nil, nil, err
	}
	sealed, err := sealer.Seal(fresh, []byte(pepperSetting))
	if err != nil {
		return nil, nil, err
	}
	stored, _, err = st.InitSetting(ctx, pepperSetting, sealed)
	if err != nil {
		return nil, nil, fmt.Errorf("client secret pepper: %w", err)
	}
	pepper, err = sealer.Open(stored, []byte(pepperSetting))
	if err != nil {
		return nil, nil, fmt.Errorf("client secret pepper: %w (is this the master key the database was sealed with? After a master-key rotation, give the old key as the previous one until every value is resealed)", err)
	}
	return pepper, stored, nil
}

// ensureKeys makes sure every algorithm in use has signing keys: the
// default and every API's.
func (s *Server) ensureKeys(ctx context.Context) error {
	algs := map[string]bool{s.cfg.DefaultSigningAlg: true}
	pg := authz.Page{Limit: authz.MaxPageLimit}
	for {
		apis, next, err := s.store.ListAPIs(ctx, authz.APIFilter{}, pg)
		if err != nil {
			return err
		}
		for _, a := range apis {
			algs[a.SigningAlg] = true
		}
		if next == "" {
			break
		}
		pg.Cursor = next
	}
	for _, alg := range authz.SigningAlgs {
		if algs[alg] {
			if err := s.keys.Ensure(ctx, alg); err != nil {
				return err
			}
		}
	}
	return nil
}

// bootstrap creates the management API and the first administrator on an
// empty database (manage.Service.Bootstrap) and writes its credentials
// file. Of nodes starting together on one database, only the one whose
// transaction created them writes the file.
func (s *Server) bootstrap(ctx context.Context) error {
	created, err := s.manage.Bootstrap(ctx)
	if err != nil || created == nil {
		return err
	}
	clientID := created.Application.ClientID
	path := filepath.Join(s.cfg.DataDir, CredentialsFile)
	if err := writeCredentials(path, Credentials{
		Issuer: s.cfg.Issuer, TokenEndpoint: s.cfg.Issuer + oauth.PathToken,
		ClientID: clientID, ClientSecret: created.ClientSecret, Audience: authz.ManagementAudience,
	}); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	s.log.Info("bootstrapped an empty database: administrator credentials written", "path", path, "client_id", clientID)
	return nil
}

// writeCredentials writes c to path, mode 0600.
func writeCredentials(path string, c Credentials) error {
	body, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFile0600(path, append(body, '\n'))
}

func writeFile0600(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Handler returns the server's HTTP handler (routes and middleware).
func (s *Server) Handler() http.Handler { return s.handler }

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// Serve serves HTTP (HTTPS with TLS configured) on ln until ctx is done,
// then shuts down gracefully (shutdown; call Drain before, for the
// shutdown delay). It holds at most MaxConnections connections open
// (connlimit.Listener) and MaxIdleConnsPerAddress idle ones per client
// address (connlimit.Idle).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.MaxConnections > 0 {
		ln = connlimit.NewListener(ln, s.cfg.MaxConnections)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	var idle func(net.Conn, http.ConnState)
	if s.cfg.MaxIdleConnsPerAddress > 0 {
		idle = connlimit.NewIdle(s.cfg.MaxIdleConnsPerAddress).ConnState
	}
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		s.drain.connState(st)
		if idle != nil {
			idle(c, st)
		}
	}
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	for _, run := range s.background {
		bg.Go(func() { run(bgCtx) })
	}
	stop := func() {
		stopBackground()
		bg.Wait()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.warnPlainHTTP(ln.Addr())
	s.log.Info("serving", "addr", ln.Addr().String(), "issuer", s.cfg.Issuer, "tls", s.tls != nil)
	select {
	case err := <-errc:
		stop()
		return err
	case <-ctx.Done():
	}
	return s.shutdown(srv, errc, stop)
}

// warnPlainHTTP warns when plain HTTP is served beyond loopback: client
// secrets and tokens then cross the network in clear unless a proxy in
// front terminates TLS (RFC 6749 §3.2 requires TLS at the token endpoint).
func (s *Server) warnPlainHTTP(addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if s.tls != nil || !ok || tcp.IP.IsLoopback() {
		return
	}
	s.log.Warn("SERVING PLAIN HTTP ON A NON-LOOPBACK ADDRESS: client secrets and tokens cross the network unencrypted; set --tls-cert-file and --tls-key-file, or make sure only a TLS-terminating proxy reaches this address (docs/operations.md)", "addr", addr.String())
}

// ShutdownTimeout bounds how long Serve waits, once its context is done,
// for requests in flight.
const ShutdownTimeout = 10 * time.Second

// drainState is what Drain, Serve and the middleware share about a
// shutdown.
type drainState struct {
	draining atomic.Bool  // /readyz fails; responses close their connection
	requests atomic.Int64 // requests answered while draining
	closed   atomic.Int64 // connections closed while draining
	start    atomic.Int64 // when draining began, Unix nanoseconds
}

func (d *drainState) begin() bool {
	if !d.draining.CompareAndSwap(false, true) {
		return false
	}
	d.start.Store(time.Now().UnixNano())
	return true
}

func (d *drainState) connState(st http.ConnState) {
	if (st == http.StateClosed || st == http.StateHijacked) && d.draining.Load() {
		d.closed.Add(1)
	}
}

// Drain begins a graceful shutdown, as SIGTERM does in `m2mauth serve`:
// /readyz answers 503 at once and every response closes its connection,
// so that load balancers stop routing here and clients reconnect to other
// replicas, while every request is still served. It returns after
// ShutdownDelay, or when ctx is done (a second signal); then cancel
// Serve's context to stop.
func (s *Server) Drain(ctx context.Context) {
	if s.drain.begin() {
		s.log.Info("shutting down: /readyz answers 503; serving on for the shutdown delay", "shutdown_delay", s.cfg.ShutdownDelay.String())
	}
	t := time.NewTimer(s.cfg.ShutdownDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		s.log.Info("shutdown delay ended early")
	}
}

// shutdown stops srv: no new connection is accepted, idle ones are
// closed, and requests in flight get up to ShutdownTimeout to finish;
// then the background loops stop (the audit recorder flushes audit
// events, last-use times and usage counts as it stops) and it logs what
// the drain did.
func (s *Server) shutdown(srv *http.Server, errc <-chan error, stopBackground func()) error {
	s.drain.begin()
	srv.SetKeepAlivesEnabled(false)
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	stopBackground()
	// The recorder flushed as it stopped; this writes what came after
	// (every counter, however young) and tells whether everything is
	// stored.
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer fcancel()
	flushErr := s.recorder.FlushAll(fctx)
	attrs := []any{
		"requests_during_drain", s.drain.requests.Load(), "connections_closed", s.drain.closed.Load(),
		"audit_flushed", flushErr == nil, "duration", time.Since(time.Unix(0, s.drain.start.Load())).Round(time.Millisecond).String(),
	}
	if err := errors.Join(err, flushErr); err != nil {
		s.log.Error("shutdown complete, with errors", append(attrs, "error", err)...)
	} else {
		s.log.Info("shutdown complete", attrs...)
	}
	return err
}

// Close releases the store and the data directory's lock.
func (s *Server) Close() error {
	err := errors.Join(s.store.Close(), s.closeObservers())
	s.unlockDataDir()
	return err
}
