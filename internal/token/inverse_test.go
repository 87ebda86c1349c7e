package token

import (
	"bytes"
	"crypto/elliptic"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
)

// inverseModuli are the moduli the direct signers invert by.
var inverseModuli = []struct {
	name string
	m    *big.Int
}{
	{"ed25519-p", ed25519P},
	{"p256-n", p256Order},
}

// modulusFor returns the signers' precomputed modulus for their m, else
// newModulus(m).
func modulusFor(m *big.Int) *modulus {
	switch m {
	case ed25519P:
		return ed25519PModulus
	case p256Order:
		return p256OrderModulus
	}
	return newModulus(m)
}

// bigInverse is inverseVarTime by math/big's ModInverse (the former
// implementation, without its sync.Pool): the reference of the
// cross-checks and the benchmark.
func bigInverse(v *[32]byte, m *big.Int) bool {
	x := new(big.Int).SetBytes(v[:])
	if x.Cmp(m) >= 0 {
		x.Mod(x, m)
	}
	if x.ModInverse(x, m) == nil {
		return false
	}
	x.FillBytes(v[:])
	return true
}

// checkInverse fails t unless modulusFor(m).inverseVarTime(x) agrees with bigInverse
// and, checked apart from ModInverse, x·x⁻¹ ≡ 1 mod m with x⁻¹ in
// [1, m−1].
func checkInverse(t testing.TB, x [32]byte, m *big.Int) {
	t.Helper()
	got, want := x, x
	ok, wantOK := modulusFor(m).inverseVarTime(&got), bigInverse(&want, m)
	if ok != wantOK {
		t.Fatalf("x=%x m=%x: reported %v, math/big %v", x, m, ok, wantOK)
	}
	if !ok {
		return
	}
	if got != want {
		t.Fatalf("x=%x m=%x:\n got %x\nwant %x", x, m, got, want)
	}
	inv := new(big.Int).SetBytes(got[:])
	if inv.Sign() <= 0 || inv.Cmp(m) >= 0 {
		t.Fatalf("x=%x m=%x: x⁻¹ = %x outside [1, m-1]", x, m, got)
	}
	if p := inv.Mul(inv, new(big.Int).SetBytes(x[:])).Mod(inv, m); p.Cmp(big.NewInt(1)) != 0 {
		t.Fatalf("x=%x m=%x: x·x⁻¹ mod m = %x, want 1", x, m, p)
	}
}

// bytes32 returns x, in [0, 2^256), as 32 bytes big-endian.
func bytes32(x *big.Int) (b [32]byte) {
	x.FillBytes(b[:])
	return b
}

// inverseEdges returns the edge cases of inverting mod m that fit in 32
// bytes: small values, neighbours of m, 2m and 2^256, powers of two, and
// long runs of zero or one bits.
func inverseEdges(m *big.Int) []*big.Int {
	var xs []*big.Int
	add := func(x *big.Int) {
		if x.Sign() >= 0 && x.BitLen() <= 256 {
			xs = append(xs, x)
		}
	}
	plus := func(a *big.Int, k int64) *big.Int { return new(big.Int).Add(a, big.NewInt(k)) }
	two256 := new(big.Int).Lsh(big.NewInt(1), 256)
	twoM := new(big.Int).Lsh(m, 1)
	for k := range int64(1001) {
		add(big.NewInt(k))
	}
	for _, k := range []int64{-2, -1, 0, 1, 2} {
		add(plus(m, k))
		add(plus(twoM, k))
		add(plus(two256, k-1)) // 2^256−3 to 2^256−1
	}
	add(new(big.Int).Rsh(m, 1))               // (m−1)/2
	add(new(big.Int).Rsh(plus(m, 1), 1))      // (m+1)/2
	add(new(big.Int).Sub(two256, m))          // 2^256 − m
	add(new(big.Int).Sub(two256, plus(m, 1))) // and −1
	for k := range uint(257) {
		p := new(big.Int).Lsh(big.NewInt(1), k)
		add(p)                                 // 2^k, m and above for large k
		add(new(big.Int).Mod(p, m))            // reduced
		add(plus(p, -1))                       // k ones
		add(plus(p, 1))                        // 1, k−1 zeros, 1
		add(new(big.Int).Sub(two256, p))       // 256−k ones, k zeros
		add(new(big.Int).Add(m, p))            // m + 2^k
		add(new(big.Int).Sub(m, p))            // m − 2^k
		add(new(big.Int).Xor(m, p))            // m with one bit flipped
		add(new(big.Int).Mod(plus(p, -1), m))  // k ones, reduced
		add(new(big.Int).Lsh(plus(p, -1), 64)) // k ones, 64 zeros
	}
	// Alternating runs of zeros and ones, of random lengths up to 128.
	rng := rand.New(rand.NewChaCha8([32]byte{'r', 'u', 'n', 's'}))
	for range 2000 {
		x, bit := new(big.Int), rng.UintN(2)
		for i := 0; i < 256; {
			n := 1 + rng.IntN(128)
			for ; n > 0 && i < 256; n, i = n-1, i+1 {
				x.SetBit(x, i, bit)
			}
			bit ^= 1
		}
		add(x)
	}
	return xs
}

