package domain

import (
	"fmt"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

// InstanceState is where a purchased instance is in its life.
type InstanceState string

// Instance states (DESIGN.md: PENDING_APPLICATION → APPLYING → ISSUED →
// EXPIRED / REVOKED; a withdrawn application returns its instance to
// PENDING_APPLICATION).
const (
	PendingApplication InstanceState = "PENDING_APPLICATION"
	Applying           InstanceState = "APPLYING"
	Issued             InstanceState = "ISSUED"
	Expired            InstanceState = "EXPIRED"
	Revoked            InstanceState = "REVOKED"
)

// MaxQuantity bounds instances per order.
const MaxQuantity = 100

// Order is a purchase; its instances live inside it so that buying them and
// every later state change is one atomic document write.
type Order struct {
	ProductID   string
	Quantity    int
	DomainCount int
	Instances   []Instance
	CreateTime  time.Time
	// ExpireDue is when the next of its instances expires (zero: none
	// will), indexed to find what is due (Schedule).
	ExpireDue time.Time
}

// Instance is a purchased certificate slot.
type Instance struct {
	ID                  string
	State               InstanceState
	MaxDomains          int
	Application         string
	Certificate         string
	CreateTime          time.Time
	UpdateTime          time.Time
	SubscriptionEndTime time.Time
	// CertificateNotAfter is the latest notAfter of the certificates
	// issued for it: a replaced certificate stays valid until then.
	CertificateNotAfter time.Time `bson:",omitempty"`
}

// NewOrder validates a purchase and makes its instances, named
// <orderID>-<n>.
func NewOrder(orderID, productID string, quantity, domainCount int, now time.Time) (Order, error) {
	p, ok := FindProduct(productID)
	if !ok {
		return Order{}, apierr.Invalid("order.product", "UNKNOWN_PRODUCT", "product %q does not exist; list products with GET /v1/products", productID)
	}
	if quantity < 1 || quantity > MaxQuantity {
		return Order{}, apierr.Invalid("order.quantity", "INVALID_QUANTITY", "quantity must be between 1 and %d, got %d", MaxQuantity, quantity)
	}
	maxDomains := p.MaxDomains
	switch {
	case p.Type == Multi:
		if domainCount < p.MinDomains || domainCount > p.MaxDomains {
			return Order{}, apierr.Invalid("order.domain_count", "INVALID_DOMAIN_COUNT",
				"a multi-domain product needs domain_count between %d and %d, got %d", p.MinDomains, p.MaxDomains, domainCount)
		}
		maxDomains = domainCount
	case domainCount != 0:
		return Order{}, apierr.Invalid("order.domain_count", "INVALID_DOMAIN_COUNT",
			"domain_count applies only to multi-domain products; leave it out for %s", p.ID)
	}
	now = now.UTC()
	o := Order{ProductID: p.ID, Quantity: quantity, DomainCount: domainCount, CreateTime: now}
	for i := 1; i <= quantity; i++ {
		o.Instances = append(o.Instances, Instance{
			ID:                  fmt.Sprintf("%s-%d", orderID, i),
			State:               PendingApplication,
			MaxDomains:          maxDomains,
			CreateTime:          now,
			UpdateTime:          now,
			SubscriptionEndTime: now.AddDate(p.Years, 0, 0),
		})
	}
	o.Schedule()
	return o, nil
}

// Product returns the order's product.
func (o *Order) Product() Product {
	p, _ := FindProduct(o.ProductID)
	return p
}

// Instance returns the instance with id.
func (o *Order) Instance(id string) (*Instance, error) {
	for i := range o.Instances {
		if o.Instances[i].ID == id {
			return &o.Instances[i], nil
		}
	}
	return nil, apierr.NotFoundf("instance " + id)
}

// ErrNoChange reports a transition that is already done (idempotent retry).
var ErrNoChange = fmt.Errorf("no change")

// Bind moves a PENDING_APPLICATION instance to APPLYING for app.
func (in *Instance) Bind(app string, now time.Time) error {
	switch {
	case in.State == Applying && in.Application == app:
		return ErrNoChange
	case in.State != PendingApplication:
		return apierr.New(apierr.FailedPrecondition, "INSTANCE_NOT_AVAILABLE",
			"instance %s is %s, not PENDING_APPLICATION; use an unused instance (GET /v1/instances?filter=state=PENDING_APPLICATION)", in.ID, in.State).
			WithMeta("state", string(in.State))
	case !now.Before(in.SubscriptionEndTime):
		return apierr.New(apierr.FailedPrecondition, "SUBSCRIPTION_ENDED", "instance %s's subscription ended on %s; buy a new one", in.ID, in.SubscriptionEndTime.Format(time.DateOnly))
	}
	in.State, in.Application, in.UpdateTime = Applying, app, now.UTC()
	return nil
}

// Release returns an instance bound to app to PENDING_APPLICATION.
func (in *Instance) Release(app string, now time.Time) error {
	if in.State != Applying || in.Application != app {
		return ErrNoChange
	}
	in.State, in.Application, in.UpdateTime = PendingApplication, "", now.UTC()
	return nil
}

// MarkIssued records the certificate issued for app and its notAfter.
func (in *Instance) MarkIssued(app, cert string, notAfter, now time.Time) error {
	switch {
	case in.State == Issued && in.Application == app && in.Certificate == cert:
		if notAfter.After(in.CertificateNotAfter) {
			in.CertificateNotAfter = notAfter.UTC()
			return nil
		}
		return ErrNoChange
	case (in.State == Issued || in.State == Revoked) && in.Application == app && in.Certificate != "" && in.Certificate != cert:
		// A reissue of the instance's application: the new certificate is
		// the instance's from now on (the old one may have been revoked).
	case in.State != Applying || in.Application != app:
		return apierr.New(apierr.FailedPrecondition, "INSTANCE_NOT_APPLYING",
			"instance %s is %s for %q, not APPLYING for %s", in.ID, in.State, in.Application, app)
	}
	in.State, in.Certificate, in.UpdateTime = Issued, cert, now.UTC()
	if notAfter.After(in.CertificateNotAfter) {
		in.CertificateNotAfter = notAfter.UTC()
	}
	return nil
}

// MarkRevoked records that cert, the instance's certificate for app, was
// revoked (ISSUED -> REVOKED). An older certificate of a reissued instance,
// or one already marked, changes nothing.
func (in *Instance) MarkRevoked(app, cert string, now time.Time) error {
	switch {
	case in.State == Revoked && in.Certificate == cert:
		return ErrNoChange
	case in.Application != app || in.Certificate != cert:
		return ErrNoChange
	case in.State != Issued:
		return apierr.New(apierr.FailedPrecondition, "INSTANCE_NOT_ISSUED",
			"instance %s is %s, not ISSUED", in.ID, in.State)
	}
	in.State, in.UpdateTime = Revoked, now.UTC()
	return nil
}

// ExpireTime is when the instance becomes EXPIRED: once its subscription
// has ended and the last certificate issued for it has passed notAfter.
// Only an unused or issued instance expires (ok false otherwise): one
// APPLYING may still get a certificate (the CA refuses after the
// subscription, and the application's failure releases it), and a revoked
// one keeps saying so.
func (in *Instance) ExpireTime() (time.Time, bool) {
	if in.State != PendingApplication && in.State != Issued {
		return time.Time{}, false
	}
	return in.EndTime(), true
}

// EndTime is the later of the subscription's end and the last
// certificate's notAfter.
func (in *Instance) EndTime() time.Time {
	if in.CertificateNotAfter.After(in.SubscriptionEndTime) {
		return in.CertificateNotAfter
	}
	return in.SubscriptionEndTime
}

// Expire moves the instance to EXPIRED once ExpireTime has passed.
func (in *Instance) Expire(now time.Time) error {
	at, ok := in.ExpireTime()
	if !ok || now.Before(at) {
		return ErrNoChange
	}
	in.State, in.UpdateTime = Expired, now.UTC()
	return nil
}

// NextExpiry is when the next of o's instances expires (ok false: none
// will).
func (o *Order) NextExpiry() (due time.Time, ok bool) {
	for i := range o.Instances {
		at, yes := o.Instances[i].ExpireTime()
		if yes && (!ok || at.Before(due)) {
			due, ok = at, true
		}
	}
	return due, ok
}

// Schedule sets ExpireDue from NextExpiry.
func (o *Order) Schedule() { o.ExpireDue, _ = o.NextExpiry() }
