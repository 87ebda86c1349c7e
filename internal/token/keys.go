package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/masterkey"
)

// RSABits is the size of generated RSA signing keys.
const RSABits = 2048

// JWKSMaxAge is the Cache-Control max-age of the JWKS, in seconds. A key is
// published as next for a whole rotation period before it signs, so
// resource servers that honour this see it long before first use; a forced
// rotation is caught by their refetch on an unknown kid.
const JWKSMaxAge = 300

// Keys holds the signing keys in memory: the active key of each algorithm
// ready to sign, every published key ready to verify, and the JWKS document.
// It loads them from the store (opening private keys with the master key)
// and creates and rotates them. It is safe for concurrent use; readers never
// block on a reload.
type Keys struct {
	store  authz.Keys
	sealer *masterkey.Sealer
	now    func() time.Time
	rand   io.Reader
	log    *slog.Logger

	mu  sync.Mutex // serialises every change and reload: Ensure, Rotate, Prune, Load, Refresh, Reseal
	cur atomic.Pointer[keySet]
}

// keySet is an immutable snapshot of the keys.
type keySet struct {
	active map[string]*signingKey // alg → the key that signs
	byKID  map[string]*signingKey // every published key
	jwks   []byte
	list   []authz.SigningKey // without private material, for the management API
}

type signingKey struct {
	meta   authz.SigningKey
	public jose.JSONWebKey
	signer *jwsKey // nil unless active
}

// NewKeys returns an empty key set backed by store; call Load or Ensure
// before use. Private keys are sealed with sealer; new keys read randomness
// from r; now is the clock.
func NewKeys(store authz.Keys, sealer *masterkey.Sealer, now func() time.Time, r io.Reader, log *slog.Logger) *Keys {
	k := &Keys{store: store, sealer: sealer, now: now, rand: r, log: log}
	k.cur.Store(&keySet{active: map[string]*signingKey{}, byKID: map[string]*signingKey{}, jwks: []byte(`{"keys":[]}`)})
	return k
}

// JWKS returns the JSON Web Key Set (RFC 7517 §5) of every published key:
// next, active and retired. The caller must not modify it.
func (k *Keys) JWKS() []byte { return k.cur.Load().jwks }

// List returns every stored key without private material.
func (k *Keys) List() []authz.SigningKey { return k.cur.Load().list }

// Algs returns the algorithms that have an active key.
func (k *Keys) Algs() []string {
	set := k.cur.Load()
	var out []string
	for _, a := range authz.SigningAlgs {
		if set.active[a] != nil {
			out = append(out, a)
		}
	}
	return out
}

// Load reads every key from the store and replaces the in-memory set.
// Returns an error if the store fails or a private key cannot be opened
// (the wrong master key).
func (k *Keys) Load(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, err := k.load(ctx)
	return err
}

// load rereads the store and, if any key was added, removed or changed
// (here or by another replica), replaces the in-memory set; changed
// reports whether it did. Keys already opened are reused, so a reload
// costs one store read unless keys changed state.
func (k *Keys) load(ctx context.Context) (changed bool, err error) {
	if err := backendErr(); err != nil {
		return false, err
	}
	stored, err := k.store.ListKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("token: loading signing keys: %w", err)
	}
	prev := k.cur.Load()
	if sameKeys(prev.list, stored) {
		return false, nil
	}
	set := &keySet{active: map[string]*signingKey{}, byKID: map[string]*signingKey{}}
	var pub []jose.JSONWebKey
	for _, m := range stored {
		meta := m
		meta.Private = nil
		sk := prev.byKID[m.KID]
		if sk == nil || sk.meta.State != m.State {
			sk, err = k.open(m)
			if err != nil {
				return false, err
			}
		} else {
			sk = &signingKey{meta: meta, public: sk.public, signer: sk.signer}
		}
		set.list = append(set.list, meta)
		set.byKID[m.KID] = sk
		pub = append(pub, sk.public)
		if m.State == authz.KeyActive {
			if other := set.active[m.Alg]; other == nil || m.ActivatedAt.After(other.meta.ActivatedAt) {
				set.active[m.Alg] = sk
			}
		}
	}
	if pub == nil {
		pub = []jose.JSONWebKey{}
	}
	set.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: pub})
	if err != nil {
		return false, fmt.Errorf("token: encoding JWKS: %w", err)
	}
	k.cur.Store(set)
	return true, nil
}

