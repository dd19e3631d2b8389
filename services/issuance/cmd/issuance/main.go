// Command issuance serves the issuance service: the CA, certificates,
// downloads.
package main

import (
	"context"
	"log/slog"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/service"
	issuance "github.com/certflow/certflow/services/issuance/service"
)

func main() {
	service.Main("issuance", func(s *config.Set) func(context.Context, *slog.Logger) error {
		var cfg issuance.Config
		cfg.Flags(s)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Log = log
			svc, err := issuance.New(ctx, cfg)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		}
	})
}
