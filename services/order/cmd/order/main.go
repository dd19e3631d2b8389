// Command order serves the order service: products, orders and certificate
// instances.
package main

import (
	"context"
	"log/slog"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/service"
	order "github.com/certflow/certflow/services/order/service"
)

func main() {
	service.Main("order", func(s *config.Set) func(context.Context, *slog.Logger) error {
		var cfg order.Config
		cfg.Flags(s, "order", order.DefaultPort)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Log = log
			svc, err := order.New(ctx, cfg)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		}
	})
}
