package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientip"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/limits"
	"github.com/m2mauth/m2mauth/internal/quota"
	"github.com/m2mauth/m2mauth/internal/reqlog"
	"github.com/m2mauth/m2mauth/internal/token"
)

// ClientSource looks up the application behind a client_id with its
// secrets and grants: the token endpoint's one read. Its method is
// token.ClientSource's, so that introspection's liveness check
// (token.Checker) reads through the same source.
type ClientSource interface {
	// Client returns an error wrapping authz.ErrNotFound if no application
	// has clientID, and one wrapping authz.ErrUnavailable if the store
	// cannot be reached (answered 503 with Retry-After; any other error is
	// a 500).
	Client(ctx context.Context, clientID string) (*authz.Client, error)
}

// Events receives what the protocol endpoints observe, for the audit log,
// the secrets' last use and issuance counters. Implementations must not
// block: they run on the token endpoint's hot path.
type Events interface {
	// ClientAuthFailed reports a failed client authentication; reason is
	// for the audit log and never holds the presented secret.
	ClientAuthFailed(ctx context.Context, clientID, remoteAddr, reason string)
	// SecretUsed reports a successful authentication with secret id.
	SecretUsed(clientID, secretID string, at time.Time)
	// CredentialUsed reports a successful authentication with credential
	// id (private_key_jwt, federated), for its last use.
	CredentialUsed(clientID, credentialID string, at time.Time)
	// FederatedAuthenticated reports an application authenticated by a
	// trusted issuer's JWT (federated credential credentialID), for the
	// audit log: the external issuer (iss, or the SPIFFE trust domain) and
	// subject (sub) it presented, never the JWT.
	FederatedAuthenticated(ctx context.Context, clientID, credentialID, issuer, subject, remoteAddr string)
	// TokenIssued reports one access token issued; quota: it was counted
	// against an hourly or daily quota (quota.Decision.Counted).
	TokenIssued(clientID, audience, jti string, at time.Time, quota bool)
	// TokenRevoked reports an application revoking one of its own tokens
	// (RFC 7009), for the audit log.
	TokenRevoked(ctx context.Context, clientID, jti, audience, remoteAddr string)
}

// Server serves the OAuth endpoints. Build it with every field set; it is
// safe for concurrent use.
type Server struct {
	Clients ClientSource
	Hasher  *clientsecret.Hasher
	Issuer  *token.Issuer
	Now     func() time.Time
	Log     *slog.Logger
	Events  Events // nil: nothing is reported
	// DenyList holds the revoked tokens; HandleIntrospect and HandleRevoke
	// need it.
	DenyList DenyList
	// RevocationCap bounds the revocations each client makes at
	// HandleRevoke (429 over it); nil: no cap.
	RevocationCap RevocationCap
	// ClientIP tells the client's address behind trusted proxies, for the
	// audit log and every limit; nil: the connection's peer.
	ClientIP *clientip.Resolver
	// Limiter holds back repeated failed client authentications (429)
	// before any hash or store work; nil: no limit.
	Limiter *limits.Limiter
	// Quota applies each application's rate and quotas (429) and sets the
	// rate-limit headers; nil: no per-application limits.
	Quota *quota.Limiter
	// Metrics counts token requests; nil: none are counted.
	Metrics TokenMetrics
	// Reuse holds the tokens of applications and APIs that opted in to
	// token reuse (authz.TokenReuse, docs/token-reuse.md); nil: every
	// request gets a new token, whatever their setting.
	Reuse *ReuseCache

	// ClientAuth are the client authentication methods the token,
	// introspection and revocation endpoints accept, and discovery lists;
	// nil: SecretAuthenticators. Set it before the first request.
	ClientAuth []ClientAuthenticator
	// FederatedLifetimeFull gives a token issued on a trusted issuer's JWT
	// (federated_jwt, spiffe_jwt) the API's full lifetime; false (the
	// default): it expires no later than that JWT.
	FederatedLifetimeFull bool

	// DPoPAlgs are the algorithms DPoP proofs may be signed with (RFC
	// 9449), each one of dpop.SupportedAlgs; empty: dpop.DefaultAlgs.
	DPoPAlgs []string
	// DPoPReplay records the jti of every accepted DPoP proof (the store's
	// authz.Replay, shared by every replica, as for client assertions); a
	// token request with a proof is a server error without it.
	DPoPReplay ReplayStore
	// DPoPNonces are the server nonces (RFC 9449 §8) of the APIs that
	// require them (authz.API.DPoPNonce); required if any does. Replicas
	// keyed alike accept each other's nonces.
	DPoPNonces *dpop.Nonces

	hashes      atomic.Uint64 // client secrets hashed, for HashesComputed
	defaultOnce sync.Once
	defaultAuth []ClientAuthenticator

	// verified caches the tokens introspection verified
	// (introspectcache.go); made on first use.
	verified atomic.Pointer[verifiedTokens]
}

