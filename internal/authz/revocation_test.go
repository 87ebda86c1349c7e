package authz

import (
	"testing"
	"time"
)

func TestNotBeforeCutoff(t *testing.T) {
	whole := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"a whole second stays", whole, whole},
		{"a microsecond past rounds up", whole.Add(time.Microsecond), whole.Add(time.Second)},
		{"mid-second rounds up", whole.Add(700 * time.Millisecond), whole.Add(time.Second)},
		{"just before the next second rounds up", whole.Add(time.Second - time.Nanosecond), whole.Add(time.Second)},
		{"another zone comes back in UTC", whole.Add(300 * time.Millisecond).In(time.FixedZone("CEST", 2*3600)), whole.Add(time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NotBeforeCutoff(tc.now)
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Fatalf("NotBeforeCutoff(%v) = %v, want %v UTC", tc.now, got, tc.want)
			}
		})
	}
}

// TestTokenRevoked: a token issued before the revocation instant is always
// dead, one issued at or after the cutoff always lives.
func TestTokenRevoked(t *testing.T) {
	whole := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	sec := whole.Unix()
	tests := []struct {
		name      string
		notBefore time.Time
		iat       int64
		want      bool
	}{
		{"no cutoff revokes nothing", time.Time{}, 0, false},
		{"issued a second before a whole-second cutoff", whole, sec - 1, true},
		{"issued in the cutoff's second", whole, sec, false},
		{"issued after", whole, sec + 1, false},
		{"issued earlier in the revocation's second", whole.Add(700 * time.Millisecond), sec, true},
		{"issued in the next second", whole.Add(700 * time.Millisecond), sec + 1, false},
		{"cutoff stored rounded up", NotBeforeCutoff(whole.Add(700 * time.Millisecond)), sec, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := Application{TokensNotBefore: tc.notBefore}
			if got := a.TokenRevoked(tc.iat); got != tc.want {
				t.Fatalf("TokenRevoked(%d) with TokensNotBefore %v = %v, want %v", tc.iat, tc.notBefore, got, tc.want)
			}
		})
	}
}
