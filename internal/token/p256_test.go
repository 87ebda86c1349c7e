package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// p256Key returns a new P-256 key and its direct signer.
func p256Key(t testing.TB) (*ecdsa.PrivateKey, *p256Signer) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newP256Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, s
}

// splitRS returns the r and s of a 64-byte JWS ECDSA signature, failing t
// unless both are in [1, n−1] (FIPS 186-5 §6.4.1).
func splitRS(t testing.TB, sig []byte) (r, s *big.Int) {
	t.Helper()
	if len(sig) != 64 {
		t.Fatalf("a %d-byte signature, want 64", len(sig))
	}
	r, s = new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	for _, v := range []*big.Int{r, s} {
		if v.Sign() <= 0 || v.Cmp(p256Order) >= 0 {
			t.Fatalf("r or s = %x, outside [1, n-1]", v)
		}
	}
	return r, s
}

// TestP256SignCrossCheck: thousands of tokens, each by a new random key
// over a random message, signed by newJWSKey's direct ES256 signer, verify
// with crypto/ecdsa.Verify and with go-jose's parser (allow-list) and
// verifier.
func TestP256SignCrossCheck(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := range n {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := newJWSKey(authz.ES256, "kid-1", priv)
		if err != nil {
			t.Fatal(err)
		}
		if k.p256 == nil {
			t.Fatal("an *ecdsa.PrivateKey does not sign through p256Signer")
		}
		claims := make([]byte, 1+i%300)
		rand.Read(claims)
		input := []byte(k.header + base64.RawURLEncoding.EncodeToString(claims))
		prefix := []byte("prefix")
		out, err := k.appendSignature(prefix, rand.Reader, input)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("appendSignature lost the buffer's start: %q", out)
		}
		sig := out[len(prefix):]
		r, s := splitRS(t, sig)
		d := sha256.Sum256(input)
		if !ecdsa.Verify(&priv.PublicKey, d[:], r, s) {
			t.Fatalf("signature %d: crypto/ecdsa does not verify it", i)
		}
		jws, err := jose.ParseSignedCompact(string(input)+"."+base64.RawURLEncoding.EncodeToString(sig), allowedAlgs)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(&priv.PublicKey)
		if err != nil {
			t.Fatalf("signature %d: go-jose does not verify it: %v", i, err)
		}
		if !bytes.Equal(payload, claims) {
			t.Fatalf("payload %x, want %x", payload, claims)
		}
	}
}

// TestIssueES256Direct: the issuer's active ES256 key, loaded from the
// store as the server loads it, signs through p256Signer, and a thousand
// of its tokens verify with go-jose's parser and the published key.
func TestIssueES256Direct(t *testing.T) {
	seen := map[string]bool{}
	issueVerified(t, authz.ES256, 1000, func(k *jwsKey) bool { return k.p256 != nil }, func(i int, tok string) {
		r := tok[strings.LastIndexByte(tok, '.')+1:][:42] // r's 32 bytes
		if seen[r] {
			t.Fatalf("token %d repeats an r: a repeated nonce", i)
		}
		seen[r] = true
	})
}

// TestIssueES256Randomness: the issuer's injected source hedges the ES256
// nonce, so one that fails after the jti's 16 bytes fails the token, and
// one of zeros still makes tokens that verify.
func TestIssueES256Randomness(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	req := Request{ClientID: "c", Audience: "a", Lifetime: time.Minute, Alg: authz.ES256}
	f.issuer.rand = &limitedReader{n: 16}
	if tok, _, err := f.issuer.Issue(req); err == nil || tok != "" || !strings.Contains(err.Error(), "signing") {
		t.Errorf("ES256 with no randomness left for the nonce: %q, %v", tok, err)
	}
	f.issuer.rand = fixedReader{[]byte{0}}
	tok, _, err := f.issuer.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.issuer.Verify(tok); err != nil {
		t.Errorf("a token signed with a source of zeros: %v", err)
	}
}

