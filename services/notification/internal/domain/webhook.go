package domain

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

// MaxURLLength bounds a webhook URL.
const MaxURLLength = 2048

// MaxWebhooks bounds the webhooks of one account: each event is delivered
// to each of them.
const MaxWebhooks = 20

// SecretPrefix starts every webhook secret, so a leaked one is easy to
// recognise (for example by secret scanners).
const SecretPrefix = "whsec_"

// Webhook is an account's endpoint that receives every lifecycle event of
// the account.
type Webhook struct {
	URL string
	// Secret is the HMAC-SHA256 key, shown only when the webhook is made.
	// The store never writes it: it keeps SealedSecret instead and opens
	// it on read. A record of an earlier version may still hold Secret in
	// the clear until the start-up migration seals it.
	Secret string
	// SealedSecret is Secret sealed under the webhook key-encryption key
	// for the webhook's record (see store.Webhooks).
	SealedSecret []byte `bson:",omitempty"`
	CreateTime   time.Time
}

// WebhookList is the ids of an account's webhooks, in the order they were
// added: one document per account, read by _id for every event, since the
// embedded database would scan the webhooks collection to find an
// account's. It may name a webhook whose delete did not finish; readers
// skip ids whose webhook is gone.
type WebhookList struct {
	IDs []string
}

// Add appends the ids not listed yet and says whether any was.
func (l *WebhookList) Add(ids ...string) bool {
	changed := false
	for _, id := range ids {
		if !slices.Contains(l.IDs, id) {
			l.IDs = append(l.IDs, id)
			changed = true
		}
	}
	return changed
}

// Remove drops the ids and says whether any was listed.
func (l *WebhookList) Remove(ids ...string) bool {
	n := len(l.IDs)
	l.IDs = slices.DeleteFunc(l.IDs, func(id string) bool { return slices.Contains(ids, id) })
	return len(l.IDs) != n
}

// NewWebhook validates rawURL and makes a webhook with a new secret.
func NewWebhook(rawURL string, now time.Time) (Webhook, error) {
	if _, err := ParseWebhookURL(rawURL); err != nil {
		return Webhook{}, err
	}
	return Webhook{URL: rawURL, Secret: NewSecret(), CreateTime: now.UTC()}, nil
}

