package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/token"
)

// Verifier checks access tokens this server issued.
type Verifier interface {
	// Verify returns the token's claims or an error that says why it is
	// not valid (never containing the token).
	Verify(token string) (*token.Claims, error)
}

// KeyEnsurer creates signing keys for an algorithm an API chooses.
type KeyEnsurer interface {
	Ensure(ctx context.Context, alg string) error
}

// Auditor records audit events. Record must not block on the database
// for long; it keeps what it cannot write yet and writes it later.
type Auditor interface {
	Record(ctx context.Context, e authz.AuditEvent)
}

// Handler serves the management API. Build it with every field set.
type Handler struct {
	Store      authz.Store
	Hasher     *clientsecret.Hasher
	Verifier   Verifier
	Keys       KeyEnsurer
	Audit      Auditor
	DefaultAlg string // signing_alg of APIs created without one
	Now        func() time.Time
	Rand       io.Reader
	Log        *slog.Logger
	DenyList   DenyList // revoked tokens, by jti

	// SigningKeys lists and rotates the signing keys (/admin/v1/keys).
	SigningKeys KeyManager
}

// audit records a management action by actor on target. details must hold
// no secret and no token; it is stored as a JSON object.
func (h *Handler) audit(r *http.Request, actor *Actor, action, target string, details map[string]any) {
	e := authz.AuditEvent{Time: h.now(), Actor: actor.ClientID, Action: action, Target: target, RemoteAddr: actor.RemoteAddr}
	if len(details) > 0 {
		b, err := json.Marshal(details)
		if err == nil {
			e.Details = string(b)
		}
	}
	h.Log.Info("management action", "actor", actor.ClientID, "action", action, "target", target)
	h.Audit.Record(r.Context(), e)
}

// Actor is the administrator application making a management request.
type Actor struct {
	ClientID   string
	Scopes     []string
	RemoteAddr string
}

// Func is a management endpoint: it writes its success response itself and
// returns a problem to write otherwise.
type Func func(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem

// Realm is the realm of the management API's bearer challenges.
const Realm = "m2mauth-admin"

// Protect wraps fn so that it runs only for a bearer token (RFC 6750 §2.1)
// this server issued for the management API and not revoked, held by an
// application that still exists, is enabled and is still granted scope,
// and whose token carries scope. A missing, invalid or revoked token is
// 401 invalid_token; a valid token without the scope is 403
// insufficient_scope (RFC 6750 §3.1).
func (h *Handler) Protect(scope string, fn Func) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, p := h.authenticate(r, scope)
		if p == nil {
			p = fn(w, r, actor)
		}
		if p != nil {
			writeProblem(w, p)
		}
	})
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

func (h *Handler) authenticate(r *http.Request, scope string) (*Actor, *Problem) {
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
	claims, err := h.Verifier.Verify(tok)
	if err != nil {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, err.Error(), "")
	}
	if claims.Audience != authz.ManagementAudience {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "the token is not for the management API ("+authz.ManagementAudience+")", "")
	}
	if h.DenyList.Revoked(claims.JTI) {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "the token has been revoked", "")
	}
	client, err := h.Store.Client(r.Context(), claims.ClientID)
	if errors.Is(err, authz.ErrNotFound) {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "the token's application no longer exists", "")
	}
	if err != nil {
		return nil, storeProblem(err, "application")
	}
	if client.Application.Disabled {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "the token's application is disabled", "")
	}
	if client.Application.TokenRevoked(claims.IssuedAt) {
		return nil, bearerProblem(http.StatusUnauthorized, CodeInvalidToken, "the token was issued before its application's tokens were revoked", "")
	}
	granted := false
	for _, g := range client.Grants {
		if g.API.Identifier == authz.ManagementAudience {
			granted = g.Grant.HasScope(scope)
		}
	}
	actor := &Actor{ClientID: claims.ClientID, Scopes: claims.Scopes(), RemoteAddr: r.RemoteAddr}
	if !granted || !hasScope(actor.Scopes, scope) {
		return nil, bearerProblem(http.StatusForbidden, CodeInsufficientScope, "this action needs scope "+scope, scope)
	}
	return actor, nil
}

func hasScope(scopes []string, s string) bool {
	for _, v := range scopes {
		if v == s {
			return true
		}
	}
	return false
}

// now returns the clock's time as stores keep it.
func (h *Handler) now() time.Time { return authz.StoreTime(h.Now()) }
