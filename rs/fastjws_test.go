package rs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fastAlgs is the allow-list the fast path is checked with.
var fastAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}

// b64 is unpadded base64url.
func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// fastSeeds are compact JWSs with headers and payloads at the edge of
// what the fast path reads: the real shape, then each thing it must hand
// to go-jose or reject.
func fastSeeds(t testing.TB) []string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), "es"))
	if err != nil {
		t.Fatal(err)
	}
	const claims = `{"iss":"https://issuer","sub":"app_1","aud":"https://api","client_id":"app_1","iat":1700000000,"exp":1700003600,"jti":"t1","scope":"a b"}`
	obj, err := signer.Sign([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	real, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	sig := real[strings.LastIndexByte(real, '.')+1:]
	seeds := []string{real}
	for _, h := range []string{
		`{"alg":"ES256","kid":"es","typ":"at+jwt"}`,
		` { "alg" : "EdDSA" , "typ":"application/at+jwt","kid":"k" } `,
		`{"alg":"RS256"}`,
		`{"alg":"none","typ":"at+jwt"}`,
		`{"alg":"HS256","kid":"es"}`,
		`{"alg":"ES256","alg":"ES256","kid":"es"}`,
		`{"alg":"ES256","kid":"es","crit":["exp"],"exp":1}`,
		`{"alg":"ES256","kid":"es","b64":false,"crit":["b64"]}`,
		`{"alg":"ES256","kid":"e\u0073"}`,
		`{"alg":"ES256","kid":"es",}`,
		`{"alg":"ES256","kid":1}`,
		`{"ALG":"ES256"}`,
		`{"alg":"ES256","jwk":{"kty":"EC"}}`,
		`["alg","ES256"]`,
		`{"alg":"ES256"}x`,
		`{}`,
	} {
		for _, p := range []string{
			claims,
			`{"iss":"x","aud":["a","b"],"exp":1,"nbf":0,"cnf":{"jkt":"abc"}}`,
			`{"iss":"x","iss":"y"}`,
			`{"exp":1.5}`, `{"exp":01}`, `{"exp":-1}`, `{"exp":1e3}`, `{"exp":1234567890123456}`,
			`{"aud":[]}`, `{"aud":["a",]}`, `{"iss":"\u00e9"}`, `{"tenant":"t"}`, `{"cnf":{"jkt":1}}`,
			`{"iss":null}`, `{"iss":"x"} {}`, ``,
		} {
			seeds = append(seeds, b64s(h)+"."+b64s(p)+"."+sig)
		}
	}
	return append(seeds, "a.b.c", "a.b", "a.b.c.d", "..", "e30.e30.")
}

// checkFastAgainstGoJOSE fails t if parseFast accepts token but go-jose's
// jwt.ParseSigned with the same allow-list does not, or reads another
// header, payload or signature.
func checkFastAgainstGoJOSE(t *testing.T, token string) {
	if len(token) > maxTokenBytes || !isCanonical(token) {
		return
	}
	var buf [512]byte
	j, ok := parseFast(token, fastAlgs, buf[:0])
	if !ok {
		return
	}
	parsed, err := jwt.ParseSigned(token, fastAlgs)
	if err != nil {
		t.Fatalf("fast path accepts %q, go-jose does not: %v", token, err)
	}
	h := parsed.Headers[0]
	if h.Algorithm != string(j.alg) || h.KeyID != j.kid || isAccessTokenType(h.ExtraHeaders[jose.HeaderType]) != j.typOK {
		t.Fatalf("header: fast %+v, go-jose %+v", j, h)
	}
	for name := range h.ExtraHeaders {
		if name != jose.HeaderType {
			t.Fatalf("fast path accepted a header with %q", name)
		}
	}
	jws, err := jose.ParseSignedCompact(token, fastAlgs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(jws.UnsafePayloadWithoutVerification(), j.payload) || !bytes.Equal(jws.Signatures[0].Signature, j.sig) ||
		j.input != token[:strings.LastIndexByte(token, '.')] {
		t.Fatalf("payload, signature or signing input differ for %q", token)
	}
	checkFastClaims(t, j.payload)
}

// checkFastClaims fails t if fastClaims decodes payload but go-jose's
// JSON (json.Unmarshal into claimsSet, and jwt.Claims) does not, or
// decodes it otherwise.
func checkFastClaims(t *testing.T, payload []byte) {
	var fast claimsSet
	if !fastClaims(payload, &fast) {
		return
	}
	var ref claimsSet
	if err := json.Unmarshal(payload, &ref); err != nil {
		t.Fatalf("fast path decodes %q, go-jose's JSON does not: %v", payload, err)
	}
	if len(fast.Cnf) == 0 {
		fast.Cnf = nil
	}
	if !reflect.DeepEqual(fast, ref) {
		t.Fatalf("claims of %q: fast %+v, go-jose %+v", payload, fast, ref)
	}
	var std jwt.Claims
	if err := json.Unmarshal(payload, &std); err != nil {
		t.Fatalf("jwt.Claims: %v", err)
	}
	if std.Issuer != fast.Issuer || std.Subject != fast.Subject || std.ID != fast.ID ||
		!reflect.DeepEqual([]string(std.Audience), []string(fast.Audience)) ||
		(std.Expiry == nil) == fast.Expiry.set || std.Expiry != nil && int64(*std.Expiry) != fast.Expiry.unix ||
		(std.IssuedAt == nil) == fast.IssuedAt.set || std.IssuedAt != nil && int64(*std.IssuedAt) != fast.IssuedAt.unix ||
		(std.NotBefore == nil) == fast.NotBefore.set || std.NotBefore != nil && int64(*std.NotBefore) != fast.NotBefore.unix {
		t.Fatalf("claims of %q: fast %+v, jwt.Claims %+v", payload, fast, std)
	}
}

// TestFastPathMatchesGoJOSE: on every seed, what the fast path accepts
// go-jose accepts the same way, and the seeds it must not read are
// handed to go-jose.
func TestFastPathMatchesGoJOSE(t *testing.T) {
	seeds := fastSeeds(t)
	for _, tok := range seeds {
		checkFastAgainstGoJOSE(t, tok)
	}
	var buf [512]byte
	if _, ok := parseFast(seeds[0], fastAlgs, buf[:0]); !ok {
		t.Fatal("the fast path does not read a real token")
	}
	for _, h := range []string{
		`{"alg":"none","typ":"at+jwt"}`,
		`{"alg":"HS256","kid":"es"}`,
		`{"alg":"ES256","alg":"ES256","kid":"es"}`,
		`{"alg":"ES256","kid":"es","crit":["exp"],"exp":1}`,
		`{"alg":"ES256","kid":"e\u0073"}`,
		`{"alg":"ES256","kid":"es","x5c":[]}`,
	} {
		if _, ok := parseFast(b64s(h)+".e30.AAAA", fastAlgs, buf[:0]); ok {
			t.Errorf("fast path reads header %s", h)
		}
	}
	var c claimsSet
	for _, p := range []string{`{"iss":"x","iss":"y"}`, `{"exp":1.5}`, `{"iss":"\u00e9"}`, `{"tenant":"t"}`, `{"aud":[]}`} {
		if fastClaims([]byte(p), &c) {
			t.Errorf("fast path decodes claims %s", p)
		}
	}
}

// FuzzFastPath: for any input, a token the fast path reads, go-jose
// reads alike (checkFastAgainstGoJOSE). Its seed corpus runs with the
// normal tests.
func FuzzFastPath(f *testing.F) {
	for _, s := range fastSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(checkFastAgainstGoJOSE)
}

// FuzzFastClaims: for any payload, claims the fast decoder reads, go-jose's
// JSON reads alike (checkFastClaims).
func FuzzFastClaims(f *testing.F) {
	for _, s := range fastSeeds(f) {
		parts := strings.Split(s, ".")
		if len(parts) == 3 {
			if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
				f.Add(p)
			}
		}
	}
	f.Fuzz(checkFastClaims)
}
