package dpop

import (
	"strings"
	"testing"
	"time"
)

func TestNonces(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := testNow
	clock := func() time.Time { return now }
	n := NewNonces(key, time.Minute, clock)
	replica := NewNonces(key, time.Minute, func() time.Time { return now.Add(2 * time.Second) })

	cur := n.Current()
	if len(cur) != 43 || strings.ContainsAny(cur, "+/=") {
		t.Errorf("nonce %q is not 32 bytes base64url", cur)
	}
	if !n.Valid(cur) || !replica.Valid(cur) {
		t.Error("the current nonce is not valid here or at a replica sharing the key")
	}
	if replica.Current() != cur {
		t.Error("a replica in the same window issues another nonce")
	}
	now = now.Add(time.Minute)
	if !n.Valid(cur) {
		t.Error("the previous window's nonce is refused")
	}
	if n.Current() == cur {
		t.Error("the nonce did not rotate")
	}
	now = now.Add(time.Minute)
	if n.Valid(cur) {
		t.Error("a nonce two windows old is accepted")
	}
	other := NewNonces([]byte("another key of thirty-two bytes!"), time.Minute, clock)
	for _, bad := range []string{"", "x", other.Current(), n.Current() + "A", strings.ToUpper(n.Current()), "!!!"} {
		if n.Valid(bad) {
			t.Errorf("Valid(%q)", bad)
		}
	}
}

func TestNoncesDefaults(t *testing.T) {
	n := NewNonces(make([]byte, 16), 0, nil)
	if n.window != DefaultNonceWindow || !n.Valid(n.Current()) {
		t.Error("defaults")
	}
	defer func() {
		if recover() == nil {
			t.Error("a 15-byte key did not panic")
		}
	}()
	NewNonces(make([]byte, 15), time.Minute, nil)
}
