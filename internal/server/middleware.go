package server

import (
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/internal/reqlog"
)

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// requestState is what the middleware needs per request, allocated once:
// the status writer, the context carrying the access log's entry, the
// random bytes of a generated request id and the values of the headers it
// sets (a Header's values are slices; Header.Set would allocate each).
type requestState struct {
	sw        statusWriter
	ctx       reqlog.Context
	random    [16]byte
	requestID [1]string
	nosniff   [1]string
}

// middleware recovers panics as 500s, gives each request its request id
// (requestID) and logs one access line per request (accessLog). It never
// logs headers or bodies: they carry secrets and tokens.
func (s *Server) middleware(next http.Handler) http.Handler {
	next = s.cors.handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		st := &requestState{sw: statusWriter{ResponseWriter: w}, nosniff: [1]string{"nosniff"}}
		entry := &st.ctx.Entry
		entry.RequestID = s.requestID(r, &st.random)
		st.requestID[0] = entry.RequestID
		h := w.Header()
		h[HeaderRequestID] = st.requestID[:] // as h.Set: the names are canonical
		st.ctx.Context = r.Context()
		r = r.WithContext(&st.ctx) // what reqlog.With(r.Context(), entry) returns, without its allocation
		sw := &st.sw
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "route", r.Pattern, "request_id", entry.RequestID, "panic", v)
				if sw.status == 0 {
					http.Error(sw, `{"error":"server_error"}`, http.StatusInternalServerError)
				}
			}
			end := s.now()
			d := end.Sub(start)
			s.accessLog(r, entry, sw.status, end, d)
			s.observeRequest(r, sw.status, d)
		}()
		h["X-Content-Type-Options"] = st.nosniff[:]
		s.drainRequest(w)
		next.ServeHTTP(sw, r)
	})
}

// HeaderRequestID names the request id a caller may give and every
// response carries.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds a caller's request id.
const maxRequestIDLen = 128

// requestID returns the caller's X-Request-Id if it is 1 to 128 letters,
// digits and - _ . : (what logs and audit records can carry verbatim),
// else a new one: 16 random bytes, read into random, in hex.
func (s *Server) requestID(r *http.Request, random *[16]byte) string {
	if id := r.Header.Get(HeaderRequestID); validRequestID(id) {
		return id
	}
	if _, err := io.ReadFull(s.rand, random[:]); err != nil {
		return "unavailable"
	}
	var id [2 * len(random)]byte
	hex.Encode(id[:], random[:])
	return string(id[:])
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// accessLog logs a request at info: method, route pattern (never the
// path, which a caller chooses), status, duration, the client_id a
// handler authenticated, the client's address through the trusted-proxy
// rule, and the request id. end is when the request ended: the line's
// time, from the server's clock.
//
// The line is what s.log.LogAttrs would write, built more cheaply: the
// record goes straight to the handler (LogAttrs would also walk the stack
// for a source position the handlers here never print), and method and
// route come formatted once per route (accessHandler), so that the record
// keeps its five attributes inline.
func (s *Server) accessLog(r *http.Request, e *reqlog.Entry, status int, end time.Time, d time.Duration) {
	ctx := r.Context()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return // the client's address is not worth resolving
	}
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	rec := slog.NewRecord(end, slog.LevelInfo, "request", 0)
	h := s.accessHandler(r.Method, route)
	if h == nil {
		h = s.log.Handler()
		rec.AddAttrs(slog.String("method", r.Method), slog.String("route", route))
	}
	var attrs [5]slog.Attr // on the stack: AddAttrs copies them
	attrs[0] = slog.Int("status", status)
	attrs[1] = slog.Float64("duration_ms", float64(d.Microseconds())/1000)
	n := 2
	if e.ClientID != "" {
		attrs[n] = slog.String("client_id", e.ClientID)
		n++
	}
	addr := e.ClientAddr // resolved by the handler, if it authenticated a client
	if !addr.IsValid() {
		addr = s.oauth.ClientIP.Addr(r)
	}
	remote := ""
	if addr.IsValid() {
		remote = addr.String()
	}
	attrs[n] = slog.String("remote_addr", remote)
	attrs[n+1] = slog.String("request_id", e.RequestID)
	rec.AddAttrs(attrs[:n+2]...)
	_ = h.Handle(ctx, rec) // as LogAttrs: a failed write is not the request's
}

