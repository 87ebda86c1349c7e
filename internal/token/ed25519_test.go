package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// ed25519Key returns a new Ed25519 key and its direct signer.
func ed25519Key(t testing.TB) (ed25519.PrivateKey, *ed25519Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newEd25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, s
}

// TestEd25519SignMatchesStdlib: thousands of tokens, each by a new random
// key over a random message, signed by newJWSKey's direct EdDSA signer,
// are byte for byte crypto/ed25519's signatures (Ed25519 is
// deterministic, RFC 8032 §5.1.6) and verify with go-jose's parser
// (allow-list) and verifier.
func TestEd25519SignMatchesStdlib(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := range n {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := newJWSKey(authz.EdDSA, "kid-1", priv)
		if err != nil {
			t.Fatal(err)
		}
		if k.ed == nil {
			t.Fatal("an ed25519.PrivateKey does not sign through ed25519Signer")
		}
		claims := make([]byte, i%600)
		rand.Read(claims)
		input := []byte(k.header + base64.RawURLEncoding.EncodeToString(claims))
		prefix := []byte("prefix")
		out, err := k.appendSignature(prefix, nil, input) // reads no randomness
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("appendSignature lost the buffer's start: %q", out)
		}
		sig := out[len(prefix):]
		if want := ed25519.Sign(priv, input); !bytes.Equal(sig, want) {
			t.Fatalf("signature %d:\n %x\nwant %x (crypto/ed25519)", i, sig, want)
		}
		jws, err := jose.ParseSignedCompact(string(input)+"."+base64.RawURLEncoding.EncodeToString(sig), allowedAlgs)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(pub)
		if err != nil {
			t.Fatalf("signature %d: go-jose does not verify it: %v", i, err)
		}
		if !bytes.Equal(payload, claims) {
			t.Fatalf("payload %x, want %x", payload, claims)
		}
	}
}

// TestEd25519KnownAnswer: RFC 8032 §7.1's TEST 1 to 3, byte for byte.
func TestEd25519KnownAnswer(t *testing.T) {
	for _, v := range []struct{ seed, pub, msg, sig string }{
		{ // TEST 1
			"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
			"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
			"",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
		},
		{ // TEST 2
			"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
			"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
			"72",
			"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
		},
		{ // TEST 3
			"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
			"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
			"af82",
			"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
		},
	} {
		seed, pub, msg, want := unhex(t, v.seed), unhex(t, v.pub), unhex(t, v.msg), unhex(t, v.sig)
		s, err := newEd25519Signer(ed25519.PrivateKey(append(seed, pub...)))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.appendSign(nil, msg); !bytes.Equal(got, want) {
			t.Fatalf("message %x: signature\n %x\nwant %x (RFC 8032 §7.1)", msg, got, want)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEd25519EncodePointBlinded: the blinded encoding of a point is its
// constant-time encoding for every blinding factor, 0 (the fallback), 1,
// p − 1 and random ones, over points whose Z is not 1 (r·B, sums) and the
// identity.
func TestEd25519EncodePointBlinded(t *testing.T) {
	pMinus1, err := new(field.Element).SetBytes(unhexLE(t, "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffec"))
	if err != nil {
		t.Fatal(err)
	}
	betas := []*field.Element{new(field.Element), new(field.Element).One(), pMinus1}
	for range 50 {
		var d [64]byte
		rand.Read(d[:])
		betas = append(betas, blindingOf(new(field.Element), &d))
	}
	points := []*edwards25519.Point{edwards25519.NewIdentityPoint(), edwards25519.NewGeneratorPoint()}
	for range 50 {
		var d [64]byte
		rand.Read(d[:])
		r, err := edwards25519.NewScalar().SetUniformBytes(d[:])
		if err != nil {
			t.Fatal(err)
		}
		p := new(edwards25519.Point).ScalarBaseMult(r)
		points = append(points, p, new(edwards25519.Point).Add(p, points[len(points)-1]))
	}
	for i, p := range points {
		for j, beta := range betas {
			var got [32]byte
			encodePoint(&got, p, beta)
			if want := p.Bytes(); !bytes.Equal(got[:], want) {
				t.Fatalf("point %d, blinding %d: %x, want %x", i, j, got, want)
			}
		}
	}
}

// unhexLE decodes a big-endian hex number into 32 little-endian bytes.
func unhexLE(t *testing.T, s string) []byte {
	b := unhex(t, s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// TestNewEd25519SignerRefuses: a key of the wrong length, or whose public
// half is not its seed's, gets errEd25519Key, and newJWSKey refuses it.
func TestNewEd25519SignerRefuses(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mismatched := append(append(ed25519.PrivateKey{}, priv[:32]...), other[32:]...)
	for name, k := range map[string]ed25519.PrivateKey{
		"short":      priv[:63],
		"seed only":  priv.Seed(),
		"mismatched": mismatched,
	} {
		if _, err := newEd25519Signer(k); err != errEd25519Key {
			t.Errorf("%s: err = %v, want errEd25519Key", name, err)
		}
		if strings.Contains(errEd25519Key.Error(), hex.EncodeToString(k)) {
			t.Errorf("%s: the error carries key material", name)
		}
	}
	if _, err := newJWSKey(authz.EdDSA, "kid-1", mismatched); err == nil {
		t.Fatal("newJWSKey took a key whose public half is another key's")
	}
}

// TestEd25519SignConcurrent: one signer shared by 8 goroutines (as the
// issuer shares it) gives crypto/ed25519's signature every time; the
// blinded inversion (inverseVarTime) keeps no shared state.
func TestEd25519SignConcurrent(t *testing.T) {
	priv, s := ed25519Key(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 0, 64)
			for i := range 200 {
				msg := []byte(strings.Repeat("m", g*200+i))
				if got := s.appendSign(buf[:0], msg); !bytes.Equal(got, ed25519.Sign(priv, msg)) {
					errs <- "goroutine signature differs from crypto/ed25519"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestIssueEdDSADirect: the issuer's active EdDSA key, loaded from the
// store as the server loads it, signs through ed25519Signer, and its
// tokens verify with go-jose's parser and the published key.
func TestIssueEdDSADirect(t *testing.T) {
	issueVerified(t, authz.EdDSA, 500, func(k *jwsKey) bool { return k.ed != nil }, nil)
}

// FuzzEd25519Sign: for any seed and message the direct signer gives
// crypto/ed25519's signature.
func FuzzEd25519Sign(f *testing.F) {
	f.Add(make([]byte, 32), []byte(""))
	f.Add([]byte("0123456789abcdef0123456789abcdef"), []byte("eyJhbGciOiJFZERTQSJ9.e30"))
	f.Fuzz(func(t *testing.T, seed, msg []byte) {
		if len(seed) != ed25519.SeedSize {
			return
		}
		priv := ed25519.NewKeyFromSeed(seed)
		s, err := newEd25519Signer(priv)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.appendSign(nil, msg), ed25519.Sign(priv, msg); !bytes.Equal(got, want) {
			t.Fatalf("signature %x, want %x", got, want)
		}
	})
}

// BenchmarkEd25519Sign: the direct signer against crypto/ed25519 over a
// token-sized signing input (400 bytes).
func BenchmarkEd25519Sign(b *testing.B) {
	priv, s := ed25519Key(b)
	input := []byte(strings.Repeat("eyJhbGciOiJFZERTQSJ9", 20))
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			s.appendSign(buf[:0], input)
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Sign(priv, input)
		}
	})
}
