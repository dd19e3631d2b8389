package app_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/duequeue"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
)

const day = 24 * time.Hour

// remindersApp is the app with reminders over a real store, found through
// the in-memory queue or the index.
func (f *fixture) remindersApp(t *testing.T, queued bool, plan domain.Plan) (*app.App, *docstore.Store[domain.Certificate], func() app.Certificates) {
	t.Helper()
	sealer, err := keyseal.New(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, _ := testenv.Database(t)
	clock := func() time.Time { return f.now }
	store := docstore.New[domain.Certificate](db.Collection("certificates"), "certificate", docstore.WithClock(clock))
	issuances := docstore.New[domain.Issuance](db.Collection("issuances"), "issuance", docstore.WithClock(clock))
	var certs app.Certificates = store
	var due app.DueCertificates = duequeue.Indexed[domain.Certificate]{Store: store, Field: app.DueField}
	if queued {
		q := app.NewQueuedCertificates(store, plan)
		if err := app.LoadQueued(context.Background(), q, f.now); err != nil {
			t.Fatal(err)
		}
		certs, due = q, q
	}
	a := app.New(certs, f.authority, sealer, yes{}, f.policy, clock, 0, app.WithIssuances(issuances)).WithSchedule(plan, due)
	return a, store, func() app.Certificates { return certs }
}

// expiring returns the certflow.certificate.expiring events in a
// certificate's outbox (no relay clears it here).
func expiring(t *testing.T, s *docstore.Store[domain.Certificate], id string) []*eventsv1.CertificateExpiring {
	t.Helper()
	r, err := s.Get(context.Background(), "", id)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.CertificateExpiring
	for _, ev := range r.Outbox {
		if ev.Type != events.CertificateExpiring {
			continue
		}
		m := &eventsv1.CertificateExpiring{}
		if err := proto.Unmarshal(ev.Data, m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestReminders: a certificate gets one certflow.certificate.expiring per
// offset, at the offset, with the days left; ticks in between send
// nothing; a replaced certificate gets none; both ways of finding what is
// due agree.
func TestReminders(t *testing.T) {
	for _, queued := range []bool{true, false} {
		t.Run(fmt.Sprintf("queued=%v", queued), func(t *testing.T) {
			f := newFixture(t)
			plan := domain.Plan{Reminders: domain.DefaultReminders}
			a, store, certs := f.remindersApp(t, queued, plan)
			ctx := testenv.As(context.Background(), "alice", "customer")
			issue := func(app string) *docstore.Record[domain.Certificate] {
				rec, err := a.Issue(ctx, "alice", appIssue(app))
				if err != nil {
					t.Fatalf("Issue(%s) = %v", app, err)
				}
				return rec
			}
			cert, old := issue("applications/a1"), issue("applications/a0")
			if want := cert.Doc.NotAfter.Add(-30 * day); !cert.Doc.ReminderDue.Equal(want) {
				t.Fatalf("ReminderDue at issue = %v; want notAfter-30d %v", cert.Doc.ReminderDue, want)
			}
			// The lifetime code marks a certificate replaced when its
			// successor is issued.
			if _, err := certs().Update(context.Background(), "alice", old.ID, func(c *domain.Certificate) ([]events.Event, error) {
				c.MarkReplaced("certificates/successor", plan)
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			notAfter := cert.Doc.NotAfter
			steps := []struct {
				at       time.Time
				wantSent int
				wantDays []int32
			}{
				{notAfter.Add(-31 * day), 0, nil},
				{notAfter.Add(-30*day + time.Minute), 1, []int32{30}},
				{notAfter.Add(-29 * day), 0, []int32{30}},
				{notAfter.Add(-7*day + time.Second), 1, []int32{30, 7}},
				{notAfter.Add(-7*day + time.Hour), 0, []int32{30, 7}},
				{notAfter.Add(-time.Hour), 1, []int32{30, 7, 1}},
				{notAfter.Add(time.Hour), 0, []int32{30, 7, 1}},
			}
			for _, st := range steps {
				f.now = st.at
				sent, err := a.SendDue(context.Background())
				if err != nil || sent != st.wantSent {
					t.Fatalf("Remind at notAfter%v = %d, %v; want %d", st.at.Sub(notAfter), sent, err, st.wantSent)
				}
				var days []int32
				for _, m := range expiring(t, store, cert.ID) {
					days = append(days, m.DaysLeft)
					if m.Certificate != "certificates/"+cert.ID || m.Account != "alice" || m.Application != "applications/a1" || !m.NotAfter.AsTime().Equal(notAfter) || len(m.Domains) != 1 {
						t.Fatalf("event = %v; want alice's %s of applications/a1", m, cert.ID)
					}
				}
				if fmt.Sprint(days) != fmt.Sprint(st.wantDays) {
					t.Fatalf("at notAfter%v the reminders sent say %v days left; want %v", st.at.Sub(notAfter), days, st.wantDays)
				}
			}
			if got := expiring(t, store, old.ID); len(got) != 0 {
				t.Fatalf("replaced certificate got reminders %v; want none", got)
			}
		})
	}
}

func appIssue(application string) app.IssueRequest {
	return app.IssueRequest{RequestID: application + "/attempts/1", Application: application, Attempt: 1, Domains: []string{"www.example.com"}}
}

// outboxTypes lists the event types in a certificate's outbox, in order.
func outboxTypes(t *testing.T, s *docstore.Store[domain.Certificate], id string) []string {
	t.Helper()
	r, err := s.Get(context.Background(), "", id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range r.Outbox {
		if ev.Type != events.CertificateIssued {
			out = append(out, strings.TrimPrefix(ev.Type, "certflow.certificate."))
		}
	}
	return out
}

// TestRenewalAndExpiry: at two thirds of its lifetime a certificate asks
// once for its renewal, and at notAfter its expiry is announced once; a
// replaced certificate is not renewed but its expiry is announced (marked
// replaced); a revoked one gets neither. Both ways of finding what is due
// agree, and a tick between milestones sends nothing.
func TestRenewalAndExpiry(t *testing.T) {
	plan := domain.Plan{Reminders: []time.Duration{7 * day}, RenewAt: domain.DefaultRenewAt, Expiry: true}
	for _, queued := range []bool{true, false} {
		t.Run(fmt.Sprintf("queued=%v", queued), func(t *testing.T) {
			f := newFixture(t)
			a, store, certs := f.remindersApp(t, queued, plan)
			ctx := testenv.As(context.Background(), "alice", "customer")
			issue := func(app string) *docstore.Record[domain.Certificate] {
				rec, err := a.Issue(ctx, "alice", appIssue(app))
				if err != nil {
					t.Fatalf("Issue(%s) = %v", app, err)
				}
				return rec
			}
			cert, replaced, revoked := issue("applications/a1"), issue("applications/a2"), issue("applications/a3")
			renewAt := cert.Doc.RenewalTime(plan.RenewAt)
			if !cert.Doc.ReminderDue.Equal(renewAt) {
				t.Fatalf("next due at issue = %v; want the renewal point %v", cert.Doc.ReminderDue, renewAt)
			}
			if _, err := certs().Update(context.Background(), "alice", replaced.ID, func(c *domain.Certificate) ([]events.Event, error) {
				c.MarkReplaced("certificates/successor", plan)
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := certs().Update(context.Background(), "alice", revoked.ID, func(c *domain.Certificate) ([]events.Event, error) {
				c.State = domain.Revoked
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			notAfter := cert.Doc.NotAfter
			steps := []struct {
				at                 time.Time
				want, wantReplaced []string
			}{
				{renewAt.Add(-time.Minute), nil, nil},
				{renewAt, []string{"renewal_due"}, nil},
				{renewAt.Add(time.Hour), []string{"renewal_due"}, nil},
				{notAfter.Add(-7 * day), []string{"renewal_due", "expiring"}, nil},
				{notAfter, []string{"renewal_due", "expiring", "expired"}, []string{"expired"}},
				{notAfter.Add(day), []string{"renewal_due", "expiring", "expired"}, []string{"expired"}},
			}
			for _, st := range steps {
				f.now = st.at
				if _, err := a.SendDue(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := outboxTypes(t, store, cert.ID); fmt.Sprint(got) != fmt.Sprint(st.want) {
					t.Fatalf("at %v: events %v; want %v", st.at, got, st.want)
				}
				if got := outboxTypes(t, store, replaced.ID); fmt.Sprint(got) != fmt.Sprint(st.wantReplaced) {
					t.Fatalf("at %v: replaced certificate's events %v; want %v", st.at, got, st.wantReplaced)
				}
				if got := outboxTypes(t, store, revoked.ID); len(got) != 0 {
					t.Fatalf("at %v: revoked certificate's events %v; want none", st.at, got)
				}
			}
		})
	}
}

// TestSubscriptionLimit: a certificate never outlives the subscription:
// its notAfter is cut to the limit, and once the limit has passed nothing
// is signed (SUBSCRIPTION_ENDED).
func TestSubscriptionLimit(t *testing.T) {
	f := newFixture(t)
	a, _, _ := f.remindersApp(t, false, domain.Plan{})
	ctx := testenv.As(context.Background(), "alice", "customer")
	limit := f.now.Add(30 * day).Truncate(time.Second)
	r := appIssue("applications/s1")
	r.NotAfterLimit = limit
	rec, err := a.Issue(ctx, "alice", r)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Doc.NotAfter.After(limit) {
		t.Fatalf("notAfter %v is after the subscription's end %v", rec.Doc.NotAfter, limit)
	}
	r = appIssue("applications/s2")
	r.NotAfterLimit = f.now.Add(-time.Second)
	if _, err := a.Issue(ctx, "alice", r); apierr.ReasonOf(err) != "SUBSCRIPTION_ENDED" {
		t.Fatalf("Issue after the subscription = %v; want SUBSCRIPTION_ENDED", err)
	}
}
