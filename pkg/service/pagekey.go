package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/certflow/certflow/pkg/page"
)

// pageKeyCollection holds the service's page-token key, one document.
const (
	pageKeyCollection = "service_keys"
	pageKeyID         = "page-tokens"
	pageKeySize       = 32
)

// PageKeyset returns the service's keyset page tokens, authenticated under
// a random key kept in the service's own database: every replica and every
// restart reads the same key, so a token from one is good on the others,
// and nothing new has to be deployed. The key only makes tokens
// tamper-evident (a client cannot forge a position or carry a token to
// another query or account); it guards no data, and whoever can read the
// database can read the records anyway.
func (b *Base) PageKeyset(ctx context.Context) (*page.Keyset, error) {
	key, err := loadPageKey(ctx, b.DB.Collection(pageKeyCollection))
	if err != nil {
		return nil, err
	}
	return page.NewKeyset(key), nil
}

func loadPageKey(ctx context.Context, coll *mongo.Collection) ([]byte, error) {
	// Two replicas starting at once both insert; the loser reads the
	// winner's key.
	for attempt := 0; attempt < 2; attempt++ {
		var doc struct {
			Key []byte `bson:"key"`
		}
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: pageKeyID}}).Decode(&doc)
		if err == nil {
			if len(doc.Key) < pageKeySize {
				return nil, fmt.Errorf("page-token key in %s is %d bytes; want %d (delete the document to make a new one: open page tokens stop working)", coll.Name(), len(doc.Key), pageKeySize)
			}
			return doc.Key, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return nil, fmt.Errorf("read page-token key: %w", err)
		}
		key := make([]byte, pageKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: pageKeyID}, {Key: "key", Value: key}})
		if err == nil {
			return key, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, fmt.Errorf("store page-token key: %w", err)
		}
	}
	return nil, fmt.Errorf("page-token key in %s neither readable nor writable", coll.Name())
}
