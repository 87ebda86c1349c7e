package rs

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzAuthorization checks parseAuthorization on arbitrary headers: a
// token it returns is a b64token ending the header, under a scheme the
// header names.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{"", "DPoP abc", "dpop a.b.c", "DPoP", "Bearer x", "DPoPx abc", "DPoP a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		sc, token, err := parseAuthorization(http.Header{"Authorization": {value}})
		if err != nil {
			if token != "" || (!errors.Is(err, errNoToken) && !errors.Is(err, errMalformed)) {
				t.Fatalf("parseAuthorization(%q) = %q, %v", value, token, err)
			}
			return
		}
		if !isB64Token(token) || len(value) < len(token) || value[len(value)-len(token):] != token {
			t.Fatalf("parseAuthorization(%q) = %q", value, token)
		}
		name := map[scheme]string{schemeBearer: "bearer", schemeDPoP: "dpop"}[sc]
		if len(value) <= len(name) || !strings.EqualFold(value[:len(name)], name) || value[len(name)] != ' ' {
			t.Fatalf("scheme %v from %q", sc, value)
		}
	})
}

// FuzzForwardedCertificate: parseForwardedCertificate never panics, and
// returns either DER or errBadCertificateHeader.
func FuzzForwardedCertificate(f *testing.F) {
	for _, s := range []string{"", "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A", "-----BEGIN+CERTIFICATE-----", "AAAA", "AAAA,BBBB", "-----BEGIN CERTIFICATE----- AAAA -----END CERTIFICATE-----", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		der, err := parseForwardedCertificate(value)
		if err != nil {
			if der != nil || !errors.Is(err, errBadCertificateHeader) {
				t.Fatalf("parseForwardedCertificate(%q) = %x, %v", value, der, err)
			}
			return
		}
		if len(der) == 0 {
			t.Fatalf("parseForwardedCertificate(%q): empty DER", value)
		}
		_ = sha256.Sum256(der)
	})
}
