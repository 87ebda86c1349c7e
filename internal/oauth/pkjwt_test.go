package oauth

import "testing"

// FuzzAssertionSubject: any client_assertion, however malformed, yields a
// subject or "", never a panic.
func FuzzAssertionSubject(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, a string) { _ = assertionSubject(a) })
}
