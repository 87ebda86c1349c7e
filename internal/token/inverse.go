package token

import (
	"encoding/binary"
	"math/big"
	"math/bits"
)

// The moduli of the direct signers, precomputed (public values only).
var (
	ed25519PModulus  = newModulus(ed25519P)
	p256OrderModulus = newModulus(p256Order)
)

// A modulus is an odd m in [3, 2^256) prepared for inverseVarTime.
type modulus struct {
	m     limbs62
	inv62 uint64 // m⁻¹ mod 2^62
}

// newModulus precomputes m. It panics unless m is odd and in [3, 2^256).
func newModulus(m *big.Int) *modulus {
	if m.Sign() <= 0 || m.Bit(0) == 0 || m.BitLen() < 2 || m.BitLen() > 256 {
		panic("token: newModulus wants an odd modulus in [3, 2^256)")
	}
	var b [32]byte
	md := new(modulus)
	m.FillBytes(b[:])
	md.m.setBytes(&b)
	// Newton's iteration doubles the correct low bits: m·m ≡ 1 mod 8 for
	// any odd m, so 5 steps give 96 ≥ 62.
	m0 := uint64(md.m[0])
	x := m0
	for range 5 {
		x *= 2 - m0*x
	}
	md.inv62 = x & mask62
	return md
}

const mask62 = 1<<62 - 1

// limbs62 is a signed integer Σ a[i]·2^(62·i) of at most 5 limbs: a[0..n−2]
// in [0, 2^62), the top one a[n−1] signed, so that its sign is the
// number's. 310 bits hold a 256-bit number and its sign with room to spare.
type limbs62 [5]int64

// setBytes sets a to b, 32 bytes big-endian.
func (a *limbs62) setBytes(b *[32]byte) {
	w3 := binary.BigEndian.Uint64(b[0:8])
	w2 := binary.BigEndian.Uint64(b[8:16])
	w1 := binary.BigEndian.Uint64(b[16:24])
	w0 := binary.BigEndian.Uint64(b[24:32])
	a[0] = int64(w0 & mask62)
	a[1] = int64((w0>>62 | w1<<2) & mask62)
	a[2] = int64((w1>>60 | w2<<4) & mask62)
	a[3] = int64((w2>>58 | w3<<6) & mask62)
	a[4] = int64(w3 >> 56)
}

// putBytes writes a, which must be in [0, 2^256), to b, 32 bytes big-endian.
func (a *limbs62) putBytes(b *[32]byte) {
	binary.BigEndian.PutUint64(b[0:8], uint64(a[3])>>6|uint64(a[4])<<56)
	binary.BigEndian.PutUint64(b[8:16], uint64(a[2])>>4|uint64(a[3])<<58)
	binary.BigEndian.PutUint64(b[16:24], uint64(a[1])>>2|uint64(a[2])<<60)
	binary.BigEndian.PutUint64(b[24:32], uint64(a[0])|uint64(a[1])<<62)
}

// isZero reports whether a, of n limbs, is 0.
func (a *limbs62) isZero(n int) bool { return allZero(a[:n]) }

// isOne reports whether a, of n limbs, is 1.
func (a *limbs62) isOne(n int) bool { return a[0] == 1 && allZero(a[1:n]) }

func allZero(l []int64) bool {
	for _, x := range l {
		if x != 0 {
			return false
		}
	}
	return true
}

// neg sets a, of n limbs, to −a.
func (a *limbs62) neg(n int) {
	var c int64
	for i := range n - 1 {
		c -= a[i]
		a[i] = c & mask62
		c >>= 62
	}
	a[n-1] = c - a[n-1]
}

// add sets a to a + b, both of 5 limbs.
func (a *limbs62) add(b *limbs62) {
	var c int64
	for i := range 4 {
		c += a[i] + b[i]
		a[i] = c & mask62
		c >>= 62
	}
	a[4] += b[4] + c
}

// int128 is a signed 128-bit accumulator, hi·2^64 + lo in two's complement.
// Its methods take and return values, so that it lives in registers.
type int128 struct {
	hi int64
	lo uint64
}

// addMul returns x + a·b.
func (x int128) addMul(a, b int64) int128 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	// Mul64 reads a negative a as a + 2^64, adding b·2^64 (and a·2^64 for
	// a negative b) to the product; the rest vanishes mod 2^128.
	shi := int64(hi) - a>>63&b - b>>63&a
	lo, c := bits.Add64(x.lo, lo, 0)
	return int128{x.hi + shi + int64(c), lo}
}

