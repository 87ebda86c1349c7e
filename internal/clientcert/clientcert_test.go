package clientcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/clientip"
)

func newCert(t testing.TB, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseHeader(t *testing.T) {
	a := newCert(t, pkix.Name{CommonName: "a"})
	b := newCert(t, pkix.Name{CommonName: "b"})
	pemA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Raw}))
	pemB := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Raw}))
	b64A, b64B := base64.StdEncoding.EncodeToString(a.Raw), base64.StdEncoding.EncodeToString(b.Raw)
	cases := []struct {
		name, value string
		want        [][]byte
	}{
		{"nginx escaped PEM", url.PathEscape(pemA), [][]byte{a.Raw}},
		{"form-escaped PEM", url.QueryEscape(pemA), [][]byte{a.Raw}},
		{"folded PEM", strings.ReplaceAll(strings.TrimSpace(pemA), "\n", " "), [][]byte{a.Raw}},
		{"escaped PEM chain", url.PathEscape(pemA + pemB), [][]byte{a.Raw, b.Raw}},
		{"base64 DER", b64A, [][]byte{a.Raw}},
		{"unpadded base64 DER", strings.TrimRight(b64A, "="), [][]byte{a.Raw}},
		{"base64 DER chain", b64A + ", " + b64B, [][]byte{a.Raw, b.Raw}},
		{"garbage", "not a certificate", nil},
		{"PEM without certificate", url.PathEscape("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), nil},
		{"too long", strings.Repeat("A", MaxHeaderBytes+1), nil},
		{"too many", strings.Repeat(b64A+",", maxChain) + b64A, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHeader(tc.value)
			if tc.want == nil {
				if !errors.Is(err, ErrBadHeader) {
					t.Fatalf("got %d certificates, %v; want ErrBadHeader", len(got), err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %d certificates, %v", len(got), err)
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("certificate %d differs", i)
				}
			}
		})
	}
}

func TestSourceChain(t *testing.T) {
	proxies, err := clientip.New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	peer := newCert(t, pkix.Name{CommonName: "peer"})
	fwd := newCert(t, pkix.Name{CommonName: "forwarded"})
	src := &Source{Header: "X-SSL-Client-Cert", Proxies: proxies}
	header := url.PathEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fwd.Raw})))
	cases := []struct {
		name, remote, header string
		tls                  bool
		want                 *x509.Certificate
		wantErr              bool
	}{
		{"TLS peer", "203.0.113.1:1", "", true, peer, false},
		{"no certificate", "203.0.113.1:1", "", false, nil, false},
		{"header from an untrusted peer is ignored", "203.0.113.1:1", header, false, nil, false},
		{"header from an untrusted peer, TLS peer wins", "203.0.113.1:1", header, true, peer, false},
		{"header from a trusted proxy", "10.1.2.3:1", header, false, fwd, false},
		{"trusted proxy without the header: none", "10.1.2.3:1", "", true, nil, false},
		{"unreadable header from a trusted proxy", "10.1.2.3:1", "garbage", false, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/oauth/token", nil)
			r.RemoteAddr = tc.remote
			if tc.header != "" {
				r.Header.Set("X-Ssl-Client-Cert", tc.header)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{peer}}
			}
			var got []*x509.Certificate
			var gotErr error
			src.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, gotErr = FromContext(r.Context())
			})).ServeHTTP(httptest.NewRecorder(), r)
			if (gotErr != nil) != tc.wantErr {
				t.Fatalf("err = %v", gotErr)
			}
			switch {
			case tc.want == nil && got != nil:
				t.Fatalf("got a certificate, want none")
			case tc.want != nil && (len(got) != 1 || !got[0].Equal(tc.want)):
				t.Fatalf("got %v, want %s", got, tc.want.Subject)
			}
		})
	}
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Add("X-SSL-Client-Cert", header)
	r.Header.Add("X-SSL-Client-Cert", header)
	r.RemoteAddr = "10.0.0.1:5"
	if _, err := src.Chain(r); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("a repeated header: %v", err)
	}
	var zero *Source
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{peer}}
	if got, err := zero.Chain(r); err != nil || len(got) != 1 {
		t.Fatalf("nil Source: %v %v", got, err)
	}
}

