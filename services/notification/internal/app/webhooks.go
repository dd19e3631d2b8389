package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/notification/internal/domain"
	"github.com/certflow/certflow/services/notification/internal/webhook"
)

// Webhooks is the webhook repository.
type Webhooks interface {
	Create(ctx context.Context, id, account string, doc domain.Webhook, evs ...events.Event) (*docstore.Record[domain.Webhook], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Webhook], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Webhook], bool, error)
	Delete(ctx context.Context, account, id string) error
}

// WebhookLists keeps, per account, one document with the ids of its
// webhooks: the fan-out runs for every event and must read by _id only (the
// embedded database scans a collection for any other filter). A listed id
// may have lost its webhook (a delete that stopped half-way); readers skip
// it.
type WebhookLists interface {
	// IDs returns the account's listed webhook ids; none without a list.
	IDs(ctx context.Context, account string) ([]string, error)
	// Add lists ids, making the account's list if needed.
	Add(ctx context.Context, account string, ids ...string) error
	// Remove unlists ids; ids not listed are no error.
	Remove(ctx context.Context, account string, ids ...string) error
}

// Deliveries is the webhook delivery repository.
type Deliveries interface {
	Create(ctx context.Context, id, account string, doc domain.Delivery, evs ...events.Event) (*docstore.Record[domain.Delivery], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Delivery], error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Delivery]) (*docstore.Record[domain.Delivery], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Delivery], bool, error)
	// Due returns up to limit PENDING deliveries of any account due
	// before the given time, soonest first, after the cursor (nil: from
	// the start): the sweep's bounded query, by index.
	Due(ctx context.Context, before time.Time, after *domain.PendingDelivery, limit int) ([]domain.PendingDelivery, error)
	Delete(ctx context.Context, id string) error
	DeleteForWebhook(ctx context.Context, webhook string) error
}

// Poster sends one signed delivery and returns the answer's status.
type Poster interface {
	Post(ctx context.Context, r webhook.Request) (status int, err error)
}

// Scheduler runs an account's delivery attempt after a delay.
type Scheduler interface {
	Schedule(account, id string, after time.Duration)
}

// ClockSkew is how much earlier than a webhook's creation an event may
// have occurred and still be delivered to it: publishers' clocks differ,
// but a webhook must not receive what happened long before it existed (a
// consumer catching up, a replayed stream).
const ClockSkew = 5 * time.Minute

// CreateWebhook registers a webhook for the account. With a requestID, a
// retry returns the first webhook, secret included (the first answer may
// have been lost), provided it asks for the same URL.
func (a *App) CreateWebhook(ctx context.Context, account, requestID, rawURL string) (*docstore.Record[domain.Webhook], error) {
	h, err := domain.NewWebhook(rawURL, a.now())
	if err != nil {
		return nil, err
	}
	id := docstore.NewID()
	if requestID != "" {
		id = docstore.IDFor(account, "webhook/"+requestID)
	}
	if requestID == "" || !a.exists(ctx, account, id) {
		// The limit is checked without a lock: two concurrent creates may
		// both pass it, which is harmless.
		if err := a.checkWebhookLimit(ctx, account); err != nil {
			return nil, err
		}
	}
	rec, _, err := a.webhooks.Create(ctx, id, account, h)
	if err != nil {
		return nil, err
	}
	// Listed once it exists, so the list never names a webhook not made
	// yet. A create that stops in between leaves the webhook unlisted, so
	// not delivered to, until a retry with its request_id lists it here
	// (whatever its URL) or the next start-up's reconcile does.
	if err := a.lists.Add(ctx, account, rec.ID); err != nil {
		return nil, err
	}
	if rec.Doc.URL != rawURL {
		return nil, apierr.New(apierr.AlreadyExists, "REQUEST_ID_REUSED",
			"request_id %q already created webhooks/%s for another URL; use a new request_id", requestID, id)
	}
	return rec, nil
}

