package dpop

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzVerify: Verify never panics, refuses with ErrInvalidProof, and
// accepts only whole proofs.
func FuzzVerify(f *testing.F) {
	keys(f)
	valid := validProof(f).String()
	f.Add(valid)
	f.Add(validProof(f).String() + "A")
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		p, err := Verify(context.Background(), []string{header}, opts())
		if err != nil {
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("refusal %v does not match ErrInvalidProof", err)
			}
			return
		}
		if p.JKT == "" || p.JTI == "" || !p.Key.IsPublic() {
			t.Fatalf("accepted an incomplete proof: %+v", p)
		}
	})
}

// FuzzNormalizeURL: normalization is idempotent.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"https://server.example.com/token", "HTTP://A:80/%7e%2f?q#f", "https://[::1]:443/x", "https://h/a%20b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeURL(s)
		if err != nil {
			return
		}
		m, err := normalizeURL(n)
		if err != nil || m != n {
			t.Fatalf("normalizeURL(%q) = %q, then %q, %v", s, n, m, err)
		}
	})
}
