package docstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

type listed struct {
	State string
	Tags  []string
	Items []struct{ State string }
	When  time.Time
}

var listedFields = []string{"doc.state", "doc.tags", "doc.items.state", "doc.when"}

// TestMemoryListIndexAgreesWithTheDatabase: pages through the memory list
// index (filled from records an earlier process wrote, by the relay's start
// sweep or by FillListIndex for a store without a relay, then kept by this
// one's writes) are the pages the database gives for the same filters,
// position by position, newest first and oldest first, for each account
// and for every account's list.
func TestMemoryListIndexAgreesWithTheDatabase(t *testing.T) {
	for _, fill := range []struct {
		name  string
		relay bool
	}{{"relay start sweep", true}, {"FillListIndex", false}} {
		t.Run(fill.name, func(t *testing.T) { testMemoryListIndexAgrees(t, fill.relay) })
	}
}

func testMemoryListIndexAgrees(t *testing.T, withRelay bool) {
	db, _ := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rnd := rand.New(rand.NewPCG(7, 7))
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		// Several records share a millisecond: ties are broken by _id.
		at = at.Add(time.Duration(rnd.IntN(3)) * time.Millisecond)
		return at
	}
	states := []string{"NEW", "DONE", "FAILED", ""}
	mk := func(i int) listed {
		l := listed{State: states[rnd.IntN(len(states))], When: at.Add(time.Duration(rnd.IntN(100)) * time.Hour)}
		for range rnd.IntN(3) {
			l.Tags = append(l.Tags, fmt.Sprint("t", rnd.IntN(4)))
		}
		for range rnd.IntN(3) {
			l.Items = append(l.Items, struct{ State string }{states[rnd.IntN(len(states))]})
		}
		return l
	}
	accounts := []string{"a", "b", "c"}
	// An earlier process wrote these.
	earlier := docstore.New[listed](db.Collection("listed"), "listed", docstore.SingleWriter(), docstore.WithClock(clock))
	for i := range 150 {
		if _, _, err := earlier.Create(ctx, fmt.Sprintf("r%03d", rnd.IntN(1000)*1000+i), accounts[i%3], mk(i), ev(fmt.Sprint("early", i))); err != nil {
			t.Fatal(err)
		}
	}
	opts := []docstore.Option{docstore.SingleWriter(), docstore.WithClock(clock), docstore.ReadCache(1 << 20),
		docstore.MemoryListIndex(listedFields...), docstore.MemoryListEveryAccount()}
	var s *docstore.Store[listed]
	if withRelay {
		relay := docstore.NewRelay(&flaky{}, testenv.Logger(t), 10*time.Millisecond)
		relay.SingleWriter()
		s = docstore.New[listed](db.Collection("listed"), "listed", append(opts, docstore.WithRelay(relay))...)
		testenv.Run(t, relay.Run)
	} else {
		s = docstore.New[listed](db.Collection("listed"), "listed", opts...)
		if s.MemIndexReady() {
			t.Fatal("the memory index is ready before FillListIndex")
		}
		if err := s.FillListIndex(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for !s.MemIndexReady() {
		if ctx.Err() != nil {
			t.Fatal("the memory index never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And this one writes more, and changes some.
	var ids []string
	for i := range 150 {
		id := fmt.Sprintf("s%03d", i)
		ids = append(ids, id)
		if _, _, err := s.Create(ctx, id, accounts[i%3], mk(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids[:60] {
		if _, err := s.Update(ctx, "", id, func(l *listed) ([]events.Event, error) {
			*l = mk(0)
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// And removes some of its own and some of the earlier process's.
	early, err := earlier.Find(ctx, bson.D{}, 20)
	if err != nil || len(early) != 20 {
		t.Fatalf("Find = %d records, %v; want 20", len(early), err)
	}
	removed := ids[60:80]
	for _, r := range early {
		removed = append(removed, r.ID)
	}
	for _, id := range removed {
		if err := s.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	mid := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	filters := []bson.D{
		nil,
		{{Key: "doc.state", Value: "DONE"}},
		{{Key: "doc.state", Value: bson.D{{Key: "$in", Value: bson.A{"NEW", ""}}}}},
		{{Key: "doc.tags", Value: "t1"}},
		{{Key: "doc.items.state", Value: "FAILED"}},
		{{Key: "doc.when", Value: bson.D{{Key: "$lt", Value: mid}}}},
		{{Key: "doc.when", Value: bson.D{{Key: "$gte", Value: mid}}}, {Key: "doc.state", Value: "NEW"}},
		{{Key: "doc.state", Value: "NO SUCH STATE"}},
	}
	for _, acct := range append(accounts, "") {
		for _, c := range slices.Concat(
			mapSlice(filters, func(f bson.D) docstore.ListOptions { return docstore.ListOptions{Filter: f} }),
			mapSlice(filters, func(f bson.D) docstore.ListOptions { return docstore.ListOptions{Filter: f, OldestFirst: true} })) {
			f := c.Filter
			var after *docstore.Position
			for page := 0; ; page++ {
				o := docstore.ListOptions{Filter: f, After: after, Limit: 7, OldestFirst: c.OldestFirst}
				list := func(ctx context.Context, o docstore.ListOptions) ([]*docstore.Record[listed], bool, error) {
					return s.List(ctx, acct, o)
				}
				if acct == "" {
					list = s.ListEveryAccount
				}
				got, gotMore, err := list(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				want, wantMore, err := s.ListDB(ctx, acct, o)
				if err != nil {
					t.Fatal(err)
				}
				if g, w := idsOf(got), idsOf(want); !slices.Equal(g, w) || gotMore != wantMore {
					t.Fatalf("account %q, filter %v, oldest first %v, page %d: memory index %v more=%v; database %v more=%v", acct, f, c.OldestFirst, page, g, gotMore, w, wantMore)
				}
				if !wantMore {
					break
				}
				p := docstore.PositionOf(want[len(want)-1])
				after = &p
			}
		}
	}
}

func mapSlice[A, B any](in []A, f func(A) B) []B {
	out := make([]B, len(in))
	for i, a := range in {
		out[i] = f(a)
	}
	return out
}

func idsOf(recs []*docstore.Record[listed]) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// A create that failed may or may not have been made: the memory index
// lists it as unknown, and a page reads it and leaves it out if absent.
func TestMemoryListIndexAfterAFailedCreate(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	relay := docstore.NewRelay(&flaky{}, testenv.Logger(t), 10*time.Millisecond)
	relay.SingleWriter()
	s := docstore.New[listed](db.Collection("listed"), "listed", docstore.SingleWriter(), docstore.WithRelay(relay),
		docstore.MemoryListIndex(listedFields...))
	testenv.Run(t, relay.Run)
	for !s.MemIndexReady() {
		if ctx.Err() != nil {
			t.Fatal("the memory index never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, err := s.Create(ctx, "kept", "a", listed{State: "NEW"}); err != nil {
		t.Fatal(err)
	}
	dead, stop := context.WithCancel(ctx)
	stop()
	if _, _, err := s.Create(dead, "lost", "a", listed{State: "NEW"}); err == nil {
		t.Fatal("Create with a cancelled context succeeded; the test needs a failed write")
	}
	for _, f := range []bson.D{nil, {{Key: "doc.state", Value: "NEW"}}} {
		got, more, err := s.List(ctx, "a", docstore.ListOptions{Filter: f, Limit: 10})
		if err != nil || more || !slices.Equal(idsOf(got), []string{"kept"}) {
			t.Fatalf("List(%v) = %v, more=%v, %v; want [kept]", f, idsOf(got), more, err)
		}
	}
}
