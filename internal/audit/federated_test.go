package audit

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/fake"
)

func TestRecorderWritesCredentialLastUseThroughAnOutage(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	clock := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rc := newTestRecorder(st, clock.Now)
	at := clock.Now()
	rc.CredentialUsed("c1", "cred_1", at)
	rc.CredentialUsed("c1", "cred_1", at.Add(10*time.Second)) // within the minute: not written again
	st.setDown(true)
	if err := rc.Flush(ctx); err == nil {
		t.Fatal("flush with the database down succeeded")
	}
	st.setDown(false)
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := st.creds["cred_1"]; !got.Equal(at) {
		t.Fatalf("credential last use %v, want %v (kept through the outage)", got, at)
	}
	if len(st.touched) != 0 {
		t.Fatalf("a credential's use touched secrets: %v", st.touched)
	}
}

func TestRecorderAggregatesFederatedAuthentications(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	clock := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rc := newTestRecorder(st, clock.Now)
	for range 5 {
		rc.FederatedAuthenticated(ctx, "c1", "cred_1", "https://issuer.example", "system:serviceaccount:prod:billing", "127.0.0.1")
		clock.Add(time.Second)
	}
	rc.FederatedAuthenticated(ctx, "c1", "cred_1", "https://issuer.example", "system:serviceaccount:prod:other", "127.0.0.1")
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(st.actions()); n != 0 {
		t.Fatalf("%d events written before the minute was over", n)
	}
	clock.Add(time.Minute)
	if err := rc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	events := len(st.events)
	byCount := map[string]float64{}
	for _, e := range st.events {
		if e.Action != "client.federated_authentication" || e.Actor != "c1" || e.ID == "" {
			t.Errorf("event %+v", e)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(e.Details), &d); err != nil {
			t.Fatal(err)
		}
		if d["issuer"] != "https://issuer.example" || d["credential_id"] != "cred_1" {
			t.Errorf("details %v", d)
		}
		byCount[d["subject"].(string)] = d["count"].(float64)
	}
	st.mu.Unlock()
	if events != 2 || byCount["system:serviceaccount:prod:billing"] != 5 || byCount["system:serviceaccount:prod:other"] != 1 {
		t.Fatalf("events %v, counts %v", events, byCount)
	}
}

func TestRecorderBoundsFederatedAggregates(t *testing.T) {
	ctx := context.Background()
	st := &auditStore{touched: map[string]time.Time{}}
	clock := fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rc := newTestRecorder(st, clock.Now)
	for i := range maxFederatedKeys + 500 {
		rc.FederatedAuthenticated(ctx, "c1", "cred_1", "https://issuer.example", "sub-"+string(rune('a'+i%26))+time.Duration(i).String(), "127.0.0.1")
	}
	if err := rc.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.events) != maxFederatedKeys+1 {
		t.Fatalf("%d events, want %d aggregates and one overflow event", len(st.events), maxFederatedKeys+1)
	}
	var d map[string]any
	last := st.events[len(st.events)-1]
	if err := json.Unmarshal([]byte(last.Details), &d); err != nil || d["overflow"] != true || d["count"].(float64) != 500 {
		t.Fatalf("overflow event %s", last.Details)
	}
}