// TestP256SignConcurrent: one signer shared by goroutines (as the active
// key is by requests) signs correctly in each; with -race it shows that
// signing only reads the signer and the shared moduli.
func TestP256SignConcurrent(t *testing.T) {
	priv, s := p256Key(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				d := sha256.Sum256([]byte{byte(g), byte(i)})
				sig, err := s.appendSignDigest(nil, rand.Reader, d[:])
				if err != nil {
					t.Error(err)
					return
				}
				if !ecdsa.Verify(&priv.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
					t.Errorf("goroutine %d, signature %d does not verify", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// fixedReader reads its bytes again and again, as a broken source would.
type fixedReader struct{ b []byte }

func (r fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.b[i%len(r.b)]
	}
	return len(p), nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// TestP256SignRandomness: with a real source one message signed twice
// gives two signatures (the nonce is hedged); with a fixed source, or one
// of zeros, it is deterministic and still valid, and two messages still
// get different nonces; a failing source is an error and no signature,
// and no error shows the key.
func TestP256SignRandomness(t *testing.T) {
	priv, s := p256Key(t)
	d1, d2 := sha256.Sum256([]byte("one")), sha256.Sum256([]byte("two"))
	sign := func(r io.Reader, d [32]byte) []byte {
		t.Helper()
		sig, err := s.appendSignDigest(nil, r, d[:])
		if err != nil {
			t.Fatal(err)
		}
		rr, ss := splitRS(t, sig)
		if !ecdsa.Verify(&priv.PublicKey, d[:], rr, ss) {
			t.Fatal("crypto/ecdsa does not verify the signature")
		}
		return sig
	}
	if a, b := sign(rand.Reader, d1), sign(rand.Reader, d1); bytes.Equal(a, b) {
		t.Error("two signatures of one message with a real source are equal")
	}
	for name, r := range map[string]io.Reader{
		"fixed": fixedReader{[]byte("0123456789abcdef0123456789abcdef")},
		"zeros": fixedReader{[]byte{0}},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := sign(r, d1), sign(r, d1)
			if !bytes.Equal(a, b) {
				t.Errorf("with a %s source: %x then %x, want deterministic", name, a, b)
			}
			if c := sign(r, d2); bytes.Equal(a[:32], c[:32]) {
				t.Errorf("with a %s source two messages share r: a repeated nonce", name)
			}
		})
	}
	t.Run("failing", func(t *testing.T) {
		buf := []byte("head")
		out, err := s.appendSignDigest(buf, failingReader{}, d1[:])
		if err == nil {
			t.Fatal("signed without randomness")
		}
		if string(out) != "head" {
			t.Errorf("the buffer became %q", out)
		}
		if !strings.Contains(err.Error(), "no entropy") {
			t.Errorf("error %q does not say why", err)
		}
		for _, b := range [][]byte{s.d[:], priv.D.Bytes()} {
			if strings.Contains(err.Error(), hex.EncodeToString(b)) || strings.Contains(err.Error(), string(b)) {
				t.Errorf("error %q shows the private key", err)
			}
		}
		if _, err := s.appendSignDigest(nil, &limitedReader{n: 31}, d1[:]); err == nil {
			t.Error("signed with 31 bytes of randomness")
		}
	})
	if _, err := s.appendSignDigest(nil, rand.Reader, d1[:31]); !errors.Is(err, errP256Digest) {
		t.Errorf("a 31-byte digest: %v", err)
	}
}

// wantP256 computes the signature p256Signer must give for d, Z and the
// digest e with math/big and crypto/elliptic alone: k = SHA-512(d ‖ Z ‖ e)
// mod n, r = x(k·G) mod n, s = k⁻¹·(e + r·d) mod n (FIPS 186-5 §6.4.1).
func wantP256(t testing.TB, d, z, e []byte) []byte {
	t.Helper()
	h := sha512.Sum512(append(append(append([]byte{}, d...), z...), e...))
	k := new(big.Int).SetBytes(h[:])
	k.Mod(k, p256Order)
	x, _ := elliptic.P256().ScalarBaseMult(k.FillBytes(make([]byte, 32))) //nolint:staticcheck // an independent k·G
	r := new(big.Int).Mod(x, p256Order)
	en := new(big.Int).SetBytes(e)
	s := new(big.Int).Mul(r, new(big.Int).SetBytes(d))
	s.Add(s, en)
	s.Mul(s, new(big.Int).ModInverse(k, p256Order))
	s.Mod(s, p256Order)
	return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
}

// TestP256KnownAnswer: for random keys, randomness and digests (digests of
// n and above too) the signature is byte for byte the one math/big
// computes from the nonce's definition: the bigmod arithmetic, the 512-bit
// reduction and the blinded inversion, not just "it verifies".
func TestP256KnownAnswer(t *testing.T) {
	nMinus1 := new(big.Int).Sub(p256Order, big.NewInt(1))
	edges := [][]byte{
		make([]byte, 32),
		bytes.Repeat([]byte{0xff}, 32),
		p256Order.FillBytes(make([]byte, 32)),
		nMinus1.FillBytes(make([]byte, 32)),
		new(big.Int).Add(p256Order, big.NewInt(1)).FillBytes(make([]byte, 32)),
	}
	for i := range 1000 {
		priv, s := p256Key(t)
		d, err := priv.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		z := make([]byte, 32)
		rand.Read(z)
		e := make([]byte, 32)
		rand.Read(e)
		if i < len(edges) {
			e = edges[i]
		}
		got, err := s.appendSignDigest(nil, fixedReader{z}, e)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantP256(t, d, z, e); !bytes.Equal(got, want) {
			t.Fatalf("d=%x Z=%x e=%x:\n got %x\nwant %x", d, z, e, got, want)
		}
	}
}

// TestP256DigestAtLeastN: digests of n and above, given straight to the
// digest-level signer, are reduced mod n as FIPS 186-5 §6.4.1 wants, and
// crypto/ecdsa.Verify, which reduces them too, accepts the signatures.
func TestP256DigestAtLeastN(t *testing.T) {
	priv, s := p256Key(t)
	span := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), p256Order) // 2^256 − n
	digests := [][]byte{
		p256Order.FillBytes(make([]byte, 32)),
		new(big.Int).Add(p256Order, big.NewInt(1)).FillBytes(make([]byte, 32)),
		bytes.Repeat([]byte{0xff}, 32),
	}
	for range 200 {
		off, err := rand.Int(rand.Reader, span)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, off.Add(off, p256Order).FillBytes(make([]byte, 32)))
	}
	for _, e := range digests {
		if new(big.Int).SetBytes(e).Cmp(p256Order) < 0 {
			t.Fatalf("digest %x below n", e)
		}
		sig, err := s.appendSignDigest(nil, rand.Reader, e)
		if err != nil {
			t.Fatal(err)
		}
		r, ss := splitRS(t, sig)
		if !ecdsa.Verify(&priv.PublicKey, e, r, ss) {
			t.Fatalf("digest %x: crypto/ecdsa does not verify", e)
		}
	}
}

