package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
)

// maxClients bounds a clients file: the credentials a spread run takes
// turns over.
const maxClients = 10_000_000

// credential is one client that asks for tokens of one audience.
type credential struct {
	ClientID string
	Secret   string
	Audience string
}

// parseClients reads a clients file, as internal/loadseed writes it: one
// client a line, "client_id client_secret audience" separated by single
// spaces (none of the three holds a space). Blank lines and lines starting
// with '#' are skipped. Returns an error naming the line for any other
// form, and for more than max clients or none.
func parseClients(r io.Reader, max int) ([]credential, error) {
	var out []credential
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, " ")
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
			return nil, fmt.Errorf("clients file line %d: want \"client_id client_secret audience\"", n)
		}
		if len(out) == max {
			return nil, fmt.Errorf("clients file: more than %d clients", max)
		}
		out = append(out, credential{ClientID: f[0], Secret: f[1], Audience: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("clients file: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clients file: no clients")
	}
	return out, nil
}

// loadClients reads the clients file at path (parseClients).
func loadClients(path string) ([]credential, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseClients(f, maxClients)
}

// request is what one token request sends: the Authorization header
// (client_secret_basic, RFC 6749 §2.3.1, id and secret form-encoded) and
// the form body of the client credentials grant (RFC 6749 §4.4.2).
type request struct {
	basic string
	form  []byte
}

func newRequest(c credential) request {
	return request{
		basic: "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ClientID)+":"+url.QueryEscape(c.Secret))),
		form:  []byte(url.Values{"grant_type": {"client_credentials"}, "audience": {c.Audience}}.Encode()),
	}
}

// ring takes turns over clients: each call of next, from any connection,
// returns the next client's request, round-robin, so that with n clients
// each asks once every n requests (as clients that cache their tokens
// do). The position carries over from one run to the next. It is safe for
// concurrent use.
type ring struct {
	reqs []request
	pos  atomic.Uint64
}

// newRing precomputes the request of every client, so that taking turns
// costs the load generator no more per request than one client does.
func newRing(clients []credential) *ring {
	r := &ring{reqs: make([]request, len(clients))}
	for i, c := range clients {
		r.reqs[i] = newRequest(c)
	}
	return r
}

func (r *ring) next() request {
	i := r.pos.Add(1) - 1
	return r.reqs[i%uint64(len(r.reqs))]
}

// Len is the number of clients.
func (r *ring) Len() int { return len(r.reqs) }

// picker returns the function drive calls before each request: the next
// client of t.Spread, or, without one, t's single client every time.
func (t target) picker() func() request {
	if t.Spread != nil {
		return t.Spread.next
	}
	one := newRequest(credential{ClientID: t.ClientID, Secret: t.Secret, Audience: t.Audience})
	return func() request { return one }
}
