// Package manage holds m2mauth's management use cases: APIs, applications,
// grants, secrets, signing keys, token revocation and audit reads, each a
// method that takes the acting administrator (Actor) and returns domain
// errors (*Error). Every management rule lives here, once, for every caller:
// the management API (internal/admin), the server's bootstrap and upgrade,
// the offline recovery command, and any later console or import.
//
// The rules (docs/management-permissions.md has the table):
//   - An actor needs the scope named for each action.
//   - Privilege is bounded by the actor (OWASP ASVS V4.1.2/V4.1.3, OWASP
//     API5:2023): a management-API grant may confer only scopes the actor
//     holds, and an actor may change, grant, give a secret to or delete only
//     an application whose management scopes are a subset of its own.
//   - Introspection rights (RFC 7662 §4) need update:introspection, and never
//     cover management tokens.
//   - The management API itself is immutable through the API.
//   - No change may leave the server without an enabled application that
//     holds every management scope and a usable secret (409
//     last-administrator); `m2mauth admin recover` is the way back.
//
// Every write runs in one store transaction (authz.Store.Manage) together
// with its audit event, and management transactions are serialized, so a
// rule checked on what the transaction read holds for the write it makes.
package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/token"
)

// KeyEnsurer creates signing keys for an algorithm an API chooses.
type KeyEnsurer interface {
	// Ensure makes sure alg has an active and a next key.
	Ensure(ctx context.Context, alg string) error
}

// KeyManager lists and rotates the signing keys.
type KeyManager interface {
	// List returns every signing key, without private material.
	List(ctx context.Context) ([]authz.SigningKey, error)
	// Rotate rotates the keys of alg ("" for every algorithm in use) at
	// once, within the limits of opts, and returns the rotations made.
	// Returns an error wrapping authz.ErrNotFound for an algorithm no key
	// is in use for, or a *token.RefusedError.
	Rotate(ctx context.Context, alg string, opts token.RotateOptions) ([]token.Rotation, error)
}

// Verifier checks the signature and expiry of access tokens this server
// issued (token.Issuer).
type Verifier interface {
	Verify(tok string) (*token.Claims, error)
}

// DenyList is this replica's in-memory set of revoked tokens; a revocation
// is stored by the transaction first, then added here.
type DenyList interface {
	// Add deny-lists jti until expiresAt in memory.
	Add(jti string, expiresAt time.Time)
}

// Service runs the management use cases. Build it with every field set;
// it is safe for concurrent use.
type Service struct {
	Store       authz.Store
	Hasher      *clientsecret.Hasher
	Keys        KeyEnsurer
	SigningKeys KeyManager
	Verifier    Verifier
	DenyList    DenyList
	// DefaultAlg is the signing_alg of APIs created without one.
	DefaultAlg string
	// AdminTokenLifetime is the management API's token lifetime, set by
	// operator configuration only (default 900 s, at most 3600 s).
	AdminTokenLifetime time.Duration
	// DefaultPolicy is the server's token policy for applications whose
	// own sets neither a rate nor a quota (shown by Usage).
	DefaultPolicy authz.Policy
	// AllowInsecureIssuers lets trusted issuers name http URLs to loopback
	// hosts (--allow-insecure-issuers: tests and development only).
	AllowInsecureIssuers bool
	Now                  func() time.Time
	Rand                 io.Reader
	Log                  *slog.Logger
	// Committed, if set, gets the audit events of each management
	// transaction once it has committed (the SIEM export, audit.Sink).
	Committed func(events []authz.AuditEvent)
}

// Actor is who performs a management action: an administrator
// application, or the server itself (ClientID "").
type Actor struct {
	ClientID string
	// Scopes are the management scopes the actor holds now: those its
	// token carries that its management grant still includes.
	Scopes     []string
	RemoteAddr string
}

// System is the server acting on its own (bootstrap, upgrade, recovery):
// it holds every management scope and is audited with no actor.
func System() Actor {
	return Actor{Scopes: allManagementScopes()}
}

func allManagementScopes() []string {
	out := make([]string, len(authz.ManagementScopes))
	for i, sc := range authz.ManagementScopes {
		out[i] = sc.Value
	}
	return out
}

// Has reports whether the actor holds scope.
func (a Actor) Has(scope string) bool { return slices.Contains(a.Scopes, scope) }

// require returns a Forbidden error naming scope unless the actor holds it.
func (a Actor) require(scope string) error {
	if a.Has(scope) {
		return nil
	}
	return &Error{Kind: Forbidden, Detail: "this action needs scope " + scope, MissingScopes: []string{scope}}
}

