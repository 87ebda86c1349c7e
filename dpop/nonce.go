package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// DefaultNonceWindow is the nonce window when NewNonces is given none.
const DefaultNonceWindow = 5 * time.Minute

// Nonces are stateless server nonces (RFC 9449 §8 at the token endpoint,
// §9 at a resource server): the nonce of a time window is
// base64url(HMAC-SHA-256(key, window number as 8 big-endian bytes)), so
// every replica holding key issues and accepts the same nonces without
// sharing state. A nonce is valid in its window and the next, so it lives
// between one and two windows. Safe for concurrent use.
type Nonces struct {
	key    []byte
	window time.Duration
	now    func() time.Time
}

// NewNonces returns nonces keyed with key, which should be 32 random bytes
// (derived from the server's master key, say; one key per server role), in
// windows of window (default DefaultNonceWindow), on the clock now (default
// time.Now). It panics if key is shorter than 16 bytes.
func NewNonces(key []byte, window time.Duration, now func() time.Time) *Nonces {
	if len(key) < 16 {
		panic("dpop: nonce key shorter than 16 bytes")
	}
	if window <= 0 {
		window = DefaultNonceWindow
	}
	if now == nil {
		now = time.Now
	}
	return &Nonces{key: append([]byte(nil), key...), window: window, now: now}
}

// Current returns the nonce of the current window, for the DPoP-Nonce
// response header.
func (n *Nonces) Current() string {
	return base64.RawURLEncoding.EncodeToString(n.mac(n.counter()))
}

// Valid reports whether nonce is the current window's or the previous
// one's, comparing in constant time.
func (n *Nonces) Valid(nonce string) bool {
	got, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	c := n.counter()
	cur := subtle.ConstantTimeCompare(got, n.mac(c))
	prev := subtle.ConstantTimeCompare(got, n.mac(c-1))
	return cur|prev == 1
}

func (n *Nonces) counter() int64 {
	t := n.now().UnixNano()
	c := t / int64(n.window)
	if t < 0 && t%int64(n.window) != 0 {
		c-- // floor, for clocks before 1970
	}
	return c
}

func (n *Nonces) mac(counter int64) []byte {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(counter))
	m.Write(b[:])
	return m.Sum(nil)
}
