package clientsecret

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
)

func TestGenerateParseVerify(t *testing.T) {
	h, err := NewHasher(bytes.Repeat([]byte{7}, PepperLen))
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != Len || !strings.HasPrefix(secret, DisplayPrefix(id)+"_") {
		t.Fatalf("secret has the wrong shape (len %d)", len(secret))
	}
	got, err := Parse(secret)
	if err != nil || got != id {
		t.Fatalf("Parse = %q, %v; want %q", got, err, id)
	}
	hash := h.Hash(secret)
	if !h.Verify(secret, hash) {
		t.Fatal("Verify rejected the right secret")
	}
	wrong := secret[:Len-1] + string(rune('A'+(secret[Len-1]+1)%26))
	if h.Verify(wrong, hash) {
		t.Fatal("Verify accepted a different secret")
	}
	other, _ := NewHasher(bytes.Repeat([]byte{8}, PepperLen))
	if other.Verify(secret, hash) {
		t.Fatal("a hash under another pepper verified")
	}
}

func TestGenerateIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		_, s, err := Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if seen[s] {
			t.Fatal("duplicate secret")
		}
		seen[s] = true
	}
}

func TestParseRejects(t *testing.T) {
	_, good, _ := Generate(rand.Reader)
	for name, s := range map[string]string{
		"empty":        "",
		"no prefix":    "xxxx_" + good[5:],
		"short":        good[:Len-1],
		"long":         good + "A",
		"uppercase id": Prefix + strings.ToUpper(good[5:25]) + good[25:],
		"missing sep":  good[:25] + "-" + good[26:],
		"non-hex id":   Prefix + "zzzzzzzzzzzzzzzzzzzz" + good[25:],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(s); err == nil {
				t.Fatal("Parse accepted it")
			}
		})
	}
}

func TestNewHasherPepperLength(t *testing.T) {
	if _, err := NewHasher(make([]byte, 16)); err == nil {
		t.Fatal("accepted a 16-byte pepper")
	}
}

func FuzzParse(f *testing.F) {
	_, good, _ := Generate(rand.Reader)
	f.Add(good)
	f.Add("m2ms_")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err == nil && !strings.HasPrefix(s, DisplayPrefix(id)+"_") {
			t.Fatalf("Parse(%q) = %q without the prefix", s, id)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	h, _ := NewHasher(make([]byte, PepperLen))
	_, s, _ := Generate(rand.Reader)
	hash := h.Hash(s)
	b.ReportAllocs()
	for b.Loop() {
		if !h.Verify(s, hash) {
			b.Fatal("no")
		}
	}
}

// TestHashMatchesHMAC: Hash is HMAC-SHA-256 under the pepper, computed by
// crypto/hmac afresh, for secrets of every length a caller can send (the
// pooled state is reused across them, a long one included), from
// concurrent callers; and checking a secret allocates nothing.
func TestHashMatchesHMAC(t *testing.T) {
	pepper := bytes.Repeat([]byte{9}, PepperLen)
	h, err := NewHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 600 {
				secret := strings.Repeat(string(rune('a'+g)), n)
				m := hmac.New(sha256.New, pepper)
				m.Write([]byte(secret))
				want := m.Sum(nil)
				if got := h.Hash(secret); !bytes.Equal(got, want) {
					t.Errorf("Hash of a %d-byte secret differs from crypto/hmac", n)
					return
				}
				if !h.Verify(secret, want) {
					t.Errorf("Verify refused a %d-byte secret", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	_, secret, _ := Generate(rand.Reader)
	hash := h.Hash(secret)
	if allocs := testing.AllocsPerRun(100, func() { h.Verify(secret, hash) }); allocs != 0 && !raceEnabled {
		t.Errorf("Verify allocates %v times", allocs)
	}
}
