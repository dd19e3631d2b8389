package docstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
)

// benchDocs is how many records the by-_id benchmarks keep in the
// collection: enough that a scan shows.
const benchDocs = 20_000

// BenchmarkByID reads and updates random records by _id in a collection
// of benchDocs, as the services do: on the embedded FerretDB with the _id
// index embedded.StartMongo adds, without it (FerretDB as it comes), and
// on MongoDB when CERTFLOW_TEST_MONGO_URI is set.
//
//	go test -run '^$' -bench ByID -benchtime 2s ./pkg/docstore
func BenchmarkByID(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a database")
	}
	type target struct {
		name string
		s    *docstore.Store[widget]
	}
	var targets []target
	for _, tt := range []struct {
		name string
		opts []embedded.MongoOption
	}{
		{"ferretdb", nil},
		{"ferretdb-without-id-index", []embedded.MongoOption{embedded.WithoutIDIndexes()}},
	} {
		srv, err := embedded.StartMongo("127.0.0.1:0", b.TempDir(), nil, tt.opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
		if err != nil {
			b.Fatal(err)
		}
		defer client.Disconnect(context.Background())
		s := docstore.New[widget](client.Database("bench").Collection("widgets"), "widget", docstore.SingleWriter())
		seed(b, s)
		if len(tt.opts) == 0 {
			if err := srv.IndexIDs(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		targets = append(targets, target{tt.name, s})
	}
	if os.Getenv(testenv.MongoEnv) != "" {
		db, _ := testenv.Database(b)
		s := docstore.New[widget](db.Collection("widgets"), "widget")
		seed(b, s)
		targets = append(targets, target{"mongodb", s})
	}
	ctx := context.Background()
	for _, tg := range targets {
		b.Run("FindByID/"+tg.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tg.s.Get(ctx, "acct", benchID(rand.IntN(benchDocs))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, tg := range targets {
		b.Run("UpdateByID/"+tg.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tg.s.Update(ctx, "acct", benchID(rand.IntN(benchDocs)), func(w *widget) ([]events.Event, error) {
					w.Count++
					return nil, nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScans measures, at benchDocs records, the query shapes that
// FerretDB v1 cannot push down to SQLite (any filter but exactly {_id: …}):
// it reads and decodes the whole collection for each. These are the
// periodic sweeps (the relay's outbox sweep, a due-time sweep like
// verification's and notification's) and a list page.
//
//	go test -run '^$' -bench Scans ./pkg/docstore
func BenchmarkScans(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a database")
	}
	s := ferretStore(b)
	seed(b, s)
	ctx := context.Background()
	relay := docstore.NewRelay(nil, testenv.Logger(b), time.Hour)
	relay.Watch(s.Collection())
	b.Run("RelaySweep/ferretdb", func(b *testing.B) {
		for b.Loop() {
			if err := relay.Pass(ctx); err != nil { // no outbox is pending: nothing published
				b.Fatal(err)
			}
		}
	})
	b.Run("FindDue/ferretdb", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Find(ctx, bson.D{{Key: "doc.state", Value: "DUE"}, {Key: "updated", Value: bson.D{{Key: "$lte", Value: time.Now()}}}}, 200); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListPage/ferretdb", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.List(ctx, "acct", docstore.ListOptions{Limit: 20}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkListPages lists page 1 and page 1,000 (20 records a page) of
// an account's benchDocs records: by keyset (the page token's position)
// and, for comparison, by offset. On MongoDB (CERTFLOW_TEST_MONGO_URI) a
// keyset page is a scan of docstore.ListIndex from the position, so page
// 1,000 costs what page 1 does, while an offset walks past 19,980 index
// entries first. FerretDB v1 pushes no such filter down: it reads and
// decodes the whole collection for every page, whichever it is.
//
//	go test -run '^$' -bench ListPages ./pkg/docstore
func BenchmarkListPages(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a database")
	}
	type target struct {
		name    string
		s       *docstore.Store[widget]
		created time.Time
	}
	var targets []target
	s := ferretStore(b)
	created := seed(b, s)
	targets = append(targets, target{"ferretdb", s, created})
	// The embedded default's stores that customers list (applications,
	// orders, certificates) page through the memory index instead.
	relay := docstore.NewRelay(&flaky{}, testenv.Logger(b), time.Second)
	relay.SingleWriter()
	mem := docstore.New[widget](s.Collection(), "widget", docstore.SingleWriter(), docstore.WithRelay(relay),
		docstore.ReadCache(8<<20), docstore.MemoryListIndex("doc.state"))
	testenv.Run(b, relay.Run)
	for !mem.MemIndexReady() {
		time.Sleep(10 * time.Millisecond)
	}
	targets = append(targets, target{"ferretdb-memindex", mem, created})
	if os.Getenv(testenv.MongoEnv) != "" {
		db, _ := testenv.Database(b)
		s := docstore.New[widget](db.Collection("widgets"), "widget")
		targets = append(targets, target{"mongodb", s, seed(b, s)})
	}
	const size, pageN = 20, 1000
	ctx := context.Background()
	for _, tg := range targets {
		// Every record has the same creation time, so the listing is by
		// _id, highest first: page pageN starts at record size*(pageN-1)
		// and follows the one before it.
		first := benchID(benchDocs - 1 - size*(pageN-1))
		before := benchID(benchDocs - size*(pageN-1))
		for _, c := range []struct {
			name  string
			o     docstore.ListOptions
			first string
		}{
			{"Page1", docstore.ListOptions{Limit: size}, benchID(benchDocs - 1)},
			{"Page1000Keyset", docstore.ListOptions{Limit: size, After: &docstore.Position{Created: tg.created, ID: before}}, first},
			{"Page1000Offset", docstore.ListOptions{Limit: size, Offset: size * (pageN - 1)}, first},
		} {
			b.Run(c.name+"/"+tg.name, func(b *testing.B) {
				for b.Loop() {
					recs, _, err := tg.s.List(ctx, "acct", c.o)
					if err != nil {
						b.Fatal(err)
					}
					if len(recs) != size || recs[0].ID != c.first {
						b.Fatalf("page = %d records; want %d from %s", len(recs), size, c.first)
					}
				}
			})
		}
	}
}

// ferretStore is a store on an embedded FerretDB of its own, as the
// embedded default runs it (with the _id index), until b ends.
func ferretStore(b *testing.B) *docstore.Store[widget] {
	b.Helper()
	srv, err := embedded.StartMongo("127.0.0.1:0", b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return docstore.New[widget](client.Database("bench").Collection("widgets"), "widget", docstore.SingleWriter())
}

func benchID(i int) string { return fmt.Sprintf("bench%06d", i) }

// seed inserts benchDocs records of a few hundred bytes each, in batches,
// all created at the instant it returns.
func seed(b *testing.B, s *docstore.Store[widget]) time.Time {
	b.Helper()
	ctx := context.Background()
	if err := s.EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond) // as BSON stores it
	state := strings.Repeat("x", 300)
	var batch []any
	for i := range benchDocs {
		batch = append(batch, docstore.Record[widget]{ID: benchID(i), Account: "acct", Version: 1, Revision: 1,
			Created: now, Updated: now, Outbox: []events.Event{}, Doc: widget{State: state}})
		if len(batch) == 1000 || i == benchDocs-1 {
			if _, err := s.Collection().InsertMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return now
}