// checkWebhookLimit refuses an account that has domain.MaxWebhooks
// webhooks. It counts the account's list, not the webhooks collection
// (which it would scan), and at the limit reads each listed webhook by _id
// so that ids left by an unfinished delete do not count.
func (a *App) checkWebhookLimit(ctx context.Context, account string) error {
	ids, err := a.lists.IDs(ctx, account)
	if err != nil || len(ids) < domain.MaxWebhooks {
		return err
	}
	live := 0
	for _, id := range ids {
		_, err := a.webhooks.Get(ctx, account, id)
		if errors.Is(err, apierr.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		live++
	}
	if live >= domain.MaxWebhooks {
		return apierr.New(apierr.FailedPrecondition, "TOO_MANY_WEBHOOKS",
			"the account has %d webhooks, the most allowed; delete one first", domain.MaxWebhooks)
	}
	return nil
}

func (a *App) exists(ctx context.Context, account, id string) bool {
	_, err := a.webhooks.Get(ctx, account, id)
	return err == nil
}

// GetWebhook reads an account's webhook.
func (a *App) GetWebhook(ctx context.Context, account, id string) (*docstore.Record[domain.Webhook], error) {
	return a.webhooks.Get(ctx, account, id)
}

// ListWebhooks lists an account's webhooks newest first, those after the
// position after (nil: from the newest).
func (a *App) ListWebhooks(ctx context.Context, account string, after *docstore.Position, limit int64) ([]*docstore.Record[domain.Webhook], bool, error) {
	return a.webhooks.List(ctx, account, docstore.ListOptions{After: after, Limit: limit})
}

// DeleteWebhook deletes an account's webhook and its deliveries; attempts
// already queued find them gone and stop.
func (a *App) DeleteWebhook(ctx context.Context, account, id string) error {
	// The webhook goes first and its id after: a delete that stops in
	// between leaves an id the fan-out skips, never a live webhook
	// unlisted. A retry finds the webhook gone (NotFound) and still
	// unlists the id; the list is the caller's own, so an id of another
	// account's webhook is not in it.
	deleteErr := a.webhooks.Delete(ctx, account, id)
	if deleteErr != nil && !errors.Is(deleteErr, apierr.ErrNotFound) {
		return deleteErr
	}
	if err := a.lists.Remove(ctx, account, id); err != nil {
		return err
	}
	if deleteErr != nil {
		return deleteErr
	}
	return a.deliveries.DeleteForWebhook(ctx, id)
}

// ListDeliveries lists the deliveries of an account's webhook newest first,
// those after the position after (nil: from the newest), or NotFound if
// the webhook is not the account's.
func (a *App) ListDeliveries(ctx context.Context, account, webhookID string, after *docstore.Position, limit int64) ([]*docstore.Record[domain.Delivery], bool, error) {
	if _, err := a.webhooks.Get(ctx, account, webhookID); err != nil {
		return nil, false, err
	}
	return a.deliveries.List(ctx, account, docstore.ListOptions{
		Filter: bson.D{{Key: "doc.webhook", Value: webhookID}}, After: after, Limit: limit,
	})
}

// DeliveryID is the id of an event's delivery to a webhook: the same event
// delivered again to the consumer makes no second delivery.
func DeliveryID(webhookID, eventID string) string { return docstore.IDFor(webhookID, eventID) }

// fanOut records a delivery of ev to each webhook of its account and hands
// the new ones to the queue. It runs for every event, so it reads by _id
// only: the account's webhook list, then each listed webhook.
func (a *App) fanOut(ctx context.Context, ev events.Event) error {
	if a.webhooks == nil || a.lists == nil {
		return nil
	}
	newMsg, ok := eventMessages[ev.Type]
	if !ok {
		return nil // a type this build does not know: it cannot render it
	}
	msg := newMsg()
	if err := decode(ev, msg); err != nil {
		return err
	}
	account := accountOf(msg)
	if account == "" {
		return nil
	}
	ids, err := a.lists.IDs(ctx, account)
	if err != nil || len(ids) == 0 {
		return err
	}
	var body []byte
	for _, hookID := range ids {
		h, err := a.webhooks.Get(ctx, account, hookID)
		if errors.Is(err, apierr.ErrNotFound) {
			continue // deleted; its delete unlists the id
		}
		if err != nil {
			return err
		}
		if ev.Time.Before(h.Doc.CreateTime.Add(-ClockSkew)) {
			continue
		}
		if body == nil {
			if body, err = Payload(ev, msg); err != nil {
				return events.Permanent(err)
			}
		}
		id := DeliveryID(h.ID, ev.ID)
		rec, created, err := a.deliveries.Create(ctx, id, account, domain.NewDelivery(h.ID, ev.ID, ev.Type, body, a.now()))
		if err != nil {
			return err
		}
		switch {
		case created:
			a.queue.Schedule(account, id, 0)
		case rec.Doc.State == domain.DeliveryPending:
			// A redelivered event finds its delivery made: scheduled
			// again at its time (the first create may have failed
			// after writing, unscheduled; if it is queued already the
			// queue keeps the earlier time). No sweep has to find it.
			a.queue.Schedule(account, id, rec.Doc.NextAttemptTime.Sub(a.now()))
		}
	}
	return nil
}

// Payload renders the JSON body of a delivery: the CloudEvents envelope
// with the event message as data, in protobuf JSON with the proto field
// names.
func Payload(ev events.Event, msg proto.Message) ([]byte, error) {
	data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("render %s %s as JSON: %w", ev.Type, ev.ID, err)
	}
	body, err := json.Marshal(struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Type            string          `json:"type"`
		Source          string          `json:"source"`
		Subject         string          `json:"subject"`
		Time            string          `json:"time"`
		DataContentType string          `json:"datacontenttype"`
		Data            json.RawMessage `json:"data"`
	}{"1.0", ev.ID, ev.Type, ev.Source, ev.Subject, ev.Time.UTC().Format(time.RFC3339Nano), "application/json", data})
	if err != nil {
		return nil, fmt.Errorf("render %s %s as JSON: %w", ev.Type, ev.ID, err)
	}
	return body, nil
}

