package denylist

import (
	"fmt"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/fake"
)

// TestCap: Limit takes per client and window, then refusals with the time
// to the window's end, reported once per window; a new window opens after
// it; closed windows are swept, so memory follows the clients of the last
// window only.
func TestCap(t *testing.T) {
	clk := fake.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	var reported []string
	c := NewCap(2, time.Hour, clk.Now, func(clientID string, until time.Time) {
		reported = append(reported, clientID+"@"+until.Format(time.TimeOnly))
	})
	for i := range 2 {
		if _, ok := c.Take("a"); !ok {
			t.Fatalf("take %d refused", i+1)
		}
	}
	clk.Add(15 * time.Minute)
	for range 3 {
		if ra, ok := c.Take("a"); ok || ra != 45*time.Minute {
			t.Fatalf("over the cap: %v, %v; want refused for 45m", ra, ok)
		}
	}
	if _, ok := c.Take("b"); !ok {
		t.Fatal("another client refused")
	}
	if len(reported) != 1 || reported[0] != "a@13:00:00" {
		t.Errorf("reported %v, want a once, until 13:00", reported)
	}
	clk.Add(45 * time.Minute)
	if _, ok := c.Take("a"); !ok {
		t.Fatal("refused after the window")
	}

	// Many clients, each in its own window: after a window the old ones go.
	for i := range 1000 {
		c.Take(fmt.Sprint("client-", i))
	}
	clk.Add(2 * time.Hour)
	c.Take("a")
	if n := c.Len(); n != 1 {
		t.Errorf("%d windows kept after they all closed, want 1", n)
	}
}
