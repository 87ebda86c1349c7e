package authz

import (
	"context"
	"time"
)

// APIFilter narrows ListAPIs. Zero fields do not filter.
type APIFilter struct {
	Identifier string // exact match on the audience string
}

// ApplicationFilter narrows ListApplications. Zero fields do not filter.
type ApplicationFilter struct {
	NamePrefix string // case-sensitive prefix of the name
	Disabled   *bool
}

// APIs stores resource servers.
type APIs interface {
	// CreateAPI inserts a. Returns ErrConflict if an API has a.Identifier or a.ID.
	CreateAPI(ctx context.Context, a API) error
	// GetAPI returns the API with id. Returns ErrNotFound if there is none.
	GetAPI(ctx context.Context, id string) (API, error)
	// GetAPIByIdentifier returns the API whose identifier (audience) is
	// identifier. Returns ErrNotFound if there is none.
	GetAPIByIdentifier(ctx context.Context, identifier string) (API, error)
	// ListAPIs returns one page of APIs ordered by (CreatedAt, ID), and the
	// cursor of the next page ("" after the last).
	ListAPIs(ctx context.Context, f APIFilter, p Page) ([]API, string, error)
	// UpdateAPI changes the fields p names (and UpdatedAt) of the API with
	// id, leaving the others as stored, and returns the API as it is now.
	// Scopes the API no longer defines are removed from every grant for
	// it, in the same transaction. Returns ErrNotFound if there is no such
	// API.
	UpdateAPI(ctx context.Context, id string, p APIPatch) (API, error)
	// DeleteAPI removes the API with id and every grant for it. Returns
	// ErrNotFound if there is none.
	DeleteAPI(ctx context.Context, id string) error
}

// Applications stores OAuth clients with their secrets and grants.
type Applications interface {
	// CreateApplication inserts app with its first secrets and grants in one
	// transaction, every UpdatedAt as given. Grants name their API by APIID.
	// Returns ErrConflict if the client_id is taken or two grants name one
	// API, ErrNotFound if a grant's API does not exist.
	CreateApplication(ctx context.Context, app Application, secrets []Secret, grants []Grant) error
	// GetApplication returns the application with clientID. Returns
	// ErrNotFound if there is none.
	GetApplication(ctx context.Context, clientID string) (Application, error)
	// ListApplications returns one page of applications ordered by
	// (CreatedAt, ClientID), and the cursor of the next page ("" after the last).
	ListApplications(ctx context.Context, f ApplicationFilter, p Page) ([]Application, string, error)
	// UpdateApplication changes the fields p names (and UpdatedAt) of the
	// application with clientID, leaving the others as stored, and returns
	// the application as it is now. TokensNotBefore only moves forward.
	// Returns ErrNotFound if there is none.
	UpdateApplication(ctx context.Context, clientID string, p ApplicationPatch) (Application, error)
	// DeleteApplication removes the application with clientID and its
	// secrets and grants. Returns ErrNotFound if there is none.
	DeleteApplication(ctx context.Context, clientID string) error
	// Client returns the application with clientID, its secrets and its
	// grants each with its API, read consistently: the token endpoint's one
	// lookup. Returns ErrNotFound if there is no such application.
	Client(ctx context.Context, clientID string) (*Client, error)
}

// Grants stores which scopes of which API each application may obtain.
type Grants interface {
	// CreateGrant inserts g (g.APIID names the API). Returns ErrNotFound if
	// the application or the API does not exist, ErrConflict if the
	// application already has a grant for that API or g.ID is taken.
	CreateGrant(ctx context.Context, g Grant) error
	// GetGrant returns the grant id of application clientID with its
	// Audience filled in. Returns ErrNotFound if there is none.
	GetGrant(ctx context.Context, clientID, id string) (Grant, error)
	// ListGrants returns the grants of application clientID ordered by
	// (CreatedAt, ID), with their Audience filled in; an empty list if the
	// application has none or does not exist.
	ListGrants(ctx context.Context, clientID string) ([]Grant, error)
	// ListGrantsForAPI returns every grant for the API with apiID, of
	// every application, ordered by (CreatedAt, ID), with their Audience
	// filled in; an empty list if there is none.
	ListGrantsForAPI(ctx context.Context, apiID string) ([]Grant, error)
	// UpdateGrant replaces the scopes, claims, token lifetime and UpdatedAt of grant g.ID of
	// application g.ClientID. Returns ErrNotFound if there is none.
	UpdateGrant(ctx context.Context, g Grant) error
	// DeleteGrant removes grant id of application clientID. Returns
	// ErrNotFound if there is none.
	DeleteGrant(ctx context.Context, clientID, id string) error
}

