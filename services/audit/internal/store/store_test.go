package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/audit/internal/domain"
	"github.com/certflow/certflow/services/audit/internal/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestMemoryIndexAgreesWithTheDatabase pages the trail through the memory
// index and through the database, for one account and every account, with
// each filter the API has, over records an earlier process wrote (filled
// at start) and records this one appended (several in one millisecond,
// one appended twice), and requires the same records and the same "more"
// on every page.
func TestMemoryIndexAgreesWithTheDatabase(t *testing.T) {
	ctx := context.Background()
	db, _ := testenv.Database(t)
	coll := db.Collection("audit_events")
	plain := store.New(coll)
	if err := plain.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	rec := func(i int) domain.Record {
		return domain.Record{
			ID:       fmt.Sprintf("ev-%03d", i),
			Account:  []string{"acme", "other", "third"}[i%3],
			Actor:    []string{"sha256:aa", "sha256:bb"}[i%2],
			Role:     "customer",
			Action:   []string{"application.create", "application.submit", "certificate.revoke", "order.create"}[i%4],
			Resource: fmt.Sprintf("applications/a%d", i%5),
			// Three records to a millisecond: the id breaks the tie.
			Time: t0.Add(time.Duration(i/3) * time.Millisecond),
		}
	}
	for i := range 30 { // an earlier process's
		if err := plain.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	mem := store.New(coll)
	mem.KeepMemoryIndex()
	// Before the fill, lists ask the database.
	if got, _, err := mem.List(ctx, domain.Query{Account: "acme"}, nil, 100); err != nil || len(got) != 10 {
		t.Fatalf("List before the fill = %d records, %v; want 10", len(got), err)
	}
	if err := mem.FillListIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 30; i < 60; i++ {
		if err := mem.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.Append(ctx, rec(45)); err != nil { // redelivered
		t.Fatal(err)
	}

	mid := t0.Add(10 * time.Millisecond)
	queries := map[string]domain.Query{
		"account":          {Account: "acme"},
		"every account":    {},
		"action":           {Account: "other", Action: "application.submit"},
		"resource":         {Resource: "applications/a2"},
		"actor":            {Account: "third", Actor: "sha256:bb"},
		"time >= and <":    {LowerOp: ">=", Lower: mid, UpperOp: "<", Upper: mid.Add(5 * time.Millisecond)},
		"time > and <=":    {Account: "acme", LowerOp: ">", Lower: mid, UpperOp: "<=", Upper: mid.Add(5 * time.Millisecond)},
		"none match":       {Account: "acme", Action: "no.such"},
		"no such account":  {Account: "nobody"},
		"action and actor": {Action: "order.create", Actor: "sha256:bb"},
	}
	for name, q := range queries {
		t.Run(name, func(t *testing.T) {
			a, b := pages(t, mem, q), pages(t, plain, q)
			if !slices.Equal(a, b) {
				t.Errorf("through the memory index:\n%v\nthrough the database:\n%v", a, b)
			}
		})
	}

	// The pages above came from the index: a record stored behind its
	// back (never by this process) is not on them.
	if err := plain.Append(ctx, domain.Record{ID: "ev-behind", Account: "acme", Action: "application.create", Resource: "applications/x", Time: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, _, err := mem.List(ctx, domain.Query{Account: "acme"}, nil, 1)
	if err != nil || len(got) != 1 || got[0].ID == "ev-behind" {
		t.Errorf("List(acme, 1) = %v, %v; want the newest record the index knows", got, err)
	}
}

// pages lists q three records a page to the end: each page's ids and its
// "more", as one string each.
func pages(t *testing.T, tr *store.Trail, q domain.Query) []string {
	t.Helper()
	var out []string
	var after *domain.Position
	for range 100 {
		recs, more, err := tr.List(context.Background(), q, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		out = append(out, fmt.Sprint(ids, more))
		if !more {
			return out
		}
		last := recs[len(recs)-1]
		after = &domain.Position{Time: last.Time, ID: last.ID}
	}
	t.Fatal("more than 100 pages")
	return nil
}
