// Package orgstore holds the MongoDB queries of organization validation
// that pkg/docstore does not have: the review queue (oldest first, any
// account, paged) and removing a document whose listing failed.
package orgstore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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
// "doc.state", or "account"), oldest first, after a position (keyset:
// created later, or at the same time with a greater _id; nil from the
// first), and whether more follow. On the embedded default it pages
// through the memory index that ReviewStoreOptions keeps.
func (r Reviews) Queue(ctx context.Context, filter bson.D, after *docstore.Position, limit int64) ([]*docstore.Record[orgval.Review], bool, error) {
	recs, more, err := r.ListEveryAccount(ctx, docstore.ListOptions{Filter: filter, After: after, Limit: limit, OldestFirst: true})
	if err != nil {
		return nil, false, fmt.Errorf("list reviews: %w", err)
	}
	return recs, more, nil
}

// ReviewStoreOptions are the review store's options beyond a service's:
// the queue's filter keys in a memory list of every account's reviews.
func ReviewStoreOptions() []docstore.Option {
	return []docstore.Option{docstore.MemoryListIndex("account", "doc.state", "doc.kind", "doc.application"), docstore.MemoryListEveryAccount()}
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
