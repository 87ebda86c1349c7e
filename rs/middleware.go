package rs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// authInfo is what Middleware stores in the request context.
type authInfo struct {
	claims *Claims
	realm  string // for RequireScope's challenges
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
// Authorization header (RFC 6750 §2.1; the scheme "Bearer" is matched
// case-insensitively) and puts the token's Claims in the request context,
// where ClaimsFromContext finds them. Tokens in query strings or form bodies
// (RFC 6750 §2.2, §2.3) are not read.
//
// Other requests are refused with a WWW-Authenticate challenge whose realm is
// Config.Audience, and a JSON body {"error", "error_description"}
// (RFC 6750 §3, §3.1):
//   - no Authorization header, or another scheme: 401, no error code;
//   - a malformed Bearer header, or several Authorization headers: 400
//     invalid_request;
//   - a token Validate rejects: 401 invalid_token, with the reason as
//     error_description;
//   - in introspection mode, a token the issuer could not be asked about
//     (ErrIntrospectionUnavailable): 503 temporarily_unavailable with
//     Retry-After and no challenge.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := bearerToken(r.Header)
		switch {
		case errors.Is(err, errNoToken):
			writeError(w, v.audience, challenge{status: http.StatusUnauthorized, description: "bearer token required"})
			return
		case err != nil:
			writeError(w, v.audience, challenge{status: http.StatusBadRequest, code: "invalid_request", description: err.Error()})
			return
		}
		claims, err := v.Validate(r.Context(), token)
		if errors.Is(err, ErrIntrospectionUnavailable) {
			writeUnavailable(w)
			return
		}
		if err != nil {
			v.log.DebugContext(r.Context(), "rs: token rejected", "error", err)
			c := challenge{status: http.StatusUnauthorized, code: "invalid_token", description: ErrInvalidToken.Error()}
			if te, ok := errors.AsType[*tokenError](err); ok {
				c.description = te.description()
			}
			writeError(w, v.audience, c)
			return
		}
		ctx := context.WithValue(r.Context(), contextKey{}, &authInfo{claims: claims, realm: v.audience})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
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
				writeError(w, "", challenge{status: http.StatusUnauthorized, description: "bearer token required"})
				return
			}
			for _, s := range scopes {
				if !info.claims.HasScope(s) {
					writeError(w, info.realm, challenge{
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

// Errors of bearerToken.
var (
	errNoToken   = errors.New("no bearer token")
	errMalformed = errors.New("malformed Authorization header")
	errMultiple  = errors.New("more than one Authorization header")
)

// bearerToken extracts the token from the Authorization header (RFC 6750
// §2.1: "Bearer" 1*SP b64token). It returns errNoToken if there is no such
// header or it names another scheme, errMultiple if there are several, and
// errMalformed if the Bearer credentials are not a b64token.
func bearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", errNoToken
	case 1:
	default:
		return "", errMultiple
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken
	}
	token := strings.TrimLeft(rest, " ")
	if !isB64Token(token) {
		return "", errMalformed
	}
	return token, nil
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

// challenge is a refusal, written by writeError.
type challenge struct {
	status      int
	code        string // RFC 6750 §3.1 error code; empty when no token was sent
	description string // written by this package; never holds the token
	scope       string // for insufficient_scope
}

// writeError writes c as a WWW-Authenticate: Bearer challenge (RFC 6750 §3)
// and a JSON body; this is the one place refusals are written. realm may be
// empty.
func writeError(w http.ResponseWriter, realm string, c challenge) {
	var params []string
	add := func(name, value string) {
		if value != "" {
			params = append(params, name+"="+quote(value))
		}
	}
	add("realm", realm)
	// RFC 6750 §3.1: no error information when the request had no token.
	if c.code != "" {
		add("error", c.code)
		add("error_description", c.description)
		add("scope", c.scope)
	}
	header := "Bearer"
	if len(params) > 0 {
		header += " " + strings.Join(params, ", ")
	}

	body, _ := json.Marshal(struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description"`
		Scope       string `json:"scope,omitempty"`
	}{c.code, c.description, c.scope})

	w.Header().Set("WWW-Authenticate", header)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
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
