package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// goJOSEHeader returns the protected header, base64url, that go-jose puts
// on a token signed by the stored key kid with the options Issue used
// before it signed by hand: the compatibility baseline.
func (f *fixture) goJOSEHeader(t *testing.T, alg, kid string) string {
	t.Helper()
	s, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: f.privateKey(t, kid), KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"),
	)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out[:strings.IndexByte(out, '.')]
}

// wantPayload is the payload of a token with claims c and extra claims:
// Claims marshalled by encoding/json, extra's members after jti.
func wantPayload(t testing.TB, c *Claims, extra json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 2 {
		b = append(append(b[:len(b)-1], ','), extra[1:]...)
	}
	return b
}

// TestIssueMatchesGoJOSE: for every algorithm the server signs with, the
// hand-built JWS has go-jose's protected header byte for byte, go-jose's
// parser (with the allow-list) and its jwt package verify it with the
// published key, its payload is encoding/json's marshalling of the claims
// Issue returned, and Verify returns those claims.
func TestIssueMatchesGoJOSE(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.SigningAlgs...)
	base := Request{ClientID: "client-1", Audience: "https://api.example.com", Scopes: []string{"read:things"}, Lifetime: 15 * time.Minute}
	requests := []struct {
		name string
		edit func(*Request)
	}{
		{"bearer", func(*Request) {}},
		{"no scope", func(r *Request) { r.Scopes = nil }},
		{"three scopes", func(r *Request) { r.Scopes = []string{"a", "b:c", "d"} }},
		{"DPoP-bound", func(r *Request) { r.Confirmation = &Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"} }},
		{"certificate-bound", func(r *Request) {
			r.Confirmation = &Confirmation{X5TS256: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
		}},
		{"both confirmations", func(r *Request) { r.Confirmation = &Confirmation{JKT: "jkt", X5TS256: "x5t"} }},
		{"custom claims", func(r *Request) { r.Claims = json.RawMessage(`{"tenant_id":"t-42","tier":3,"roles":["a","b"]}`) }},
		{"empty custom claims", func(r *Request) { r.Claims = json.RawMessage(`{}`) }},
		{"escaped strings", func(r *Request) {
			r.ClientID, r.Audience, r.Scopes = "c\"\\<>&\u2028", "https://api.example.com/?a=1&b=<2>", []string{"é", "😀"}
		}},
	}
	for _, alg := range authz.SigningAlgs {
		kid := oneKID(t, f.keys, alg, authz.KeyActive)
		header := f.goJOSEHeader(t, alg, kid)
		var public jose.JSONWebKey
		if err := public.UnmarshalJSON(mustJWK(t, f.keys, kid)); err != nil {
			t.Fatal(err)
		}
		for _, rc := range requests {
			t.Run(alg+"/"+rc.name, func(t *testing.T) {
				req := base
				req.Alg = alg
				rc.edit(&req)
				tok, c, err := f.issuer.Issue(req)
				if err != nil {
					t.Fatal(err)
				}
				if got := tok[:strings.IndexByte(tok, '.')]; got != header {
					t.Errorf("header %s, go-jose's %s", got, header)
				}
				jws, err := jose.ParseSignedCompact(tok, allowedAlgs)
				if err != nil {
					t.Fatal(err)
				}
				payload, err := jws.Verify(public.Key)
				if err != nil {
					t.Fatalf("go-jose does not verify the token: %v", err)
				}
				if want := wantPayload(t, &c, req.Claims); !bytes.Equal(payload, want) {
					t.Errorf("payload\n%s\nwant\n%s", payload, want)
				}
				var decoded Claims
				if err := json.Unmarshal(payload, &decoded); err != nil {
					t.Fatal(err)
				}
				decoded.payload = c.payload
				if !reflect.DeepEqual(decoded, c) {
					t.Errorf("decoded %+v, Issue returned %+v", decoded, c)
				}
				if c.Subject != req.ClientID || c.ClientID != req.ClientID || c.Audience != req.Audience || c.Scope != strings.Join(req.Scopes, " ") {
					t.Errorf("claims %+v for request %+v", c, req)
				}
				parsed, err := jwt.ParseSigned(tok, allowedAlgs)
				if err != nil {
					t.Fatal(err)
				}
				var std jwt.Claims
				if err := parsed.Claims(public.Key, &std); err != nil {
					t.Fatalf("go-jose's jwt package: %v", err)
				}
				if std.ID != c.JTI || std.Subject != c.Subject || !std.Audience.Contains(c.Audience) {
					t.Errorf("jwt claims %+v", std)
				}
				got, err := f.issuer.Verify(tok)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(*got, c) {
					t.Errorf("Verify = %+v, want %+v", *got, c)
				}
			})
		}
	}
}

// mustJWK returns the published JWK of kid.
func mustJWK(t testing.TB, k *Keys, kid string) []byte {
	t.Helper()
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	for _, raw := range set.Keys {
		var m struct{ Kid string }
		if err := json.Unmarshal(raw, &m); err == nil && m.Kid == kid {
			return raw
		}
	}
	t.Fatalf("kid %s not in the JWKS", kid)
	return nil
}

// TestIssueRandomness: PS256's salt comes from the issuer's randomness,
// so a failing source fails the signature, after the jti's 16 bytes.
func TestIssueRandomness(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.PS256, authz.EdDSA)
	f.issuer.rand = &limitedReader{n: 16}
	if _, _, err := f.issuer.Issue(Request{ClientID: "c", Audience: "a", Lifetime: time.Minute, Alg: authz.PS256}); signerOwnsRandomness(authz.PS256) {
		// fastcrypto: OpenSSL draws the salt from its own DRBG.
		if err != nil {
			t.Errorf("PS256 with OpenSSL's salt: %v", err)
		}
	} else if err == nil || !strings.Contains(err.Error(), "signing") {
		t.Errorf("PS256 with no randomness left for the salt: %v", err)
	}
	f.issuer.rand = &limitedReader{n: 16}
	if _, _, err := f.issuer.Issue(Request{ClientID: "c", Audience: "a", Lifetime: time.Minute, Alg: authz.EdDSA}); err != nil {
		t.Errorf("EdDSA takes no randomness beyond the jti: %v", err)
	}
	f.issuer.rand = &limitedReader{n: 15}
	if _, _, err := f.issuer.Issue(Request{ClientID: "c", Audience: "a", Lifetime: time.Minute, Alg: authz.EdDSA}); err == nil || !strings.Contains(err.Error(), "randomness") {
		t.Errorf("too little randomness for the jti: %v", err)
	}
}

// limitedReader reads n random bytes, then fails.
type limitedReader struct{ n int }

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("randomness exhausted")
	}
	p = p[:min(len(p), r.n)]
	r.n -= len(p)
	return rand.Read(p)
}

