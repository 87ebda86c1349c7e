// Package clientsecret generates client secrets and checks them against
// their stored keyed hashes.
//
// A client secret reads "m2ms_<id>_<secret>": the fixed prefix lets secret
// scanners find a leaked one, <id> (20 lowercase hex digits) names the
// stored secret so that a request is checked against exactly one hash, and
// <secret> is 32 bytes (256 bits) from crypto/rand in unpadded base64url.
//
// Secrets are machine-generated and high-entropy, so a slow password hash
// (bcrypt, PBKDF2) would buy nothing but latency; the server keeps
// HMAC-SHA-256(pepper, secret), where the pepper is a server-side key that
// never sits in the database unsealed. A stolen database alone is then not
// even enough to test guesses offline.
package clientsecret

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
)

// Prefix starts every client secret.
const Prefix = "m2ms_"

const (
	idLen     = 20 // hex digits
	secretLen = 43 // base64url characters of 32 bytes
	// Len is the length of a client secret in bytes.
	Len = len(Prefix) + idLen + 1 + secretLen
)

// PepperLen is the pepper's length in bytes.
const PepperLen = 32

// ErrMalformed is returned by Parse for a string that is not a client secret.
var ErrMalformed = errors.New("clientsecret: malformed client secret")

// Generate returns a new secret id and the full client secret, reading 42
// bytes from r (crypto/rand.Reader in production).
func Generate(r io.Reader) (id, secret string, err error) {
	var b [10 + 32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", fmt.Errorf("clientsecret: reading randomness: %w", err)
	}
	id = hex.EncodeToString(b[:10])
	return id, Prefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[10:]), nil
}

// Parse returns the id embedded in a client secret. Returns ErrMalformed if
// s does not have the form Generate makes.
func Parse(s string) (id string, err error) {
	if len(s) != Len || !strings.HasPrefix(s, Prefix) || s[len(Prefix)+idLen] != '_' {
		return "", ErrMalformed
	}
	id = s[len(Prefix) : len(Prefix)+idLen]
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", ErrMalformed
		}
	}
	return id, nil
}

// DisplayPrefix returns the non-secret part of a client secret with this
// id, for administrators to tell secrets apart: "m2ms_<id>".
func DisplayPrefix(id string) string { return Prefix + id }

// Hasher computes and checks keyed hashes of client secrets. It is safe for
// concurrent use.
type Hasher struct {
	pool sync.Pool // *macState
}

// macState is one HMAC keyed with the pepper and the buffers of a check,
// reused so that checking a secret allocates nothing.
type macState struct {
	mac hash.Hash
	in  []byte // the secret, as the hash.Hash wants bytes
	out [sha256.Size]byte
}

// maxPooledSecret bounds the secret buffer a pooled macState keeps: a
// caller can send a long wrong secret, which must not stay in memory.
const maxPooledSecret = 256

// NewHasher returns a Hasher keyed with pepper. Returns an error unless
// pepper is PepperLen bytes.
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) != PepperLen {
		return nil, fmt.Errorf("clientsecret: pepper is %d bytes, want %d", len(pepper), PepperLen)
	}
	key := append([]byte(nil), pepper...)
	h := &Hasher{}
	h.pool.New = func() any { return &macState{mac: hmac.New(sha256.New, key), in: make([]byte, 0, Len)} }
	return h, nil
}

// Hash returns HMAC-SHA-256(pepper, secret): 32 bytes.
func (h *Hasher) Hash(secret string) []byte {
	var sum [sha256.Size]byte
	h.sum(&sum, secret)
	return sum[:]
}

// sum sets out to HMAC-SHA-256(pepper, secret).
func (h *Hasher) sum(out *[sha256.Size]byte, secret string) {
	st := h.pool.Get().(*macState)
	st.mac.Reset()
	st.in = append(st.in[:0], secret...)
	st.mac.Write(st.in)
	copy(out[:], st.mac.Sum(st.out[:0]))
	clear(st.in) // no copy of a secret stays in the pool
	if cap(st.in) > maxPooledSecret {
		st.in = make([]byte, 0, Len)
	}
	h.pool.Put(st)
}

// Verify reports whether secret hashes to want, comparing in constant time.
func (h *Hasher) Verify(secret string, want []byte) bool {
	var sum [sha256.Size]byte
	h.sum(&sum, secret)
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}