// ParseWebhookURL accepts an absolute http or https URL with a host, at
// most MaxURLLength long. Where the host may point is checked when a
// delivery connects, since DNS can change after this check.
func ParseWebhookURL(raw string) (*url.URL, error) {
	invalid := func(format string, args ...any) error {
		return apierr.Invalid("webhook.url", "INVALID_WEBHOOK_URL", format, args...)
	}
	switch {
	case raw == "":
		return nil, invalid("webhook.url is required: the http or https URL events are POSTed to")
	case len(raw) > MaxURLLength:
		return nil, invalid("webhook.url is %d characters long; at most %d are allowed", len(raw), MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid("webhook.url %q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, invalid("webhook.url %q must start with https:// or http://", raw)
	}
	if u.Hostname() == "" {
		return nil, invalid("webhook.url %q has no host", raw)
	}
	if u.Fragment != "" {
		return nil, invalid("webhook.url %q has a #fragment, which is never sent; remove it", raw)
	}
	return u, nil
}

// NewSecret returns a random webhook secret: SecretPrefix and 32 random
// bytes in unpadded base64url.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// DeliveryState is where a webhook delivery is.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "PENDING"
	DeliveryDelivered DeliveryState = "DELIVERED"
	DeliveryFailed    DeliveryState = "FAILED"
)

// Delivery is one event's delivery to one webhook, with its attempts.
type Delivery struct {
	// Webhook is the webhook id.
	Webhook   string
	EventID   string
	EventType string
	// Payload is the JSON body, fixed when the delivery is made so every
	// attempt sends the same bytes.
	Payload  string
	State    DeliveryState
	Attempts int
	// LastStatusCode is the last answer's HTTP status, 0 if none came.
	LastStatusCode int
	LastError      string
	// NextAttemptTime is when the delivery is due. A claim moves it to the
	// end of its lease, so what the sweep finds due (state PENDING, this
	// time passed) is exactly what no live replica is attempting.
	NextAttemptTime time.Time
	// LeaseOwner is the replica attempting the delivery until LeaseUntil;
	// empty when none is. A lease that ran out is anyone's to take: its
	// owner stopped or lost the database.
	LeaseOwner  string    `bson:",omitempty"`
	LeaseUntil  time.Time `bson:",omitempty"`
	CreateTime  time.Time
	DeliverTime time.Time
}

// NewDelivery returns a PENDING delivery due now.
func NewDelivery(webhook, eventID, eventType string, payload []byte, now time.Time) Delivery {
	now = now.UTC()
	return Delivery{
		Webhook: webhook, EventID: eventID, EventType: eventType, Payload: string(payload),
		State: DeliveryPending, NextAttemptTime: now, CreateTime: now,
	}
}

// Claim takes the delivery for one attempt by owner, leased until
// now+lease. It succeeds only for a PENDING delivery that is due, which
// includes one whose lease ran out (its NextAttemptTime is the lease's
// end). Otherwise, for a PENDING delivery, it returns when to look again:
// the next attempt's time or the end of another replica's lease. Claim is
// the decision; the store's version-guarded write makes it exclusive.
func (d *Delivery) Claim(owner string, now time.Time, lease time.Duration) (claimed bool, retryAt time.Time) {
	now = now.UTC()
	if d.State != DeliveryPending {
		return false, time.Time{}
	}
	if d.NextAttemptTime.After(now) {
		return false, d.NextAttemptTime
	}
	d.LeaseOwner, d.LeaseUntil = owner, now.Add(lease)
	d.NextAttemptTime = d.LeaseUntil
	return true, time.Time{}
}

// LeasedBy says whether owner holds the delivery's lease, run out or not:
// only the holder records its attempt, since once it lost the lease another
// replica may be attempting.
func (d *Delivery) LeasedBy(owner string) bool {
	return d.State == DeliveryPending && d.LeaseOwner == owner
}

// maxErrorLength bounds the error kept from an attempt.
const maxErrorLength = 500

// RetryPolicy is how failed deliveries are retried: after the n-th failed
// attempt the next waits Initial·2ⁿ⁻¹, at most Max; the MaxAttempts-th
// failure is final.
type RetryPolicy struct {
	Initial     time.Duration
	Max         time.Duration
	MaxAttempts int
}

// Delay returns the wait after the attempts-th failed attempt.
func (p RetryPolicy) Delay(attempts int) time.Duration {
	d := p.Initial
	for i := 1; i < attempts && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// RecordAttempt records one attempt that got status (0 if no answer came)
// or failed with cause. A 2xx answer without cause delivers; otherwise the
// delivery waits for a retry, or fails for good after p.MaxAttempts. It
// returns how long until the retry, if one is due.
func (d *Delivery) RecordAttempt(status int, cause string, now time.Time, p RetryPolicy) (retryAfter time.Duration, retry bool) {
	now = now.UTC()
	d.Attempts++
	d.LastStatusCode = status
	d.LeaseOwner, d.LeaseUntil = "", time.Time{}
	if cause == "" && status >= 200 && status < 300 {
		d.State, d.LastError, d.DeliverTime, d.NextAttemptTime = DeliveryDelivered, "", now, time.Time{}
		return 0, false
	}
	if cause == "" {
		cause = fmt.Sprintf("endpoint answered HTTP %d; want 2xx", status)
	}
	d.LastError = truncate(cause, maxErrorLength)
	if d.Attempts >= p.MaxAttempts {
		d.State, d.NextAttemptTime = DeliveryFailed, time.Time{}
		return 0, false
	}
	wait := p.Delay(d.Attempts)
	d.NextAttemptTime = now.Add(wait)
	return wait, true
}

// PendingDelivery is a PENDING delivery as the sweep sees it.
type PendingDelivery struct {
	ID              string
	Account         string
	NextAttemptTime time.Time
}
