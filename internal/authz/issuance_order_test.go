package authz

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// issuanceKeyOrder is the primary key's order, compared in full.
func issuanceKeyOrder(a, b *Issuance) int {
	return cmp.Or(strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.Audience, b.Audience), a.Hour.Compare(b.Hour))
}

// TestIssuanceOrder: IssuanceOrder's prefix comparison gives the order of
// the full (client_id, audience, hour) comparison: client_ids shorter and
// longer than 16 bytes, sharing prefixes, with NUL and high bytes, and
// rows equal but for the audience or the hour.
func TestIssuanceOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	hour := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	alphabet := []string{"a", "b", "\x00", "\xff", "é", "0", "9"}
	for round := range 200 {
		n := 1 + r.IntN(300)
		counts := make([]Issuance, n)
		for i := range counts {
			var id strings.Builder
			if r.IntN(2) == 0 {
				id.WriteString("app_0123456789ab") // a shared 16-byte prefix
			}
			for range r.IntN(20) {
				id.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			if round%3 == 0 {
				id.WriteString(strconv.Itoa(r.IntN(50))) // "turns12" and "turns123" alike
			}
			counts[i] = Issuance{ClientID: id.String(), Audience: "https://" + alphabet[r.IntN(2)],
				Hour: hour.Add(time.Duration(r.IntN(3)) * time.Hour), Count: 1}
		}
		order := IssuanceOrder(counts)
		if len(order) != n {
			t.Fatalf("%d indexes for %d rows", len(order), n)
		}
		seen := make([]bool, n)
		for j, i := range order {
			if seen[i] {
				t.Fatalf("index %d twice", i)
			}
			seen[i] = true
			if j > 0 && issuanceKeyOrder(&counts[order[j-1]], &counts[i]) > 0 {
				t.Fatalf("round %d: %q before %q", round, counts[order[j-1]].ClientID, counts[i].ClientID)
			}
		}
	}
}

// BenchmarkIssuanceOrder: the flush's sort of 60 000 counters, by
// IssuanceOrder, by the full comparison over indexes, and of the rows
// themselves (a clone, as the PostgreSQL store sorted before).
func BenchmarkIssuanceOrder(b *testing.B) {
	counts := make([]Issuance, 60_000)
	for i, p := range rand.New(rand.NewPCG(3, 4)).Perm(len(counts)) {
		counts[i] = Issuance{ClientID: "app_" + strconv.FormatUint(uint64(p)*0x9e3779b97f4a7c15, 36), Audience: "https://turns/", Hour: time.Now().Truncate(time.Hour)}
	}
	b.Run("prefix", func(b *testing.B) {
		for b.Loop() {
			IssuanceOrder(counts)
		}
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			order := make([]int32, len(counts))
			for i := range order {
				order[i] = int32(i)
			}
			slices.SortFunc(order, func(i, j int32) int { return issuanceKeyOrder(&counts[i], &counts[j]) })
		}
	})
	b.Run("rows", func(b *testing.B) {
		for b.Loop() {
			rows := slices.Clone(counts)
			slices.SortFunc(rows, func(x, y Issuance) int { return issuanceKeyOrder(&x, &y) })
		}
	})
}
