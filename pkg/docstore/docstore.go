// Package docstore keeps versioned documents in MongoDB, each with an
// outbox of pending events written in the same single-document update as
// the state change (no multi-document transactions needed). A Relay
// publishes the outbox and clears it.
package docstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/events"
)

// Record is how a document is stored: the domain value in Doc, and the
// bookkeeping around it.
type Record[T any] struct {
	ID      string `bson:"_id"`
	Account string `bson:"account"`
	// Version changes with every write, the relay's included: it guards
	// concurrent writers.
	Version int64 `bson:"version"`
	// Revision changes only when Doc changes: it is the client's etag.
	Revision int64          `bson:"revision"`
	Created  time.Time      `bson:"created"`
	Updated  time.Time      `bson:"updated"`
	Outbox   []events.Event `bson:"outbox"`
	// Pending is whether Outbox holds events: the relay's sweep on MongoDB
	// finds them through a partial index on it (PendingIndex) instead of
	// scanning the collection.
	Pending bool `bson:"pending"`
	Doc     T    `bson:"doc"`
}

// ErrConflict is returned when a document kept changing under an update.
var ErrConflict = apierr.New(apierr.Aborted, "CONCURRENT_MODIFICATION", "the resource was changed by another request; read it again and retry")

// Store is one collection of Records.
type Store[T any] struct {
	coll  *mongo.Collection
	kind  string // for messages, e.g. "application"
	now   func() time.Time
	relay *Relay
	// idOnly writes with a filter on _id alone (see SingleWriter).
	idOnly bool
	cache  *readCache // nil unless ReadCache and SingleWriter
	mem    *memIndex  // nil unless MemoryListIndex and SingleWriter
}

// Option configures a Store.
type Option func(*options_)

type options_ struct {
	now    func() time.Time
	relay  *Relay
	idOnly bool
	cache  int
	mem    []string
	hasMem bool
	every  bool
}

// WithClock sets the clock used for Created/Updated.
func WithClock(now func() time.Time) Option { return func(o *options_) { o.now = now } }

// SingleWriter is for databases that cannot guard a write with a version
// filter cheaply: FerretDB v1's SQLite backend uses its primary key only for
// a filter that is exactly {_id: …} and scans the collection for anything
// else. The store then writes by _id alone, relying on the per-document
// lock of this process (lock.go) after reading the version under it. Only
// one process may then write a database, which is how the embedded default
// runs; on MongoDB the version filter is kept and replicas may scale out.
func SingleWriter() Option { return func(o *options_) { o.idOnly = true } }

// ReadCache has Get answer from up to maxBytes of recently read records
// kept in memory (cache.go). It takes effect only with SingleWriter, and
// only if every write of the collection goes through this package: a
// store's own DeleteOne on Collection() would leave a deleted record
// readable.
func ReadCache(maxBytes int) Option { return func(o *options_) { o.cache = maxBytes } }

// MemoryListIndex has List page through an in-memory index of the
// collection (listindex.go) that keeps the values of fields, the filter
// keys List is called with (e.g. "doc.state"); a List with another key asks
// the database. It takes effect only with SingleWriter, and only if every
// write of the collection goes through this package. The relay's start
// sweep fills it (WithRelay); a store without a relay fills it with
// FillListIndex. Until it is filled, List asks the database.
func MemoryListIndex(fields ...string) Option {
	return func(o *options_) { o.mem, o.hasMem = fields, true }
}

// MemoryListEveryAccount has the memory list index (MemoryListIndex) also
// keep one list of every account's records, which ListEveryAccount pages
// through (a review queue across accounts).
func MemoryListEveryAccount() Option { return func(o *options_) { o.every = true } }

// WithRelay has the relay publish events right after each write (and
// sweep the collection for any it missed).
func WithRelay(r *Relay) Option { return func(o *options_) { o.relay = r } }

