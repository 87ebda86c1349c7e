package authz

import "context"

// Change names what a write changed, for other replicas' caches.
type Change struct {
	Kind ChangeKind
	Key  string // what changed within Kind; see each ChangeKind
}

// ChangeKind is the kind of object a write changed.
type ChangeKind string

// Change kinds.
const (
	// ChangeClient: the application with client_id Key, or one of its
	// secrets or grants.
	ChangeClient ChangeKind = "client"
	// ChangeAll: anything may have changed: an API (which every grant of
	// it reads), or notifications were lost. Key is "".
	ChangeAll ChangeKind = "all"
	// ChangeKeys: a signing key. Key is "".
	ChangeKeys ChangeKind = "keys"
	// ChangeRevoked: the access token with jti Key was revoked.
	ChangeRevoked ChangeKind = "revoked"
	// ChangeSettings: a setting (the sealed pepper after a master-key
	// rotation). Key is "".
	ChangeSettings ChangeKind = "settings"
	// ChangeSynced: no write changed anything, but the feed has checked
	// that every change committed before its previous check (PostgreSQL:
	// at most 0.5 s before this one) has been delivered, none lost, and
	// it finds one lost within a bounded time (1.5 s) and then delivers
	// ChangeAll: what a cache holds, and the changes delivered have not
	// dropped, is current. A feed that cannot check never sends it. Key
	// is "".
	ChangeSynced ChangeKind = "synced"
)

// ChangeFeed is implemented by stores that several replicas share.
type ChangeFeed interface {
	// Changes delivers the changes every replica's writes make (this
	// one's too) until ctx is done, then closes the channel. A change is
	// delivered only once the write that made it has committed. As soon
	// as it listens it delivers Change{Kind: ChangeAll}, since what was
	// read before may be stale; after a lost connection it reconnects and
	// delivers Change{Kind: ChangeAll} again, since changes may have been
	// missed.
	Changes(ctx context.Context) <-chan Change
}

// Leader is implemented by stores that several replicas share.
type Leader interface {
	// TryLead reports whether this replica now holds the cluster-wide
	// lease name (a PostgreSQL session advisory lock on a dedicated
	// connection) and returns release; the lease ends when release is
	// called or the holder's connection dies, so another replica takes
	// over. A holder that calls TryLead again gets ok=true while its lease
	// lasts, and false once it has been lost to another replica, so that
	// calling it on every tick tells a leader whether it still leads.
	// release may be called more than once. err reports a failure to
	// reach the database, with ok false.
	TryLead(ctx context.Context, name string) (release func(), ok bool, err error)
}
