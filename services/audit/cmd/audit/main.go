// Command audit serves the audit service: the append-only trail of customer
// and reviewer actions.
package main

import (
	"context"
	"log/slog"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/service"
	audit "github.com/certflow/certflow/services/audit/service"
)

func main() {
	service.Main("audit", func(s *config.Set) func(context.Context, *slog.Logger) error {
		var cfg audit.Config
		cfg.Flags(s, "audit", audit.DefaultPort)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Log = log
			svc, err := audit.New(ctx, cfg)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		}
	})
}
