package token

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/rs"
)

// jwtSegments decodes a compact JWS's header and claims without verifying,
// and returns its signature.
func jwtSegments(t testing.TB, tok string) (header, claims map[string]any, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return header, claims, sig
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// privateKey opens the stored private key kid, as an attacker who stole
// the key would hold it.
func (f *fixture) privateKey(t testing.TB, kid string) crypto.Signer {
	t.Helper()
	stored, err := f.store.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range stored {
		if m.KID != kid {
			continue
		}
		der, err := newSealer(t, 1).Open(m.Private, []byte(kid))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		return priv.(crypto.Signer)
	}
	t.Fatalf("no key %s", kid)
	return nil
}

// sign signs claims with key under header kid and typ.
func sign(t testing.TB, key crypto.Signer, alg, kid, typ string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIssue(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.SigningAlgs...)
	for _, alg := range authz.SigningAlgs {
		t.Run(alg, func(t *testing.T) {
			tok, c := f.issue(t, alg, 15*time.Minute)
			h, claims, _ := jwtSegments(t, tok)
			if h["alg"] != alg || h["typ"] != "at+jwt" || h["kid"] != oneKID(t, f.keys, alg, authz.KeyActive) {
				t.Errorf("header %v", h)
			}
			if claims["iss"] != testIssuerURL || claims["sub"] != "client-1" || claims["client_id"] != "client-1" ||
				claims["aud"] != "https://api.example.com" || claims["scope"] != "read:things" {
				t.Errorf("claims %v", claims)
			}
			if c.IssuedAt != f.clock.Now().Unix() || c.Expiry != c.IssuedAt+900 || c.JTI == "" {
				t.Errorf("claims %+v", c)
			}
			got, err := f.issuer.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if *got != c {
				t.Errorf("Verify = %+v, want %+v", *got, c)
			}
		})
	}
	t.Run("no key for the algorithm", func(t *testing.T) {
		g := newFixture(t)
		g.ensure(t, authz.ES256)
		if _, _, err := g.issuer.Issue(Request{ClientID: "c", Audience: "a", Lifetime: time.Minute, Alg: authz.RS256}); !errors.Is(err, errNoKey) {
			t.Errorf("Issue = %v, want errNoKey", err)
		}
	})
}

// TestVerifyRejects: Verify refuses every token this issuer did not sign
// as it is, or no longer accepts.
func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256, authz.EdDSA)
	good, claims := f.issue(t, authz.ES256, time.Hour)
	parts := strings.Split(good, ".")
	header, _, sig := jwtSegments(t, good)
	esKID := oneKID(t, f.keys, authz.ES256, authz.KeyActive)
	edKID := oneKID(t, f.keys, authz.EdDSA, authz.KeyActive)
	esKey := f.privateKey(t, esKID)

	tamperedClaims := claims
	tamperedClaims.Scope = "read:things admin"
	flipped := append([]byte(nil), sig...)
	flipped[len(flipped)/2] ^= 1
	noneHeader := map[string]any{"alg": "none", "typ": "at+jwt", "kid": esKID}
	hsHeader := map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": esKID}
	hsInput := b64JSON(t, hsHeader) + "." + parts[1]
	mac := hmac.New(sha256.New, []byte(f.keys.JWKS()))
	mac.Write([]byte(hsInput))

	other := newFixture(t) // another server: same algorithm, other keys
	other.ensure(t, authz.ES256)
	foreign, _ := other.issue(t, authz.ES256, time.Hour)
	otherIssuer := NewIssuer("https://evil.example.com", f.keys, f.clock.Now, f.keys.rand)
	fromOtherIssuer, _, err := otherIssuer.Issue(Request{ClientID: "c", Audience: "a", Lifetime: time.Hour, Alg: authz.ES256})
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := f.issue(t, authz.ES256, time.Minute)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMalformed},
		{"not a JWS", "abc", ErrMalformed},
		{"garbage segments", "a.b.c", ErrMalformed},
		{"tampered claims", parts[0] + "." + b64JSON(t, tamperedClaims) + "." + parts[2], ErrSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(flipped), ErrSignature},
		{"signature removed", parts[0] + "." + parts[1] + ".", ErrSignature},
		{"alg none", b64JSON(t, noneHeader) + "." + parts[1] + ".", ErrMalformed},
		{"HS256 keyed with the JWKS", hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), ErrMalformed},
		{"kid of another algorithm's key", sign(t, esKey, "ES256", edKID, "at+jwt", claims), ErrSignature},
		{"typ JWT, not at+jwt", sign(t, esKey, "ES256", esKID, "JWT", claims), ErrMalformed},
		{"no typ", sign(t, esKey, "ES256", esKID, "", claims), ErrMalformed},
		{"unknown kid", foreign, ErrUnknownKey},
		{"kid removed", b64JSON(t, map[string]any{"alg": header["alg"], "typ": "at+jwt"}) + "." + parts[1] + "." + parts[2], ErrUnknownKey},
		{"another issuer", fromOtherIssuer, ErrIssuer},
		{"expired", expired, ErrExpired},
		{"no exp", sign(t, esKey, "ES256", esKID, "at+jwt", map[string]any{"iss": testIssuerURL, "sub": "c"}), ErrMissingClaim},
	}
	f.clock.Add(time.Minute) // expired's lifetime
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.issuer.Verify(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tc.want)
			}
			if c != nil {
				t.Error("claims returned with an error")
			}
			if tc.token != "" && len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
				t.Error("the error repeats the token")
			}
		})
	}
	if _, err := f.issuer.Verify(good); err != nil {
		t.Errorf("the untampered token: %v", err)
	}
}

