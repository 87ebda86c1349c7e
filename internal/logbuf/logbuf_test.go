package logbuf

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an io.Writer that counts the writes it gets.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	return r.buf.Write(p)
}

func (r *recorder) snapshot() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String(), r.writes
}

func TestBuffersUntilFlush(t *testing.T) {
	var out recorder
	w := New(&out, time.Hour, 1<<10)
	defer w.Close()
	for i := range 10 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if got, n := out.snapshot(); got != "" || n != 0 {
		t.Fatalf("before a flush the underlying writer got %d writes: %q", n, got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, n := out.snapshot()
	if n != 1 {
		t.Errorf("one flush made %d writes, want 1", n)
	}
	var want strings.Builder
	for i := range 10 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if got != want.String() {
		t.Errorf("flushed %q, want %q", got, want.String())
	}
}

func TestFullBufferFlushesWholeLines(t *testing.T) {
	var out recorder
	w := New(&out, time.Hour, 64)
	defer w.Close()
	line := strings.Repeat("x", 29) + "\n" // 30 bytes: two fit in 64, not three
	for range 5 {
		w.Write([]byte(line))
	}
	got, n := out.snapshot()
	if n != 2 || got != strings.Repeat(line, 4) {
		t.Errorf("after 5 lines of 30 bytes in a 64-byte buffer: %d writes of %q; want 2 writes of 4 lines", n, got)
	}
	big := strings.Repeat("y", 100) + "\n"
	w.Write([]byte(big))
	got, _ = out.snapshot()
	if got != strings.Repeat(line, 5)+big {
		t.Errorf("a line larger than the buffer is written after what was buffered, whole: %q", got)
	}
}

func TestIntervalFlushes(t *testing.T) {
	var out recorder
	w := New(&out, time.Millisecond, 1<<10)
	defer w.Close()
	w.Write([]byte("tick\n"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, _ := out.snapshot(); got == "tick\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the line was not written by the interval flush within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseFlushes(t *testing.T) {
	var out recorder
	w := New(&out, time.Hour, 1<<10)
	w.Write([]byte("last words\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := out.snapshot(); got != "last words\n" {
		t.Errorf("after Close: %q", got)
	}
	if err := w.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestConcurrentWritersKeepLinesWhole: many goroutines logging through a
// small buffer with flushes racing them; every line arrives once, whole,
// and each goroutine's lines in its order.
func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	var out recorder
	w := New(&out, time.Millisecond, 256)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(w, "g%d %04d %s\n", g, i, strings.Repeat("z", i%40))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := out.snapshot()
	next := make([]int, writers)
	count := 0
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "g%d %d %s", &g, &i, &pad); err != nil && !strings.HasSuffix(l, " ") {
			if _, err2 := fmt.Sscanf(l, "g%d %d", &g, &i); err2 != nil {
				t.Fatalf("a torn line %q: %v", l, err)
			}
		}
		if i != next[g] || len(pad) != i%40 {
			t.Fatalf("line %q out of order or torn: want g%d %04d", l, g, next[g])
		}
		next[g]++
		count++
	}
	if count != writers*lines {
		t.Errorf("%d lines arrived, want %d", count, writers*lines)
	}
}

func TestHandlerFlushesWarnings(t *testing.T) {
	var out recorder
	w := New(&out, time.Hour, 1<<10)
	defer w.Close()
	log := slog.New(Handler(slog.NewJSONHandler(w, nil), w, slog.LevelWarn)).With("component", "test")
	log.Info("request", "status", 200)
	if got, _ := out.snapshot(); got != "" {
		t.Fatalf("an info line was written at once: %q", got)
	}
	log.Warn("database unreachable")
	got, _ := out.snapshot()
	if !strings.Contains(got, `"msg":"request"`) || !strings.Contains(got, `"msg":"database unreachable"`) ||
		strings.Index(got, "request") > strings.Index(got, "unreachable") || !strings.Contains(got, `"component":"test"`) {
		t.Errorf("after a warning, want both lines in order: %q", got)
	}
}