// eventMessages maps each event type to its message; every one has an
// account field.
var eventMessages = map[string]func() proto.Message{
	events.OrderCreated:                func() proto.Message { return &eventsv1.OrderCreated{} },
	events.InstanceBound:               func() proto.Message { return &eventsv1.InstanceBound{} },
	events.InstanceReleased:            func() proto.Message { return &eventsv1.InstanceReleased{} },
	events.InstanceIssued:              func() proto.Message { return &eventsv1.InstanceIssued{} },
	events.ApplicationCreated:          func() proto.Message { return &eventsv1.ApplicationCreated{} },
	events.ApplicationSubmitted:        func() proto.Message { return &eventsv1.ApplicationSubmitted{} },
	events.ApplicationStateChanged:     func() proto.Message { return &eventsv1.ApplicationStateChanged{} },
	events.ApplicationFailed:           func() proto.Message { return &eventsv1.ApplicationFailed{} },
	events.ApplicationWithdrawn:        func() proto.Message { return &eventsv1.ApplicationWithdrawn{} },
	events.ApplicationIssued:           func() proto.Message { return &eventsv1.ApplicationIssued{} },
	events.DomainVerified:              func() proto.Message { return &eventsv1.DomainVerified{} },
	events.DomainFailed:                func() proto.Message { return &eventsv1.DomainValidationFailed{} },
	events.ChallengeCancelled:          func() proto.Message { return &eventsv1.ChallengeCancelled{} },
	events.DomainEmailChallenge:        func() proto.Message { return &eventsv1.DomainEmailChallenge{} },
	events.CertificateIssued:           func() proto.Message { return &eventsv1.CertificateIssued{} },
	events.CertificateRevoked:          func() proto.Message { return &eventsv1.CertificateRevoked{} },
	events.CertificateExpiring:         func() proto.Message { return &eventsv1.CertificateExpiring{} },
	events.CertificateRenewalDue:       func() proto.Message { return &eventsv1.CertificateRenewalDue{} },
	events.CertificateExpired:          func() proto.Message { return &eventsv1.CertificateExpired{} },
	events.InstanceExpired:             func() proto.Message { return &eventsv1.InstanceExpired{} },
	events.ApplicationReissueRequested: func() proto.Message { return &eventsv1.ApplicationReissueRequested{} },
	events.ApplicationRenewalStarted:   func() proto.Message { return &eventsv1.ApplicationRenewalStarted{} },
	events.InstanceRevoked:             func() proto.Message { return &eventsv1.InstanceRevoked{} },
	events.ReviewCreated:               func() proto.Message { return &eventsv1.ReviewCreated{} },
	events.PhoneCallRecorded:           func() proto.Message { return &eventsv1.PhoneCallRecorded{} },
	events.ReviewApproved:              func() proto.Message { return &eventsv1.ReviewDecided{} },
	events.ReviewRejected:              func() proto.Message { return &eventsv1.ReviewDecided{} },
	events.ReviewCancelled:             func() proto.Message { return &eventsv1.ReviewDecided{} },
}

