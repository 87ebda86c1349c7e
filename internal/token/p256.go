package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"slices"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// p256Signer signs ES256 (ECDSA over P-256 with SHA-256, FIPS 186-5
// §6.4.1; JWS form r||s, RFC 7518 §3.4) for the token hot path. It is
// built once per active key and is safe for concurrent use.
//
// crypto/ecdsa.SignASN1 spends about half of its 30 µs and most of its 59
// allocations outside the curve arithmetic: an HMAC-SHA-512 DRBG for the
// hedged nonce, a Fermat inversion of k and the ASN.1 encoding. This
// signer composes the same constant-time primitives and changes only the
// glue:
//
//   - k·G and its x-coordinate: filippo.io/nistec, the public copy of the
//     standard library's P-256 (crypto/internal/fips140/nistec, same
//     assembly), constant time.
//   - every scalar operation mod n on a secret: filippo.io/bigmod, the
//     public copy of the standard library's constant-time modular
//     arithmetic (crypto/internal/fips140/bigmod).
//   - the nonce: hedged, k = SHA-512(d ‖ Z ‖ e) mod n, Z 32 bytes of the
//     issuer's randomness, the construction of Ed25519's nonce (RFC 8032
//     §5.1.6) with entropy added, as draft-irtf-cfrg-det-sigs-with-noise
//     proposes. SHA-512 is a PRF keyed by the secret d, so k is secret,
//     uniform and distinct per message even if Z is all zeros or
//     repeats: with a broken source the signature is deterministic (as RFC
//     6979's), never a repeated nonce over two messages; with a good source
//     one message signed twice gets two nonces, which is what blunts fault
//     attacks on purely deterministic signing. The 512-bit hash reduced mod
//     n has a bias of 2^-256. (This is not one of the k generations of FIPS
//     186-5 Appendix A.3, so the signer is not a FIPS-validated one; neither
//     is crypto/ecdsa outside its FIPS mode.)
//   - k⁻¹: the only inversion that nistec has is unexported, and bigmod's
//     constant-time Fermat inversion (Exp by n−2) costs +20 µs, so k is
//     inverted blinded: t = k·b mod n for a secret uniform b in [1, n−1],
//     t⁻¹ by inverseVarTime (variable time), k⁻¹ = t⁻¹·b mod n. t is
//     uniform over [1, n−1] and independent of k (b uniform, n prime), so
//     whatever the timing of the inversion shows about t says nothing about
//     k. b comes from a second hash, SHA-512("blind" ‖ d ‖ Z ‖ e), of the
//     secret d too, never from Z alone: with a predictable source b stays
//     secret, and t still hides k; as a separate random-oracle output it
//     is independent of k. (SHAKE256 squeezing both k and b measured the
//     same 0.37 µs as the two SHA-512; bigmod's InverseVarTime 13 µs against
//     math/big's ModInverse 1.3–1.8 µs and 9 allocations, and
//     inverseVarTime's safegcd about 1.3 µs and none.)
//   - s = k⁻¹·(e + r·d) mod n in bigmod; e, the digest, is taken mod n as
//     FIPS 186-5 §6.4.1 and §6.4.2 do (the digest as an integer, then
//     reduced; SHA-256 is as long as n, so no bits are dropped).
//
// r = 0, s = 0, k = 0 or b = 0 are errors, not retries: each has a
// probability of about 2^-256 per signature.
type p256Signer struct {
	d  [32]byte    // the private scalar, big-endian, in [1, n−1]
	dn *bigmod.Nat // d mod n; only read after newP256Signer
}

var (
	// p256Order is n, the order of P-256's base point (FIPS 186-5 /
	// SP 800-186 §3.2.1.3).
	p256Order = elliptic.P256().Params().N
	p256N     = mustModulus(p256Order.Bytes())
	// p256R256 is 2^256 mod n, to reduce 512-bit hashes (reduce512).
	p256R256 = func() *bigmod.Nat {
		c := new(big.Int).Lsh(big.NewInt(1), 256)
		c.Mod(c, p256Order)
		n, err := bigmod.NewNat().SetBytes(c.FillBytes(make([]byte, 32)), p256N)
		if err != nil {
			panic(err)
		}
		return n
	}()
)

func mustModulus(b []byte) *bigmod.Modulus {
	m, err := bigmod.NewModulus(b)
	if err != nil {
		panic(err)
	}
	return m
}

var (
	errP256Key    = errors.New("token: ES256 wants a valid P-256 private key")
	errP256Digest = errors.New("token: ES256 signs a 32-byte SHA-256 digest")
	// errP256Unlucky is a zero k, b, r or s: probability about 2^-256.
	errP256Unlucky = errors.New("token: ES256 signature: a zero scalar, sign again")
)

// newP256Signer returns the signer of priv, a P-256 key. Returns
// errP256Key for any other curve or a scalar outside [1, n−1]; the error
// never contains key material.
func newP256Signer(priv *ecdsa.PrivateKey) (*p256Signer, error) {
	if priv.Curve != elliptic.P256() {
		return nil, errP256Key
	}
	d, err := priv.Bytes() // SEC 1 §2.3.6: 32 bytes, big-endian
	if err != nil || len(d) != 32 {
		return nil, errP256Key
	}
	s := &p256Signer{}
	copy(s.d[:], d)
	clear(d)
	if s.dn, err = bigmod.NewNat().SetBytes(s.d[:], p256N); err != nil || s.dn.IsZero() == 1 {
		return nil, errP256Key
	}
	return s, nil
}

