package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/audit"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/audit/internal/app"
	"github.com/certflow/certflow/services/audit/internal/domain"
	"github.com/certflow/certflow/services/audit/internal/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func record(t *testing.T, action, account, resource string, at time.Time) events.Event {
	t.Helper()
	ctx := auth.With(context.Background(), auth.Principal{Account: account, Role: auth.Customer, Actor: "sha256:0123456789abcdef", Source: "192.0.2.1", RequestID: "r-" + action})
	ev, ok, err := audit.Record(ctx, "//certflow/test", action, account, resource, at)
	if err != nil || !ok {
		t.Fatalf("audit.Record = %v, %v", ok, err)
	}
	return ev
}

// TestHandle: a record is stored once however often its event comes; a
// record whose action is not its subject's, or that cannot be read, is
// refused for good; listing is newest first and filtered.
func TestHandle(t *testing.T) {
	db, _ := testenv.Database(t)
	trail := store.New(db.Collection("audit_events"))
	if err := trail.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := app.New(trail)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	submit := record(t, audit.ApplicationSubmit, "acme", "applications/a1", t0)
	create := record(t, audit.ApplicationCreate, "acme", "applications/a1", t0.Add(-time.Minute))
	other := record(t, audit.ApplicationCreate, "other", "applications/b1", t0)
	forged := record(t, audit.CertificateRevoke, "acme", "certificates/c1", t0)
	forged.Type = events.AuditSubject(audit.ApplicationSubmit) // application publishing issuance's action
	garbage := events.Event{ID: "g", Type: events.AuditSubject(audit.ApplicationSubmit), Data: []byte{0xff, 0xff}}

	for _, tt := range []struct {
		ev        events.Event
		permanent bool
	}{
		{submit, false}, {submit, false}, {create, false}, {other, false}, {create, false},
		{forged, true}, {garbage, true},
	} {
		err := a.Handle(ctx, tt.ev)
		if tt.permanent != events.IsPermanent(err) || !tt.permanent && err != nil {
			t.Errorf("Handle(%s %s) = %v; want permanent=%v", tt.ev.Type, tt.ev.ID, err, tt.permanent)
		}
	}
	got, more, err := a.List(ctx, domain.Query{Account: "acme"}, nil, 10)
	if err != nil || more || len(got) != 2 || got[0].ID != submit.ID || got[1].ID != create.ID {
		t.Fatalf("List(acme) = %v, %v, %v; want submit then create, once each", got, more, err)
	}
	if r := got[0]; r.Action != "application.submit" || r.Actor != "sha256:0123456789abcdef" || r.Source != "192.0.2.1" || r.RequestID != "r-application.submit" || !r.Time.Equal(t0) {
		t.Errorf("stored %+v; want the event's fields", r)
	}
	got, _, _ = a.List(ctx, domain.Query{Account: "acme", Action: "application.create"}, nil, 10)
	if len(got) != 1 || got[0].ID != create.ID {
		t.Errorf("List(action = application.create) = %v; want the create", got)
	}
	got, _, _ = a.List(ctx, domain.Query{Account: "acme", LowerOp: ">=", Lower: t0}, nil, 10)
	if len(got) != 1 || got[0].ID != submit.ID {
		t.Errorf("List(time >= t0) = %v; want the submit", got)
	}
	got, more, _ = a.List(ctx, domain.Query{}, nil, 2)
	if len(got) != 2 || !more {
		t.Errorf("List(every account, 2) = %d, more %v; want 2 and more", len(got), more)
	}
	rest, more, _ := a.List(ctx, domain.Query{}, &domain.Position{Time: got[1].Time, ID: got[1].ID}, 2)
	if len(rest) != 1 || more || rest[0].ID != create.ID {
		t.Errorf("List(after the first page) = %v, %v; want the create alone", rest, more)
	}
}
