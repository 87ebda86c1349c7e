// Package storetest is the conformance suite every authz.Store passes: the
// contract written in the doc comments of package authz, tested the same way
// against every database. It tests nothing a particular database adds.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Run runs the suite. open must return a new, empty store for each call
// and arrange for it to be closed when t ends; subtests never share one.
func Run(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("APIs", func(t *testing.T) { testAPIs(t, open) })
	t.Run("APIPolicy", func(t *testing.T) { testAPIPolicy(t, open) })
	t.Run("TokenReuse", func(t *testing.T) { testTokenReuse(t, open) })
	t.Run("Applications", func(t *testing.T) { testApplications(t, open) })
	t.Run("Client", func(t *testing.T) { testClient(t, open) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, open) })
	t.Run("Secrets", func(t *testing.T) { testSecrets(t, open) })
	t.Run("Credentials", func(t *testing.T) { testCredentials(t, open) })
	t.Run("TrustedIssuers", func(t *testing.T) { testTrustedIssuers(t, open) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, open) })
	t.Run("Settings", func(t *testing.T) { testSettings(t, open) })
	t.Run("Reseal", func(t *testing.T) { testReseal(t, open) })
	t.Run("Revocations", func(t *testing.T) { testRevocations(t, open) })
	t.Run("RevokedSince", func(t *testing.T) { testRevokedSince(t, open) })
	t.Run("Replay", func(t *testing.T) { testReplay(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("Issuance", func(t *testing.T) { testIssuance(t, open) })
	t.Run("Bootstrap", func(t *testing.T) { testBootstrap(t, open) })
	t.Run("Manage", func(t *testing.T) { testManage(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
}

// base is the suite's clock: fixed, and with nanoseconds that StoreTime
// must drop.
var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.UTC)

// at returns base+d as a store keeps it.
func at(d time.Duration) time.Time { return authz.StoreTime(base.Add(d)) }

// hour is the start of the UTC hour n hours after base's.
func hour(n int) time.Time { return base.Truncate(time.Hour).Add(time.Duration(n) * time.Hour) }

// noErr fails t now if err is not nil.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantErr fails t now unless err wraps target.
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %q", err, target)
	}
}

// same fails t unless got and want are deeply equal, a nil and an empty
// slice counting as equal: the contract does not say which an empty list
// reads back as.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(canonical(reflect.ValueOf(got)).Interface(), canonical(reflect.ValueOf(want)).Interface()) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// canonical returns a copy of v in which every empty slice is nil.
func canonical(v reflect.Value) reflect.Value {
	if !v.IsValid() || v.Type() == timeType {
		return v
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(canonical(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), canonical(it.Value()))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(canonical(v.Elem()))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			out.Field(i).Set(canonical(v.Field(i)))
		}
		return out
	}
	return v
}

// Fixtures. Numbers make the ids, names and creation times distinct; tests
// change what they need.

func newAPI(n int) authz.API {
	return authz.API{
		ID:         fmt.Sprintf("api_%02d", n),
		Identifier: fmt.Sprintf("https://api%02d.example.com", n),
		Name:       fmt.Sprintf("API %d", n),
		Scopes: []authz.Scope{
			{Value: "read:things", Description: "Read things"},
			{Value: "write:things", Description: "Write things"},
		},
		TokenLifetime: 900 * time.Second,
		SigningAlg:    authz.ES256,
		DPoP:          authz.PolicyOptional,
		MTLSBound:     authz.PolicyOptional,
		Profile:       authz.ProfileNone,
		CreatedAt:     at(time.Duration(n) * time.Minute),
		UpdatedAt:     at(time.Duration(n) * time.Minute),
	}
}

func newApp(n int) authz.Application {
	return authz.Application{
		ClientID:    fmt.Sprintf("app_%02d", n),
		Name:        fmt.Sprintf("Application %d", n),
		Description: fmt.Sprintf("Application number %d", n),
		CreatedAt:   at(time.Duration(n) * time.Minute),
		UpdatedAt:   at(time.Duration(n) * time.Minute),
	}
}

func newSecret(clientID string, n int) authz.Secret {
	id := fmt.Sprintf("%s_sec_%02d", clientID, n)
	return authz.Secret{
		ID:        id,
		ClientID:  clientID,
		Hash:      []byte("hash of " + id),
		Prefix:    "m2ms_" + id,
		CreatedAt: at(time.Duration(n) * time.Minute),
		UpdatedAt: at(time.Duration(n) * time.Minute),
	}
}

// newGrant returns a grant of api to application clientID, with the
// Audience a store reads back.
func newGrant(clientID string, api authz.API, n int, scopes ...string) authz.Grant {
	return authz.Grant{
		ID:        fmt.Sprintf("%s_grant_%02d", clientID, n),
		ClientID:  clientID,
		APIID:     api.ID,
		Audience:  api.Identifier,
		Scopes:    scopes,
		CreatedAt: at(time.Duration(n) * time.Minute),
		UpdatedAt: at(time.Duration(n) * time.Minute),
	}
}

func newKey(kid string, state authz.KeyState, created time.Time) authz.SigningKey {
	return authz.SigningKey{
		KID:       kid,
		Alg:       authz.ES256,
		State:     state,
		Private:   []byte("sealed " + kid),
		CreatedAt: created,
	}
}

// pages lists every page with list, limit items at a time, checking the
// cursors: non-empty while items remain, "" on the last page. It returns
// the items in the order seen.
func pages[T any](t *testing.T, limit int, list func(p authz.Page) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	cursor := ""
	for range 100 {
		items, next, err := list(authz.Page{Limit: limit, Cursor: cursor})
		noErr(t, err)
		if len(items) > limit {
			t.Fatalf("page has %d items, limit is %d", len(items), limit)
		}
		if cursor != "" && len(items) == 0 {
			t.Fatal("a next cursor led to an empty page")
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) != limit {
			t.Fatalf("page has %d items and a next cursor, want %d", len(items), limit)
		}
		cursor = next
	}
	t.Fatal("more than 100 pages: the cursor does not advance")
	return nil
}

// parallel runs fn(i) for i in [0, n) at once and returns the errors by i.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Go(func() {
			start.Wait()
			errs[i] = fn(i)
		})
	}
	start.Done()
	done.Wait()
	return errs
}

// sortedBy returns a copy of list sorted by key.
func sortedBy[T any](list []T, key func(T) string) []T {
	out := append([]T(nil), list...)
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}