// clientAddr is the address of the client of r, as text ("" if unknown).
func (s *Server) clientAddr(r *http.Request) string { return s.ClientIP.String(r) }

// tokenRequest is a parsed client credentials token request.
type tokenRequest struct {
	creds      credentials
	grantType  string // as sent; "" if absent
	audience   string // from audience or resource; "" if neither
	scopes     []string
	scopeGiven bool
}

// tokenResponse is the successful response of RFC 6749 §5.1, as
// writeTokenResponse writes it.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// HandleToken serves POST /oauth/token: the client credentials grant
// (RFC 6749 §4.4) and the JWT bearer grant (RFC 7523 §2.1), which
// authenticates the client by its assertion and is then the same. The
// pipeline is parse → authenticate → authorize → issue; any step's
// failure is written by writeFailure and nothing is stored.
func (s *Server) HandleToken(w http.ResponseWriter, r *http.Request) {
	req, e := parseTokenRequest(w, r)
	if e != nil {
		s.writeFailure(w, e, req.creds, "issue a token")
		s.countToken(req, tokenOutcome{}, e)
		return
	}
	var out tokenOutcome
	err := s.clientCredentials(w, r, req, &out)
	if err != nil {
		s.writeFailure(w, err, req.creds, "issue a token")
	}
	s.countToken(req, out, err)
}

// clientCredentials authenticates the client of a parsed token request,
// authorizes it and issues the token. out learns, for the metrics, the
// client once it authenticated and the API once it is authorized.
func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request, req tokenRequest, out *tokenOutcome) error {
	got, err := s.authenticate(r, req.creds)
	if err != nil {
		return grantRefusal(req, err)
	}
	client := got.client
	out.clientID = client.Application.ClientID
	iss, api, e := authorize(client, req)
	out.audience = iss.Audience
	if e == nil && !got.notAfter.IsZero() && !s.FederatedLifetimeFull {
		// The token never outlives the JWT it was issued on: whole seconds
		// left, as token.Issuer counts exp from the second of issue. The
		// method refused a JWT with less than a second left.
		iss.Lifetime = min(iss.Lifetime, got.notAfter.Sub(s.Now()).Truncate(time.Second))
		if iss.Lifetime < time.Second {
			return grantRefusal(req, clientAuthFailed())
		}
	}
	if e != nil {
		if s.Quota != nil {
			s.rateLimitHeaders(w, s.Quota.Peek(&client.Application))
		}
		return e
	}
	// Sender constraints and the API's profile (sender.go), before the
	// quota: a nonce retry (RFC 9449 §8) must not cost the client a token.
	if err := s.bindToken(w, r, req, got, api, &iss); err != nil {
		return err
	}
	if window := s.reuseWindow(client, api, &iss); window > 0 {
		return s.issueOrReuse(w, client, got, iss, window)
	}
	var counted bool
	if s.Quota != nil {
		var err error
		if counted, err = s.takeQuota(w, &client.Application); err != nil {
			return err
		}
	}
	return s.issue(w, iss, counted)
}

