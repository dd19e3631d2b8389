// Package grpcapi maps the order service's gRPC API to its use cases.
package grpcapi

import (
	"context"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/filter"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/resname"
	"github.com/certflow/certflow/services/order/internal/app"
	"github.com/certflow/certflow/services/order/internal/domain"
)

// Server implements orderv1.OrderServiceServer.
type Server struct {
	orderv1.UnimplementedOrderServiceServer
	App *app.App
	// Pages issues and checks the keyset page tokens of the list methods.
	Pages *page.Keyset
}

var levels = map[domain.ValidationLevel]orderv1.ValidationLevel{
	domain.DV: orderv1.ValidationLevel_VALIDATION_LEVEL_DV,
	domain.OV: orderv1.ValidationLevel_VALIDATION_LEVEL_OV,
	domain.EV: orderv1.ValidationLevel_VALIDATION_LEVEL_EV,
}

var types = map[domain.DomainType]orderv1.DomainType{
	domain.Single:   orderv1.DomainType_DOMAIN_TYPE_SINGLE,
	domain.Multi:    orderv1.DomainType_DOMAIN_TYPE_MULTI,
	domain.Wildcard: orderv1.DomainType_DOMAIN_TYPE_WILDCARD,
}

func productPB(p domain.Product) *orderv1.Product {
	return &orderv1.Product{
		Name:            resname.Name("products", p.ID),
		DisplayName:     p.DisplayName,
		ValidationLevel: levels[p.Level],
		DomainType:      types[p.Type],
		Years:           int32(p.Years),
		MinDomains:      int32(p.MinDomains),
		MaxDomains:      int32(p.MaxDomains),
	}
}

// ListProducts lists the catalogue; filter on validation_level, domain_type
// and years.
func (s *Server) ListProducts(ctx context.Context, req *orderv1.ListProductsRequest) (*orderv1.ListProductsResponse, error) {
	f, err := filter.Parse(req.GetFilter(), "validation_level", "domain_type", "years")
	if err != nil {
		return nil, filterErr(err)
	}
	var all []domain.Product
	for _, p := range domain.Catalog() {
		if v, ok := f["validation_level"]; ok && string(p.Level) != v {
			continue
		}
		if v, ok := f["domain_type"]; ok && string(p.Type) != v {
			continue
		}
		if v, ok := f["years"]; ok && v != strconv.Itoa(p.Years) {
			continue
		}
		all = append(all, p)
	}
	// The catalogue is a fixed list: the cursor is the last product's id
	// (its time is unused).
	products, next, err := page.ListKeyset(s.Pages, page.Query("ListProducts", req.GetFilter()), req, func(after *page.Cursor, limit int64) ([]domain.Product, bool, error) {
		start := 0
		if after != nil {
			start = slices.IndexFunc(all, func(p domain.Product) bool { return p.ID == after.ID }) + 1
		}
		end := min(start+int(limit), len(all))
		return all[start:end], end < len(all), nil
	}, func(p domain.Product) page.Cursor { return page.Cursor{Time: time.Unix(0, 0), ID: p.ID} }, productPB)
	if err != nil {
		return nil, err
	}
	return &orderv1.ListProductsResponse{Products: products, NextPageToken: next}, nil
}

// GetProduct reads one product.
func (s *Server) GetProduct(ctx context.Context, req *orderv1.GetProductRequest) (*orderv1.Product, error) {
	id, err := resname.ID("name", "products", req.GetName())
	if err != nil {
		return nil, err
	}
	p, ok := domain.FindProduct(id)
	if !ok {
		return nil, apierr.NotFoundf("product " + req.GetName())
	}
	return productPB(p), nil
}

// CreateOrder buys instances.
func (s *Server) CreateOrder(ctx context.Context, req *orderv1.CreateOrderRequest) (*orderv1.Order, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	o := req.GetOrder()
	if o == nil {
		return nil, apierr.Invalid("order", "MISSING_FIELD", "order is required")
	}
	productID, err := resname.ID("order.product", "products", o.GetProduct())
	if err != nil {
		return nil, err
	}
	if len(req.GetRequestId()) > 128 {
		return nil, apierr.Invalid("request_id", "INVALID_REQUEST_ID", "request_id must be at most 128 characters")
	}
	rec, err := s.App.CreateOrder(ctx, acct, req.GetRequestId(), productID, int(o.GetQuantity()), int(o.GetDomainCount()))
	if err != nil {
		return nil, err
	}
	return orderPB(rec), nil
}

// GetOrder reads an order.
func (s *Server) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.Order, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("name", "orders", req.GetName())
	if err != nil {
		return nil, err
	}
	rec, err := s.App.GetOrder(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return orderPB(rec), nil
}

// ListOrders lists orders newest first.
func (s *Server) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	orders, next, err := page.Records(s.Pages, page.Query("ListOrders", acct), req, func(after *docstore.Position, limit int64) ([]*docstore.Record[domain.Order], bool, error) {
		return s.App.ListOrders(ctx, acct, after, limit)
	}, orderPB)
	if err != nil {
		return nil, err
	}
	return &orderv1.ListOrdersResponse{Orders: orders, NextPageToken: next}, nil
}

