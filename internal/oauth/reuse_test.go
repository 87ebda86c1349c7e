package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/denylist"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/quota"
	"github.com/m2mauth/m2mauth/internal/store/cache"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
	"github.com/m2mauth/m2mauth/internal/token"
)

// reuseFixture is a token endpoint over a real SQLite store behind the
// real application cache, with real signing keys in that store, the real
// deny-list, and a counter of the signatures its token.Issuer makes.
type reuseFixture struct {
	srv    *Server
	sq     *sqlite.Store
	store  *cache.Store
	keys   *token.Keys
	deny   *denylist.DenyList
	clock  *fake.Clock
	replay *memReplay
	secret string
	api    authz.API // testAudience: token reuse 300 s, lifetime 1 h
	apiB   authz.API // testAudienceB: token reuse 300 s
	grant  authz.Grant
	sigs   atomic.Int64
}

const reuseClient = "reuse-client"

func newReuseFixture(t testing.TB) *reuseFixture {
	t.Helper()
	ctx := context.Background()
	f := &reuseFixture{clock: fake.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)), replay: &memReplay{}}
	log := slog.New(slog.DiscardHandler)
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "m2mauth.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sq.Close() })
	f.sq = sq
	f.store = cache.New(sq, cache.Options{SoleWriter: true, Now: f.clock.Now})
	sealer, err := masterkey.NewSealer(rand.Reader, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f.keys = token.NewKeys(sq, sealer, f.clock.Now, rand.Reader, log)
	if err := f.keys.Ensure(ctx, authz.ES256); err != nil {
		t.Fatal(err)
	}
	hasher, err := clientsecret.NewHasher(make([]byte, clientsecret.PepperLen))
	if err != nil {
		t.Fatal(err)
	}
	now := authz.StoreTime(f.clock.Now())
	reuse := authz.TokenReuse{MinRemaining: 300 * time.Second}
	f.api = authz.API{ID: "api_a", Identifier: testAudience, Name: "A", Scopes: []authz.Scope{{Value: "read"}, {Value: "write"}},
		TokenLifetime: time.Hour, SigningAlg: authz.ES256, TokenReuse: reuse, CreatedAt: now, UpdatedAt: now}
	f.apiB = authz.API{ID: "api_b", Identifier: testAudienceB, Name: "B", Scopes: []authz.Scope{{Value: "read"}},
		TokenLifetime: time.Hour, SigningAlg: authz.ES256, TokenReuse: reuse, CreatedAt: now, UpdatedAt: now}
	for _, a := range []authz.API{f.api, f.apiB} {
		if err := f.store.CreateAPI(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	id, plain, err := clientsecret.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.secret = plain
	f.grant = authz.Grant{ID: "grt_a", ClientID: reuseClient, APIID: f.api.ID, Scopes: []string{"read", "write"}, CreatedAt: now, UpdatedAt: now}
	grantB := authz.Grant{ID: "grt_b", ClientID: reuseClient, APIID: f.apiB.ID, Scopes: []string{"read"}, CreatedAt: now, UpdatedAt: now}
	sec := authz.Secret{ID: id, ClientID: reuseClient, Hash: hasher.Hash(plain), Prefix: clientsecret.DisplayPrefix(id), CreatedAt: now, UpdatedAt: now}
	if err := f.store.CreateApplication(ctx, authz.Application{ClientID: reuseClient, Name: "reuse", CreatedAt: now, UpdatedAt: now},
		[]authz.Secret{sec}, []authz.Grant{f.grant, grantB}); err != nil {
		t.Fatal(err)
	}
	f.deny = denylist.New(sq, f.clock.Now, log)
	issuer := token.NewIssuer("https://issuer", f.keys, f.clock.Now, rand.Reader)
	issuer.Signing = func(string) func() { f.sigs.Add(1); return func() {} }
	f.srv = &Server{Clients: f.store, Hasher: hasher, Issuer: issuer, Now: f.clock.Now, Log: log, DenyList: f.deny,
		Reuse: NewReuseCache(0), DPoPReplay: f.replay}
	return f
}

// reply is a token response.
type reply struct {
	status    int
	token     string
	expiresIn int64
	tokenType string
	scope     string
	body      string
}

// request posts the fixture client's client_secret_basic token request
// for audience and scope ("" leaves either out), with the DPoP proof if
// not "".
func (f *reuseFixture) request(t testing.TB, audience, scope, proof string) reply {
	t.Helper()
	v := url.Values{"grant_type": {"client_credentials"}}
	if audience != "" {
		v.Set("audience", audience)
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", form)
	r.Header.Set("Authorization", basic(reuseClient, f.secret))
	if proof != "" {
		r.Header.Set("DPoP", proof)
	}
	w := httptest.NewRecorder()
	f.srv.HandleToken(w, r)
	out := reply{status: w.Code, body: w.Body.String()}
	if w.Code == http.StatusOK {
		var tr tokenResponse
		if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
			t.Fatal(err)
		}
		out.token, out.expiresIn, out.tokenType, out.scope = tr.AccessToken, tr.ExpiresIn, tr.TokenType, tr.Scope
	}
	return out
}

// token is request's token; anything but 200 fails the test.
func (f *reuseFixture) token(t testing.TB, audience, scope string) reply {
	t.Helper()
	r := f.request(t, audience, scope, "")
	if r.status != http.StatusOK {
		t.Fatalf("%d %s, want a token", r.status, r.body)
	}
	return r
}

// tokenClaims decodes the payload and the header's kid of a compact JWS.
func tokenClaims(t testing.TB, tok string) (claims token.Claims, kid string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	for i, v := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return claims, hdr.KID
}

func TestTokenReuse(t *testing.T) {
	t.Run("the same token within the window, with its true remaining lifetime and no signature", func(t *testing.T) {
		f := newReuseFixture(t)
		first := f.token(t, testAudience, "read")
		if first.expiresIn != 3600 {
			t.Fatalf("first expires_in %d, want 3600", first.expiresIn)
		}
		for i, step := range []time.Duration{0, 10*time.Minute + 500*time.Millisecond, 40 * time.Minute} {
			f.clock.Add(step)
			got := f.token(t, testAudience, "read")
			if got.token != first.token {
				t.Fatalf("request %d after %v: a new token, want the cached one", i, step)
			}
			claims, _ := tokenClaims(t, got.token)
			if want := claims.Expiry - f.clock.Now().Unix(); got.expiresIn != want {
				t.Fatalf("expires_in %d, want exp − now = %d", got.expiresIn, want)
			}
			if got.tokenType != "Bearer" || got.scope != "read" {
				t.Fatalf("token_type %q scope %q", got.tokenType, got.scope)
			}
		}
		if n := f.sigs.Load(); n != 1 {
			t.Fatalf("%d signatures for 4 requests, want 1", n)
		}
	})

	t.Run("the scope set decides, not its order", func(t *testing.T) {
		f := newReuseFixture(t)
		a := f.token(t, testAudience, "read write")
		b := f.token(t, testAudience, "write read")
		c := f.token(t, testAudience, "") // every granted scope: the same set
		if a.token != b.token || a.token != c.token {
			t.Fatal("the same scope set got different tokens")
		}
	})

	t.Run("different scopes or audience: different tokens", func(t *testing.T) {
		f := newReuseFixture(t)
		seen := map[string]string{}
		for _, rq := range []struct{ aud, scope string }{
			{testAudience, "read"}, {testAudience, "write"}, {testAudience, "read write"}, {testAudienceB, "read"},
		} {
			got := f.token(t, rq.aud, rq.scope)
			if prev, dup := seen[got.token]; dup {
				t.Fatalf("%s %q got the token of %s", rq.aud, rq.scope, prev)
			}
			seen[got.token] = rq.aud + " " + rq.scope
			if again := f.token(t, rq.aud, rq.scope); again.token != got.token {
				t.Fatalf("%s %q: not reused", rq.aud, rq.scope)
			}
		}
	})

	t.Run("the application's setting overrides the API's", func(t *testing.T) {
		f := newReuseFixture(t)
		ctx := t.Context()
		off := authz.TokenReuse{}
		if _, err := f.store.UpdateAPI(ctx, f.api.ID, authz.APIPatch{TokenReuse: &off, UpdatedAt: f.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if a, b := f.token(t, testAudience, "read"), f.token(t, testAudience, "read"); a.token == b.token {
			t.Fatal("reused with the API's setting removed and none on the application")
		}
		app := authz.TokenReuse{MinRemaining: 3000 * time.Second}
		if _, err := f.store.UpdateApplication(ctx, reuseClient, authz.ApplicationPatch{TokenReuse: &app, UpdatedAt: f.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		a := f.token(t, testAudience, "read")
		f.clock.Add(9 * time.Minute) // 51 min left: above 3000 s
		if b := f.token(t, testAudience, "read"); b.token != a.token {
			t.Fatal("the application's setting did not reuse")
		}
		f.clock.Add(2 * time.Minute) // 49 min left: below 3000 s
		if b := f.token(t, testAudience, "read"); b.token == a.token {
			t.Fatal("reused below the application's min_remaining")
		}
	})

	t.Run("an application reread unchanged keeps its token", func(t *testing.T) {
		f := newReuseFixture(t)
		first := f.token(t, testAudience, "read")
		before, _ := f.store.Client(t.Context(), reuseClient)
		f.store.Invalidate(reuseClient) // as the change feed does for a change elsewhere, or an eviction
		if after, _ := f.store.Client(t.Context(), reuseClient); after == before {
			t.Fatal("the reread kept the pointer: the test tests nothing")
		}
		if got := f.token(t, testAudience, "read"); got.token != first.token {
			t.Fatal("an unchanged reread ended the reuse")
		}
		if n := f.sigs.Load(); n != 1 {
			t.Fatalf("%d signatures, want 1", n)
		}
	})

	t.Run("a token that cannot outlast min_remaining is never reused", func(t *testing.T) {
		f := newReuseFixture(t)
		short := 300 * time.Second // the grant's lifetime: not more than min_remaining
		g := f.grant
		g.TokenLifetime = short
		if err := f.store.UpdateGrant(t.Context(), g); err != nil {
			t.Fatal(err)
		}
		if a, b := f.token(t, testAudience, "read"), f.token(t, testAudience, "read"); a.token == b.token {
			t.Fatal("reused a token whose lifetime does not exceed min_remaining")
		}
	})
}

// TestTokenReuseInvalidation: after each invalidating event the next
// request gets a new token (and that one is reused in turn).
func TestTokenReuseInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event func(t *testing.T, f *reuseFixture, first reply)
		// noReuse: after the event nothing is reused any more.
		noReuse bool
	}{
		{"its jti revoked", func(t *testing.T, f *reuseFixture, first reply) {
			claims, _ := tokenClaims(t, first.token)
			if err := f.deny.Revoke(t.Context(), claims.JTI, time.Unix(claims.Expiry, 0)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"every token of the application revoked", func(t *testing.T, f *reuseFixture, first reply) {
			f.clock.Add(300 * time.Millisecond)
			if _, err := f.store.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{TokensNotBefore: f.clock.Now(), UpdatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			f.clock.Add(time.Second) // the management API answers once the cutoff has passed
		}, false},
		{"a grant change (scopes)", func(t *testing.T, f *reuseFixture, first reply) {
			g := f.grant
			g.Scopes = []string{"read"}
			g.UpdatedAt = f.clock.Now()
			if err := f.store.UpdateGrant(t.Context(), g); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"the application disabled and enabled again", func(t *testing.T, f *reuseFixture, first reply) {
			yes, no := true, false
			if _, err := f.store.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if r := f.request(t, testAudience, "read", ""); r.status != http.StatusUnauthorized {
				t.Fatalf("disabled: %d %s, want 401", r.status, r.body)
			}
			f.clock.Add(time.Second) // each write stamps its own updated_at
			if _, err := f.store.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{Disabled: &no, UpdatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a secret rotated", func(t *testing.T, f *reuseFixture, first reply) {
			id, plain, err := clientsecret.Generate(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			now := authz.StoreTime(f.clock.Now())
			sec := authz.Secret{ID: id, ClientID: reuseClient, Hash: f.srv.Hasher.Hash(plain), Prefix: clientsecret.DisplayPrefix(id), CreatedAt: now, UpdatedAt: now}
			if err := f.store.RotateSecret(t.Context(), sec, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"the signing key rotated", func(t *testing.T, f *reuseFixture, first reply) {
			_, before := tokenClaims(t, first.token)
			if _, err := f.keys.Rotate(t.Context(), time.Hour, authz.ES256); err != nil {
				t.Fatal(err)
			}
			if after := f.srv.Issuer.ActiveKID(authz.ES256); after == before {
				t.Fatalf("the active kid is still %s", before)
			}
		}, false},
		{"the window elapsed", func(t *testing.T, f *reuseFixture, first reply) {
			f.clock.Add(3600*time.Second - 300*time.Second) // exactly 300 s left: still reused
			if r := f.token(t, testAudience, "read"); r.token != first.token || r.expiresIn != 300 {
				t.Fatalf("with min_remaining left: reused %v, expires_in %d", r.token == first.token, r.expiresIn)
			}
			f.clock.Add(time.Second) // 299 s left
		}, false},
		{"the API's setting removed", func(t *testing.T, f *reuseFixture, first reply) {
			off := authz.TokenReuse{}
			if _, err := f.store.UpdateAPI(t.Context(), f.api.ID, authz.APIPatch{TokenReuse: &off, UpdatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReuseFixture(t)
			first := f.token(t, testAudience, "read")
			if again := f.token(t, testAudience, "read"); again.token != first.token {
				t.Fatal("not reused before the event")
			}
			tc.event(t, f, first)
			second := f.token(t, testAudience, "read")
			if second.token == first.token {
				t.Fatal("the cached token was answered after the event")
			}
			if second.expiresIn != 3600 {
				t.Fatalf("new token expires_in %d, want 3600", second.expiresIn)
			}
			third := f.token(t, testAudience, "read")
			if reused := third.token == second.token; reused == tc.noReuse {
				t.Fatalf("after the event the new token reused: %v, want %v", reused, !tc.noReuse)
			}
		})
	}
}

// TestTokenReuseDPoP: the DPoP key is part of the key, and the proof is
// verified (nonce, replay) on a hit as on any request.
func TestTokenReuseDPoP(t *testing.T) {
	f := newReuseFixture(t)
	proofs := func(s *dpop.Signer) string {
		p, err := s.Proof(http.MethodPost, "https://issuer"+PathToken, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyA, keyB := newProofSigner(t, f.clock.Now), newProofSigner(t, f.clock.Now)
	a1 := f.request(t, testAudience, "read", proofs(keyA))
	pA := proofs(keyA)
	a2 := f.request(t, testAudience, "read", pA)
	if a1.status != http.StatusOK || a2.status != http.StatusOK {
		t.Fatalf("%d %s / %d %s", a1.status, a1.body, a2.status, a2.body)
	}
	if a1.token != a2.token || a2.tokenType != "DPoP" {
		t.Fatalf("same DPoP key: reused %v, token_type %q", a1.token == a2.token, a2.tokenType)
	}
	if r := f.request(t, testAudience, "read", pA); r.status != http.StatusBadRequest || !strings.Contains(r.body, ErrInvalidDPoPProof) {
		t.Fatalf("a replayed proof on a hit: %d %s, want invalid_dpop_proof", r.status, r.body)
	}
	b := f.request(t, testAudience, "read", proofs(keyB))
	bearer := f.token(t, testAudience, "read")
	if b.token == a1.token || bearer.token == a1.token || bearer.token == b.token {
		t.Fatal("different sender-constraint keys shared a token")
	}
	if bearer.tokenType != "Bearer" {
		t.Fatalf("without a proof: token_type %q", bearer.tokenType)
	}
	if n := f.sigs.Load(); n != 3 {
		t.Fatalf("%d signatures, want 3 (key A, key B, no key)", n)
	}
}

// TestTokenReuseQuota: a reused token is not counted against the
// application's quota (it counts issued tokens), while its rate applies.
func TestTokenReuseQuota(t *testing.T) {
	f := newReuseFixture(t)
	f.srv.Quota = quota.New(f.clock.Now, authz.Policy{}, nil)
	policy := authz.Policy{Mode: authz.PolicyEnforce, Quota: &authz.Quota{PerHour: 2}}
	if _, err := f.store.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{Policy: &policy, UpdatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	first := f.token(t, testAudience, "read")
	for range 5 {
		if r := f.token(t, testAudience, "read"); r.token != first.token {
			t.Fatal("not reused")
		}
	}
	f.token(t, testAudienceB, "read") // the second issued token
	if r := f.request(t, testAudience, "write", ""); r.status != http.StatusTooManyRequests {
		t.Fatalf("a third new token: %d %s, want 429", r.status, r.body)
	}
	if r := f.token(t, testAudience, "read"); r.token != first.token {
		t.Fatal("the reused token refused with the quota spent")
	}
}

// TestTokenReuseRate: the application's rate applies to requests answered
// with a reused token.
func TestTokenReuseRate(t *testing.T) {
	f := newReuseFixture(t)
	f.srv.Quota = quota.New(f.clock.Now, authz.Policy{}, nil)
	policy := authz.Policy{Mode: authz.PolicyEnforce, Rate: &authz.Rate{PerSecond: 1, Burst: 3}}
	if _, err := f.store.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{Policy: &policy, UpdatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	first := f.token(t, testAudience, "read")
	for range 2 {
		if r := f.token(t, testAudience, "read"); r.token != first.token {
			t.Fatal("not reused")
		}
	}
	r := f.request(t, testAudience, "read", "")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("a fourth request within the burst of 3: %d %s, want 429", r.status, r.body)
	}
}

// TestTokenReuseConcurrentRevocation: token requests run while the
// cached token's revocation commits; once the revocation has returned, no
// request that starts after it gets the revoked token.
func TestTokenReuseConcurrentRevocation(t *testing.T) {
	f := newReuseFixture(t)
	first := f.token(t, testAudience, "read")
	claims, _ := tokenClaims(t, first.token)
	var (
		acked atomic.Bool
		wg    sync.WaitGroup
		bad   atomic.Int64
		after atomic.Int64
	)
	const workers, perWorker = 8, 200
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				startedAfter := acked.Load()
				r := f.request(t, testAudience, "read", "")
				if r.status != http.StatusOK {
					bad.Add(1000)
					return
				}
				if startedAfter {
					after.Add(1)
					if r.token == first.token {
						bad.Add(1)
					}
				}
			}
		}()
	}
	if err := f.deny.Revoke(t.Context(), claims.JTI, time.Unix(claims.Expiry, 0)); err != nil {
		t.Fatal(err)
	}
	acked.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d responses after the revocation carried the revoked token (or failed: ≥1000)", n)
	}
	if after.Load() == 0 {
		// Every request finished before the revocation returned: ask once more.
		if r := f.token(t, testAudience, "read"); r.token == first.token {
			t.Fatal("the revoked token was answered")
		}
	}
}

// TestCacheClientPointer checks what the reuse guard relies on: the
// application cache answers the same *authz.Client while nothing touching
// the application changed, and a new one after every write that does.
func TestCacheClientPointer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, f *reuseFixture)
	}{
		{"grant change", func(t *testing.T, f *reuseFixture) {
			g := f.grant
			g.Scopes = []string{"write"}
			if err := f.store.UpdateGrant(t.Context(), g); err != nil {
				t.Fatal(err)
			}
		}},
		{"disable", func(t *testing.T, f *reuseFixture) {
			yes := true
			if _, err := f.store.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoke-all", func(t *testing.T, f *reuseFixture) {
			if _, err := f.store.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{TokensNotBefore: f.clock.Now(), UpdatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}},
		{"secret rotation", func(t *testing.T, f *reuseFixture) {
			now := authz.StoreTime(f.clock.Now())
			if err := f.store.RotateSecret(t.Context(), authz.Secret{ID: "s2", ClientID: reuseClient, Hash: []byte("h"), Prefix: "m2ms_s2", CreatedAt: now, UpdatedAt: now}, now); err != nil {
				t.Fatal(err)
			}
		}},
		{"API change", func(t *testing.T, f *reuseFixture) {
			name := "renamed"
			if _, err := f.store.UpdateAPI(t.Context(), f.api.ID, authz.APIPatch{Name: &name, UpdatedAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}},
		{"in a management transaction", func(t *testing.T, f *reuseFixture) {
			yes := true
			if err := f.store.Manage(t.Context(), func(tx authz.Tx) error {
				_, err := tx.UpdateApplication(t.Context(), reuseClient, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: f.clock.Now()})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReuseFixture(t)
			ctx := t.Context()
			a, err := f.store.Client(ctx, reuseClient)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := f.store.Client(ctx, reuseClient); b != a {
				t.Fatal("a new pointer without a write")
			}
			tc.write(t, f)
			if b, _ := f.store.Client(ctx, reuseClient); b == a {
				t.Fatal("the same pointer after the write")
			}
		})
	}
}

// TestReuseKey: the key is the cache's own memory and holds no secret.
func TestReuseKey(t *testing.T) {
	f := newReuseFixture(t)
	f.token(t, testAudience, "read")
	c := f.srv.Reuse
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.index) != 1 {
		t.Fatalf("%d entries, want 1", len(c.index))
	}
	for k, i := range c.index {
		if strings.Contains(k, f.secret) || strings.Contains(c.slots[i].token, f.secret) {
			t.Fatal("the key or the entry holds the secret")
		}
		if !strings.Contains(k, reuseClient) || !strings.Contains(k, testAudience) {
			t.Fatalf("key %q does not name the client and audience", k)
		}
		if k != c.slots[i].key {
			t.Fatal("the index and the entry do not share the key")
		}
	}
}

// TestReuseCacheBound: the cache holds at most its bound, evicting the
// least recently hit, and drops expired entries as it goes.
func TestReuseCacheBound(t *testing.T) {
	c := NewReuseCache(4)
	client := &authz.Client{}
	key := func(i int) []byte {
		return appendReuseKey(nil, &token.Request{ClientID: "c", Audience: "a", Scopes: []string{string(rune('a' + i))}})
	}
	now := int64(1000)
	for i := range 4 {
		c.put(key(i), reuseEntry{client: client, jti: "j", exp: now + 3600, deadline: now + 3000}, now)
	}
	if _, ok, _ := c.get(key(0), client, "", now, 0, nil); !ok { // key 0 hit: kept
		t.Fatal("entry 0 not found")
	}
	c.put(key(4), reuseEntry{client: client, jti: "j", exp: now + 3600, deadline: now + 3000}, now)
	if c.Len() != 4 {
		t.Fatalf("%d entries, want the bound 4", c.Len())
	}
	if _, ok, _ := c.get(key(0), client, "", now, 0, nil); !ok {
		t.Fatal("the recently hit entry was evicted")
	}
	later := now + 3001 // every entry past its deadline
	for i := 5; i < 9; i++ {
		c.put(key(i), reuseEntry{client: client, jti: "j", exp: later + 3600, deadline: later + 3000}, later)
	}
	for i := range 5 {
		if _, _, found := c.get(key(i), client, "", later, 0, nil); found {
			t.Fatalf("expired entry %d still cached", i)
		}
	}
}

// TestReuseCacheMemory measures the memory an entry holds: an ES256
// token with two scopes under a real issuer (DefaultReuseMaxEntries' doc).
func TestReuseCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 13 MB")
	}
	f := newReuseFixture(t)
	tok := f.token(t, testAudience, "read write")
	client, err := f.store.Client(t.Context(), reuseClient)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	// Each entry gets its own token and jti strings, as issued ones do.
	toks := make([]string, n)
	for i := range toks {
		toks[i] = strings.Clone(tok.token)
	}
	c := NewReuseCache(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		iss := token.Request{ClientID: reuseClient, Audience: testAudience, Scopes: []string{"read", "write"},
			Confirmation: &token.Confirmation{JKT: fmt.Sprintf("%043d", i)}} // a DPoP key's thumbprint is 43 characters
		c.put(appendReuseKey(nil, &iss), reuseEntry{client: client, kid: "kid", token: toks[i], typ: "DPoP", scope: "read write",
			jti: strings.Clone(toks[i][len(toks[i])-22:]), exp: 1 << 40, deadline: 1 << 40}, 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.Len() != n {
		t.Fatalf("%d entries, want %d", c.Len(), n)
	}
	// The tokens' own bytes were allocated before: count them in.
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc) + int64(n*len(tok.token))) / n
	t.Logf("%d bytes per cached token (token %d bytes)", per, len(tok.token))
	if per > 2048 {
		t.Fatalf("%d bytes per cached token, want at most 2048", per)
	}
	runtime.KeepAlive(toks)
}

// TestSameClient: two reads of an application are the same unless
// something a token depends on changed; a secret's last use is not such a
// thing.
func TestSameClient(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	read := func() *authz.Client {
		return &authz.Client{
			Application: authz.Application{ClientID: "c", UpdatedAt: at, Policy: authz.Policy{Quota: &authz.Quota{PerHour: 5}}},
			Secrets:     []authz.Secret{{ID: "s", Hash: []byte{1, 2}, UpdatedAt: at}},
			Grants: []authz.ClientGrant{{Grant: authz.Grant{ID: "g", Scopes: []string{"read"}, UpdatedAt: at},
				API: &authz.API{ID: "a", Scopes: []authz.Scope{{Value: "read"}}, TokenLifetime: time.Hour, UpdatedAt: at}}},
		}
	}
	if !sameClient(read(), read()) {
		t.Fatal("two equal reads differ")
	}
	for _, tc := range []struct {
		name   string
		change func(c *authz.Client)
		same   bool
	}{
		{"a secret's last use", func(c *authz.Client) { c.Secrets[0].LastUsedAt = at }, true},
		{"disabled", func(c *authz.Client) { c.Application.Disabled = true }, false},
		{"updated (disabled and enabled)", func(c *authz.Client) { c.Application.UpdatedAt = at.Add(time.Second) }, false},
		{"revoke-all", func(c *authz.Client) { c.Application.TokensNotBefore = at }, false},
		{"policy", func(c *authz.Client) { c.Application.Policy.Quota.PerHour = 6 }, false},
		{"a secret added", func(c *authz.Client) { c.Secrets = append(c.Secrets, authz.Secret{ID: "t"}) }, false},
		{"a secret's expiry", func(c *authz.Client) { c.Secrets[0].ExpiresAt = at }, false},
		{"grant scopes", func(c *authz.Client) { c.Grants[0].Grant.Scopes = []string{"write"} }, false},
		{"grant claims", func(c *authz.Client) { c.Grants[0].Grant.Claims = []byte(`{"x":1}`) }, false},
		{"API lifetime", func(c *authz.Client) { c.Grants[0].API.TokenLifetime = time.Minute }, false},
		{"API token reuse", func(c *authz.Client) { c.Grants[0].API.TokenReuse.MinRemaining = time.Minute }, false},
	} {
		c := read()
		tc.change(c)
		if got := sameClient(read(), c); got != tc.same {
			t.Errorf("%s: same %v, want %v", tc.name, got, tc.same)
		}
	}
}
