package rs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

// TestCanonicalSegment checks isCanonicalSegment against the strict
// decoder it replaces, on every string of up to 3 characters over an
// alphabet with edge cases, and on random ones.
func TestCanonicalSegment(t *testing.T) {
	strict := base64.RawURLEncoding.Strict()
	check := func(s string) {
		// The old check: no line breaks (which the decoder skips), then
		// strict decoding.
		_, err := strict.DecodeString(s)
		want := err == nil && !strings.ContainsAny(s, "\r\n")
		if got := isCanonicalSegment(s); got != want {
			t.Fatalf("isCanonicalSegment(%q) = %v, strict decoding says %v", s, got, want)
		}
	}
	alpha := "AQBgwz09-_=+/ \r\n.\x00\xff"
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for i := 0; i < len(alpha); i++ {
			gen(prefix+alpha[i:i+1], n-1)
		}
	}
	gen("", 3)
	buf := make([]byte, 40)
	for range 20000 {
		_, _ = rand.Read(buf)
		n := int(buf[0]) % 12
		s := base64.RawURLEncoding.EncodeToString(buf[1 : 1+n])
		check(s)
		// Flip the last character: often non-canonical.
		if len(s) > 0 {
			b := []byte(s)
			b[len(b)-1] = "AQgw"[buf[39]%4]
			check(string(b))
		}
	}
}

// TestSignatureDER checks appendSignatureDER against encoding/asn1's
// for values with and without leading zeros and high bits.
func TestSignatureDER(t *testing.T) {
	for _, size := range []int{32, 48, 66} {
		for _, r := range [][]byte{make([]byte, size), ones(size, 0xff), ones(size, 0x01), append([]byte{0, 0, 0x80}, ones(size-3, 7)...)} {
			s := ones(size, 0x7f)
			want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
			if err != nil {
				t.Fatal(err)
			}
			if got := appendSignatureDER(nil, r, s); string(got) != string(want) {
				t.Fatalf("size %d r %x: %x, want %x", size, r, got, want)
			}
		}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("input"))
	r, s, _ := ecdsa.Sign(rand.Reader, key, h[:])
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	if ok, known := verifySignature(&key.PublicKey, "ES256", "input", sig); !ok || !known {
		t.Fatal("a good ES256 signature does not verify")
	}
	sig[5] ^= 1
	if ok, _ := verifySignature(&key.PublicKey, "ES256", "input", sig); ok {
		t.Fatal("a bad ES256 signature verifies")
	}
	if ok, _ := verifySignature(&key.PublicKey, "ES256", "input", sig[:63]); ok {
		t.Fatal("a short ES256 signature verifies")
	}
}

func ones(n int, b byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
