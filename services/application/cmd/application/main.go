// Command application serves the application service: certificate
// applications from draft to issued.
package main

import (
	"context"
	"log/slog"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/service"
	application "github.com/certflow/certflow/services/application/service"
)

func main() {
	service.Main("application", func(s *config.Set) func(context.Context, *slog.Logger) error {
		var cfg application.Config
		cfg.Flags(s)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Log = log
			svc, err := application.New(ctx, cfg)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		}
	})
}