// New returns a store over coll; kind names the resource in error messages.
func New[T any](coll *mongo.Collection, kind string, opts ...Option) *Store[T] {
	o := options_{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store[T]{coll: coll, kind: kind, now: o.now, relay: o.relay, idOnly: o.idOnly}
	if o.idOnly && o.cache > 0 {
		s.cache = registerCache(coll, o.cache)
	}
	if o.idOnly && o.hasMem {
		s.mem = newOrderedIndex("created", o.every, o.mem)
	}
	if o.relay != nil {
		o.relay.watch(coll, s.mem)
	}
	return s
}

// FillListIndex reads every record once, projected to what the memory list
// index keeps, and makes List page through the index from then on. It is
// for a store with MemoryListIndex and no relay (the relay's start sweep
// fills the others), called once at start; for any other store it does
// nothing. Records written while it reads are kept as written.
func (s *Store[T]) FillListIndex(ctx context.Context) error {
	if s.mem == nil || s.relay != nil {
		return nil
	}
	return fill(ctx, s.coll, s.mem)
}

// Collection returns the underlying collection (for indexes and the relay).
func (s *Store[T]) Collection() *mongo.Collection { return s.coll }

// EnsureIndexes creates the indexes every store needs (ListIndex, for
// listing) and extra ones. Only missing indexes are created: FerretDB v1
// fails on createIndexes for an index that already exists with other keys
// in the same call, which every restart would hit.
func (s *Store[T]) EnsureIndexes(ctx context.Context, extra ...mongo.IndexModel) error {
	models := append([]mongo.IndexModel{{Keys: ListIndex}}, extra...)
	if !s.idOnly {
		// FerretDB v1 neither has partial indexes nor would use one; its
		// single-writer relay sweeps only at start (relay.go).
		models = append(models, mongo.IndexModel{Keys: PendingIndex, Options: options.Index().SetPartialFilterExpression(bson.D{{Key: "pending", Value: true}})})
	}
	cur, err := s.coll.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("list indexes of %s: %w", s.coll.Name(), err)
	}
	var existing []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &existing); err != nil {
		return fmt.Errorf("list indexes of %s: %w", s.coll.Name(), err)
	}
	have := map[string]bool{}
	for _, ix := range existing {
		have[ix.Name] = true
	}
	for _, m := range models {
		name := indexName(m.Keys.(bson.D))
		if have[name] {
			continue
		}
		if m.Options == nil {
			m.Options = options.Index()
		}
		m.Options.SetName(name)
		if _, err := s.coll.Indexes().CreateOne(ctx, m); err != nil {
			var ce mongo.CommandError
			if errors.As(err, &ce) && ce.Name == "NotImplemented" && name == indexName(PendingIndex) {
				continue // FerretDB, for a store not told it is the single writer
			}
			return fmt.Errorf("create index %s on %s: %w", name, s.coll.Name(), err)
		}
	}
	return nil
}

// ListIndex is the index List pages through: an account's records in
// the listing order, so a page after a keyset position is an index range
// on MongoDB, as cheap on page 1,000 as on page 1. (It replaces
// account_1_created_-1, which lacked _id; that index is left where it
// exists, as a prefix of this one it is merely redundant.)
var ListIndex = bson.D{{Key: "account", Value: 1}, {Key: "created", Value: -1}, {Key: "_id", Value: -1}}

// PendingIndex, partial on pending: true, holds only the records whose
// outbox the relay has yet to publish, so its sweep reads those alone.
var PendingIndex = bson.D{{Key: "pending", Value: 1}}

// indexName is MongoDB's default name for an index: key_direction pairs.
func indexName(keys bson.D) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s_%v", k.Key, k.Value))
	}
	return strings.Join(parts, "_")
}

// NewID returns a random resource id: 20 lower-case base32 characters.
func NewID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return encodeID(b[:])
}

// IDFor derives the id of a resource created with a client's request_id, so
// that a retried create hits the same _id and finds the first one (AIP-155).
func IDFor(account, requestID string) string {
	h := sha256.Sum256([]byte(account + "\x00" + requestID))
	return encodeID(h[:12])
}

