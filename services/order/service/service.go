// Package service assembles the order service: the store, the use cases and
// the gRPC API on the shared plumbing of pkg/service.
package service

import (
	"context"
	"time"

	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/order/internal/app"
	"github.com/certflow/certflow/services/order/internal/domain"
	"github.com/certflow/certflow/services/order/internal/grpcapi"
)

// DefaultPort is the order service's gRPC port in the default run.
const DefaultPort = 9101

// Config configures the order service.
type Config struct {
	service.Config
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service is a running order service.
type Service struct{ *service.Base }

// New connects and listens; call Run to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Name = "order"
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b, err := service.Start(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	orders := docstore.New[domain.Order](b.DB.Collection("orders"), "order", b.OutboxStoreOptions(cfg.Now)...)
	if err := orders.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	b.GRPC.Register(&orderv1.OrderService_ServiceDesc, &grpcapi.Server{App: app.New(orders, cfg.Now)})
	return &Service{b}, nil
}
