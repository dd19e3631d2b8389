package embedded_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
)

// The query shapes pkg/docstore issues, each driven through the store as
// the services call it. Every statement the database runs for a shape is
// explained: FerretDB's SQL with SQLite's EXPLAIN QUERY PLAN on the
// embedded file, or the command with MongoDB's explain. A full scan fails
// the test unless the shape is listed as a known scan, with why.
type shape struct {
	name string
	run  func(ctx context.Context, f *fixture) error
	// knownScan says why the shape still reads the whole collection; ""
	// means it must not.
	knownScan string
	// indexedOnMongo: the known scan is FerretDB's alone; on MongoDB the
	// shape must use an index.
	indexedOnMongo bool
	// listIndex: on MongoDB its sorted finds are served in order by
	// docstore.ListIndex, with no SORT stage, and a find after a keyset
	// position scans that index from the position on (its bounds on
	// created are not open): a page costs the same on page 1 and page
	// 1,000.
	listIndex bool
}

type widget struct{ State string }

type fixture struct {
	s     *docstore.Store[widget]
	relay *docstore.Relay
	n     int
}

func (f *fixture) newID() string { f.n++; return fmt.Sprintf("w%04d", f.n) }

func (f *fixture) create(ctx context.Context, evs ...events.Event) (string, error) {
	id := f.newID()
	_, _, err := f.s.Create(ctx, id, "acct", widget{State: "NEW"}, evs...)
	return id, err
}

const noPushdown = "FerretDB v1 pushes down only a filter that is exactly {_id: …}; see issue 7"

var shapes = []shape{
	{name: "Create (insert)", run: func(ctx context.Context, f *fixture) error {
		_, err := f.create(ctx)
		return err
	}},
	{name: "Get (find by _id)", run: func(ctx context.Context, f *fixture) error {
		_, err := f.s.Get(ctx, "acct", "w0001")
		return err
	}},
	{name: "Update (find by _id, findAndModify by _id)", run: func(ctx context.Context, f *fixture) error {
		_, err := f.s.Update(ctx, "acct", "w0001", func(w *widget) ([]events.Event, error) { w.State = "DONE"; return nil, nil })
		return err
	}},
	{name: "Create of an existing id (insert, find by _id)", run: func(ctx context.Context, f *fixture) error {
		_, created, err := f.s.Create(ctx, "w0001", "acct", widget{})
		if err == nil && created {
			err = fmt.Errorf("created again")
		}
		return err
	}},
	{name: "Delete (find by _id, delete by _id)", run: func(ctx context.Context, f *fixture) error {
		id, err := f.create(ctx)
		if err != nil {
			return err
		}
		return f.s.Delete(ctx, "acct", id)
	}},
	{name: "relay publish (find by _id, update by _id) and sweep", knownScan: "the sweep's {outbox.0: {$exists: true}}: " + noPushdown + "; a single-writer relay sweeps only at start", indexedOnMongo: true,
		run: func(ctx context.Context, f *fixture) error {
			if _, err := f.create(ctx, events.Event{ID: "e" + f.newID(), Type: "certflow.widget.changed", Source: "//test", Subject: "w", Time: time.Now()}); err != nil {
				return err
			}
			return f.relay.Pass(ctx)
		}},
	{name: "List (account, newest first)", knownScan: noPushdown, listIndex: true, run: func(ctx context.Context, f *fixture) error {
		_, _, err := f.s.List(ctx, "acct", docstore.ListOptions{Limit: 10})
		return err
	}},
	{name: "List after a keyset position (a later page)", knownScan: noPushdown, listIndex: true, run: func(ctx context.Context, f *fixture) error {
		_, _, err := f.s.List(ctx, "acct", docstore.ListOptions{Limit: 10, After: &docstore.Position{Created: time.Now(), ID: "w0001"}})
		return err
	}},
	{name: "List of a doc field after a keyset position (filtered lists, ListInstances)", knownScan: noPushdown, listIndex: true, run: func(ctx context.Context, f *fixture) error {
		_, _, err := f.s.List(ctx, "acct", docstore.ListOptions{Limit: 10, Filter: bson.D{{Key: "doc.state", Value: "NEW"}}, After: &docstore.Position{Created: time.Now(), ID: "w0001"}})
		return err
	}},
	{name: "UpdateEach (keyset pages, then by _id)", knownScan: noPushdown, listIndex: true, run: func(ctx context.Context, f *fixture) error {
		_, err := f.s.UpdateEach(ctx, "acct", bson.D{{Key: "doc.state", Value: "NEW"}}, func(*docstore.Record[widget]) ([]events.Event, error) { return nil, docstore.ErrUnchanged })
		return err
	}},
	{name: "FillListIndex (a store without a relay, once at start)", knownScan: "reads every record once per process start, by design", run: func(ctx context.Context, f *fixture) error {
		return docstore.New[widget](f.s.Collection(), "widget", docstore.SingleWriter(), docstore.MemoryListIndex("doc.state")).FillListIndex(ctx)
	}},
	{name: "Find (internal sweep on a doc field)", knownScan: noPushdown + "; on MongoDB the filter needs an index of its own", run: func(ctx context.Context, f *fixture) error {
		_, err := f.s.Find(ctx, bson.D{{Key: "doc.state", Value: "NEW"}}, 10)
		return err
	}},
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Event) error { return nil }

