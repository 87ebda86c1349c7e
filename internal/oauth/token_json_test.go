package oauth

import (
	"encoding/json"
	"testing"
)

// TestAppendJSONStringMatchesEncodingJSON: for every byte alone and amid
// plain text, appendJSONString writes what encoding/json marshals.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for c := range 256 {
		for _, s := range []string{string([]byte{byte(c)}), "eyJhbGci." + string([]byte{byte(c)}) + "read:meters"} {
			want, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
				t.Fatalf("byte %#x: %s, want %s", c, got[1:], want)
			}
		}
	}
}
