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
