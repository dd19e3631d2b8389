// Package app is the order service's use cases: load, decide with the
// domain, save with the events to publish.
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/order/internal/domain"
)

const source = "//certflow/order"

// Orders is the order repository.
type Orders interface {
	Create(ctx context.Context, id, account string, doc domain.Order, evs ...events.Event) (*docstore.Record[domain.Order], bool, error)
	Get(ctx context.Context, account, id string) (*docstore.Record[domain.Order], error)
	Update(ctx context.Context, account, id string, fn docstore.Mutation[domain.Order]) (*docstore.Record[domain.Order], error)
	List(ctx context.Context, account string, o docstore.ListOptions) ([]*docstore.Record[domain.Order], bool, error)
}

// App runs the use cases.
type App struct {
	orders Orders
	now    func() time.Time
}

// New returns the use cases over a repository and a clock.
func New(orders Orders, now func() time.Time) *App { return &App{orders: orders, now: now} }

// CreateOrder buys instances. With a requestID, a retry returns the first
// order.
func (a *App) CreateOrder(ctx context.Context, account, requestID, productID string, quantity, domainCount int) (*docstore.Record[domain.Order], error) {
	id := docstore.NewID()
	if requestID != "" {
		id = docstore.IDFor(account, requestID)
	}
	now := a.now()
	o, err := domain.NewOrder(id, productID, quantity, domainCount, now)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, in := range o.Instances {
		names = append(names, "instances/"+in.ID)
	}
	ev, err := newEvent(events.OrderCreated, "orders/"+id, now, &eventsv1.OrderCreated{
		Account: account, Order: "orders/" + id, Product: "products/" + productID, Instances: names,
	})
	if err != nil {
		return nil, err
	}
	rec, _, err := a.orders.Create(ctx, id, account, o, ev)
	return rec, err
}

// GetOrder reads an order.
func (a *App) GetOrder(ctx context.Context, account, id string) (*docstore.Record[domain.Order], error) {
	return a.orders.Get(ctx, account, id)
}

// ListOrders lists orders newest first, those after the position after
// (nil: from the newest).
func (a *App) ListOrders(ctx context.Context, account string, after *docstore.Position, limit int64) ([]*docstore.Record[domain.Order], bool, error) {
	return a.orders.List(ctx, account, docstore.ListOptions{After: after, Limit: limit})
}

// InstanceView is an instance with its order's product.
type InstanceView struct {
	OrderID string
	// OrderCreated is when its order was stored: with the instance id, the
	// instance's place in ListInstances.
	OrderCreated time.Time
	Product      domain.Product
	domain.Instance
}

func viewOf(r *docstore.Record[domain.Order], in domain.Instance) InstanceView {
	return InstanceView{OrderID: r.ID, OrderCreated: r.Created, Product: r.Doc.Product(), Instance: in}
}

// orderOf splits an instance id <order>-<n> into its order id.
func orderOf(instanceID string) (string, error) {
	i := strings.LastIndexByte(instanceID, '-')
	if i <= 0 {
		return "", apierr.NotFoundf("instance " + instanceID)
	}
	return instanceID[:i], nil
}

// GetInstance reads an instance; account "" is any account (internal).
func (a *App) GetInstance(ctx context.Context, account, instanceID string) (*InstanceView, error) {
	orderID, err := orderOf(instanceID)
	if err != nil {
		return nil, err
	}
	rec, err := a.orders.Get(ctx, account, orderID)
	if err != nil {
		if errors.Is(err, apierr.ErrNotFound) {
			return nil, apierr.NotFoundf("instance " + instanceID)
		}
		return nil, err
	}
	in, err := rec.Doc.Instance(instanceID)
	if err != nil {
		return nil, err
	}
	return &InstanceView{OrderID: orderID, Product: rec.Doc.Product(), Instance: *in}, nil
}

// InstancePosition is an instance's place in ListInstances: its order's
// place in the orders' listing (creation time, and the order id the
// instance id starts with), then its place in the order.
type InstancePosition struct {
	OrderCreated time.Time
	// Instance is the instance's id, <order>-<n>.
	Instance string
}

