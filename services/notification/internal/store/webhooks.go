package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/sealbox"
	"github.com/certflow/certflow/services/notification/internal/domain"
)

// Webhooks is the webhooks collection: docstore records, plus deleting.
// Signing secrets are sealed at rest: Create writes only SealedSecret, and
// Get opens it into Secret. List leaves secrets out: nothing that lists
// webhooks needs them.
type Webhooks struct {
	*docstore.Store[domain.Webhook]
	box *sealbox.Box
}

// NewWebhooks returns the store over s, sealing secrets with box.
func NewWebhooks(s *docstore.Store[domain.Webhook], box *sealbox.Box) *Webhooks {
	return &Webhooks{Store: s, box: box}
}

// secretOwner binds a sealed secret to its record.
func secretOwner(account, id string) string { return "webhooks/" + id + "@" + account }

// Create stores doc with its secret sealed and returns the record with the
// secret in the clear (the one time it is shown). If the id exists, that
// record is returned, its secret opened.
func (w *Webhooks) Create(ctx context.Context, id, account string, doc domain.Webhook, evs ...events.Event) (*docstore.Record[domain.Webhook], bool, error) {
	if doc.Secret != "" {
		sealed, err := w.box.Seal([]byte(doc.Secret), secretOwner(account, id))
		if err != nil {
			return nil, false, fmt.Errorf("seal secret of webhook %s: %w", id, err)
		}
		doc.Secret, doc.SealedSecret = "", sealed
	}
	rec, created, err := w.Store.Create(ctx, id, account, doc, evs...)
	if err != nil {
		return nil, false, err
	}
	if err := w.open(rec); err != nil {
		return nil, false, err
	}
	return rec, created, nil
}

// Get reads a webhook with its secret opened.
func (w *Webhooks) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Webhook], error) {
	rec, err := w.Store.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	if err := w.open(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// List lists webhooks without their secrets.
func (w *Webhooks) List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Webhook], bool, error) {
	recs, more, err := w.Store.List(ctx, account, o)
	for _, r := range recs {
		r.Doc.Secret, r.Doc.SealedSecret = "", nil
	}
	return recs, more, err
}

func (w *Webhooks) open(rec *docstore.Record[domain.Webhook]) error {
	if len(rec.Doc.SealedSecret) == 0 {
		// Not sealed yet (an earlier version's record): SealSecrets
		// seals it at the next start.
		return nil
	}
	plain, err := w.box.Open(rec.Doc.SealedSecret, secretOwner(rec.Account, rec.ID))
	if err != nil {
		return fmt.Errorf("secret of webhook %s (is the webhook key-encryption key the one it was sealed with?): %w", rec.ID, err)
	}
	rec.Doc.Secret, rec.Doc.SealedSecret = string(plain), nil
	return nil
}

