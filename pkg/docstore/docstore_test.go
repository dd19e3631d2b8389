package docstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type widget struct {
	State string
	Count int
}

func ev(id string) events.Event {
	return events.Event{ID: id, Type: "certflow.widget.changed", Source: "//certflow/test", Subject: "widgets/1", Time: time.Now().UTC(), Data: []byte(id)}
}

func TestCreateGetUpdate(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	s := docstore.New[widget](db.Collection("widgets"), "widget")

	rec, created, err := s.Create(ctx, "w1", "acct-a", widget{State: "NEW"}, ev("e1"))
	if err != nil || !created {
		t.Fatalf("Create = %v, %v; want created", created, err)
	}
	again, created, err := s.Create(ctx, "w1", "acct-a", widget{State: "OTHER"})
	if err != nil || created || again.Doc.State != "NEW" {
		t.Fatalf("Create again = %+v, %v, %v; want the first record, not created", again, created, err)
	}
	if _, _, err := s.Create(ctx, "w1", "acct-b", widget{}); !errors.Is(err, apierr.ErrAlreadyExists) {
		t.Fatalf("Create by another account = %v; want AlreadyExists", err)
	}
	if _, err := s.Get(ctx, "acct-b", "w1"); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("Get by another account = %v; want NotFound", err)
	}

	got, err := s.Update(ctx, "acct-a", "w1", func(w *widget) ([]events.Event, error) {
		w.State = "DONE"
		return []events.Event{ev("e2")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Doc.State != "DONE" || got.Revision != rec.Revision+1 || len(got.Outbox) != 2 {
		t.Fatalf("Update = %+v; want state DONE, revision+1, two events in outbox", got)
	}

	refused := errors.New("refused")
	if _, err := s.Update(ctx, "acct-a", "w1", func(w *widget) ([]events.Event, error) {
		w.State = "BROKEN"
		return nil, refused
	}); !errors.Is(err, refused) {
		t.Fatalf("Update with refusing mutation = %v; want %v", err, refused)
	}
	after, _ := s.Get(ctx, "acct-a", "w1")
	if after.Doc.State != "DONE" {
		t.Fatalf("state after refused update = %q; want DONE unchanged", after.Doc.State)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []docstore.Option
	}{
		{"version filter", nil},
		{"single writer", []docstore.Option{docstore.SingleWriter()}},
		{"single writer deciding on the read cache", []docstore.Option{docstore.SingleWriter(), docstore.ReadCache(1 << 20)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := testenv.Database(t)
			ctx := context.Background()
			s := docstore.New[widget](db.Collection("widgets"), "widget", tt.opts...)
			if _, _, err := s.Create(ctx, "w", "a", widget{}); err != nil {
				t.Fatal(err)
			}
			const n = 8
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.Update(ctx, "a", "w", func(w *widget) ([]events.Event, error) {
						w.Count++
						return nil, nil
					}); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got, _ := s.Get(ctx, "a", "w")
			if got.Doc.Count != n {
				t.Fatalf("Count after %d concurrent increments = %d", n, got.Doc.Count)
			}
		})
	}
}

// The relay publishes each outbox event once, in order, with CloudEvents
// headers, and clears the outbox; a second pass publishes nothing new.
func TestRelayPublishesOutbox(t *testing.T) {
	db, _ := testenv.Database(t)
	conn := testenv.Conn(t, testenv.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s := docstore.New[widget](db.Collection("widgets"), "widget")
	if _, _, err := s.Create(ctx, "w", "a", widget{}, ev("e1"), ev("e2")); err != nil {
		t.Fatal(err)
	}
	relay := docstore.NewRelay(conn, testenv.Logger(t), time.Hour)
	relay.Watch(s.Collection())
	if err := relay.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	// A crash after publishing but before clearing is a second publish of
	// the same events: JetStream must drop them.
	for _, id := range []string{"e1", "e2"} {
		if err := conn.Publish(ctx, ev(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := relay.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.Get(ctx, "a", "w")
	if len(rec.Outbox) != 0 {
		t.Fatalf("outbox after relay = %d events; want 0", len(rec.Outbox))
	}
	stream, err := conn.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages; want 2 (duplicates dropped)", info.State.Msgs)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(events.HeaderID) != "e1" || msg.Header.Get(jetstream.MsgIDHeader) != "e1" ||
		msg.Header.Get(events.HeaderSpecVersion) != "1.0" || msg.Header.Get(events.HeaderContentType) != events.ContentType {
		t.Fatalf("first message headers = %v; want CloudEvents binary mode for e1", msg.Header)
	}
}

// A service restarts against its existing database: indexes already exist
// and data survives (the embedded database is file-backed).
func TestRestartKeepsDataAndIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a database")
	}
	dir := t.TempDir()
	ctx := context.Background()
	extra := mongo.IndexModel{Keys: bson.D{{Key: "account", Value: 1}, {Key: "doc.state", Value: 1}, {Key: "created", Value: -1}}}
	for run := 0; run < 2; run++ {
		srv, err := embedded.StartMongo("127.0.0.1:0", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
		if err != nil {
			t.Fatal(err)
		}
		s := docstore.New[widget](client.Database("restart").Collection("widgets"), "widget")
		if err := s.EnsureIndexes(ctx, extra); err != nil {
			t.Fatalf("run %d: EnsureIndexes = %v", run, err)
		}
		if run == 0 {
			if _, _, err := s.Create(ctx, "w", "a", widget{State: "KEPT"}); err != nil {
				t.Fatal(err)
			}
		} else if got, err := s.Get(ctx, "a", "w"); err != nil || got.Doc.State != "KEPT" {
			t.Fatalf("after restart Get = %v, %v; want the record", got, err)
		}
		_ = client.Disconnect(ctx)
		srv.Close()
	}
}

// Writes are published at once through Notify, without waiting for a sweep.
func TestRelayPublishesOnWrite(t *testing.T) {
	db, _ := testenv.Database(t)
	conn := testenv.Conn(t, testenv.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	relay := docstore.NewRelay(conn, testenv.Logger(t), time.Hour) // no sweep after the first
	s := docstore.New[widget](db.Collection("widgets"), "widget", docstore.WithRelay(relay))
	testenv.Run(t, relay.Run)
	if _, _, err := s.Create(ctx, "w", "a", widget{}, ev("c1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "a", "w", func(w *widget) ([]events.Event, error) { return []events.Event{ev("c2")}, nil }); err != nil {
		t.Fatal(err)
	}
	stream, _ := conn.JS.Stream(ctx, events.Stream)
	for {
		info, _ := stream.Info(ctx)
		if info.State.Msgs == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream holds %d messages; want 2 published without a sweep", info.State.Msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUpsertAndUpdateEach(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	s := docstore.New[widget](db.Collection("widgets"), "widget")
	larger := func(n int) func(cur *widget) bool {
		return func(cur *widget) bool {
			if cur.Count >= n {
				return false
			}
			cur.Count = n
			return true
		}
	}
	for _, step := range []struct{ n, want int }{{3, 3}, {1, 3}, {5, 5}} {
		rec, err := s.Upsert(ctx, "u", "a", widget{Count: step.n}, larger(step.n))
		if err != nil || rec.Doc.Count != step.want {
			t.Fatalf("Upsert(%d) = %v, %v; want count %d", step.n, rec, err, step.want)
		}
	}
	for i, state := range []string{"X", "X", "Y"} {
		if _, _, err := s.Create(ctx, fmt.Sprintf("e%d", i), "a", widget{State: state}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _ = s.Create(ctx, "other", "b", widget{State: "X"})
	got, err := s.UpdateEach(ctx, "a", bson.D{{Key: "doc.state", Value: "X"}}, func(r *docstore.Record[widget]) ([]events.Event, error) {
		r.Doc.Count++
		return nil, nil
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("UpdateEach(state X of a) = %d records, %v; want 2", len(got), err)
	}
	if other, _ := s.Get(ctx, "b", "other"); other.Doc.Count != 0 {
		t.Fatalf("UpdateEach touched another account's record")
	}
}

// flaky fails its first fail publishes, then records what it publishes.
type flaky struct {
	mu   sync.Mutex
	fail int
	got  []string
}

func (p *flaky) Publish(_ context.Context, e events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return errors.New("broker unavailable")
	}
	p.got = append(p.got, e.ID)
	return nil
}

func (p *flaky) published() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// A single-writer relay sweeps once at start, for what an earlier process
// left; after that it retries a failed publish by _id and never scans the
// collection again (a scan costs in proportion to the stored data), so a
// record written behind its back stays unpublished.
func TestSingleWriterRelaySweepsOnlyAtStart(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := &flaky{fail: 1} // the start sweep fails once: it sweeps again
	relay := docstore.NewRelay(pub, testenv.Logger(t), 10*time.Millisecond)
	relay.SingleWriter()
	s := docstore.New[widget](db.Collection("widgets"), "widget", docstore.WithRelay(relay), docstore.SingleWriter())
	left := docstore.Record[widget]{ID: "left", Account: "a", Version: 1, Revision: 1, Outbox: []events.Event{ev("l1")}}
	if _, err := s.Collection().InsertOne(ctx, left); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, relay.Run)
	waitOutboxEmpty(ctx, t, s, "left")
	pub.mu.Lock()
	pub.fail = 2
	pub.mu.Unlock()
	if _, _, err := s.Create(ctx, "w", "a", widget{}, ev("f1")); err != nil {
		t.Fatal(err)
	}
	waitOutboxEmpty(ctx, t, s, "w") // the first two attempts failed: retried by _id
	if got := pub.published(); len(got) != 2 || got[0] != "l1" || got[1] != "f1" {
		t.Fatalf("published %v; want [l1 f1]", got)
	}
	hidden := docstore.Record[widget]{ID: "hidden", Account: "a", Version: 1, Revision: 1, Outbox: []events.Event{ev("h1")}}
	if _, err := s.Collection().InsertOne(ctx, hidden); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * 10 * time.Millisecond) // a hundred ticks
	if rec, err := s.Get(ctx, "a", "hidden"); err != nil || len(rec.Outbox) != 1 {
		t.Fatalf("hidden record after a hundred ticks = %+v, %v; want its outbox untouched (no scan)", rec, err)
	}
}

func waitOutboxEmpty(ctx context.Context, t *testing.T, s *docstore.Store[widget], id string) {
	t.Helper()
	for {
		rec, err := s.Get(ctx, "a", id)
		if err == nil && len(rec.Outbox) == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("outbox of %s not published: %v, %v", id, rec, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestListAfter: keyset pages (After) walk every record once, newest
// first, ties on the creation time broken by _id, even when records are
// added while paging.
func TestListAfter(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	s := docstore.New[widget](db.Collection("widgets"), "widget", docstore.WithClock(clock))
	for i := range 5 {
		if i == 3 {
			at = at.Add(time.Second) // two distinct times, ties within each
		}
		if _, _, err := s.Create(ctx, fmt.Sprintf("w%d", i), "a", widget{Count: i}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	var after *docstore.Position
	for pages := 0; ; pages++ {
		recs, more, err := s.List(ctx, "a", docstore.ListOptions{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			seen = append(seen, r.ID)
		}
		if pages == 0 {
			// Newer than everything listed: not on the pages that follow.
			at = at.Add(time.Second)
			if _, _, err := s.Create(ctx, "w9", "a", widget{}); err != nil {
				t.Fatal(err)
			}
		}
		if !more {
			break
		}
		p := docstore.PositionOf(recs[len(recs)-1])
		after = &p
	}
	if got, want := fmt.Sprint(seen), "[w4 w3 w2 w1 w0]"; got != want {
		t.Fatalf("keyset pages = %s; want %s", got, want)
	}
}

// TestUpdateEachPagesByKeyset: UpdateEach visits every matching record
// once across its pages of 500, even when fn takes records out of the
// filter (an offset would then skip the records that moved up) and every
// record was created at the same instant (the pages break ties by _id).
func TestUpdateEachPagesByKeyset(t *testing.T) {
	db, _ := testenv.Database(t)
	ctx := context.Background()
	// Writes by _id alone: a version-guarded write scans on FerretDB.
	s := docstore.New[widget](db.Collection("widgets"), "widget", docstore.SingleWriter())
	const n = 700
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var batch []any
	for i := range n {
		batch = append(batch, docstore.Record[widget]{ID: fmt.Sprintf("w%05d", i), Account: "a", Version: 1, Revision: 1,
			Created: at, Updated: at, Outbox: []events.Event{}, Doc: widget{State: "X"}})
	}
	batch = append(batch, docstore.Record[widget]{ID: "other", Account: "b", Version: 1, Revision: 1,
		Created: at, Updated: at, Outbox: []events.Event{}, Doc: widget{State: "X"}})
	if _, err := s.Collection().InsertMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	visits := map[string]int{}
	got, err := s.UpdateEach(ctx, "a", bson.D{{Key: "doc.state", Value: "X"}}, func(r *docstore.Record[widget]) ([]events.Event, error) {
		visits[r.ID]++
		r.Doc.State = "Y"
		return nil, nil
	})
	if err != nil || len(got) != n || len(visits) != n {
		t.Fatalf("UpdateEach = %d records, %d visited, %v; want %d", len(got), len(visits), err, n)
	}
	for id, k := range visits {
		if k != 1 || id == "other" {
			t.Fatalf("UpdateEach visited %s %d times; want each of a's once", id, k)
		}
	}
}

// gated holds each publish until the test lets it go.
type gated struct {
	started chan string
	release chan struct{}
	flaky
}

func (g *gated) Publish(ctx context.Context, e events.Event) error {
	g.started <- e.ID
	<-g.release
	return g.flaky.Publish(ctx, e)
}

// A write without events that lands while the relay publishes the record's
// outbox queues nothing of its own; the relay still clears the outbox
// (at a later tick), so it is not published again at every start. Both
// writers: by _id alone on the embedded default, by version on MongoDB.
func TestRelayClearsAnOutboxWrittenWhilePublishing(t *testing.T) {
	for _, single := range []bool{true, false} {
		t.Run(fmt.Sprint("single writer ", single), func(t *testing.T) {
			db, _ := testenv.Database(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Buffered: a republish of c1 is allowed (JetStream drops it).
			pub := &gated{started: make(chan string, 100), release: make(chan struct{})}
			relay := docstore.NewRelay(pub, testenv.Logger(t), 20*time.Millisecond)
			opts := []docstore.Option{docstore.WithRelay(relay)}
			if single {
				relay.SingleWriter()
				opts = append(opts, docstore.SingleWriter())
			}
			s := docstore.New[widget](db.Collection("widgets"), "widget", opts...)
			testenv.Run(t, relay.Run)
			if _, _, err := s.Create(ctx, "w", "a", widget{}, ev("c1")); err != nil {
				t.Fatal(err)
			}
			if got := <-pub.started; got != "c1" {
				t.Fatalf("published %s first; want c1", got)
			}
			if _, err := s.Update(ctx, "a", "w", func(w *widget) ([]events.Event, error) {
				w.Count++
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			close(pub.release) // the relay's clear now finds a newer version
			for deadline := time.Now().Add(10 * time.Second); ; {
				var rec struct {
					Pending bool           `bson:"pending"`
					Outbox  []events.Event `bson:"outbox"`
				}
				if err := db.Collection("widgets").FindOne(ctx, bson.D{{Key: "_id", Value: "w"}}).Decode(&rec); err != nil {
					t.Fatal(err)
				}
				if !rec.Pending && len(rec.Outbox) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the outbox was never cleared: %v", rec.Outbox)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got := pub.published(); !slices.Contains(got, "c1") {
				t.Fatalf("published %v; want c1", got)
			}
			r, err := s.Get(ctx, "a", "w")
			if err != nil || r.Doc.Count != 1 {
				t.Fatalf("Get = %+v, %v; want the update kept", r, err)
			}
		})
	}
}
