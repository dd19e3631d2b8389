package audit_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/audit"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
)

func TestAppend(t *testing.T) {
	now := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	prior := []events.Event{{ID: "x"}}
	tests := []struct {
		name string
		p    *auth.Principal
		want bool
	}{
		{"customer", &auth.Principal{Account: "acme", Role: auth.Customer, Actor: "sha256:01", Source: "192.0.2.1", RequestID: "r1"}, true},
		{"reviewer", &auth.Principal{Account: "ca-staff", Role: auth.Reviewer, Actor: "sha256:02", Source: "192.0.2.2", RequestID: "r2"}, true},
		{"system", &auth.Principal{Account: "acme", Role: auth.System, Actor: "sha256:01"}, false},
		{"nobody", nil, false},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.p != nil {
			ctx = auth.With(ctx, *tt.p)
		}
		got, err := audit.Append(ctx, prior, "//certflow/test", audit.CertificateRevoke, "acme", "certificates/c1", now)
		if err != nil {
			t.Fatal(err)
		}
		if !tt.want {
			if len(got) != 1 {
				t.Errorf("%s: Append added %d events; want none", tt.name, len(got)-1)
			}
			continue
		}
		if len(got) != 2 {
			t.Fatalf("%s: Append = %d events; want the record added", tt.name, len(got))
		}
		ev := got[1]
		var m eventsv1.AuditEvent
		if err := proto.Unmarshal(ev.Data, &m); err != nil {
			t.Fatal(err)
		}
		want := &eventsv1.AuditEvent{
			EventId: ev.ID, OccurredAt: m.GetOccurredAt(), Account: "acme", Actor: tt.p.Actor, ActorAccount: tt.p.Account,
			Role: string(tt.p.Role), Action: "certificate.revoke", Resource: "certificates/c1", Source: tt.p.Source, RequestId: tt.p.RequestID,
		}
		if ev.Type != "certflow.audit.certificate.revoke" || ev.Subject != "certificates/c1" || !m.GetOccurredAt().AsTime().Equal(now) || !proto.Equal(&m, want) {
			t.Errorf("%s: record %s %s %v; want %v", tt.name, ev.Type, ev.Subject, &m, want)
		}
	}
}
