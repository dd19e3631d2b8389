package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestCatalog(t *testing.T) {
	ps := Catalog()
	if len(ps) != 24 {
		t.Fatalf("Catalog has %d products; want 24 (3 levels x 3 types x 3 terms, less EV wildcard)", len(ps))
	}
	for _, id := range []string{"dv-single-1y", "ov-multi-2y", "dv-wildcard-3y", "ev-single-1y"} {
		if _, ok := FindProduct(id); !ok {
			t.Errorf("FindProduct(%q) not found", id)
		}
	}
	if _, ok := FindProduct("ev-wildcard-1y"); ok {
		t.Errorf("ev-wildcard-1y is sold; EV wildcards are forbidden")
	}
}

func TestNewOrder(t *testing.T) {
	tests := []struct {
		product     string
		qty, count  int
		wantReason  string
		wantMax     int
		wantEndYear int
	}{
		{"dv-single-1y", 3, 0, "", 1, 2027},
		{"ov-multi-2y", 1, 5, "", 5, 2028},
		{"dv-wildcard-3y", 1, 0, "", 2, 2029},
		{"nope", 1, 0, "UNKNOWN_PRODUCT", 0, 0},
		{"dv-single-1y", 0, 0, "INVALID_QUANTITY", 0, 0},
		{"dv-single-1y", 101, 0, "INVALID_QUANTITY", 0, 0},
		{"dv-multi-1y", 1, 1, "INVALID_DOMAIN_COUNT", 0, 0},
		{"dv-multi-1y", 1, 251, "INVALID_DOMAIN_COUNT", 0, 0},
		{"dv-single-1y", 1, 3, "INVALID_DOMAIN_COUNT", 0, 0},
	}
	for _, tt := range tests {
		o, err := NewOrder("o1", tt.product, tt.qty, tt.count, now)
		if got := apierr.ReasonOf(err); got != tt.wantReason {
			t.Errorf("NewOrder(%q, %d, %d) reason = %q; want %q (err %v)", tt.product, tt.qty, tt.count, got, tt.wantReason, err)
			continue
		}
		if err != nil {
			continue
		}
		if len(o.Instances) != tt.qty {
			t.Errorf("NewOrder(%q) made %d instances; want %d", tt.product, len(o.Instances), tt.qty)
		}
		in := o.Instances[0]
		if in.ID != "o1-1" || in.State != PendingApplication || in.MaxDomains != tt.wantMax || in.SubscriptionEndTime.Year() != tt.wantEndYear {
			t.Errorf("NewOrder(%q) first instance = %+v; want o1-1 PENDING_APPLICATION max %d ending %d", tt.product, in, tt.wantMax, tt.wantEndYear)
		}
	}
}