// Secrets stores client secrets (their hashes).
type Secrets interface {
	// CreateSecret inserts s, with its UpdatedAt as given (callers set it
	// to CreatedAt). Returns ErrNotFound if the application does not exist,
	// ErrConflict if s.ID is taken.
	CreateSecret(ctx context.Context, s Secret) error
	// ListSecrets returns the secrets of application clientID ordered by
	// (CreatedAt, ID); an empty list if it has none or does not exist.
	ListSecrets(ctx context.Context, clientID string) ([]Secret, error)
	// DeleteSecret removes secret id of application clientID. Returns
	// ErrNotFound if there is none.
	DeleteSecret(ctx context.Context, clientID, id string) error
	// RotateSecret inserts s and, in the same transaction, sets ExpiresAt
	// to expireOthersAt on every other secret of the application whose
	// ExpiresAt is zero or later: a new secret with an overlap for the old
	// ones, all or nothing. s.CreatedAt is the time of the rotation: the
	// secrets whose ExpiresAt it changes get it as UpdatedAt; the others
	// keep theirs. Returns ErrNotFound if the application does not exist,
	// ErrConflict if s.ID is taken.
	RotateSecret(ctx context.Context, s Secret, expireOthersAt time.Time) error
	// ExpireSecrets sets ExpiresAt to at and UpdatedAt to now on every
	// secret of application clientID except exceptID whose ExpiresAt is
	// zero or later than at; the others, with an earlier expiry, are left
	// as they are. Returns ErrNotFound if the application does not exist.
	ExpireSecrets(ctx context.Context, clientID, exceptID string, at, now time.Time) error
	// TouchSecrets raises LastUsedAt of each secret named in used (secret id
	// → time of use) to that time if it is later; ids that no longer exist
	// are ignored, and UpdatedAt does not change: a use is not a change of
	// the secret. One call writes a whole batch.
	TouchSecrets(ctx context.Context, used map[string]time.Time) error
}

// Credentials stores applications' secretless credentials.
type Credentials interface {
	// CreateCredential inserts c. Returns ErrNotFound if the application
	// or the trusted issuer c.TrustedIssuerID names does not exist,
	// ErrConflict if c.ID is taken.
	CreateCredential(ctx context.Context, c Credential) error
	// ListCredentials returns the credentials of application clientID
	// ordered by (CreatedAt, ID); an empty list if it has none or does not
	// exist.
	ListCredentials(ctx context.Context, clientID string) ([]Credential, error)
	// DeleteCredential removes credential id of application clientID.
	// Returns ErrNotFound if there is none.
	DeleteCredential(ctx context.Context, clientID, id string) error
	// ListFederatedCredentials returns every federated credential of every
	// application that names trusted issuer trustedIssuerID, ordered by
	// (ClientID, CreatedAt, ID); an empty list if there are none.
	ListFederatedCredentials(ctx context.Context, trustedIssuerID string) ([]Credential, error)
	// TouchCredentials raises LastUsedAt of each credential named in used
	// (credential id → time of use) to that time if it is later; ids that
	// no longer exist are ignored. One call writes a whole batch.
	TouchCredentials(ctx context.Context, used map[string]time.Time) error
}

// TrustedIssuers stores the external issuers that federated credentials
// match.
type TrustedIssuers interface {
	// CreateTrustedIssuer inserts ti. Returns ErrConflict if ti.ID or
	// ti.Issuer is taken.
	CreateTrustedIssuer(ctx context.Context, ti TrustedIssuer) error
	// GetTrustedIssuer returns trusted issuer id, or ErrNotFound.
	GetTrustedIssuer(ctx context.Context, id string) (TrustedIssuer, error)
	// TrustedIssuerByIssuer returns the trusted issuer whose Issuer is
	// issuer (compared exactly), or ErrNotFound.
	TrustedIssuerByIssuer(ctx context.Context, issuer string) (TrustedIssuer, error)
	// ListTrustedIssuers returns every trusted issuer ordered by
	// (CreatedAt, ID).
	ListTrustedIssuers(ctx context.Context) ([]TrustedIssuer, error)
	// DeleteTrustedIssuer removes trusted issuer id. Returns ErrNotFound if
	// there is none, ErrConflict if a credential still names it.
	DeleteTrustedIssuer(ctx context.Context, id string) error
}

