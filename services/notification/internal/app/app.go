// Package app is the notification service's use cases: turn lifecycle
// events into emails and SMS to the applicant and deliveries to the
// account's webhooks, record each one, and list them.
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
	"github.com/certflow/certflow/services/notification/internal/sms"
	"github.com/certflow/certflow/services/notification/internal/webhook"
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
// context is done. Until the outcome of a message that went out is
// recorded, a redelivered event sends it again, so a failed record is
// retried for that long: long enough for a database restart, shorter than
// the consumers' 30 s AckWait, after which JetStream redelivers anyway.
const recordTimeout = 20 * time.Second

// record writes a send's outcome with update, retrying while the database
// cannot be reached (errors that are not apierr's), whether or not ctx is
// done: the message is out either way.
func record[T any](ctx context.Context, update func(context.Context) (T, error)) (T, error) {
	return recordWithin(ctx, recordTimeout, update)
}

// recordWithin is record with its own budget.
func recordWithin[T any](ctx context.Context, budget time.Duration, update func(context.Context) (T, error)) (T, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		v, err := update(rctx)
		var known *apierr.Error
		if err == nil || errors.As(err, &known) {
			return v, err
		}
		select {
		case <-rctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// App runs the use cases.
type App struct {
	notes      Notifications
	contacts   Contacts
	mailer     mail.Mailer
	sms        sms.Sender
	webhooks   Webhooks
	lists      WebhookLists
	deliveries Deliveries
	poster     Poster
	queue      Scheduler
	retry      domain.RetryPolicy
	// replica names this instance in the leases it writes.
	replica        string
	lease          time.Duration
	attemptTimeout time.Duration
	now            func() time.Time
	log            *slog.Logger
}

// Deps is what the use cases work with.
type Deps struct {
	Notes    Notifications
	Contacts Contacts
	Mailer   mail.Mailer
	// SMS sends text messages; nil sends none.
	SMS sms.Sender
	// Webhooks and the rest of the webhook parts; a nil Webhooks delivers
	// to none. WebhookLists is required with Webhooks.
	Webhooks     Webhooks
	WebhookLists WebhookLists
	Deliveries   Deliveries
	Poster       Poster
	Queue        Scheduler
	Retry        domain.RetryPolicy
	// Replica names this instance in delivery leases (default a random
	// id): replicas must have different names.
	Replica string
	// AttemptTimeout bounds one delivery attempt (default
	// webhook.Timeout); Lease is how long a claim holds (default
	// DefaultLease) and must outlast an attempt and its recording.
	AttemptTimeout time.Duration
	Lease          time.Duration
	Now            func() time.Time
	Log            *slog.Logger
}

// DefaultLease is how long a claimed delivery is another replica's to
// leave alone: the attempt timeout, the time to record it, and a margin.
const DefaultLease = 30 * time.Second

// New returns the use cases.
func New(d Deps) *App {
	if d.Replica == "" {
		d.Replica = docstore.NewID()
	}
	if d.AttemptTimeout <= 0 {
		d.AttemptTimeout = webhook.Timeout
	}
	if d.Lease <= 0 {
		d.Lease = max(DefaultLease, d.AttemptTimeout+recordTimeout+5*time.Second)
	}
	return &App{
		replica: d.Replica, lease: d.Lease, attemptTimeout: d.AttemptTimeout,
		notes: d.Notes, contacts: d.Contacts, mailer: d.Mailer, sms: d.SMS,
		webhooks: d.Webhooks, lists: d.WebhookLists, deliveries: d.Deliveries, poster: d.Poster, queue: d.Queue, retry: d.Retry,
		now: d.Now, log: d.Log,
	}
}

// GetNotification reads an account's notification.
func (a *App) GetNotification(ctx context.Context, account, id string) (*docstore.Record[domain.Notification], error) {
	return a.notes.Get(ctx, account, id)
}

// ListNotifications lists an account's notifications newest first,
// optionally only those about one application (applications/{id}), those
// after the position after (nil: from the newest).
func (a *App) ListNotifications(ctx context.Context, account, application string, after *docstore.Position, limit int64) ([]*docstore.Record[domain.Notification], bool, error) {
	var f bson.D
	if application != "" {
		f = bson.D{{Key: "doc.application", Value: application}}
	}
	return a.notes.List(ctx, account, docstore.ListOptions{Filter: f, After: after, Limit: limit})
}

// applicationEvent is what every application event carries.
type applicationEvent interface {
	proto.Message
	GetAccount() string
	GetApplication() string
	GetApplicantEmail() string
}

// OrganizationVerification is the application state in which the CA checks
// the organization, by phone among other things.
const OrganizationVerification = "PENDING_ORGANIZATION_VERIFICATION"

// Handle applies one lifecycle event: it messages the applicant where a
// step needs them and queues a delivery to each of the account's webhooks.
// It is idempotent: a redelivered event neither changes a contact nor sends
// a message twice. Returning a plain error asks for redelivery;
// events.Permanent errors are logged and dropped.
func (a *App) Handle(ctx context.Context, ev events.Event) error {
	// A message that failed for good must not stop the webhooks, nor the
	// other way round.
	return combine(a.notify(ctx, ev), a.fanOut(ctx, ev))
}

// notify sends the emails and SMS an event calls for.
func (a *App) notify(ctx context.Context, ev events.Event) error {
	switch ev.Type {
	case events.ApplicationCreated:
		_, err := a.applicationEvent(ctx, ev, &eventsv1.ApplicationCreated{})
		return err
	case events.ApplicationStateChanged:
		m := &eventsv1.ApplicationStateChanged{}
		c, err := a.applicationEvent(ctx, ev, m)
		if err != nil || m.GetToState() != OrganizationVerification {
			return err
		}
		return combine(
			a.email(ctx, ev, c, m.GetApplication(), domain.OrganizationMail{
				Application: m.GetApplication(), ApplicantPhone: m.GetApplicantPhone(), CompanyPhone: m.GetCompanyPhone(),
			}),
			a.text(ctx, ev, m.GetAccount(), m.GetApplicantPhone(), m.GetApplication(), domain.OrganizationSMS(m.GetApplication())),
		)
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
		return combine(
			a.email(ctx, ev, c, m.GetApplication(), domain.FailedMail{Application: m.GetApplication(), Cause: m.GetCause()}),
			a.text(ctx, ev, m.GetAccount(), m.GetApplicantPhone(), m.GetApplication(), domain.FailedSMS(m.GetApplication(), m.GetCause())),
		)
	case events.ApplicationIssued:
		m := &eventsv1.ApplicationIssued{}
		c, err := a.applicationEvent(ctx, ev, m)
		if err != nil {
			return err
		}
		return combine(
			a.email(ctx, ev, c, m.GetApplication(), domain.IssuedMail{
				Application: m.GetApplication(), Certificate: m.GetCertificate(), Domains: m.GetDomains(),
			}),
			a.text(ctx, ev, m.GetAccount(), m.GetApplicantPhone(), m.GetApplication(), domain.IssuedSMS(m.GetCertificate())),
		)
	case events.DomainVerified:
		return a.domainVerified(ctx, ev)
	case events.CertificateRevoked:
		return a.certificateRevoked(ctx, ev)
	case events.CertificateExpiring:
		return a.certificateExpiring(ctx, ev)
	case events.ApplicationRenewalStarted:
		return a.renewalStarted(ctx, ev)
	}
	// certflow.domain.email_sent only announces a validation email: the
	// mail itself was sent through SendDomainValidationEmail, the one way
	// the code reaches this service.
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
	if p, ok := m.(interface{ GetApplicantPhone() string }); ok {
		c.Phone = p.GetApplicantPhone()
	}
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

// knownContact is the applicant of application as its earlier events told
// (ok false: none seen, such as a certificate signed without an
// application this service saw).
func (a *App) knownContact(ctx context.Context, ev events.Event, account, application string) (domain.Contact, bool, error) {
	if application == "" {
		return domain.Contact{}, false, nil
	}
	id, err := resname.ID("application", "applications", application)
	if err != nil {
		return domain.Contact{}, false, events.Permanent(fmt.Errorf("%s %s: %w", ev.Type, ev.ID, err))
	}
	c, err := a.contacts.Get(ctx, id)
	if errors.Is(err, apierr.ErrNotFound) {
		return domain.Contact{}, false, nil
	}
	if err != nil {
		return domain.Contact{}, false, err
	}
	if c.Account != account {
		return domain.Contact{}, false, events.Permanent(fmt.Errorf("%s %s: application %s belongs to account %q, the event names %q", ev.Type, ev.ID, application, c.Account, account))
	}
	return c, true, nil
}

// renewalStarted asks the applicant to act when the automatic renewal
// needs names validated again; a renewal on validations still valid needs
// nothing (the issued mail follows).
func (a *App) renewalStarted(ctx context.Context, ev events.Event) error {
	m := &eventsv1.ApplicationRenewalStarted{}
	if err := decode(ev, m); err != nil {
		return err
	}
	if len(m.GetActionRequired()) == 0 {
		return nil
	}
	c, ok, err := a.knownContact(ctx, ev, m.GetAccount(), m.GetApplication())
	if !ok || err != nil {
		return err
	}
	var notAfter time.Time
	if m.GetNotAfter() != nil {
		notAfter = m.GetNotAfter().AsTime()
	}
	return combine(
		a.email(ctx, ev, c, m.GetApplication(), domain.RenewalActionMail{
			Application: m.GetApplication(), Certificate: m.GetReplaces(), Domains: m.GetActionRequired(), NotAfter: notAfter,
		}),
		a.text(ctx, ev, c.Account, c.Phone, m.GetApplication(), domain.RenewalActionSMS(m.GetApplication(), len(m.GetActionRequired()))),
	)
}

// certificateRevoked mails the applicant of the certificate's application,
// if one is known: the event names no contact of its own.
func (a *App) certificateRevoked(ctx context.Context, ev events.Event) error {
	m := &eventsv1.CertificateRevoked{}
	if err := decode(ev, m); err != nil {
		return err
	}
	c, ok, err := a.knownContact(ctx, ev, m.GetAccount(), m.GetApplication())
	if !ok || err != nil {
		return err
	}
	return a.email(ctx, ev, c, m.GetApplication(), domain.RevokedMail{
		Application: m.GetApplication(), Certificate: m.GetCertificate(), Domains: m.GetDomains(), Reason: m.GetReason(), By: m.GetRevokedBy(),
	})
}

// certificateExpiring reminds the applicant, by email and (when the phone
// is known) SMS, that a certificate not yet replaced nears its notAfter.
// Issuance sends one event per reminder offset; the notification ids come
// from the event id, so a redelivery sends nothing again.
func (a *App) certificateExpiring(ctx context.Context, ev events.Event) error {
	m := &eventsv1.CertificateExpiring{}
	if err := decode(ev, m); err != nil {
		return err
	}
	c, ok, err := a.knownContact(ctx, ev, m.GetAccount(), m.GetApplication())
	if !ok || err != nil {
		return err
	}
	notAfter := m.GetNotAfter().AsTime()
	return combine(
		a.email(ctx, ev, c, m.GetApplication(), domain.ExpiringMail{
			Application: m.GetApplication(), Certificate: m.GetCertificate(), Domains: m.GetDomains(), NotAfter: notAfter, DaysLeft: int(m.GetDaysLeft()),
		}),
		a.text(ctx, ev, c.Account, c.Phone, m.GetApplication(), domain.ExpiringSMS(m.GetCertificate(), int(m.GetDaysLeft()))),
	)
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

// DomainValidationEmail is an EMAIL challenge's mail, as the verification
// service asks for it.
type DomainValidationEmail struct {
	// RequestID identifies the mail: a retry with the same id does not
	// send it twice.
	RequestID   string
	Challenge   string // challenges/{id}
	Application string // applications/{id}
	Domain      string
	Recipient   string
	Code        string
	ExpireTime  time.Time
}

// maxRequestID bounds a DomainValidationEmail request id.
const maxRequestID = 256

// SendDomainValidationEmail mails an EMAIL challenge's code to a constructed
// address of the domain (Baseline Requirements 3.2.2.4.4), not to the
// applicant: receiving it is the proof of control. The notification is
// recorded with the code hidden; the code is in the mail and nowhere else
// (the log mail driver redacts it too). A request already SENT is not sent
// again; one that failed returns the failure, and the caller retries with a
// new code and request id.
func (a *App) SendDomainValidationEmail(ctx context.Context, account string, m DomainValidationEmail) (*docstore.Record[domain.Notification], error) {
	switch {
	case m.RequestID == "" || len(m.RequestID) > maxRequestID:
		return nil, apierr.Invalid("request_id", "INVALID_REQUEST_ID", "request_id is required, at most %d characters", maxRequestID)
	case m.Code == "":
		return nil, apierr.Invalid("code", "MISSING_FIELD", "code is required")
	}
	if _, err := resname.ID("application", "applications", m.Application); err != nil {
		return nil, err
	}
	if _, err := resname.ID("challenge", "challenges", m.Challenge); err != nil {
		return nil, err
	}
	if err := domain.CheckConstructedAddress(m.Recipient, m.Domain); err != nil {
		// The code must reach the domain's own mailbox and nobody else.
		return nil, apierr.Wrap(err, apierr.InvalidArgument, "NOT_CONSTRUCTED_ADDRESS", "%v", err)
	}
	tmpl := domain.DomainControlMail{
		Domain: m.Domain, Challenge: m.Challenge, Application: m.Application, Code: m.Code, ExpireTime: m.ExpireTime,
	}
	id := docstore.IDFor(account, "dcv-email/"+m.RequestID)
	msg := tmpl.Render()
	rec, _, err := a.notes.Create(ctx, id, account, domain.NewEmail(m.Recipient, tmpl.Redacted(), events.DomainEmailChallenge, m.RequestID, m.Application, a.now()))
	if err != nil {
		return nil, err
	}
	switch rec.Doc.State {
	case domain.Sent:
		return rec, nil
	case domain.Failed:
		return nil, apierr.New(apierr.FailedPrecondition, "EMAIL_FAILED", "the validation email of request %s could not be delivered to %s (%s); retry with a new code", m.RequestID, rec.Doc.Recipient, rec.Doc.Error)
	}
	sendErr := a.mailer.Send(ctx, mail.Mail{
		To: rec.Doc.Recipient, Subject: msg.Subject, Body: msg.Body, MessageID: id + "@certflow", Secrets: []string{m.Code},
	})
	if sendErr != nil && ctx.Err() != nil {
		return nil, sendErr
	}
	got, err := record(ctx, func(ctx context.Context) (*docstore.Record[domain.Notification], error) {
		return a.notes.Update(ctx, account, id, func(n *domain.Notification) ([]events.Event, error) {
			if n.Done() {
				return nil, docstore.ErrUnchanged
			}
			if sendErr == nil {
				n.MarkSent(a.now())
			} else {
				n.MarkAttemptFailed(sendErr.Error(), mail.IsPermanent(sendErr))
			}
			return nil, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("record notification %s: %w", id, err)
	}
	if sendErr != nil {
		kind := apierr.Unavailable
		if mail.IsPermanent(sendErr) {
			kind = apierr.FailedPrecondition
		}
		return nil, apierr.Wrap(sendErr, kind, "EMAIL_NOT_SENT", "the validation email to %s was not sent: %v", rec.Doc.Recipient, sendErr)
	}
	return got, nil
}

// email sends tmpl to the contact once per event.
func (a *App) email(ctx context.Context, ev events.Event, c domain.Contact, application string, tmpl domain.Template) error {
	if c.Email == "" {
		return events.Permanent(fmt.Errorf("%s %s: no applicant email known for %s", ev.Type, ev.ID, application))
	}
	id := docstore.IDFor("email", ev.ID)
	msg := tmpl.Render()
	stored := msg
	r, secret := tmpl.(domain.Redactor)
	if secret {
		stored = r.Redacted()
	}
	n := domain.NewEmail(c.Email, stored, ev.Type, ev.ID, application, a.now())
	return a.send(ctx, ev, id, c.Account, n, func(ctx context.Context, rec *domain.Notification) error {
		// The record as stored wins over the one just rendered: a
		// redelivery resends what the first delivery recorded. A record
		// with a secret hidden is rendered again from the same event.
		m := mail.Mail{To: rec.Recipient, Subject: rec.Subject, Body: rec.Body, MessageID: id + "@certflow"}
		if secret {
			m.Subject, m.Body = msg.Subject, msg.Body
		}
		return a.mailer.Send(ctx, m)
	}, mail.IsPermanent)
}

// text sends an SMS to phone once per event; without a phone or an SMS
// driver it sends nothing.
func (a *App) text(ctx context.Context, ev events.Event, account, phone, application, text string) error {
	if a.sms == nil || phone == "" {
		return nil
	}
	id := docstore.IDFor("sms", ev.ID)
	n := domain.NewSMS(phone, text, ev.Type, ev.ID, application, a.now())
	return a.send(ctx, ev, id, account, n, func(ctx context.Context, rec *domain.Notification) error {
		return a.sms.Send(ctx, rec.Recipient, rec.Body)
	}, sms.IsPermanent)
}

// send records n as notification id and sends it once: the id is derived
// from the event id, and a notification already SENT or FAILED is not
// sent again.
func (a *App) send(ctx context.Context, ev events.Event, id, account string, n domain.Notification,
	deliver func(context.Context, *domain.Notification) error, permanent func(error) bool) error {
	rec, _, err := a.notes.Create(ctx, id, account, n)
	if err != nil {
		return err
	}
	if rec.Doc.Done() {
		return nil
	}
	sendErr := deliver(ctx, &rec.Doc)
	if sendErr != nil && ctx.Err() != nil {
		// Shutting down: this attempt says nothing about the server.
		return sendErr
	}
	// Record the outcome even if the consumer is stopping: a message that
	// is out but not recorded would be sent again on redelivery.
	retry := false
	_, err = record(ctx, func(ctx context.Context) (*docstore.Record[domain.Notification], error) {
		return a.notes.Update(ctx, rec.Account, id, func(n *domain.Notification) ([]events.Event, error) {
			if n.Done() {
				return nil, docstore.ErrUnchanged
			}
			if sendErr == nil {
				n.MarkSent(a.now())
			} else {
				retry = n.MarkAttemptFailed(sendErr.Error(), permanent(sendErr))
			}
			return nil, nil
		})
	})
	if err != nil {
		// The message may be out; redelivery may send it again (at least
		// once), for email with the same Message-ID for the receiver to
		// spot.
		return fmt.Errorf("record notification %s: %w", id, err)
	}
	switch {
	case sendErr == nil:
		return nil
	case retry:
		return fmt.Errorf("notification %s: %w", id, sendErr)
	}
	a.log.Warn("notification failed; giving up", "notification", id, "channel", rec.Doc.Channel, "event", ev.ID, "type", ev.Type, "to", rec.Doc.Recipient, "err", sendErr)
	return nil
}

// combine joins the errors of independent steps of one event. If any asks
// for redelivery the result does too, leaving out the permanent ones (the
// consumer would drop the event on seeing one); the steps are idempotent,
// so the ones that succeeded do nothing the next time.
func combine(errs ...error) error {
	var retry, perm []error
	for _, err := range errs {
		switch {
		case err == nil:
		case events.IsPermanent(err):
			perm = append(perm, err)
		default:
			retry = append(retry, err)
		}
	}
	if len(retry) == 0 {
		retry = perm
	}
	if len(retry) == 1 {
		return retry[0]
	}
	return errors.Join(retry...)
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
		Warnings:        m.GetWarnings(),
	}
	if m.GetExpectedIssueTime() != nil {
		s.ExpectedIssueTime = m.GetExpectedIssueTime().AsTime()
	}
	for _, c := range m.GetChallenges() {
		ch := domain.Challenge{
			Name: c.GetChallenge(), Domain: c.GetDomain(), Method: c.GetMethod(), EmailAddress: c.GetEmailAddress(),
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
