package metrics

import (
	"testing"
	"unsafe"
)

// A label value outlives the request it came from: it must never share the
// request's memory, a substring of which may be a client secret.
func TestLabelsDoNotShareRequestMemory(t *testing.T) {
	body := []byte("audience=https://api.example.com&client_secret=m2ms_aaaa")
	v := unsafe.String(&body[9], len("https://api.example.com"))
	l := newLabelSet(10)
	label := l.value(v, true)
	if label != v {
		t.Fatalf("label %q, want %q", label, v)
	}
	if unsafe.StringData(label) == unsafe.StringData(v) {
		t.Fatal("the label shares the request's memory")
	}
	for i := range body {
		body[i] = 'x'
	}
	if got := l.value("https://api.example.com", false); got != "https://api.example.com" {
		t.Fatalf("after the request's memory changed, the label reads %q", got)
	}
	gt := string([]byte("client_credentials"))
	if unsafe.StringData(grantTypeLabel(gt)) == unsafe.StringData(gt) {
		t.Fatal("grantTypeLabel returns the request's string")
	}
}
