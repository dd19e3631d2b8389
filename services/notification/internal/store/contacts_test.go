package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestContacts(t *testing.T) {
	db, _ := testenv.Database(t)
	s := NewContacts(db.Collection("contacts"))
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
