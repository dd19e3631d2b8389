package duequeue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
)

// Store is the part of a docstore.Store that Tracked wraps.
type Store[T any] interface {
	Create(ctx context.Context, id, account string, doc T, evs ...events.Event) (*docstore.Record[T], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[T], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[T], bool, error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[T]) (*docstore.Record[T], error)
	Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[T], error)
}

// Tracked is the repository of a service that is its database's only
// writer (the embedded FerretDB, where any query but by _id reads the whole
// collection): it keeps a Queue of the documents with work to come, loaded
// once by Load and updated from every record it writes, so that Due reads
// only the due documents, by _id. Next says when a document's next work is
// due (ok false: none).
type Tracked[T any] struct {
	store Store[T]
	next  func(doc *T) (time.Time, bool)
	q     *Queue
}

// NewTracked wraps store; call Load before use.
func NewTracked[T any](store Store[T], next func(doc *T) (time.Time, bool)) *Tracked[T] {
	return &Tracked[T]{store: store, next: next, q: New()}
}

// Load schedules every document that filter selects and that has work to
// come: the one scan of the collection, at start, before any write. The
// schedule is computed from each document by Next, not read from a stored
// field, so documents written under other settings are scheduled too.
func (s *Tracked[T]) Load(ctx context.Context, filter bson.D) error {
	recs, err := s.store.Find(ctx, filter, 0)
	if err != nil {
		return fmt.Errorf("load the schedule: %w", err)
	}
	for _, r := range recs {
		s.track(r)
	}
	return nil
}

// Len is how many documents are scheduled.
func (s *Tracked[T]) Len() int { return s.q.Len() }

func (s *Tracked[T]) track(r *docstore.Record[T]) {
	if r == nil {
		return
	}
	due, ok := s.next(&r.Doc)
	if !ok {
		s.q.Remove(r.ID)
		return
	}
	s.q.Set(Entry{ID: r.ID, Account: r.Account, Due: due, Created: r.Created, Revision: r.Revision})
}

// Due reads each due entry's document by _id and returns those with work
// due by now, at most limit, rescheduling the others.
func (s *Tracked[T]) Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[T], error) {
	var out []*docstore.Record[T]
	for _, e := range s.q.Due(now, limit) {
		r, err := s.store.Get(ctx, "", e.ID)
		if errors.Is(err, apierr.ErrNotFound) {
			s.q.Remove(e.ID)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read %s: %w", e.ID, err)
		}
		s.track(r)
		if due, ok := s.next(&r.Doc); ok && !due.After(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Create implements Store.
func (s *Tracked[T]) Create(ctx context.Context, id, account string, doc T, evs ...events.Event) (*docstore.Record[T], bool, error) {
	r, created, err := s.store.Create(ctx, id, account, doc, evs...)
	if err != nil {
		// The write may have happened: read it when due at once.
		s.q.Set(Entry{ID: id, Account: account})
		return r, created, err
	}
	s.track(r)
	return r, created, nil
}

// Get implements Store.
func (s *Tracked[T]) Get(ctx context.Context, account, id string) (*docstore.Record[T], error) {
	return s.store.Get(ctx, account, id)
}

// List implements Store.
func (s *Tracked[T]) List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[T], bool, error) {
	return s.store.List(ctx, account, o)
}

// Find implements Store.
func (s *Tracked[T]) Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[T], error) {
	return s.store.Find(ctx, filter, limit)
}

// Update implements Store.
func (s *Tracked[T]) Update(ctx context.Context, account, id string, fn docstore.Mutation[T]) (*docstore.Record[T], error) {
	r, err := s.store.Update(ctx, account, id, fn)
	if err != nil {
		return r, err // the entry stays; Due reads before acting
	}
	s.track(r)
	return r, nil
}

// Indexed finds due documents with one query on an indexed time field
// (for MongoDB, which several replicas may write): field holds when the
// next work is due, zero for none.
type Indexed[T any] struct {
	Store interface {
		Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[T], error)
	}
	Field string
}

// Due returns the documents whose field is due by now, at most limit.
func (d Indexed[T]) Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[T], error) {
	return d.Store.Find(ctx, bson.D{{Key: d.Field, Value: bson.D{
		{Key: "$gt", Value: time.Time{}}, {Key: "$lte", Value: now.UTC()},
	}}}, int64(limit))
}
