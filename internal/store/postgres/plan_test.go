package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// TestClientQueryIsIndexed: reading an application the cache does not
// hold (clientQuery) is one statement whose every branch is an index
// lookup, whatever the number of applications: no sequential scan in its
// plan once the planner has statistics of 2 000 applications and 500 APIs
// (with a handful, a scan of the APIs is cheaper, and chosen).
func TestClientQueryIsIndexed(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	s := open(t, dsn)
	ctx := t.Context()
	at := authz.StoreTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	api := authz.API{ID: "api_1", Identifier: "https://api.example.com", Scopes: []authz.Scope{{Value: "read"}},
		TokenLifetime: time.Hour, SigningAlg: authz.ES256, CreatedAt: at, UpdatedAt: at}
	if err := s.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	err := s.Manage(ctx, func(tx authz.Tx) error {
		for i := range 500 {
			other := api
			other.ID, other.Identifier = fmt.Sprint("api_other_", i), fmt.Sprint("https://api.example.com/", i)
			if err := tx.CreateAPI(ctx, other); err != nil {
				return err
			}
		}
		for i := range 2000 {
			id := fmt.Sprintf("app_%04d", i)
			sec := authz.Secret{ID: "sec_" + id, ClientID: id, Hash: []byte("h"), Prefix: "m2ms_sec_" + id, CreatedAt: at, UpdatedAt: at}
			g := authz.Grant{ID: "grant_" + id, ClientID: id, APIID: api.ID, Scopes: []string{"read"}, CreatedAt: at, UpdatedAt: at}
			if err := tx.CreateApplication(ctx, authz.Application{ClientID: id, Name: id, CreatedAt: at, UpdatedAt: at}, []authz.Secret{sec}, []authz.Grant{g}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	conn := inspect(t, dsn)
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `EXPLAIN `+clientQuery, "app_0042")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	p := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", p)
	if strings.Contains(p, "Seq Scan") || !strings.Contains(p, "Index") {
		t.Errorf("the plan of clientQuery scans a table:\n%s", p)
	}
}
