// Package store keeps the audit trail in MongoDB: insert-only, one document
// per record with the event id as _id.
package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/services/audit/internal/domain"
)

// Trail is the MongoDB trail. It has no update or delete method: the
// collection is only ever inserted into.
type Trail struct {
	coll *mongo.Collection
	// mem, if set, pages the trail in memory (KeepMemoryIndex).
	mem *docstore.MemoryIndex
}

// New returns the trail kept in coll.
func New(coll *mongo.Collection) *Trail { return &Trail{coll: coll} }

// KeepMemoryIndex makes List page through a memory index of every
// record's account, time, action, resource and actor, kept by Append and
// filled by FillListIndex: on the embedded default (FerretDB v1, where this
// service is the trail's only writer) a query reads and decodes the whole
// collection for every page, two records per lifecycle, ever growing.
func (t *Trail) KeepMemoryIndex() {
	t.mem = docstore.NewMemoryIndex("time", true, "action", "resource", "actor", "time")
}

// FillListIndex reads the trail once into the memory index, if kept; List
// asks the database until then.
func (t *Trail) FillListIndex(ctx context.Context) error {
	if t.mem == nil {
		return nil
	}
	return t.mem.Fill(ctx, t.coll)
}

type doc struct {
	ID           string    `bson:"_id"`
	Account      string    `bson:"account"`
	Actor        string    `bson:"actor"`
	ActorAccount string    `bson:"actor_account"`
	Role         string    `bson:"role"`
	Action       string    `bson:"action"`
	Resource     string    `bson:"resource"`
	Source       string    `bson:"source"`
	RequestID    string    `bson:"request_id"`
	Time         time.Time `bson:"time"`
}

// EnsureIndexes makes the listing indexes: an account's newest first, and
// every account's (reviewers). Only missing ones are made (FerretDB v1
// refuses to make an existing one again under other options).
func (t *Trail) EnsureIndexes(ctx context.Context) error {
	cur, err := t.coll.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("list audit indexes: %w", err)
	}
	var have []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &have); err != nil {
		return fmt.Errorf("list audit indexes: %w", err)
	}
	exists := map[string]bool{}
	for _, h := range have {
		exists[h.Name] = true
	}
	for name, keys := range map[string]bson.D{
		"account_1_time_-1__id_-1": {{Key: "account", Value: 1}, {Key: "time", Value: -1}, {Key: "_id", Value: -1}},
		"time_-1__id_-1":           {{Key: "time", Value: -1}, {Key: "_id", Value: -1}},
	} {
		if exists[name] {
			continue
		}
		if _, err := t.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: options.Index().SetName(name)}); err != nil {
			return fmt.Errorf("create audit index %s: %w", name, err)
		}
	}
	return nil
}

// Append inserts r; a record with its id already stored (a redelivered
// event) is left as it is.
func (t *Trail) Append(ctx context.Context, r domain.Record) error {
	d := doc{
		ID: r.ID, Account: r.Account, Actor: r.Actor, ActorAccount: r.ActorAccount, Role: r.Role, Action: r.Action,
		Resource: r.Resource, Source: r.Source, RequestID: r.RequestID,
		// MongoDB keeps milliseconds: the stored time is the one pages
		// are keyed by.
		Time: r.Time.UTC().Truncate(time.Millisecond),
	}
	_, err := t.coll.InsertOne(ctx, d)
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		// Not indexed: the event is delivered again and this is retried.
		return fmt.Errorf("append audit record %s: %w", r.ID, err)
	}
	if t.mem != nil {
		// Also on a duplicate: an insert whose answer was lost stored it.
		raw, merr := bson.Marshal(d)
		if merr != nil {
			return fmt.Errorf("append audit record %s: %w", r.ID, merr)
		}
		t.mem.Set(raw)
	}
	return nil
}

var ops = map[string]string{"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}

// List returns records newest first (by time, then id).
func (t *Trail) List(ctx context.Context, q domain.Query, after *domain.Position, limit int64) ([]domain.Record, bool, error) {
	if t.mem != nil {
		out, more, ok, err := t.listMem(ctx, q, after, limit)
		if ok || err != nil {
			return out, more, err
		}
	}
	f := bson.D{}
	if q.Account != "" {
		f = append(f, bson.E{Key: "account", Value: q.Account})
	}
	f = append(f, filter(q)...)
	if after != nil {
		f = append(f, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "time", Value: bson.D{{Key: "$lt", Value: after.Time}}}},
			bson.D{{Key: "time", Value: after.Time}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: after.ID}}}},
		}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "time", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(limit + 1)
	cur, err := t.coll.Find(ctx, f, opts)
	if err != nil {
		return nil, false, fmt.Errorf("list audit records: %w", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, false, fmt.Errorf("list audit records: %w", err)
	}
	more := int64(len(docs)) > limit
	if more {
		docs = docs[:limit]
	}
	out := make([]domain.Record, len(docs))
	for i, d := range docs {
		out[i] = d.record()
	}
	return out, more, nil
}

// listMem is List through the memory index: the page's records are read
// by _id, and only they. ok is false if the index cannot answer yet.
func (t *Trail) listMem(ctx context.Context, q domain.Query, after *domain.Position, limit int64) (out []domain.Record, more, ok bool, err error) {
	var pos *docstore.Position
	if after != nil {
		pos = &docstore.Position{Created: after.Time, ID: after.ID}
	}
	ids, ok, err := t.mem.Page(q.Account, pos, filter(q), int(limit)+1)
	if !ok || err != nil {
		return nil, false, ok, err
	}
	more = int64(len(ids)) > limit
	if more {
		ids = ids[:limit]
	}
	for _, id := range ids {
		var d doc
		if err := t.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
			return nil, false, true, fmt.Errorf("list audit records: read %s: %w", id, err)
		}
		out = append(out, d.record())
	}
	return out, more, true, nil
}

func (d doc) record() domain.Record {
	return domain.Record{
		ID: d.ID, Account: d.Account, Actor: d.Actor, ActorAccount: d.ActorAccount, Role: d.Role, Action: d.Action,
		Resource: d.Resource, Source: d.Source, RequestID: d.RequestID, Time: d.Time.UTC(),
	}
}

// filter is q's conditions beyond the account.
func filter(q domain.Query) bson.D {
	f := bson.D{}
	for _, e := range []struct{ key, value string }{
		{"action", q.Action}, {"resource", q.Resource}, {"actor", q.Actor},
	} {
		if e.value != "" {
			f = append(f, bson.E{Key: e.key, Value: e.value})
		}
	}
	var tm bson.D
	if q.LowerOp != "" {
		tm = append(tm, bson.E{Key: ops[q.LowerOp], Value: q.Lower.UTC()})
	}
	if q.UpperOp != "" {
		tm = append(tm, bson.E{Key: ops[q.UpperOp], Value: q.Upper.UTC()})
	}
	if len(tm) > 0 {
		f = append(f, bson.E{Key: "time", Value: tm})
	}
	return f
}
