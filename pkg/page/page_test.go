package page

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/certflow/certflow/pkg/apierr"
)

type request struct {
	size  int32
	token string
}

func (r request) GetPageSize() int32   { return r.size }
func (r request) GetPageToken() string { return r.token }

func TestList(t *testing.T) {
	const query = `state = "ISSUED"`
	items := []int{0, 1, 2, 3, 4}
	errFetch := errors.New("store down")

	tests := []struct {
		name      string
		req       request
		fetchErr  error
		want      []string
		wantNext  string
		wantLimit int64 // the limit fetch must be called with; 0: not called
		wantErr   error
	}{
		{
			name: "first page", req: request{size: 2},
			want: []string{"0", "1"}, wantNext: Token(query, 2), wantLimit: 2,
		},
		{
			name: "middle page", req: request{size: 2, token: Token(query, 2)},
			want: []string{"2", "3"}, wantNext: Token(query, 4), wantLimit: 2,
		},
		{
			name: "last page", req: request{size: 2, token: Token(query, 4)},
			want: []string{"4"}, wantNext: "", wantLimit: 2,
		},
		{
			name: "past the end", req: request{size: 2, token: Token(query, 10)},
			want: nil, wantNext: "", wantLimit: 2,
		},
		{
			name: "default page size", req: request{},
			want: []string{"0", "1", "2", "3", "4"}, wantNext: "", wantLimit: Default,
		},
		{
			name: "page size over Max is clamped", req: request{size: Max + 1},
			want: []string{"0", "1", "2", "3", "4"}, wantNext: "", wantLimit: Max,
		},
		{
			name: "bad token", req: request{size: 2, token: "not a token!"},
			wantErr: &apierr.Error{Reason: "INVALID_PAGE_TOKEN"},
		},
		{
			name: "token from another query", req: request{size: 2, token: Token(`state = "DRAFT"`, 2)},
			wantErr: &apierr.Error{Reason: "INVALID_PAGE_TOKEN"},
		},
		{
			name: "negative page size", req: request{size: -1},
			wantErr: &apierr.Error{Reason: "INVALID_PAGE_SIZE"},
		},
		{
			name: "negative page size is checked before the token", req: request{size: -1, token: "not a token!"},
			wantErr: &apierr.Error{Reason: "INVALID_PAGE_SIZE"},
		},
		{
			name: "fetch error is returned as it is", req: request{size: 2}, fetchErr: errFetch,
			wantLimit: 2, wantErr: errFetch,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotLimit int64
			fetch := func(offset, limit int64) ([]int, bool, error) {
				gotLimit = limit
				if tt.fetchErr != nil {
					return nil, false, tt.fetchErr
				}
				if offset >= int64(len(items)) {
					return nil, false, nil
				}
				end := min(offset+limit, int64(len(items)))
				return items[offset:end], end < int64(len(items)), nil
			}
			got, next, err := List(query, tt.req, fetch, strconv.Itoa)
			if gotLimit != tt.wantLimit {
				t.Errorf("fetch limit = %d, want %d (0: not called)", gotLimit, tt.wantLimit)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if got != nil || next != "" {
					t.Errorf("on error got %v, %q; want nil, \"\"", got, next)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("page = %v, want %v", got, tt.want)
			}
			if next != tt.wantNext {
				t.Errorf("next token = %q, want %q", next, tt.wantNext)
			}
		})
	}
}

// TestListPagesThrough follows next tokens from the first page to the last.
func TestListPagesThrough(t *testing.T) {
	items := make([]int, 7)
	for i := range items {
		items[i] = i
	}
	fetch := func(offset, limit int64) ([]int, bool, error) {
		if offset >= int64(len(items)) {
			return nil, false, nil
		}
		end := min(offset+limit, int64(len(items)))
		return items[offset:end], end < int64(len(items)), nil
	}
	var all []int
	token, pages := "", 0
	for {
		got, next, err := List("parent/1", request{size: 3, token: token}, fetch, func(i int) int { return i })
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
		pages++
		if next == "" {
			break
		}
		token = next
	}
	if pages != 3 || !slices.Equal(all, items) {
		t.Errorf("got %v in %d pages, want %v in 3", all, pages, items)
	}
}
