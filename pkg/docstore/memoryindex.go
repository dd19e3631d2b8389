package docstore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MemoryIndex is the memory list index of Store for a collection a single
// writer keeps without a Store (the audit trail: insert-only, listed newest
// first by its own time field). The writer calls Set with every record it
// stores, Fill once at start, and pages with Page.
type MemoryIndex struct{ x *memIndex }

// NewMemoryIndex keeps records listed newest first by orderKey (a date),
// with the values of fields for filters; everyAccount also keeps every
// account's records in one list, paged as account "".
func NewMemoryIndex(orderKey string, everyAccount bool, fields ...string) *MemoryIndex {
	return &MemoryIndex{x: newOrderedIndex(orderKey, everyAccount, fields)}
}

// Set records raw, a stored record (at least _id, account, the order key
// and the fields), as written by this process.
func (m *MemoryIndex) Set(raw bson.Raw) { m.x.set(raw) }

// Fill reads every record of coll once, projected to what the index keeps;
// Page answers from then on.
func (m *MemoryIndex) Fill(ctx context.Context, coll *mongo.Collection) error {
	return fill(ctx, coll, m.x)
}

// Page returns the ids of up to n records of the account after the
// position (nil: from the newest) that filter selects, newest first, and
// false if the index cannot answer (not filled yet, or a filter key it
// does not keep, or an operator it does not evaluate): ask the database.
func (m *MemoryIndex) Page(account string, after *Position, filter bson.D, n int) ([]string, bool, error) {
	if !m.x.covers(filter) {
		return nil, false, nil
	}
	cands, err := m.x.page(account, after, filter, n, false)
	if errors.Is(err, errUnsupported) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ids := make([]string, len(cands))
	for i, c := range cands {
		ids[i] = c.pos.ID
	}
	return ids, true, nil
}

// fill reads every record of coll projected to x's keys into x and makes
// it ready.
func fill(ctx context.Context, coll *mongo.Collection, x *memIndex) error {
	proj := bson.D{{Key: "account", Value: 1}, {Key: x.orderKey, Value: 1}}
	for _, f := range x.fields {
		if f != x.orderKey {
			proj = append(proj, bson.E{Key: f, Value: 1})
		}
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(proj))
	if err != nil {
		return fmt.Errorf("read %s for the list index: %w", coll.Name(), err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		x.found(cur.Current)
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s for the list index: %w", coll.Name(), err)
	}
	x.setReady()
	return nil
}