func TestThumbprint(t *testing.T) {
	// RFC 8705 §3.1: base64url SHA-256 of the DER, 43 characters.
	if got := Thumbprint([]byte("x")); got != "LQ_fFMuYHXUYQ0Oq_vTKaKeQNNI5vq-kwb6xK9OhNKs" && len(got) != 43 {
		t.Fatalf("Thumbprint = %s", got)
	}
}

func TestParseDN(t *testing.T) {
	cn, o, c, ou := asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 11}
	cases := []struct {
		in   string
		want DN // nil: refused
	}{
		{"CN=billing,O=Example,C=DE", DN{{{c, "DE"}}, {{o, "Example"}}, {{cn, "billing"}}}},
		{"cn = billing , o=Example\\, Inc.", DN{{{o, "Example, Inc."}}, {{cn, "billing"}}}},
		{"CN=a+OU=b;C=US", DN{{{c, "US"}}, {{cn, "a"}, {ou, "b"}}}},
		{`CN=\ lead\20and trail\ `, DN{{{cn, " lead and trail "}}}},
		{`CN=caf\C3\A9`, DN{{{cn, "café"}}}},
		{"2.5.4.3=x", DN{{{cn, "x"}}}},
		{"", nil},
		{"CN", nil},
		{"CN=", nil},
		{"XX=y", nil},
		{"CN=#0403616263", nil},
		{`CN=a\`, nil},
		{`CN=a\q`, nil},
		{`CN=a"b`, nil},
		{"1=x", nil},
		{strings.Repeat("CN=a,", 300), nil},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDN(tc.in)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want.String() || len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			again, err := ParseDN(got.String())
			if err != nil || again.String() != got.String() {
				t.Fatalf("String does not parse back: %q: %v", got.String(), err)
			}
		})
	}
}

func TestMatchSubject(t *testing.T) {
	cert := newCert(t, pkix.Name{CommonName: "billing", Organization: []string{"Example, Inc."}, Country: []string{"DE"}})
	cases := []struct {
		dn   string
		want bool
	}{
		{`CN=billing,O=Example\, Inc.,C=DE`, true},
		{`cn=BILLING, o=example\,  inc.,c=de`, true},
		{`C=DE,O=Example\, Inc.,CN=billing`, false}, // order counts
		{`CN=billing,O=Example\, Inc.`, false},
		{`CN=billing,O=Example\, Inc.,C=DE,DC=x`, false},
		{`CN=billing2,O=Example\, Inc.,C=DE`, false},
		{`CN=billing+O=Example\, Inc.,C=DE`, false},
	}
	for _, tc := range cases {
		dn, err := ParseDN(tc.dn)
		if err != nil {
			t.Fatal(err)
		}
		if got := MatchSubject(cert, dn); got != tc.want {
			t.Errorf("MatchSubject(%s) = %v, want %v", tc.dn, got, tc.want)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add("-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----")
	f.Add("AAAA,BBBB")
	f.Fuzz(func(t *testing.T, v string) {
		_, _ = ParseHeader(v)
	})
}

func FuzzParseDN(f *testing.F) {
	f.Add(`CN=a\,b+OU=c,O=d;C=\41`)
	f.Fuzz(func(t *testing.T, s string) {
		dn, err := ParseDN(s)
		if err != nil {
			return
		}
		again, err := ParseDN(dn.String())
		if err != nil || again.String() != dn.String() {
			t.Fatalf("%q → %q does not parse back: %v", s, dn.String(), err)
		}
	})
}

func TestUnfoldPEM(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"-----BEGIN CERTIFICATE----- AAAA BBBB -----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----"},
		{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{"-----BEGIN CERTIFICATE", "-----BEGIN CERTIFICATE"},
	} {
		if got := unfoldPEM(tc.in); got != tc.want {
			t.Errorf("unfoldPEM(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