// sameKeys reports whether list (without private material) describes
// exactly the keys of stored, in the same order.
func sameKeys(list, stored []authz.SigningKey) bool {
	if len(list) != len(stored) {
		return false
	}
	for i, a := range list {
		b := stored[i]
		if a.KID != b.KID || a.Alg != b.Alg || a.State != b.State || !a.CreatedAt.Equal(b.CreatedAt) ||
			!a.ActivatedAt.Equal(b.ActivatedAt) || !a.RetiredAt.Equal(b.RetiredAt) || !a.RemoveAfter.Equal(b.RemoveAfter) {
			return false
		}
	}
	return true
}

// open unseals m's private key and, if m is active, prepares its signer.
func (k *Keys) open(m authz.SigningKey) (*signingKey, error) {
	der, err := k.sealer.Open(m.Private, []byte(m.KID))
	if err != nil {
		return nil, fmt.Errorf("token: signing key %s: %w", m.KID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("token: signing key %s: %w", m.KID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("token: signing key %s: unsupported key type %T", m.KID, priv)
	}
	sk := &signingKey{meta: m, public: jose.JSONWebKey{Key: signer.Public(), KeyID: m.KID, Algorithm: m.Alg, Use: "sig"}}
	sk.meta.Private = nil
	if m.State == authz.KeyActive {
		// The build's backend signs: OpenSSL for RS256 and PS256 with -tags fastcrypto.
		if signer, err = backendSigner(m.Alg, signer); err != nil {
			return nil, fmt.Errorf("token: signer for %s: %w", m.KID, err)
		}
		sk.signer, err = newJWSKey(m.Alg, m.KID, signer)
		if err != nil {
			return nil, fmt.Errorf("token: signer for %s: %w", m.KID, err)
		}
	}
	return sk, nil
}

// Ensure makes sure alg has an active and a next key, creating what is
// missing, and reloads. Creating an RSA key takes tens of milliseconds, so
// callers do this when an API chooses an algorithm, never per token.
// Returns an error for an unsupported alg or a failing store.
func (k *Keys) Ensure(ctx context.Context, alg string) error {
	if !authz.ValidSigningAlg(alg) {
		return fmt.Errorf("token: unsupported signing algorithm %q: %w", alg, authz.ErrInvalid)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.load(ctx); err != nil {
		return err
	}
	has := map[authz.KeyState]bool{}
	for _, m := range k.cur.Load().list {
		if m.Alg == alg {
			has[m.State] = true
		}
	}
	now := authz.StoreTime(k.now())
	for _, st := range []authz.KeyState{authz.KeyActive, authz.KeyNext} {
		if has[st] {
			continue
		}
		if _, err := k.createKey(ctx, alg, st, now); err != nil {
			return err
		}
	}
	_, err := k.load(ctx)
	return err
}

// generate makes a new key pair for alg and seals its private half.
func (k *Keys) generate(alg string, st authz.KeyState, now time.Time) (authz.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case authz.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), k.rand)
	case authz.EdDSA:
		_, priv, err = ed25519.GenerateKey(k.rand)
	case authz.RS256, authz.PS256:
		priv, err = rsa.GenerateKey(k.rand, RSABits)
	default:
		err = fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return authz.SigningKey{}, fmt.Errorf("token: generating %s key: %w", alg, err)
	}
	// The kid is the key's RFC 7638 thumbprint: stable, unique, derived.
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return authz.SigningKey{}, fmt.Errorf("token: thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return authz.SigningKey{}, fmt.Errorf("token: encoding %s key: %w", alg, err)
	}
	sealed, err := k.sealer.Seal(der, []byte(kid))
	if err != nil {
		return authz.SigningKey{}, err
	}
	m := authz.SigningKey{KID: kid, Alg: alg, State: st, Private: sealed, CreatedAt: now}
	if st == authz.KeyActive {
		m.ActivatedAt = now
	}
	return m, nil
}

// errNoKey is returned when no active key exists for an algorithm.
var errNoKey = errors.New("token: no active signing key for algorithm")

func (k *Keys) signer(alg string) (*signingKey, error) {
	sk := k.cur.Load().active[alg]
	if sk == nil {
		return nil, fmt.Errorf("%w %s", errNoKey, alg)
	}
	return sk, nil
}

func (k *Keys) publicKey(kid string) *signingKey { return k.cur.Load().byKID[kid] }
