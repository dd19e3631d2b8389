package page

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func TestKeysetRoundTrip(t *testing.T) {
	k := NewKeyset(testKey)
	for _, c := range []Cursor{
		{Time: time.Date(2026, 12, 2, 10, 0, 0, 123456000, time.UTC), ID: "abcdefghijklmnopqrst"},
		{Time: time.Unix(0, 0).UTC(), ID: ""},
		{Time: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), ID: "id with \x00 bytes"},
	} {
		tok := k.Token(`state = ISSUED`, c)
		got, err := k.Cursor(`state = ISSUED`, tok)
		if err != nil || got == nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
			t.Errorf("Cursor(Token(%v)) = %v, %v; want %v", c, got, err, c)
		}
	}
	if got, err := k.Cursor("q", ""); got != nil || err != nil {
		t.Errorf(`Cursor("") = %v, %v; want nil, nil (first page)`, got, err)
	}
}

// TestKeysetRefusesTampering: a token changed in any byte, cut, made for
// another query or under another key is INVALID_PAGE_TOKEN.
func TestKeysetRefusesTampering(t *testing.T) {
	k := NewKeyset(testKey)
	const query = `domain = "a.example.com"`
	tok := k.Token(query, Cursor{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ID: "someid"})
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	bad := map[string]string{
		"other query": "",
		"other key":   NewKeyset(bytes.Repeat([]byte{8}, 32)).Token(query, Cursor{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ID: "someid"}),
		"not base64":  "!!!",
		"cut":         base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]),
		"short":       base64.RawURLEncoding.EncodeToString(raw[:10]),
		"offset kind": Token(query, 50),
	}
	for i := range raw {
		b := slices.Clone(raw)
		b[i] ^= 0x01
		bad["byte "+string(rune('a'+i%26))+string(rune('0'+i/26))] = base64.RawURLEncoding.EncodeToString(b)
	}
	for name, tt := range bad {
		q, tk := query, tt
		if name == "other query" {
			q, tk = `domain = "b.example.com"`, tok
		}
		if c, err := k.Cursor(q, tk); !errors.Is(err, &apierr.Error{Reason: "INVALID_PAGE_TOKEN"}) {
			t.Errorf("Cursor(%s) = %v, %v; want INVALID_PAGE_TOKEN", name, c, err)
		}
	}
}

func TestListKeyset(t *testing.T) {
	k := NewKeyset(testKey)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Items newest first, as a store would list them.
	var items []Cursor
	for i := 5; i > 0; i-- {
		items = append(items, Cursor{Time: base.Add(time.Duration(i) * time.Minute), ID: string(rune('a' + i))})
	}
	fetch := func(after *Cursor, limit int64) ([]Cursor, bool, error) {
		start := 0
		if after != nil {
			start = slices.IndexFunc(items, func(c Cursor) bool { return c.ID == after.ID }) + 1
		}
		end := min(start+int(limit), len(items))
		return items[start:end], end < len(items), nil
	}
	id := func(c Cursor) Cursor { return c }
	var seen []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		got, next, err := ListKeyset(k, "q", request{size: 2, token: token}, fetch, id, func(c Cursor) string { return c.ID })
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, got...)
		if next == "" {
			break
		}
		token = next
	}
	if want := []string{"f", "e", "d", "c", "b"}; !slices.Equal(seen, want) {
		t.Fatalf("pages = %v; want %v", seen, want)
	}
	if _, _, err := ListKeyset(k, "other", request{size: 2, token: token}, fetch, id, func(c Cursor) string { return c.ID }); err == nil {
		t.Fatal("ListKeyset with another query's token = nil error; want INVALID_PAGE_TOKEN")
	}
}
