package token

import (
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"math/big"
	"slices"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// ed25519Signer signs EdDSA (Ed25519, RFC 8032 §5.1.6; JWS RFC 8037 §3.1)
// for the token hot path. Its signatures are byte for byte those of
// crypto/ed25519.Sign (Ed25519 is deterministic), and it is safe for
// concurrent use.
//
// crypto/ed25519 spends about 2.6 µs of its 18 µs on the constant-time
// Fermat inversion (254 squarings) that turns R = r·B into its encoding,
// and more on looking up the expanded key in its cache for every call.
// This signer keeps the expanded key (RFC 8032 §5.1.5) and composes the
// same constant-time primitives, changing only the inversion:
//
//   - r·B, the scalars (r = SHA-512(prefix ‖ M) mod L, k, S = r + k·s
//     mod L): filippo.io/edwards25519, the public copy of the standard
//     library's crypto/internal/fips140/edwards25519 (same code, same
//     assembly), constant time.
//   - the encoding of R = (X:Y:Z) needs Z⁻¹. It is inverted blinded:
//     t = Z·β mod p for a secret β, t⁻¹ by inverseVarTime (a
//     variable-time safegcd, about 1.3 µs and no allocation, against the
//     constant-time Fermat inversion's 3.1 µs), Z⁻¹ = t⁻¹·β. β is SHA-512("blind" ‖ d)
//     taken mod p, d the 64-byte nonce digest SHA-512(prefix ‖ M): a
//     random-oracle output of a secret, so secret and independent of r,
//     and t is uniform over the nonzero elements and independent of Z, so
//     whatever the inversion's timing shows about t says nothing about
//     the nonce. With β ≡ 0 (probability about 2^-254) R is encoded the
//     constant-time way, so no signature fails.
//
// The encoding of R is then y with the sign of x in the top bit (RFC 8032
// §5.1.2), as edwards25519.Point.Bytes gives it.
type ed25519Signer struct {
	s      edwards25519.Scalar // the secret scalar, clamped (§5.1.5)
	prefix [32]byte            // the second half of SHA-512(seed)
	pub    [32]byte            // A, the public key's encoding
}

// ed25519P is p = 2^255 − 19, the field's prime (RFC 8032 §5.1).
var ed25519P = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

var errEd25519Key = errors.New("token: EdDSA wants a valid Ed25519 private key")

// newEd25519Signer returns the signer of priv, a 64-byte Ed25519 private
// key (seed ‖ public key, crypto/ed25519's form). Returns errEd25519Key if
// it has another length or its public half is not the seed's (which
// crypto/ed25519 would sign with regardless, giving signatures that do not
// verify); the error never contains key material.
func newEd25519Signer(priv ed25519.PrivateKey) (*ed25519Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errEd25519Key
	}
	h := sha512.Sum512(priv[:ed25519.SeedSize])
	defer clear(h[:])
	g := &ed25519Signer{}
	if _, err := g.s.SetBytesWithClamping(h[:32]); err != nil {
		return nil, errEd25519Key
	}
	copy(g.prefix[:], h[32:])
	copy(g.pub[:], priv[ed25519.SeedSize:])
	a := new(edwards25519.Point).ScalarBaseMult(&g.s)
	if subtle.ConstantTimeCompare(a.Bytes(), g.pub[:]) != 1 {
		return nil, errEd25519Key
	}
	return g, nil
}

// appendSign appends the Ed25519 signature of msg to b: R's encoding and
// S, 32 bytes each, little-endian (RFC 8032 §5.1.6), 64 bytes in all.
// msg must not lie in b's capacity beyond len(b).
func (g *ed25519Signer) appendSign(b, msg []byte) []byte {
	at := len(b)
	b = slices.Grow(b, 64)[:at+64]
	out := b[at:]

	// §5.1.6 steps 2-3: r = SHA-512(prefix ‖ M) mod L, R = r·B.
	var d [64]byte
	h := sha512.New()
	h.Write(g.prefix[:])
	h.Write(msg)
	h.Sum(d[:0])
	r, err := edwards25519.NewScalar().SetUniformBytes(d[:])
	if err != nil {
		panic("token: ed25519: " + err.Error()) // 64 bytes always fit
	}
	R := new(edwards25519.Point).ScalarBaseMult(r)
	var beta field.Element
	blindingOf(&beta, &d)
	encodePoint((*[32]byte)(out[:32]), R, &beta)
	beta.Zero()
	clear(d[:])

	// Steps 4-5: k = SHA-512(R ‖ A ‖ M) mod L, S = r + k·s mod L.
	h.Reset()
	h.Write(out[:32])
	h.Write(g.pub[:])
	h.Write(msg)
	h.Sum(d[:0])
	k, err := edwards25519.NewScalar().SetUniformBytes(d[:])
	if err != nil {
		panic("token: ed25519: " + err.Error())
	}
	S := edwards25519.NewScalar().MultiplyAdd(k, &g.s, r)
	copy(out[32:], S.Bytes())
	r.Set(edwards25519.NewScalar())
	return b
}

// blindingOf sets beta to β = SHA-512("blind" ‖ d)[:32] mod p for the
// nonce digest d (see ed25519Signer) and returns it.
func blindingOf(beta *field.Element, d *[64]byte) *field.Element {
	var in [5 + 64]byte
	copy(in[:], "blind")
	copy(in[5:], d[:])
	hb := sha512.Sum512(in[:])
	clear(in[:])
	_, err := beta.SetBytes(hb[:32]) // below 2^255: reduced mod p
	clear(hb[:])
	if err != nil {
		panic("token: ed25519: " + err.Error()) // 32 bytes always fit
	}
	return beta
}

// encodePoint writes the encoding of p (RFC 8032 §5.1.2) to out, inverting
// p's Z blinded by beta (see ed25519Signer); with beta ≡ 0, or if the
// inversion fails, it encodes p with the constant-time inversion.
func encodePoint(out *[32]byte, p *edwards25519.Point, beta *field.Element) {
	X, Y, Z, _ := p.ExtendedCoordinates()
	if beta.Equal(new(field.Element)) == 1 {
		copy(out[:], p.Bytes())
		return
	}

	// t = Z·β; t⁻¹ by inverseVarTime, which takes big-endian bytes.
	var buf [32]byte
	t := new(field.Element).Multiply(Z, beta)
	copy(buf[:], t.Bytes())
	slices.Reverse(buf[:])
	ok := ed25519PModulus.inverseVarTime(&buf) // t ≠ 0: Z ≠ 0 and β ≠ 0
	slices.Reverse(buf[:])
	zinv, err := new(field.Element).SetBytes(buf[:])
	clear(buf[:])
	if !ok || err != nil {
		copy(out[:], p.Bytes())
		return
	}
	zinv.Multiply(zinv, beta) // Z⁻¹ = t⁻¹·β

	x := new(field.Element).Multiply(X, zinv)
	y := new(field.Element).Multiply(Y, zinv)
	copy(out[:], y.Bytes())
	out[31] |= byte(x.IsNegative() << 7)
}
