package admin

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/reqlog"
	"github.com/m2mauth/m2mauth/internal/token"
)

// Handler serves the management API: it authenticates the bearer token,
// decodes the request, calls the management use case (internal/manage,
// where every rule lives) and encodes its answer or its error. Build it
// with every field set.
type Handler struct {
	Manage *manage.Service
	// Checker decides whether a bearer token is still good: the same
	// liveness rule as introspection (a *token.Checker).
	Checker TokenChecker
	Log     *slog.Logger
	// RemoteAddr returns the caller's address for the audit log; nil uses
	// r.RemoteAddr.
	RemoteAddr func(r *http.Request) string
}

// TokenChecker decides whether an access token this server issued is
// still good (token.Checker).
type TokenChecker interface {
	Check(ctx context.Context, tok string) (token.Result, error)
}

// Actor is the administrator making a management request.
type Actor = manage.Actor

// Func is a management endpoint: it writes its success response itself and
// returns an error to write otherwise (a *Problem, a *manage.Error, or any
// other error, which is a server failure).
type Func func(w http.ResponseWriter, r *http.Request, actor *Actor) error

// Realm is the realm of the management API's bearer challenges.
const Realm = "m2mauth-admin"

// Protect wraps fn so that it runs only for a bearer token (RFC 6750 §2.1)
// this server issued for the management API that is still live (not
// revoked, its application exists, is enabled and still granted its
// scopes: token.Checker), and that carries scope, which the application's
// management grant still includes. A missing, invalid or dead token is 401
// invalid_token; a live token without the scope is 403 insufficient_scope
// (RFC 6750 §3.1). The actor's scopes are the token's, as far as its grant
// still includes them; internal/manage checks each action against them.
func (h *Handler) Protect(scope string, fn Func) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := h.authenticate(r, scope)
		if err == nil {
			reqlog.SetClientID(r.Context(), actor.ClientID) // for the access log
			err = fn(w, r, actor)
		}
		if err != nil {
			h.writeError(w, r, err)
		}
	})
}

func (h *Handler) remoteAddr(r *http.Request) string {
	if h.RemoteAddr != nil {
		return h.RemoteAddr(r)
	}
	return r.RemoteAddr
}

func (h *Handler) authenticate(r *http.Request, scope string) (*Actor, error) {
	auth := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// RFC 6750 §3.1: no error code when the request has no token, or
		// authenticates with another scheme.
		p := bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "", "")
		p.Detail = "a bearer token for the management API is required"
		return nil, p
	}
	if tok = strings.TrimSpace(tok); tok == "" {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "the Authorization header must be Bearer <token>", "")
	}
	res, err := h.Checker.Check(r.Context(), tok)
	if err != nil {
		return nil, err // the store cannot tell: 503 or 500
	}
	if res.Inactive != "" {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, res.Inactive, "")
	}
	if res.Claims.Audience != authz.ManagementAudience {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "the token is not for the management API ("+authz.ManagementAudience+")", "")
	}
	var granted []string
	for _, g := range res.Client.Grants {
		if g.API.Identifier == authz.ManagementAudience {
			granted = g.Grant.Scopes
		}
	}
	actor := &Actor{ClientID: res.Claims.ClientID, RemoteAddr: h.remoteAddr(r)}
	for _, sc := range res.Claims.Scopes() {
		if slices.Contains(granted, sc) {
			actor.Scopes = append(actor.Scopes, sc)
		}
	}
	if !actor.Has(scope) {
		return nil, bearerProblem(http.StatusForbidden, CodeInsufficientScope, "this action needs scope "+scope, scope)
	}
	return actor, nil
}

// bearerProblem is a refusal with its RFC 6750 §3 challenge.
func bearerProblem(status int, code, detail, scope string) *Problem {
	p := problem(status, code, detail)
	ch := `Bearer realm="` + Realm + `"`
	if code != "" && detail != "" {
		ch += `, error="` + code + `", error_description=` + challengeValue(detail)
	}
	if scope != "" {
		ch += `, scope=` + challengeValue(scope)
	}
	p.header = map[string]string{"WWW-Authenticate": ch}
	return p
}

// challengeValue returns s as a quoted-string within the characters RFC
// 6750 §3 allows in error_description and scope (%x20-21 / %x23-5B /
// %x5D-7E): a double quote becomes a single one, any other character
// outside the set a question mark. So no quote or backslash in s (a
// verification error may quote what the token held) can end the string
// early or escape its closing quote.
func challengeValue(s string) string {
	return `"` + strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r < 0x20 || r > 0x7e || r == '\\':
			return '?'
		}
		return r
	}, s) + `"`
}