func accountOf(m proto.Message) string {
	r := m.ProtoReflect()
	f := r.Descriptor().Fields().ByName("account")
	if f == nil {
		return ""
	}
	return r.Get(f).String()
}

// Deliver makes one attempt of delivery id, records it, and says whether
// and when to look at it again. A delivery that is gone or done needs
// nothing. The attempt is made only under a claim: a lease written with
// the delivery's version, so of several replicas that find the same due
// delivery exactly one sends it; the others look again when its lease
// ends, and find it done (or, if the holder died, due).
func (a *App) Deliver(ctx context.Context, id string) (retryAfter time.Duration, retry bool) {
	rec, err := a.deliveries.Get(ctx, "", id)
	if errors.Is(err, apierr.ErrNotFound) {
		return 0, false
	}
	if err != nil {
		a.log.Warn("webhook delivery not readable; will retry", "delivery", id, "err", err)
		return a.retry.Initial, ctx.Err() == nil
	}
	if rec.Doc.State != domain.DeliveryPending {
		return 0, false
	}
	hook, err := a.webhooks.Get(ctx, rec.Account, rec.Doc.Webhook)
	if errors.Is(err, apierr.ErrNotFound) {
		// Deleted while this delivery waited: drop it with the others.
		if err := a.deliveries.Delete(ctx, id); err != nil {
			a.log.Warn("delivery of a deleted webhook not dropped", "delivery", id, "err", err)
		}
		return 0, false
	}
	if err != nil {
		a.log.Warn("webhook not readable; will retry", "delivery", id, "webhook", rec.Doc.Webhook, "err", err)
		return a.retry.Initial, ctx.Err() == nil
	}
	claimed, lookAgain := false, time.Time{}
	claimStart := time.Now() // real time: the lease is measured against it
	rec, err = a.deliveries.Update(ctx, rec.Account, id, func(d *domain.Delivery) ([]events.Event, error) {
		if claimed, lookAgain = d.Claim(a.replica, a.now(), a.lease); !claimed {
			return nil, docstore.ErrUnchanged
		}
		return nil, nil
	})
	if errors.Is(err, apierr.ErrNotFound) {
		return 0, false
	}
	if err != nil {
		a.log.Warn("webhook delivery not claimed; will retry", "delivery", id, "err", err)
		return a.retry.Initial, ctx.Err() == nil
	}
	if !claimed {
		if lookAgain.IsZero() {
			return 0, false // done meanwhile
		}
		return lookAgain.Sub(a.now()), true
	}
	d := rec.Doc
	actx, cancel := context.WithTimeout(ctx, a.attemptTimeout)
	status, postErr := a.poster.Post(actx, webhook.Request{
		URL: hook.Doc.URL, Secret: hook.Doc.Secret, EventID: d.EventID, EventType: d.EventType, Body: []byte(d.Payload),
	})
	cancel()
	if postErr != nil && ctx.Err() != nil {
		// Shutting down: not the endpoint's fault. The lease runs out and
		// a sweep (this process's after a restart, or another replica's)
		// picks the delivery up again.
		return 0, false
	}
	cause := ""
	if postErr != nil {
		cause = postErr.Error()
	}
	// The outcome is recorded for as long as the lease is ours, not a
	// fixed few seconds, and retried meanwhile: a slow or restarting
	// database must not make the attempt look lost, which would have it
	// sent again once the lease ran out.
	budget := max(a.lease-time.Since(claimStart)-leaseMargin, recordTimeout)
	gaveUp, lost := false, false
	_, err = recordWithin(ctx, budget, func(ctx context.Context) (*docstore.Record[domain.Delivery], error) {
		return a.deliveries.Update(ctx, rec.Account, id, func(d *domain.Delivery) ([]events.Event, error) {
			if !d.LeasedBy(a.replica) {
				// The lease ran out during the attempt and another replica
				// took it (or finished): its attempt is the one to record.
				lost = d.State == domain.DeliveryPending
				return nil, docstore.ErrUnchanged
			}
			retryAfter, retry = d.RecordAttempt(status, cause, a.now(), a.retry)
			gaveUp = d.State == domain.DeliveryFailed
			return nil, nil
		})
	})
	if errors.Is(err, apierr.ErrNotFound) {
		return 0, false
	}
	if err != nil {
		// The endpoint may have it; the lease runs out and the delivery
		// is attempted again: at least once.
		a.log.Warn("webhook delivery attempt not recorded; will retry when its lease ends", "delivery", id, "err", err)
		return a.lease, true
	}
	if lost {
		a.log.Warn("webhook delivery lease ran out during the attempt; another replica took it", "delivery", id, "lease", a.lease)
		return 0, false
	}
	if gaveUp {
		a.log.Warn("webhook delivery failed; giving up", "delivery", id, "webhook", d.Webhook, "event", d.EventID, "status", status, "err", cause)
	}
	return retryAfter, retry
}