// ListInstances lists an account's instances newest first (by order, then
// in the order's own sequence), optionally of one state, those after the
// position after (nil: from the newest). Instances live in their orders,
// so a page reads the position's order by _id and then at most limit more
// orders after it in the orders' keyset order, each holding an instance
// of the state (the state is part of the query): its cost does not depend
// on how many orders the account has before the position.
func (a *App) ListInstances(ctx context.Context, account string, state domain.InstanceState, after *InstancePosition, limit int64) ([]InstanceView, bool, error) {
	var out []InstanceView
	// add appends the instances of r of the state, those after skip
	// ("": all of them).
	add := func(r *docstore.Record[domain.Order], skip string) {
		past := skip == ""
		for _, in := range r.Doc.Instances {
			if past && (state == "" || in.State == state) {
				out = append(out, viewOf(r, in))
			}
			past = past || in.ID == skip
		}
	}
	var from *docstore.Position
	if after != nil {
		orderID, err := orderOf(after.Instance)
		if err != nil {
			return nil, false, err
		}
		// Orders are never deleted, so the position's order is there.
		r, err := a.orders.Get(ctx, account, orderID)
		if err != nil {
			return nil, false, err
		}
		add(r, after.Instance)
		from = &docstore.Position{Created: after.OrderCreated, ID: orderID}
	}
	if int64(len(out)) > limit {
		return out[:limit], true, nil
	}
	var f bson.D
	if state != "" {
		f = bson.D{{Key: "doc.instances.state", Value: string(state)}}
	}
	// Each order listed holds at least one instance of the page, so
	// limit-len(out) orders fill it (0: List only says whether more follow).
	recs, more, err := a.orders.List(ctx, account, docstore.ListOptions{Filter: f, After: from, Limit: limit - int64(len(out))})
	if err != nil {
		return nil, false, err
	}
	for _, r := range recs {
		add(r, "")
	}
	if int64(len(out)) > limit {
		return out[:limit], true, nil
	}
	return out, more, nil
}

// BindInstance moves an instance to APPLYING for app.
func (a *App) BindInstance(ctx context.Context, account, instanceID, app string) (*InstanceView, error) {
	return a.transition(ctx, account, instanceID, func(in *domain.Instance, now time.Time) (string, proto.Message, error) {
		if err := in.Bind(app, now); err != nil {
			return "", nil, err
		}
		return events.InstanceBound, &eventsv1.InstanceBound{Account: account, Instance: "instances/" + instanceID, Application: app}, nil
	})
}

// ReleaseInstance returns an instance bound to app to PENDING_APPLICATION.
func (a *App) ReleaseInstance(ctx context.Context, account, instanceID, app string) (*InstanceView, error) {
	return a.transition(ctx, account, instanceID, func(in *domain.Instance, now time.Time) (string, proto.Message, error) {
		if err := in.Release(app, now); err != nil {
			return "", nil, err
		}
		return events.InstanceReleased, &eventsv1.InstanceReleased{Account: account, Instance: "instances/" + instanceID, Application: app}, nil
	})
}

// MarkInstanceIssued records the certificate of an instance bound to app.
func (a *App) MarkInstanceIssued(ctx context.Context, account, instanceID, app, cert string, notAfter time.Time) (*InstanceView, error) {
	return a.transition(ctx, account, instanceID, func(in *domain.Instance, now time.Time) (string, proto.Message, error) {
		if err := in.MarkIssued(app, cert, notAfter, now); err != nil {
			return "", nil, err
		}
		return events.InstanceIssued, &eventsv1.InstanceIssued{Account: account, Instance: "instances/" + instanceID, Application: app, Certificate: cert}, nil
	})
}