func TestInstanceTransitions(t *testing.T) {
	o, _ := NewOrder("o", "dv-single-1y", 1, 0, now)
	in := &o.Instances[0]
	if err := in.Bind("applications/a", now); err != nil {
		t.Fatalf("Bind = %v", err)
	}
	if err := in.Bind("applications/a", now); !errors.Is(err, ErrNoChange) {
		t.Fatalf("Bind again by same app = %v; want ErrNoChange", err)
	}
	if err := in.Bind("applications/b", now); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Fatalf("Bind by another app = %v; want FailedPrecondition", err)
	}
	if err := in.Release("applications/b", now); !errors.Is(err, ErrNoChange) {
		t.Fatalf("Release by another app = %v; want ErrNoChange", err)
	}
	if err := in.Release("applications/a", now); err != nil || in.State != PendingApplication {
		t.Fatalf("Release = %v, state %s; want PENDING_APPLICATION", err, in.State)
	}
	if err := in.MarkIssued("applications/a", "certificates/c", time.Time{}, now); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Fatalf("MarkIssued unbound = %v; want FailedPrecondition", err)
	}
	_ = in.Bind("applications/a", now)
	if err := in.MarkIssued("applications/a", "certificates/c", time.Time{}, now); err != nil || in.State != Issued {
		t.Fatalf("MarkIssued = %v, state %s; want ISSUED", err, in.State)
	}
	if err := in.MarkIssued("applications/a", "certificates/c", time.Time{}, now); !errors.Is(err, ErrNoChange) {
		t.Fatalf("MarkIssued again = %v; want ErrNoChange", err)
	}
	if err := in.Release("applications/a", now); !errors.Is(err, ErrNoChange) || in.State != Issued {
		t.Fatalf("Release after issue = %v, state %s; want no change, ISSUED", err, in.State)
	}
	// A reissue of the same application: the newer certificate is the
	// instance's; another application's is refused.
	if err := in.MarkIssued("applications/b", "certificates/x", time.Time{}, now); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Fatalf("MarkIssued for another application = %v; want FailedPrecondition", err)
	}
	if err := in.MarkIssued("applications/a", "certificates/c2", time.Time{}, now); err != nil || in.Certificate != "certificates/c2" {
		t.Fatalf("MarkIssued of a reissue = %v, certificate %s; want certificates/c2", err, in.Certificate)
	}
	if err := in.MarkIssued("applications/a", "certificates/c", time.Time{}, now); err != nil {
		t.Fatal(err)
	}
	// Revocation: only of the instance's own certificate, once.
	if err := in.MarkRevoked("applications/a", "certificates/older", now); !errors.Is(err, ErrNoChange) || in.State != Issued {
		t.Fatalf("MarkRevoked of another certificate = %v, state %s; want no change, ISSUED", err, in.State)
	}
	if err := in.MarkRevoked("applications/a", "certificates/c", now); err != nil || in.State != Revoked {
		t.Fatalf("MarkRevoked = %v, state %s; want REVOKED", err, in.State)
	}
	if err := in.MarkRevoked("applications/a", "certificates/c", now); !errors.Is(err, ErrNoChange) {
		t.Fatalf("MarkRevoked again = %v; want ErrNoChange", err)
	}
	if err := in.Bind("applications/b", now); !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Fatalf("Bind a REVOKED instance = %v; want FailedPrecondition", err)
	}
	o2, _ := NewOrder("o2", "dv-single-1y", 1, 0, now)
	if err := o2.Instances[0].Bind("applications/x", now.AddDate(1, 0, 1)); apierr.ReasonOf(err) != "SUBSCRIPTION_ENDED" {
		t.Fatalf("Bind after subscription end = %v; want SUBSCRIPTION_ENDED", err)
	}
}

// TestInstanceExpiry: an instance expires once both its subscription and
// its last certificate have ended (a reissue's shorter certificate does not
// bring it forward); an APPLYING or REVOKED one does not; the order's
// schedule follows its instances.
func TestInstanceExpiry(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	o, err := NewOrder("o1", "dv-single-1y", 3, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	end := now.AddDate(1, 0, 0)
	if !o.ExpireDue.Equal(end) {
		t.Fatalf("new order's ExpireDue = %v; want the subscription's end %v", o.ExpireDue, end)
	}
	issued, applying, unused := &o.Instances[0], &o.Instances[1], &o.Instances[2]
	late := end.Add(100 * 24 * time.Hour)
	if err := issued.Bind("applications/a", now); err != nil {
		t.Fatal(err)
	}
	if err := issued.MarkIssued("applications/a", "certificates/c1", late, now); err != nil {
		t.Fatal(err)
	}
	// A reissue with an earlier notAfter: the first stays valid until late.
	if err := issued.MarkIssued("applications/a", "certificates/c2", end.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if err := applying.Bind("applications/b", now); err != nil {
		t.Fatal(err)
	}
	o.Schedule()
	if !o.ExpireDue.Equal(end) {
		t.Fatalf("ExpireDue = %v; want %v (the unused instance)", o.ExpireDue, end)
	}
	for _, tt := range []struct {
		in   *Instance
		at   time.Time
		want InstanceState
	}{
		{unused, end.Add(-time.Second), PendingApplication},
		{unused, end, Expired},
		{issued, end.Add(time.Hour), Issued},
		{issued, late, Expired},
		{applying, late.Add(time.Hour), Applying},
	} {
		err := tt.in.Expire(tt.at)
		if tt.in.State != tt.want || (tt.want != Expired) != errors.Is(err, ErrNoChange) {
			t.Errorf("%s at %v: %s, %v; want %s", tt.in.ID, tt.at, tt.in.State, err, tt.want)
		}
	}
	o.Schedule()
	if _, ok := o.NextExpiry(); ok || !o.ExpireDue.IsZero() {
		t.Fatalf("after expiring: next %v; want none (the APPLYING one waits)", o.ExpireDue)
	}
}
