package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Signing-key rotation. Each algorithm in use has one active key, which
// signs, and one next key, which is published in the JWKS but signs nothing
// yet. A rotation retires the active key, activates the next one and makes
// a new next key. The retired key stays published until every token it
// signed has expired (its RemoveAfter); Prune then deletes it. So a
// resource server that refreshes the JWKS at least once a rotation period
// knows every key before it signs, and keeps every key while tokens it
// signed are still valid.
//
// Replicas share one store. The state change of a rotation is one
// compare-and-set (authz.Keys.UpdateKeys), so of replicas rotating at the
// same moment exactly one does; the others reload and see its result.

// RemovalMargin is added to a retired key's RemoveAfter beyond the longest
// token lifetime: 5 minutes. It covers clock skew between replicas and the
// tokens a replica still signs with the old key until it reloads the keys
// (every few seconds).
const RemovalMargin = 5 * time.Minute

// MaxRetiredKeys is how many retired keys of one algorithm the JWKS
// publishes at most: 32. It bounds the JWKS (4 algorithms × (32 retired +
// an active and a next key) × at most ~450 bytes for RSA is under 70 KB,
// far below rs's 1 MiB cap) however often keys are rotated. The schedule
// never reaches it: with the shortest rotation period (1 h) and the longest
// token lifetime (24 h) a key stays retired 24 h 5 min, so at most 26 are
// retired at once. Only rotations by hand within a token lifetime can; see
// RotateOptions.EvictEarly for what happens then.
const MaxRetiredKeys = 32

// RotateOptions are the limits of a rotation by hand (Keys.RotateWith).
type RotateOptions struct {
	// MinNextAge refuses the rotation of an algorithm whose oldest next
	// key was created less than MinNextAge ago (CreatedAt + MinNextAge >
	// now): resource servers that cache the JWKS for its max-age may not
	// have fetched it yet. Zero: no such check.
	MinNextAge time.Duration
	// EvictEarly lets a rotation that would leave more than MaxRetiredKeys
	// retired keys of an algorithm delete the oldest ones (by RetiredAt)
	// before their RemoveAfter: tokens they signed that have not expired
	// then fail verification everywhere. Without it such a rotation is
	// refused while one of those keys may still have valid tokens. Keys
	// whose RemoveAfter has passed are deleted either way.
	EvictEarly bool
}

// RefusedError is a rotation by hand that RotateOptions refused. It wraps
// authz.ErrConflict.
type RefusedError struct {
	Alg string
	// Reason is one of RefusedNextTooYoung and RefusedRetiredFull.
	Reason string
	// Since is when the next key was created (RefusedNextTooYoung) or
	// the oldest retired key retired (RefusedRetiredFull).
	Since time.Time
	// Until is when the same rotation will be allowed without force: when
	// the next key is MinNextAge old, or the oldest retired key's
	// RemoveAfter.
	Until time.Time
}

// Reasons of a RefusedError.
const (
	RefusedNextTooYoung = "next key too young"
	RefusedRetiredFull  = "too many retired keys"
)

func (e *RefusedError) Error() string {
	return fmt.Sprintf("token: rotation of %s refused: %s until %s", e.Alg, e.Reason, e.Until.UTC().Format(time.RFC3339))
}

func (e *RefusedError) Unwrap() error { return authz.ErrConflict }

// Rotation describes the rotation of one algorithm's keys.
type Rotation struct {
	Alg         string
	Retired     []string  // kids of the keys that were active (normally one)
	RemoveAfter time.Time // when the retired keys leave the JWKS
	Activated   string    // kid of the former next key, now active
	Next        string    // kid of the new next key; "" if creating it failed
	// Evicted are the kids of retired keys deleted at this rotation to keep
	// at most MaxRetiredKeys, oldest first, with EarlyEvicted those of them
	// whose RemoveAfter had not come (tokens they signed may have been
	// valid still).
	Evicted      []string
	EarlyEvicted []string
}

