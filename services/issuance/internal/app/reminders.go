package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/duequeue"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/issuance/internal/domain"
)

// DueCertificates finds the certificates whose next expiry reminder is due
// by now, at most limit.
type DueCertificates interface {
	Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Certificate], error)
}

// Finder is a query over the whole certificate collection (docstore's
// Find).
type Finder interface {
	Find(ctx context.Context, filter bson.D, limit int64) ([]*docstore.Record[domain.Certificate], error)
}

// IndexedDue finds due reminders with one query on the doc.reminderdue
// index: for MongoDB, which several replicas may write.
type IndexedDue struct{ Store Finder }

// Due implements DueCertificates.
func (d IndexedDue) Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Certificate], error) {
	return d.Store.Find(ctx, bson.D{{Key: "doc.reminderdue", Value: bson.D{
		{Key: "$gt", Value: time.Time{}}, {Key: "$lte", Value: now.UTC()},
	}}}, int64(limit))
}

// WithReminders enables expiry reminders at offsets before notAfter,
// found through due.
func (a *App) WithReminders(offsets []time.Duration, due DueCertificates) *App {
	a.reminders, a.due = slices.Clone(offsets), due
	return a
}

// remindBatch bounds the reminders one tick sends; the next tick goes on.
const remindBatch = 500

// Remind sends the expiry reminders due now and returns how many it sent.
// Each is one update of its certificate that records the offset done and
// appends certflow.certificate.expiring to the outbox together, so the
// event is published (at least once, JetStream dropping repeats of its id)
// exactly when the reminder is on record, and a restart neither loses nor
// repeats one.
func (a *App) Remind(ctx context.Context) (int, error) {
	if a.due == nil {
		return 0, nil
	}
	now := a.now()
	recs, err := a.due.Due(ctx, now, remindBatch)
	if err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, r := range recs {
		ok, err := a.remind(ctx, r.Account, r.ID, now)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			sent++
		}
	}
	return sent, errors.Join(errs...)
}

func (a *App) remind(ctx context.Context, account, id string, now time.Time) (bool, error) {
	name := "certificates/" + id
	sent := false
	_, err := a.certs.Update(ctx, account, id, func(c *domain.Certificate) ([]events.Event, error) {
		sent = false
		before, reminded := c.ReminderDue, len(c.Reminded)
		_, ok := c.TakeReminder(a.reminders, now)
		if !ok {
			if c.ReminderDue.Equal(before) && len(c.Reminded) == reminded {
				return nil, docstore.ErrUnchanged
			}
			return nil, nil // rescheduled (offsets changed, expired, replaced)
		}
		ev, err := events.Stamp(events.CertificateExpiring, source, name, now, &eventsv1.CertificateExpiring{
			Account: account, Certificate: name, Application: c.Application, Domains: c.Domains,
			NotAfter: timestamppb.New(c.NotAfter), DaysLeft: int32(c.DaysLeft(now)), SerialNumber: c.SerialHex,
		})
		if err != nil {
			return nil, err
		}
		sent = true
		return []events.Event{ev}, nil
	})
	if errors.Is(err, apierr.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("expiry reminder of %s: %w", name, err)
	}
	return sent, nil
}

// RunReminders sends due reminders every interval until ctx ends.
func (a *App) RunReminders(ctx context.Context, interval time.Duration, log func(msg string, args ...any)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := a.Remind(ctx); err != nil && ctx.Err() == nil {
			log("expiry reminders failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// QueuedCertificates is the certificate repository of the only writer of
// its database (the embedded FerretDB, where any query but by _id reads
// the whole collection): it keeps a duequeue of the certificates with a
// reminder to come, loaded once by Load and updated from every record it
// writes, so that Due reads only the due certificates, by _id. The queue
// holds one small entry (id, account, time) per live certificate not yet
// reminded for the last time; expired, revoked and replaced ones leave it.
type QueuedCertificates struct {
	store interface {
		Certificates
		Finder
	}
	offsets []time.Duration
	q       *duequeue.Queue
}

// NewQueuedCertificates wraps the certificate store; call Load before use.
func NewQueuedCertificates(store interface {
	Certificates
	Finder
}, offsets []time.Duration) *QueuedCertificates {
	return &QueuedCertificates{store: store, offsets: slices.Clone(offsets), q: duequeue.New()}
}

// Load schedules every certificate with a reminder to come: the one scan
// of the collection, at start, before any write. It computes the schedule
// from each certificate (not from its stored ReminderDue), so records made
// before reminders existed, or under other offsets, are scheduled too.
func (s *QueuedCertificates) Load(ctx context.Context, now time.Time) error {
	recs, err := s.store.Find(ctx, bson.D{{Key: "doc.notafter", Value: bson.D{{Key: "$gt", Value: now.UTC()}}}}, 0)
	if err != nil {
		return fmt.Errorf("load certificates to remind: %w", err)
	}
	for _, r := range recs {
		s.track(r)
	}
	return nil
}

// Len is how many certificates are scheduled.
func (s *QueuedCertificates) Len() int { return s.q.Len() }

func (s *QueuedCertificates) track(r *docstore.Record[domain.Certificate]) {
	if r == nil {
		return
	}
	due, _, ok := r.Doc.NextReminder(s.offsets)
	if !ok {
		s.q.Remove(r.ID)
		return
	}
	s.q.Set(duequeue.Entry{ID: r.ID, Account: r.Account, Due: due, Created: r.Created, Revision: r.Revision})
}

// Due implements DueCertificates: it reads each due entry's certificate by
// _id and returns those whose reminder is due, rescheduling the others.
func (s *QueuedCertificates) Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Certificate], error) {
	var out []*docstore.Record[domain.Certificate]
	for _, e := range s.q.Due(now, limit) {
		r, err := s.store.Get(ctx, "", e.ID)
		if errors.Is(err, apierr.ErrNotFound) {
			s.q.Remove(e.ID)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read certificate %s to remind: %w", e.ID, err)
		}
		s.track(r)
		if due, _, ok := r.Doc.NextReminder(s.offsets); ok && !due.After(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Create implements Certificates.
func (s *QueuedCertificates) Create(ctx context.Context, id, account string, doc domain.Certificate, evs ...events.Event) (*docstore.Record[domain.Certificate], bool, error) {
	r, created, err := s.store.Create(ctx, id, account, doc, evs...)
	if err != nil {
		// The write may have happened: read it when due at once.
		s.q.Set(duequeue.Entry{ID: id, Account: account})
		return r, created, err
	}
	s.track(r)
	return r, created, nil
}

// Get implements Certificates.
func (s *QueuedCertificates) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Certificate], error) {
	return s.store.Get(ctx, account, id)
}

// List implements Certificates.
func (s *QueuedCertificates) List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Certificate], bool, error) {
	return s.store.List(ctx, account, o)
}

// Update implements Certificates.
func (s *QueuedCertificates) Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Certificate]) (*docstore.Record[domain.Certificate], error) {
	r, err := s.store.Update(ctx, account, id, fn)
	if err != nil {
		return r, err // the entry stays; Due reads before acting
	}
	s.track(r)
	return r, nil
}
