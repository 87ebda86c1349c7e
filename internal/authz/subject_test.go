package authz

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatchSubject(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{"repo:acme/billing:ref:refs/heads/main", "repo:acme/billing:ref:refs/heads/main", true},
		{"repo:acme/billing:ref:refs/heads/main", "repo:acme/billing:ref:refs/heads/mainx", false},
		{"repo:acme/billing:ref:refs/heads/*", "repo:acme/billing:ref:refs/heads/feature/x", true},
		{"repo:acme/billing:ref:refs/heads/*", "repo:acme/billing:ref:refs/tags/v1", false},
		{"repo:acme/*:environment:prod", "repo:acme/billing:environment:prod", true},
		{"repo:acme/*", "repo:acme/billing:environment:prod", false}, // a star never crosses ":"
		{"repo:*", "repo:acme/x", true},
		{"system:serviceaccount:prod:*", "system:serviceaccount:prod:billing", true},
		{"system:serviceaccount:prod:*", "system:serviceaccount:dev:billing", false},
		{"spiffe://example.org/ns/*/sa/billing", "spiffe://example.org/ns/prod/sa/billing", true},
		{"*", "", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "", true},
		{"", "x", false},
	} {
		if got := MatchSubject(c.pattern, c.subject); got != c.want {
			t.Errorf("MatchSubject(%q, %q) = %v, want %v", c.pattern, c.subject, got, c.want)
		}
	}
}

// FuzzMatchSubject cross-checks MatchSubject against a regular expression
// built from the pattern: "*" as [^:]*, every other character quoted.
func FuzzMatchSubject(f *testing.F) {
	f.Add("repo:acme/*:ref:*", "repo:acme/x:ref:main")
	f.Add("a*b*", "aab:b")
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		if strings.Count(pattern, "*") > MaxSubjectWildcards || len(pattern) > 64 || len(subject) > 128 ||
			!utf8.ValidString(pattern) || !utf8.ValidString(subject) { // JSON strings: valid UTF-8

			return
		}
		var b strings.Builder
		b.WriteString("^")
		for _, part := range strings.Split(pattern, "*") {
			b.WriteString(regexp.QuoteMeta(part))
			b.WriteString("[^:]*")
		}
		re := strings.TrimSuffix(b.String(), "[^:]*") + "$"
		want := regexp.MustCompile("(?s)" + re).MatchString(subject)
		if got := MatchSubject(pattern, subject); got != want {
			t.Fatalf("MatchSubject(%q, %q) = %v, regexp says %v", pattern, subject, got, want)
		}
	})
}
