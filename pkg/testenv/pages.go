package testenv

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Pager lists one page of a list method: the names on it and the next
// page token.
type Pager func(size int32, token string) (names []string, next string, err error)

// PageAll follows the next page tokens of p from the first page to the
// last with page_size size, and returns every name in order.
func PageAll(t testing.TB, p Pager, size int32) []string {
	t.Helper()
	var all []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > len(all)+2 {
			t.Fatalf("paging with page_size %d does not end: %d pages for %d items", size, pages, len(all))
		}
		names, next, err := p(size, token)
		if err != nil {
			t.Fatalf("page %d with page_size %d = %v", pages+1, size, err)
		}
		if size > 0 && len(names) > int(size) {
			t.Fatalf("page %d holds %d items; page_size is %d", pages+1, len(names), size)
		}
		all = append(all, names...)
		if next == "" {
			return all
		}
		token = next
	}
}

// KeysetList is a keyset-paged list method under test.
type KeysetList struct {
	// List is the method with its filter, as one caller.
	List Pager
	// Want is every item List must give, in order (at least two).
	Want []string
	// Elsewhere are the same method with another filter, parent or
	// caller, by what differs: List's tokens must be refused there.
	Elsewhere map[string]Pager
}

// CheckKeysetList checks the AIP-158 contract of a keyset-paged list:
// every page_size from 1 to past the end, the default (0) and one far over
// the maximum give every item exactly once, in order; a negative page_size
// is InvalidArgument; and a page token is refused (InvalidArgument, with a
// message saying to start again without it) when it is tampered with,
// made up, or carried to another filter, parent or caller.
func CheckKeysetList(t *testing.T, l KeysetList) {
	t.Helper()
	if len(l.Want) < 2 {
		t.Fatalf("CheckKeysetList needs at least two items, got %d", len(l.Want))
	}
	sizes := []int32{0, 1 << 30}
	for s := int32(1); s <= int32(len(l.Want))+1; s++ {
		sizes = append(sizes, s)
	}
	for _, size := range sizes {
		if got := PageAll(t, l.List, size); !slices.Equal(got, l.Want) {
			t.Errorf("pages with page_size %d = %v; want %v", size, got, l.Want)
		}
	}
	if _, _, err := l.List(-1, ""); Code(err) != codes.InvalidArgument {
		t.Errorf("page_size -1 = %v; want InvalidArgument", err)
	}
	_, token, err := l.List(1, "")
	if err != nil || token == "" {
		t.Fatalf("first page of 1 = %q, %v; want a next page token", token, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("page token %q is not base64url: %v", token, err)
	}
	bad := map[string]Pager{}
	for i := range raw {
		b := slices.Clone(raw)
		b[i] ^= 0x20
		tok := base64.RawURLEncoding.EncodeToString(b)
		bad[fmt.Sprintf("byte %d changed", i)] = func(size int32, _ string) ([]string, string, error) { return l.List(size, tok) }
	}
	for name, tok := range map[string]string{
		"cut":         base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]),
		"made up":     base64.RawURLEncoding.EncodeToString([]byte("\x01\x00\x00\x00\x00\x00\x00\x00\x00someid0123456789abcdef")),
		"offset kind": "AAAAAAAAAAAAAAAAAAAAAA",
		"not base64":  "!!",
	} {
		bad[name] = func(size int32, _ string) ([]string, string, error) { return l.List(size, tok) }
	}
	for name, p := range l.Elsewhere {
		bad["with "+name] = func(size int32, _ string) ([]string, string, error) { return p(size, token) }
	}
	for name, p := range bad {
		names, _, err := p(1, "")
		if Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "without") {
			t.Errorf("token %s = %v, %v; want InvalidArgument saying to start again without page_token", name, names, err)
		}
	}
}

// GRPCPager is the Pager of a generated list call: list makes one call,
// names picks the names out of its answer (Names does, for most).
func GRPCPager[R interface{ GetNextPageToken() string }](list func(size int32, token string) (R, error), names func(R) []string) Pager {
	return func(size int32, token string) ([]string, string, error) {
		resp, err := list(size, token)
		if err != nil {
			return nil, "", err
		}
		return names(resp), resp.GetNextPageToken(), nil
	}
}

// Names are the names of resources.
func Names[T interface{ GetName() string }](items []T) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.GetName())
	}
	return out
}