// low62 returns x's low 62 bits.
func (x int128) low62() int64 { return int64(x.lo & mask62) }

// shr62 returns x/2^62, rounded towards −∞.
func (x int128) shr62() int128 {
	return int128{x.hi >> 62, x.lo>>62 | uint64(x.hi)<<2}
}

// A transition is the matrix of 62 divsteps, times 2^62 so that its
// entries are integers: 62 divsteps take (f, g) to
// ((u·f + v·g)/2^62, (q·f + r·g)/2^62), exactly. |u|+|v| ≤ 2^62 and
// |q|+|r| ≤ 2^62 (each divstep at most doubles a row's sum).
type transition struct{ u, v, q, r int64 }

// divsteps62 runs 62 divsteps (Bernstein–Yang §8) from eta = −δ and f, g
// (f odd), of which it needs only the low 64 bits: 62 divsteps depend on
// the low 62 bits alone. It returns the new eta and the transition.
//
// A divstep with δ > 0 and g odd is (δ, f, g) → (1−δ, g, (g−f)/2), with
// g odd otherwise (1+δ, f, (g+f)/2), with g even (1+δ, f, g/2). Runs of
// them are taken at once: all of g's trailing zeros, and, while δ ≤ 0
// would hold at every odd g, up to 6 additions of f together, the
// multiple w of f that clears g's low bits.
func divsteps62(eta int, f, g uint64) (int, transition) {
	u, v, q, r := int64(1), int64(0), int64(0), int64(1) // (f, g) = (f, g)·2^0
	left := 62
	for {
		// g/2 per zero bit; the matrix keeps integer entries by doubling
		// the f row instead of halving the g row. Bit left stops the
		// count at left; &63 tells the compiler that the counts are
		// below 64, sparing the code for larger ones.
		z := bits.TrailingZeros64(g | 1<<left)
		g >>= z & 63
		u <<= z & 63
		v <<= z & 63
		eta -= z
		left -= z
		if left == 0 {
			return eta, transition{u, v, q, r}
		}
		// g is odd.
		if eta < 0 { // δ > 0: (f, g) → (g, −f), then g+f below
			eta = -eta
			f, g = g, -f
			u, v, q, r = q, r, -u, -v
		}
		// The next k divsteps, for an odd or even g each, add f or not
		// and halve: k ≤ eta+1 keeps δ ≤ 0 for all of them. f·(2−f²) is
		// f⁻¹ mod 2^6 (f² ≡ 1 mod 8 for an odd f, one Newton step).
		k := min(eta+1, left, 6)
		w := -g * f * (2 - f*f) & (1<<(k&63) - 1)
		g += w * f
		q += int64(w) * u
		r += int64(w) * v
	}
}

// updateFG sets (f, g), of n limbs, to t·(f, g)/2^62.
func updateFG(f, g *limbs62, n int, t transition) {
	var cf, cg int128
	cf = cf.addMul(t.u, f[0])
	cf = cf.addMul(t.v, g[0])
	cg = cg.addMul(t.q, f[0])
	cg = cg.addMul(t.r, g[0])
	cf = cf.shr62() // the low 62 bits are 0: the divsteps made them so
	cg = cg.shr62()
	for i := 1; i < n; i++ {
		cf = cf.addMul(t.u, f[i])
		cf = cf.addMul(t.v, g[i])
		cg = cg.addMul(t.q, f[i])
		cg = cg.addMul(t.r, g[i])
		f[i-1], g[i-1] = cf.low62(), cg.low62()
		cf = cf.shr62()
		cg = cg.shr62()
	}
	// |f|, |g| never grow, so the top limbs fit in 64 bits.
	f[n-1], g[n-1] = int64(cf.lo), int64(cg.lo)
}

