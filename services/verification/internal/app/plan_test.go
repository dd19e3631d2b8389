package app_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/services/verification/internal/app"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// sqlLog keeps the SQL statements FerretDB logs at debug level, with their
// arguments (as pkg/embedded's TestQueryPlansFerretDB does).
type sqlLog struct {
	mu    *sync.Mutex
	stmts *[]sqlStmt
	args  []any
}

type sqlStmt struct {
	sql  string
	args []any
}

func newSQLLog() *sqlLog { return &sqlLog{mu: new(sync.Mutex), stmts: new([]sqlStmt)} }

func (l *sqlLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *sqlLog) Handle(_ context.Context, r slog.Record) error {
	q, ok := strings.CutPrefix(r.Message, ">>> ")
	if !ok || r.Level != slog.LevelDebug {
		return nil
	}
	l.mu.Lock()
	*l.stmts = append(*l.stmts, sqlStmt{sql: q, args: l.args})
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

func (l *sqlLog) take() []sqlStmt {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := *l.stmts
	*l.stmts = nil
	return s
}

// scanRE matches a plan line that reads a table without an index.
var scanRE = regexp.MustCompile(`^SCAN (\S+)( |$)`)

// scans explains every statement FerretDB ran and returns the tables read
// whole, FerretDB's own metadata tables left out.
func scans(t *testing.T, srv *embedded.Mongo, db string, stmts []sqlStmt) (map[string]string, int) {
	t.Helper()
	out := map[string]string{}
	n := 0
	for _, st := range stmts {
		plan, err := srv.ExplainSQL(context.Background(), db, st.sql, st.args...)
		if err != nil {
			t.Fatalf("EXPLAIN QUERY PLAN %s: %v", st.sql, err)
		}
		n++
		for _, line := range plan {
			if m := scanRE.FindStringSubmatch(line); m != nil {
				if table := strings.Trim(m[1], `"`); !strings.HasPrefix(table, "_ferretdb") {
					out[table] = st.sql
				}
			}
		}
	}
	return out, n
}

// One DV lifecycle's verification queries on the embedded FerretDB, as
// SQLite runs them: create the challenges (with the reuse lookup and the
// index), check them, the sweep, the CA's check before signing, the
// application's listing, and cancel. None may read a table whole. The
// account-wide listing, which still does, shows the capture sees a scan.
func TestLifecycleQueryPlansFerretDB(t *testing.T) {
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
	const dbName = "verification"
	store := docstore.New[domain.Challenge](client.Database(dbName).Collection("challenges"), "challenge", docstore.SingleWriter())
	l := newLifecycleOn(t, store)
	// Start-up (the one-time index build and the due queue's load read
	// the collection once, before anything is served) and a first
	// lifecycle, which creates the collections; then their _id indexes.
	if _, err := app.BuildChallengeIndexes(ctx, store, l.x); err != nil {
		t.Fatal(err)
	}
	l.validate(t, "warm", "applications/warm", 1, "warm.example.test")
	if err := srv.IndexIDs(ctx); err != nil {
		t.Fatal(err)
	}

	log.take()
	const app1 = "applications/app1"
	recs, err := l.a.Create(ctx, "alice", app.CreateRequest{Application: app1, Attempt: 1, Names: []string{"a.example.test", "b.example.test"}, Method: domain.DNSTXT})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.a.Sweep(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := l.a.CheckNow(ctx, "alice", r.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.a.AuthorizeIssuance(ctx, "alice", app.IssuanceRequest{Application: app1, Attempt: 1, Names: []string{"a.example.test", "b.example.test"}, SignTime: l.now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.a.List(ctx, "alice", app1, "", nil, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := l.a.Cancel(ctx, "alice", app1); err != nil {
		t.Fatal(err)
	}
	// A second application reusing the validations.
	if _, err := l.a.Create(ctx, "alice", app.CreateRequest{Application: "applications/app2", Attempt: 1, Names: []string{"a.example.test"}, Method: domain.DNSTXT}); err != nil {
		t.Fatal(err)
	}
	got, n := scans(t, srv, dbName, log.take())
	if n < 20 {
		t.Fatalf("FerretDB logged %d statements for a lifecycle; is its SQL still logged at debug level?", n)
	}
	for table, sql := range got {
		t.Errorf("the lifecycle scans %s: %s", table, sql)
	}
	t.Logf("%d statements, none a scan", n)

	// The capture does see a scan: the account-wide listing still reads the
	// collection (FerretDB v1 pushes down only an exact {_id} filter).
	if _, _, err := l.a.List(ctx, "alice", "", "", nil, 50); err != nil {
		t.Fatal(err)
	}
	if got, _ := scans(t, srv, dbName, log.take()); len(got) == 0 {
		t.Errorf("the account-wide listing shows no scan; the capture is broken")
	}
}