// appendSignDigest appends the ES256 signature of digest, a SHA-256 hash
// of 32 bytes, to b: r and s as 32-byte big-endian integers, r first (RFC
// 7518 §3.4), 64 bytes in all. It reads 32 bytes from rand for the hedged
// nonce, through b's spare capacity (where the signature then goes), so
// that they do not escape to the heap. Returns b unchanged and an error if
// digest is not 32 bytes, rand fails, or a scalar is zero (errP256Unlucky).
// digest must not lie in b's capacity beyond len(b).
func (s *p256Signer) appendSignDigest(b []byte, rand io.Reader, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return b, errP256Digest
	}
	at := len(b)
	b = slices.Grow(b, 64)[:at+64]
	out := b[at:]
	if _, err := io.ReadFull(rand, out[:32]); err != nil {
		clear(out)
		return b[:at], fmt.Errorf("token: ES256 signature: reading randomness: %w", err)
	}
	// in = d ‖ Z ‖ e for k; "blind" ‖ d ‖ Z ‖ e for b.
	var in [5 + 96]byte
	copy(in[:], "blind")
	copy(in[5:], s.d[:])
	copy(in[5+32:], out[:32])
	copy(in[5+64:], digest)
	hk := sha512.Sum512(in[5:])
	hb := sha512.Sum512(in[:])
	clear(in[:])
	err := s.sign(out, &hk, &hb, digest)
	clear(hk[:])
	clear(hb[:])
	if err != nil {
		clear(out)
		return b[:at], err
	}
	return b, nil
}

// sign writes r ‖ s to out (64 bytes) for the nonce k = hk mod n, the
// blinding b = hb mod n and the digest e (32 bytes). Every operation on k,
// b and d is constant time but the inversion of t = k·b (see p256Signer).
func (s *p256Signer) sign(out []byte, hk, hb *[64]byte, e []byte) error {
	k := reduce512(bigmod.NewNat(), hk)
	if k.IsZero() == 1 {
		return errP256Unlucky
	}
	var kb [32]byte
	natBytes(&kb, k)

	// R = k·G, r = x(R) mod n (FIPS 186-5 §6.4.1).
	var p nistec.P256Point
	if _, err := p.ScalarBaseMult(kb[:]); err != nil {
		return errP256Unlucky
	}
	x, err := p.BytesX() // an error only for the point at infinity
	if err != nil {
		return errP256Unlucky
	}
	r, err := bigmod.NewNat().SetOverflowingBytes(x, p256N) // x < p < 2n
	if err != nil || r.IsZero() == 1 {
		return errP256Unlucky
	}

	// k⁻¹ = (k·b)⁻¹·b mod n, blinded (see p256Signer).
	bl := reduce512(bigmod.NewNat(), hb)
	if bl.IsZero() == 1 {
		return errP256Unlucky
	}
	t := k.Mul(bl, p256N) // k is not needed any more
	natBytes(&kb, t)
	if !p256OrderModulus.inverseVarTime(&kb) { // t is in [1, n−1], n is prime
		return errP256Unlucky
	}
	kinv, err := bigmod.NewNat().SetBytes(kb[:], p256N)
	if err != nil {
		return errP256Unlucky
	}
	kinv.Mul(bl, p256N)
	clear(kb[:])

	// s = k⁻¹·(e + r·d) mod n (§6.4.1); e taken mod n: a digest may exceed n.
	en, err := bigmod.NewNat().SetOverflowingBytes(e, p256N)
	if err != nil {
		return errP256Digest
	}
	natBytes(&kb, r)
	sn, err := bigmod.NewNat().SetBytes(kb[:], p256N)
	if err != nil {
		return errP256Unlucky
	}
	sn.Mul(s.dn, p256N).Add(en, p256N).Mul(kinv, p256N)
	if sn.IsZero() == 1 {
		return errP256Unlucky
	}
	natBytes((*[32]byte)(out[:32]), r)
	natBytes((*[32]byte)(out[32:64]), sn)
	return nil
}

// reduce512 sets x = h mod n, h a 512-bit big-endian integer, in constant
// time: h = hi·2^256 + lo, each half taken mod n (it is below 2^256 < 2n),
// then hi·(2^256 mod n) + lo.
func reduce512(x *bigmod.Nat, h *[64]byte) *bigmod.Nat {
	if _, err := x.SetOverflowingBytes(h[:32], p256N); err != nil {
		panic("token: reduce512: " + err.Error()) // 256 bits always fit
	}
	lo, err := bigmod.NewNat().SetOverflowingBytes(h[32:], p256N)
	if err != nil {
		panic("token: reduce512: " + err.Error())
	}
	return x.Mul(p256R256, p256N).Add(lo, p256N)
}

// natBytes writes x, a Nat of n's size, to out as 32 big-endian bytes,
// without the allocation of x.Bytes.
func natBytes(out *[32]byte, x *bigmod.Nat) {
	i := len(out)
	for _, limb := range x.Bits() {
		for range bits.UintSize / 8 {
			i--
			out[i] = byte(limb)
			limb >>= 8
		}
	}
}
