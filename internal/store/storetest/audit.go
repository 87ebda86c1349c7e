package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func testAudit(t *testing.T, open func(t *testing.T) authz.Store) {
	event := func(n int, d time.Duration, actor, action, target string) authz.AuditEvent {
		return authz.AuditEvent{
			ID:         fmt.Sprintf("evt_%02d", n),
			Time:       at(d),
			Actor:      actor,
			Action:     action,
			Target:     target,
			RemoteAddr: "192.0.2.7:51234",
			Details:    fmt.Sprintf(`{"n":%d}`, n),
		}
	}

	t.Run("append and list round-trip every field", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		full := event(1, time.Minute, "app_01", "application.create", "app_02")
		full.Details = `{"name":"Billing worker","scopes":["read:things"]}`
		server := event(2, 2*time.Minute, "", "key.rotate", "kid-a")
		server.RemoteAddr = ""
		server.Details = ""
		noErr(t, s.AppendAudit(ctx, []authz.AuditEvent{full, server}))
		got, next, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "events", got, []authz.AuditEvent{server, full})
		if next != "" {
			t.Errorf("next cursor = %q, want none", next)
		}
	})

	t.Run("append nothing", func(t *testing.T) {
		s := open(t)
		noErr(t, s.AppendAudit(t.Context(), nil))
	})

	t.Run("append with an id taken inserts none", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		first := event(1, 0, "app_01", "api.create", "api_01")
		noErr(t, s.AppendAudit(ctx, []authz.AuditEvent{first}))
		err := s.AppendAudit(ctx, []authz.AuditEvent{
			event(2, time.Minute, "app_01", "api.update", "api_01"),
			event(1, 2*time.Minute, "app_01", "api.delete", "api_01"),
		})
		wantErr(t, err, authz.ErrConflict)
		got, _, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "events", got, []authz.AuditEvent{first})
	})

	t.Run("list pages newest first", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		var events []authz.AuditEvent
		for i := range 7 {
			events = append(events, event(i+1, time.Duration(i)*time.Minute, "app_01", "api.update", "api_01"))
		}
		events[4].Time = events[3].Time // the ids order these two
		// Appended in two batches, not in order.
		noErr(t, s.AppendAudit(ctx, []authz.AuditEvent{events[5], events[1], events[3]}))
		noErr(t, s.AppendAudit(ctx, []authz.AuditEvent{events[0], events[6], events[4], events[2]}))
		want := slices.Clone(events)
		slices.Reverse(want)
		got := pages(t, 3, func(p authz.Page) ([]authz.AuditEvent, string, error) {
			return s.ListAudit(ctx, authz.AuditFilter{}, p)
		})
		same(t, "events over all pages", got, want)
	})

	t.Run("list filters", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		events := []authz.AuditEvent{
			event(1, 0, "app_01", "api.create", "api_01"),
			event(2, time.Minute, "app_01", "api.update", "api_01"),
			event(3, 2*time.Minute, "app_02", "api.update", "api_02"),
			event(4, 3*time.Minute, "", "client.authentication_failed", "app_03"),
			event(5, 4*time.Minute, "app_02", "application.create", "app_03"),
			event(6, 5*time.Minute, "app_01", "api.update", "api_02"),
			event(7, 6*time.Minute, "app_01", "api.delete", "api_01"),
		}
		noErr(t, s.AppendAudit(ctx, events))
		for _, tc := range []struct {
			name string
			f    authz.AuditFilter
			want []int // event numbers, newest first
		}{
			{"no filter", authz.AuditFilter{}, []int{7, 6, 5, 4, 3, 2, 1}},
			{"since is inclusive", authz.AuditFilter{Since: at(2 * time.Minute)}, []int{7, 6, 5, 4, 3}},
			{"until is exclusive", authz.AuditFilter{Until: at(2 * time.Minute)}, []int{2, 1}},
			{"since and until", authz.AuditFilter{Since: at(time.Minute), Until: at(4 * time.Minute)}, []int{4, 3, 2}},
			{"actor", authz.AuditFilter{Actor: "app_02"}, []int{5, 3}},
			{"target", authz.AuditFilter{Target: "api_02"}, []int{6, 3}},
			{"action", authz.AuditFilter{Action: "api.update"}, []int{6, 3, 2}},
			{"actor, action and target", authz.AuditFilter{Actor: "app_01", Action: "api.update", Target: "api_01"}, []int{2}},
			{"everything", authz.AuditFilter{Since: at(0), Until: at(time.Hour), Actor: "app_01", Action: "api.update"}, []int{6, 2}},
			{"nothing matches", authz.AuditFilter{Actor: "app_99"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []authz.AuditEvent
				for _, n := range tc.want {
					want = append(want, events[n-1])
				}
				for _, limit := range []int{1, 2, 50} {
					got := pages(t, limit, func(p authz.Page) ([]authz.AuditEvent, string, error) {
						return s.ListAudit(ctx, tc.f, p)
					})
					same(t, fmt.Sprintf("events, %d a page", limit), got, want)
				}
			})
		}
	})

	t.Run("purge removes the events before the cutoff only", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		var all []authz.AuditEvent
		for i := range 5 {
			all = append(all, event(i+1, time.Duration(i)*time.Minute, "app_01", "client.authentication_failed", "app_01"))
		}
		noErr(t, s.AppendAudit(ctx, all))
		n, err := s.PurgeAudit(ctx, at(2*time.Minute)) // strictly before: the event at 2m stays
		noErr(t, err)
		if n != 2 {
			t.Errorf("purged %d events, want 2", n)
		}
		got, _, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "events", got, []authz.AuditEvent{all[4], all[3], all[2]})
		n, err = s.PurgeAudit(ctx, at(2*time.Minute))
		noErr(t, err)
		if n != 0 {
			t.Errorf("second purge removed %d events, want 0", n)
		}
	})

	t.Run("purge more than one batch", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const total = 12_345 // more than the stores' batch of 5000
		batch := make([]authz.AuditEvent, 0, 1000)
		for i := range total {
			batch = append(batch, authz.AuditEvent{ID: fmt.Sprintf("evt_%06d", i), Time: at(time.Duration(i) * time.Millisecond), Action: "client.authentication_failed"})
			if len(batch) == cap(batch) || i == total-1 {
				noErr(t, s.AppendAudit(ctx, batch))
				batch = batch[:0]
			}
		}
		keep := authz.AuditEvent{ID: "evt_keep", Time: at(time.Hour), Action: "api.create"}
		noErr(t, s.AppendAudit(ctx, []authz.AuditEvent{keep}))
		n, err := s.PurgeAudit(ctx, at(time.Minute))
		noErr(t, err)
		if n != total {
			t.Errorf("purged %d events, want %d", n, total)
		}
		got, _, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "events", got, []authz.AuditEvent{keep})
	})

	t.Run("list with a malformed cursor", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.AppendAudit(ctx, []authz.AuditEvent{event(1, 0, "", "key.rotate", "kid-a")}))
		_, _, err := s.ListAudit(ctx, authz.AuditFilter{}, authz.Page{Cursor: "!not a cursor!"})
		wantErr(t, err, authz.ErrInvalid)
	})
}

