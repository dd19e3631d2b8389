package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestContacts(t *testing.T) {
	db, _ := testenv.Database(t)
	s := NewContacts(docstore.New[Contact](db.Collection("contacts"), "contact"))
	ctx := context.Background()
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

	if _, err := s.Get(ctx, "a1"); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v; want NotFound", err)
	}
	steps := []struct {
		email string
		seen  time.Time
		want  string
	}{
		{"first@example.com", t0, "first@example.com"},
		{"first@example.com", t0, "first@example.com"},                        // the same event again
		{"second@example.com", t0.Add(time.Hour), "second@example.com"},       // newer
		{"stale@example.com", t0.Add(30 * time.Minute), "second@example.com"}, // older, late
	}
	for _, st := range steps {
		if err := s.Save(ctx, domain.Contact{Application: "a1", Account: "alice", Email: st.email, Seen: st.seen}); err != nil {
			t.Fatalf("Save(%s, %v) = %v; want nil", st.email, st.seen, err)
		}
		got, err := s.Get(ctx, "a1")
		if err != nil || got.Email != st.want || got.Account != "alice" {
			t.Errorf("Get after Save(%s, %v) = %+v, %v; want email %s of alice", st.email, st.seen, got, err, st.want)
		}
	}
}

// TestContactsConcurrentSavesKeepTheNewest runs the store as on MongoDB
// (version-guarded writes) and as on the embedded FerretDB (SingleWriter:
// writes by _id alone, serialized in this process).
func TestContactsConcurrentSavesKeepTheNewest(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, opts := range [][]docstore.Option{nil, {docstore.SingleWriter()}} {
		s := NewContacts(docstore.New[Contact](db.Collection("contacts"), "contact", opts...))
		app := fmt.Sprintf("a%d", len(opts))
		// Events of one application handled at once, as by replicas: the
		// newest must win whatever the order of the writes.
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Save(ctx, domain.Contact{Application: app, Account: "alice", Email: fmt.Sprintf("e%d@example.com", i), Seen: t0.Add(time.Duration(i) * time.Minute)})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Save (single writer %v) = %v; want nil", opts != nil, err)
			}
		}
		got, err := s.Get(ctx, app)
		if want := fmt.Sprintf("e%d@example.com", n-1); err != nil || got.Email != want || !got.Seen.Equal(t0.Add((n-1)*time.Minute)) {
			t.Errorf("Get after concurrent saves (single writer %v) = %+v, %v; want %s, the newest", opts != nil, got, err, want)
		}
	}
}
