package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// DueChallenges finds the pending challenges due for a check by now, at
// most limit: what the sweep checks.
type DueChallenges interface {
	Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Challenge], error)
}

// Finder is a query over the whole challenge collection (docstore's Find).
type Finder interface {
	Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[domain.Challenge], error)
}

// IndexedDue finds due challenges with one query, oldest first, which the
// index {doc.state, doc.nextchecktime} answers on MongoDB: for a database
// several replicas write, where no process can know every write.
type IndexedDue struct{ Store Finder }

// Due implements DueChallenges.
func (d IndexedDue) Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Challenge], error) {
	return d.Store.Find(ctx, pendingDue(now), int64(limit))
}

func pendingDue(now time.Time) bson.D {
	return bson.D{
		{Key: "doc.state", Value: string(domain.Pending)},
		{Key: "doc.nextchecktime", Value: bson.D{{Key: "$lte", Value: now.UTC()}}},
	}
}

// QueuedChallenges is the challenge repository of the only writer of its
// database (the embedded FerretDB, where any query but by _id reads the
// whole collection): it keeps a DueQueue of the pending challenges, loaded
// once by Load and updated from every record it writes, so Due reads only
// the due challenges, by _id, however many challenges are stored.
//
// Every challenge write goes through it (Create, Update: the
// app's create, mail, check, confirm, cancel and sweep), and each written
// record reschedules or removes its entry. A write whose outcome is unknown
// (an error) leaves an entry that Due resolves by reading the challenge:
// entries may be stale, never missing.
type QueuedChallenges struct {
	store interface {
		Challenges
		Finder
	}
	q *DueQueue
}

// NewQueuedChallenges wraps the challenge store; call Load before use.
func NewQueuedChallenges(store interface {
	Challenges
	Finder
}) *QueuedChallenges {
	return &QueuedChallenges{store: store, q: NewDueQueue()}
}

// Load schedules every pending challenge: the one scan of the collection,
// at start, before any write.
func (s *QueuedChallenges) Load(ctx context.Context) error {
	recs, err := s.store.Find(ctx, bson.D{{Key: "doc.state", Value: string(domain.Pending)}}, 0)
	if err != nil {
		return fmt.Errorf("load pending challenges: %w", err)
	}
	for _, r := range recs {
		s.track(r)
	}
	return nil
}

// Len is how many challenges are scheduled.
func (s *QueuedChallenges) Len() int { return s.q.Len() }

// track schedules a record as written or read, or unschedules it.
func (s *QueuedChallenges) track(r *docstore.Record[domain.Challenge]) {
	if r == nil {
		return
	}
	if r.Doc.State != domain.Pending {
		s.q.Remove(r.ID)
		return
	}
	s.q.Set(DueEntry{ID: r.ID, Account: r.Account, Due: r.Doc.NextCheckTime, Created: r.Created, Revision: r.Revision})
}

// unknown schedules a challenge whose write failed, to be read at once:
// the write may have happened.
func (s *QueuedChallenges) unknown(account, id string) {
	s.q.Set(DueEntry{ID: id, Account: account})
}

// Due implements DueChallenges: it reads each due entry's challenge by _id
// and returns those still pending and due, rescheduling or removing the
// others.
func (s *QueuedChallenges) Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Challenge], error) {
	var out []*docstore.Record[domain.Challenge]
	for _, e := range s.q.Due(now, limit) {
		r, err := s.store.Get(ctx, "", e.ID)
		if errors.Is(err, apierr.ErrNotFound) {
			s.q.Remove(e.ID)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read due challenge %s: %w", e.ID, err)
		}
		s.track(r)
		if r.Doc.Due(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Create implements Challenges.
func (s *QueuedChallenges) Create(ctx context.Context, id, account string, doc domain.Challenge, evs ...events.Event) (*docstore.Record[domain.Challenge], bool, error) {
	r, created, err := s.store.Create(ctx, id, account, doc, evs...)
	if err != nil {
		if doc.State == domain.Pending {
			s.unknown(account, id)
		}
		return r, created, err
	}
	s.track(r)
	return r, created, nil
}

// Get implements Challenges.
func (s *QueuedChallenges) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Challenge], error) {
	return s.store.Get(ctx, account, id)
}

// Update implements Challenges.
func (s *QueuedChallenges) Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Challenge]) (*docstore.Record[domain.Challenge], error) {
	r, err := s.store.Update(ctx, account, id, fn)
	if err != nil {
		// The entry (if any) stays as it was: Due reads the challenge
		// before acting on it.
		return r, err
	}
	s.track(r)
	return r, nil
}

// List implements Challenges.
func (s *QueuedChallenges) List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Challenge], bool, error) {
	return s.store.List(ctx, account, o)
}