// MarkInstanceRevoked records that the certificate of an instance bound to
// app was revoked; a certificate the instance no longer holds changes
// nothing.
func (a *App) MarkInstanceRevoked(ctx context.Context, account, instanceID, app, cert string) (*InstanceView, error) {
	return a.transition(ctx, account, instanceID, func(in *domain.Instance, now time.Time) (string, proto.Message, error) {
		if err := in.MarkRevoked(app, cert, now); err != nil {
			return "", nil, err
		}
		return events.InstanceRevoked, &eventsv1.InstanceRevoked{Account: account, Instance: "instances/" + instanceID, Application: app, Certificate: cert}, nil
	})
}

type decide func(in *domain.Instance, now time.Time) (string, proto.Message, error)

func (a *App) transition(ctx context.Context, account, instanceID string, fn decide) (*InstanceView, error) {
	orderID, err := orderOf(instanceID)
	if err != nil {
		return nil, err
	}
	var view InstanceView
	_, err = a.orders.Update(ctx, account, orderID, func(o *domain.Order) ([]events.Event, error) {
		in, err := o.Instance(instanceID)
		if err != nil {
			return nil, err
		}
		now := a.now()
		typ, msg, err := fn(in, now)
		view = InstanceView{OrderID: orderID, Product: o.Product(), Instance: *in}
		if errors.Is(err, domain.ErrNoChange) {
			return nil, docstore.ErrUnchanged
		}
		if err != nil {
			return nil, err
		}
		view.Instance = *in
		o.Schedule()
		ev, err := newEvent(typ, "instances/"+instanceID, now, msg)
		if err != nil {
			return nil, err
		}
		return []events.Event{ev}, nil
	})
	if errors.Is(err, apierr.ErrNotFound) {
		return nil, apierr.NotFoundf("instance " + instanceID)
	}
	if err != nil {
		return nil, err
	}
	return &view, nil
}

func newEvent(typ, subject string, now time.Time, msg proto.Message) (events.Event, error) {
	return events.Stamp(typ, source, subject, now, msg)
}

// DueOrders finds the orders with an instance to expire by now, at most
// limit: duequeue.Indexed on MongoDB, duequeue.Tracked for a single writer.
type DueOrders interface {
	Due(ctx context.Context, now time.Time, limit int) ([]*docstore.Record[domain.Order], error)
}

// DueField is the indexed field holding when an order's next instance
// expires.
const DueField = "doc.expiredue"

// NextExpiry is the schedule of duequeue.Tracked.
func NextExpiry(o *domain.Order) (time.Time, bool) { return o.NextExpiry() }

// ExpireDue moves every instance whose subscription and last certificate
// have ended to EXPIRED, with certflow.instance.expired in the same write,
// and returns how many.
func (a *App) ExpireDue(ctx context.Context, due DueOrders) (int, error) {
	now := a.now()
	recs, err := due.Due(ctx, now, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range recs {
		_, err := a.orders.Update(ctx, r.Account, r.ID, func(o *domain.Order) ([]events.Event, error) {
			var evs []events.Event
			for i := range o.Instances {
				in := &o.Instances[i]
				if in.Expire(now) != nil {
					continue
				}
				ev, err := newEvent(events.InstanceExpired, "instances/"+in.ID, now, &eventsv1.InstanceExpired{
					Account: r.Account, Instance: "instances/" + in.ID, Application: in.Application, Certificate: in.Certificate,
					SubscriptionEndTime: timestamppb.New(in.SubscriptionEndTime),
				})
				if err != nil {
					return nil, err
				}
				evs = append(evs, ev)
			}
			before := o.ExpireDue
			o.Schedule()
			if len(evs) == 0 && o.ExpireDue.Equal(before) {
				return nil, docstore.ErrUnchanged
			}
			n += len(evs)
			return evs, nil
		})
		if err != nil && !errors.Is(err, apierr.ErrNotFound) {
			errs = append(errs, fmt.Errorf("expire instances of order %s: %w", r.ID, err))
		}
	}
	return n, errors.Join(errs...)
}

// RunExpiry expires due instances every interval until ctx ends.
func (a *App) RunExpiry(ctx context.Context, due DueOrders, interval time.Duration, log func(msg string, args ...any)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := a.ExpireDue(ctx, due); err != nil && ctx.Err() == nil {
			log("expiring instances failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
