// Package app is the notification service's use cases: turn lifecycle
// events into emails to the applicant, record each one, and list them.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/notification/internal/domain"
	"github.com/certflow/certflow/services/notification/internal/mail"
)

// Notifications is the notification repository.
type Notifications interface {
	Create(ctx context.Context, id, account string, doc domain.Notification, evs ...events.Event) (*docstore.Record[domain.Notification], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Notification], error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Notification]) (*docstore.Record[domain.Notification], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Notification], bool, error)
}

// Contacts is the projection of applicants' emails by application id.
type Contacts interface {
	Save(ctx context.Context, c domain.Contact) error
	Get(ctx context.Context, application string) (domain.Contact, error)
}

// recordTimeout bounds recording a send's outcome after the event's
// context is done.
const recordTimeout = 5 * time.Second

// App runs the use cases.
type App struct {
	notes    Notifications
	contacts Contacts
	mailer   mail.Mailer
	now      func() time.Time
	log      *slog.Logger
}

// New returns the use cases.
func New(notes Notifications, contacts Contacts, mailer mail.Mailer, now func() time.Time, log *slog.Logger) *App {
	return &App{notes: notes, contacts: contacts, mailer: mailer, now: now, log: log}
}

// GetNotification reads an account's notification.
func (a *App) GetNotification(ctx context.Context, account, id string) (*docstore.Record[domain.Notification], error) {
	return a.notes.Get(ctx, account, id)
}

// ListNotifications lists an account's notifications newest first,
// optionally only those about one application (applications/{id}).
func (a *App) ListNotifications(ctx context.Context, account, application string, offset, limit int64) ([]*docstore.Record[domain.Notification], bool, error) {
	var f bson.D
	if application != "" {
		f = bson.D{{Key: "doc.application", Value: application}}
	}
	return a.notes.List(ctx, account, docstore.ListOptions{Filter: f, Offset: offset, Limit: limit})
}

// applicationEvent is what every application event carries.
type applicationEvent interface {
	proto.Message
	GetAccount() string
	GetApplication() string
	GetApplicantEmail() string
}

// Handle applies one lifecycle event. It is idempotent: a redelivered
// event neither changes a contact nor sends an email twice. Returning a
// plain error asks for redelivery; events.Permanent errors are logged and
// dropped.
func (a *App) Handle(ctx context.Context, ev events.Event) error {
	switch ev.Type {
	case events.ApplicationCreated:
		_, err := a.applicationEvent(ctx, ev, &eventsv1.ApplicationCreated{})
		return err
	case events.ApplicationStateChanged:
		_, err := a.applicationEvent(ctx, ev, &eventsv1.ApplicationStateChanged{})
		return err
	case events.ApplicationWithdrawn:
		_, err := a.applicationEvent(ctx, ev, &eventsv1.ApplicationWithdrawn{})
		return err
	case events.ApplicationSubmitted:
		m := &eventsv1.ApplicationSubmitted{}
		c, err := a.applicationEvent(ctx, ev, m)
		if err != nil {
			return err
		}
		return a.email(ctx, ev, c, m.GetApplication(), submittedMail(m))
	case events.ApplicationFailed:
		m := &eventsv1.ApplicationFailed{}
		c, err := a.applicationEvent(ctx, ev, m)
		if err != nil {
			return err
		}
		return a.email(ctx, ev, c, m.GetApplication(), domain.FailedMail{Application: m.GetApplication(), Cause: m.GetCause()})
	case events.ApplicationIssued:
		m := &eventsv1.ApplicationIssued{}
		c, err := a.applicationEvent(ctx, ev, m)
		if err != nil {
			return err
		}
		return a.email(ctx, ev, c, m.GetApplication(), domain.IssuedMail{
			Application: m.GetApplication(), Certificate: m.GetCertificate(), Domains: m.GetDomains(),
		})
	case events.DomainVerified:
		return a.domainVerified(ctx, ev)
	}
	// Not ours to act on (orders, instances, certificates, …).
	return nil
}

// applicationEvent decodes an application event into m and keeps its
// applicant's email as the application's contact.
func (a *App) applicationEvent(ctx context.Context, ev events.Event, m applicationEvent) (domain.Contact, error) {
	if err := decode(ev, m); err != nil {
		return domain.Contact{}, err
	}
	id, err := resname.ID("application", "applications", m.GetApplication())
	if err != nil {
		return domain.Contact{}, events.Permanent(fmt.Errorf("%s %s: %w", ev.Type, ev.ID, err))
	}
	c := domain.Contact{Application: id, Account: m.GetAccount(), Email: m.GetApplicantEmail(), Seen: ev.Time}
	if c.Email == "" {
		// An event without the email says nothing new about the contact;
		// fall back to the one already known, if any.
		known, err := a.contacts.Get(ctx, id)
		if errors.Is(err, apierr.ErrNotFound) {
			return c, nil
		}
		if err != nil {
			return domain.Contact{}, err
		}
		if known.Account != c.Account {
			return domain.Contact{}, events.Permanent(fmt.Errorf("%s %s: application %s belongs to account %q, the event names %q", ev.Type, ev.ID, m.GetApplication(), known.Account, c.Account))
		}
		return known, nil
	}
	if err := a.contacts.Save(ctx, c); err != nil {
		return domain.Contact{}, err
	}
	return c, nil
}