func encodeID(b []byte) string {
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// Create inserts doc with its first events. If a record with the id exists
// for the same account, it is returned with created=false (an idempotent
// retry); for another account the id is taken and AlreadyExists is returned.
func (s *Store[T]) Create(ctx context.Context, id, account string, doc T, evs ...events.Event) (rec *Record[T], created bool, err error) {
	now := s.now().UTC()
	r := &Record[T]{ID: id, Account: account, Version: 1, Revision: 1, Created: now, Updated: now, Outbox: nonNil(evs), Pending: len(evs) > 0, Doc: doc}
	raw, err := bson.Marshal(r)
	if err != nil {
		return nil, false, fmt.Errorf("encode %s %s: %w", s.kind, id, err)
	}
	var gen uint64
	if s.cache != nil {
		gen = s.cache.genOf(id)
	}
	if _, err := s.coll.InsertOne(ctx, bson.Raw(raw)); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			existing, gerr := s.Get(ctx, account, id)
			if gerr != nil {
				return nil, false, apierr.New(apierr.AlreadyExists, "ALREADY_EXISTS", "%s %s already exists", s.kind, id)
			}
			return existing, false, nil
		}
		s.notify(id, len(evs)) // it may have been made: see notify
		// Listed as unknown: a page reads it and skips it if absent.
		if s.mem != nil {
			s.mem.set(raw)
		}
		s.writeFailed(id)
		return nil, false, fmt.Errorf("insert %s %s: %w", s.kind, id, err)
	}
	if s.mem != nil {
		s.mem.set(raw)
	}
	if s.cache != nil {
		// As a read's fill: kept only if no write of the stripe began or
		// ended since the insert was sent.
		s.cache.put(id, raw, gen)
	}
	s.notifyWritten(r)
	return r, true, nil
}

// Get reads a record by id. A record of another account is NotFound, so
// names do not leak. account "" reads any account's record (internal use).
func (s *Store[T]) Get(ctx context.Context, account, id string) (*Record[T], error) {
	if s.cache == nil {
		return s.read(ctx, account, id)
	}
	raw, gen, ok := s.cache.get(id)
	if !ok {
		var err error
		raw, err = s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
		if err == nil {
			raw = append([]byte(nil), raw...) // the cache keeps it
			s.cache.put(id, raw, gen)
		}
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, apierr.NotFoundf(s.kind + " " + id)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w", s.kind, id, err)
		}
	}
	var r Record[T]
	if err := bson.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("read %s %s: %w", s.kind, id, err)
	}
	if account != "" && r.Account != account {
		return nil, apierr.NotFoundf(s.kind + " " + id)
	}
	return &r, nil
}

// read is Get from the database, never the cache.
func (s *Store[T]) read(ctx context.Context, account, id string) (*Record[T], error) {
	var r Record[T]
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && account != "" && r.Account != account) {
		return nil, apierr.NotFoundf(s.kind + " " + id)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", s.kind, id, err)
	}
	return &r, nil
}

// readLocked is what an update decides on, under the record's lock: the
// bytes the last write under the lock left or the last read under it saw
// (see readCache.hold), else the database. As the only writer holds the
// lock, nothing can have changed the record since; a write whose outcome is
// unknown makes it suspect, and then only the database is asked.
func (s *Store[T]) readLocked(ctx context.Context, account, id string) (*Record[T], error) {
	if s.cache == nil {
		return s.read(ctx, account, id)
	}
	raw, ok := s.cache.heldBytes(id)
	if !ok {
		got, err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, apierr.NotFoundf(s.kind + " " + id)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w", s.kind, id, err)
		}
		raw = append([]byte(nil), got...)
		s.cache.hold(id, raw)
	}
	var r Record[T]
	if err := bson.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("read %s %s: %w", s.kind, id, err)
	}
	if account != "" && r.Account != account {
		return nil, apierr.NotFoundf(s.kind + " " + id)
	}
	return &r, nil
}

// Mutation is the decision an update makes: change doc in place and return
// the events to publish, or return an error to abort without writing.
// Returning no events and ErrUnchanged skips the write.
type Mutation[T any] func(doc *T) ([]events.Event, error)

// ErrUnchanged, returned by a Mutation, ends the update without writing (for
// idempotent no-ops); Update then returns the current record and no error.
var ErrUnchanged = errors.New("unchanged")

// Update loads the record, lets fn decide, and writes it back if nobody
// wrote in between; on a race it reloads and decides again.
func (s *Store[T]) Update(ctx context.Context, account, id string, fn Mutation[T]) (*Record[T], error) {
	return s.UpdateRecord(ctx, account, id, func(r *Record[T]) ([]events.Event, error) { return fn(&r.Doc) })
}

