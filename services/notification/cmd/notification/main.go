// Command notification serves the notification service: it emails
// applicants about their applications' lifecycle and records what it sent.
package main

import (
	"context"
	"log/slog"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/service"
	notification "github.com/certflow/certflow/services/notification/service"
)

func main() {
	service.Main("notification", func(s *config.Set) func(context.Context, *slog.Logger) error {
		var cfg notification.Config
		cfg.Flags(s, "notification", notification.DefaultPort)
		return func(ctx context.Context, log *slog.Logger) error {
			cfg.Log = log
			svc, err := notification.New(ctx, cfg)
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		}
	})
}
