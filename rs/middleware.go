package rs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/m2mauth/m2mauth/dpop"
)

// authInfo is what Middleware stores in the request context.
type authInfo struct {
	claims *Claims
	offer  offer // for RequireScope's challenges
}

type contextKey struct{}

// ClaimsFromContext returns the claims Middleware stored in ctx, and whether
// there were any.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	info, ok := ctx.Value(contextKey{}).(*authInfo)
	if !ok {
		return nil, false
	}
	return info.claims, true
}

// Middleware admits requests that carry a valid access token in the
// Authorization header and meet the token's sender constraint and the
// Validator's Policy, and puts the token's Claims in the request context,
// where ClaimsFromContext finds them. Tokens in query strings or form bodies
// (RFC 6750 §2.2, §2.3) are not read. Schemes are matched
// case-insensitively:
//   - "Bearer" (RFC 6750 §2.1): a bearer token, accepted unless the policy
//     is SenderConstrained, or a certificate-bound token (cnf.x5t#S256)
//     over a connection with that certificate (RFC 8705 §3);
//   - "DPoP" (RFC 9449 §7.1): a DPoP-bound token (cnf.jkt) with one DPoP
//     header holding a proof by that key for this request's method and URL
//     (Config.ExternalURL), with the token's ath, an iat within
//     Config.DPoP.MaxAge, a jti never seen before and, with
//     Config.DPoP.Nonces, the current nonce.
//
// A DPoP-bound token presented as Bearer is refused. Other requests are
// refused with WWW-Authenticate challenges, a Bearer one (realm
// Config.Audience; omitted when the policy is SenderConstrained and
// Config.MTLS is not set, as no token is then acceptable under Bearer)
// followed by a DPoP one with the accepted algs (RFC 9449 §7.1), each with
// resource_metadata when Config.ResourceMetadataURL is set (RFC 9728 §5.1),
// and a JSON body {"error", "error_description"} (RFC 6750 §3, §3.1). The
// error goes on the challenge of the scheme the request used:
//   - no Authorization header, or another scheme: 401, no error code;
//   - a malformed Bearer or DPoP header, or several Authorization
//     headers: 400 invalid_request;
//   - a token Validate rejects, or whose sender constraint is not met:
//     401 invalid_token, with the reason as error_description;
//   - a DPoP proof that is missing, malformed or wrong: 401
//     invalid_dpop_proof; without the current nonce, 401 use_dpop_nonce
//     with a DPoP-Nonce header;
//   - in introspection mode, a token the issuer could not be asked about
//     (ErrIntrospectionUnavailable), or a DPoP replay store that fails:
//     503 temporarily_unavailable with Retry-After and no challenge.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, proof, sc, err := v.authenticate(r)
		if err != nil {
			v.refuse(w, r, sc, err)
			return
		}
		if n := v.dpop.nonces; n != nil && proof != nil {
			// RFC 9449 §8.2, §9: a fresh nonce before the client's expires.
			if cur := n.Current(); cur != proof.Nonce {
				w.Header().Set("DPoP-Nonce", cur)
			}
		}
		ctx := context.WithValue(r.Context(), contextKey{}, &authInfo{claims: claims, offer: v.offer(sc)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authenticate checks the request's credentials under v's policy. It
// returns the claims and, for the DPoP scheme, the proof; or an error for
// refuse, with the scheme the request used.
func (v *Validator) authenticate(r *http.Request) (*Claims, *dpop.Proof, scheme, error) {
	sc, token, err := parseAuthorization(r.Header)
	if err != nil {
		return nil, nil, sc, err
	}
	claims, err := v.Validate(r.Context(), token)
	if err != nil {
		return nil, nil, sc, err
	}
	proof, err := v.checkSenderConstraint(r.Context(), r, v.policy, sc, token, claims)
	if err != nil {
		return nil, nil, sc, err
	}
	return claims, proof, sc, nil
}

// refuse answers a request authenticate refused; this is where its errors
// become statuses and challenges.
func (v *Validator) refuse(w http.ResponseWriter, r *http.Request, sc scheme, err error) {
	o := v.offer(sc)
	if n := v.dpop.nonces; n != nil {
		o.nonce = n.Current()
	}
	if errors.Is(err, ErrIntrospectionUnavailable) {
		// Logged by the introspector.
		writeUnavailable(w, "the token could not be checked with the authorization server; try again")
		return
	}
	if !isRefusal(err) {
		// The token may be fine: the replay store could not answer. Fail
		// closed, without blaming the client.
		v.log.WarnContext(r.Context(), "rs: request not authenticated: server error", "error", err)
		writeUnavailable(w, "the request could not be checked; try again")
		return
	}
	v.log.DebugContext(r.Context(), "rs: token rejected", "error", err)
	c := challenge{status: http.StatusUnauthorized}
	switch {
	case errors.Is(err, errNoToken):
		c.description = "bearer token required"
		if v.policy == SenderConstrained {
			c.description = "sender-constrained access token required"
		}
	case errors.Is(err, errMalformed), errors.Is(err, errMultiple):
		c.status, c.code, c.description = http.StatusBadRequest, "invalid_request", err.Error()
	case errors.Is(err, dpop.ErrUseNonce):
		pe, _ := errors.AsType[*proofError](err)
		c.code, c.description = "use_dpop_nonce", pe.description()
		o.on = schemeDPoP
	case errors.Is(err, dpop.ErrInvalidProof):
		pe, _ := errors.AsType[*proofError](err)
		c.code, c.description = "invalid_dpop_proof", pe.description()
		o.on = schemeDPoP
	default:
		c.code, c.description = "invalid_token", ErrInvalidToken.Error()
		if te, ok := errors.AsType[*tokenError](err); ok {
			c.description = te.description()
		}
	}
	writeChallenge(w, o, c)
}

// isRefusal reports whether err, from authenticate, is the client's fault:
// a 400 or 401, not a 503.
func isRefusal(err error) bool {
	if _, ok := errors.AsType[*tokenError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*proofError](err); ok {
		return true
	}
	return errors.Is(err, errNoToken) || errors.Is(err, errMalformed) || errors.Is(err, errMultiple)
}

// offer returns the challenges v's refusals carry, the error on the one of
// scheme sc.
func (v *Validator) offer(sc scheme) offer {
	return offer{
		realm:       v.audience,
		metadataURL: v.metadataURL,
		bearer:      v.policy == BearerAllowed || v.mtls != nil,
		dpop:        true,
		algs:        v.dpop.challengeAlgs,
		on:          sc,
	}
}

// RequireScope returns middleware that admits a request only if the claims
// Middleware stored in its context include every one of scopes. Otherwise it
// answers 403 insufficient_scope with the scopes in the challenge's scope
// attribute (RFC 6750 §3.1). A request without claims, because Middleware
// does not run before it, gets 401.
//
// RequireScope panics if scopes is empty or one is not an RFC 6749 §3.3
// scope-token: that is a programming error, found at start-up.
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	if len(scopes) == 0 {
		panic("rs: RequireScope needs at least one scope")
	}
	for _, s := range scopes {
		if !isScopeToken(s) {
			panic(fmt.Sprintf("rs: RequireScope: %q is not a scope-token (RFC 6749 §3.3)", s))
		}
	}
	scopes = slices.Clone(scopes)
	needed := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, ok := r.Context().Value(contextKey{}).(*authInfo)
			if !ok {
				writeChallenge(w, offer{bearer: true}, challenge{status: http.StatusUnauthorized, description: "bearer token required"})
				return
			}
			for _, s := range scopes {
				if !info.claims.HasScope(s) {
					writeChallenge(w, info.offer, challenge{
						status:      http.StatusForbidden,
						code:        "insufficient_scope",
						description: "token lacks scope " + needed,
						scope:       needed,
					})
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Errors of parseAuthorization.
var (
	errNoToken   = errors.New("no bearer token")
	errMalformed = errors.New("malformed Authorization header")
	errMultiple  = errors.New("more than one Authorization header")
)

// parseAuthorization extracts the scheme and token from the Authorization
// header: "Bearer" 1*SP b64token (RFC 6750 §2.1) or "DPoP" 1*SP token68
// (RFC 9449 §7.1, the same characters). It returns errNoToken if there is
// no such header or it names another scheme, errMultiple if there are
// several, and errMalformed if the credentials are not a b64token.
func parseAuthorization(h http.Header) (scheme, string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return schemeBearer, "", errNoToken
	case 1:
	default:
		return schemeBearer, "", errMultiple
	}
	name, rest, _ := strings.Cut(values[0], " ")
	var sc scheme
	switch {
	case strings.EqualFold(name, "Bearer"):
		sc = schemeBearer
	case strings.EqualFold(name, "DPoP"):
		sc = schemeDPoP
	default:
		return schemeBearer, "", errNoToken
	}
	token := strings.TrimLeft(rest, " ")
	if !isB64Token(token) {
		return sc, "", errMalformed
	}
	return sc, token, nil
}

// bearerToken is parseAuthorization for the Bearer scheme alone: another
// scheme, DPoP included, is errNoToken.
func bearerToken(h http.Header) (string, error) {
	sc, token, err := parseAuthorization(h)
	if sc != schemeBearer {
		return "", errNoToken
	}
	return token, err
}

// isB64Token reports whether s matches RFC 6750 §2.1's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// isScopeToken reports whether s matches RFC 6749 §3.3's
// scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); such a token needs no
// escaping inside a quoted WWW-Authenticate attribute.
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// challenge is a refusal, written by writeChallenge.
type challenge struct {
	status      int
	code        string // RFC 6750 §3.1 / RFC 9449 §7.1 error code; empty when no token was sent
	description string // written by this package; never holds the token
	scope       string // for insufficient_scope
}

// offer is the set of challenges a refusal carries.
type offer struct {
	realm       string // may be empty
	metadataURL string // resource_metadata (RFC 9728 §5.1); may be empty
	bearer      bool   // a Bearer challenge (RFC 6750 §3)
	dpop        bool   // a DPoP challenge (RFC 9449 §7.1) ...
	algs        string // ... with these algs
	on          scheme // the challenge that carries the error, if offered
	nonce       string // a DPoP-Nonce header (RFC 9449 §9); may be empty
}

// writeChallenge writes c as WWW-Authenticate challenges (RFC 6750 §3,
// RFC 9449 §7.1), one header field per scheme, Bearer first, and a JSON
// body; this is the one place refusals are written. The error attributes go
// on the challenge of o.on, or on the only one offered.
func writeChallenge(w http.ResponseWriter, o offer, c challenge) {
	on := o.on
	if on == schemeBearer && !o.bearer {
		on = schemeDPoP
	}
	if on == schemeDPoP && !o.dpop {
		on = schemeBearer
	}
	build := func(name string, sc scheme) string {
		var params []string
		add := func(name, value string) {
			if value != "" {
				params = append(params, name+"="+quote(value))
			}
		}
		add("realm", o.realm)
		if sc == schemeDPoP {
			add("algs", o.algs)
		}
		// RFC 6750 §3.1: no error information when the request had no token.
		if c.code != "" && sc == on {
			add("error", c.code)
			add("error_description", c.description)
			add("scope", c.scope)
		}
		add("resource_metadata", o.metadataURL)
		if len(params) == 0 {
			return name
		}
		return name + " " + strings.Join(params, ", ")
	}

	body, _ := json.Marshal(struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description"`
		Scope       string `json:"scope,omitempty"`
	}{c.code, c.description, c.scope})

	h := w.Header()
	if o.bearer {
		h.Add("WWW-Authenticate", build("Bearer", schemeBearer))
	}
	if o.dpop {
		h.Add("WWW-Authenticate", build("DPoP", schemeDPoP))
	}
	if o.nonce != "" {
		h.Set("DPoP-Nonce", o.nonce)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(c.status)
	_, _ = w.Write(append(body, '\n'))
}

// quote renders s as an RFC 9110 §5.6.4 quoted-string, dropping the control
// characters a quoted-string cannot carry.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t' || (c >= 0x20 && c != 0x7f):
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
