package manage_test

import (
	"testing"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// The audit export sees a management action's events once its transaction
// committed, and never those of a refused or failed one.
func TestCommittedGetsTheEventsOfCommittedTransactions(t *testing.T) {
	e := newEnv(t)
	var got []authz.AuditEvent
	e.svc.Committed = func(events []authz.AuditEvent) { got = append(got, events...) }

	app := e.app("exported")
	if len(got) != 1 || got[0].Action != "application.create" || got[0].Target != app.Application.ClientID || got[0].ID == "" || got[0].Time.IsZero() {
		t.Fatalf("after a create: %+v", got)
	}
	stored, _, err := e.store.ListAudit(t.Context(), authz.AuditFilter{Action: "application.create", Target: app.Application.ClientID}, authz.Page{Limit: 10})
	if err != nil || len(stored) != 1 || stored[0].ID != got[0].ID {
		t.Fatalf("the stored event %+v (%v) is not the one exported, %+v", stored, err, got[0])
	}

	got = nil
	// Refused: an identifier already in use.
	if _, err := e.svc.CreateAPI(t.Context(), manage.System(), manage.NewAPI{Identifier: usageAPI}); err == nil {
		t.Fatal("a second API with one identifier")
	}
	// Forbidden: the actor lacks the scope.
	if _, err := e.svc.CreateAPI(t.Context(), e.actor(authz.ScopeReadAPIs), manage.NewAPI{Identifier: "https://other.example/"}); err == nil {
		t.Fatal("created without create:apis")
	}
	for _, ev := range got {
		if ev.Action == "api.create" {
			t.Errorf("an event of a transaction that did not commit was exported: %+v", ev)
		}
	}
}