// claimsOf returns the claims of a token issued by iss at now for
// audience aud, as a map to change, lasting lifetime.
func claimsOf(iss string, now time.Time, lifetime time.Duration) map[string]any {
	return map[string]any{
		"iss": iss, "sub": "client-1", "client_id": "client-1", "aud": "https://api.example.com",
		"scope": "read:things", "iat": now.Unix(), "exp": now.Add(lifetime).Unix(), "jti": "jti-1",
	}
}

// with returns a copy of m with each pair of kv set (a nil value deletes).
func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// rsValidators serves k's JWKS and an RFC 8414 metadata document on a
// loopback server, and returns an issuer whose iss is that server's URL
// and an rs.Validator for audience "https://api.example.com" per leeway
// (0: rs's default), all on clock.
func rsValidators(t *testing.T, k *Keys, clock *fake.Clock, leeways ...time.Duration) (*Issuer, []*rs.Validator) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(k.JWKS())
	})
	var vs []*rs.Validator
	for _, l := range leeways {
		v, err := rs.New(t.Context(), rs.Config{Issuer: srv.URL, Audience: "https://api.example.com", Now: clock.Now, Leeway: l})
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return NewIssuer(srv.URL, k, clock.Now, k.rand), vs
}

// TestVerifyClaims: the claim checks, on tokens signed with a published
// key (as by someone who stole it, or a bug that signed the wrong claims):
// claim names are case-sensitive, iat is required, nbf and iat are
// honoured, an absurd lifetime is refused. Verify refuses every token the
// rs package refuses, for a reason other than the audience (which Verify
// leaves to its caller), at rs's default leeway and at Leeway.
func TestVerifyClaims(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	kid := oneKID(t, f.keys, authz.ES256, authz.KeyActive)
	key := f.privateKey(t, kid)
	issuer, validators := rsValidators(t, f.keys, f.clock, 0, Leeway)
	iss := issuer.URL()
	now := f.clock.Now()
	base := claimsOf(iss, now, time.Hour)
	day := int64(authz.MaxTokenLifetime / time.Second)
	raw := func(s string) json.RawMessage { return json.RawMessage(strings.ReplaceAll(s, "ISS", iss)) }
	rest := fmt.Sprintf(`"sub":"client-1","client_id":"client-1","iat":%d,"exp":%d,"jti":"jti-1"`, now.Unix(), now.Unix()+3600)

	tests := []struct {
		name    string
		claims  any
		want    error // nil: accepted
		wantAud string
	}{
		{name: "as issued", claims: base, wantAud: "https://api.example.com"},
		{name: "AUD does not override aud", claims: raw(`{"iss":"ISS","aud":"https://api.example.com","AUD":"https://admin.example.com",` + rest + `}`), wantAud: "https://api.example.com"},
		{name: "AUD before aud does not override it", claims: raw(`{"iss":"ISS","AUD":"https://admin.example.com","aud":"https://api.example.com",` + rest + `}`), wantAud: "https://api.example.com"},
		{name: "AUD is not aud", claims: raw(`{"iss":"ISS","AUD":"https://api.example.com",` + rest + `}`), want: ErrMissingClaim},
		{name: "Iss is not iss", claims: raw(`{"Iss":"ISS","aud":"https://api.example.com",` + rest + `}`), want: ErrIssuer},
		{name: "CLIENT_ID is not client_id", claims: raw(`{"iss":"ISS","aud":"https://api.example.com","CLIENT_ID":"client-1","sub":"client-1","iat":1,"exp":2,"jti":"j"}`), want: ErrMissingClaim},
		{name: "IAT is not iat", claims: raw(fmt.Sprintf(`{"iss":"ISS","aud":"https://api.example.com","sub":"c","client_id":"c","IAT":%d,"exp":%d,"jti":"j"}`, now.Unix(), now.Unix()+60)), want: ErrMissingClaim},
		{name: "aud repeated", claims: raw(`{"iss":"ISS","aud":"https://admin.example.com","aud":"https://api.example.com",` + rest + `}`), want: ErrMalformed},
		{name: "aud as a list", claims: with(base, "aud", []string{"https://api.example.com"}), want: ErrMalformed},
		{name: "iat as a string", claims: with(base, "iat", fmt.Sprint(now.Unix())), want: ErrMalformed},
		{name: "claims not an object", claims: []string{"iss"}, want: ErrMalformed},

		{name: "no iat", claims: with(base, "iat", nil), want: ErrMissingClaim},
		{name: "iat null", claims: with(base, "iat", json.RawMessage("null")), want: ErrMissingClaim},
		{name: "no exp", claims: with(base, "exp", nil), want: ErrMissingClaim},
		{name: "no aud", claims: with(base, "aud", nil), want: ErrMissingClaim},
		{name: "no sub", claims: with(base, "sub", nil), want: ErrMissingClaim},
		{name: "no client_id", claims: with(base, "client_id", nil), want: ErrMissingClaim},
		{name: "no jti", claims: with(base, "jti", nil), want: ErrMissingClaim},
		{name: "no iss", claims: with(base, "iss", nil), want: ErrIssuer},

		{name: "nbf in the past", claims: with(base, "nbf", now.Unix()-60), wantAud: "https://api.example.com"},
		{name: "nbf within the leeway", claims: with(base, "nbf", now.Add(Leeway).Unix()), wantAud: "https://api.example.com"},
		{name: "nbf in the future", claims: with(base, "nbf", now.Add(Leeway).Unix()+1), want: ErrNotYetValid},
		{name: "nbf far in the future", claims: with(base, "nbf", now.Unix()+600), want: ErrNotYetValid},
		{name: "nbf not a number", claims: with(base, "nbf", "soon"), want: ErrMalformed},
		{name: "iat within the leeway", claims: with(base, "iat", now.Add(Leeway).Unix()), wantAud: "https://api.example.com"},
		{name: "iat in the future", claims: with(base, "iat", now.Add(Leeway).Unix()+1), want: ErrNotYetValid},
		{name: "iat far in the future", claims: with(base, "iat", now.Unix()+1800), want: ErrNotYetValid},

		{name: "exp before iat", claims: with(base, "iat", now.Unix(), "exp", now.Unix()-1), want: ErrMalformed},
		{name: "exp equal to iat", claims: with(base, "iat", now.Unix()+1, "exp", now.Unix()+1), want: ErrMalformed},
		{name: "lifetime of exactly MaxTokenLifetime", claims: with(base, "iat", now.Unix()-1, "exp", now.Unix()-1+day), wantAud: "https://api.example.com"},
		{name: "lifetime longer than MaxTokenLifetime", claims: with(base, "iat", now.Unix()-1, "exp", now.Unix()+day), want: ErrMalformed},
		{name: "exp in a thousand years", claims: with(base, "exp", now.AddDate(1000, 0, 0).Unix()), want: ErrMalformed},
		{name: "exp beyond the NumericDate range", claims: with(base, "exp", json.RawMessage("1e300")), want: ErrMalformed},
		{name: "iat long ago, exp soon", claims: with(base, "iat", int64(1), "exp", now.Unix()+60), want: ErrMalformed},
		{name: "exp now", claims: with(base, "iat", now.Unix()-60, "exp", now.Unix()), want: ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, key, "ES256", kid, "at+jwt", tc.claims)
			c, err := issuer.Verify(tok)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want the claims", err)
				}
				if c.Audience != tc.wantAud {
					t.Fatalf("aud = %q, want %q", c.Audience, tc.wantAud)
				}
			} else if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tc.want)
			}
			for _, v := range validators {
				if _, rsErr := v.Validate(t.Context(), tok); rsErr != nil && !errors.Is(rsErr, rs.ErrAudience) && err == nil {
					t.Errorf("rs refuses the token (%v), Verify accepts it", rsErr)
				}
			}
		})
	}
}

