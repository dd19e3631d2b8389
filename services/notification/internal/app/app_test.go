package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/notification/internal/app"
	"github.com/certflow/certflow/services/notification/internal/domain"
	"github.com/certflow/certflow/services/notification/internal/mail"
)

// fakeNotes is an in-memory Notifications with docstore's semantics.
type fakeNotes struct {
	mu   sync.Mutex
	recs map[string]*docstore.Record[domain.Notification]
	// updateErrs fail the first Update calls, as a database that is down.
	updateErrs []error
}

func (f *fakeNotes) Create(_ context.Context, id, account string, doc domain.Notification, _ ...events.Event) (*docstore.Record[domain.Notification], bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.recs[id]; ok {
		if r.Account != account {
			return nil, false, apierr.New(apierr.AlreadyExists, "ALREADY_EXISTS", "taken")
		}
		c := *r
		return &c, false, nil
	}
	r := &docstore.Record[domain.Notification]{ID: id, Account: account, Version: 1, Doc: doc}
	f.recs[id] = r
	c := *r
	return &c, true, nil
}

func (f *fakeNotes) Get(_ context.Context, account, id string) (*docstore.Record[domain.Notification], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	if !ok || (account != "" && r.Account != account) {
		return nil, apierr.NotFoundf("notification " + id)
	}
	c := *r
	return &c, nil
}

func (f *fakeNotes) Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Notification]) (*docstore.Record[domain.Notification], error) {
	f.mu.Lock()
	if len(f.updateErrs) > 0 {
		err := f.updateErrs[0]
		f.updateErrs = f.updateErrs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	r, err := f.Get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	if _, err := fn(&r.Doc); errors.Is(err, docstore.ErrUnchanged) {
		return r, nil
	} else if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r.Version++
	f.recs[id] = r
	return r, nil
}

func (f *fakeNotes) List(context.Context, string, docstore.ListOptions) ([]*docstore.Record[domain.Notification], bool, error) {
	return nil, false, errors.New("not used")
}

func (f *fakeNotes) only(t *testing.T) domain.Notification {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recs) != 1 {
		t.Fatalf("%d notifications recorded; want 1", len(f.recs))
	}
	for _, r := range f.recs {
		return r.Doc
	}
	panic("unreachable")
}

type fakeContacts struct{ m map[string]domain.Contact }

func (f *fakeContacts) Save(_ context.Context, c domain.Contact) error {
	if old, ok := f.m[c.Application]; !ok || !old.Seen.After(c.Seen) {
		f.m[c.Application] = c
	}
	return nil
}

func (f *fakeContacts) Get(_ context.Context, id string) (domain.Contact, error) {
	c, ok := f.m[id]
	if !ok {
		return domain.Contact{}, apierr.NotFoundf("contact " + id)
	}
	return c, nil
}

// fakeMailer records mail and fails with errs[i] on the i-th call.
type fakeMailer struct {
	sent  []mail.Mail
	calls int
	errs  []error
}

func (f *fakeMailer) Send(_ context.Context, m mail.Mail) error {
	f.calls++
	if f.calls <= len(f.errs) && f.errs[f.calls-1] != nil {
		return f.errs[f.calls-1]
	}
	f.sent = append(f.sent, m)
	return nil
}

type fixture struct {
	app    *app.App
	notes  *fakeNotes
	mailer *fakeMailer
}

