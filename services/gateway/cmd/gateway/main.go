// Command gateway serves certflow's public JSON API.
package main

import (
	"context"
	"log/slog"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/service"
	gateway "github.com/certflow/certflow/services/gateway/service"
)

func main() {
	service.Main("gateway", func(s *config.Set) func(context.Context, *slog.Logger) error {
		var cfg gateway.Config
		cfg.Flags(s)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Log = log
			g, err := gateway.New(ctx, cfg)
			if err != nil {
				return err
			}
			return g.Run(ctx)
		}
	})
}