// TestVerifyOneSpelling: a token is accepted as issued and in no other
// spelling: go-jose alone ignores line breaks and the unused bits of a
// segment's last base64url character.
func TestVerifyOneSpelling(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256, authz.EdDSA, authz.RS256)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, alg := range []string{authz.ES256, authz.EdDSA, authz.RS256} {
		t.Run(alg, func(t *testing.T) {
			good, _ := f.issue(t, alg, time.Hour)
			if _, err := f.issuer.Verify(good); err != nil {
				t.Fatal(err)
			}
			for i := range alphabet {
				if alphabet[i] == good[len(good)-1] {
					continue
				}
				other := good[:len(good)-1] + alphabet[i:i+1]
				if _, err := f.issuer.Verify(other); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) {
					t.Fatalf("last character %q: Verify = %v, want a rejection", alphabet[i], err)
				}
			}
			dot := strings.Index(good, ".")
			for _, variant := range []string{good[:dot-2] + "\n" + good[dot-2:], good + "\r\n", good[:dot] + "=" + good[dot:]} {
				if _, err := f.issuer.Verify(variant); !errors.Is(err, ErrMalformed) {
					t.Errorf("Verify(%q) = %v, want ErrMalformed", variant, err)
				}
			}
		})
	}
}

// TestVerifyLengthBound: a token longer than MaxTokenBytes is refused
// unparsed, even validly signed.
func TestVerifyLengthBound(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	kid := oneKID(t, f.keys, authz.ES256, authz.KeyActive)
	now := f.clock.Now().Unix()
	claims := map[string]any{"iss": testIssuerURL, "sub": "c", "client_id": "c", "aud": "a", "iat": now, "exp": now + 60, "jti": "j"}
	claims["scope"] = strings.Repeat("s", MaxTokenBytes)
	huge := sign(t, f.privateKey(t, kid), "ES256", kid, "at+jwt", claims)
	if _, err := f.issuer.Verify(huge); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Verify(%d bytes) = %v, want ErrMalformed", len(huge), err)
	}
	claims["scope"] = "read"
	if _, err := f.issuer.Verify(sign(t, f.privateKey(t, kid), "ES256", kid, "at+jwt", claims)); err != nil {
		t.Fatalf("the same token, short: %v", err)
	}
}