// updateDE sets (d, e), both in (−2m, m), to t·(d, e)/2^62 mod m, again in
// (−2m, m). A negative d is taken as d+m (and e as e+m), in (−m, m), so
// that t·(d, e) lies in (−2^62·m, 2^62·m); then it adds the multiple of m
// in (−2^62·m, 0] that clears the low 62 bits.
func (md *modulus) updateDE(d, e *limbs62, t transition) {
	m := &md.m
	sd, se := d[4]>>63, e[4]>>63 // −1 if negative, else 0
	kd := t.u&sd + t.v&se
	ke := t.q&sd + t.r&se
	var cd, ce int128
	cd = cd.addMul(t.u, d[0])
	cd = cd.addMul(t.v, e[0])
	ce = ce.addMul(t.q, d[0])
	ce = ce.addMul(t.r, e[0])
	kd -= int64((md.inv62*cd.lo + uint64(kd)) & mask62)
	ke -= int64((md.inv62*ce.lo + uint64(ke)) & mask62)
	cd = cd.addMul(kd, m[0])
	ce = ce.addMul(ke, m[0])
	cd = cd.shr62()
	ce = ce.shr62()
	for i := 1; i < 5; i++ {
		cd = cd.addMul(t.u, d[i])
		cd = cd.addMul(t.v, e[i])
		cd = cd.addMul(kd, m[i])
		ce = ce.addMul(t.q, d[i])
		ce = ce.addMul(t.r, e[i])
		ce = ce.addMul(ke, m[i])
		d[i-1], e[i-1] = cd.low62(), ce.low62()
		cd = cd.shr62()
		ce = ce.shr62()
	}
	d[4], e[4] = int64(cd.lo), int64(ce.lo)
}

// maxBatches bounds the batches of 62 divsteps: ⌊(49·256+57)/17⌋ = 741
// divsteps reach g = 0 from any f, g with f² + 4g² ≤ 5·4^256
// (Bernstein–Yang, Theorem 11.2), as f = m and g = v below 2^256 are;
// 12·62 = 744.
const maxBatches = 12

// inverseVarTime replaces v, a 32-byte big-endian integer (any value, m
// and above too), with v⁻¹ mod m, md's modulus, fully reduced into [1, m−1]. Reports
// false, with v unspecified, if v has no inverse (v ≡ 0 mod m, m prime).
// It does not allocate. The signers invert by ed25519PModulus and
// p256OrderModulus.
//
// It is the "safegcd" of Bernstein and Yang, "Fast constant-time gcd
// computation and modular inversion" (2019, §11), in variable time:
// batches of 62 divsteps, each batch's runs of divsteps taken at once,
// limbs dropped as f and g shrink, and a stop at g = 0. Its time depends
// on v, so v must be blinded, independent of any secret (the direct
// signers invert t = secret·β for a secret uniform β, see p256Signer and
// ed25519Signer). About 1.2 µs against math/big ModInverse's 1.5 µs and
// 11 allocations (BenchmarkInverseVarTime); TestInverseVarTimeRandom and
// the fuzz targets check it against math/big.
func (md *modulus) inverseVarTime(v *[32]byte) bool {
	// Invariants, mod m: d·v ≡ f, e·v ≡ g. f starts odd and stays odd, so
	// v needs no reduction first: at g = 0, f = ±gcd(m, v).
	f := md.m
	var g, d, e limbs62
	g.setBytes(v)
	e[0] = 1
	eta, n := -1, 5 // δ = 1; f and g fit in n limbs
	for i := 0; !g.isZero(n); i++ {
		if i == maxBatches {
			panic("token: inverseVarTime did not converge")
		}
		f64, g64 := uint64(f[0]), uint64(g[0])
		if n > 1 {
			f64 |= uint64(f[1]) << 62
			g64 |= uint64(g[1]) << 62
		}
		var t transition
		eta, t = divsteps62(eta, f64, g64)
		md.updateDE(&d, &e, t)
		updateFG(&f, &g, n, t)
		// Both top limbs 0 or −1 (f and g shrink): fold them into the next.
		if fn, gn := f[n-1], g[n-1]; n > 1 && (fn == 0 || fn == -1) && (gn == 0 || gn == -1) {
			f[n-2] |= fn << 62
			g[n-2] |= gn << 62
			n--
		}
	}
	neg := f[n-1] < 0
	if neg {
		f.neg(n)
	}
	if !f.isOne(n) {
		return false
	}
	// v⁻¹ ≡ ±d for f = ±1, d in (−2m, m).
	if d[4] < 0 {
		d.add(&md.m) // (−m, m)
	}
	if neg {
		d.neg(5)
	}
	if d[4] < 0 {
		d.add(&md.m) // [0, m)
	}
	d.putBytes(v)
	return true
}