// TestNewJWSKeyRefusesMismatch: a key signs only its own algorithm, and
// an ECDSA key only ES256 on P-256.
func TestNewJWSKeyRefusesMismatch(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		alg  string
		key  crypto.Signer
		ok   bool
	}{
		{"P-256 for ES256", authz.ES256, p256, true},
		{"P-384 for ES256", authz.ES256, p384, false},
		{"P-256 for EdDSA", authz.EdDSA, p256, false},
		{"P-256 for RS256", authz.RS256, p256, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newJWSKey(tc.alg, "kid", tc.key); (err == nil) != tc.ok {
				t.Errorf("newJWSKey = %v", err)
			}
		})
	}
}

// TestAppendRS: the ASN.1 ECDSA signature becomes r||s of 32 bytes each,
// with r or s short (padded) or with a sign byte (dropped); anything that
// is not one SEQUENCE of two INTEGERs of at most 32 bytes is refused.
func TestAppendRS(t *testing.T) {
	der := func(r, s *big.Int) []byte {
		b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	high := new(big.Int).Lsh(big.NewInt(1), 255) // a sign byte in DER
	small := big.NewInt(7)
	for _, tc := range []struct {
		name string
		r, s *big.Int
	}{{"high bits", high, high}, {"short r", small, high}, {"short s", high, small}, {"both short", small, small}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendRS([]byte("x"), der(tc.r, tc.s), 32)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte("x"), append(tc.r.FillBytes(make([]byte, 32)), tc.s.FillBytes(make([]byte, 32))...)...)
			if !bytes.Equal(got, want) {
				t.Errorf("%x, want %x", got, want)
			}
		})
	}
	tooBig := new(big.Int).Lsh(big.NewInt(1), 256)
	good := der(high, small)
	for _, tc := range []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"not a SEQUENCE", append([]byte{0x31}, good[1:]...)},
		{"wrong length", append(append([]byte(nil), good...), 0)},
		{"one INTEGER", []byte{0x30, 0x03, 0x02, 0x01, 0x07}},
		{"INTEGER longer than the SEQUENCE", []byte{0x30, 0x04, 0x02, 0x05, 0x07, 0x07}},
		{"33-byte r", der(tooBig, small)},
		{"three INTEGERs", []byte{0x30, 0x09, 0x02, 0x01, 0x07, 0x02, 0x01, 0x07, 0x02, 0x01, 0x07}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := appendRS(nil, tc.der, 32); err == nil {
				t.Errorf("appendRS = %x, want an error", got)
			}
		})
	}
}

