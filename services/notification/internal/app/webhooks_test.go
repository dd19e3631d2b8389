package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/notification/internal/app"
	"github.com/certflow/certflow/services/notification/internal/domain"
	"github.com/certflow/certflow/services/notification/internal/sms"
	"github.com/certflow/certflow/services/notification/internal/webhook"
)

// fakeStore is an in-memory docstore for any document type; List filters
// on doc.webhook only, which is all the use cases ask for.
type fakeStore[T any] struct {
	mu   sync.Mutex
	recs map[string]*docstore.Record[T]
	seq  int
	// webhookOf reads a document's webhook id for the doc.webhook filter.
	webhookOf func(T) string
}

func newFakeStore[T any](webhookOf func(T) string) *fakeStore[T] {
	return &fakeStore[T]{recs: map[string]*docstore.Record[T]{}, webhookOf: webhookOf}
}

func (f *fakeStore[T]) Create(_ context.Context, id, account string, doc T, _ ...events.Event) (*docstore.Record[T], bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.recs[id]; ok {
		if r.Account != account {
			return nil, false, apierr.New(apierr.AlreadyExists, "ALREADY_EXISTS", "taken")
		}
		c := *r
		return &c, false, nil
	}
	f.seq++
	r := &docstore.Record[T]{ID: id, Account: account, Version: 1, Created: time.Unix(int64(f.seq), 0), Doc: doc}
	f.recs[id] = r
	c := *r
	return &c, true, nil
}

func (f *fakeStore[T]) Get(_ context.Context, account, id string) (*docstore.Record[T], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	if !ok || (account != "" && r.Account != account) {
		return nil, apierr.NotFoundf("record " + id)
	}
	c := *r
	return &c, nil
}

func (f *fakeStore[T]) Update(ctx context.Context, account, id string, fn docstore.Mutation[T]) (*docstore.Record[T], error) {
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

func (f *fakeStore[T]) List(_ context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[T], bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*docstore.Record[T]
	for _, r := range f.recs {
		if r.Account != account {
			continue
		}
		if len(o.Filter) == 1 && o.Filter[0].Key == "doc.webhook" && f.webhookOf(r.Doc) != o.Filter[0].Value {
			continue
		}
		c := *r
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *docstore.Record[T]) int { return b.Created.Compare(a.Created) })
	out = out[min(int(o.Offset), len(out)):]
	if o.Limit > 0 && len(out) > int(o.Limit) {
		return out[:o.Limit], true, nil
	}
	return out, false, nil
}

func (f *fakeStore[T]) Delete(_ context.Context, account, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	if !ok || account != "" && r.Account != account {
		return apierr.NotFoundf("record " + id)
	}
	delete(f.recs, id)
	return nil
}

func (f *fakeStore[T]) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.recs)
}

type fakeDeliveries struct{ *fakeStore[domain.Delivery] }

