package limits

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type recorded struct {
	mu  sync.Mutex
	los []Lockout
}

func (r *recorded) add(l Lockout) { r.mu.Lock(); r.los = append(r.los, l); r.mu.Unlock() }
func (r *recorded) all() []Lockout {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Lockout(nil), r.los...)
}

var (
	attacker = netip.MustParseAddr("192.0.2.66")
	owner    = netip.MustParseAddr("198.51.100.7")
)

func newTest(t *testing.T, cfg Config) (*Limiter, *clock, *recorded) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r := &recorded{}
	cfg.Now, cfg.OnLockout = c.now, r.add
	return New(cfg), c, r
}

// fail makes n failed attempts of clientID from addr, each allowed.
func fail(t *testing.T, l *Limiter, clientID string, addr netip.Addr, n int) {
	t.Helper()
	for i := range n {
		a, _, ok := l.Allow(clientID, addr)
		if !ok {
			t.Fatalf("attempt %d of %s from %v refused", i+1, clientID, addr)
		}
		a.Failed(clientID)
	}
}

func TestLockoutPerClientAndAddressFirst(t *testing.T) {
	l, c, r := newTest(t, Config{MaxFailures: 5, Window: time.Minute, AddrBurst: 100})
	fail(t, l, "app_1", attacker, 5)
	_, retry, ok := l.Allow("app_1", attacker)
	if ok {
		t.Fatal("the 6th attempt from the attacker was allowed")
	}
	if retry != time.Minute {
		t.Errorf("retry after %v, want 1m", retry)
	}
	if _, _, ok := l.Allow("app_1", owner); !ok {
		t.Error("the owner's address is locked out by the attacker's guesses")
	}
	if _, _, ok := l.Allow("app_2", attacker); !ok {
		t.Error("another client_id from the attacker's address is locked out")
	}
	if got := r.all(); len(got) != 1 || got[0].Scope != ScopeClientAddr || !got[0].Started || got[0].ClientID != "app_1" || got[0].Addr != attacker {
		t.Errorf("lockouts announced = %+v, want one started for app_1 from the attacker", got)
	}
	c.add(59 * time.Second)
	if _, retry, ok := l.Allow("app_1", attacker); ok || retry != time.Second {
		t.Errorf("at 59s: ok %v retry %v, want refused, 1s", ok, retry)
	}
	c.add(time.Second)
	if _, _, ok := l.Allow("app_1", attacker); !ok {
		t.Error("still locked out after the window")
	}
	l.Sweep()
	if got := r.all(); len(got) != 2 || got[1].Started {
		t.Errorf("after the sweep, lockouts = %+v, want the end announced", got)
	}
	if st := l.Stats(); st.Refused != 2 || st.Locked != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFailuresOutsideTheWindowDoNotAddUp(t *testing.T) {
	l, c, _ := newTest(t, Config{MaxFailures: 3, Window: time.Minute, AddrBurst: 100})
	for range 5 {
		fail(t, l, "app_1", attacker, 2)
		c.add(61 * time.Second)
	}
	if _, _, ok := l.Allow("app_1", attacker); !ok {
		t.Error("failures spread over windows locked the client out")
	}
}

func TestSuccessStartsTheCountAgain(t *testing.T) {
	l, _, _ := newTest(t, Config{MaxFailures: 3, AddrBurst: 100})
	for range 5 {
		fail(t, l, "app_1", owner, 2)
		a, _, ok := l.Allow("app_1", owner)
		if !ok {
			t.Fatal("refused")
		}
		a.Succeeded()
	}
	if _, _, ok := l.Allow("app_1", owner); !ok {
		t.Error("failures separated by successes locked the client out")
	}
}

func TestAddressLimit(t *testing.T) {
	l, c, r := newTest(t, Config{AddrBurst: 10, AddrRate: 1})
	for i := range 10 {
		fail(t, l, fmt.Sprintf("random_%d", i), attacker, 1)
	}
	_, retry, ok := l.Allow("random_new", attacker)
	if ok {
		t.Fatal("the address's 11th failure in a burst was allowed")
	}
	if retry != time.Second {
		t.Errorf("retry after %v, want 1s", retry)
	}
	if _, _, ok := l.Allow("app_1", owner); !ok {
		t.Error("another address is limited")
	}
	if got := r.all(); len(got) != 1 || got[0].Scope != ScopeAddr || got[0].Addr != attacker {
		t.Errorf("lockouts = %+v, want the attacker's address", got)
	}
	c.add(time.Second)
	fail(t, l, "random_x", attacker, 1) // one token refilled
	if _, _, ok := l.Allow("random_y", attacker); ok {
		t.Error("more than the refill rate allowed")
	}
}

func TestIPv6CountsPer64(t *testing.T) {
	l, _, _ := newTest(t, Config{AddrBurst: 4, AddrRate: 1})
	for i := range 4 {
		fail(t, l, "x", netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1)), 1)
	}
	if _, _, ok := l.Allow("x", netip.MustParseAddr("2001:db8:1:2:ffff::1")); ok {
		t.Error("another address of the same /64 is not limited")
	}
	if _, _, ok := l.Allow("x", netip.MustParseAddr("2001:db8:1:3::1")); !ok {
		t.Error("another /64 is limited")
	}
}