// Rotate rotates the keys of each algorithm in algs, or of every algorithm
// in use (with an active or a next key) if algs is empty, at once: the active key is retired, the
// next key becomes active and a new next key is made. maxLifetime is the
// longest access-token lifetime of any API: a retired key is removed
// maxLifetime + RemovalMargin after its retirement. An algorithm another
// replica rotated at the same moment is not rotated again. Returns the
// rotations this call made; an error wrapping authz.ErrInvalid for an
// unsupported algorithm or a negative maxLifetime, authz.ErrNotFound for an
// algorithm not in use, or the store's error.
//
// Rotate applies no RotateOptions limit but MaxRetiredKeys: it is
// RotateWith(ctx, maxLifetime, RotateOptions{EvictEarly: true}, algs...).
func (k *Keys) Rotate(ctx context.Context, maxLifetime time.Duration, algs ...string) ([]Rotation, error) {
	return k.RotateWith(ctx, maxLifetime, RotateOptions{EvictEarly: true}, algs...)
}

// RotateWith is Rotate within the limits of opts. Before rotating
// anything it checks every algorithm it would rotate, under the same lock
// and on the same reread of the store as the rotation: if one is refused
// it rotates none and returns a *RefusedError (wrapping
// authz.ErrConflict).
func (k *Keys) RotateWith(ctx context.Context, maxLifetime time.Duration, opts RotateOptions, algs ...string) ([]Rotation, error) {
	for _, alg := range algs {
		if !authz.ValidSigningAlg(alg) {
			return nil, fmt.Errorf("token: unsupported signing algorithm %q: %w", alg, authz.ErrInvalid)
		}
	}
	return k.rotate(ctx, maxLifetime, opts, func(alg string, _ *authz.SigningKey) bool {
		return len(algs) == 0 || slices.Contains(algs, alg)
	}, algs)
}

// RotateIfDue rotates, as Rotate does, each algorithm whose active key was
// activated at least period ago (ActivatedAt + period <= now), and each
// algorithm in use that has a next key but none active. Returns the rotations this call
// made; an error wrapping authz.ErrInvalid if period is not positive or
// maxLifetime is negative, or the store's error.
func (k *Keys) RotateIfDue(ctx context.Context, period, maxLifetime time.Duration) ([]Rotation, error) {
	if period <= 0 {
		return nil, fmt.Errorf("token: rotation period %v: %w", period, authz.ErrInvalid)
	}
	now := k.now()
	// The schedule never reaches MaxRetiredKeys on its own (see there);
	// after rotations by hand it evicts, so that the bound holds.
	return k.rotate(ctx, maxLifetime, RotateOptions{EvictEarly: true}, func(_ string, active *authz.SigningKey) bool {
		return active == nil || !active.ActivatedAt.Add(period).After(now)
	}, nil)
}