// TestInverseVarTimeEdges: edge cases agree with math/big, for both
// moduli; 0, m and 2m have no inverse.
func TestInverseVarTimeEdges(t *testing.T) {
	for _, tc := range inverseModuli {
		t.Run(tc.name, func(t *testing.T) {
			for _, x := range inverseEdges(tc.m) {
				checkInverse(t, bytes32(x), tc.m)
			}
			for _, x := range []*big.Int{new(big.Int), tc.m, new(big.Int).Lsh(tc.m, 1)} {
				if x.BitLen() > 256 {
					continue // 2n does not fit
				}
				if v := bytes32(x); modulusFor(tc.m).inverseVarTime(&v) {
					t.Errorf("%x has an inverse mod %x", x, tc.m)
				}
			}
		})
	}
}

// TestInverseVarTimeKnown: inverses known without math/big.
func TestInverseVarTimeKnown(t *testing.T) {
	one := big.NewInt(1)
	for _, tc := range inverseModuli {
		mMinus1 := new(big.Int).Sub(tc.m, one)
		half := new(big.Int).Rsh(new(big.Int).Add(tc.m, one), 1)
		for _, c := range []struct {
			name   string
			x, inv *big.Int
		}{
			{"1", one, one},
			{"m-1", mMinus1, mMinus1},                 // (−1)⁻¹ = −1
			{"2", big.NewInt(2), half},                // 2·(m+1)/2 = m+1
			{"(m+1)/2", half, big.NewInt(2)},          // and back
			{"m+1", new(big.Int).Add(tc.m, one), one}, // unreduced
		} {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				v := bytes32(c.x)
				if !modulusFor(tc.m).inverseVarTime(&v) {
					t.Fatal("no inverse")
				}
				if want := bytes32(c.inv); v != want {
					t.Fatalf("got %x, want %x", v, want)
				}
			})
		}
	}
}

// TestInverseVarTimeRandom: 200 000 uniform 32-byte values per modulus
// (about half of them m and above for ed25519-p) agree with math/big.
func TestInverseVarTimeRandom(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	for i, tc := range inverseModuli {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.NewChaCha8([32]byte{'i', 'n', 'v', byte(i)})
			var x [32]byte
			for range n {
				rng.Read(x[:])
				checkInverse(t, x, tc.m)
			}
		})
	}
}

// TestInverseVarTimeOtherModuli: the algorithm holds for any odd modulus
// in [3, 2^256), prime or not (then false exactly when gcd(x, m) ≠ 1):
// fixed ones and random ones of every bit length, with random and edge
// inputs.
func TestInverseVarTimeOtherModuli(t *testing.T) {
	fromHex := func(s string) *big.Int {
		x, ok := new(big.Int).SetString(s, 16)
		if !ok {
			t.Fatal(s)
		}
		return x
	}
	pow2 := func(k uint, d int64) *big.Int {
		return new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), k), big.NewInt(d))
	}
	moduli := []*big.Int{
		big.NewInt(3), big.NewInt(5), big.NewInt(9), big.NewInt(15), big.NewInt(1<<31 - 1),
		pow2(61, -1), pow2(64, -59), pow2(127, -1), pow2(255, -1), pow2(256, -1), pow2(256, -189),
		fromHex("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f"), // secp256k1 p
		fromHex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"), // secp256k1 n
		elliptic.P256().Params().P,
		new(big.Int).Mul(pow2(127, -1), pow2(61, -1)), // composite
	}
	rng := rand.NewChaCha8([32]byte{'m', 'o', 'd'})
	for bitLen := 2; bitLen <= 256; bitLen++ {
		m := randBelow(rng, new(big.Int).Lsh(big.NewInt(1), uint(bitLen)))
		m.SetBit(m, bitLen-1, 1).SetBit(m, 0, 1)
		moduli = append(moduli, m)
	}
	for _, m := range moduli {
		t.Run(fmt.Sprintf("%d-bit/%x", m.BitLen(), m), func(t *testing.T) {
			if m.Bit(0) == 0 || m.BitLen() < 2 || m.BitLen() > 256 {
				t.Fatalf("not a valid test modulus: %x", m)
			}
			var x [32]byte
			for range 300 {
				rng.Read(x[:])
				checkInverse(t, x, m)
				// reduced, as the signers pass it
				checkInverse(t, bytes32(new(big.Int).Mod(new(big.Int).SetBytes(x[:]), m)), m)
			}
			for _, k := range []int64{-1, 0, 1, 2} {
				if x := new(big.Int).Add(m, big.NewInt(k)); x.BitLen() <= 256 {
					checkInverse(t, bytes32(x), m)
				}
				checkInverse(t, bytes32(big.NewInt(k+1)), m)
			}
			checkInverse(t, [32]byte(bytes.Repeat([]byte{0xff}, 32)), m)
		})
	}
}