// sqlLog keeps the SQL statements FerretDB logs at debug level (with their
// arguments), and drops everything else.
type sqlLog struct {
	mu    *sync.Mutex
	stmts *[]stmt
	args  []any
}

type stmt struct {
	sql  string
	args []any
}

func newSQLLog() *sqlLog { return &sqlLog{mu: new(sync.Mutex), stmts: new([]stmt)} }

func (l *sqlLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *sqlLog) Handle(_ context.Context, r slog.Record) error {
	q, ok := strings.CutPrefix(r.Message, ">>> ")
	if !ok || r.Level != slog.LevelDebug {
		return nil
	}
	l.mu.Lock()
	*l.stmts = append(*l.stmts, stmt{sql: q, args: l.args})
	l.mu.Unlock()
	return nil
}

func (l *sqlLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *l
	for _, a := range attrs {
		if a.Key == "args" {
			c.args, _ = a.Value.Any().([]any)
		}
	}
	return &c
}

func (l *sqlLog) WithGroup(string) slog.Handler { return l }

func (l *sqlLog) take() []stmt {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := *l.stmts
	*l.stmts = nil
	return s
}

// scanRE matches a plan line that reads a table without an index.
var scanRE = regexp.MustCompile(`^SCAN (\S+)( |$)`)

func TestQueryPlansFerretDB(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a database")
	}
	ctx := context.Background()
	log := newSQLLog()
	srv, err := embedded.StartMongo("127.0.0.1:0", t.TempDir(), slog.New(log))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	const dbName = "plans"
	f := newFixture(client.Database(dbName), docstore.SingleWriter())
	// A collection is created by its first write; the server indexes it
	// within IDIndexInterval, IndexIDs does it now.
	if _, err := f.create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}
	table := tableOf(t, srv, dbName, "widgets")
	if mode := pragma(t, srv, dbName, "journal_mode"); mode != "wal" {
		t.Errorf("journal_mode = %q; want wal (FerretDB's)", mode)
	}

	for _, sh := range shapes {
		log.take()
		if err := sh.run(ctx, f); err != nil {
			t.Fatalf("%s: %v", sh.name, err)
		}
		var touched int
		for _, st := range log.take() {
			if !strings.Contains(st.sql, `"`+table+`"`) {
				continue // metadata, transactions
			}
			touched++
			plan, err := srv.ExplainSQL(ctx, dbName, st.sql, st.args...)
			if err != nil {
				t.Fatalf("%s: EXPLAIN QUERY PLAN %s: %v", sh.name, st.sql, err)
			}
			scans := false
			for _, line := range plan {
				if m := scanRE.FindStringSubmatch(line); m != nil && strings.Trim(m[1], `"`) == table {
					scans = true
				}
			}
			byID := strings.Contains(st.sql, "->'$._id'")
			switch {
			case scans && (byID || sh.knownScan == ""):
				t.Errorf("%s: %s\n\tscans %s: %q", sh.name, st.sql, table, plan)
			case scans:
				t.Logf("%s: known scan (%s): %s: %q", sh.name, sh.knownScan, st.sql, plan)
			default:
				t.Logf("%s: %s: %q", sh.name, st.sql, plan)
			}
		}
		if touched == 0 {
			t.Errorf("%s: FerretDB logged no statement on %s; is its SQL still logged at debug level?", sh.name, table)
		}
	}
}