// Keys stores signing keys.
type Keys interface {
	// CreateKey inserts k. Returns ErrConflict if k.KID is taken.
	CreateKey(ctx context.Context, k SigningKey) error
	// ListKeys returns every signing key ordered by (CreatedAt, KID).
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateKeys saves the State, ActivatedAt, RetiredAt and RemoveAfter of
	// each key in ks in one transaction, if every key's current state in the
	// store is the one in from[KID]; otherwise it changes nothing and
	// returns ErrConflict (another node rotated first). Returns ErrNotFound
	// if a key does not exist.
	UpdateKeys(ctx context.Context, from map[string]KeyState, ks []SigningKey) error
	// DeleteKey removes the key kid. Returns ErrNotFound if there is none.
	DeleteKey(ctx context.Context, kid string) error
	// UpdateKeyPrivate replaces the sealed private key of kid, after a
	// master-key rotation sealed it again. Returns ErrNotFound if there is
	// no such key.
	UpdateKeyPrivate(ctx context.Context, kid string, sealed []byte) error
}

// Revocations stores the deny-list of revoked access tokens (RFC 7009).
type Revocations interface {
	// RevokeToken adds jti to the deny-list until expiresAt (the token's
	// exp). Revoking a jti twice is not an error.
	RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error
	// ListRevoked returns every deny-listed jti with its expiry.
	ListRevoked(ctx context.Context) (map[string]time.Time, error)
	// ListRevokedSince returns the deny-listed jtis whose entry was
	// written, or its expiry extended, at or after since by the database's
	// clock, with their expiry, and the database's time at the read (read
	// before the entries): the next call's since, less an overlap for
	// writes still committing. A zero since returns every entry.
	ListRevokedSince(ctx context.Context, since time.Time) (map[string]time.Time, time.Time, error)
	// PurgeRevoked removes entries whose expiry is at or before now and
	// returns how many it removed.
	PurgeRevoked(ctx context.Context, now time.Time) (int, error)
}

// Replay stores one-time keys, such as a client assertion's jti (RFC 7523
// §3, RFC 7521 §5.2), so that none is accepted twice within its lifetime;
// DPoP proofs will use it too. Expiry is judged by the database's clock,
// one clock for every replica.
type Replay interface {
	// UseJTI records key as used until exp and reports whether it was
	// fresh: false if key was used before and that use has not expired
	// (an expired use may be made again). Of concurrent calls with one key,
	// on any replica, exactly one gets true. Callers scope key (for example
	// by client_id) and include in exp any clock-skew leeway they allow.
	// On error the caller must treat key as not fresh.
	UseJTI(ctx context.Context, key string, exp time.Time) (fresh bool, err error)
	// PurgeJTIs removes the keys whose use has expired and returns how
	// many it removed.
	PurgeJTIs(ctx context.Context) (int, error)
}

// Audit stores the audit log and the token-issuance counters.
type Audit interface {
	// AppendAudit inserts events in one transaction. Returns ErrConflict if
	// an event's ID is taken.
	AppendAudit(ctx context.Context, events []AuditEvent) error
	// ListAudit returns one page of events matching f, newest first
	// (ordered by Time then ID, descending), and the cursor of the next page.
	ListAudit(ctx context.Context, f AuditFilter, p Page) ([]AuditEvent, string, error)
	// PurgeAudit removes the events whose Time is before before and
	// returns how many it removed (the audit log's retention).
	PurgeAudit(ctx context.Context, before time.Time) (int, error)
	// AddIssuance adds each count to the counter of its (ClientID,
	// Audience, Hour), creating it if needed, and raises LastIssuedAt.
	AddIssuance(ctx context.Context, counts []Issuance) error
	// ListIssuance returns the counters of application clientID ("" for
	// every application) whose Hour is at or after since, ordered by Hour,
	// ClientID, Audience.
	ListIssuance(ctx context.Context, clientID string, since time.Time) ([]Issuance, error)
}

// Settings stores small server-wide values (the sealed secret pepper, the
// bootstrap marker) that every node must agree on.
type Settings interface {
	// InitSetting stores value under name unless name already has one, and
	// returns the stored value: value itself if this call stored it (created
	// is true), else the value an earlier call stored. Nodes racing to
	// initialise a setting all end up with the same value.
	InitSetting(ctx context.Context, name string, value []byte) (stored []byte, created bool, err error)
	// PutSetting stores value under name, replacing any value it had: for
	// a value sealed again after a master-key rotation.
	PutSetting(ctx context.Context, name string, value []byte) error
}