// randBelow returns a uniform random integer in [0, n), n ≤ 2^256.
func randBelow(rng *rand.ChaCha8, n *big.Int) *big.Int {
	var b [32]byte
	x := new(big.Int)
	for {
		rng.Read(b[:])
		x.SetBytes(b[:])
		x.Rsh(x, uint(256-n.BitLen()))
		if x.Cmp(n) < 0 {
			return x
		}
	}
}

// TestNewModulusPanics: newModulus refuses an even modulus, one below 3 and
// one of more than 256 bits.
func TestNewModulusPanics(t *testing.T) {
	two256 := new(big.Int).Lsh(big.NewInt(1), 256)
	for _, c := range []struct {
		name  string
		m     *big.Int
		panic bool
	}{
		{"zero", big.NewInt(0), true},
		{"one", big.NewInt(1), true},
		{"two", big.NewInt(2), true},
		{"negative", big.NewInt(-3), true},
		{"even", new(big.Int).Sub(two256, big.NewInt(2)), true},
		{"257 bits", new(big.Int).Add(two256, big.NewInt(1)), true},
		{"three", big.NewInt(3), false},
		{"2^256-1", new(big.Int).Sub(two256, big.NewInt(1)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if r := recover(); (r != nil) != c.panic {
					t.Fatalf("panic %v, want a panic: %v", r, c.panic)
				}
			}()
			newModulus(c.m)
		})
	}
}

// TestInverseVarTimeAllocs: no heap allocation for the signers' moduli.
func TestInverseVarTimeAllocs(t *testing.T) {
	for _, tc := range inverseModuli {
		v := bytes32(new(big.Int).Rsh(tc.m, 3))
		if n := testing.AllocsPerRun(1000, func() {
			w := v
			modulusFor(tc.m).inverseVarTime(&w)
		}); n != 0 {
			t.Errorf("%s: %v allocations per inversion, want 0", tc.name, n)
		}
	}
}

// FuzzInverseVarTime: for any 32-byte value (the input's first 32 bytes,
// right-aligned if shorter), inverseVarTime agrees with math/big for both
// moduli.
func FuzzInverseVarTime(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2})
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	for _, tc := range inverseModuli {
		f.Add(tc.m.Bytes())
		f.Add(new(big.Int).Sub(tc.m, big.NewInt(1)).Bytes())
		f.Add(new(big.Int).Add(tc.m, big.NewInt(1)).Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var x [32]byte
		copy(x[32-min(len(in), 32):], in)
		for _, tc := range inverseModuli {
			checkInverse(t, x, tc.m)
		}
	})
}

// FuzzInverseVarTimeModulus: for any odd modulus in [3, 2^256) and any
// 32-byte value (both right-aligned, first 32 bytes), inverseVarTime
// agrees with math/big.
func FuzzInverseVarTimeModulus(f *testing.F) {
	f.Add([]byte{5}, []byte{3})
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 32))
	f.Add(ed25519P.Bytes(), []byte{2})
	f.Fuzz(func(t *testing.T, mb, in []byte) {
		m := new(big.Int).SetBytes(mb[:min(len(mb), 32)])
		if m.Bit(0) == 0 || m.BitLen() < 2 {
			return
		}
		var x [32]byte
		copy(x[32-min(len(in), 32):], in)
		checkInverse(t, x, m)
	})
}

// BenchmarkInverseVarTime: safegcd against math/big, on 256 random values
// below each modulus in turn (the time depends on the value).
func BenchmarkInverseVarTime(b *testing.B) {
	inputs := make(map[string][][32]byte)
	for _, tc := range inverseModuli {
		rng := rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h'})
		xs := make([][32]byte, 256)
		for i := range xs {
			xs[i] = bytes32(randBelow(rng, tc.m))
		}
		inputs[tc.name] = xs
	}
	// Direct calls: through a func value v would escape to the heap.
	for _, tc := range inverseModuli {
		xs, md := inputs[tc.name], modulusFor(tc.m)
		b.Run("safegcd/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				v := xs[i%len(xs)]
				md.inverseVarTime(&v)
			}
		})
		b.Run("big/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				v := xs[i%len(xs)]
				bigInverse(&v, tc.m)
			}
		})
	}
}