// TestNewP256SignerRefuses: only a P-256 key with a scalar in [1, n−1]
// makes a signer, and the error shows no key material.
func TestNewP256SignerRefuses(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newP256Signer(p384); !errors.Is(err, errP256Key) {
		t.Errorf("P-384: %v", err)
	} else if strings.Contains(err.Error(), p384.D.Text(16)) {
		t.Errorf("error %q shows the key", err)
	}
	p256, _ := p256Key(t)
	bad := *p256
	bad.D = new(big.Int).Set(p256Order) //nolint:staticcheck // an invalid scalar on purpose
	if _, err := newP256Signer(&bad); err == nil {
		t.Error("d = n was accepted")
	}
}

// FuzzP256Sign: for any key and randomness derived from seed, and any
// 32-byte digest, the signature verifies with crypto/ecdsa; other digest
// lengths are refused.
func FuzzP256Sign(f *testing.F) {
	f.Add([]byte("seed"), bytes.Repeat([]byte{0xff}, 32))
	f.Add([]byte{}, make([]byte, 32))
	f.Add([]byte("x"), p256Order.FillBytes(make([]byte, 32)))
	f.Add([]byte("short"), []byte("digest"))
	f.Fuzz(func(t *testing.T, seed, digest []byte) {
		h := sha512.Sum512(seed)
		dn := new(big.Int).SetBytes(h[:32])
		dn.Mod(dn, new(big.Int).Sub(p256Order, big.NewInt(1)))
		dn.Add(dn, big.NewInt(1)) // d in [1, n−1]
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), dn.FillBytes(make([]byte, 32)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := newP256Signer(priv)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.appendSignDigest(nil, fixedReader{h[32:]}, digest)
		if len(digest) != 32 {
			if !errors.Is(err, errP256Digest) {
				t.Fatalf("a %d-byte digest: %v", len(digest), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		r, ss := splitRS(t, sig)
		if !ecdsa.Verify(&priv.PublicKey, digest, r, ss) {
			t.Fatalf("seed %x digest %x: crypto/ecdsa does not verify", seed, digest)
		}
	})
}

// BenchmarkP256Sign measures one ES256 signature of a SHA-256 digest:
// p256Signer ("direct", r||s appended to a buffer) beside
// crypto/ecdsa.SignASN1 ("stdlib"), in one run.
func BenchmarkP256Sign(b *testing.B) {
	priv, s := p256Key(b)
	d := sha256.Sum256([]byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjbGllbnQtMSJ9"))
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 128)
		for b.Loop() {
			if _, err := s.appendSignDigest(buf[:0], rand.Reader, d[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, priv, d[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
