// Package orgstore holds the MongoDB queries of organization validation
// that pkg/docstore does not have: the review queue (oldest first, any
// account, paged) and removing a document whose listing failed.
package orgstore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/services/verification/internal/orgval"
)

// Reviews is the review collection.
type Reviews struct {
	*docstore.Store[orgval.Review]
}

// reviewIndexes are the review collection's indexes beyond docstore's: the queue
// by state, oldest first.
var reviewIndexes = []mongo.IndexModel{
	{Keys: bson.D{{Key: "doc.state", Value: 1}, {Key: "created", Value: 1}}},
	{Keys: bson.D{{Key: "account", Value: 1}, {Key: "doc.application", Value: 1}}},
}

// EnsureIndexes creates the collection's indexes.
func (r Reviews) EnsureIndexes(ctx context.Context) error {
	return r.Store.EnsureIndexes(ctx, reviewIndexes...)
}

// Queue returns reviews of any account matching filter (keys like
// "doc.state"), oldest first, after a position (keyset: created later, or
// at the same time with a greater _id; nil from the first), and whether
// more follow.
func (r Reviews) Queue(ctx context.Context, filter bson.D, after *docstore.Position, limit int64) ([]*docstore.Record[orgval.Review], bool, error) {
	filter = append(bson.D{}, filter...)
	if p := after; p != nil {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created", Value: bson.D{{Key: "$gt", Value: p.Created}}}},
			bson.D{{Key: "created", Value: p.Created}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: p.ID}}}},
		}})
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(limit + 1)
	cur, err := r.Collection().Find(ctx, filter, opts)
	if err != nil {
		return nil, false, fmt.Errorf("list reviews: %w", err)
	}
	var out []*docstore.Record[orgval.Review]
	if err := cur.All(ctx, &out); err != nil {
		return nil, false, fmt.Errorf("list reviews: %w", err)
	}
	more := int64(len(out)) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// Documents is the document collection: one record per uploaded image,
// content included, read only by _id.
type Documents struct {
	*docstore.Store[orgval.Document]
}

// Delete removes a document record (by _id, through the store, so a read
// cache would see it go); ids are random and only the upload that made one
// deletes it.
func (d Documents) Delete(ctx context.Context, id string) error { return d.Remove(ctx, id) }