func testIssuance(t *testing.T, open func(t *testing.T) authz.Store) {
	count := func(clientID, audience string, h int, n int64, last time.Duration) authz.Issuance {
		return authz.Issuance{ClientID: clientID, Audience: audience, Hour: hour(h), Count: n, LastIssuedAt: at(last)}
	}

	t.Run("add creates and sums counters", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.AddIssuance(ctx, []authz.Issuance{count("app_01", "https://a", 0, 2, time.Second)}))
		noErr(t, s.AddIssuance(ctx, []authz.Issuance{
			count("app_02", "https://a", 1, 5, time.Hour),
			count("app_01", "https://b", 0, 1, 3*time.Second),
			count("app_01", "https://a", 0, 3, 2*time.Second),
		}))
		got, err := s.ListIssuance(ctx, "", hour(0))
		noErr(t, err)
		same(t, "counters", got, []authz.Issuance{
			count("app_01", "https://a", 0, 5, 2*time.Second),
			count("app_01", "https://b", 0, 1, 3*time.Second),
			count("app_02", "https://a", 1, 5, time.Hour),
		})
	})

	t.Run("add never lowers the last issue", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.AddIssuance(ctx, []authz.Issuance{count("app_01", "https://a", 0, 1, time.Minute)}))
		noErr(t, s.AddIssuance(ctx, []authz.Issuance{count("app_01", "https://a", 0, 1, time.Second)}))
		got, err := s.ListIssuance(ctx, "app_01", hour(0))
		noErr(t, err)
		same(t, "counters", got, []authz.Issuance{count("app_01", "https://a", 0, 2, time.Minute)})
	})

	t.Run("add sums the same counter given twice in one call", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.AddIssuance(ctx, []authz.Issuance{
			count("app_01", "https://a", 0, 2, time.Minute),
			count("app_02", "https://a", 0, 1, time.Second),
			count("app_01", "https://a", 0, 3, time.Second),
		}))
		got, err := s.ListIssuance(ctx, "", hour(0))
		noErr(t, err)
		same(t, "counters", got, []authz.Issuance{
			count("app_01", "https://a", 0, 5, time.Minute),
			count("app_02", "https://a", 0, 1, time.Second),
		})
	})

	t.Run("add sums times within one hour as that hour's counter", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		within := func(c authz.Issuance, d time.Duration) authz.Issuance { c.Hour = c.Hour.Add(d); return c }
		noErr(t, s.AddIssuance(ctx, []authz.Issuance{
			within(count("app_01", "https://a", 0, 1, time.Second), 30*time.Minute),
			count("app_01", "https://a", 1, 4, time.Hour),
			within(count("app_01", "https://a", 0, 2, time.Minute), 5*time.Minute),
			within(count("app_01", "https://a", 1, 8, time.Hour+time.Second), 59*time.Minute),
		}))
		got, err := s.ListIssuance(ctx, "", hour(0))
		noErr(t, err)
		same(t, "counters", got, []authz.Issuance{
			count("app_01", "https://a", 0, 3, time.Minute),
			count("app_01", "https://a", 1, 12, time.Hour+time.Second),
		})
	})

	t.Run("add nothing", func(t *testing.T) {
		s := open(t)
		noErr(t, s.AddIssuance(t.Context(), nil))
	})

	// A flush carries a counter per active client: thousands, which a store
	// may write in several statements. Keys repeat within a call and across
	// any chunk boundary, and each is summed once.
	t.Run("add many counters in one call", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		var in, want []authz.Issuance
		for i := range 1234 {
			id := fmt.Sprintf("app_%04d", i)
			in = append(in, count(id, "https://a", 0, int64(i%7+1), time.Duration(i)*time.Millisecond))
			want = append(want, count(id, "https://a", 0, int64(i%7+1), time.Duration(i)*time.Millisecond))
		}
		for _, i := range []int{0, 99, 100, 101, 250, 1233} { // again, later in the call
			in = append(in, count(in[i].ClientID, "https://a", 0, 10, time.Hour))
			want[i].Count += 10
			want[i].LastIssuedAt = at(time.Hour)
		}
		noErr(t, s.AddIssuance(ctx, in))
		got, err := s.ListIssuance(ctx, "", hour(0))
		noErr(t, err)
		same(t, "counters", got, want)
	})

	t.Run("list by application and since", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		all := []authz.Issuance{
			count("app_02", "https://a", -1, 1, -time.Hour),
			count("app_01", "https://b", 0, 2, time.Second),
			count("app_02", "https://a", 0, 3, time.Second),
			count("app_01", "https://a", 1, 4, time.Hour),
			count("app_01", "https://a", 2, 5, 2*time.Hour),
		}
		backward := slices.Clone(all)
		slices.Reverse(backward)
		noErr(t, s.AddIssuance(ctx, backward))
		for _, tc := range []struct {
			name     string
			clientID string
			since    time.Time
			want     []int
		}{
			{"every application", "", hour(-1), []int{0, 1, 2, 3, 4}},
			{"since is inclusive", "", hour(0), []int{1, 2, 3, 4}},
			{"one application", "app_01", hour(-5), []int{1, 3, 4}},
			{"one application since", "app_01", hour(1), []int{3, 4}},
			{"after the last hour", "", hour(3), nil},
			{"missing application", "app_99", hour(-5), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []authz.Issuance
				for _, i := range tc.want {
					want = append(want, all[i])
				}
				got, err := s.ListIssuance(ctx, tc.clientID, tc.since)
				noErr(t, err)
				same(t, "counters", got, want)
			})
		}
	})

	t.Run("concurrent adds sum", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const n, each = 20, 5
		errs := parallel(n, func(i int) error {
			for j := range each {
				err := s.AddIssuance(ctx, []authz.Issuance{
					count("app_01", "https://a", 0, 1, time.Duration(i*each+j)*time.Second),
					count("app_01", "https://b", 0, 2, time.Second),
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		noErr(t, errors.Join(errs...))
		got, err := s.ListIssuance(ctx, "app_01", hour(0))
		noErr(t, err)
		same(t, "counters", got, []authz.Issuance{
			count("app_01", "https://a", 0, n*each, (n*each-1)*time.Second),
			count("app_01", "https://b", 0, 2*n*each, time.Second),
		})
	})
}
