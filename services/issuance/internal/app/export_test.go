package app_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/bundle"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
)

// failingUpdates is a certificate store whose writes fail: the database
// took the read and lost the write.
type failingUpdates struct{ app.Certificates }

func (failingUpdates) Update(context.Context, string, string, docstore.Mutation[domain.Certificate]) (*docstore.Record[domain.Certificate], error) {
	return nil, errors.New("write certificate: server selection timeout")
}

// TestExportKeyIsRecorded: an export with the key counts it on the
// certificate and queues certflow.certificate.key_exported in the same
// write; when that write fails the key is refused (Unavailable
// AUDIT_UNAVAILABLE) and nothing is returned, while an export without a key
// (the customer's CSR) needs no record and goes on.
func TestExportKeyIsRecorded(t *testing.T) {
	f := newFixture(t)
	sealer, err := keyseal.New(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, _ := testenv.Database(t)
	clock := func() time.Time { return f.now }
	certs := docstore.New[domain.Certificate](db.Collection("certificates"), "certificate", docstore.WithClock(clock))
	issuances := docstore.New[domain.Issuance](db.Collection("issuances"), "issuance", docstore.WithClock(clock))
	newApp := func(c app.Certificates) *app.App {
		return app.New(c, f.authority, sealer, yes{}, f.policy, clock, 0, app.WithIssuances(issuances))
	}
	working, broken := newApp(certs), newApp(failingUpdates{certs})
	held, err := working.Issue(context.Background(), "acct", app.IssueRequest{RequestID: "held", Application: "applications/h", Attempt: 1, Domains: []string{"example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	own, _ := csr.GenerateKey(csr.ECDSAP256)
	mine, err := working.Issue(context.Background(), "acct", app.IssueRequest{RequestID: "mine", Application: "applications/m", Attempt: 1, Domains: []string{"example.com"}, CSR: makeCSR(t, own)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := auth.With(context.Background(), auth.Principal{Account: "acct", Role: auth.Customer})

	for _, st := range []bundle.ServerType{bundle.Nginx, bundle.Apache, bundle.Tomcat, bundle.IIS, bundle.Other} {
		x, err := broken.Export(ctx, "acct", held.ID, app.ExportRequest{Type: st, Zip: true})
		if x != nil || apierr.KindOf(err) != apierr.Unavailable || apierr.ReasonOf(err) != app.ReasonAuditUnavailable {
			t.Errorf("Export(%s) with the record failing = %v, %v; want nothing and Unavailable %s", st, x, err, app.ReasonAuditUnavailable)
		}
	}
	if x, err := broken.Export(ctx, "acct", mine.ID, app.ExportRequest{Type: bundle.Nginx}); err != nil || len(x.Files) != 1 {
		t.Fatalf("Export(customer's key, nginx) with the record failing = %v, %v; want fullchain.pem", x, err)
	}
	rec, err := certs.Get(context.Background(), "acct", held.ID)
	if err != nil {
		t.Fatal(err)
	}
	if evs := keyEvents(t, rec); rec.Doc.KeyExports != 0 || len(evs) != 0 {
		t.Fatalf("after refused exports: %d exports recorded, %d key_exported events; want none", rec.Doc.KeyExports, len(evs))
	}

	for i, st := range []bundle.ServerType{bundle.Tomcat, bundle.Nginx} {
		if _, err := working.Export(ctx, "acct", held.ID, app.ExportRequest{Type: st, Legacy: true}); err != nil {
			t.Fatalf("Export(%s) = %v", st, err)
		}
		rec, err := certs.Get(context.Background(), "acct", held.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Doc.KeyExports != i+1 || !rec.Doc.LastKeyExport.Equal(f.now) {
			t.Fatalf("after export %d: KeyExports %d at %v; want %d at %v", i+1, rec.Doc.KeyExports, rec.Doc.LastKeyExport, i+1, f.now)
		}
		got := keyEvents(t, rec)
		if len(got) != i+1 {
			t.Fatalf("outbox holds %d key_exported events; want %d", len(got), i+1)
		}
		last := got[i]
		wantLegacy := st == bundle.Tomcat // only a PKCS#12 has the legacy encoding
		if last.ServerType != string(st) || last.ExportCount != int64(i+1) || last.Role != "customer" || last.Account != "acct" ||
			last.Certificate != "certificates/"+held.ID || last.LegacyPkcs12 != wantLegacy || last.PasswordGenerated != (st == bundle.Tomcat) {
			t.Fatalf("event %d = %v", i+1, last)
		}
	}
}

// keyEvents are the key_exported events in rec's outbox (no relay runs
// here, so it keeps every event).
func keyEvents(t *testing.T, rec *docstore.Record[domain.Certificate]) []*eventsv1.CertificateKeyExported {
	t.Helper()
	var out []*eventsv1.CertificateKeyExported
	for _, ev := range rec.Outbox {
		if ev.Type == events.CertificateKeyExported {
			m := &eventsv1.CertificateKeyExported{}
			if err := proto.Unmarshal(ev.Data, m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}