// issueOrReuse answers a token request authorized as iss, under token
// reuse with min_remaining window (seconds): the cached token of the same
// client, audience, scopes and sender-constraint key if it may still be
// answered (ReuseCache.get), with expires_in its true remaining lifetime
// (exp − now, RFC 6749 §5.1), and no signature; else a new token, which
// is cached. Everything before (client authentication, the DPoP proof, its
// nonce and replay check, the failure limiter) has run as for any
// request, and the application's rate applies to a hit too; its hourly
// and daily quotas count issued tokens only, so a hit is not counted, nor
// reported as issued (Events.TokenIssued).
func (s *Server) issueOrReuse(w http.ResponseWriter, client *authz.Client, got authenticated, iss token.Request, window int64) error {
	bp := reuseKeys.Get().(*[]byte)
	key := appendReuseKey((*bp)[:0], &iss)
	defer func() {
		if cap(key) <= 4<<10 {
			*bp = key[:0]
			reuseKeys.Put(bp)
		}
	}()
	now := s.Now().Unix()
	var notAfter int64
	if !got.notAfter.IsZero() && !s.FederatedLifetimeFull {
		notAfter = got.notAfter.Unix()
	}
	// The kid is read before signing: should the key rotate between the
	// two, the entry names the older kid and its first hit misses.
	kid := s.Issuer.ActiveKID(iss.Alg)
	hit, ok, found := s.Reuse.get(key, client, kid, now, notAfter, s.DenyList)
	if ok {
		if s.Quota != nil {
			if err := s.takeRate(w, &client.Application); err != nil {
				return err
			}
		}
		s.Reuse.lookup(ReuseHit)
		writeTokenResponse(w, hit.token, hit.typ, hit.exp-now, hit.scope)
		return nil
	}
	if found {
		s.Reuse.lookup(ReuseInvalidated)
	} else {
		s.Reuse.lookup(ReuseMiss)
	}
	var counted bool
	if s.Quota != nil {
		var err error
		if counted, err = s.takeQuota(w, &client.Application); err != nil {
			return err
		}
	}
	tok, claims, err := s.mint(iss, counted)
	if err != nil {
		return err
	}
	typ := tokenType(claims.Confirmation)
	// claims.Scope may be the request's own scope string (strings.Join
	// of one), a substring of a body that can hold the client secret: the
	// entry keeps a copy. The token and jti are the Issuer's own memory.
	s.Reuse.put(key, reuseEntry{client: client, kid: kid, token: tok, typ: typ, scope: strings.Clone(claims.Scope), jti: claims.JTI,
		iat: claims.IssuedAt, exp: claims.Expiry, deadline: claims.Expiry - window}, now)
	writeTokenResponse(w, tok, typ, claims.Expiry-claims.IssuedAt, claims.Scope)
	return nil
}

// grantRefusal is err as the grant of req answers it: a failed client
// authentication of the jwt-bearer grant is invalid_grant (RFC 7523 §3.1),
// since the assertion is the grant.
func grantRefusal(req tokenRequest, err error) error {
	if e, ok := errors.AsType[*Error](err); ok && e.Code == ErrInvalidClient && req.grantType == GrantTypeJWTBearer {
		return &Error{Code: ErrInvalidGrant, Description: "the assertion was refused", Status: http.StatusBadRequest}
	}
	return err
}

// parseTokenRequest reads and checks a token request (RFC 6749 §4.4.2).
// With an error, req.creds holds what readCredentials saw, if it ran.
func parseTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, *Error) {
	var buf [8]param // a token request's parameters, on the stack
	p, e := readParams(w, r, buf[:0])
	if e != nil {
		return tokenRequest{}, e
	}
	var req tokenRequest
	gt, e := p.get("grant_type")
	if e != nil {
		return req, e
	}
	req.grantType = gt
	switch gt {
	case "":
		return req, invalidRequest("grant_type is required")
	case "client_credentials":
		if req.creds, e = readCredentials(r, p); e != nil {
			return req, e
		}
	case GrantTypeJWTBearer:
		if req.creds, e = readBearerGrant(r, p); e != nil {
			return req, e
		}
	default:
		return req, &Error{Code: ErrUnsupportedGrantType, Description: "grant_type must be client_credentials or " + GrantTypeJWTBearer, Status: http.StatusBadRequest}
	}
	aud, e := p.get("audience")
	if e != nil {
		return req, e
	}
	// RFC 8707 §2: resource may be repeated; one token serves one API here.
	// An empty value counts as omitted (RFC 6749 §3.2).
	var res string
	for v := range p.values("resource") {
		if v == "" {
			continue
		}
		if !absoluteURI(v) {
			return req, &Error{Code: ErrInvalidTarget, Description: "resource must be an absolute URI without a fragment (RFC 8707 section 2); use audience for other identifiers", Status: http.StatusBadRequest}
		}
		if res != "" && v != res {
			return req, &Error{Code: ErrInvalidTarget, Description: "one token is issued for one resource; ask for each separately", Status: http.StatusBadRequest}
		}
		res = v
	}
	if aud != "" && res != "" && aud != res {
		return req, invalidRequest("audience and resource name different APIs")
	}
	req.audience = aud
	if req.audience == "" {
		req.audience = res
	}
	scope, e := p.get("scope")
	if e != nil {
		return req, e
	}
	if req.scopeGiven = p.has("scope"); req.scopeGiven {
		var ok bool
		if req.scopes, ok = parseScope(scope); !ok {
			return req, &Error{Code: ErrInvalidScope, Description: "scope holds a character RFC 6749 section 3.3 does not allow", Status: http.StatusBadRequest}
		}
		req.scopeGiven = len(req.scopes) > 0
	}
	return req, nil
}

