// Package page implements AIP-158 pagination: page sizes with a default and
// a maximum, and opaque page tokens bound to the query they came from.
package page

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"github.com/certflow/certflow/pkg/apierr"
)

// Default and Max page sizes.
const (
	Default = 50
	Max     = 1000
)

// Size returns the page size to use for a request's page_size.
func Size(requested int32) (int64, error) {
	switch {
	case requested < 0:
		return 0, apierr.Invalid("page_size", "INVALID_PAGE_SIZE", "page_size must not be negative")
	case requested == 0:
		return Default, nil
	case requested > Max:
		return Max, nil
	}
	return int64(requested), nil
}

// Token encodes the offset of the next page for a query (the filter string
// and anything else that must not change between pages).
func Token(query string, offset int64) string {
	b := make([]byte, 8+8)
	h := sha256.Sum256([]byte(query))
	copy(b, h[:8])
	binary.BigEndian.PutUint64(b[8:], uint64(offset))
	return base64.RawURLEncoding.EncodeToString(b)
}

// Offset decodes a page token; "" is the first page.
func Offset(query, token string) (int64, error) {
	if token == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	h := sha256.Sum256([]byte(query))
	if err != nil || len(b) != 16 || string(b[:8]) != string(h[:8]) {
		return 0, apierr.Invalid("page_token", "INVALID_PAGE_TOKEN", "page_token is not valid for this query; start again without it")
	}
	off := int64(binary.BigEndian.Uint64(b[8:]))
	if off < 0 {
		return 0, apierr.Invalid("page_token", "INVALID_PAGE_TOKEN", "page_token is not valid for this query; start again without it")
	}
	return off, nil
}

// Request is what every AIP-158 list request carries.
type Request interface {
	GetPageSize() int32
	GetPageToken() string
}

// List serves one page: it checks page_size and page_token (a token is bound
// to query — the filter or parent — so it cannot page another query), fetches
// the page with fetch(offset, limit), converts each item, and returns the page
// and the next page token ("" on the last page). fetch reports whether more
// items follow the page. Errors from the checks and from fetch are returned
// as they are.
func List[R, P any](query string, req Request, fetch func(offset, limit int64) ([]R, bool, error), conv func(R) P) ([]P, string, error) {
	size, err := Size(req.GetPageSize())
	if err != nil {
		return nil, "", err
	}
	offset, err := Offset(query, req.GetPageToken())
	if err != nil {
		return nil, "", err
	}
	items, more, err := fetch(offset, size)
	if err != nil {
		return nil, "", err
	}
	var out []P
	for _, it := range items {
		out = append(out, conv(it))
	}
	var next string
	if more {
		next = Token(query, offset+size)
	}
	return out, next, nil
}
