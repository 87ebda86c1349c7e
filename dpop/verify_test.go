package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var (
	testNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	testURL = "https://server.example.com/token"
)

// Keys are made once: RSA key generation is slow.
var (
	keysOnce sync.Once
	ecKey    *ecdsa.PrivateKey
	ecKey2   *ecdsa.PrivateKey
	p384Key  *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
	rsaKey   *rsa.PrivateKey
	rsa1024  *rsa.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ecKey2, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p384Key, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
		rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		rsa1024, _ = rsa.GenerateKey(rand.Reader, 1024)
	})
}

// forged is a proof built by hand, so that tests can break any part.
type forged struct {
	header map[string]any
	claims map[string]any
	sign   func(in []byte) []byte
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (f forged) String() string {
	h, _ := json.Marshal(f.header)
	c, _ := json.Marshal(f.claims)
	in := b64(h) + "." + b64(c)
	return in + "." + b64(f.sign([]byte(in)))
}

func jwkJSON(t testing.TB, key any) map[string]any {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func signES256(k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			panic(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
}

func signRS256(k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

// validProof is an ES256 proof for POST testURL at testNow.
func validProof(t testing.TB) forged {
	keys(t)
	return forged{
		header: map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkJSON(t, ecKey.Public())},
		claims: map[string]any{"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": testURL, "iat": testNow.Unix()},
		sign:   signES256(ecKey),
	}
}

func opts() VerifyOptions {
	return VerifyOptions{Method: "POST", URL: testURL, Now: testNow}
}

// memReplay is an in-memory Replay.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
	err  error
}

func (r *memReplay) UseJTI(_ context.Context, key string, exp time.Time) (bool, error) {
	if r.err != nil {
		return false, r.err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	if _, ok := r.seen[key]; ok {
		return false, nil
	}
	r.seen[key] = exp
	return true, nil
}

func TestVerify(t *testing.T) {
	keys(t)
	nonces := NewNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute, func() time.Time { return testNow })
	at := func(d time.Duration) *Nonces {
		return NewNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute, func() time.Time { return testNow.Add(d) })
	}
	with := func(mut func(f *forged)) string {
		f := validProof(t)
		mut(&f)
		return f.String()
	}
	claim := func(k string, v any) string {
		return with(func(f *forged) {
			if v == nil {
				delete(f.claims, k)
			} else {
				f.claims[k] = v
			}
		})
	}
	head := func(k string, v any) string {
		return with(func(f *forged) {
			if v == nil {
				delete(f.header, k)
			} else {
				f.header[k] = v
			}
		})
	}
	privJWK := jwkJSON(t, ecKey)
	rsaPub := jwkJSON(t, rsa1024.Public())
	hs256 := forged{
		header: map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": jwkJSON(t, ecKey.Public())},
		claims: validProof(t).claims,
		sign: func(in []byte) []byte {
			m := hmac.New(sha256.New, []byte("secret"))
			m.Write(in)
			return m.Sum(nil)
		},
	}
	long := validProof(t)
	long.claims["pad"] = strings.Repeat("x", MaxHeaderBytes)

	tests := []struct {
		name    string
		header  []string
		opts    func(o *VerifyOptions)
		wantErr error // nil: accepted
		reason  string
	}{
		{name: "valid", header: []string{validProof(t).String()}},
		{name: "no header", header: nil, wantErr: ErrInvalidProof, reason: "no DPoP header"},
		{name: "two header values", header: []string{validProof(t).String(), validProof(t).String()}, wantErr: ErrInvalidProof, reason: "2 DPoP headers"},
		{name: "empty header", header: []string{""}, wantErr: ErrInvalidProof, reason: "empty"},
		{name: "oversized header", header: []string{long.String()}, wantErr: ErrInvalidProof, reason: "longer than"},
		{name: "malformed: not a JWS", header: []string{"not-a-jws"}, wantErr: ErrInvalidProof, reason: "not a JWS"},
		{name: "malformed: four parts", header: []string{"a.b.c.d"}, wantErr: ErrInvalidProof, reason: "not a JWS"},
		{name: "malformed: header not base64", header: []string{"!!.e30.AA"}, wantErr: ErrInvalidProof, reason: "malformed JWS header"},
		{name: "malformed: header not JSON", header: []string{b64([]byte("{")) + ".e30.AA"}, wantErr: ErrInvalidProof, reason: "malformed JWS header"},
		{name: "malformed: claims not JSON", header: []string{func() string {
			p := strings.Split(validProof(t).String(), ".")
			in := p[0] + "." + b64([]byte("[1"))
			return in + "." + b64(signES256(ecKey)([]byte(in)))
		}()}, wantErr: ErrInvalidProof, reason: "malformed claims"},
		{name: "malformed: two proofs joined with a comma", header: []string{validProof(t).String() + ", " + validProof(t).String()}, wantErr: ErrInvalidProof},
		{name: "wrong typ", header: []string{head("typ", "JWT")}, wantErr: ErrInvalidProof, reason: "typ"},
		{name: "typ in another case", header: []string{head("typ", "DPoP+jwt")}, wantErr: ErrInvalidProof, reason: "typ"},
		{name: "no typ", header: []string{head("typ", nil)}, wantErr: ErrInvalidProof, reason: "typ"},
		{name: "typ not a string", header: []string{head("typ", 1)}, wantErr: ErrInvalidProof, reason: "malformed JWS header"},
		{name: "alg none", header: []string{with(func(f *forged) {
			f.header["alg"] = "none"
			f.sign = func([]byte) []byte { return nil }
		})}, wantErr: ErrInvalidProof, reason: `alg "none"`},
		{name: "alg HS256", header: []string{hs256.String()}, wantErr: ErrInvalidProof, reason: `alg "HS256"`},
		{name: "alg allowed by default but not by options", header: []string{validProof(t).String()}, opts: func(o *VerifyOptions) { o.Algs = []string{"EdDSA"} }, wantErr: ErrInvalidProof, reason: `alg "ES256"`},
		{name: "no jwk", header: []string{head("jwk", nil)}, wantErr: ErrInvalidProof, reason: "no jwk"},
		{name: "jwk with a private key", header: []string{head("jwk", privJWK)}, wantErr: ErrInvalidProof, reason: "private key"},
		{name: "jwk symmetric", header: []string{head("jwk", map[string]any{"kty": "oct", "k": "c2VjcmV0"})}, wantErr: ErrInvalidProof, reason: "private key"},
		{name: "jwk not a key", header: []string{head("jwk", map[string]any{"kty": "EC"})}, wantErr: ErrInvalidProof},
		{name: "RSA key of 1024 bits", header: []string{with(func(f *forged) {
			f.header["alg"], f.header["jwk"], f.sign = "RS256", rsaPub, signRS256(rsa1024)
		})}, wantErr: ErrInvalidProof, reason: "RSA key shorter than 2048 bits"},
		{name: "RSA key of 2048 bits", header: []string{with(func(f *forged) {
			f.header["alg"], f.header["jwk"], f.sign = "RS256", jwkJSON(t, rsaKey.Public()), signRS256(rsaKey)
		})}},
		{name: "P-384 key with ES256", header: []string{with(func(f *forged) {
			f.header["jwk"], f.sign = jwkJSON(t, p384Key.Public()), signES256(p384Key)
		})}, wantErr: ErrInvalidProof, reason: "EC key does not suit"},
		{name: "P-384 key with ES384", header: []string{with(func(f *forged) {
			f.header["alg"], f.header["jwk"] = "ES384", jwkJSON(t, p384Key.Public())
			f.sign = func(in []byte) []byte {
				h := sha512_384(in)
				r, s, _ := ecdsa.Sign(rand.Reader, p384Key, h)
				out := make([]byte, 96)
				r.FillBytes(out[:48])
				s.FillBytes(out[48:])
				return out
			}
		})}, opts: func(o *VerifyOptions) { o.Algs = []string{"ES384"} }},
		{name: "EC key with EdDSA", header: []string{head("alg", "EdDSA")}, wantErr: ErrInvalidProof, reason: "EC key does not suit"},
		{name: "signed by another key", header: []string{with(func(f *forged) { f.sign = signES256(ecKey2) })}, wantErr: ErrInvalidProof, reason: "signature"},
		{name: "signature altered", header: []string{validProof(t).String() + "AA"}, wantErr: ErrInvalidProof},
		{name: "wrong htm", header: []string{claim("htm", "GET")}, wantErr: ErrInvalidProof, reason: "htm"},
		{name: "htm in lower case", header: []string{claim("htm", "post")}, wantErr: ErrInvalidProof, reason: "htm"},
		{name: "no htm", header: []string{claim("htm", nil)}, wantErr: ErrInvalidProof, reason: "no htm"},
		{name: "claim names are case-sensitive", header: []string{with(func(f *forged) { f.claims["HTM"] = f.claims["htm"]; delete(f.claims, "htm") })}, wantErr: ErrInvalidProof, reason: "no htm"},
		{name: "wrong htu path", header: []string{claim("htu", "https://server.example.com/other")}, wantErr: ErrInvalidProof, reason: "htu"},
		{name: "wrong htu host", header: []string{claim("htu", "https://evil.example.com/token")}, wantErr: ErrInvalidProof, reason: "htu"},
		{name: "wrong htu scheme", header: []string{claim("htu", "http://server.example.com/token")}, wantErr: ErrInvalidProof, reason: "htu"},
		{name: "htu with another port", header: []string{claim("htu", "https://server.example.com:8443/token")}, wantErr: ErrInvalidProof, reason: "htu"},
		{name: "htu path in another case", header: []string{claim("htu", "https://server.example.com/TOKEN")}, wantErr: ErrInvalidProof, reason: "htu"},
		{name: "htu relative", header: []string{claim("htu", "/token")}, wantErr: ErrInvalidProof, reason: "htu is not an absolute"},
		{name: "no htu", header: []string{claim("htu", nil)}, wantErr: ErrInvalidProof, reason: "no htu"},
		{name: "query and fragment ignored", header: []string{claim("htu", testURL+"?a=1#f")}, opts: func(o *VerifyOptions) { o.URL = testURL + "?b=2" }},
		{name: "host and scheme case ignored", header: []string{claim("htu", "HTTPS://Server.EXAMPLE.com/token")}},
		{name: "default port ignored", header: []string{claim("htu", "https://server.example.com:443/token")}},
		{name: "default port of the request URL ignored", header: []string{validProof(t).String()}, opts: func(o *VerifyOptions) { o.URL = "https://server.example.com:443/token" }},
		{name: "percent-encoding case ignored", header: []string{claim("htu", "https://server.example.com/a%2fb")}, opts: func(o *VerifyOptions) { o.URL = "https://server.example.com/a%2Fb" }},
		{name: "encoded unreserved characters decoded", header: []string{claim("htu", "https://server.example.com/%7Euser")}, opts: func(o *VerifyOptions) { o.URL = "https://server.example.com/~user" }},
		{name: "empty path is /", header: []string{claim("htu", "https://server.example.com")}, opts: func(o *VerifyOptions) { o.URL = "https://server.example.com/" }},
		{name: "request URL not absolute", header: []string{validProof(t).String()}, opts: func(o *VerifyOptions) { o.URL = "/token" }, wantErr: ErrInvalidProof, reason: "request URL"},
		{name: "iat too old", header: []string{claim("iat", testNow.Add(-61*time.Second).Unix())}, wantErr: ErrInvalidProof, reason: "iat is more than 1m0s old"},
		{name: "iat at MaxAge", header: []string{claim("iat", testNow.Add(-60*time.Second).Unix())}},
		{name: "iat too new", header: []string{claim("iat", testNow.Add(11*time.Second).Unix())}, wantErr: ErrInvalidProof, reason: "in the future"},
		{name: "iat at Leeway", header: []string{claim("iat", testNow.Add(10*time.Second).Unix())}},
		{name: "iat older than a custom MaxAge", header: []string{claim("iat", testNow.Add(-6*time.Second).Unix())}, opts: func(o *VerifyOptions) { o.MaxAge = 5 * time.Second }, wantErr: ErrInvalidProof, reason: "old"},
		{name: "no iat", header: []string{claim("iat", nil)}, wantErr: ErrInvalidProof, reason: "no iat"},
		{name: "iat a string", header: []string{claim("iat", "1796119200")}, wantErr: ErrInvalidProof, reason: "malformed claims"},
		{name: "iat negative", header: []string{claim("iat", -1)}, wantErr: ErrInvalidProof, reason: "iat"},
		{name: "no jti", header: []string{claim("jti", nil)}, wantErr: ErrInvalidProof, reason: "no jti"},
		{name: "empty jti", header: []string{claim("jti", "")}, wantErr: ErrInvalidProof, reason: "no jti"},
		{name: "jti of 256 bytes", header: []string{claim("jti", strings.Repeat("j", 256))}},
		{name: "jti too long", header: []string{claim("jti", strings.Repeat("j", 257))}, wantErr: ErrInvalidProof, reason: "jti longer"},
		{name: "jti not a string", header: []string{claim("jti", 7)}, wantErr: ErrInvalidProof, reason: "malformed claims"},
		{name: "ath matches", header: []string{claim("ath", AccessTokenHash("at-1"))}, opts: func(o *VerifyOptions) { o.AccessToken = "at-1" }},
		{name: "ath missing", header: []string{validProof(t).String()}, opts: func(o *VerifyOptions) { o.AccessToken = "at-1" }, wantErr: ErrInvalidProof, reason: "no ath"},
		{name: "ath of another token", header: []string{claim("ath", AccessTokenHash("at-2"))}, opts: func(o *VerifyOptions) { o.AccessToken = "at-1" }, wantErr: ErrInvalidProof, reason: "ath does not match"},
		{name: "ath ignored without an access token", header: []string{claim("ath", "whatever")}},
		{name: "nonce current", header: []string{claim("nonce", nonces.Current())}, opts: func(o *VerifyOptions) { o.Nonces = nonces }},
		{name: "nonce of the previous window", header: []string{claim("nonce", at(-time.Minute).Current())}, opts: func(o *VerifyOptions) { o.Nonces = nonces }},
		{name: "nonce missing", header: []string{validProof(t).String()}, opts: func(o *VerifyOptions) { o.Nonces = nonces }, wantErr: ErrUseNonce, reason: "no nonce"},
		{name: "nonce stale", header: []string{claim("nonce", at(-2*time.Minute).Current())}, opts: func(o *VerifyOptions) { o.Nonces = nonces }, wantErr: ErrUseNonce, reason: "not current"},
		{name: "nonce of another key", header: []string{claim("nonce", NewNonces([]byte("another key of thirty-two bytes!"), time.Minute, func() time.Time { return testNow }).Current())}, opts: func(o *VerifyOptions) { o.Nonces = nonces }, wantErr: ErrUseNonce},
		{name: "nonce ignored without Nonces", header: []string{claim("nonce", "anything")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts()
			if tt.opts != nil {
				tt.opts(&o)
			}
			p, err := Verify(context.Background(), tt.header, o)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.JKT == "" || p.JTI == "" || p.IssuedAt.IsZero() || p.Alg == "" || !p.Key.IsPublic() {
					t.Errorf("proof %+v is incomplete", p)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("Verify error = %v, want %v (and ErrInvalidProof)", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			for _, h := range tt.header {
				if len(h) > 20 && strings.Contains(err.Error(), h[:20]) {
					t.Errorf("error %q holds the proof", err)
				}
			}
			if p != nil {
				t.Errorf("a refusal returned a proof")
			}
		})
	}
}

func sha512_384(in []byte) []byte {
	h := crypto.SHA384.New()
	h.Write(in)
	return h.Sum(nil)
}

func TestVerifyProofFields(t *testing.T) {
	keys(t)
	f := validProof(t)
	f.claims["nonce"] = "n-1"
	p, err := Verify(context.Background(), []string{f.String()}, opts())
	if err != nil {
		t.Fatal(err)
	}
	jkt, _ := Thumbprint(jose.JSONWebKey{Key: ecKey.Public()})
	if p.JKT != jkt || p.JTI != "e1j3V_bKic8-LAEB" || !p.IssuedAt.Equal(testNow) || p.Nonce != "n-1" || p.Alg != "ES256" {
		t.Errorf("proof = %+v", p)
	}
	if pub, ok := p.Key.Key.(*ecdsa.PublicKey); !ok || !pub.Equal(ecKey.Public()) {
		t.Errorf("Key = %#v", p.Key.Key)
	}
}

func TestVerifyReplay(t *testing.T) {
	proof := validProof(t).String()
	r := &memReplay{}
	o := opts()
	o.Replay = r
	if _, err := Verify(context.Background(), []string{proof}, o); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(context.Background(), []string{proof}, o)
	if !errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), "jti already used") {
		t.Fatalf("replayed proof: %v", err)
	}
	jkt, _ := Thumbprint(jose.JSONWebKey{Key: ecKey.Public()})
	exp, ok := r.seen["dpop:"+jkt+":e1j3V_bKic8-LAEB"]
	if !ok || !exp.Equal(testNow.Add(DefaultMaxAge+DefaultLeeway)) {
		t.Errorf("recorded %v", r.seen)
	}

	// The same jti from another key is another proof.
	keys(t)
	f := validProof(t)
	f.header["jwk"], f.sign = jwkJSON(t, ecKey2.Public()), signES256(ecKey2)
	if _, err := Verify(context.Background(), []string{f.String()}, o); err != nil {
		t.Errorf("same jti, another key: %v", err)
	}

	// A store failure is the server's error, not a refusal.
	o.Replay = &memReplay{err: errors.New("database down")}
	_, err = Verify(context.Background(), []string{validProof(t).String()}, o)
	if err == nil || errors.Is(err, ErrInvalidProof) {
		t.Errorf("store failure: %v", err)
	}
}

func TestVerifyRefusedProofIsNotRecorded(t *testing.T) {
	r := &memReplay{}
	o := opts()
	o.Replay = r
	o.Nonces = NewNonces(make([]byte, 32), time.Minute, func() time.Time { return testNow })
	if _, err := Verify(context.Background(), []string{validProof(t).String()}, o); !errors.Is(err, ErrUseNonce) {
		t.Fatal(err)
	}
	if len(r.seen) != 0 {
		t.Errorf("a refused proof was recorded: %v", r.seen)
	}
}

func TestVerifyBadOptions(t *testing.T) {
	for _, algs := range [][]string{{"HS256"}, {"none"}, {"ES256", "RSA-OAEP"}} {
		o := opts()
		o.Algs = algs
		_, err := Verify(context.Background(), []string{validProof(t).String()}, o)
		if err == nil || errors.Is(err, ErrInvalidProof) {
			t.Errorf("Algs %v: %v, want an options error", algs, err)
		}
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 7638 §3.1.
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	k := jose.JSONWebKey{Key: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}, KeyID: "2011-04-29", Algorithm: "RS256"}
	got, err := Thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("Thumbprint = %s, want %s", got, want)
	}
	if _, err := Thumbprint(jose.JSONWebKey{}); err == nil {
		t.Error("Thumbprint of an empty JWK succeeded")
	}
}

func TestAccessTokenHash(t *testing.T) {
	// RFC 9449 §7.1: the ath of the example token.
	const token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	if got, want := AccessTokenHash(token), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"; got != want {
		t.Errorf("AccessTokenHash = %s, want %s", got, want)
	}
}
