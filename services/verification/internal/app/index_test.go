package app_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/services/verification/internal/app"
	"github.com/certflow/certflow/services/verification/internal/caa"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// found is a prover that always finds the proof.
type found struct{}

func (found) Prove(context.Context, *domain.Challenge) error { return nil }

// agree is remote perspectives that corroborate everything.
type agree struct{}

func (agree) Challenge(context.Context, *domain.Challenge) ([]domain.PerspectiveResult, error) {
	return nil, nil
}
func (agree) CAA(context.Context, caa.Query) ([]domain.PerspectiveResult, error) { return nil, nil }

// permit is CAA that permits every name.
type permit struct{}

func (permit) Check(context.Context, caa.Query) (caa.Result, error) {
	return caa.Result{Allowed: true}, nil
}

type lifecycle struct {
	a     *app.App
	store *docstore.Store[domain.Challenge]
	x     *docstore.Store[domain.ChallengeIndex]
	now   time.Time
}

// newLifecycle is the app over a fresh database, as the embedded default
// wires it (single writer, due queue), with a prover, perspectives and CAA
// that always agree.
func newLifecycle(t testing.TB, cmds *commands) *lifecycle {
	t.Helper()
	return newLifecycleOn(t, challengeStore(t, cmds))
}

func newLifecycleOn(t testing.TB, store *docstore.Store[domain.Challenge]) *lifecycle {
	t.Helper()
	x := indexStore(store)
	v := docstore.New[domain.Validation](store.Collection().Database().Collection("validations"), "validation", docstore.SingleWriter())
	q := app.NewQueuedChallenges(store)
	if err := q.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	l := &lifecycle{store: store, x: x, now: t0}
	l.a = app.New(q, x, q, v, found{}, agree{}, nil, permit{}, policy, func() time.Time { return l.now }, slog.New(slog.DiscardHandler))
	return l
}

// validate creates the account's challenges of an attempt and checks each
// until verified.
func (l *lifecycle) validate(t testing.TB, account, application string, attempt int, names ...string) []*docstore.Record[domain.Challenge] {
	t.Helper()
	ctx := context.Background()
	recs, err := l.a.Create(ctx, account, app.CreateRequest{Application: application, Attempt: attempt, Names: names, Method: domain.DNSTXT})
	if err != nil {
		t.Fatalf("Create(%s, %s, %v) = %v", account, application, names, err)
	}
	for i, r := range recs {
		if r.Doc.State == domain.Verified {
			continue
		}
		if recs[i], err = l.a.CheckNow(ctx, account, r.ID); err != nil || recs[i].Doc.State != domain.Verified {
			t.Fatalf("CheckNow(%s) = %v, %v; want VERIFIED", r.Doc.Domain, recs[i], err)
		}
	}
	return recs
}

