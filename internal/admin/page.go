package admin

import (
	"encoding/base64"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// pageOf cuts one page out of a short list read whole (an application's
// grants or secrets, the signing keys), so that every list endpoint takes
// ?limit= and ?cursor= alike. The cursor is the last item's id; one that
// names no item is a validation problem.
func pageOf[T any](items []T, id func(T) string, pg authz.Page) ([]T, string, *Problem) {
	start := 0
	if pg.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(pg.Cursor)
		if err != nil {
			return nil, "", invalid("cursor is not one this server gave")
		}
		start = -1
		for i, it := range items {
			if id(it) == string(b) {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, "", invalid("cursor is not one this server gave")
		}
	}
	end := min(start+pg.Limit, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(id(items[end-1])))
	}
	return items[start:end], next, nil
}
