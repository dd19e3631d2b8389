// Package store keeps the notification service's contacts projection in
// MongoDB. Notifications themselves are docstore records.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

// Contacts is the contacts collection: one document per application, kept
// from the application events. It is a projection, not an aggregate, so a
// plain upsert is enough.
type Contacts struct{ coll *mongo.Collection }

// NewContacts returns the store over coll.
func NewContacts(coll *mongo.Collection) *Contacts { return &Contacts{coll: coll} }

type contactDoc struct {
	ID      string    `bson:"_id"`
	Account string    `bson:"account"`
	Email   string    `bson:"email"`
	Seen    time.Time `bson:"seen"`
}

// Save upserts c unless the stored contact came from a newer event:
// application events can arrive out of order, and a late old one must not
// bring back an email the applicant has since changed.
func (s *Contacts) Save(ctx context.Context, c domain.Contact) error {
	// The filter matches an older (or equal) contact, or none: then the
	// upsert inserts. If a newer one exists the filter misses, the upsert
	// tries to insert the same _id and fails with a duplicate key, which
	// means there is nothing to do.
	_, err := s.coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: c.Application}, {Key: "seen", Value: bson.D{{Key: "$lte", Value: c.Seen}}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "account", Value: c.Account},
			{Key: "email", Value: c.Email},
			{Key: "seen", Value: c.Seen},
		}}},
		options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("save contact of application %s: %w", c.Application, err)
	}
	return nil
}

// Get returns the contact of an application id, or NotFound.
func (s *Contacts) Get(ctx context.Context, application string) (domain.Contact, error) {
	var d contactDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: application}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return domain.Contact{}, apierr.NotFoundf("contact of application " + application)
	}
	if err != nil {
		return domain.Contact{}, fmt.Errorf("read contact of application %s: %w", application, err)
	}
	return domain.Contact{Application: d.ID, Account: d.Account, Email: d.Email, Seen: d.Seen}, nil
}