// accessHandlers are the access log's handlers of one logger, one per
// method and route, each with its method and route attributes formatted
// once (slog.Handler.WithAttrs).
type accessHandlers struct {
	log *slog.Logger
	m   sync.Map // accessRoute → slog.Handler
}

type accessRoute struct{ method, route string }

// accessHandler returns s.log's handler for the access lines of method and
// route, nil for a method outside RFC 9110's and PATCH: a caller chooses
// the method of any request, and the cache must stay as small as the
// route table.
func (s *Server) accessHandler(method, route string) slog.Handler {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		return nil
	}
	c := s.access.Load()
	if c == nil || c.log != s.log { // the first request, or a test's new logger
		c = &accessHandlers{log: s.log}
		s.access.Store(c)
	}
	key := accessRoute{method, route}
	if h, ok := c.m.Load(key); ok {
		return h.(slog.Handler)
	}
	h := c.log.Handler().WithAttrs([]slog.Attr{slog.String("method", method), slog.String("route", route)})
	c.m.Store(key, h)
	return h
}

// drainRequest, during a shutdown, counts the request and has its
// connection closed after the response, so that the client's next request
// opens a connection, which a load balancer sends to another replica:
// no request is sent on a connection the server is about to close.
func (s *Server) drainRequest(w http.ResponseWriter) {
	if s.drain.draining.Load() {
		s.drain.requests.Add(1)
		w.Header().Set("Connection", "close")
	}
}

// corsPolicy is the CORS (Fetch standard) answer of each endpoint:
// discovery and JWKS are public and credential-less, readable from any
// origin; the token endpoint only from the configured origins; everything
// else (the management API) from none.
type corsPolicy struct {
	tokenOrigins []string // exact origins, such as https://app.example.com
}

// corsPublic are the paths any origin may GET.
var corsPublic = []string{oauth.PathASMetadata, oauth.PathOpenIDConfig, oauth.PathJWKS}

// corsToken are the token endpoint's paths.
var corsToken = []string{oauth.PathToken, oauth.PathTokenLegacy}

// parseOrigins reads a comma-separated list of origins: scheme://host[:port],
// nothing else.
func parseOrigins(list string) ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, errors.New("must be comma-separated origins such as https://app.example.com (scheme, host and port only)")
		}
		out = append(out, strings.ToLower(o))
	}
	return out, nil
}

func newCORSPolicy(list string) (corsPolicy, error) {
	origins, err := parseOrigins(list)
	return corsPolicy{tokenOrigins: origins}, err
}

// handler adds the CORS headers and answers preflight requests (OPTIONS
// with Access-Control-Request-Method) of the CORS-enabled paths.
func (p corsPolicy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		switch {
		case slices.Contains(corsPublic, r.URL.Path):
			w.Header().Set("Access-Control-Allow-Origin", "*")
			if preflight {
				p.answerPreflight(w, "GET, HEAD", "")
				return
			}
		case slices.Contains(corsToken, r.URL.Path) && len(p.tokenOrigins) > 0:
			w.Header().Add("Vary", "Origin")
			origin := r.Header.Get("Origin")
			if origin == "" || !slices.Contains(p.tokenOrigins, strings.ToLower(origin)) {
				break
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			if preflight {
				// Client authentication by Basic header or form body;
				// never cookies, so no Allow-Credentials.
				p.answerPreflight(w, "POST", "Authorization, Content-Type")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (corsPolicy) answerPreflight(w http.ResponseWriter, methods, headers string) {
	w.Header().Set("Access-Control-Allow-Methods", methods)
	if headers != "" {
		w.Header().Set("Access-Control-Allow-Headers", headers)
	}
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