// SealSecrets seals the secrets that records of earlier versions hold in the
// clear. It scans the webhooks collection, so it runs once at start-up.
func (w *Webhooks) SealSecrets(ctx context.Context) (int, error) {
	cur, err := w.Collection().Find(ctx, bson.D{{Key: "doc.secret", Value: bson.D{{Key: "$gt", Value: ""}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "account", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("find webhooks with a clear secret: %w", err)
	}
	var docs []struct {
		ID      string `bson:"_id"`
		Account string `bson:"account"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return 0, fmt.Errorf("find webhooks with a clear secret: %w", err)
	}
	n := 0
	for _, d := range docs {
		_, err := w.Store.Update(ctx, d.Account, d.ID, func(h *domain.Webhook) ([]events.Event, error) {
			if h.Secret == "" {
				return nil, docstore.ErrUnchanged
			}
			sealed, err := w.box.Seal([]byte(h.Secret), secretOwner(d.Account, d.ID))
			if err != nil {
				return nil, err
			}
			h.Secret, h.SealedSecret = "", sealed
			return nil, nil
		})
		if errors.Is(err, apierr.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("seal secret of webhook %s: %w", d.ID, err)
		}
		n++
	}
	return n, nil
}

// Deliveries is the webhook deliveries collection: docstore records, plus
// the sweep's query and deleting.
type Deliveries struct {
	*docstore.Store[domain.Delivery]
}

// NewDeliveries returns the store over s.
func NewDeliveries(s *docstore.Store[domain.Delivery]) *Deliveries { return &Deliveries{s} }

// DueIndex is the index the sweep's query runs on: PENDING deliveries in
// the order they come due.
var DueIndex = bson.D{{Key: "doc.state", Value: 1}, {Key: "doc.nextattempttime", Value: 1}, {Key: "_id", Value: 1}}

// Due returns the id, account and due time of up to limit PENDING
// deliveries of any account due before the given time, soonest first
// (then by _id), after the cursor if one is given, without payloads. On
// MongoDB it reads DueIndex's range; FerretDB's SQLite backend scans, so
// there only the start-up sweep calls it.
func (d *Deliveries) Due(ctx context.Context, before time.Time, after *domain.PendingDelivery, limit int) ([]domain.PendingDelivery, error) {
	filter := bson.D{
		{Key: "doc.state", Value: string(domain.DeliveryPending)},
		{Key: "doc.nextattempttime", Value: bson.D{{Key: "$lt", Value: before}}},
	}
	if after != nil {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "doc.nextattempttime", Value: bson.D{{Key: "$gt", Value: after.NextAttemptTime}}}},
			bson.D{{Key: "doc.nextattempttime", Value: after.NextAttemptTime}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: after.ID}}}},
		}})
	}
	cur, err := d.Collection().Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "doc.nextattempttime", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(limit)).
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "account", Value: 1}, {Key: "doc.nextattempttime", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find due deliveries: %w", err)
	}
	var docs []struct {
		ID      string `bson:"_id"`
		Account string `bson:"account"`
		Doc     struct {
			NextAttemptTime time.Time `bson:"nextattempttime"`
		} `bson:"doc"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("find due deliveries: %w", err)
	}
	out := make([]domain.PendingDelivery, 0, len(docs))
	for _, x := range docs {
		out = append(out, domain.PendingDelivery{ID: x.ID, Account: x.Account, NextAttemptTime: x.Doc.NextAttemptTime})
	}
	return out, nil
}

// Delete removes one delivery; a missing one is not an error.
func (d *Deliveries) Delete(ctx context.Context, id string) error { return d.Remove(ctx, id) }

// DeleteForWebhook removes every delivery of a webhook.
func (d *Deliveries) DeleteForWebhook(ctx context.Context, webhook string) error {
	_, err := d.RemoveMatching(ctx, bson.D{{Key: "doc.webhook", Value: webhook}})
	return err
}

// WebhookLists is the webhook_lists collection: per account one docstore
// record listing its webhook ids (domain.WebhookList), so the per-event
// fan-out reads by _id only. Every write goes through docstore's Update:
// serialized per document in this process, and version-guarded on MongoDB
// where replicas may write at once.
type WebhookLists struct {
	s *docstore.Store[domain.WebhookList]
}

// NewWebhookLists returns the store over s.
func NewWebhookLists(s *docstore.Store[domain.WebhookList]) *WebhookLists {
	return &WebhookLists{s: s}
}

// WebhookListID is the _id of an account's list: a hash, so any account
// string makes a short, fixed-form _id.
func WebhookListID(account string) string { return docstore.IDFor(account, "webhook-list") }

// IDs returns the ids listed for the account; none if it has no list.
// An account without a list gets an empty one, once: every event of the
// account reads its list, and the read cache keeps records, not their
// absence (an account without webhooks was a find per event).
func (l *WebhookLists) IDs(ctx context.Context, account string) ([]string, error) {
	rec, err := l.s.Get(ctx, account, WebhookListID(account))
	if errors.Is(err, apierr.ErrNotFound) {
		// Idempotent on _id: a concurrent Add's list is returned as made.
		rec, _, err = l.s.Create(ctx, WebhookListID(account), account, domain.WebhookList{})
	}
	if err != nil {
		return nil, err
	}
	return rec.Doc.IDs, nil
}

// Add lists ids for the account, making its list if it has none.
func (l *WebhookLists) Add(ctx context.Context, account string, ids ...string) error {
	listID := WebhookListID(account)
	add := func(doc *domain.WebhookList) ([]events.Event, error) {
		if !doc.Add(ids...) {
			return nil, docstore.ErrUnchanged
		}
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		_, err := l.s.Update(ctx, account, listID, add)
		if !errors.Is(err, apierr.ErrNotFound) {
			return err
		}
		if attempt > 0 {
			return fmt.Errorf("webhook list of account %s: created and gone again: %w", account, docstore.ErrConflict)
		}
		var doc domain.WebhookList
		doc.Add(ids...)
		// Create is idempotent on _id: if another writer made the list
		// first, created is false and the update above runs again.
		if _, created, err := l.s.Create(ctx, listID, account, doc); err != nil || created {
			return err
		}
	}
}

// Remove unlists ids of the account; ids not listed are no error.
func (l *WebhookLists) Remove(ctx context.Context, account string, ids ...string) error {
	_, err := l.s.Update(ctx, account, WebhookListID(account), func(doc *domain.WebhookList) ([]events.Event, error) {
		if !doc.Remove(ids...) {
			return nil, docstore.ErrUnchanged
		}
		return nil, nil
	})
	if errors.Is(err, apierr.ErrNotFound) {
		return nil
	}
	return err
}

// Reconcile lists every webhook of hooks in its account's list. It scans the
// webhooks collection, so it runs once at start-up, not per event: it lists
// webhooks made before the lists existed, and any whose create stopped
// between writing the webhook and listing it. It only adds: an id listed
// without its webhook is skipped by readers, while unlisting one a
// concurrent create has just listed would lose it.
func (l *WebhookLists) Reconcile(ctx context.Context, hooks *Webhooks) error {
	cur, err := hooks.Collection().Find(ctx, bson.D{},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "account", Value: 1}}))
	if err != nil {
		return fmt.Errorf("find webhooks: %w", err)
	}
	var docs []struct {
		ID      string `bson:"_id"`
		Account string `bson:"account"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("find webhooks: %w", err)
	}
	byAccount := map[string][]string{}
	for _, d := range docs {
		byAccount[d.Account] = append(byAccount[d.Account], d.ID)
	}
	for account, ids := range byAccount {
		if err := l.Add(ctx, account, ids...); err != nil {
			return fmt.Errorf("list webhooks of account %s: %w", account, err)
		}
	}
	return nil
}
