package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/verification/internal/app"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// commands records the database commands of a client: each find's filter
// and how many documents each reply carried.
type commands struct {
	mu      sync.Mutex
	filters []bson.Raw // of find and findAndModify; update and delete never pass
	docs    int
}

func (c *commands) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.filters, c.docs = nil, 0
}

func (c *commands) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			key := map[string]string{"find": "filter", "findAndModify": "query", "update": "updates", "delete": "deletes"}[e.CommandName]
			if key == "" {
				return
			}
			f, _ := e.Command.Lookup(key).DocumentOK()
			c.mu.Lock()
			c.filters = append(c.filters, bson.Raw(f))
			c.mu.Unlock()
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			n := 0
			for _, k := range [][]string{{"cursor", "firstBatch"}, {"cursor", "nextBatch"}} {
				if a, ok := e.Reply.Lookup(k...).ArrayOK(); ok {
					vs, _ := a.Values()
					n += len(vs)
				}
			}
			if v, err := e.Reply.LookupErr("value"); err == nil && v.Type == bson.TypeEmbeddedDocument {
				n++
			}
			c.mu.Lock()
			c.docs += n
			c.mu.Unlock()
		},
	}
}

// byIDOnly reports whether every filter is exactly {_id: X}: the only
// query the embedded FerretDB answers without reading the collection.
func (c *commands) byIDOnly() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.filters {
		es, err := f.Elements()
		if err != nil || len(es) != 1 || es[0].Key() != "_id" || es[0].Value().Type == bson.TypeEmbeddedDocument {
			return fmt.Errorf("a query by %s, not by _id alone", f)
		}
	}
	return nil
}