func (f fakeDeliveries) Due(_ context.Context, before time.Time, after *domain.PendingDelivery, limit int) ([]domain.PendingDelivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.PendingDelivery
	for id, r := range f.recs {
		if r.Doc.State == domain.DeliveryPending && r.Doc.NextAttemptTime.Before(before) {
			out = append(out, domain.PendingDelivery{ID: id, Account: r.Account, NextAttemptTime: r.Doc.NextAttemptTime})
		}
	}
	cmp := func(a, b domain.PendingDelivery) int {
		if c := a.NextAttemptTime.Compare(b.NextAttemptTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	slices.SortFunc(out, cmp)
	if after != nil {
		out = slices.DeleteFunc(out, func(d domain.PendingDelivery) bool { return cmp(d, *after) <= 0 })
	}
	return out[:min(limit, len(out))], nil
}

func (f fakeDeliveries) Delete(ctx context.Context, id string) error {
	if err := f.fakeStore.Delete(ctx, "", id); err != nil && !errors.Is(err, apierr.ErrNotFound) {
		return err
	}
	return nil
}

func (f fakeDeliveries) DeleteForWebhook(_ context.Context, webhook string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, r := range f.recs {
		if r.Doc.Webhook == webhook {
			delete(f.recs, id)
		}
	}
	return nil
}

// fakeQueue records what was scheduled.
type fakeQueue struct {
	mu  sync.Mutex
	ids []string
}

func (q *fakeQueue) Schedule(_, id string, _ time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
}

// fakePoster answers with statuses[i] on the i-th call, then 200.
type fakePoster struct {
	reqs     []webhook.Request
	statuses []int
	// during, if set, runs while a request is in flight.
	during func()
}

func (p *fakePoster) Post(_ context.Context, r webhook.Request) (int, error) {
	p.reqs = append(p.reqs, r)
	if p.during != nil {
		p.during()
	}
	if n := len(p.reqs); n <= len(p.statuses) {
		return p.statuses[n-1], nil
	}
	return 200, nil
}

// fakeSMS records texts and fails with errs[i] on the i-th call.
type fakeSMS struct {
	sent []string // "to: text"
	errs []error
	n    int
}

func (f *fakeSMS) Send(_ context.Context, to, text string) error {
	f.n++
	if f.n <= len(f.errs) && f.errs[f.n-1] != nil {
		return f.errs[f.n-1]
	}
	f.sent = append(f.sent, to+": "+text)
	return nil
}

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type fullFixture struct {
	app    *app.App
	notes  *fakeNotes
	mailer *fakeMailer
	sms    *fakeSMS
	hooks  *fakeStore[domain.Webhook]
	// webhooks is the app's view of hooks, counting its reads.
	webhooks   *webhooks
	lists      *fakeLists
	deliveries fakeDeliveries
	queue      *fakeQueue
	poster     *fakePoster
	// at is the clock, now unless a test moves it.
	at time.Time
}

func newFullFixture(smsErrs ...error) *fullFixture {
	f := &fullFixture{
		notes:      &fakeNotes{recs: map[string]*docstore.Record[domain.Notification]{}},
		mailer:     &fakeMailer{},
		sms:        &fakeSMS{errs: smsErrs},
		hooks:      newFakeStore(func(domain.Webhook) string { return "" }),
		lists:      &fakeLists{m: map[string]*domain.WebhookList{}},
		deliveries: fakeDeliveries{newFakeStore(func(d domain.Delivery) string { return d.Webhook })},
		queue:      &fakeQueue{},
		poster:     &fakePoster{},
		at:         now,
	}
	f.webhooks = &webhooks{fakeStore: f.hooks}
	f.app = app.New(app.Deps{
		Notes: f.notes, Contacts: &fakeContacts{m: map[string]domain.Contact{}}, Mailer: f.mailer, SMS: f.sms,
		Webhooks: f.webhooks, WebhookLists: f.lists, Deliveries: f.deliveries, Poster: f.poster, Queue: f.queue,
		Retry:   domain.RetryPolicy{Initial: time.Second, Max: time.Minute, MaxAttempts: 3},
		Replica: "replica-1",
		Now:     func() time.Time { return f.at }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return f
}

// webhooks is the webhook repository as the app sees it. It counts Lists,
// which scan the collection on the embedded database: only ListWebhooks
// may call it, never the per-event fan-out nor the limit check.
type webhooks struct {
	*fakeStore[domain.Webhook]
	lists, gets atomic.Int32
}

func (w *webhooks) List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Webhook], bool, error) {
	w.lists.Add(1)
	return w.fakeStore.List(ctx, account, o)
}

func (w *webhooks) Get(ctx context.Context, account, id string) (*docstore.Record[domain.Webhook], error) {
	w.gets.Add(1)
	return w.fakeStore.Get(ctx, account, id)
}

// noScans fails the test if anything listed the webhooks.
func (w *webhooks) noScans(t *testing.T, what string) {
	t.Helper()
	if n := w.lists.Load(); n != 0 {
		t.Errorf("%s listed the webhooks %d times; want reads by id only", what, n)
	}
}

// fakeLists is an in-memory WebhookLists.
type fakeLists struct {
	mu sync.Mutex
	m  map[string]*domain.WebhookList
}

func (l *fakeLists) IDs(_ context.Context, account string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.m[account]; ok {
		return slices.Clone(w.IDs), nil
	}
	return nil, nil
}

func (l *fakeLists) Add(_ context.Context, account string, ids ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[account] == nil {
		l.m[account] = &domain.WebhookList{}
	}
	l.m[account].Add(ids...)
	return nil
}

func (l *fakeLists) Remove(_ context.Context, account string, ids ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.m[account]; ok {
		w.Remove(ids...)
	}
	return nil
}

func (l *fakeLists) get(account string) []string {
	ids, _ := l.IDs(context.Background(), account)
	return ids
}

// eventAt is event at the fixture's time, so webhooks made by the fixture
// exist when it occurs.
func eventAt(t *testing.T, at time.Time, typ, subject string, msg proto.Message) events.Event {
	t.Helper()
	ev, err := events.Stamp(typ, "//certflow/test", subject, at, msg)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSMS(t *testing.T) {
	const phone = "+49 170 1234567"
	tests := []struct {
		name     string
		ev       func(t *testing.T) events.Event
		wantText string // "" : no SMS
		wantMail string
	}{
		{"organization verification", func(t *testing.T) events.Event {
			return event(t, events.ApplicationStateChanged, "applications/a1", &eventsv1.ApplicationStateChanged{
				Account: "alice", Application: "applications/a1", ToState: "PENDING_ORGANIZATION_VERIFICATION",
				ApplicantEmail: "alice@example.com", ApplicantPhone: phone, CompanyPhone: "+49 30 1"})
		}, "the CA may call you to verify applications/a1", "Answer the phone: the CA will verify your organization"},
		{"another state change", func(t *testing.T) events.Event {
			return event(t, events.ApplicationStateChanged, "applications/a1", &eventsv1.ApplicationStateChanged{
				Account: "alice", Application: "applications/a1", ToState: "PENDING_ISSUANCE", ApplicantEmail: "alice@example.com", ApplicantPhone: phone})
		}, "", ""},
		{"failed", func(t *testing.T) events.Event {
			return event(t, events.ApplicationFailed, "applications/a1", &eventsv1.ApplicationFailed{
				Account: "alice", Application: "applications/a1", Cause: "CAA forbids", ApplicantEmail: "alice@example.com", ApplicantPhone: phone})
		}, "applications/a1 failed: CAA forbids", "Application applications/a1 failed: CAA forbids"},
		{"issued", func(t *testing.T) events.Event {
			return event(t, events.ApplicationIssued, "applications/a1", &eventsv1.ApplicationIssued{
				Account: "alice", Application: "applications/a1", Certificate: "certificates/c1", Domains: []string{"example.com"},
				ApplicantEmail: "alice@example.com", ApplicantPhone: phone})
		}, "certificates/c1 is issued", "Your certificate for example.com is issued"},
		{"issued without a phone", func(t *testing.T) events.Event {
			return event(t, events.ApplicationIssued, "applications/a1", &eventsv1.ApplicationIssued{
				Account: "alice", Application: "applications/a1", Certificate: "certificates/c1", Domains: []string{"example.com"},
				ApplicantEmail: "alice@example.com"})
		}, "", "Your certificate for example.com is issued"},
	}
	for _, tt := range tests {
		f := newFullFixture()
		ev := tt.ev(t)
		for i := range 2 { // the second delivery sends nothing more
			if err := f.app.Handle(context.Background(), ev); err != nil {
				t.Fatalf("%s: Handle(delivery %d) = %v; want nil", tt.name, i+1, err)
			}
		}
		if tt.wantText == "" && len(f.sms.sent) != 0 || tt.wantText != "" && (len(f.sms.sent) != 1 || !strings.HasPrefix(f.sms.sent[0], phone+": ") || !strings.Contains(f.sms.sent[0], tt.wantText)) {
			t.Errorf("%s: SMS sent %q; want one to %s containing %q", tt.name, f.sms.sent, phone, tt.wantText)
		}
		if tt.wantMail == "" && len(f.mailer.sent) != 0 || tt.wantMail != "" && (len(f.mailer.sent) != 1 || !strings.HasPrefix(f.mailer.sent[0].Subject, tt.wantMail)) {
			t.Errorf("%s: mail sent %+v; want one %q", tt.name, f.mailer.sent, tt.wantMail)
		}
		var texts []domain.Notification
		for _, r := range f.notes.recs {
			if r.Doc.Channel == domain.SMS {
				texts = append(texts, r.Doc)
			}
		}
		if tt.wantText != "" && (len(texts) != 1 || texts[0].Recipient != phone || texts[0].State != domain.Sent || texts[0].EventID != ev.ID || texts[0].Subject != "") {
			t.Errorf("%s: SMS notifications %+v; want one SENT to %s for event %s", tt.name, texts, phone, ev.ID)
		}
	}
}

func TestSMSAndMailFailIndependently(t *testing.T) {
	// No applicant email is known: the mail fails for good, the SMS goes.
	f := newFullFixture()
	ev := event(t, events.ApplicationFailed, "applications/a1", &eventsv1.ApplicationFailed{
		Account: "alice", Application: "applications/a1", Cause: "x", ApplicantPhone: "+1 555 0100"})
	if err := f.app.Handle(context.Background(), ev); !isPermanent(err) {
		t.Errorf("Handle(no email, a phone) = %v; want a permanent error for the mail", err)
	}
	if len(f.sms.sent) != 1 {
		t.Errorf("SMS sent %q; want one despite the mail", f.sms.sent)
	}

	// The SMS provider fails once: the event is redelivered, the mail is
	// not sent again.
	f = newFullFixture(errors.New("provider unavailable"))
	ev = event(t, events.ApplicationFailed, "applications/a1", &eventsv1.ApplicationFailed{
		Account: "alice", Application: "applications/a1", Cause: "x", ApplicantEmail: "alice@example.com", ApplicantPhone: "+1 555 0100"})
	if err := f.app.Handle(context.Background(), ev); err == nil || isPermanent(err) {
		t.Fatalf("Handle(SMS provider down) = %v; want a retryable error", err)
	}
	if err := f.app.Handle(context.Background(), ev); err != nil {
		t.Fatalf("Handle(redelivery) = %v; want nil", err)
	}
	if len(f.mailer.sent) != 1 || len(f.sms.sent) != 1 {
		t.Errorf("sent %d mails and %d SMS; want one each", len(f.mailer.sent), len(f.sms.sent))
	}

	// A permanent refusal is recorded FAILED and not retried.
	f = newFullFixture(sms.Permanent(errors.New("not a mobile number")))
	ev = event(t, events.ApplicationIssued, "applications/a1", &eventsv1.ApplicationIssued{
		Account: "alice", Application: "applications/a1", Certificate: "certificates/c1", ApplicantEmail: "alice@example.com", ApplicantPhone: "+1 555 0100"})
	if err := f.app.Handle(context.Background(), ev); err != nil {
		t.Errorf("Handle(SMS refused for good) = %v; want nil", err)
	}
	for _, r := range f.notes.recs {
		if r.Doc.Channel == domain.SMS && (r.Doc.State != domain.Failed || r.Doc.Error == "") {
			t.Errorf("SMS notification = %+v; want FAILED with the error", r.Doc)
		}
	}
}

func TestSendDomainValidationEmailHidesCode(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	req := app.DomainValidationEmail{
		RequestID: "challenges/c1/emails/1", Challenge: "challenges/c1", Application: "applications/a1", Domain: "www.example.com",
		Recipient: "admin@example.com", Code: "s3cret-code", ExpireTime: now.Add(time.Hour),
	}
	for range 2 {
		rec, err := f.app.SendDomainValidationEmail(ctx, "alice", req)
		if err != nil {
			t.Fatalf("SendDomainValidationEmail = %v; want nil", err)
		}
		if strings.Contains(rec.Doc.Body, req.Code) || rec.Doc.State != domain.Sent {
			t.Fatalf("SendDomainValidationEmail = %+v; want SENT without the code", rec.Doc)
		}
	}
	if len(f.mailer.sent) != 1 || f.mailer.sent[0].To != "admin@example.com" || !strings.Contains(f.mailer.sent[0].Body, "s3cret-code") {
		t.Fatalf("sent %+v; want one mail with the code to admin@example.com (a retry sends none)", f.mailer.sent)
	}
	if s := f.mailer.sent[0].Secrets; len(s) != 1 || s[0] != req.Code {
		t.Errorf("mail secrets = %q; want the code, for drivers that show mail to redact it", s)
	}
	n := f.notes.only(t)
	if strings.Contains(n.Body, "s3cret-code") || n.Recipient != "admin@example.com" || n.Application != "applications/a1" || n.State != domain.Sent {
		t.Errorf("notification = %+v; want SENT to admin@example.com without the code", n)
	}

	bad := req
	bad.RequestID, bad.Recipient, bad.Code = "challenges/c2/emails/1", "eve@attacker.test", "c"
	if _, err := f.app.SendDomainValidationEmail(ctx, "alice", bad); apierr.KindOf(err) != apierr.InvalidArgument {
		t.Errorf("SendDomainValidationEmail(to eve@attacker.test) = %v; want InvalidArgument", err)
	}
	if len(f.mailer.sent) != 1 {
		t.Errorf("sent %d mails; want none to eve@attacker.test", len(f.mailer.sent))
	}
	// The announcement on the stream carries no code and sends no mail.
	ev := event(t, events.DomainEmailChallenge, "challenges/c1", &eventsv1.DomainEmailChallenge{
		Account: "alice", Challenge: "challenges/c1", Application: "applications/a1", Domain: "www.example.com", Recipient: "admin@example.com"})
	if err := f.app.Handle(ctx, ev); err != nil || len(f.mailer.sent) != 1 {
		t.Errorf("Handle(DomainEmailChallenge) = %v, %d mails; want nil, no new mail", err, len(f.mailer.sent))
	}
}

func TestFanOut(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	a1, err := f.app.CreateWebhook(ctx, "alice", "", "https://a1.example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := f.app.CreateWebhook(ctx, "alice", "", "https://a2.example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.app.CreateWebhook(ctx, "bob", "", "https://b.example.com/hook"); err != nil {
		t.Fatal(err)
	}

	ev := eventAt(t, now, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: "alice", Order: "orders/o1"})
	for range 2 {
		if err := f.app.Handle(ctx, ev); err != nil {
			t.Fatalf("Handle(OrderCreated) = %v; want nil", err)
		}
	}
	want := []string{app.DeliveryID(a1.ID, ev.ID), app.DeliveryID(a2.ID, ev.ID)}
	slices.Sort(want)
	// The redelivered event makes no new delivery, and schedules its
	// pending ones again (a no-op for the queue, which holds them), so no
	// sweep is needed to find a delivery whose first scheduling was lost.
	got := slices.Sorted(slices.Values(f.queue.ids))
	if !slices.Equal(slices.Compact(got), want) || len(got) != 4 || f.deliveries.len() != 2 {
		t.Errorf("scheduled %v, %d deliveries; want %v twice each, 2 deliveries", got, f.deliveries.len(), want)
	}

	f.queue.ids = nil
	old, err := events.Stamp(events.OrderCreated, "//certflow/test", "orders/o0", now.Add(-app.ClockSkew-time.Minute), &eventsv1.OrderCreated{Account: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []events.Event{
		old, // before the webhooks existed
		eventAt(t, now, events.OrderCreated, "orders/o2", &eventsv1.OrderCreated{Account: "carol"}), // no webhooks
		{ID: "e9", Type: "certflow.unknown.thing", Data: []byte{0xff}},                              // unknown type
	} {
		if err := f.app.Handle(ctx, e); err != nil {
			t.Errorf("Handle(%s %s) = %v; want nil", e.Type, e.Subject, err)
		}
	}
	if len(f.queue.ids) != 0 {
		t.Errorf("scheduled %v; want nothing", f.queue.ids)
	}
	f.webhooks.noScans(t, "CreateWebhook and Handle")
}

func TestFanOutWithoutWebhooksReadsOneList(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	if _, err := f.app.CreateWebhook(ctx, "bob", "", "https://b.example.com/hook"); err != nil {
		t.Fatal(err)
	}
	f.webhooks.gets.Store(0)
	for _, account := range []string{"carol", "dave"} {
		ev := eventAt(t, now, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: account, Order: "orders/o1"})
		if err := f.app.Handle(ctx, ev); err != nil {
			t.Errorf("Handle(event of %s, no webhooks) = %v; want nil", account, err)
		}
	}
	if n := f.webhooks.gets.Load(); n != 0 || len(f.queue.ids) != 0 || f.deliveries.len() != 0 {
		t.Errorf("read %d webhooks, scheduled %v, %d deliveries; want nothing for accounts without webhooks", n, f.queue.ids, f.deliveries.len())
	}
	f.webhooks.noScans(t, "Handle(no webhooks)")
}

func TestFanOutSkipsDeletedWebhooks(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	gone, err := f.app.CreateWebhook(ctx, "alice", "", "https://a1.example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	live, err := f.app.CreateWebhook(ctx, "alice", "", "https://a2.example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	// A delete that stopped between the webhook and its id: still listed.
	if err := f.hooks.Delete(ctx, "alice", gone.ID); err != nil {
		t.Fatal(err)
	}
	ev := eventAt(t, now, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: "alice", Order: "orders/o1"})
	if err := f.app.Handle(ctx, ev); err != nil {
		t.Fatalf("Handle(a listed webhook gone) = %v; want nil", err)
	}
	if want := []string{app.DeliveryID(live.ID, ev.ID)}; !slices.Equal(f.queue.ids, want) || f.deliveries.len() != 1 {
		t.Errorf("scheduled %v, %d deliveries; want only %v", f.queue.ids, f.deliveries.len(), want)
	}

	// Another account deleting it changes nothing; the retried delete is
	// NotFound and unlists the id.
	if err := f.app.DeleteWebhook(ctx, "bob", live.ID); !errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("DeleteWebhook(another account's) = %v; want NotFound", err)
	}
	if err := f.app.DeleteWebhook(ctx, "alice", gone.ID); !errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("DeleteWebhook(retry) = %v; want NotFound", err)
	}
	if got := f.lists.get("alice"); !slices.Equal(got, []string{live.ID}) {
		t.Errorf("alice's list = %v; want [%s]", got, live.ID)
	}
	if err := f.app.DeleteWebhook(ctx, "alice", live.ID); err != nil {
		t.Fatalf("DeleteWebhook = %v", err)
	}
	if got := f.lists.get("alice"); len(got) != 0 || f.deliveries.len() != 0 {
		t.Errorf("after deleting every webhook: list %v, %d deliveries; want none", got, f.deliveries.len())
	}
	f.webhooks.noScans(t, "Handle and DeleteWebhook")
}

func TestCreateWebhookLists(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	first, err := f.app.CreateWebhook(ctx, "alice", "r1", "https://example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.lists.get("alice"); !slices.Equal(got, []string{first.ID}) {
		t.Fatalf("alice's list = %v; want [%s]", got, first.ID)
	}
	// A create that stopped after writing the webhook: its retry lists it.
	if err := f.lists.Remove(ctx, "alice", first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.app.CreateWebhook(ctx, "alice", "r1", "https://example.com/hook"); err != nil {
		t.Fatalf("CreateWebhook(retry) = %v", err)
	}
	if got := f.lists.get("alice"); !slices.Equal(got, []string{first.ID}) {
		t.Errorf("alice's list after the retry = %v; want [%s]", got, first.ID)
	}
	if _, err := f.app.CreateWebhook(ctx, "bob", "", "gopher://example.com"); !errors.Is(err, apierr.ErrInvalidArgument) {
		t.Fatalf("CreateWebhook(bad URL) = %v; want InvalidArgument", err)
	}
	if got := f.lists.get("bob"); len(got) != 0 {
		t.Errorf("bob's list after a refused create = %v; want none", got)
	}
}

func TestWebhookLimitCountsLiveWebhooks(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	var ids []string
	for i := range domain.MaxWebhooks {
		h, err := f.app.CreateWebhook(ctx, "alice", "", "https://example.com/hook")
		if err != nil {
			t.Fatalf("CreateWebhook #%d = %v", i+1, err)
		}
		ids = append(ids, h.ID)
	}
	tooMany := func(what string) {
		t.Helper()
		if _, err := f.app.CreateWebhook(ctx, "alice", "", "https://example.com/hook"); !errors.Is(err, apierr.ErrFailedPrecondition) {
			t.Errorf("CreateWebhook(%s) = %v; want FailedPrecondition", what, err)
		}
	}
	tooMany("beyond the limit")
	if _, err := f.app.CreateWebhook(ctx, "bob", "", "https://example.com/hook"); err != nil {
		t.Errorf("CreateWebhook(another account) = %v; want its own limit", err)
	}

	// Deleting one makes room for one.
	if err := f.app.DeleteWebhook(ctx, "alice", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.app.CreateWebhook(ctx, "alice", "", "https://example.com/hook"); err != nil {
		t.Errorf("CreateWebhook(after a delete) = %v; want a webhook", err)
	}
	tooMany("at the limit again")

	// An id left listed by a delete that stopped half-way does not count.
	if err := f.hooks.Delete(ctx, "alice", ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.app.CreateWebhook(ctx, "alice", "", "https://example.com/hook"); err != nil {
		t.Errorf("CreateWebhook(a listed id gone) = %v; want a webhook", err)
	}
	tooMany("at the limit with a stale id")
	f.webhooks.noScans(t, "CreateWebhook")
}

func TestPayload(t *testing.T) {
	ev := event(t, events.DomainEmailChallenge, "challenges/c1", &eventsv1.DomainEmailChallenge{
		Account: "alice", Challenge: "challenges/c1", Domain: "example.com", Recipient: "admin@example.com"})
	msg := &eventsv1.DomainEmailChallenge{}
	if err := proto.Unmarshal(ev.Data, msg); err != nil {
		t.Fatal(err)
	}
	body, err := app.Payload(ev, msg)
	if err != nil {
		t.Fatalf("Payload = %v", err)
	}
	var p struct {
		SpecVersion, ID, Type, Source, Subject, Time string
		Data                                         map[string]any
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("Payload = %s: %v", body, err)
	}
	if p.SpecVersion != "1.0" || p.ID != ev.ID || p.Type != ev.Type || p.Subject != "challenges/c1" || p.Data["event_id"] != ev.ID || p.Data["recipient"] != "admin@example.com" {
		t.Errorf("Payload = %s; want the envelope and the data with proto field names", body)
	}
}

func TestDeliver(t *testing.T) {
	f := newFullFixture()
	f.poster.statuses = []int{500, 0, 200}
	ctx := context.Background()
	hook, err := f.app.CreateWebhook(ctx, "alice", "", "https://a1.example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	ev := eventAt(t, now, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: "alice", Order: "orders/o1"})
	if err := f.app.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	id := app.DeliveryID(hook.ID, ev.ID)
	steps := []struct {
		wantAfter time.Duration
		wantRetry bool
		wantState domain.DeliveryState
	}{
		{time.Second, true, domain.DeliveryPending},
		{2 * time.Second, true, domain.DeliveryPending},
		{0, false, domain.DeliveryDelivered},
		{0, false, domain.DeliveryDelivered}, // done: nothing sent
	}
	for i, st := range steps {
		after, retry := f.app.Deliver(ctx, id)
		d, err := f.deliveries.Get(ctx, "alice", id)
		if err != nil || after != st.wantAfter || retry != st.wantRetry || d.Doc.State != st.wantState {
			t.Errorf("Deliver #%d = %v, %v, state %v, %v; want %v, %v, %s", i+1, after, retry, d.Doc.State, err, st.wantAfter, st.wantRetry, st.wantState)
		}
		f.at = f.at.Add(after) // when the queue runs it again
	}
	if len(f.poster.reqs) != 3 || f.poster.reqs[0].Secret != hook.Doc.Secret || f.poster.reqs[0].URL != hook.Doc.URL || f.poster.reqs[0].EventID != ev.ID {
		t.Errorf("posted %d requests (%+v); want 3 to the webhook with its secret", len(f.poster.reqs), f.poster.reqs)
	}

	// A webhook deleted while its delivery waits: the delivery is dropped.
	ev2 := eventAt(t, now, events.OrderCreated, "orders/o2", &eventsv1.OrderCreated{Account: "alice", Order: "orders/o2"})
	if err := f.app.Handle(ctx, ev2); err != nil {
		t.Fatal(err)
	}
	id2 := app.DeliveryID(hook.ID, ev2.ID)
	if err := f.hooks.Delete(ctx, "alice", hook.ID); err != nil {
		t.Fatal(err)
	}
	if after, retry := f.app.Deliver(ctx, id2); retry || after != 0 {
		t.Errorf("Deliver(webhook deleted) = %v, %v; want no retry", after, retry)
	}
	if _, err := f.deliveries.Get(ctx, "", id2); !errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("delivery of a deleted webhook: Get = %v; want NotFound", err)
	}
	if len(f.poster.reqs) != 3 {
		t.Errorf("posted %d requests; want none for a deleted webhook", len(f.poster.reqs))
	}
}

func TestCreateWebhook(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	first, err := f.app.CreateWebhook(ctx, "alice", "r1", "https://example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		account   string
		requestID string
		url       string
		want      error // nil: same as first
	}{
		{"retry", "alice", "r1", "https://example.com/hook", nil},
		{"request id reused for another URL", "alice", "r1", "https://example.com/other", apierr.ErrAlreadyExists},
		{"bad URL", "alice", "r2", "gopher://example.com", apierr.ErrInvalidArgument},
	}
	for _, tt := range tests {
		got, err := f.app.CreateWebhook(ctx, tt.account, tt.requestID, tt.url)
		if tt.want == nil && (err != nil || got.ID != first.ID || got.Doc.Secret != first.Doc.Secret) || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("CreateWebhook(%s) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	for i := 1; i < domain.MaxWebhooks; i++ {
		if _, err := f.app.CreateWebhook(ctx, "alice", "", "https://example.com/hook"); err != nil {
			t.Fatalf("CreateWebhook #%d = %v", i+1, err)
		}
	}
	if _, err := f.app.CreateWebhook(ctx, "alice", "", "https://example.com/hook"); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Errorf("CreateWebhook beyond %d = %v; want FailedPrecondition", domain.MaxWebhooks, err)
	}
	if _, err := f.app.CreateWebhook(ctx, "alice", "r1", "https://example.com/hook"); err != nil {
		t.Errorf("CreateWebhook(retry at the limit) = %v; want the first webhook", err)
	}
	f.webhooks.noScans(t, "CreateWebhook")
}

// TestDeliverUnderClaim: an attempt is made only under the replica's
// lease; a delivery another replica holds is left to it until the lease
// runs out, and an attempt whose lease was taken over is not recorded.
func TestDeliverUnderClaim(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	hook, err := f.app.CreateWebhook(ctx, "alice", "", "https://a1.example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	ev := eventAt(t, now, events.OrderCreated, "orders/o1", &eventsv1.OrderCreated{Account: "alice", Order: "orders/o1"})
	if err := f.app.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	id := app.DeliveryID(hook.ID, ev.ID)
	claimBy := func(owner string) {
		t.Helper()
		if _, err := f.deliveries.Update(ctx, "alice", id, func(d *domain.Delivery) ([]events.Event, error) {
			if ok, _ := d.Claim(owner, f.at, app.DefaultLease); !ok {
				t.Fatalf("Claim(%s) at %v refused: %+v", owner, f.at, d)
			}
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	claimBy("replica-2")
	f.at = now.Add(time.Second)
	if after, retry := f.app.Deliver(ctx, id); !retry || after != app.DefaultLease-time.Second || len(f.poster.reqs) != 0 {
		t.Errorf("Deliver(leased by another replica) = %v, %v, %d posts; want a look again when the lease ends, nothing sent", after, retry, len(f.poster.reqs))
	}

	// replica-2 stopped: once its lease ran out, the delivery is this
	// replica's to attempt.
	f.at = now.Add(app.DefaultLease)
	if after, retry := f.app.Deliver(ctx, id); retry || after != 0 || len(f.poster.reqs) != 1 {
		t.Errorf("Deliver(lease run out) = %v, %v, %d posts; want delivered with one post", after, retry, len(f.poster.reqs))
	}
	d, _ := f.deliveries.Get(ctx, "alice", id)
	if d.Doc.State != domain.DeliveryDelivered || d.Doc.LeaseOwner != "" || d.Doc.Attempts != 1 {
		t.Errorf("delivery = %+v; want DELIVERED after one attempt, no lease", d.Doc)
	}

	// An attempt that outlasted its lease, taken over meanwhile: the
	// poster takes the lease away as the attempt runs.
	ev2 := eventAt(t, now, events.OrderCreated, "orders/o2", &eventsv1.OrderCreated{Account: "alice", Order: "orders/o2"})
	if err := f.app.Handle(ctx, ev2); err != nil {
		t.Fatal(err)
	}
	id = app.DeliveryID(hook.ID, ev2.ID)
	f.poster.during = func() {
		// Past this replica's lease, which is longer than DefaultLease
		// when an attempt and its record take longer.
		f.at = f.at.Add(2 * app.DefaultLease)
		claimBy("replica-2")
	}
	if after, retry := f.app.Deliver(ctx, id); retry || after != 0 {
		t.Errorf("Deliver(lease lost during the attempt) = %v, %v; want nothing more to do here", after, retry)
	}
	d, _ = f.deliveries.Get(ctx, "alice", id)
	if d.Doc.State != domain.DeliveryPending || d.Doc.Attempts != 0 || d.Doc.LeaseOwner != "replica-2" {
		t.Errorf("delivery = %+v; want PENDING, leased by replica-2, the lost attempt not recorded", d.Doc)
	}
}

func TestSweepDeliveries(t *testing.T) {
	f := newFullFixture()
	ctx := context.Background()
	hook, err := f.app.CreateWebhook(ctx, "alice", "", "https://a1.example.com/hook")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		ev := eventAt(t, now, events.OrderCreated, fmt.Sprintf("orders/o%d", i), &eventsv1.OrderCreated{Account: "alice"})
		if err := f.app.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, app.DeliveryID(hook.ID, ev.ID))
	}
	// One waits a minute for its retry, one is done.
	for id, change := range map[string]func(*domain.Delivery){
		ids[1]: func(d *domain.Delivery) { d.NextAttemptTime = now.Add(time.Minute) },
		ids[2]: func(d *domain.Delivery) { d.State = domain.DeliveryDelivered },
	} {
		if _, err := f.deliveries.Update(ctx, "alice", id, func(d *domain.Delivery) ([]events.Event, error) { change(d); return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		horizon time.Duration
		limit   int
		want    []string
	}{
		{"due before the next sweep", time.Second, app.SweepLimit, []string{ids[0]}},
		{"due within two minutes", 2 * time.Minute, app.SweepLimit, []string{ids[0], ids[1]}},
		{"every pending one", -1, 0, []string{ids[0], ids[1]}},
		{"bounded, soonest first", -1, 1, []string{ids[0]}},
	}
	for _, tt := range tests {
		f.queue.ids = nil
		n, err := f.app.SweepDeliveries(ctx, tt.horizon, tt.limit)
		if err != nil || n != len(tt.want) || !slices.Equal(f.queue.ids, tt.want) {
			t.Errorf("%s: SweepDeliveries = %d, %v, scheduled %v; want %v", tt.name, n, err, f.queue.ids, tt.want)
		}
	}
}