// absoluteURI reports whether s is an absolute URI without a fragment, as
// RFC 8707 §2 requires of a resource.
func absoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && !strings.Contains(s, "#")
}

// clientAuthFailed is the one answer to every failed client authentication
// (RFC 6749 §5.2): which check failed is for the audit log, not the caller.
func clientAuthFailed() *Error {
	return &Error{Code: ErrInvalidClient, Description: "client authentication failed", Status: http.StatusUnauthorized}
}

// authenticateClient authenticates the client of a request with the
// registered ClientAuthenticator of the method its credentials use, and
// then checks that the application is enabled and that its policy allows
// the client's address. First, before any hash or store work and whatever
// the method, the limiter may refuse the attempt (429
// temporarily_unavailable with Retry-After: too many failures of this
// client_id from this address, of this address, or of this client_id
// everywhere). A failed authentication is an *Error (401 invalid_client);
// a store that cannot answer is its error, wrapped.
func (s *Server) authenticateClient(r *http.Request, c credentials) (*authz.Client, error) {
	got, err := s.authenticate(r, c)
	return got.client, err
}

// authenticate is authenticateClient, returning all the method
// established.
func (s *Server) authenticate(r *http.Request, c credentials) (authenticated, error) {
	addr := s.ClientIP.Addr(r)
	reqlog.SetClientAddr(r.Context(), addr) // the access log's remote_addr
	var attempt limits.Attempt
	if s.Limiter != nil {
		limitID := c.clientID
		if !validClientID(limitID) {
			limitID = "" // counted against the address only
		}
		a, retryAfter, ok := s.Limiter.Allow(limitID, addr)
		if !ok {
			if s.Events != nil {
				s.Events.ClientAuthFailed(r.Context(), "", addrText(addr), ReasonLimited)
			}
			return authenticated{}, tooManyFailures(retryAfter)
		}
		attempt = a
	}
	fail := func(reason string) error {
		id := loggableClientID(c.clientID)
		attempt.Failed(id)
		if s.Events != nil {
			s.Events.ClientAuthFailed(r.Context(), id, addrText(addr), reason)
		}
		// Info-level lines come sampled from the audit recorder (one per
		// client_id and address per interval); each failure is debug.
		s.Log.Debug("client authentication failed", "client_id", id, "method", c.method, "reason", reason)
		return clientAuthFailed()
	}
	if !validClientID(c.clientID) {
		return authenticated{}, fail("malformed client_id")
	}
	method := s.authenticator(c.method)
	if method == nil {
		return authenticated{}, fail("client authentication method not enabled")
	}
	got, err := method.authenticate(r.Context(), c)
	if f, ok := errors.AsType[authFailure](err); ok {
		return authenticated{}, fail(string(f))
	}
	if err != nil {
		return authenticated{}, err
	}
	client := got.client
	if client.Application.Disabled {
		return authenticated{}, fail("application disabled")
	}
	if !client.Application.Policy.AllowsAddr(addr) { // after the method's check: see docs/policy.md
		return authenticated{}, fail(ReasonSourceNotAllowed)
	}
	attempt.Succeeded()
	reqlog.SetClientID(r.Context(), client.Application.ClientID) // for the access log
	if s.Events != nil {
		switch {
		case got.secretID != "":
			s.Events.SecretUsed(client.Application.ClientID, got.secretID, s.Now())
		case got.credentialID != "":
			s.Events.CredentialUsed(client.Application.ClientID, got.credentialID, s.Now())
		}
		if got.issuer != "" {
			s.Events.FederatedAuthenticated(r.Context(), client.Application.ClientID, got.credentialID, got.issuer, got.subject, addrText(addr))
		}
	}
	return got, nil
}