// FuzzIssueClaims: whatever client_id, audience, scopes, confirmation and
// custom claim value (any string, including those JSON must escape), the
// token's payload is encoding/json's marshalling of the claims Issue
// returned, go-jose verifies the token, and valid UTF-8 decodes back to
// the values asked for.
func FuzzIssueClaims(f *testing.F) {
	for _, seed := range [][4]string{
		{"client-1", "https://api.example.com", "read:things write", "t-42"},
		{"c\"q\\b", "<aud>&", "é 😀 \u2028\u2029", "\x00\x01\x1f\x7f\t\n\r\b\f"},
		{"\xff\xfe", "a\xc3", "s\xed\xa0\x80", "\U0010ffff"},
		{"", "", "", ""},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], "jkt", "")
	}
	fx := newFixture(f)
	fx.ensure(f, authz.EdDSA)
	kid := oneKID(f, fx.keys, authz.EdDSA, authz.KeyActive)
	var public jose.JSONWebKey
	if err := public.UnmarshalJSON(mustJWK(f, fx.keys, kid)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, clientID, audience, scopes, value, jkt, x5t string) {
		req := Request{ClientID: clientID, Audience: audience, Scopes: strings.Split(scopes, " "), Lifetime: time.Hour, Alg: authz.EdDSA}
		if jkt != "" || x5t != "" {
			req.Confirmation = &Confirmation{JKT: jkt, X5TS256: x5t}
		}
		extra, err := json.Marshal(map[string]string{"custom": value})
		if err != nil {
			t.Fatal(err)
		}
		req.Claims = extra
		tok, c, err := fx.issuer.Issue(req)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(tok, allowedAlgs)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(public.Key)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantPayload(t, &c, extra); !bytes.Equal(payload, want) {
			t.Fatalf("payload\n%q\nwant\n%q", payload, want)
		}
		var got struct {
			Claims
			Custom string `json:"custom"`
		}
		if err := json.Unmarshal(payload, &got); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{clientID, audience, scopes, value, jkt, x5t} {
			if !utf8.ValidString(s) {
				return // encoding/json and Issue put U+FFFD for invalid bytes
			}
		}
		want := Claims{Issuer: testIssuerURL, Subject: clientID, Audience: audience, ClientID: clientID, Scope: scopes,
			IssuedAt: c.IssuedAt, Expiry: c.Expiry, Confirmation: req.Confirmation, JTI: c.JTI}
		got.Claims.payload = ""
		if !reflect.DeepEqual(got.Claims, want) || got.Custom != value {
			t.Fatalf("decoded %+v %q, want %+v %q", got.Claims, got.Custom, want, value)
		}
	})
}

// TestAppendJSONString: the escapes of RFC 8259 §7, as encoding/json
// writes them.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `"`, `\`, "\x00\x1f\x7f", "\b\f\n\r\t", "<>&", "\u2028\u2029", "é😀", "\xff", "a\xe2\x80"} {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
}

// BenchmarkIssueByAlg measures Issue alone per algorithm: claims, header,
// base64url, the signature and the token's one allocation. The difference
// from BenchmarkBareSignature in internal/server is the JWS around it.
func BenchmarkIssueByAlg(b *testing.B) {
	f := newFixture(b)
	f.ensure(b, authz.SigningAlgs...)
	for _, alg := range authz.SigningAlgs {
		req := Request{ClientID: "client-1", Audience: "https://api.example.com", Scopes: []string{"read:things"}, Lifetime: 10 * time.Minute, Alg: alg}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := f.issuer.Issue(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendClaims compares the claims' JSON by hand with
// encoding/json's.
func BenchmarkAppendClaims(b *testing.B) {
	c := Claims{Issuer: testIssuerURL, Subject: "client-1", Audience: "https://api.example.com", ClientID: "client-1",
		Scope: "read:things", IssuedAt: 1748779200, Expiry: 1748780100, JTI: base64.RawURLEncoding.EncodeToString(make([]byte, 16))}
	prefix := issSubPrefix(testIssuerURL)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = appendClaims(buf[:0], prefix, &c)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&c)
		}
	})
}