// An application's challenges are found through its index: the CA's check
// before signing, listing and cancelling see exactly the account's
// challenges of that application (and attempt), and never another
// account's; reuse stays per account; every query is by _id alone.
func TestApplicationChallengesThroughIndex(t *testing.T) {
	cmds := &commands{}
	l := newLifecycle(t, cmds)
	ctx := context.Background()
	const app1 = "applications/app1"
	cmds.reset()
	recs := l.validate(t, "alice", app1, 1, "a.example.test", "B.example.test")
	if len(recs) != 2 {
		t.Fatalf("validated %d challenges; want 2", len(recs))
	}

	for _, tc := range []struct {
		name    string
		account string
		attempt int
		names   []string
		reason  string // "" authorizes
	}{
		{"the attempt's names", "alice", 1, []string{"b.example.test", "a.example.test"}, ""},
		{"another account", "bob", 1, []string{"a.example.test", "b.example.test"}, domain.ReasonValidationMissing},
		{"another attempt", "alice", 2, []string{"a.example.test", "b.example.test"}, domain.ReasonValidationMissing},
		{"a name left out", "alice", 1, []string{"a.example.test"}, domain.ReasonNamesMismatch},
		{"a name added", "alice", 1, []string{"a.example.test", "b.example.test", "c.example.test"}, domain.ReasonNamesMismatch},
	} {
		got, err := l.a.AuthorizeIssuance(ctx, tc.account, app.IssuanceRequest{Application: app1, Attempt: tc.attempt, Names: tc.names, SignTime: l.now})
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s: AuthorizeIssuance = %v; want authorized", tc.name, err)
		case tc.reason == "" && (len(got.Names) != 2 || got.Names[0].Challenge != app.ChallengeID("alice", app1, 1, "B.example.test")):
			t.Errorf("%s: AuthorizeIssuance = %+v; want the evidence of b's challenge first", tc.name, got.Names)
		case tc.reason != "" && apierr.ReasonOf(err) != tc.reason:
			t.Errorf("%s: AuthorizeIssuance = %v, %v; want %s", tc.name, got, err, tc.reason)
		}
	}

	if got, _, err := l.a.List(ctx, "alice", app1, "", nil, 10); err != nil || len(got) != 2 {
		t.Errorf("List(alice, %s) = %d, %v; want its 2 challenges", app1, len(got), err)
	}
	if got, _, err := l.a.List(ctx, "bob", app1, "", nil, 10); err != nil || len(got) != 0 {
		t.Errorf("List(bob, %s) = %d, %v; want none: alice's", app1, len(got), err)
	}
	if got, err := l.a.Cancel(ctx, "bob", app1); err != nil || len(got) != 0 {
		t.Errorf("Cancel(bob, %s) = %d, %v; want nothing", app1, len(got), err)
	}

	// Reuse is per account: bob validates a.example.test anew, alice's next
	// application reuses her validation.
	if got, err := l.a.Create(ctx, "bob", app.CreateRequest{Application: "applications/bob1", Attempt: 1, Names: []string{"a.example.test"}, Method: domain.DNSTXT}); err != nil || got[0].Doc.State != domain.Pending || got[0].Doc.Reused {
		t.Errorf("bob's challenge for alice's validated name = %+v, %v; want a new PENDING one", got, err)
	}
	if got, err := l.a.Create(ctx, "alice", app.CreateRequest{Application: "applications/app2", Attempt: 1, Names: []string{"a.example.test"}, Method: domain.DNSTXT}); err != nil || !got[0].Doc.Reused {
		t.Errorf("alice's second challenge for a.example.test = %+v, %v; want it reused", got, err)
	}

	// Cancelling reaches every pending challenge of the application, of
	// every attempt, and leaves the verified ones.
	l.validate(t, "alice", "applications/app3", 1, "v.example.test")
	if _, err := l.a.Create(ctx, "alice", app.CreateRequest{Application: "applications/app3", Attempt: 2, Names: []string{"p.example.test", "q.example.test"}, Method: domain.HTTPFile}); err != nil {
		t.Fatal(err)
	}
	got, err := l.a.Cancel(ctx, "alice", "applications/app3")
	states := map[string]domain.State{}
	for _, r := range got {
		states[r.Doc.Domain] = r.Doc.State
	}
	if err != nil || len(got) != 3 || states["v.example.test"] != domain.Verified || states["p.example.test"] != domain.Cancelled || states["q.example.test"] != domain.Cancelled {
		t.Errorf("Cancel(alice, app3) = %v, %v; want v VERIFIED, p and q CANCELLED", states, err)
	}

	if err := cmds.byIDOnly(); err != nil {
		t.Errorf("the lifecycle made %v", err)
	}
	if n := len(cmds.filters); n < 20 {
		t.Errorf("%d queries recorded; is the command monitor still attached?", n)
	}
}

