package dpop

import (
	"errors"
	"net/url"
	"strings"
)

// normalizeURL returns the form of an http(s) URL that htu and the request
// URL are compared in (RFC 9449 §4.3; RFC 3986 §6.2.2 syntax-based and
// §6.2.3 scheme-based normalization): scheme and host in lower case, the
// default port dropped, an empty path as "/", percent-encodings with upper
// case hex digits and unreserved characters decoded; no query, no fragment.
// Dot segments are kept: the path is otherwise compared as sent.
func normalizeURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Opaque != "" || u.Host == "" || u.User != nil {
		return "", errors.New("not an absolute http(s) URL")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", errors.New("no host")
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := normalizePercent(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// normalizePercent decodes percent-encoded unreserved characters and
// writes the other percent-encodings in upper case (RFC 3986 §6.2.2.1,
// §6.2.2.2). Its input comes from url.URL.EscapedPath, so every % starts a
// valid triplet.
func normalizePercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) {
			b.WriteByte(p[i])
			continue
		}
		hi, ok1 := unhex(p[i+1])
		lo, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			b.WriteByte(p[i])
			continue
		}
		c := hi<<4 | lo
		if isUnreserved(c) {
			b.WriteByte(c)
		} else {
			const digits = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(digits[hi])
			b.WriteByte(digits[lo])
		}
		i += 2
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isUnreserved reports whether c is an RFC 3986 §2.3 unreserved character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