// authorize picks the API (audience) and the scopes to issue: the audience
// asked for (RFC 8707), or the one granted API that fits the scopes asked;
// the scopes asked, each granted, or every granted scope if none were asked
// (RFC 6749 §3.3).
func authorize(c *authz.Client, req tokenRequest) (token.Request, *authz.API, *Error) {
	var cg *authz.ClientGrant
	if req.audience != "" {
		for i := range c.Grants {
			if c.Grants[i].API.Identifier == req.audience {
				cg = &c.Grants[i]
				break
			}
		}
		if cg == nil {
			return token.Request{}, nil, &Error{Code: ErrInvalidTarget, Description: "the application has no grant for audience " + strconv.Quote(req.audience), Status: http.StatusBadRequest}
		}
	} else {
		var fits []*authz.ClientGrant
		for i := range c.Grants {
			if definesAll(c.Grants[i].API, req.scopes) {
				fits = append(fits, &c.Grants[i])
			}
		}
		if len(fits) != 1 {
			return token.Request{}, nil, invalidRequest(audienceChoices(c, req, len(fits)))
		}
		cg = fits[0]
	}
	scopes := req.scopes
	if !req.scopeGiven {
		scopes = orderedGrantScopes(cg)
	} else {
		var missing []string
		for _, sc := range scopes {
			if !cg.Grant.HasScope(sc) {
				missing = append(missing, sc)
			}
		}
		if len(missing) > 0 {
			return token.Request{}, nil, &Error{Code: ErrInvalidScope, Description: "scope not granted for " + cg.API.Identifier + ": " + strings.Join(missing, " "), Status: http.StatusBadRequest}
		}
	}
	return token.Request{
		ClientID: c.Application.ClientID,
		Audience: cg.API.Identifier,
		Scopes:   scopes,
		Lifetime: authz.EffectiveTokenLifetime(&cg.Grant, cg.API),
		Alg:      cg.API.SigningAlg,
		Claims:   cg.Grant.Claims,
	}, cg.API, nil
}

func definesAll(api *authz.API, scopes []string) bool {
	for _, sc := range scopes {
		if !api.HasScope(sc) {
			return false
		}
	}
	return true
}

// orderedGrantScopes returns the grant's scopes in the API's order.
func orderedGrantScopes(cg *authz.ClientGrant) []string {
	out := make([]string, 0, len(cg.Grant.Scopes))
	for _, sc := range cg.API.Scopes {
		if cg.Grant.HasScope(sc.Value) {
			out = append(out, sc.Value)
		}
	}
	return out
}

// audienceChoices explains why no audience could be chosen, naming the
// APIs the application may ask for.
func audienceChoices(c *authz.Client, req tokenRequest, fits int) string {
	var all []string
	for _, g := range c.Grants {
		all = append(all, strconv.Quote(g.API.Identifier))
	}
	switch {
	case len(c.Grants) == 0:
		return "the application has no grants"
	case fits == 0:
		return "no granted API defines scope " + strings.Join(req.scopes, " ") + "; name the audience: one of " + strings.Join(all, ", ")
	default:
		return "audience (or resource) is required: the application is granted " + strings.Join(all, ", ")
	}
}

// issue mints the token and writes the response of RFC 6749 §5.1, with
// token_type DPoP for a DPoP-bound token (cnf.jkt, RFC 9449 §5) and Bearer
// otherwise, a certificate-bound token included (RFC 8705 §3). Returns an
// error, and writes nothing, if the token cannot be signed.
func (s *Server) issue(w http.ResponseWriter, req token.Request, quota bool) error {
	tok, claims, err := s.mint(req, quota)
	if err != nil {
		return err
	}
	writeTokenResponse(w, tok, tokenType(claims.Confirmation), claims.Expiry-claims.IssuedAt, claims.Scope)
	return nil
}