func TestClientAttackedFromManyAddressesIsBounded(t *testing.T) {
	l, c, r := newTest(t, Config{MaxFailures: 5, ClientMaxFailures: 20, Window: time.Minute, AddrBurst: 100})
	for i := range 4 {
		fail(t, l, "app_1", netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 5)
	}
	_, retry, ok := l.Allow("app_1", owner)
	if ok {
		t.Fatal("a client_id attacked from 4 addresses is not locked out everywhere")
	}
	if retry != time.Minute {
		t.Errorf("retry after %v, want 1m", retry)
	}
	if got := r.all(); got[len(got)-1].Scope != ScopeClient {
		t.Errorf("last lockout = %+v, want the client everywhere", got[len(got)-1])
	}
	c.add(time.Minute)
	if _, _, ok := l.Allow("app_1", owner); !ok {
		t.Fatal("the owner is still locked out after the window")
	}
	// The attack goes on from new addresses: within the next window, the
	// client_id is not locked out everywhere again.
	for i := range 8 {
		fail(t, l, "app_1", netip.AddrFrom4([4]byte{203, 0, 114, byte(i)}), 5)
	}
	if _, _, ok := l.Allow("app_1", owner); !ok {
		t.Error("locked out everywhere again in the quiet window")
	}
	c.add(61 * time.Second)
	for i := range 4 {
		fail(t, l, "app_1", netip.AddrFrom4([4]byte{203, 0, 115, byte(i)}), 5)
	}
	if _, _, ok := l.Allow("app_1", owner); ok {
		t.Error("after the quiet window, a new attack does not lock the client out")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	const maxKeys = 1000
	l, _, r := newTest(t, Config{MaxKeys: maxKeys, MaxFailures: 1, AddrBurst: 1 << 30})
	for i := range 10 * maxKeys {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		fail(t, l, fmt.Sprintf("random_%d", i), addr, 1)
	}
	st := l.Stats()
	if st.Pairs != maxKeys || st.Clients != maxKeys || st.Addrs != maxKeys {
		t.Errorf("tables hold %+v, want %d each", st, maxKeys)
	}
	if st.Locked > 2*maxKeys {
		t.Errorf("%d lockouts in force, more than the tables hold", st.Locked)
	}
	// Every lockout whose entry was evicted was announced as ended.
	started, ended := 0, 0
	for _, lo := range r.all() {
		if lo.Started {
			started++
		} else {
			ended++
		}
	}
	if started-ended != st.Locked {
		t.Errorf("%d started, %d ended, %d in force", started, ended, st.Locked)
	}
}

func TestEviction(t *testing.T) {
	l := newLRU[int](3)
	for k := uint64(1); k <= 3; k++ {
		*l.put(k, nil) = int(k)
	}
	l.put(1, nil) // 1 is now the most recent; 2 the least
	var evicted []uint64
	*l.put(4, func(k uint64) { evicted = append(evicted, k) }) = 4
	if len(evicted) != 1 || evicted[0] != 2 {
		t.Errorf("evicted %v, want [2]", evicted)
	}
	if l.get(2) != nil || *l.get(1) != 1 || *l.get(4) != 4 {
		t.Error("wrong entries after eviction")
	}
	l.remove(3)
	if l.len() != 2 || l.get(3) != nil {
		t.Errorf("after remove: len %d", l.len())
	}
	*l.put(5, func(k uint64) { t.Errorf("evicted %d although a removed node was free", k) }) = 5
	*l.put(3, func(k uint64) { evicted = append(evicted, k) }) = 3 // full again: evicts 1
	if len(evicted) != 2 || evicted[1] != 1 || *l.get(3) != 3 || *l.get(5) != 5 || *l.get(4) != 4 {
		t.Errorf("evicted %v", evicted)
	}
}

// TestMemoryPerKey reports the heap each tracked key costs, with full
// tables of DefaultMaxKeys.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates full tables")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l, _, _ := newTest(t, Config{MaxFailures: 1 << 20, ClientMaxFailures: 1 << 20, AddrBurst: 1 << 30})
	for i := range DefaultMaxKeys {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		a, _, _ := l.Allow(fmt.Sprint("c", i), addr)
		a.Failed("c")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / float64(3*DefaultMaxKeys)
	t.Logf("%d keys in each of 3 tables: %.1f MiB, %.0f bytes per key", DefaultMaxKeys, float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), perKey)
	if perKey > 200 {
		t.Errorf("%.0f bytes per key, want at most 200", perKey)
	}
	runtime.KeepAlive(l)
}

func BenchmarkAllowSucceeded(b *testing.B) {
	l := New(Config{})
	addr := netip.MustParseAddr("10.1.2.3")
	b.ReportAllocs()
	for b.Loop() {
		a, _, ok := l.Allow("01J0000000000000000000000A", addr)
		if !ok {
			b.Fatal("refused")
		}
		a.Succeeded()
	}
}