// bound returns a Forbidden error naming the scopes of want the actor does
// not hold, what for saying what they were for.
func (a Actor) bound(want []string, what string) error {
	var missing []string
	for _, sc := range want {
		if !a.Has(sc) && !slices.Contains(missing, sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &Error{Kind: Forbidden, MissingScopes: missing,
		Detail: what + " needs management scopes the actor does not hold: " + strings.Join(missing, " ")}
}

// Kind classifies an Error; each maps to one HTTP status in internal/admin.
type Kind int

// Error kinds.
const (
	// Internal is a failure of the server or its store (500).
	Internal Kind = iota
	// Invalid is input that failed validation; nothing changed (400).
	Invalid
	// Forbidden is an action beyond the actor's privilege (403);
	// MissingScopes names what it lacks.
	Forbidden
	// NotFound is a missing object (404).
	NotFound
	// Conflict is a change the object's state refuses (409).
	Conflict
	// LastAdministrator is a change that would leave no enabled
	// application holding every management scope with a usable secret
	// (409).
	LastAdministrator
	// Unavailable is a store that cannot be reached; nothing changed and
	// the same call may succeed later (503).
	Unavailable
	// TooMany is a limit reached (409), such as 10 secrets per application.
	TooMany
)

// Error is a management use case's refusal or failure. Detail is safe to
// show the caller; Err, the cause of an Internal or Unavailable error, is
// for the log only.
type Error struct {
	Kind          Kind
	Detail        string
	MissingScopes []string
	Err           error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return &Error{Kind: Invalid, Detail: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &Error{Kind: Conflict, Detail: fmt.Sprintf(format, args...)}
}

func notFound(what string) error {
	return &Error{Kind: NotFound, Detail: what + " not found"}
}

// storeErr maps a store error to an *Error: authz.ErrNotFound is NotFound
// (of what), ErrConflict Conflict, ErrInvalid Invalid, ErrUnavailable
// Unavailable, anything else Internal. An *Error passes through.
func storeErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return notFound(what)
	case errors.Is(err, authz.ErrConflict):
		return &Error{Kind: Conflict, Detail: what + " conflicts with an existing one"}
	case errors.Is(err, authz.ErrInvalid):
		return &Error{Kind: Invalid, Detail: strings.TrimPrefix(lastPart(err), "invalid: ")}
	case errors.Is(err, authz.ErrUnavailable):
		return &Error{Kind: Unavailable, Detail: "the database is unavailable; nothing was changed", Err: err}
	}
	return &Error{Kind: Internal, Detail: "the server failed; nothing was changed", Err: err}
}

// lastPart is the text of err after its store prefixes ("sqlite: op: ").
func lastPart(err error) string {
	s := err.Error()
	if i := strings.Index(s, "invalid: "); i >= 0 {
		return s[i:]
	}
	return s
}

// now returns the clock's time as stores keep it.
func (s *Service) now() time.Time { return authz.StoreTime(s.Now()) }

// event builds the audit event of a management action by actor on target.
// details must hold no secret and no token.
func (s *Service) event(actor Actor, action, target string, details map[string]any) (authz.AuditEvent, error) {
	id, err := authz.NewID(s.Rand, "evt_")
	if err != nil {
		return authz.AuditEvent{}, err
	}
	e := authz.AuditEvent{ID: id, Time: s.now(), Actor: actor.ClientID, Action: action, Target: target, RemoteAddr: actor.RemoteAddr}
	if len(details) > 0 {
		b, err := json.Marshal(details)
		if err != nil {
			return authz.AuditEvent{}, err
		}
		e.Details = string(b)
	}
	return e, nil
}

// txn is one management transaction: the store's Tx and the audit events
// written in it, logged once it commits.
type txn struct {
	authz.Tx
	s      *Service
	events []authz.AuditEvent
}

// audit appends the audit event of a management action by actor on target
// to the transaction, so that it commits with the change or not at all.
// details must hold no secret and no token.
func (t *txn) audit(ctx context.Context, actor Actor, action, target string, details map[string]any) error {
	e, err := t.s.event(actor, action, target, details)
	if err != nil {
		return err
	}
	if err := t.AppendAudit(ctx, []authz.AuditEvent{e}); err != nil {
		return err
	}
	t.events = append(t.events, e)
	return nil
}

// manage runs fn in one management transaction, maps a store error it
// returns to an *Error about what, and logs the audited actions once the
// transaction has committed.
func (s *Service) manage(ctx context.Context, what string, fn func(t *txn) error) error {
	var done *txn
	err := s.Store.Manage(ctx, func(tx authz.Tx) error {
		t := &txn{Tx: tx, s: s} // anew on each run: the store may retry fn
		if err := fn(t); err != nil {
			return err
		}
		done = t
		return nil
	})
	if err != nil {
		return storeErr(err, what)
	}
	for _, e := range done.events {
		s.Log.Info("management action", "actor", e.Actor, "action", e.Action, "target", e.Target)
	}
	if s.Committed != nil && len(done.events) > 0 {
		s.Committed(done.events)
	}
	return nil
}