// mint signs the token of req and reports it issued (Events, the debug
// log; quota: it was counted against a quota). Returns an error if the
// token cannot be signed.
func (s *Server) mint(req token.Request, quota bool) (string, token.Claims, error) {
	tok, claims, err := s.Issuer.Issue(req)
	if err != nil {
		return "", token.Claims{}, err
	}
	if s.Events != nil {
		s.Events.TokenIssued(claims.ClientID, claims.Audience, claims.JTI, time.Unix(claims.IssuedAt, 0), quota)
	}
	// Guarded: the arguments alone cost three allocations per token.
	if s.Log.Enabled(context.Background(), slog.LevelDebug) {
		s.Log.Debug("access token issued", "client_id", claims.ClientID, "audience", claims.Audience, "jti", claims.JTI)
	}
	return tok, claims, nil
}

// Header values of the token response (writeJSON's), shared by every
// response: net/http only reads them, and setting a slice of one value
// replaces them, so a handler that changes a header after ours cannot
// change them for the next response.
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
	headerNoCache = []string{"no-cache"}
)

// tokenBodies are the buffers of token response bodies.
var tokenBodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeTokenResponse writes the successful response of RFC 6749 §5.1, as
// writeJSON would write a tokenResponse but without reflection: never
// cached (Cache-Control: no-store, Pragma: no-cache), the members in
// tokenResponse's order, scope omitted when empty, a newline at the end.
func writeTokenResponse(w http.ResponseWriter, tok, typ string, expiresIn int64, scope string) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["Cache-Control"] = headerNoStore
	h["Pragma"] = headerNoCache
	w.WriteHeader(http.StatusOK)
	bp := tokenBodies.Get().(*[]byte)
	b := append((*bp)[:0], `{"access_token":`...)
	b = appendJSONString(b, tok)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, expiresIn, 10)
	if scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, scope)
	}
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
	if cap(b) <= 16<<10 {
		*bp = b[:0]
		tokenBodies.Put(bp)
	}
}

// appendJSONString appends s to b as a JSON string (RFC 8259 §7). The
// token endpoint's strings are base64url, dots, and scope tokens of
// printable ASCII without quotation mark or reverse solidus (RFC 6749
// §3.3), so they need no escape; any other string takes encoding/json's,
// with its HTML escapes, as writeJSON would write it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonPlain marks the bytes appendJSONString copies as they are: printable
// ASCII but the quotation mark, the reverse solidus (RFC 8259 §7) and
// encoding/json's HTML escapes < > &. A table: one load per byte of a
// 500-byte access token rather than seven comparisons.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// HandleMethodNotAllowed answers a token, introspection or revocation
// endpoint request that is not a POST (RFC 6749 §3.2).
func HandleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, &Error{Code: ErrInvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed}, false)
}

// maxClientIDBytes bounds a presented client_id. m2mauth's are 26 bytes
// (authz.NewClientID).
const maxClientIDBytes = 255

// validClientID reports whether a presented client_id could name an
// application: at most maxClientIDBytes of valid UTF-8, every character
// printable. Anything else is refused before the store or the audit log
// sees it: PostgreSQL refuses NUL and invalid UTF-8 in text, so the lookup
// would fail as a database error (503), and the failed authentication's
// audit event would be refused, and with it every event written in the
// same batch.
func validClientID(id string) bool {
	if len(id) > maxClientIDBytes || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// maxLoggedClientID bounds a presented client_id in logs and the audit log,
// in bytes: it is whatever the caller sent.
const maxLoggedClientID = 64

// loggableClientID returns a presented client_id safe to log and to store
// in the audit log: a value that holds a client secret (pasted into the
// wrong field) is redacted, invalid UTF-8 and unprintable characters become
// U+FFFD, and a long one is cut, on a character boundary.
func loggableClientID(id string) string {
	if strings.Contains(id, clientsecret.Prefix) {
		return "(redacted: holds a client secret)"
	}
	var b strings.Builder
	for _, r := range id { // invalid UTF-8 yields utf8.RuneError, U+FFFD
		if !unicode.IsPrint(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > maxLoggedClientID {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
