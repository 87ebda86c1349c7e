package m2mclient

import (
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// maxEarly is the most a token is refreshed before it expires.
const maxEarly = 30 * time.Second

// cachingSource returns its token until shortly before it expires, then
// asks fetch for a new one. Concurrent callers wait for one fetch.
type cachingSource struct {
	fetch func() (*oauth2.Token, error)
	now   func() time.Time

	mu      sync.Mutex
	tok     *oauth2.Token
	refresh time.Time // when tok stops being handed out
}

// Token returns the cached token, or a new one from fetch.
func (s *cachingSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.now().Before(s.refresh) {
		return s.tok, nil
	}
	s.tok = nil
	tok, err := s.fetch()
	if err != nil {
		return nil, err
	}
	if tok.ExpiresIn > 0 {
		lifetime := time.Duration(tok.ExpiresIn) * time.Second
		s.tok, s.refresh = tok, tok.Expiry.Add(-min(maxEarly, lifetime/10))
	}
	return tok, nil
}