func newFixture(errs ...error) fixture {
	f := fixture{notes: &fakeNotes{recs: map[string]*docstore.Record[domain.Notification]{}}, mailer: &fakeMailer{errs: errs}}
	now := func() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }
	f.app = app.New(app.Deps{
		Notes: f.notes, Contacts: &fakeContacts{m: map[string]domain.Contact{}}, Mailer: f.mailer,
		Now: now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return f
}

func event(t *testing.T, typ, subject string, msg proto.Message) events.Event {
	t.Helper()
	ev, err := events.Stamp(typ, "//certflow/test", subject, time.Now(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func failed(t *testing.T, app, email string) events.Event {
	return event(t, events.ApplicationFailed, app, &eventsv1.ApplicationFailed{
		Account: "alice", Application: app, Cause: "CAA forbids", ApplicantEmail: email,
	})
}

// permanentType is the type of events.Permanent errors, which the events
// package does not export; the consumer acks those instead of redelivering.
var permanentType = reflect.TypeOf(events.Permanent(errors.New("x")))

func isPermanent(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if reflect.TypeOf(e) == permanentType {
			return true
		}
	}
	return false
}

func TestRedeliveredEventSendsOnce(t *testing.T) {
	f := newFixture()
	ev := failed(t, "applications/a1", "alice@example.com")
	for i := range 3 {
		if err := f.app.Handle(context.Background(), ev); err != nil {
			t.Fatalf("Handle(delivery %d) = %v; want nil", i+1, err)
		}
	}
	if len(f.mailer.sent) != 1 || f.mailer.sent[0].To != "alice@example.com" {
		t.Fatalf("sent %v; want one mail to alice@example.com", f.mailer.sent)
	}
	if n := f.notes.only(t); n.State != domain.Sent || n.Attempts != 1 || n.EventID != ev.ID || n.Application != "applications/a1" {
		t.Errorf("notification = %+v; want SENT after 1 attempt for event %s", n, ev.ID)
	}
}

// TestSentWhileDatabaseDown: the mail went out but the database was down
// when its outcome was to be recorded (TestChaosCrashEachService kills it).
// The record is retried until the database is back, so the redelivered
// event finds it SENT and nothing is sent twice.
func TestSentWhileDatabaseDown(t *testing.T) {
	down := errors.New("server selection error: connection refused")
	f := newFixture()
	f.notes.updateErrs = []error{down, down, down}
	ev := failed(t, "applications/a1", "alice@example.com")
	for i := range 2 {
		if err := f.app.Handle(context.Background(), ev); err != nil {
			t.Fatalf("Handle(delivery %d) = %v; want nil", i+1, err)
		}
	}
	if len(f.mailer.sent) != 1 {
		t.Fatalf("sent %d mails; want 1", len(f.mailer.sent))
	}
	if n := f.notes.only(t); n.State != domain.Sent || n.Attempts != 1 {
		t.Errorf("notification = %+v; want SENT after 1 attempt", n)
	}
}

func TestSendFailures(t *testing.T) {
	transient := errors.New("connection refused")
	perm := mail.Permanent(errors.New("550 mailbox unavailable"))
	tests := []struct {
		name         string
		errs         []error
		deliveries   int
		wantRetries  int // deliveries answered with an error
		wantState    domain.State
		wantAttempts int
		wantSent     int
	}{
		{"recovers", []error{transient, transient}, 3, 2, domain.Sent, 3, 1},
		{"gives up after MaxAttempts", slices.Repeat([]error{transient}, 10), 8, domain.MaxAttempts - 1, domain.Failed, domain.MaxAttempts, 0},
		{"permanent refusal", []error{perm}, 3, 0, domain.Failed, 1, 0},
	}
	for _, tt := range tests {
		f := newFixture(tt.errs...)
		ev := failed(t, "applications/a1", "alice@example.com")
		retries := 0
		for range tt.deliveries {
			if err := f.app.Handle(context.Background(), ev); err != nil {
				retries++
			}
		}
		n := f.notes.only(t)
		if retries != tt.wantRetries || n.State != tt.wantState || n.Attempts != tt.wantAttempts || len(f.mailer.sent) != tt.wantSent {
			t.Errorf("%s: %d retries, state %s, %d attempts, %d sent; want %d, %s, %d, %d",
				tt.name, retries, n.State, n.Attempts, len(f.mailer.sent), tt.wantRetries, tt.wantState, tt.wantAttempts, tt.wantSent)
		}
		if tt.wantState == domain.Failed && n.Error == "" {
			t.Errorf("%s: FAILED notification has no error", tt.name)
		}
	}
}

func TestDomainVerifiedWaitsForContact(t *testing.T) {
	f := newFixture()
	ctx := context.Background()
	verified := event(t, events.DomainVerified, "challenges/c1", &eventsv1.DomainVerified{
		Account: "alice", Application: "applications/a2", Domain: "example.com", Method: "DNS_TXT",
	})
	err := f.app.Handle(ctx, verified)
	if err == nil || isPermanent(err) || !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("Handle(DomainVerified before the contact) = %v; want a retryable NotFound", err)
	}
	created := event(t, events.ApplicationCreated, "applications/a2", &eventsv1.ApplicationCreated{
		Account: "alice", Application: "applications/a2", ApplicantEmail: "alice@example.com",
	})
	if err := f.app.Handle(ctx, created); err != nil {
		t.Fatalf("Handle(ApplicationCreated) = %v; want nil", err)
	}
	if err := f.app.Handle(ctx, verified); err != nil {
		t.Fatalf("Handle(DomainVerified after the contact) = %v; want nil", err)
	}
	if len(f.mailer.sent) != 1 || f.mailer.sent[0].Subject != "Domain example.com verified" || f.mailer.sent[0].To != "alice@example.com" {
		t.Errorf("sent %+v; want one \"Domain example.com verified\" to alice@example.com", f.mailer.sent)
	}
}

func TestEventsDropped(t *testing.T) {
	f := newFixture()
	ctx := context.Background()
	if err := f.app.Handle(ctx, failed(t, "applications/a1", "alice@example.com")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		ev            events.Event
		wantPermanent bool // false: ignored with nil
	}{
		{"unknown type", event(t, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: "alice"}), false},
		{"no mail to send", event(t, events.ApplicationWithdrawn, "applications/a1", &eventsv1.ApplicationWithdrawn{
			Account: "alice", Application: "applications/a1", ApplicantEmail: "alice@example.com"}), false},
		{"malformed data", events.Event{ID: "e1", Type: events.ApplicationIssued, Data: []byte{0xff, 0xff}}, true},
		{"bad application name", event(t, events.ApplicationIssued, "x", &eventsv1.ApplicationIssued{
			Account: "alice", Application: "a1", ApplicantEmail: "alice@example.com"}), true},
		{"no email known", event(t, events.ApplicationIssued, "applications/a9", &eventsv1.ApplicationIssued{
			Account: "alice", Application: "applications/a9"}), true},
		{"another account's application", event(t, events.DomainVerified, "challenges/c1", &eventsv1.DomainVerified{
			Account: "mallory", Application: "applications/a1", Domain: "example.com"}), true},
	}
	for _, tt := range tests {
		err := f.app.Handle(ctx, tt.ev)
		if tt.wantPermanent && !isPermanent(err) || !tt.wantPermanent && err != nil {
			t.Errorf("Handle(%s) = %v; want permanent %v", tt.name, err, tt.wantPermanent)
		}
	}
	if len(f.mailer.sent) != 1 {
		t.Errorf("sent %d mails; want only the first one", len(f.mailer.sent))
	}
}
