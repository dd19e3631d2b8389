package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
)

// flakyCerts is a real certificate store whose updates fail while down is
// set: the audit write of a key download.
type flakyCerts struct {
	*docstore.Store[domain.Certificate]
	down bool
}

func (c *flakyCerts) Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Certificate]) (*docstore.Record[domain.Certificate], error) {
	if c.down {
		return nil, errors.New("database unreachable")
	}
	return c.Store.Update(ctx, account, id, fn)
}

// TestKeyDownloadNeedsItsAuditRecord: the private key the service made
// leaves only once its download is in the certificate's outbox; when that
// write fails the download is Unavailable AUDIT_UNAVAILABLE, without the
// key. The system's own reads write no record.
func TestKeyDownloadNeedsItsAuditRecord(t *testing.T) {
	f := newFixture(t)
	sealer, err := keyseal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, _ := testenv.Database(t)
	store := docstore.New[domain.Certificate](db.Collection("certificates"), "certificate", docstore.WithClock(func() time.Time { return f.now }))
	certs := &flakyCerts{Store: store}
	issuances := docstore.New[domain.Issuance](db.Collection("issuances"), "issuance")
	a := app.New(certs, f.authority, sealer, yes{}, f.policy, func() time.Time { return f.now }, 0, app.WithIssuances(issuances))
	const account = "accounts/a"
	rec, err := a.Issue(context.Background(), account, app.IssueRequest{
		RequestID: "r1", Application: "applications/x", Attempt: 1, Domains: []string{"example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	customer := auth.With(context.Background(), auth.Principal{Account: account, Role: auth.Customer, Actor: "sha256:0123456789abcdef", Source: "192.0.2.1", RequestID: "dl-1"})
	system := auth.With(context.Background(), auth.Principal{Account: account, Role: auth.System})
	audits := func() int {
		r, err := store.Get(context.Background(), account, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range r.Outbox {
			if ev.Type == events.AuditSubject("certificate.key_download") {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name    string
		ctx     context.Context
		down    bool
		wantErr string // reason; "" = the key is given
		records int    // audit records added
	}{
		{"customer, audit write fails", customer, true, app.ReasonAuditUnavailable, 0},
		{"customer", customer, false, "", 1},
		{"system", system, true, "", 0},
	}
	for _, tt := range tests {
		certs.down = tt.down
		n := audits()
		b, err := a.Download(tt.ctx, account, rec.ID)
		certs.down = false
		if tt.wantErr != "" {
			if b != nil || apierr.KindOf(err) != apierr.Unavailable || apierr.ReasonOf(err) != tt.wantErr || !strings.Contains(err.Error(), "try again") {
				t.Errorf("%s: Download = %v, %v; want no bundle and Unavailable %s", tt.name, b != nil, err, tt.wantErr)
			}
		} else if err != nil || b == nil || !strings.Contains(b.PrivateKey, "PRIVATE KEY") {
			t.Errorf("%s: Download = %v; want the bundle with the key", tt.name, err)
		}
		if got := audits() - n; got != tt.records {
			t.Errorf("%s: %d audit records written; want %d", tt.name, got, tt.records)
		}
	}
}