// GetInstance reads an instance of the caller's account.
func (s *Server) GetInstance(ctx context.Context, req *orderv1.GetInstanceRequest) (*orderv1.Instance, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("name", "instances", req.GetName())
	if err != nil {
		return nil, err
	}
	v, err := s.App.GetInstance(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	return instancePB(v), nil
}

// ListInstances lists instances; filter `state = PENDING_APPLICATION`.
func (s *Server) ListInstances(ctx context.Context, req *orderv1.ListInstancesRequest) (*orderv1.ListInstancesResponse, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filter.Parse(req.GetFilter(), "state")
	if err != nil {
		return nil, filterErr(err)
	}
	state := domain.InstanceState(f["state"])
	if state != "" {
		if _, ok := orderv1.Instance_State_value[string(state)]; !ok || state == "STATE_UNSPECIFIED" {
			return nil, apierr.Invalid("filter", "INVALID_FILTER", "unknown state %q; use PENDING_APPLICATION, APPLYING, ISSUED, EXPIRED or REVOKED", state)
		}
	}
	// The token is bound to the account and the filter as given; its
	// cursor is the last instance's order creation time and id.
	query := page.Query("ListInstances", acct, req.GetFilter())
	instances, next, err := page.ListKeyset(s.Pages, query, req, func(after *page.Cursor, limit int64) ([]app.InstanceView, bool, error) {
		var pos *app.InstancePosition
		if after != nil {
			pos = &app.InstancePosition{OrderCreated: after.Time, Instance: after.ID}
		}
		return s.App.ListInstances(ctx, acct, state, pos, limit)
	}, func(v app.InstanceView) page.Cursor {
		return page.Cursor{Time: v.OrderCreated, ID: v.ID}
	}, func(v app.InstanceView) *orderv1.Instance { return instancePB(&v) })
	if err != nil {
		return nil, err
	}
	return &orderv1.ListInstancesResponse{Instances: instances, NextPageToken: next}, nil
}

// BindInstance is internal: the application service binds on submit.
func (s *Server) BindInstance(ctx context.Context, req *orderv1.BindInstanceRequest) (*orderv1.Instance, error) {
	return s.internal(ctx, req.GetName(), req.GetApplication(), func(acct, id string) (*app.InstanceView, error) {
		return s.App.BindInstance(ctx, acct, id, req.GetApplication())
	})
}

// ReleaseInstance is internal: the application service releases on withdraw.
func (s *Server) ReleaseInstance(ctx context.Context, req *orderv1.ReleaseInstanceRequest) (*orderv1.Instance, error) {
	return s.internal(ctx, req.GetName(), req.GetApplication(), func(acct, id string) (*app.InstanceView, error) {
		return s.App.ReleaseInstance(ctx, acct, id, req.GetApplication())
	})
}

// MarkInstanceIssued is internal: the application service marks on issue.
func (s *Server) MarkInstanceIssued(ctx context.Context, req *orderv1.MarkInstanceIssuedRequest) (*orderv1.Instance, error) {
	if _, err := resname.ID("certificate", "certificates", req.GetCertificate()); err != nil {
		return nil, err
	}
	return s.internal(ctx, req.GetName(), req.GetApplication(), func(acct, id string) (*app.InstanceView, error) {
		return s.App.MarkInstanceIssued(ctx, acct, id, req.GetApplication(), req.GetCertificate(), optionalTime(req.GetCertificateNotAfter()))
	})
}

// MarkInstanceRevoked is internal: the application service marks when the
// instance's certificate is revoked.
func (s *Server) MarkInstanceRevoked(ctx context.Context, req *orderv1.MarkInstanceRevokedRequest) (*orderv1.Instance, error) {
	if _, err := resname.ID("certificate", "certificates", req.GetCertificate()); err != nil {
		return nil, err
	}
	return s.internal(ctx, req.GetName(), req.GetApplication(), func(acct, id string) (*app.InstanceView, error) {
		return s.App.MarkInstanceRevoked(ctx, acct, id, req.GetApplication(), req.GetCertificate())
	})
}

func (s *Server) internal(ctx context.Context, name, application string, fn func(acct, id string) (*app.InstanceView, error)) (*orderv1.Instance, error) {
	acct, err := auth.Account(ctx)
	if err != nil {
		return nil, err
	}
	id, err := resname.ID("name", "instances", name)
	if err != nil {
		return nil, err
	}
	if _, err := resname.ID("application", "applications", application); err != nil {
		return nil, err
	}
	v, err := fn(acct, id)
	if err != nil {
		return nil, err
	}
	return instancePB(v), nil
}

func orderPB(r *docstore.Record[domain.Order]) *orderv1.Order {
	o := &orderv1.Order{
		Name:        resname.Name("orders", r.ID),
		Product:     resname.Name("products", r.Doc.ProductID),
		Quantity:    int32(r.Doc.Quantity),
		DomainCount: int32(r.Doc.DomainCount),
		CreateTime:  timestamppb.New(r.Doc.CreateTime),
	}
	for _, in := range r.Doc.Instances {
		o.Instances = append(o.Instances, resname.Name("instances", in.ID))
	}
	return o
}

func instancePB(v *app.InstanceView) *orderv1.Instance {
	pb := &orderv1.Instance{
		Name:                resname.Name("instances", v.ID),
		Order:               resname.Name("orders", v.OrderID),
		Product:             resname.Name("products", v.Product.ID),
		ValidationLevel:     levels[v.Product.Level],
		DomainType:          types[v.Product.Type],
		MaxDomains:          int32(v.MaxDomains),
		Years:               int32(v.Product.Years),
		State:               orderv1.Instance_State(orderv1.Instance_State_value[string(v.State)]),
		Application:         v.Application,
		Certificate:         v.Certificate,
		CreateTime:          timestamppb.New(v.CreateTime),
		SubscriptionEndTime: timestamppb.New(v.SubscriptionEndTime),
		UpdateTime:          timestamppb.New(v.UpdateTime),
		ExpireTime:          timestamppb.New(v.EndTime()),
	}
	return pb
}

// optionalTime is zero for an unset timestamp.
func optionalTime(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func filterErr(err error) error {
	return apierr.Invalid("filter", "INVALID_FILTER", "%v", err)
}
