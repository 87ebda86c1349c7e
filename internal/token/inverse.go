package token

import (
	"math/big"
	"sync"
)

// inverses hold the big.Int of inverseVarTime, whose storage (4 words) is
// then reused: one allocation less per signature.
var inverses = sync.Pool{New: func() any { return new(big.Int).SetBytes(make([]byte, 40)) }}

// inverseVarTime replaces v, a 32-byte big-endian integer, with its
// inverse mod the prime m, by math/big's ModInverse: fast and variable
// time, so v must be blinded, independent of any secret (the direct
// signers invert t = secret·β for a secret uniform β, see p256Signer and
// ed25519Signer). The pooled storage is cleared before it is returned.
// Reports false, with v unspecified, if v ≡ 0 mod m.
func inverseVarTime(v *[32]byte, m *big.Int) bool {
	t := inverses.Get().(*big.Int)
	t.SetBytes(v[:])
	ok := t.ModInverse(t, m) != nil
	t.FillBytes(v[:])
	w := t.Bits()
	clear(w[:cap(w)])
	t.SetInt64(0)
	inverses.Put(t)
	return ok
}