// rotate rotates every algorithm for which due says so, given its newest
// active key (nil if none). required algorithms must have keys.
func (k *Keys) rotate(ctx context.Context, maxLifetime time.Duration, opts RotateOptions, due func(alg string, active *authz.SigningKey) bool, required []string) ([]Rotation, error) {
	if maxLifetime < 0 {
		return nil, fmt.Errorf("token: maximum token lifetime %v: %w", maxLifetime, authz.ErrInvalid)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// Reread first: another replica may have rotated since the last load,
	// and deciding on a stale set would rotate twice.
	if _, err := k.load(ctx); err != nil {
		return nil, err
	}
	// Only algorithms with an active or a next key are in use; one with
	// retired keys alone is waiting for them to be pruned.
	byAlg := map[string][]authz.SigningKey{}
	inUse := map[string]bool{}
	for _, m := range k.cur.Load().list {
		byAlg[m.Alg] = append(byAlg[m.Alg], m)
		inUse[m.Alg] = inUse[m.Alg] || m.State != authz.KeyRetired
	}
	for _, alg := range required {
		if !inUse[alg] {
			return nil, fmt.Errorf("token: no signing keys for %s: %w", alg, authz.ErrNotFound)
		}
	}
	now := authz.StoreTime(k.now())
	var todo []string
	for _, alg := range authz.SigningAlgs {
		keys := byAlg[alg]
		if !inUse[alg] {
			continue
		}
		var active *authz.SigningKey
		for i := range keys {
			if keys[i].State == authz.KeyActive && (active == nil || keys[i].ActivatedAt.After(active.ActivatedAt)) {
				active = &keys[i]
			}
		}
		if !due(alg, active) {
			continue
		}
		if err := checkRotation(alg, keys, opts, now); err != nil {
			return nil, err
		}
		todo = append(todo, alg)
	}
	var out []Rotation
	var errs []error
	for _, alg := range todo {
		r, err := k.rotateAlg(ctx, alg, byAlg[alg], maxLifetime, now)
		if err != nil {
			errs = append(errs, err)
		}
		if r != nil { // rotated, even if making the new next key failed
			out = append(out, *r)
		}
	}
	if _, err := k.load(ctx); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// checkRotation returns a *RefusedError if opts refuse rotating alg,
// whose stored keys are keys, at now.
func checkRotation(alg string, keys []authz.SigningKey, opts RotateOptions, now time.Time) error {
	if next := oldestNext(keys); next != nil && opts.MinNextAge > 0 && next.CreatedAt.Add(opts.MinNextAge).After(now) {
		return &RefusedError{Alg: alg, Reason: RefusedNextTooYoung, Since: next.CreatedAt, Until: next.CreatedAt.Add(opts.MinNextAge)}
	}
	if opts.EvictEarly {
		return nil
	}
	for _, m := range toEvict(keys, now) {
		if m.RemoveAfter.After(now) {
			return &RefusedError{Alg: alg, Reason: RefusedRetiredFull, Since: m.RetiredAt, Until: m.RemoveAfter}
		}
	}
	return nil
}

// oldestNext returns the first next key of keys (in list order, the
// oldest: it has been published longest), or nil.
func oldestNext(keys []authz.SigningKey) *authz.SigningKey {
	for i := range keys {
		if keys[i].State == authz.KeyNext {
			return &keys[i]
		}
	}
	return nil
}

// toEvict returns the retired keys of keys (one algorithm's) that a
// rotation now must delete so that, with the keys it retires, at most
// MaxRetiredKeys stay retired: the oldest by RetiredAt, then CreatedAt, then kid.
// Keys whose RemoveAfter has come count as gone already (Prune deletes
// them) and are returned too.
func toEvict(keys []authz.SigningKey, now time.Time) []authz.SigningKey {
	var out, valid []authz.SigningKey
	retiring := 0
	for _, m := range keys {
		switch {
		case m.State == authz.KeyActive:
			retiring++
		case m.State != authz.KeyRetired:
		case !m.RemoveAfter.IsZero() && !now.Before(m.RemoveAfter):
			out = append(out, m)
		default:
			valid = append(valid, m)
		}
	}
	slices.SortFunc(valid, func(a, b authz.SigningKey) int {
		if c := a.RetiredAt.Compare(b.RetiredAt); c != 0 {
			return c
		}
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.KID, b.KID)
	})
	if over := len(valid) + retiring - MaxRetiredKeys; over > 0 {
		out = append(out, valid[:min(over, len(valid))]...)
	}
	return out
}

// rotateAlg rotates alg's keys (its stored keys, without private material,
// in list order) at now, and deletes the retired keys over MaxRetiredKeys.
// It returns nil, nil if another replica rotated first. The caller holds
// k.mu and has checked the rotation (checkRotation).
func (k *Keys) rotateAlg(ctx context.Context, alg string, keys []authz.SigningKey, maxLifetime time.Duration, now time.Time) (*Rotation, error) {
	var next *authz.SigningKey
	next = oldestNext(keys)
	if next == nil {
		// A rotation stopped between its compare-and-set and creating the
		// new next key. Make one now; it signs unannounced, which resource
		// servers handle by refetching the JWKS on an unknown kid.
		m, err := k.createKey(ctx, alg, authz.KeyNext, now)
		if err != nil {
			return nil, err
		}
		m.Private = nil
		next = &m
	}
	r := &Rotation{Alg: alg, Activated: next.KID, RemoveAfter: now.Add(maxLifetime + RemovalMargin)}
	from := map[string]authz.KeyState{next.KID: authz.KeyNext}
	var change []authz.SigningKey
	for _, m := range keys {
		if m.State != authz.KeyActive {
			continue
		}
		from[m.KID] = authz.KeyActive
		m.State, m.RetiredAt, m.RemoveAfter = authz.KeyRetired, now, r.RemoveAfter
		change = append(change, m)
		r.Retired = append(r.Retired, m.KID)
	}
	activated := *next
	activated.State, activated.ActivatedAt = authz.KeyActive, now
	change = append(change, activated)
	err := k.store.UpdateKeys(ctx, from, change)
	if errors.Is(err, authz.ErrConflict) {
		k.log.Info("signing keys rotated by another replica first", "alg", alg)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token: rotating %s keys: %w", alg, err)
	}
	k.log.Info("signing keys rotated", "alg", alg, "retired", r.Retired, "activated", r.Activated, "remove_after", r.RemoveAfter)
	// Evicting after the compare-and-set: a replica that lost the race
	// deletes nothing. Should a delete fail, the JWKS holds one key over
	// the bound until the next rotation or Prune deletes it.
	var errs []error
	for _, m := range toEvict(keys, now) {
		if err := k.store.DeleteKey(ctx, m.KID); err != nil && !errors.Is(err, authz.ErrNotFound) {
			errs = append(errs, fmt.Errorf("token: deleting retired signing key %s: %w", m.KID, err))
			continue
		}
		r.Evicted = append(r.Evicted, m.KID)
		if now.Before(m.RemoveAfter) {
			r.EarlyEvicted = append(r.EarlyEvicted, m.KID)
			k.log.Warn("retired signing key removed before its tokens expired: over the cap of retired keys", "kid", m.KID, "alg", alg, "remove_after", m.RemoveAfter, "max_retired", MaxRetiredKeys)
		} else {
			k.log.Info("retired signing key removed", "kid", m.KID, "alg", alg)
		}
	}
	// The new next key is made after the compare-and-set, so that a
	// replica that lost the race makes none. Should this fail, the next
	// rotation makes one (above).
	m, err := k.createKey(ctx, alg, authz.KeyNext, now)
	if err != nil {
		return r, errors.Join(append(errs, err)...)
	}
	r.Next = m.KID
	return r, errors.Join(errs...)
}

// createKey generates and stores a key for alg in state st.
func (k *Keys) createKey(ctx context.Context, alg string, st authz.KeyState, now time.Time) (authz.SigningKey, error) {
	m, err := k.generate(alg, st, now)
	if err != nil {
		return m, err
	}
	if err := k.store.CreateKey(ctx, m); err != nil {
		return m, fmt.Errorf("token: storing signing key: %w", err)
	}
	k.log.Info("signing key created", "kid", m.KID, "alg", alg, "state", string(st))
	return m, nil
}

// Prune deletes every retired key whose RemoveAfter has come (RemoveAfter
// <= now): no token it signed is still valid. It removes the key from the
// store and from the JWKS, and returns the kids it deleted. A key another
// replica deleted first is not an error.
func (k *Keys) Prune(ctx context.Context) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.load(ctx); err != nil {
		return nil, err
	}
	now := k.now()
	var deleted []string
	var errs []error
	for _, m := range k.cur.Load().list {
		if m.State != authz.KeyRetired || m.RemoveAfter.IsZero() || now.Before(m.RemoveAfter) {
			continue
		}
		err := k.store.DeleteKey(ctx, m.KID)
		if err != nil && !errors.Is(err, authz.ErrNotFound) {
			errs = append(errs, fmt.Errorf("token: deleting signing key %s: %w", m.KID, err))
			continue
		}
		k.log.Info("retired signing key removed", "kid", m.KID, "alg", m.Alg)
		deleted = append(deleted, m.KID)
	}
	if len(deleted) > 0 {
		if _, err := k.load(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return deleted, errors.Join(errs...)
}

// Refresh rereads the keys from the store, picking up what another replica
// created, rotated or pruned, and reports whether anything changed. It is
// cheap when nothing did (one store read), so servers call it every few
// seconds. On error the keys in memory stay in use.
func (k *Keys) Refresh(ctx context.Context) (changed bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.load(ctx)
}

// Reseal seals again, under the master key's primary, every stored private
// key sealed under a previous master key, and returns how many it
// resealed. Run after starting with a new primary and the old key as
// previous (masterkey.Sealer); once every replica has, the old key can go.
// Returns an error if a key opens with no key the sealer holds or the store
// fails.
func (k *Keys) Reseal(ctx context.Context) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	stored, err := k.store.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("token: loading signing keys: %w", err)
	}
	n := 0
	for _, m := range stored {
		if k.sealer.SealedByPrimary(m.Private) {
			continue
		}
		der, err := k.sealer.Open(m.Private, []byte(m.KID))
		if err != nil {
			return n, fmt.Errorf("token: signing key %s: %w", m.KID, err)
		}
		sealed, err := k.sealer.Seal(der, []byte(m.KID))
		clear(der)
		if err != nil {
			return n, err
		}
		err = k.store.UpdateKeyPrivate(ctx, m.KID, sealed)
		if errors.Is(err, authz.ErrNotFound) { // pruned meanwhile
			continue
		}
		if err != nil {
			return n, fmt.Errorf("token: resealing signing key %s: %w", m.KID, err)
		}
		n++
	}
	return n, nil
}
