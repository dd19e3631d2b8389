package app_test

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/verification/internal/app"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// seedIndexes stores the index record of each challenge seedChallenges
// stored (one application each), as App.Create would have written it.
func seedIndexes(t testing.TB, x *docstore.Store[domain.ChallengeIndex], n int) {
	t.Helper()
	var batch []any
	for i := range n {
		application := fmt.Sprintf("applications/a%d", i)
		doc := domain.ChallengeIndex{Application: application, Challenges: []domain.ChallengeRef{{Attempt: 1, Domain: fmt.Sprintf("d%d.example.test", i), ID: fmt.Sprintf("seed%06d", i)}}}
		batch = append(batch, docstore.Record[domain.ChallengeIndex]{ID: app.ChallengeIndexID("acct", application), Account: "acct", Version: 1, Revision: 1,
			Created: t0, Updated: t0, Outbox: []events.Event{}, Doc: doc})
		if len(batch) == 1000 || i == n-1 {
			if _, err := x.Collection().InsertMany(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkApplicationChallenges finds one application's challenges among
// none and 20,000 others stored (each with its index record), on the embedded FerretDB (or
// MongoDB with CERTFLOW_TEST_MONGO_URI): by the query on the challenge
// collection the service used before (query-*), and through the
// application's index record, by _id (index-*). authorize is the CA's
// check before signing (the index case is the whole AuthorizeIssuance,
// with CAA and perspectives that answer at once), cancel is
// CancelChallenges of an application with nothing pending, list a page of
// ListChallenges filtered on the application.
//
//	go test -run '^$' -bench ApplicationChallenges ./internal/app
func BenchmarkApplicationChallenges(b *testing.B) {
	for _, stored := range []int{0, 20_000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) { benchApplicationChallenges(b, stored) })
	}
}

func benchApplicationChallenges(b *testing.B, stored int) {
	l := newLifecycle(b, nil)
	if stored > 0 {
		seedChallenges(b, l.store, stored)
		seedIndexes(b, l.x, stored)
	}
	ctx := context.Background()
	const application = "applications/bench"
	names := []string{"a.example.test", "b.example.test"}
	l.validate(b, "acct", application, 1, names...)
	byApp := bson.D{{Key: "doc.application", Value: application}}
	byAttempt := append(byApp, bson.E{Key: "doc.attempt", Value: 1})
	for _, bb := range []struct {
		name string
		run  func() error
	}{
		{"authorize/query", func() error {
			recs, _, err := l.store.List(ctx, "acct", docstore.ListOptions{Filter: byAttempt, Limit: 1000})
			if err == nil && len(recs) != 2 {
				err = fmt.Errorf("%d challenges", len(recs))
			}
			return err
		}},
		{"authorize/index", func() error {
			_, err := l.a.AuthorizeIssuance(ctx, "acct", app.IssuanceRequest{Application: application, Attempt: 1, Names: names, SignTime: l.now})
			return err
		}},
		{"cancel/query", func() error {
			_, err := l.store.UpdateEach(ctx, "acct", byApp, func(*docstore.Record[domain.Challenge]) ([]events.Event, error) { return nil, docstore.ErrUnchanged })
			return err
		}},
		{"cancel/index", func() error {
			_, err := l.a.Cancel(ctx, "acct", application)
			return err
		}},
		{"list/query", func() error {
			_, _, err := l.store.List(ctx, "acct", docstore.ListOptions{Filter: byApp, Limit: 50})
			return err
		}},
		{"list/index", func() error {
			_, _, err := l.a.List(ctx, "acct", application, "", nil, 50)
			return err
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				if err := bb.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
