// Package masterkey loads the server's key-encryption key and seals the
// secrets m2mauth keeps at rest (signing keys' private halves, the client
// secret pepper) with AES-256-GCM under it.
//
// The master key is 32 random bytes, given in standard base64 through
// M2MAUTH_MASTER_KEY or a file. Every replica of a cluster shares it.
package masterkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Len is the master key's length in bytes.
const Len = 32

const (
	version  = 1
	fpLen    = 8
	headerLn = 1 + fpLen
)

// ErrOpen is returned by Open when a sealed value cannot be opened with any
// key the Sealer holds: the wrong master key, or tampered data.
var ErrOpen = errors.New("masterkey: cannot open sealed value (wrong master key or corrupted data)")

// Parse decodes a master key from standard base64 (surrounding white space
// ignored). Returns an error unless it decodes to Len bytes.
func Parse(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("masterkey: not standard base64: %w", err)
	}
	if len(k) != Len {
		return nil, fmt.Errorf("masterkey: decodes to %d bytes, want %d", len(k), Len)
	}
	return k, nil
}

// Encode returns k in standard base64, the form Parse reads.
func Encode(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// LoadFile reads a master key from path (standard base64). Returns an error
// if the file is missing, unreadable or not a key.
func LoadFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("masterkey: %w", err)
	}
	k, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// LoadOrCreateFile reads the master key at path, or, if there is no file,
// creates one (mode 0600) with Len bytes from r. created reports which.
func LoadOrCreateFile(path string, r io.Reader) (key []byte, created bool, err error) {
	k, err := LoadFile(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	k = make([]byte, Len)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, false, fmt.Errorf("masterkey: reading randomness: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			k, err := LoadFile(path)
			return k, false, err
		}
		return nil, false, fmt.Errorf("masterkey: %w", err)
	}
	// Synced, file and directory: data sealed with this key must never
	// outlive the key itself after a crash.
	if _, err := f.WriteString(Encode(k) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("masterkey: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("masterkey: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("masterkey: writing %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return k, true, nil
}

// Sealer seals with its primary key and opens with the primary or any
// previous key, so that the master key can be rotated: start with the new
// key as primary and the old one as previous, and Reseal what is stored.
// It is safe for concurrent use.
type Sealer struct {
	rand    io.Reader
	primary key
	all     []key
}

type key struct {
	fp   [fpLen]byte
	aead cipher.AEAD
}

func newKey(k []byte) (key, error) {
	if len(k) != Len {
		return key{}, fmt.Errorf("masterkey: key is %d bytes, want %d", len(k), Len)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	sum := sha256.Sum256(append([]byte("m2mauth master key fingerprint\x00"), k...))
	var kk key
	copy(kk.fp[:], sum[:])
	kk.aead = aead
	return kk, nil
}

// NewSealer returns a Sealer that seals under primary and also opens what
// any of previous sealed. Nonces are read from r (crypto/rand.Reader).
func NewSealer(r io.Reader, primary []byte, previous ...[]byte) (*Sealer, error) {
	p, err := newKey(primary)
	if err != nil {
		return nil, err
	}
	s := &Sealer{rand: r, primary: p, all: []key{p}}
	for _, k := range previous {
		pk, err := newKey(k)
		if err != nil {
			return nil, err
		}
		s.all = append(s.all, pk)
	}
	return s, nil
}

// Seal encrypts plaintext under the primary key. aad binds the value to
// its purpose (e.g. the kid of a signing key): Open must be given the same.
// The result is version(1) ‖ key fingerprint(8) ‖ nonce(12) ‖ ciphertext+tag.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, headerLn, headerLn+12+len(plaintext)+16)
	out[0] = version
	copy(out[1:], s.primary.fp[:])
	nonce := make([]byte, s.primary.aead.NonceSize())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("masterkey: reading randomness: %w", err)
	}
	out = append(out, nonce...)
	return s.primary.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts what Seal returned, with whichever key sealed it. Returns
// ErrOpen if no key the Sealer holds opens it.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < headerLn+12+16 || sealed[0] != version {
		return nil, ErrOpen
	}
	for _, k := range s.all {
		if string(k.fp[:]) != string(sealed[1:headerLn]) {
			continue
		}
		nonce := sealed[headerLn : headerLn+12]
		pt, err := k.aead.Open(nil, nonce, sealed[headerLn+12:], aad)
		if err != nil {
			return nil, ErrOpen
		}
		return pt, nil
	}
	return nil, ErrOpen
}

// SealedByPrimary reports whether sealed was sealed under the primary key
// (false means it needs resealing after a master-key rotation).
func (s *Sealer) SealedByPrimary(sealed []byte) bool {
	return len(sealed) >= headerLn && string(sealed[1:headerLn]) == string(s.primary.fp[:])
}
