package dpop

import (
	"context"
	"crypto"
	"testing"
	"time"
)

func benchmarkVerify(b *testing.B, key crypto.Signer) {
	s, err := NewSigner(key, nil, func() time.Time { return testNow })
	if err != nil {
		b.Fatal(err)
	}
	proof, _ := s.Proof("GET", "https://rs.example.com/meters", "at-1", "")
	o := VerifyOptions{Method: "GET", URL: "https://rs.example.com/meters", Now: testNow, AccessToken: "at-1"}
	header := []string{proof}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(context.Background(), header, o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { keys(b); benchmarkVerify(b, ecKey) }
func BenchmarkVerifyEdDSA(b *testing.B) { keys(b); benchmarkVerify(b, edKey) }
func BenchmarkVerifyPS256(b *testing.B) { keys(b); benchmarkVerify(b, rsaKey) }

func BenchmarkSignerES256(b *testing.B) {
	keys(b)
	s, _ := NewSigner(ecKey, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Proof("GET", "https://rs.example.com/meters", "at-1", ""); err != nil {
			b.Fatal(err)
		}
	}
}
