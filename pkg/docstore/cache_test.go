package docstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

func cachedStore(t *testing.T, relay *docstore.Relay) *docstore.Store[widget] {
	db, _ := testenv.Database(t)
	opts := []docstore.Option{docstore.SingleWriter(), docstore.ReadCache(1 << 20)}
	if relay != nil {
		opts = append(opts, docstore.WithRelay(relay))
	}
	return docstore.New[widget](db.Collection("widgets"), "widget", opts...)
}

// TestReadCacheServesWhatWasWritten: the cache answers repeated reads, and
// every write (an update, the relay clearing the outbox, a delete) is seen by
// the next read; another account's record stays NotFound from the cache.
func TestReadCacheServesWhatWasWritten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	relay := docstore.NewRelay(&flaky{}, testenv.Logger(t), 10*time.Millisecond)
	relay.SingleWriter()
	s := cachedStore(t, relay)
	testenv.Run(t, relay.Run)

	if _, _, err := s.Create(ctx, "w", "a", widget{State: "NEW"}, ev("c1")); err != nil {
		t.Fatal(err)
	}
	waitOutboxEmpty(ctx, t, s, "w") // read until the relay's clear is seen
	before := s.CacheStats()
	for i := 0; i < 3; i++ {
		if r, err := s.Get(ctx, "a", "w"); err != nil || r.Doc.State != "NEW" {
			t.Fatalf("Get = %+v, %v; want state NEW", r, err)
		}
	}
	if st := s.CacheStats(); st.Hits-before.Hits < 2 {
		t.Fatalf("cache stats %+v after %+v; want at least two hits in three reads", st, before)
	}
	if _, err := s.Get(ctx, "b", "w"); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("Get by another account = %v; want NotFound", err)
	}

	if _, err := s.Update(ctx, "a", "w", func(w *widget) ([]events.Event, error) {
		w.State = "DONE"
		return []events.Event{ev("u1")}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Get(ctx, "a", "w"); err != nil || r.Doc.State != "DONE" {
		t.Fatalf("Get after update = %+v, %v; want state DONE", r, err)
	}
	waitOutboxEmpty(ctx, t, s, "w")

	if err := s.Delete(ctx, "a", "w"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a", "w"); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("Get after delete = %v; want NotFound", err)
	}
}

// TestRemoveIsSeenByTheCache: Remove (any account, idempotent) and
// RemoveMatching delete through the store, so a cached record is gone for
// the next read, and only the matching ones go.
func TestRemoveIsSeenByTheCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := cachedStore(t, nil)
	for i, st := range []string{"OLD", "OLD", "NEW", "OLD"} {
		if _, _, err := s.Create(ctx, fmt.Sprintf("w%d", i), "a", widget{State: st}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 { // cached
		for range 2 {
			if _, err := s.Get(ctx, "a", fmt.Sprintf("w%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Remove(ctx, "w0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "w0"); err != nil {
		t.Fatalf("Remove again = %v; want nil", err)
	}
	if _, err := s.Get(ctx, "a", "w0"); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("Get after Remove = %v; want NotFound", err)
	}
	n, err := s.RemoveMatching(ctx, bson.D{{Key: "doc.state", Value: "OLD"}})
	if err != nil || n != 2 {
		t.Fatalf("RemoveMatching = %d, %v; want 2", n, err)
	}
	for i, want := range []error{apierr.ErrNotFound, apierr.ErrNotFound, nil, apierr.ErrNotFound} {
		if _, err := s.Get(ctx, "a", fmt.Sprintf("w%d", i)); !errors.Is(err, want) && (want != nil || err != nil) {
			t.Errorf("Get w%d after RemoveMatching = %v; want %v", i, err, want)
		}
	}
}

// TestReadCacheNeverGoesBack: while writers increment a counter, every
// reader sees it only grow, and after the writers the final value; a fill
// that raced a write and kept older bytes would show as a step back.
func TestReadCacheNeverGoesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := cachedStore(t, nil)
	const records, writes = 4, 40
	for i := 0; i < records; i++ {
		if _, _, err := s.Create(ctx, fmt.Sprint("w", i), "a", widget{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg, readers sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 64)
	for i := 0; i < records; i++ {
		id := fmt.Sprint("w", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < writes; n++ {
				if _, err := s.Update(ctx, "a", id, func(w *widget) ([]events.Event, error) { w.Count++; return nil, nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
		for r := 0; r < 3; r++ {
			readers.Add(1)
			go func() {
				defer readers.Done()
				last := -1
				for {
					select {
					case <-done:
						return
					default:
					}
					rec, err := s.Get(ctx, "a", id)
					if err != nil {
						errs <- err
						return
					}
					if rec.Doc.Count < last {
						errs <- fmt.Errorf("%s: read %d after %d", id, rec.Doc.Count, last)
						return
					}
					last = rec.Doc.Count
				}
			}()
		}
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := 0; i < records; i++ {
		if rec, err := s.Get(ctx, "a", fmt.Sprint("w", i)); err != nil || rec.Doc.Count != writes {
			t.Fatalf("after the writers: %+v, %v; want count %d", rec, err, writes)
		}
	}
	if st := s.CacheStats(); st.Hits == 0 {
		t.Fatalf("cache stats %+v; want hits", st)
	}
}

// TestReadCacheDoesNotKeepAfterAFailedWrite: a write whose answer was lost
// may still be made, so reads of that record go to the database for a while.
func TestReadCacheDoesNotKeepAfterAFailedWrite(t *testing.T) {
	ctx := context.Background()
	s := cachedStore(t, nil)
	if _, _, err := s.Create(ctx, "w", "a", widget{}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	if _, err := s.Update(wctx, "a", "w", func(w *widget) ([]events.Event, error) {
		cancel() // the write is then refused by the driver: an error, as if the connection broke
		w.State = "LOST"
		return nil, nil
	}); err == nil {
		t.Fatal("Update with a cancelled context succeeded; the test needs a failed write")
	}
	before := s.CacheStats()
	for i := 0; i < 3; i++ {
		if _, err := s.Get(ctx, "a", "w"); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.CacheStats(); st.Hits != before.Hits {
		t.Fatalf("cache stats %+v after %+v; want no hits after a failed write", st, before)
	}
}

// Without SingleWriter another process may write: ReadCache is ignored.
func TestReadCacheOnlyForASingleWriter(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	s := docstore.New[widget](db.Collection("widgets"), "widget", docstore.ReadCache(1<<20))
	if _, _, err := s.Create(ctx, "w", "a", widget{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Get(ctx, "a", "w"); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.CacheStats(); st != (docstore.CacheStats{}) {
		t.Fatalf("cache stats %+v; want none without SingleWriter", st)
	}
}

// TestReadCacheWriteThroughAgrees: updates decide on the bytes the last
// write left (write-through) while the relay clears outboxes in between;
// afterwards the database holds exactly what the cache does, no increment
// is lost and every event was published.
func TestReadCacheWriteThroughAgrees(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub := &flaky{}
	relay := docstore.NewRelay(pub, testenv.Logger(t), time.Millisecond)
	relay.SingleWriter()
	s := cachedStore(t, relay)
	plain := docstore.New[widget](s.Collection(), "widget") // reads the database only
	testenv.Run(t, relay.Run)
	const records, writes = 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, records)
	for i := 0; i < records; i++ {
		id := fmt.Sprint("w", i)
		if _, _, err := s.Create(ctx, id, "a", widget{}, ev(id+"-c")); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < writes; n++ {
				if _, err := s.Update(ctx, "a", id, func(w *widget) ([]events.Event, error) {
					w.Count++
					return []events.Event{ev(fmt.Sprintf("%s-%d", id, n))}, nil
				}); err != nil {
					errs <- err
					return
				}
				if n%7 == 0 {
					time.Sleep(2 * time.Millisecond) // let the relay clear in between
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < records; i++ {
		id := fmt.Sprint("w", i)
		waitOutboxEmpty(ctx, t, s, id)
		cached, err := s.Get(ctx, "a", id)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := plain.Get(ctx, "a", id)
		if err != nil {
			t.Fatal(err)
		}
		if cached.Version != stored.Version || cached.Revision != stored.Revision || cached.Doc != stored.Doc ||
			cached.Pending != stored.Pending || len(cached.Outbox) != len(stored.Outbox) || !cached.Updated.Equal(stored.Updated) {
			t.Errorf("%s: cache has %+v, the database %+v", id, cached, stored)
		}
		if stored.Doc.Count != writes || stored.Revision != writes+1 {
			t.Errorf("%s: count %d revision %d; want %d and %d", id, stored.Doc.Count, stored.Revision, writes, writes+1)
		}
	}
	for _, e := range pub.published() {
		seen[e] = true
	}
	for i := 0; i < records; i++ {
		for n := -1; n < writes; n++ {
			want := fmt.Sprintf("w%d-%d", i, n)
			if n < 0 {
				want = fmt.Sprintf("w%d-c", i)
			}
			if !seen[want] {
				t.Errorf("event %s was never published", want)
			}
		}
	}
	if st := s.CacheStats(); st.Hits < records*writes/2 {
		t.Errorf("cache stats %+v; want most updates decided on the held bytes", st)
	}
}