// FuzzVerify: Verify never panics and accepts nothing but the tokens this
// issuer signed.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	fx.ensure(f, authz.ES256)
	good, _ := fx.issue(f, authz.ES256, time.Hour)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good[:len(good)-2])
	f.Add(strings.Replace(good, ".", "..", 1))
	// Signed with the issuer's own key, refused for their claims alone.
	kid := oneKID(f, fx.keys, authz.ES256, authz.KeyActive)
	key := fx.privateKey(f, kid)
	base := claimsOf(testIssuerURL, fx.clock.Now(), time.Hour)
	for _, c := range []any{
		with(base, "iat", nil),
		with(base, "aud", nil, "AUD", "https://api.example.com"),
		with(base, "nbf", fx.clock.Now().Unix()+600),
		with(base, "iat", fx.clock.Now().Unix()+600),
		with(base, "exp", fx.clock.Now().Unix()+2*86400),
		json.RawMessage(`{"iss":"` + testIssuerURL + `","aud":"a","aud":"b"}`),
	} {
		f.Add(sign(f, key, "ES256", kid, "at+jwt", c))
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := fx.issuer.Verify(tok)
		if err == nil && tok != good {
			// Another encoding of the same token would be a malleability bug.
			t.Fatalf("accepted a token that was not issued: %q (%+v)", tok, c)
		}
	})
}