func challengeStore(t testing.TB, cmds *commands) *docstore.Store[domain.Challenge] {
	t.Helper()
	uri := testenv.MongoURI(t)
	o := options.Client().ApplyURI(uri)
	if cmds != nil {
		o.SetMonitor(cmds.monitor())
	}
	client, err := mongo.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	db := client.Database(testenv.DBName(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = db.Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	return docstore.New[domain.Challenge](db.Collection("challenges"), "challenge", docstore.SingleWriter())
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// seedChallenges stores n challenges: every tenth pending but not due for
// an hour, the others verified.
func seedChallenges(t testing.TB, s *docstore.Store[domain.Challenge], n int) {
	t.Helper()
	ctx := context.Background()
	var batch []any
	for i := range n {
		c := domain.Challenge{
			Application: fmt.Sprintf("applications/a%d", i), Attempt: 1, Domain: fmt.Sprintf("d%d.example.test", i),
			Method: domain.DNSTXT, State: domain.Verified, RecordName: fmt.Sprintf("_certflow-challenge.d%d.example.test", i),
			Token: strings.Repeat("t", 43), CreateTime: t0.Add(-time.Hour), ExpireTime: t0.Add(7 * 24 * time.Hour),
			NextCheckTime: t0.Add(-time.Hour), VerifyTime: t0.Add(-time.Minute),
		}
		if i%10 == 0 {
			c.State, c.VerifyTime, c.NextCheckTime = domain.Pending, time.Time{}, t0.Add(time.Hour)
		}
		batch = append(batch, docstore.Record[domain.Challenge]{ID: fmt.Sprintf("seed%06d", i), Account: "acct", Version: 1, Revision: 1,
			Created: t0.Add(-time.Hour), Updated: t0.Add(-time.Hour), Outbox: []events.Event{}, Doc: c})
		if len(batch) == 1000 || i == n-1 {
			if _, err := s.Collection().InsertMany(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// notYet is a prover that never finds the proof.
type notYet struct{ checked sync.Map }

func (p *notYet) Prove(_ context.Context, c *domain.Challenge) error {
	p.checked.Store(c.Domain, true)
	return errors.New("no TXT record yet")
}

func (p *notYet) count() int {
	n := 0
	p.checked.Range(func(_, _ any) bool { n++; return true })
	return n
}

var policy = domain.Policy{Lifetime: 7 * 24 * time.Hour, RetryInitial: 10 * time.Second, RetryMax: 10 * time.Minute}

// indexStore is the challenge index collection beside store's.
func indexStore(store *docstore.Store[domain.Challenge]) *docstore.Store[domain.ChallengeIndex] {
	return docstore.New[domain.ChallengeIndex](store.Collection().Database().Collection("challenge_indexes"), "challenge index", docstore.SingleWriter())
}

// index lists a challenge written straight to the store in its
// application's index, as App.Create does.
func index(t testing.TB, x *docstore.Store[domain.ChallengeIndex], account, id string, c domain.Challenge) {
	t.Helper()
	ref := domain.ChallengeRef{Attempt: c.Attempt, Domain: c.Domain, ID: id}
	if _, err := x.Upsert(context.Background(), app.ChallengeIndexID(account, c.Application), account,
		domain.ChallengeIndex{Application: c.Application, Challenges: []domain.ChallengeRef{ref}},
		func(cur *domain.ChallengeIndex) bool { return cur.Add(ref) }); err != nil {
		t.Fatal(err)
	}
}

func newApp(s app.Challenges, x app.ChallengeIndexes, due app.DueChallenges, p app.Prover, now func() time.Time) *app.App {
	return app.New(s, x, due, nil, p, nil, nil, nil, policy, now, slog.New(slog.DiscardHandler))
}

func pending(domainName string, next time.Time) domain.Challenge {
	return domain.Challenge{
		Application: "applications/" + domainName, Attempt: 1, Domain: domainName, Method: domain.DNSTXT, State: domain.Pending,
		RecordName: "_certflow-challenge." + domainName, Token: strings.Repeat("t", 43),
		CreateTime: t0, ExpireTime: t0.Add(7 * 24 * time.Hour), NextCheckTime: next,
	}
}

// On the single-writer database, the sweep reads only the due challenges,
// by _id, however many others are stored; a restart reloads the pending
// ones, and a challenge no longer pending is not checked.
func TestQueuedSweepReadsOnlyDue(t *testing.T) {
	cmds := &commands{}
	store := challengeStore(t, cmds)
	seedChallenges(t, store, 2000)
	ctx := context.Background()
	now := t0
	clock := func() time.Time { return now }

	q := app.NewQueuedChallenges(store)
	if err := q.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 200 {
		t.Fatalf("loaded %d pending challenges; want 200", q.Len())
	}
	prover := &notYet{}
	x := indexStore(store)
	a := newApp(q, x, q, prover, clock)
	for _, d := range []string{"due1.example.test", "due2.example.test", "due3.example.test"} {
		if _, _, err := q.Create(ctx, "id-"+d, "acct", pending(d, t0)); err != nil {
			t.Fatal(err)
		}
	}
	gone := pending("gone.example.test", t0)
	index(t, x, "acct", "id-gone", gone)
	if _, _, err := q.Create(ctx, "id-gone", "acct", gone); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cancel(ctx, "acct", "applications/gone.example.test"); err != nil {
		t.Fatal(err)
	}

	cmds.reset()
	n, err := a.Sweep(ctx, 4)
	if err != nil || n != 3 || prover.count() != 3 {
		t.Fatalf("Sweep = %d, %v (%d checked); want the 3 due", n, err, prover.count())
	}
	if err := cmds.byIDOnly(); err != nil {
		t.Fatalf("the sweep made %v", err)
	}
	if cmds.docs > 3*3 {
		t.Fatalf("the sweep read %d documents; want at most 9 (3 due, each read and rewritten)", cmds.docs)
	}
	if _, ok := prover.checked.Load("gone.example.test"); ok {
		t.Fatalf("a cancelled challenge was checked")
	}

	// Rescheduled 10 s on: nothing is due now, and nothing is read.
	cmds.reset()
	if n, err := a.Sweep(ctx, 4); err != nil || n != 0 || cmds.docs != 0 {
		t.Fatalf("second Sweep = %d, %v (%d documents read); want nothing", n, err, cmds.docs)
	}
	now = t0.Add(11 * time.Second)
	if n, err := a.Sweep(ctx, 4); err != nil || n != 3 {
		t.Fatalf("Sweep after the retry delay = %d, %v; want 3", n, err)
	}

	// A restart (a new queue, loaded from the database) forgets nothing:
	// the seeded pending challenges come due in an hour.
	q2 := app.NewQueuedChallenges(store)
	if err := q2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if q2.Len() != 203 {
		t.Fatalf("reloaded %d pending challenges; want 203", q2.Len())
	}
	now = t0.Add(2 * time.Hour)
	prover2 := &notYet{}
	a2 := newApp(q2, x, q2, prover2, clock)
	if n, err := a2.Sweep(ctx, 8); err != nil || n != 200 {
		t.Fatalf("Sweep after restart = %d, %v; want 200 (one batch)", n, err)
	}
	if n, err := a2.Sweep(ctx, 8); err != nil || n != 3 || prover2.count() != 203 {
		t.Fatalf("second Sweep after restart = %d, %v (%d checked in all); want 3 more, 203 in all", n, err, prover2.count())
	}
}

// The indexed query (MongoDB) and the queue find the same due challenges.
func TestIndexedAndQueuedDueAgree(t *testing.T) {
	store := challengeStore(t, nil)
	ctx := context.Background()
	q := app.NewQueuedChallenges(store)
	if err := q.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for i, next := range []time.Duration{-time.Minute, time.Minute, 0, -time.Hour} {
		d := fmt.Sprintf("c%d.example.test", i)
		if _, _, err := q.Create(ctx, "id-"+d, "acct", pending(d, t0.Add(next))); err != nil {
			t.Fatal(err)
		}
	}
	a, err := app.IndexedDue{Store: store}.Due(ctx, t0, 200)
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Due(ctx, t0, 200)
	if err != nil {
		t.Fatal(err)
	}
	got := func(rs []*docstore.Record[domain.Challenge]) map[string]bool {
		m := map[string]bool{}
		for _, r := range rs {
			m[r.ID] = true
		}
		return m
	}
	ga, gb := got(a), got(b)
	if len(ga) != 3 || len(gb) != 3 || !ga["id-c0.example.test"] || !gb["id-c0.example.test"] || gb["id-c1.example.test"] {
		t.Fatalf("indexed due %v, queued due %v; want c0, c2, c3 both", ga, gb)
	}
}

// BenchmarkSweep is one sweep with nothing due in a collection of 20,000
// challenges (2,000 pending, due in an hour; the rest verified), on the
// embedded FerretDB (or MongoDB with CERTFLOW_TEST_MONGO_URI): by the
// indexed query, as on MongoDB (and as on FerretDB before the queue), and
// by the in-memory due queue.
//
//	go test -run '^$' -bench Sweep ./internal/app
func BenchmarkSweep(b *testing.B) {
	store := challengeStore(b, nil)
	seedChallenges(b, store, 20_000)
	ctx := context.Background()
	clock := func() time.Time { return t0 }
	q := app.NewQueuedChallenges(store)
	if err := q.Load(ctx); err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name string
		s    app.Challenges
		due  app.DueChallenges
	}{
		{"indexed-query", store, app.IndexedDue{Store: store}},
		{"due-queue", q, q},
	} {
		b.Run(bb.name, func(b *testing.B) {
			a := newApp(bb.s, indexStore(store), bb.due, &notYet{}, clock)
			for b.Loop() {
				if n, err := a.Sweep(ctx, 8); err != nil || n != 0 {
					b.Fatalf("Sweep = %d, %v", n, err)
				}
			}
		})
	}
}