// Bootstrap is what `m2mauth serve` creates on an empty database: the
// management API and the first administrator application with its secret
// and its grant of every management scope.
type Bootstrap struct {
	API    API
	App    Application
	Secret Secret
	Grant  Grant
}

// Tx is one management transaction, given to the function Store.Manage
// runs: its reads see its own writes, and every write of every method
// commits together with the others, or none does. Management transactions
// are serialized (on SQLite by the one writer, on PostgreSQL by a
// transaction-level advisory lock that the Store's own write methods of
// the names below take too, AppendAudit and RevokeToken aside), so what a Tx reads stays
// true until it commits: a rule checked on what it read holds for the
// write it makes.
// Each method returns what the Store method of the same name returns; one
// that fails changes nothing, and the transaction goes on. A Tx must not
// be used after the function returns: its methods then return an error.
type Tx interface {
	GetAPI(ctx context.Context, id string) (API, error)
	GetAPIByIdentifier(ctx context.Context, identifier string) (API, error)
	ListAPIs(ctx context.Context, f APIFilter, p Page) ([]API, string, error)
	CreateAPI(ctx context.Context, a API) error
	UpdateAPI(ctx context.Context, id string, p APIPatch) (API, error)
	DeleteAPI(ctx context.Context, id string) error

	GetApplication(ctx context.Context, clientID string) (Application, error)
	CreateApplication(ctx context.Context, app Application, secrets []Secret, grants []Grant) error
	UpdateApplication(ctx context.Context, clientID string, p ApplicationPatch) (Application, error)
	DeleteApplication(ctx context.Context, clientID string) error

	GetGrant(ctx context.Context, clientID, id string) (Grant, error)
	ListGrants(ctx context.Context, clientID string) ([]Grant, error)
	ListGrantsForAPI(ctx context.Context, apiID string) ([]Grant, error)
	CreateGrant(ctx context.Context, g Grant) error
	UpdateGrant(ctx context.Context, g Grant) error
	DeleteGrant(ctx context.Context, clientID, id string) error

	ListSecrets(ctx context.Context, clientID string) ([]Secret, error)
	CreateSecret(ctx context.Context, s Secret) error
	RotateSecret(ctx context.Context, s Secret, expireOthersAt time.Time) error
	ExpireSecrets(ctx context.Context, clientID, exceptID string, at, now time.Time) error
	DeleteSecret(ctx context.Context, clientID, id string) error

	ListCredentials(ctx context.Context, clientID string) ([]Credential, error)
	CreateCredential(ctx context.Context, c Credential) error
	DeleteCredential(ctx context.Context, clientID, id string) error
	ListFederatedCredentials(ctx context.Context, trustedIssuerID string) ([]Credential, error)

	GetTrustedIssuer(ctx context.Context, id string) (TrustedIssuer, error)
	ListTrustedIssuers(ctx context.Context) ([]TrustedIssuer, error)
	CreateTrustedIssuer(ctx context.Context, ti TrustedIssuer) error
	DeleteTrustedIssuer(ctx context.Context, id string) error

	RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error
	AppendAudit(ctx context.Context, events []AuditEvent) error
}

// Store is everything m2mauth persists. Implementations are safe for
// concurrent use.
type Store interface {
	APIs
	Applications
	Grants
	Secrets
	Credentials
	TrustedIssuers
	Keys
	Settings
	Revocations
	Replay
	Audit
	// Manage runs fn in one management transaction (see Tx) and commits
	// it if fn returns nil; otherwise it rolls back and returns fn's error
	// as it is (errors.Is and errors.As see it unchanged). fn may be run
	// more than once if the database asks for a retry (a serialization
	// failure), so it must produce its results anew on each run. The
	// Store's write methods that Tx has too, AppendAudit aside, are each
	// one such transaction. fn must not call the Store's write methods
	// (they may wait for the transaction fn is in), and reads through tx.
	// Returns an error wrapping ErrUnavailable if the database cannot be
	// reached.
	Manage(ctx context.Context, fn func(tx Tx) error) error
	// Bootstrap inserts b, every UpdatedAt as given, in one transaction if
	// no API has b.API.Identifier, and reports whether it did. Of nodes
	// racing on one database exactly one gets true.
	Bootstrap(ctx context.Context, b Bootstrap) (bool, error)
	// Close releases the store's connections.
	Close() error
}

// StoreTime returns t in the precision and zone every store keeps: UTC,
// truncated to the microsecond. Times written to a store should pass
// through it so that what is read back equals what was written.
func StoreTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