func (a *App) domainVerified(ctx context.Context, ev events.Event) error {
	m := &eventsv1.DomainVerified{}
	if err := decode(ev, m); err != nil {
		return err
	}
	id, err := resname.ID("application", "applications", m.GetApplication())
	if err != nil {
		return events.Permanent(fmt.Errorf("%s %s: %w", ev.Type, ev.ID, err))
	}
	c, err := a.contacts.Get(ctx, id)
	if errors.Is(err, apierr.ErrNotFound) {
		// Events of different services arrive in any order: the
		// application's own event may still be on its way. Retry; JetStream
		// gives up after MaxDeliver.
		return fmt.Errorf("%s %s: applicant of %s not known yet: %w", ev.Type, ev.ID, m.GetApplication(), err)
	}
	if err != nil {
		return err
	}
	if c.Account != m.GetAccount() {
		return events.Permanent(fmt.Errorf("%s %s: application %s belongs to account %q, the event names %q", ev.Type, ev.ID, m.GetApplication(), c.Account, m.GetAccount()))
	}
	var verified time.Time
	if m.GetVerifyTime() != nil {
		verified = m.GetVerifyTime().AsTime()
	}
	return a.email(ctx, ev, c, m.GetApplication(), domain.VerifiedMail{
		Application: m.GetApplication(), Domain: m.GetDomain(), Method: m.GetMethod(), VerifyTime: verified,
	})
}

// email sends tmpl to the contact once per event: the notification's id is
// derived from the event id, and a notification that is already SENT or
// FAILED is not sent again.
func (a *App) email(ctx context.Context, ev events.Event, c domain.Contact, application string, tmpl domain.Template) error {
	if c.Email == "" {
		return events.Permanent(fmt.Errorf("%s %s: no applicant email known for %s", ev.Type, ev.ID, application))
	}
	id := docstore.IDFor("email", ev.ID)
	n := domain.NewEmail(c.Email, tmpl.Render(), ev.Type, ev.ID, application, a.now())
	rec, _, err := a.notes.Create(ctx, id, c.Account, n)
	if err != nil {
		return err
	}
	if rec.Doc.Done() {
		return nil
	}
	// The record as stored wins over the one just rendered: a redelivery
	// resends what the first delivery recorded.
	sendErr := a.mailer.Send(ctx, mail.Mail{
		To: rec.Doc.Recipient, Subject: rec.Doc.Subject, Body: rec.Doc.Body, MessageID: id + "@certflow",
	})
	if sendErr != nil && ctx.Err() != nil {
		// Shutting down: this attempt says nothing about the mail server.
		return sendErr
	}
	// Record the outcome even if the consumer is stopping: a mail that is
	// out but not recorded would be sent again on redelivery.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	retry := false
	_, err = a.notes.Update(uctx, rec.Account, id, func(n *domain.Notification) ([]events.Event, error) {
		if n.Done() {
			return nil, docstore.ErrUnchanged
		}
		if sendErr == nil {
			n.MarkSent(a.now())
		} else {
			retry = n.MarkAttemptFailed(sendErr.Error(), mail.IsPermanent(sendErr))
		}
		return nil, nil
	})
	if err != nil {
		// The mail may be out; redelivery may send it again (at least
		// once), with the same Message-ID for the receiver to spot.
		return fmt.Errorf("record notification %s: %w", id, err)
	}
	switch {
	case sendErr == nil:
		return nil
	case retry:
		return fmt.Errorf("notification %s: %w", id, sendErr)
	}
	a.log.Warn("notification failed; giving up", "notification", id, "event", ev.ID, "type", ev.Type, "to", rec.Doc.Recipient, "err", sendErr)
	return nil
}

func decode(ev events.Event, m proto.Message) error {
	if err := proto.Unmarshal(ev.Data, m); err != nil {
		return events.Permanent(fmt.Errorf("decode %s %s: %w", ev.Type, ev.ID, err))
	}
	return nil
}

func submittedMail(m *eventsv1.ApplicationSubmitted) domain.SubmittedMail {
	s := domain.SubmittedMail{
		Application:     m.GetApplication(),
		Attempt:         int(m.GetAttempt()),
		Domains:         m.GetDomains(),
		ValidationLevel: m.GetValidationLevel(),
	}
	if m.GetExpectedIssueTime() != nil {
		s.ExpectedIssueTime = m.GetExpectedIssueTime().AsTime()
	}
	for _, c := range m.GetChallenges() {
		ch := domain.Challenge{
			Domain: c.GetDomain(), Method: c.GetMethod(),
			RecordName: c.GetDnsRecordName(), RecordType: c.GetDnsRecordType(), RecordValue: c.GetDnsRecordValue(),
			URL: c.GetHttpUrl(), Content: c.GetHttpContent(),
		}
		if c.GetExpireTime() != nil {
			ch.ExpireTime = c.GetExpireTime().AsTime()
		}
		s.Challenges = append(s.Challenges, ch)
	}
	return s
}
