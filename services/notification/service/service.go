// Package service assembles the notification service: it consumes every
// lifecycle event, emails the applicant at the steps that need them, records
// what it sent, and serves that record over gRPC.
package service

import (
	"context"
	"fmt"
	"net/mail"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/notification/internal/app"
	"github.com/certflow/certflow/services/notification/internal/domain"
	"github.com/certflow/certflow/services/notification/internal/grpcapi"
	notifymail "github.com/certflow/certflow/services/notification/internal/mail"
	"github.com/certflow/certflow/services/notification/internal/store"
)

// DefaultPort is the notification service's gRPC port in the default run.
const DefaultPort = 9105

// DefaultFrom is the sender of certflow's mail unless configured.
const DefaultFrom = "certflow <no-reply@certflow.test>"

// Durable is the name of the service's JetStream consumer.
const Durable = "notification"

// Config configures the notification service.
type Config struct {
	service.Config
	// SMTPAddr is the host:port of the SMTP server mail goes through. Empty
	// selects the development driver, which logs mail instead of sending it.
	SMTPAddr string
	// From is the sender of every mail (default DefaultFrom).
	From string
	// RetryDelay is how long a failed event waits before redelivery
	// (default 500ms).
	RetryDelay time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Flags registers the common settings and the mail settings on s.
func (c *Config) Flags(s *config.Set, name string, port int) {
	c.Config.Flags(s, name, port)
	s.String(&c.SMTPAddr, "smtp-addr", "CERTFLOW_SMTP_ADDR", "", "SMTP server host:port to send mail through; empty logs mail instead (development)")
	s.String(&c.From, "mail-from", "CERTFLOW_MAIL_FROM", DefaultFrom, "sender address of notification mail")
}

// Service is a running notification service.
type Service struct{ *service.Base }

// New connects and listens; call Run to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Name = "notification"
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.From == "" {
		cfg.From = DefaultFrom
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 500 * time.Millisecond
	}
	// Check the mail settings before connecting to anything.
	var smtp *notifymail.SMTP
	if cfg.SMTPAddr != "" {
		var err error
		if smtp, err = notifymail.NewSMTP(cfg.SMTPAddr, cfg.From); err != nil {
			return nil, err
		}
		smtp.Now = cfg.Now
	} else if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("mail from %q: %w", cfg.From, err)
	}

	b, err := service.Start(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	var mailer notifymail.Mailer = smtp
	if smtp == nil {
		b.Log.Warn("no SMTP server configured: mail is logged, not sent (development driver); set -smtp-addr to send")
		mailer = notifymail.LogDriver{Log: b.Log}
	}
	notes := docstore.New[domain.Notification](b.DB.Collection("notifications"), "notification", b.StoreOptions(cfg.Now)...)
	// Listing by application is the API's one filter.
	byApplication := mongo.IndexModel{Keys: bson.D{{Key: "account", Value: 1}, {Key: "doc.application", Value: 1}, {Key: "created", Value: -1}}}
	if err := notes.EnsureIndexes(ctx, byApplication); err != nil {
		b.NATS.Close()
		_ = b.Mongo.Disconnect(context.Background())
		return nil, err
	}
	a := app.New(notes, store.NewContacts(b.DB.Collection("contacts")), mailer, cfg.Now, b.Log)
	b.GRPC.Register(&notificationv1.NotificationService_ServiceDesc, &grpcapi.Server{App: a})
	b.Go(func(ctx context.Context) error {
		return b.NATS.Consume(ctx, events.ConsumeOptions{
			Durable:    Durable,
			Subjects:   []string{events.StreamSubjects},
			RetryDelay: cfg.RetryDelay,
			Log:        b.Log,
		}, a.Handle)
	})
	return &Service{b}, nil
}