// UpdateRecord is Update for mutations that need the record's bookkeeping,
// such as an etag check against Revision.
func (s *Store[T]) UpdateRecord(ctx context.Context, account, id string, fn func(r *Record[T]) ([]events.Event, error)) (*Record[T], error) {
	for attempt := 0; attempt < 10; attempt++ {
		r, err := s.updateOnce(ctx, account, id, fn)
		if err != errRace {
			return r, err
		}
		if err := sleepCtx(ctx, time.Duration(attempt+1)*5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return nil, ErrConflict
}

var errRace = errors.New("version changed")

func (s *Store[T]) updateOnce(ctx context.Context, account, id string, fn func(r *Record[T]) ([]events.Event, error)) (*Record[T], error) {
	unlock := lockDoc(s.coll, id)
	defer unlock()
	r, err := s.readLocked(ctx, account, id)
	if err != nil {
		return nil, err
	}
	evs, err := fn(r)
	if errors.Is(err, ErrUnchanged) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	prev := r.Version
	r.Version++
	r.Revision++
	r.Updated = s.now().UTC()
	r.Outbox = append(r.Outbox, evs...)
	r.Pending = len(r.Outbox) > 0
	// The version filter is what guards concurrent writers on MongoDB;
	// lockDoc adds the guarantee FerretDB lacks (see lock.go).
	filter := bson.D{{Key: "_id", Value: id}, {Key: "version", Value: prev}}
	if s.idOnly {
		filter = filter[:1] // the version was read under lockDoc
	}
	err = s.coll.FindOneAndUpdate(ctx, filter,
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "version", Value: r.Version},
			{Key: "revision", Value: r.Revision},
			{Key: "updated", Value: r.Updated},
			{Key: "outbox", Value: r.Outbox},
			{Key: "pending", Value: r.Pending},
			{Key: "doc", Value: r.Doc},
		}}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		if s.cache != nil {
			s.cache.hold(id, nil)
		}
		return nil, errRace
	}
	if err != nil {
		s.notify(id, len(evs)) // it may have been made: see notify
		s.writeFailed(id)
		return nil, fmt.Errorf("write %s %s: %w", s.kind, id, err)
	}
	s.written(r)
	if len(evs) > 0 {
		s.notifyWritten(r)
	}
	return r, nil
}

// writeFailed is told of a write whose outcome is unknown (the database
// may still make it): the read cache and the memory index stop trusting
// what they hold of the record.
func (s *Store[T]) writeFailed(id string) {
	writeFailed(s.coll, id)
	if s.mem != nil {
		s.mem.forget(id)
	}
}

// written tells the memory list index and the read cache what the
// database holds for r after an update (the caller holds r's lock): the
// record as written, encoded once for both. (BSON keeps times to the
// millisecond, as the database does, so these are the bytes a read gets.)
func (s *Store[T]) written(r *Record[T]) {
	if s.mem == nil && s.cache == nil {
		return
	}
	raw, err := bson.Marshal(r)
	if err != nil {
		// It was just encoded for the write; if not now, know nothing.
		if s.mem != nil {
			s.mem.forget(r.ID)
		}
		if s.cache != nil {
			s.cache.hold(r.ID, nil)
		}
		return
	}
	if s.mem != nil {
		s.mem.set(raw)
	}
	if s.cache != nil {
		s.cache.hold(r.ID, raw)
	}
}

// Upsert creates the record with doc or, if it exists, lets merge fold doc
// into it; merge reports whether it changed anything (no write if not).
func (s *Store[T]) Upsert(ctx context.Context, id, account string, doc T, merge func(cur *T) bool) (*Record[T], error) {
	rec, created, err := s.Create(ctx, id, account, doc)
	if err != nil || created {
		return rec, err
	}
	return s.Update(ctx, account, id, func(cur *T) ([]events.Event, error) {
		if !merge(cur) {
			return nil, ErrUnchanged
		}
		return nil, nil
	})
}