// A crash between writing the index and writing the challenges it names
// leaves ids without records: they are no evidence and nothing to cancel,
// and the retried create writes them.
func TestIndexNamingMissingChallenges(t *testing.T) {
	l := newLifecycle(t, nil)
	ctx := context.Background()
	const app1 = "applications/app1"
	l.validate(t, "alice", app1, 1, "a.example.test")
	// As if CreateChallenges for a second name crashed after the index.
	index(t, l.x, "alice", app.ChallengeID("alice", app1, 1, "c.example.test"), domain.Challenge{Application: app1, Attempt: 1, Domain: "c.example.test"})
	if _, err := l.a.AuthorizeIssuance(ctx, "alice", app.IssuanceRequest{Application: app1, Attempt: 1, Names: []string{"a.example.test"}, SignTime: l.now}); err != nil {
		t.Errorf("AuthorizeIssuance with a dangling index entry = %v; want the written challenge to count", err)
	}
	if _, err := l.a.AuthorizeIssuance(ctx, "alice", app.IssuanceRequest{Application: app1, Attempt: 1, Names: []string{"a.example.test", "c.example.test"}, SignTime: l.now}); apierr.ReasonOf(err) != domain.ReasonNamesMismatch {
		t.Errorf("AuthorizeIssuance naming the unwritten challenge's name = %v; want NAMES_MISMATCH", err)
	}
	if got, err := l.a.Cancel(ctx, "alice", app1); err != nil || len(got) != 1 {
		t.Errorf("Cancel = %d, %v; want the one written challenge", len(got), err)
	}
	// The retry writes the missing challenge; the index already has it.
	l.validate(t, "alice", app1, 1, "a.example.test", "c.example.test")
	if _, err := l.a.AuthorizeIssuance(ctx, "alice", app.IssuanceRequest{Application: app1, Attempt: 1, Names: []string{"a.example.test", "c.example.test"}, SignTime: l.now}); err != nil {
		t.Errorf("AuthorizeIssuance after the retry = %v", err)
	}
}

// A database written before indexes existed is indexed once at start.
func TestBuildChallengeIndexes(t *testing.T) {
	l := newLifecycle(t, nil)
	ctx := context.Background()
	seedChallenges(t, l.store, 30)
	if got, _, err := l.a.List(ctx, "acct", "applications/a7", "", nil, 10); err != nil || len(got) != 0 {
		t.Fatalf("List before indexing = %d, %v; want none", len(got), err)
	}
	n, err := app.BuildChallengeIndexes(ctx, l.store, l.x)
	if err != nil || n != 30 {
		t.Fatalf("BuildChallengeIndexes = %d, %v; want 30 applications", n, err)
	}
	if got, _, err := l.a.List(ctx, "acct", "applications/a7", "", nil, 10); err != nil || len(got) != 1 || got[0].ID != "seed000007" {
		t.Fatalf("List after indexing = %v, %v; want seed000007", got, err)
	}
	if got, _, err := l.a.List(ctx, "other", "applications/a7", "", nil, 10); err != nil || len(got) != 0 {
		t.Fatalf("List of another account after indexing = %d, %v; want none", len(got), err)
	}
	if n, err := app.BuildChallengeIndexes(ctx, l.store, l.x); err != nil || n != 0 {
		t.Fatalf("second BuildChallengeIndexes = %d, %v; want nothing to do", n, err)
	}
}

// An application's listing pages newest first after a position, by state.
func TestListApplicationPages(t *testing.T) {
	l := newLifecycle(t, nil)
	ctx := context.Background()
	const app1 = "applications/app1"
	var ids []string
	for i, n := range []string{"a.example.test", "b.example.test", "c.example.test"} {
		l.now = t0.Add(time.Duration(i) * time.Minute)
		recs, err := l.a.Create(ctx, "alice", app.CreateRequest{Application: app1, Attempt: i + 1, Names: []string{n}, Method: domain.DNSTXT})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, recs[0].ID)
	}
	if _, err := l.a.CheckNow(ctx, "alice", ids[1]); err != nil {
		t.Fatal(err)
	}
	first, more, err := l.a.List(ctx, "alice", app1, "", nil, 2)
	if err != nil || !more || len(first) != 2 || first[0].ID != ids[2] || first[1].ID != ids[1] {
		t.Fatalf("first page = %v, %v, %v; want c, b and more", first, more, err)
	}
	pos := docstore.PositionOf(first[1])
	second, more, err := l.a.List(ctx, "alice", app1, "", &pos, 2)
	if err != nil || more || len(second) != 1 || second[0].ID != ids[0] {
		t.Fatalf("second page = %v, %v, %v; want a, the last", second, more, err)
	}
	pending, _, err := l.a.List(ctx, "alice", app1, domain.Pending, nil, 10)
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending = %d, %v; want 2", len(pending), err)
	}
}
