package app_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/order/internal/app"
	"github.com/certflow/certflow/services/order/internal/domain"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// counted is the order store, counting the records its reads return.
type counted struct {
	*docstore.Store[domain.Order]
	read int
}

func (c *counted) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Order], error) {
	r, err := c.Store.Get(ctx, account, id)
	if err == nil {
		c.read++
	}
	return r, err
}

func (c *counted) List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Order], bool, error) {
	recs, more, err := c.Store.List(ctx, account, o)
	c.read += len(recs)
	return recs, more, err
}

// TestListInstancesReadsOnlyItsPage: a page of instances, on page 1 or
// deep in an account of 40 orders (one of them with 3 instances, one
// other account's), reads the token's order and at most page_size orders
// after it, whatever the state filter; following the pages gives every
// instance of the state once.
func TestListInstancesReadsOnlyItsPage(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	store := &counted{Store: docstore.New[domain.Order](db.Collection("orders"), "order", docstore.WithClock(clock), docstore.SingleWriter())}
	if err := store.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	a := app.New(store, clock)
	var all, applying []string // newest first
	for i := range 40 {
		at = at.Add(time.Second)
		qty := 1
		if i == 20 {
			qty = 3
		}
		rec, err := a.CreateOrder(ctx, "alice", fmt.Sprint("r", i), "dv-single-1y", qty, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ins []string
		for _, in := range rec.Doc.Instances {
			ins = append(ins, in.ID)
		}
		if i%7 == 0 {
			if _, err := a.BindInstance(ctx, "alice", ins[0], "applications/x"); err != nil {
				t.Fatal(err)
			}
			applying = append([]string{ins[0]}, applying...)
		}
		all = append(ins, all...)
		if _, err := a.CreateOrder(ctx, "bob", fmt.Sprint("r", i), "dv-single-1y", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		state domain.InstanceState
		want  []string
	}{
		{"", all},
		{domain.InstanceState("APPLYING"), applying},
	} {
		for _, size := range []int64{1, 5, 50} {
			var got []string
			var after *app.InstancePosition
			for pages := 0; ; pages++ {
				if pages > len(tt.want) {
					t.Fatalf("state %q, size %d: paging does not end", tt.state, size)
				}
				store.read = 0
				page, more, err := a.ListInstances(ctx, "alice", tt.state, after, size)
				if err != nil {
					t.Fatal(err)
				}
				// The token's order and at most size more.
				if limit := int(size) + 1; store.read > limit {
					t.Errorf("state %q, size %d, page %d read %d orders; want at most %d", tt.state, size, pages+1, store.read, limit)
				}
				for _, v := range page {
					got = append(got, v.ID)
				}
				if !more {
					break
				}
				last := page[len(page)-1]
				after = &app.InstancePosition{OrderCreated: last.OrderCreated, Instance: last.ID}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("state %q, size %d: pages = %v; want %v", tt.state, size, got, tt.want)
			}
		}
	}
}
