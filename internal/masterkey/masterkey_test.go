package masterkey

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, Len)
	k2 := bytes.Repeat([]byte{2}, Len)
	s1, err := NewSealer(rand.Reader, k1)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s1.Seal([]byte("private key"), []byte("kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("private key")) {
		t.Fatal("plaintext visible in sealed value")
	}
	if got, err := s1.Open(sealed, []byte("kid-1")); err != nil || string(got) != "private key" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	t.Run("wrong aad", func(t *testing.T) {
		if _, err := s1.Open(sealed, []byte("kid-2")); err != ErrOpen {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		s2, _ := NewSealer(rand.Reader, k2)
		if _, err := s2.Open(sealed, []byte("kid-1")); err != ErrOpen {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		bad := append([]byte(nil), sealed...)
		bad[len(bad)-1] ^= 1
		if _, err := s1.Open(bad, []byte("kid-1")); err != ErrOpen {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("rotation opens with previous key", func(t *testing.T) {
		s21, _ := NewSealer(rand.Reader, k2, k1)
		got, err := s21.Open(sealed, []byte("kid-1"))
		if err != nil || string(got) != "private key" {
			t.Fatalf("Open = %q, %v", got, err)
		}
		if s21.SealedByPrimary(sealed) {
			t.Fatal("old value reported as sealed by the new primary")
		}
		resealed, _ := s21.Seal(got, []byte("kid-1"))
		if !s21.SealedByPrimary(resealed) {
			t.Fatal("resealed value not sealed by primary")
		}
	})
}

func TestLoadOrCreateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	k, created, err := LoadOrCreateFile(path, rand.Reader)
	if err != nil || !created || len(k) != Len {
		t.Fatalf("create: %v %v %d", err, created, len(k))
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateFile(path, rand.Reader)
	if err != nil || created || !bytes.Equal(k, k2) {
		t.Fatalf("reload: %v %v", err, created)
	}
}

func TestParse(t *testing.T) {
	for name, s := range map[string]string{"not base64": "!!!", "short": Encode(make([]byte, 16))} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(s); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := Parse(" " + Encode(make([]byte, Len)) + "\n"); err != nil {
		t.Fatal(err)
	}
}
