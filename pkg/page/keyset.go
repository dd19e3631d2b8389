package page

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
)

// Cursor is a position in a keyset order: the sort key and id of the last
// item of a page. The next page starts strictly after it, so items added
// or removed while a client pages neither repeat nor shift the rest (as
// an offset does).
type Cursor struct {
	Time time.Time
	ID   string
}

// Keyset issues and reads page tokens holding a Cursor. A token is
// tamper-evident: it carries an HMAC-SHA256 under the service's key over
// the query (filter, account) and the cursor, so a client can neither
// forge a position nor carry a token to another query.
type Keyset struct{ key []byte }

// NewKeyset returns tokens authenticated under key (at least 16 bytes;
// derive it from a secret the service keeps, so tokens survive restarts).
func NewKeyset(key []byte) *Keyset {
	if len(key) < 16 {
		panic("page: keyset key shorter than 16 bytes")
	}
	return &Keyset{key: append([]byte(nil), key...)}
}

const (
	keysetVersion = 1
	macLen        = 16
)

var errKeysetToken = apierr.Invalid("page_token", "INVALID_PAGE_TOKEN", "page_token is not valid for this query; start again without it")

// Token encodes c for query.
func (k *Keyset) Token(query string, c Cursor) string {
	b := make([]byte, 1+8, 1+8+len(c.ID)+macLen)
	b[0] = keysetVersion
	binary.BigEndian.PutUint64(b[1:], uint64(c.Time.UnixNano()))
	b = append(b, c.ID...)
	return base64.RawURLEncoding.EncodeToString(append(b, k.mac(query, b)...))
}

// Cursor decodes a token of query; "" is the first page (nil).
func (k *Keyset) Cursor(query, token string) (*Cursor, error) {
	if token == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+8+macLen || b[0] != keysetVersion {
		return nil, errKeysetToken
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(mac, k.mac(query, body)) {
		return nil, errKeysetToken
	}
	return &Cursor{Time: time.Unix(0, int64(binary.BigEndian.Uint64(body[1:9]))).UTC(), ID: string(body[9:])}, nil
}

func (k *Keyset) mac(query string, body []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	// The query's length first, so query and body cannot be re-split.
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(query)))
	m.Write(n[:])
	m.Write([]byte(query))
	m.Write(body)
	return m.Sum(nil)[:macLen]
}

// ListKeyset serves one page in a keyset order, as List does with offsets:
// it checks page_size and page_token, fetches up to limit items after the
// token's cursor (nil: from the start) with fetch, which reports whether
// more follow, and returns the converted page and the token of the next
// one ("" on the last page), made from the last item's cursor.
func ListKeyset[R, P any](k *Keyset, query string, req Request, fetch func(after *Cursor, limit int64) ([]R, bool, error), cursor func(R) Cursor, conv func(R) P) ([]P, string, error) {
	size, err := Size(req.GetPageSize())
	if err != nil {
		return nil, "", err
	}
	after, err := k.Cursor(query, req.GetPageToken())
	if err != nil {
		return nil, "", err
	}
	items, more, err := fetch(after, size)
	if err != nil {
		return nil, "", err
	}
	out := make([]P, 0, len(items))
	for _, it := range items {
		out = append(out, conv(it))
	}
	var next string
	if more && len(items) > 0 {
		next = k.Token(query, cursor(items[len(items)-1]))
	}
	return out, next, nil
}

// Query is what a page token is bound to: the list method, the caller's
// account and everything that selects the items (filter, parent). Each
// part is length-prefixed, so no two different sets of parts give the
// same query.
func Query(parts ...string) string {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return string(b)
}

// Records serves one page of docstore records in the stores' listing
// order (newest first, then by _id), as ListKeyset does: fetch lists up
// to limit records after the position (nil: from the newest), the next
// token holds the last record's position.
func Records[T, P any](k *Keyset, query string, req Request, fetch func(after *docstore.Position, limit int64) ([]*docstore.Record[T], bool, error), conv func(*docstore.Record[T]) P) ([]P, string, error) {
	return ListKeyset(k, query, req, func(after *Cursor, limit int64) ([]*docstore.Record[T], bool, error) {
		var pos *docstore.Position
		if after != nil {
			pos = &docstore.Position{Created: after.Time, ID: after.ID}
		}
		return fetch(pos, limit)
	}, func(r *docstore.Record[T]) Cursor { return Cursor{Time: r.Created, ID: r.ID} }, conv)
}
