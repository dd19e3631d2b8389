package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/duequeue"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/issuance/internal/domain"
)

// DueCertificates finds the certificates whose next scheduled work
// (reminder, renewal, expiry: domain.Plan) is due by now, at most limit:
// duequeue.Indexed on MongoDB, duequeue.Tracked for a single writer.
type DueCertificates interface {
	Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Certificate], error)
}

// DueField is the indexed field holding when a certificate's next work is
// due.
const DueField = "doc.reminderdue"

// NewQueuedCertificates wraps the certificate store of the only writer of
// its database with an in-memory schedule of plan (duequeue.Tracked); call
// LoadQueued before use.
func NewQueuedCertificates(store duequeue.Store[domain.Certificate], plan domain.Plan) *duequeue.Tracked[domain.Certificate] {
	return duequeue.NewTracked(store, func(c *domain.Certificate) (time.Time, bool) { return c.NextDue(plan) })
}

// LoadQueued schedules every certificate not yet expired at now, and the
// expired ones whose expiry is still to be announced: the one scan, at
// start.
func LoadQueued(ctx context.Context, q *duequeue.Tracked[domain.Certificate], now time.Time) error {
	return q.Load(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "doc.notafter", Value: bson.D{{Key: "$gt", Value: now.UTC()}}}},
		bson.D{{Key: "doc.reminderdue", Value: bson.D{{Key: "$gt", Value: time.Time{}}}}},
	}}})
}

// WithSchedule enables the scheduled work of plan, found through due.
func (a *App) WithSchedule(plan domain.Plan, due DueCertificates) *App {
	plan.Reminders = slices.Clone(plan.Reminders)
	a.plan, a.due = plan, due
	return a
}

// dueBatch bounds the work one tick does; the next tick goes on.
const dueBatch = 500

// SendDue does the scheduled work due now (expiry reminders, renewal
// requests, expiry announcements) and returns on how many certificates.
// Each is one update of its certificate that records the work done and
// appends its events (certflow.certificate.expiring, .renewal_due,
// .expired) to the outbox together, so an event is published (at least
// once, JetStream dropping repeats of its id) exactly when the work is on
// record, and a restart neither loses nor repeats one.
func (a *App) SendDue(ctx context.Context) (int, error) {
	if a.due == nil {
		return 0, nil
	}
	now := a.now()
	recs, err := a.due.Due(ctx, now, dueBatch)
	if err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, r := range recs {
		ok, err := a.sendDue(ctx, r.Account, r.ID, now)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			sent++
		}
	}
	return sent, errors.Join(errs...)
}

func (a *App) sendDue(ctx context.Context, account, id string, now time.Time) (bool, error) {
	name := "certificates/" + id
	sent := false
	_, err := a.certs.Update(ctx, account, id, func(c *domain.Certificate) ([]events.Event, error) {
		sent = false
		before := *c
		w := c.Take(a.plan, now)
		if !w.Any() {
			if c.ReminderDue.Equal(before.ReminderDue) && len(c.Reminded) == len(before.Reminded) &&
				c.RenewalDone == before.RenewalDone && c.ExpiryDone == before.ExpiryDone {
				return nil, docstore.ErrUnchanged
			}
			return nil, nil // rescheduled (plan changed, expired, replaced)
		}
		evs, err := a.dueEvents(account, name, c, w, now)
		sent = err == nil
		return evs, err
	})
	if errors.Is(err, apierr.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("scheduled work of %s: %w", name, err)
	}
	return sent, nil
}

// dueEvents are the events of the work w found due on c.
func (a *App) dueEvents(account, name string, c *domain.Certificate, w domain.Work, now time.Time) ([]events.Event, error) {
	var out []events.Event
	add := func(typ string, m proto.Message) error {
		ev, err := events.Stamp(typ, source, name, now, m)
		out = append(out, ev)
		return err
	}
	notAfter := timestamppb.New(c.NotAfter)
	if w.Remind {
		if err := add(events.CertificateExpiring, &eventsv1.CertificateExpiring{
			Account: account, Certificate: name, Application: c.Application, Domains: c.Domains,
			NotAfter: notAfter, DaysLeft: int32(c.DaysLeft(now)), SerialNumber: c.SerialHex,
		}); err != nil {
			return nil, err
		}
	}
	if w.Renew {
		if err := add(events.CertificateRenewalDue, &eventsv1.CertificateRenewalDue{
			Account: account, Certificate: name, Application: c.Application, Domains: c.Domains, NotAfter: notAfter,
		}); err != nil {
			return nil, err
		}
	}
	if w.Expired {
		if err := add(events.CertificateExpired, &eventsv1.CertificateExpired{
			Account: account, Certificate: name, Application: c.Application, Domains: c.Domains, NotAfter: notAfter,
			Replaced: c.ReplacedBy != "",
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RunSchedule does the due work every interval until ctx ends.
func (a *App) RunSchedule(ctx context.Context, interval time.Duration, log func(msg string, args ...any)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := a.SendDue(ctx); err != nil && ctx.Err() == nil {
			log("scheduled certificate work failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