// leaseMargin is the part of a lease left unused when recording an
// attempt, for clocks that differ between replicas.
const leaseMargin = 5 * time.Second

// SweepLimit bounds how many due deliveries one periodic sweep schedules;
// the next sweep takes the rest, soonest first.
const SweepLimit = 5000

// sweepPage is how many due deliveries one query of a sweep reads.
const sweepPage = 500

// SweepDeliveries schedules the PENDING deliveries due before now+horizon
// (all of them with a negative horizon) at their time, soonest first, at
// most limit of them (no bound if limit <= 0): the safety net for
// deliveries queued in memory only by an earlier process or another
// replica. It pages through the index on state and due time, so its cost
// follows the due work, not the stored deliveries. A delivery another
// replica is attempting is not due until its lease ends.
func (a *App) SweepDeliveries(ctx context.Context, horizon time.Duration, limit int) (int, error) {
	now := a.now()
	before := now.Add(horizon)
	if horizon < 0 {
		before = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	n := 0
	var after *domain.PendingDelivery
	for limit <= 0 || n < limit {
		page := sweepPage
		if limit > 0 {
			page = min(page, limit-n)
		}
		due, err := a.deliveries.Due(ctx, before, after, page)
		if err != nil {
			return n, err
		}
		for _, d := range due {
			a.queue.Schedule(d.Account, d.ID, d.NextAttemptTime.Sub(now))
		}
		n += len(due)
		if len(due) < page {
			break
		}
		after = &due[len(due)-1]
	}
	return n, nil
}
