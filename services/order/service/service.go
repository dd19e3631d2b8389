// Package service assembles the order service: the store, the use cases and
// the gRPC API on the shared plumbing of pkg/service.
package service

import (
	"context"
	"time"

	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/duequeue"
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
	// ExpiryInterval is how often instances due to expire are looked for
	// (default a minute).
	ExpiryInterval time.Duration
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
	orders := docstore.New[domain.Order](b.DB.Collection("orders"), "order", append(b.OutboxStoreOptions(cfg.Now), docstore.ReadCache(service.ReadCacheBytes), docstore.MemoryListIndex("doc.instances.state"))...)
	if err := orders.EnsureIndexes(ctx, mongo.IndexModel{Keys: bson.D{{Key: app.DueField, Value: 1}}}); err != nil {
		return nil, err
	}
	if cfg.ExpiryInterval <= 0 {
		cfg.ExpiryInterval = time.Minute
	}
	// Instances to expire: on MongoDB by the index; on FerretDB, which this
	// process alone writes, from an in-memory queue loaded by one scan now
	// (as the issuance service's reminders).
	var (
		repo app.Orders    = orders
		due  app.DueOrders = duequeue.Indexed[domain.Order]{Store: orders, Field: app.DueField}
	)
	if b.SingleWriter() {
		q := duequeue.NewTracked(orders, app.NextExpiry)
		if err := q.Load(ctx, bson.D{{Key: app.DueField, Value: bson.D{{Key: "$ne", Value: time.Time{}}}}}); err != nil {
			return nil, err
		}
		repo, due = q, q
	}
	pages, err := b.PageKeyset(ctx)
	if err != nil {
		return nil, err
	}
	a := app.New(repo, cfg.Now)
	b.Go(func(ctx context.Context) error { return a.RunExpiry(ctx, due, cfg.ExpiryInterval, b.Log.Warn) })
	b.GRPC.Register(&orderv1.OrderService_ServiceDesc, &grpcapi.Server{App: a, Pages: pages})
	return &Service{b}, nil
}
