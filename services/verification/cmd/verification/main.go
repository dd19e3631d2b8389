// Command verification serves the verification service: domain control
// validation (DNS TXT, DNS CNAME, HTTP file, email), CAA checks, and
// organization validation. With -role perspective it is a remote
// perspective for multi-perspective corroboration instead.
package main

import (
	"context"
	"log/slog"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/service"
	verification "github.com/certflow/certflow/services/verification/service"
)

func main() {
	service.Main("verification", func(s *config.Set) func(context.Context, *slog.Logger) error {
		var cfg verification.Config
		cfg.Flags(s)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Log = log
			if cfg.Role == verification.RolePerspective {
				// A remote perspective (BR 3.2.2.9): -region, -rir, its own
				// -dns-servers; no database or NATS.
				p, err := verification.NewPerspective(ctx, cfg)
				if err != nil {
					return err
				}
				return p.Run(ctx)
			}
			svc, err := verification.New(ctx, cfg)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		}
	})
}