// The same shapes on MongoDB, when CERTFLOW_TEST_MONGO_URI points at one:
// every command the store sends is explained and COLLSCAN fails.
func TestQueryPlansMongoDB(t *testing.T) {
	uri := os.Getenv("CERTFLOW_TEST_MONGO_URI")
	if uri == "" || testing.Short() {
		t.Skip("set CERTFLOW_TEST_MONGO_URI to explain the shapes on MongoDB")
	}
	ctx := context.Background()
	var mu sync.Mutex
	var cmds []bson.Raw
	explained := map[string]bool{"find": true, "update": true, "delete": true, "findAndModify": true, "aggregate": true, "count": true, "distinct": true}
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if explained[e.CommandName] {
			mu.Lock()
			cmds = append(cmds, append(bson.Raw(nil), e.Command...))
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database(fmt.Sprintf("t_plans_%d", time.Now().UnixNano()))
	defer db.Drop(ctx)
	f := newFixture(db)
	if err := f.s.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.create(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sh := range shapes {
		mu.Lock()
		cmds = nil
		mu.Unlock()
		if err := sh.run(ctx, f); err != nil {
			t.Fatalf("%s: %v", sh.name, err)
		}
		mu.Lock()
		sent := cmds
		mu.Unlock()
		for _, c := range sent {
			inner := explainable(c)
			var res bson.Raw
			if err := db.RunCommand(ctx, bson.D{{Key: "explain", Value: inner}, {Key: "verbosity", Value: "queryPlanner"}}).Decode(&res); err != nil {
				t.Fatalf("%s: explain %v: %v", sh.name, inner, err)
			}
			qp, _ := res.Lookup("queryPlanner").DocumentOK()
			stages := planStages(qp)
			if sh.listIndex && slices.ContainsFunc(inner, func(e bson.E) bool { return e.Key == "sort" }) {
				want := "IXSCAN(" + indexName(docstore.ListIndex) + ")"
				if !strings.Contains(planIndexes(qp), want) || strings.Contains(" "+stages+" ", " SORT ") {
					t.Errorf("%s: %v\n\tplan %s (%s); want %s and no SORT stage", sh.name, inner, stages, planIndexes(qp), want)
				}
				if bounds := createdBounds(qp); strings.Contains(fmt.Sprint(inner), "$lte") && (bounds == "" || strings.Contains(bounds, "MaxKey")) {
					t.Errorf("%s: %v\n\tscans created over %s; want the scan to start at the page token's position", sh.name, inner, bounds)
				}
			}
			switch scans := strings.Contains(stages, "COLLSCAN"); {
			case scans && (sh.knownScan == "" || sh.indexedOnMongo):
				t.Errorf("%s: %v\n\tscans: %s", sh.name, inner, stages)
			case scans:
				t.Logf("%s: known scan (%s): %v: %s", sh.name, sh.knownScan, inner, stages)
			default:
				t.Logf("%s: %v: %s", sh.name, inner, stages)
			}
		}
	}
}

func newFixture(db *mongo.Database, opts ...docstore.Option) *fixture {
	relay := docstore.NewRelay(nopPublisher{}, slog.New(slog.DiscardHandler), time.Hour)
	if len(opts) > 0 {
		relay.SingleWriter()
	}
	s := docstore.New[widget](db.Collection("widgets"), "widget", append(opts, docstore.WithRelay(relay))...)
	return &fixture{s: s, relay: relay}
}

// explainable is a command as sent, without the driver's envelope fields.
func explainable(c bson.Raw) bson.D {
	var d bson.D
	elems, _ := c.Elements()
	for _, e := range elems {
		switch k := e.Key(); {
		case strings.HasPrefix(k, "$"), k == "lsid", k == "txnNumber", k == "writeConcern", k == "readConcern", k == "apiVersion":
		default:
			d = append(d, bson.E{Key: k, Value: e.Value()})
		}
	}
	return d
}

// planStages lists the stages of a queryPlanner document's winning plan(s).
func planStages(doc bson.Raw) string {
	var out []string
	walkPlan(doc, func(stage bson.Raw) {
		s, _ := stage.Lookup("stage").StringValueOK()
		out = append(out, s)
	})
	return strings.Join(out, " ")
}

// planIndexes lists the index scans of a queryPlanner document's winning
// plan(s), as IXSCAN(name).
func planIndexes(doc bson.Raw) string {
	var out []string
	walkPlan(doc, func(stage bson.Raw) {
		if s, _ := stage.Lookup("stage").StringValueOK(); s == "IXSCAN" {
			name, _ := stage.Lookup("indexName").StringValueOK()
			out = append(out, "IXSCAN("+name+")")
		}
	})
	return strings.Join(out, " ")
}

// createdBounds is the bounds on created of the winning plan's index
// scans (MongoDB prints an open one as [MaxKey, MinKey]).
func createdBounds(doc bson.Raw) string {
	var out []string
	walkPlan(doc, func(stage bson.Raw) {
		if b, ok := stage.Lookup("indexBounds", "created").ArrayOK(); ok {
			vals, _ := b.Values()
			for _, v := range vals {
				s, _ := v.StringValueOK()
				out = append(out, s)
			}
		}
	})
	return strings.Join(out, " ")
}

// walkPlan calls fn with every stage of doc's winning plan(s).
func walkPlan(doc bson.Raw, fn func(stage bson.Raw)) {
	var walk func(v bson.RawValue)
	walk = func(v bson.RawValue) {
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			d := v.Document()
			if _, ok := d.Lookup("stage").StringValueOK(); ok {
				fn(d)
			}
			elems, _ := d.Elements()
			for _, e := range elems {
				if e.Key() != "rejectedPlans" {
					walk(e.Value())
				}
			}
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			for _, x := range vals {
				walk(x)
			}
		}
	}
	if doc != nil {
		walk(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc})
	}
}

// indexName is MongoDB's default name of an index of keys.
func indexName(keys bson.D) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s_%v", k.Key, k.Value))
	}
	return strings.Join(parts, "_")
}

func tableOf(t *testing.T, srv *embedded.Mongo, db, coll string) string {
	t.Helper()
	// FerretDB names the table <collection>_<fnv32a of the name>; ask its
	// metadata rather than recompute it.
	got, err := embedded.QueryStrings(context.Background(), srv, db, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll)
	if err != nil || len(got) != 1 {
		t.Fatalf("table of %s.%s = %q, %v", db, coll, got, err)
	}
	return got[0]
}

func pragma(t *testing.T, srv *embedded.Mongo, db, name string) string {
	t.Helper()
	got, err := embedded.QueryStrings(context.Background(), srv, db, "PRAGMA "+name)
	if err != nil || len(got) != 1 {
		t.Fatalf("PRAGMA %s = %q, %v", name, got, err)
	}
	return got[0]
}
