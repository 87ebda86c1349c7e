// Package logbuf batches the server's log lines into few writes: with one
// access line per request, one write(2) per line was about a tenth of an
// ES256 token's CPU on loopback (docs/benchmarks.md). A Writer keeps whole
// records in memory and writes them out in order at most Interval later,
// when its buffer fills, or at once for a record at or above the level a
// Handler names (warnings and errors are never held back).
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of New.
const (
	// DefaultInterval is how long a line may wait in memory: 100 ms.
	DefaultInterval = 100 * time.Millisecond
	// DefaultMaxBytes is the buffer size past which Write flushes: 64 KiB.
	DefaultMaxBytes = 64 << 10
)

// Writer is an io.Writer that buffers what it is given and writes it to
// the underlying writer in the order given. Each Write is kept whole: a
// line is never split between two writes of the underlying writer unless
// it alone is larger than the buffer, when it is written through. It is
// safe for concurrent use. Close flushes and stops its timer.
type Writer struct {
	out      io.Writer
	maxBytes int

	writeMu sync.Mutex // held while writing to out, so that flushes keep their order
	mu      sync.Mutex // guards buf and spare
	buf     []byte
	spare   []byte

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New returns a Writer onto out that flushes every interval
// (DefaultInterval if ≤ 0) and whenever maxBytes (DefaultMaxBytes if ≤ 0)
// would be exceeded.
func New(out io.Writer, interval time.Duration, maxBytes int) *Writer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	w := &Writer{out: out, maxBytes: maxBytes, buf: make([]byte, 0, maxBytes), spare: make([]byte, 0, maxBytes),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(interval)
	return w
}

func (w *Writer) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Write buffers p, flushing first if p does not fit. It returns len(p)
// and, if a flush it made failed, the underlying writer's error (the
// buffered data is then dropped: a log must not grow without bound).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if len(w.buf)+len(p) <= w.maxBytes {
		w.buf = append(w.buf, p...)
		w.mu.Unlock()
		return len(p), nil
	}
	w.mu.Unlock()
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if len(p) > w.maxBytes {
		w.writeMu.Lock()
		defer w.writeMu.Unlock()
		// Anything buffered since the Flush goes first, to keep the order.
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
		return w.out.Write(p)
	}
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	return len(p), nil
}

// Flush writes out what is buffered. It returns the underlying writer's
// error, if any.
func (w *Writer) Flush() error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	return w.flushLocked()
}

// flushLocked swaps the buffer for the spare one, so that writers go on
// while the underlying write runs, and writes it out. writeMu is held.
func (w *Writer) flushLocked() error {
	w.mu.Lock()
	b := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	var err error
	if len(b) > 0 {
		_, err = w.out.Write(b)
	}
	w.mu.Lock()
	w.spare = b[:0]
	w.mu.Unlock()
	return err
}

// Close stops the timer and flushes. The Writer still works after Close,
// but only explicit Flushes and full buffers write.
func (w *Writer) Close() error {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.Flush()
}

// Handler wraps h, whose output is w, so that a record at level or above
// is written out at once (w.Flush after h handles it).
func Handler(h slog.Handler, w *Writer, level slog.Level) slog.Handler {
	return &flushHandler{Handler: h, w: w, level: level}
}

type flushHandler struct {
	slog.Handler
	w     *Writer
	level slog.Level
}

func (h *flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.level {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h *flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w, level: h.level}
}

func (h *flushHandler) WithGroup(name string) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithGroup(name), w: h.w, level: h.level}
}
