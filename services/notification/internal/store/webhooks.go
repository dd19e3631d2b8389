package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

// Webhooks is the webhooks collection: docstore records, plus deleting.
type Webhooks struct {
	*docstore.Store[domain.Webhook]
}

// NewWebhooks returns the store over s.
func NewWebhooks(s *docstore.Store[domain.Webhook]) *Webhooks { return &Webhooks{s} }

// Deliveries is the webhook deliveries collection: docstore records, plus
// the sweep's query and deleting.
type Deliveries struct {
	*docstore.Store[domain.Delivery]
}

// NewDeliveries returns the store over s.
func NewDeliveries(s *docstore.Store[domain.Delivery]) *Deliveries { return &Deliveries{s} }

// Pending returns the id and due time of every PENDING delivery of any
// account, without payloads. It scans on FerretDB: only the slow sweep
// calls it.
func (d *Deliveries) Pending(ctx context.Context) ([]domain.PendingDelivery, error) {
	cur, err := d.Collection().Find(ctx, bson.D{{Key: "doc.state", Value: string(domain.DeliveryPending)}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "doc.nextattempttime", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find pending deliveries: %w", err)
	}
	var docs []struct {
		ID  string `bson:"_id"`
		Doc struct {
			NextAttemptTime time.Time `bson:"nextattempttime"`
		} `bson:"doc"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("find pending deliveries: %w", err)
	}
	out := make([]domain.PendingDelivery, 0, len(docs))
	for _, x := range docs {
		out = append(out, domain.PendingDelivery{ID: x.ID, NextAttemptTime: x.Doc.NextAttemptTime})
	}
	return out, nil
}

// Delete removes one delivery; a missing one is not an error.
func (d *Deliveries) Delete(ctx context.Context, id string) error {
	if _, err := d.Collection().DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete delivery %s: %w", id, err)
	}
	return nil
}

// DeleteForWebhook removes every delivery of a webhook.
func (d *Deliveries) DeleteForWebhook(ctx context.Context, webhook string) error {
	if _, err := d.Collection().DeleteMany(ctx, bson.D{{Key: "doc.webhook", Value: webhook}}); err != nil {
		return fmt.Errorf("delete deliveries of webhook %s: %w", webhook, err)
	}
	return nil
}
