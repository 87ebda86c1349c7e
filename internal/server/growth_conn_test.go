package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// rawConn is a keep-alive client connection driven by hand.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// get sends GET /healthz and reads the answer within wait; it returns the
// status, or an error (a timeout: not answered yet; EOF: closed).
func (c *rawConn) get(wait time.Duration) (int, error) {
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: m2mauth\r\n\r\n"); err != nil {
		return 0, err
	}
	return c.read(wait)
}

func (c *rawConn) read(wait time.Duration) (int, error) {
	c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// TestMaxConnections: with --max-connections 2, a third connection is not
// served while two are open (it waits in the listen backlog), and is
// served as soon as one of them closes.
func TestMaxConnections(t *testing.T) {
	e := newTestEnv(t, func(c *Config, _ *Deps) { c.MaxConnections, c.MaxIdleConnsPerAddress = 2, 2 })
	first, second := dialRaw(t, e.url), dialRaw(t, e.url)
	for _, c := range []*rawConn{first, second} {
		if status, err := c.get(5 * time.Second); err != nil || status != http.StatusOK {
			t.Fatalf("one of the first two connections: %d, %v", status, err)
		}
	}
	third := dialRaw(t, e.url) // the kernel accepts it into the backlog
	if status, err := third.get(300 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection over the cap was served: %d, %v", status, err)
	}
	first.Close()
	if status, err := third.read(5 * time.Second); err != nil || status != http.StatusOK {
		t.Fatalf("the third connection once one closed: %d, %v", status, err)
	}
	if status, err := second.get(5 * time.Second); err != nil || status != http.StatusOK {
		t.Fatalf("the second connection after: %d, %v", status, err)
	}
}

// TestMaxIdleConnsPerAddress: with --max-idle-conns-per-address 3, six
// idle keep-alive connections from one address become three: the server
// closes the three idle longest, and the newest keep working.
func TestMaxIdleConnsPerAddress(t *testing.T) {
	const max, n = 3, 6
	e := newTestEnv(t, func(c *Config, _ *Deps) { c.MaxIdleConnsPerAddress = max })
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, e.url)
		if status, err := conns[i].get(5 * time.Second); err != nil || status != http.StatusOK {
			t.Fatalf("connection %d: %d, %v", i, status, err)
		}
		time.Sleep(20 * time.Millisecond) // idle in order
	}
	for i, c := range conns[:n-max] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("old idle connection %d: %v, want closed by the server (EOF)", i, err)
		}
	}
	for i, c := range conns[n-max:] {
		if status, err := c.get(5 * time.Second); err != nil || status != http.StatusOK {
			t.Errorf("newest idle connection %d: %d, %v; want still served", i, status, err)
		}
	}
}
