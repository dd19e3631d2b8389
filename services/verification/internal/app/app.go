// Package app is the verification service's use cases: issue challenges,
// check them (on a schedule and on demand), cancel them, and publish the
// outcome.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

const source = "//certflow/verification"

// Challenges is the challenge repository.
type Challenges interface {
	Create(ctx context.Context, id, account string, doc domain.Challenge, evs ...events.Event) (*docstore.Record[domain.Challenge], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Challenge], error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Challenge]) (*docstore.Record[domain.Challenge], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Challenge], bool, error)
	Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[domain.Challenge], error)
}

// Prover looks for a challenge's proof in the outside world: nil when found.
type Prover interface {
	Prove(ctx context.Context, c *domain.Challenge) error
}

// App runs the use cases.
type App struct {
	store  Challenges
	prover Prover
	policy domain.Policy
	now    func() time.Time
	log    *slog.Logger
}

// New returns the use cases.
func New(store Challenges, prover Prover, policy domain.Policy, now func() time.Time, log *slog.Logger) *App {
	return &App{store: store, prover: prover, policy: policy, now: now, log: log}
}

// Policy returns the challenge policy.
func (a *App) Policy() domain.Policy { return a.policy }

// ChallengeID is the id of the challenge for one name of one attempt, so a
// retried CreateChallenges finds the ones it made.
func ChallengeID(account, application string, attempt int, name string) string {
	return docstore.IDFor(account, application+"/attempts/"+strconv.Itoa(attempt)+"/"+name)
}

// Create issues one challenge per name.
func (a *App) Create(ctx context.Context, account, application string, attempt int, names []string, m domain.Method) ([]*docstore.Record[domain.Challenge], error) {
	if len(names) == 0 {
		return nil, apierr.Invalid("domains", "MISSING_FIELD", "at least one domain is required")
	}
	now := a.now()
	var out []*docstore.Record[domain.Challenge]
	for _, n := range names {
		id := ChallengeID(account, application, attempt, n)
		c, err := domain.NewChallenge(id, application, attempt, n, m, a.policy, now)
		if err != nil {
			return nil, err
		}
		rec, _, err := a.store.Create(ctx, id, account, c)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Get reads a challenge.
func (a *App) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Challenge], error) {
	return a.store.Get(ctx, account, id)
}

// List lists challenges, optionally of one application and state.
func (a *App) List(ctx context.Context, account, application string, state domain.State, offset, limit int64) ([]*docstore.Record[domain.Challenge], bool, error) {
	var f bson.D
	if application != "" {
		f = append(f, bson.E{Key: "doc.application", Value: application})
	}
	if state != "" {
		f = append(f, bson.E{Key: "doc.state", Value: string(state)})
	}
	return a.store.List(ctx, account, docstore.ListOptions{Filter: f, Offset: offset, Limit: limit})
}

// CheckNow checks a pending challenge at once.
func (a *App) CheckNow(ctx context.Context, account, id string) (*docstore.Record[domain.Challenge], error) {
	rec, err := a.store.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	switch rec.Doc.State {
	case domain.Pending:
	case domain.Verified:
		return rec, nil
	default:
		return nil, apierr.New(apierr.FailedPrecondition, "CHALLENGE_NOT_PENDING",
			"challenge %s is %s and cannot be checked; resubmit the application for a new challenge", id, rec.Doc.State)
	}
	return a.check(ctx, rec)
}

// check proves a challenge outside any lock (it does network I/O) and then
// records the result if the challenge is still pending.
func (a *App) check(ctx context.Context, rec *docstore.Record[domain.Challenge]) (*docstore.Record[domain.Challenge], error) {
	c := rec.Doc
	proofErr := a.prover.Prove(ctx, &c)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return a.store.Update(ctx, rec.Account, rec.ID, func(c *domain.Challenge) ([]events.Event, error) {
		now := a.now()
		var typ string
		var msg proto.Message
		switch c.RecordCheck(proofErr, a.policy, now) {
		case domain.NotPending:
			return nil, docstore.ErrUnchanged
		case domain.StillPending:
			return nil, nil
		case domain.BecameVerified:
			typ, msg = events.DomainVerified, &eventsv1.DomainVerified{
				Account: rec.Account, Challenge: "challenges/" + rec.ID, Application: c.Application, Attempt: int32(c.Attempt),
				Domain: c.Domain, Method: string(c.Method), VerifyTime: timestamppb.New(c.VerifyTime),
			}
		case domain.BecameFailed:
			typ, msg = events.DomainFailed, &eventsv1.DomainValidationFailed{
				Account: rec.Account, Challenge: "challenges/" + rec.ID, Application: c.Application, Attempt: int32(c.Attempt),
				Domain: c.Domain, Method: string(c.Method), Cause: c.LastError,
			}
		}
		ev, err := events.Stamp(typ, source, "challenges/"+rec.ID, now, msg)
		if err != nil {
			return nil, err
		}
		return []events.Event{ev}, nil
	})
}

// Cancel cancels an application's pending challenges.
func (a *App) Cancel(ctx context.Context, account, application string) ([]*docstore.Record[domain.Challenge], error) {
	var out []*docstore.Record[domain.Challenge]
	for off := int64(0); ; off += 500 {
		recs, more, err := a.List(ctx, account, application, "", off, 500)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			got, err := a.store.Update(ctx, account, r.ID, func(c *domain.Challenge) ([]events.Event, error) {
				now := a.now()
				if !c.Cancel(now) {
					return nil, docstore.ErrUnchanged
				}
				ev, err := events.Stamp(events.ChallengeCancelled, source, "challenges/"+r.ID, now, &eventsv1.ChallengeCancelled{
					Account: account, Challenge: "challenges/" + r.ID, Application: application, Attempt: int32(c.Attempt), Domain: c.Domain,
				})
				if err != nil {
					return nil, err
				}
				return []events.Event{ev}, nil
			})
			if err != nil {
				return nil, err
			}
			out = append(out, got)
		}
		if !more {
			return out, nil
		}
	}
}

// Sweep checks every due challenge once, with at most parallel checks at a
// time, and returns how many it checked.
func (a *App) Sweep(ctx context.Context, parallel int) (int, error) {
	now := a.now().UTC()
	due, err := a.store.Find(ctx, bson.D{
		{Key: "doc.state", Value: string(domain.Pending)},
		{Key: "doc.nextchecktime", Value: bson.D{{Key: "$lte", Value: now}}},
	}, 200)
	if err != nil {
		return 0, fmt.Errorf("find due challenges: %w", err)
	}
	sem := make(chan struct{}, max(parallel, 1))
	done := make(chan struct{}, len(due))
	for _, rec := range due {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; done <- struct{}{} }()
			if _, err := a.check(ctx, rec); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Warn("challenge check failed", "challenge", rec.ID, "err", err)
			}
		}()
	}
	for range due {
		<-done
	}
	return len(due), nil
}

// RunWorker sweeps every interval until ctx is done.
func (a *App) RunWorker(ctx context.Context, interval time.Duration, parallel int) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := a.Sweep(ctx, parallel); err != nil && ctx.Err() == nil {
			a.log.Warn("challenge sweep failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