// UpdateEach applies fn, as Update does, to every record of the account
// that matches filter (keys like "doc.application"), page by page, and
// returns the records as written. Pages follow a keyset position, so a
// record fn takes out of filter does not shift the pages after it.
func (s *Store[T]) UpdateEach(ctx context.Context, account string, filter bson.D, fn func(r *Record[T]) ([]events.Event, error)) ([]*Record[T], error) {
	const pageSize = 500
	var out []*Record[T]
	var after *Position
	for {
		recs, more, err := s.List(ctx, account, ListOptions{Filter: filter, After: after, Limit: pageSize})
		if err != nil {
			return nil, err
		}
		if len(recs) > 0 {
			p := PositionOf(recs[len(recs)-1])
			after = &p
		}
		for _, r := range recs {
			got, err := s.UpdateRecord(ctx, account, r.ID, fn)
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

// Delete removes a record of the account; another account's is NotFound.
func (s *Store[T]) Delete(ctx context.Context, account, id string) error {
	if _, err := s.Get(ctx, account, id); err != nil {
		return err
	}
	return s.Remove(ctx, id)
}

// Remove deletes the record id of whichever account, under its lock, so
// the read cache and the memory index see it go; a missing record is not
// an error. It is for a service's own bookkeeping (an upload undone, a
// delivery done); a customer's delete is Delete, which checks the account.
func (s *Store[T]) Remove(ctx context.Context, id string) error {
	unlock := lockDoc(s.coll, id)
	defer unlock()
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		s.writeFailed(id)
		return fmt.Errorf("delete %s %s: %w", s.kind, id, err)
	}
	if s.cache != nil {
		s.cache.hold(id, nil)
	}
	if s.mem != nil {
		s.mem.remove(id)
	}
	return nil
}

// RemoveMatching deletes every record that matches filter, one by one by
// _id (Remove), and returns how many it deleted. The filter is a query
// (Find), so it is for rare bulk work, such as a webhook's deliveries when
// the webhook goes, not for a hot path.
func (s *Store[T]) RemoveMatching(ctx context.Context, filter bson.D) (int, error) {
	cur, err := s.coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("find %s to delete: %w", s.kind, err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return 0, fmt.Errorf("find %s to delete: %w", s.kind, err)
	}
	for i, x := range ids {
		if err := s.Remove(ctx, x.ID); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}

// ListOptions selects a page of an account's records.
type ListOptions struct {
	// Filter on fields of Doc, as bson with keys like "doc.state".
	Filter bson.D
	// Offset skips records: it costs in proportion to the offset and
	// shifts when records come and go; prefer After.
	Offset int64
	Limit  int64
	// After, if set, lists the records that follow it in the listing
	// order (keyset pagination, in place of Offset): newest first, created
	// before it, or created at the same time with a smaller _id.
	After *Position
	// OldestFirst lists in the opposite order: After then selects the
	// records created after it, or at the same time with a greater _id.
	OldestFirst bool
}

// Position is a record's place in the listing order.
type Position struct {
	Created time.Time
	ID      string
}

// PositionOf is r's place in the listing order.
func PositionOf[T any](r *Record[T]) Position { return Position{Created: r.Created, ID: r.ID} }

// List returns an account's records newest first (or oldest first), and
// whether more follow.
func (s *Store[T]) List(ctx context.Context, account string, o ListOptions) ([]*Record[T], bool, error) {
	if account == "" {
		// "" pages every account's records in the memory index; a
		// caller that lost its account must not see them.
		return nil, false, fmt.Errorf("list %s: no account", s.kind)
	}
	return s.list(ctx, account, o)
}

// ListEveryAccount is List over the records of every account, for an
// operator's view (the organization review queue), never a customer's.
// With MemoryListIndex and MemoryListEveryAccount it pages through memory.
func (s *Store[T]) ListEveryAccount(ctx context.Context, o ListOptions) ([]*Record[T], bool, error) {
	return s.list(ctx, "", o)
}

func (s *Store[T]) list(ctx context.Context, account string, o ListOptions) ([]*Record[T], bool, error) {
	if s.mem != nil && o.Offset == 0 && (account != "" || s.mem.everyAccount) && s.mem.covers(o.Filter) {
		recs, more, err := s.listMem(ctx, account, o)
		if !errors.Is(err, errUnsupported) {
			return recs, more, err
		}
	}
	return s.listDB(ctx, account, o)
}

// listMem is List through the memory index: the page's records are read
// by _id, and only they.
func (s *Store[T]) listMem(ctx context.Context, account string, o ListOptions) ([]*Record[T], bool, error) {
	var out []*Record[T]
	after := o.After
	for int64(len(out)) <= o.Limit {
		want := int(o.Limit) + 1 - len(out)
		cands, err := s.mem.page(account, after, o.Filter, want, o.OldestFirst)
		if err != nil {
			return nil, false, err
		}
		for _, c := range cands {
			p := c.pos
			after = &p
			r, err := s.Get(ctx, account, c.pos.ID)
			if errors.Is(err, apierr.ErrNotFound) {
				continue // deleted, or a create that was never made
			}
			if err != nil {
				return nil, false, err
			}
			if c.unknown {
				ok, err := matchRecord(r, o.Filter)
				if err != nil {
					return nil, false, err
				}
				if !ok {
					continue
				}
			}
			out = append(out, r)
		}
		if len(cands) < want {
			break // the account's list ends
		}
	}
	more := int64(len(out)) > o.Limit
	if more {
		out = out[:o.Limit]
	}
	return out, more, nil
}

// matchRecord is match on r as it is stored.
func matchRecord[T any](r *Record[T], filter bson.D) (bool, error) {
	raw, err := bson.Marshal(r)
	if err != nil {
		return false, err
	}
	return match(raw, filter)
}

// listDB is List as a query; account "" is every account's.
func (s *Store[T]) listDB(ctx context.Context, account string, o ListOptions) ([]*Record[T], bool, error) {
	filter := bson.D{}
	if account != "" {
		filter = bson.D{{Key: "account", Value: account}}
	}
	filter = append(filter, o.Filter...)
	if p := o.After; p != nil {
		// created <= the position's (>= oldest first) is what bounds
		// MongoDB's scan of ListIndex to start at the position; the $or
		// then drops the few records of that same instant at or before it.
		bound, strict := "$lte", "$lt"
		if o.OldestFirst {
			bound, strict = "$gte", "$gt"
		}
		filter = append(filter, bson.E{Key: "created", Value: bson.D{{Key: bound, Value: p.Created}}})
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created", Value: bson.D{{Key: strict, Value: p.Created}}}},
			bson.D{{Key: "created", Value: p.Created}, {Key: "_id", Value: bson.D{{Key: strict, Value: p.ID}}}},
		}})
	}
	dir := -1
	if o.OldestFirst {
		dir = 1
	}
	return s.find(ctx, filter, dir, o.Offset, o.Limit)
}

