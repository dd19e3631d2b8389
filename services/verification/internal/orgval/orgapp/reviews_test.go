package orgapp_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/verification/internal/orgval"
	"github.com/certflow/certflow/services/verification/internal/orgval/orgapp"
	"github.com/certflow/certflow/services/verification/internal/orgval/orgstore"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// filters records the filter of every find, findAndModify, update and
// delete a client sends.
type filters struct {
	mu  sync.Mutex
	all []bson.Raw
}

func (f *filters) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		key := map[string]string{"find": "filter", "findAndModify": "query", "update": "updates", "delete": "deletes"}[e.CommandName]
		if key == "" {
			return
		}
		v, _ := e.Command.Lookup(key).DocumentOK()
		f.mu.Lock()
		f.all = append(f.all, append(bson.Raw(nil), v...))
		f.mu.Unlock()
	}}
}

// byIDOnly fails unless every filter is exactly {_id: X}.
func (f *filters) byIDOnly() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.all {
		es, err := q.Elements()
		if err != nil || len(es) != 1 || es[0].Key() != "_id" || es[0].Value().Type == bson.TypeEmbeddedDocument {
			return 0, fmt.Errorf("a query by %s, not by _id alone", q)
		}
	}
	return len(f.all), nil
}

// oneDocument lists one document for every application.
type oneDocument struct{}

func (oneDocument) List(context.Context, string, string) ([]orgval.ListedDocument, error) {
	return []orgval.ListedDocument{{ID: "d1"}}, nil
}

type fixture struct {
	reviews orgstore.Reviews
	indexes *docstore.Store[orgval.ReviewIndex]
	r       *orgapp.Reviews
}

func newFixture(t *testing.T, f *filters) *fixture {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(testenv.MongoURI(t)).SetMonitor(f.monitor()))
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
	x := &fixture{
		reviews: orgstore.Reviews{Store: docstore.New[orgval.Review](db.Collection("reviews"), "review", docstore.SingleWriter())},
		indexes: docstore.New[orgval.ReviewIndex](db.Collection("review_indexes"), "review index", docstore.SingleWriter()),
	}
	orgs := docstore.New[orgval.OrganizationApproval](db.Collection("organizations"), "organization", docstore.SingleWriter())
	x.r = orgapp.NewReviews(x.reviews, x.indexes, orgs, oneDocument{}, time.Now, slog.New(slog.DiscardHandler))
	return x
}

func orgReview(application string, attempt int) orgval.Review {
	return orgval.Review{
		Kind: orgval.KindOrganization, Application: application, Attempt: attempt, ValidationLevel: "OV",
		Domains:      []string{"example.com"},
		Applicant:    orgval.Contact{Name: "Li Lei", Phone: "+86 571 1234 5678", Email: "li@example.com"},
		Organization: orgval.Organization{Name: "Example Ltd", OrganizationID: "91330000MA27XF4T0K", Country: "CN", Province: "Zhejiang", City: "Hangzhou", Phone: "+86 571 8765 4321"},
	}
}

func manualReview(application string, attempt int) orgval.Review {
	return orgval.Review{Kind: orgval.KindManual, Application: application, Attempt: attempt, ValidationLevel: "DV", Domains: []string{"mybank.example"}, FlaggedWords: []string{"bank"}}
}

// The OV path's review queries are by _id only: open (with the reuse
// lookup and the index), approve, the CA's read of the approved
// organization, reuse for the next application, and cancel, which reaches
// every review of the application through its index and nothing of
// another account.
func TestReviewPathByID(t *testing.T) {
	f := &filters{}
	x := newFixture(t, f)
	ctx := context.Background()
	staff := testenv.As(ctx, "staff", auth.Reviewer)
	const app1 = "applications/app1"
	org, err := x.r.Create(ctx, "alice", orgReview(app1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.r.Create(ctx, "alice", manualReview(app1, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := x.r.Create(ctx, "alice", manualReview(app1, 2)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.r.Approve(staff, "staff", org.ID, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := x.r.ApprovedOrganization(ctx, "alice", app1, 1, time.Now()); err != nil || got == nil {
		t.Fatalf("ApprovedOrganization = %v, %v; want the approval", got, err)
	}
	if got, err := x.r.Create(ctx, "alice", orgReview("applications/app2", 1)); err != nil || !got.Doc.Reused {
		t.Fatalf("second organization review = %+v, %v; want it approved by reuse", got, err)
	}
	if got, err := x.r.Cancel(ctx, "bob", app1); err != nil || len(got) != 0 {
		t.Fatalf("Cancel(bob, %s) = %d, %v; want nothing: alice's", app1, len(got), err)
	}
	got, err := x.r.Cancel(ctx, "alice", app1)
	if err != nil || len(got) != 3 {
		t.Fatalf("Cancel(alice, %s) = %d, %v; want its 3 reviews", app1, len(got), err)
	}
	for _, r := range got {
		want := orgval.Cancelled
		if r.ID == org.ID {
			want = orgval.Approved
		}
		if r.Doc.State != want {
			t.Errorf("after Cancel, %s %s (attempt %d) is %s; want %s", r.Doc.Kind, r.ID, r.Doc.Attempt, r.Doc.State, want)
		}
	}
	n, err := f.byIDOnly()
	if err != nil {
		t.Errorf("the OV path made %v", err)
	}
	if n < 10 {
		t.Errorf("%d queries recorded; is the command monitor attached?", n)
	}
}

// A review indexed but never written (a crash between the two writes) is
// skipped; a database from before the indexes is indexed once.
func TestReviewIndexGapsAndBuild(t *testing.T) {
	x := newFixture(t, &filters{})
	ctx := context.Background()
	const app1 = "applications/app1"
	ghost := orgval.ReviewRef{Attempt: 1, Kind: orgval.KindManual, ID: orgapp.ReviewID("alice", app1, 1, orgval.KindManual)}
	if _, err := x.indexes.Upsert(ctx, orgapp.ReviewIndexID("alice", app1), "alice", orgval.ReviewIndex{Application: app1, Reviews: []orgval.ReviewRef{ghost}}, func(*orgval.ReviewIndex) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if got, err := x.r.Cancel(ctx, "alice", app1); err != nil || len(got) != 0 {
		t.Fatalf("Cancel with an unwritten review = %d, %v; want nothing, no error", len(got), err)
	}

	// A review stored without an index, as before indexes existed.
	old := manualReview("applications/old", 1)
	old.State, old.CreateTime = orgval.Pending, time.Now()
	if _, _, err := x.reviews.Create(ctx, "r-old", "alice", old, []events.Event{}...); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.r.Cancel(ctx, "alice", "applications/old"); len(got) != 0 {
		t.Fatalf("Cancel before indexing found %d", len(got))
	}
	if err := orgapp.BuildReviewIndexes(ctx, x.reviews, x.indexes); err != nil {
		t.Fatal(err)
	}
	got, err := x.r.Cancel(ctx, "alice", "applications/old")
	if err != nil || len(got) != 1 || got[0].Doc.State != orgval.Cancelled {
		t.Fatalf("Cancel after indexing = %v, %v; want the old review cancelled", got, err)
	}
	if got, _ := x.r.Cancel(ctx, "bob", "applications/old"); len(got) != 0 {
		t.Fatalf("bob's Cancel after indexing found %d of alice's", len(got))
	}
}