// Find returns records of any account matching filter, oldest first, for
// internal sweeps (filter keys are full paths, e.g. "doc.state").
func (s *Store[T]) Find(ctx context.Context, filter bson.D, limit int64) ([]*Record[T], error) {
	opts := options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(limit)
	}
	cur, err := s.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", s.kind, err)
	}
	var out []*Record[T]
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("find %s: %w", s.kind, err)
	}
	return out, nil
}

func (s *Store[T]) find(ctx context.Context, filter bson.D, dir int, offset, limit int64) ([]*Record[T], bool, error) {
	opts := options.Find().
		SetSort(bson.D{{Key: "created", Value: dir}, {Key: "_id", Value: dir}}).
		SetSkip(offset).
		SetLimit(limit + 1)
	cur, err := s.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", s.kind, err)
	}
	var out []*Record[T]
	if err := cur.All(ctx, &out); err != nil {
		return nil, false, fmt.Errorf("list %s: %w", s.kind, err)
	}
	more := int64(len(out)) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// notify tells the relay that record id has events in its outbox. It is
// also called when a write failed: a connection cut after
// the write was sent leaves it unknown whether the database made it, and if
// it did, its events must still go out. A single-writer relay sweeps only
// now and then, so without this they would wait for that sweep (found by
// TestChaosDatabaseOutage); the relay reads the record by _id and publishes
// whatever outbox it really holds, nothing if the write was not made.
func (s *Store[T]) notify(id string, events int) {
	if events > 0 && s.relay != nil {
		s.relay.Notify(s.coll, id)
	}
}

// notifyWritten hands the relay r's outbox as just written.
func (s *Store[T]) notifyWritten(r *Record[T]) {
	if len(r.Outbox) > 0 && s.relay != nil {
		s.relay.Written(s.coll, r.ID, r.Version, slices.Clone(r.Outbox))
	}
}

func nonNil(evs []events.Event) []events.Event {
	if evs == nil {
		return []events.Event{}
	}
	return evs
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
