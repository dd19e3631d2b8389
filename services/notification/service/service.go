// Package service assembles the notification service: it consumes every
// lifecycle event, emails and texts the applicant at the steps that need
// them, delivers every event to the account's webhooks, records what it
// sent, and serves that record and the webhooks over gRPC.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/sealbox"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/notification/internal/app"
	"github.com/certflow/certflow/services/notification/internal/domain"
	"github.com/certflow/certflow/services/notification/internal/grpcapi"
	notifymail "github.com/certflow/certflow/services/notification/internal/mail"
	"github.com/certflow/certflow/services/notification/internal/sms"
	"github.com/certflow/certflow/services/notification/internal/store"
	"github.com/certflow/certflow/services/notification/internal/webhook"
)

// DefaultPort is the notification service's gRPC port in the default run.
const DefaultPort = 9105

// DefaultFrom is the sender of certflow's mail unless configured.
const DefaultFrom = "certflow <no-reply@certflow.test>"

// Durable is the name of the service's JetStream consumer.
const Durable = "notification"

// Webhook delivery defaults.
const (
	DefaultWebhookRetryInitial  = 5 * time.Second
	DefaultWebhookRetryMax      = 10 * time.Minute
	DefaultWebhookMaxAttempts   = 8
	DefaultWebhookSweepInterval = 30 * time.Second
)

// Config configures the notification service.
type Config struct {
	service.Config
	// SMTPAddr is the host:port of the SMTP server mail goes through. Empty
	// selects the development driver, which logs mail instead of sending it.
	SMTPAddr string
	// From is the sender of every mail (default DefaultFrom).
	From string
	// SMSDriver selects the SMS provider; only sms.DevDriver ("dev", the
	// default) exists: it records and logs messages and sends nothing.
	SMSDriver string
	// WebhookRetryInitial is the wait after a delivery's first failed
	// attempt, doubling after each further one up to WebhookRetryMax
	// (defaults 5s and 10m).
	WebhookRetryInitial time.Duration
	WebhookRetryMax     time.Duration
	// WebhookMaxAttempts is how many attempts a delivery gets before it is
	// FAILED (default 8).
	WebhookMaxAttempts int
	// WebhookAccountConcurrency is how many deliveries of one account are
	// attempted at once (default webhook.DefaultPerAccount, 4), and
	// WebhookConcurrency how many in all (default webhook.DefaultTotal,
	// 64): due deliveries are started per account in turn, so an account
	// whose endpoint hangs holds at most its share, each attempt for at
	// most the 10s attempt timeout.
	WebhookAccountConcurrency int
	WebhookConcurrency        int
	// WebhookAllowPrivate lets deliveries connect to loopback and private
	// addresses: tests and development only.
	WebhookAllowPrivate bool
	// WebhookSweepInterval is how often PENDING deliveries are read back
	// from the database, for those a previous process (or, on MongoDB,
	// another replica) left (default 30s). On FerretDB, whose one writer
	// is this process, they are read back once, at start.
	WebhookSweepInterval time.Duration
	// WebhookKEKFile holds the base64 32-byte key-encryption key that seals
	// webhook signing secrets at rest; WebhookKEK, if set, is the key
	// itself (environment CERTFLOW_WEBHOOK_KEK, or a program embedding the
	// service). Never a command-line argument.
	WebhookKEKFile string
	WebhookKEK     string
	// RetryDelay is how long a failed event waits before redelivery
	// (default 500ms).
	RetryDelay time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Flags registers the common settings and the mail, SMS and webhook
// settings on s.
func (c *Config) Flags(s *config.Set, name string, port int) {
	c.Config.Flags(s, name, port)
	s.String(&c.SMTPAddr, "smtp-addr", "CERTFLOW_SMTP_ADDR", "", "SMTP server host:port to send mail through; empty logs mail instead (development)")
	s.String(&c.From, "mail-from", "CERTFLOW_MAIL_FROM", DefaultFrom, "sender address of notification mail")
	s.String(&c.SMSDriver, "sms-driver", "CERTFLOW_SMS_DRIVER", sms.DevDriver, `SMS provider; only "dev" exists (records and logs, sends nothing)`)
	s.Duration(&c.WebhookRetryInitial, "webhook-retry-initial", "CERTFLOW_WEBHOOK_RETRY_INITIAL", DefaultWebhookRetryInitial, "wait after a webhook delivery's first failure, doubling after each further one")
	s.Duration(&c.WebhookRetryMax, "webhook-retry-max", "CERTFLOW_WEBHOOK_RETRY_MAX", DefaultWebhookRetryMax, "longest wait between webhook delivery attempts")
	s.Int(&c.WebhookMaxAttempts, "webhook-max-attempts", "CERTFLOW_WEBHOOK_MAX_ATTEMPTS", DefaultWebhookMaxAttempts, "attempts before a webhook delivery is FAILED")
	s.Int(&c.WebhookAccountConcurrency, "webhook-account-concurrency", "CERTFLOW_WEBHOOK_ACCOUNT_CONCURRENCY", webhook.DefaultPerAccount, "webhook deliveries of one account attempted at once")
	s.Int(&c.WebhookConcurrency, "webhook-concurrency", "CERTFLOW_WEBHOOK_CONCURRENCY", webhook.DefaultTotal, "webhook deliveries attempted at once, all accounts together")
	s.Bool(&c.WebhookAllowPrivate, "webhook-allow-private", "CERTFLOW_WEBHOOK_ALLOW_PRIVATE", false, "let webhook deliveries reach loopback and private addresses (tests and development only)")
	s.String(&c.WebhookKEKFile, "webhook-kek-file", "CERTFLOW_WEBHOOK_KEK_FILE", "", "file with the base64 32-byte key-encryption key that seals webhook secrets (or the key itself in env CERTFLOW_WEBHOOK_KEK)")
	s.SecretEnv(&c.WebhookKEK, "CERTFLOW_WEBHOOK_KEK")
}

// Service is a running notification service.
type Service struct {
	*service.Base
	sms *sms.DevRecorder
}

// SMS returns the development SMS driver's recorder, or nil if another
// driver is configured.
func (s *Service) SMS() *sms.DevRecorder { return s.sms }

// withDefaults fills in defaults and checks the settings.
func (c *Config) withDefaults() error {
	c.Name = "notification"
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.From == "" {
		c.From = DefaultFrom
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = 500 * time.Millisecond
	}
	if c.WebhookRetryInitial == 0 {
		c.WebhookRetryInitial = DefaultWebhookRetryInitial
	}
	if c.WebhookRetryMax == 0 {
		c.WebhookRetryMax = max(DefaultWebhookRetryMax, c.WebhookRetryInitial)
	}
	if c.WebhookMaxAttempts == 0 {
		c.WebhookMaxAttempts = DefaultWebhookMaxAttempts
	}
	if c.WebhookSweepInterval == 0 {
		c.WebhookSweepInterval = DefaultWebhookSweepInterval
	}
	if c.WebhookAccountConcurrency == 0 {
		c.WebhookAccountConcurrency = webhook.DefaultPerAccount
	}
	if c.WebhookConcurrency == 0 {
		c.WebhookConcurrency = max(webhook.DefaultTotal, c.WebhookAccountConcurrency)
	}
	switch {
	case c.WebhookRetryInitial < 0 || c.WebhookRetryMax < c.WebhookRetryInitial:
		return fmt.Errorf("webhook retry: want 0 < initial (%s) <= max (%s)", c.WebhookRetryInitial, c.WebhookRetryMax)
	case c.WebhookMaxAttempts < 1:
		return fmt.Errorf("webhook max attempts %d: want at least 1", c.WebhookMaxAttempts)
	case c.WebhookAccountConcurrency < 1 || c.WebhookConcurrency < c.WebhookAccountConcurrency:
		return fmt.Errorf("webhook concurrency: want 1 <= per account (%d) <= in all (%d)", c.WebhookAccountConcurrency, c.WebhookConcurrency)
	case c.WebhookSweepInterval < 0:
		return fmt.Errorf("webhook sweep interval %s: want a positive duration", c.WebhookSweepInterval)
	}
	return nil
}

// New connects and listens; call Run to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	// Check the mail and SMS settings before connecting to anything.
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
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	texts, err := sms.Open(cfg.SMSDriver, log.With("service", cfg.Name))
	if err != nil {
		return nil, err
	}
	kek, err := sealbox.LoadKEK("webhook key-encryption key", cfg.WebhookKEK, cfg.WebhookKEKFile, "-webhook-kek-file or CERTFLOW_WEBHOOK_KEK")
	if err != nil {
		return nil, err
	}
	box, err := sealbox.New(kek)
	if err != nil {
		return nil, err
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
	rec, _ := texts.(*sms.DevRecorder)
	if rec != nil {
		b.Log.Warn("SMS driver is the development recorder: text messages are logged, not sent")
	}
	if cfg.WebhookAllowPrivate {
		b.Log.Warn("webhook deliveries may reach loopback and private addresses (-webhook-allow-private); never in production")
	}
	// This service publishes no events: its stores need no relay.
	opts := b.StoreOptions(cfg.Now)
	// The lists page through memory list indexes on the embedded default
	// (filled once at start, below), by the one filter each list takes.
	listed := func(fields ...string) []docstore.Option {
		return append(append([]docstore.Option(nil), opts...), docstore.MemoryListIndex(fields...))
	}
	notes := docstore.New[domain.Notification](b.DB.Collection("notifications"), "notification", listed("doc.application")...)
	hooks := docstore.New[domain.Webhook](b.DB.Collection("webhooks"), "webhook", listed()...)
	deliveries := docstore.New[domain.Delivery](b.DB.Collection("webhook_deliveries"), "webhook delivery", listed("doc.webhook")...)
	// Read and written by _id only, for every event: no indexes beyond
	// the primary key, and a read cache (one record per account, read by
	// every event of the account).
	cached := append(append([]docstore.Option(nil), opts...), docstore.ReadCache(service.SmallReadCacheBytes))
	lists := store.NewWebhookLists(docstore.New[domain.WebhookList](b.DB.Collection("webhook_lists"), "webhook list", cached...))
	contacts := store.NewContacts(docstore.New[store.Contact](b.DB.Collection("contacts"), "contact", cached...))
	webhooks := store.NewWebhooks(hooks, box)
	// Listing by application is the notifications API's one filter; the
	// delivery log lists by webhook, and the sweep reads the due range of
	// PENDING deliveries (store.DueIndex).
	indexes := []struct {
		ensure func(context.Context, ...mongo.IndexModel) error
		models []mongo.IndexModel
	}{
		{notes.EnsureIndexes, []mongo.IndexModel{{Keys: bson.D{{Key: "account", Value: 1}, {Key: "doc.application", Value: 1}, {Key: "created", Value: -1}}}}},
		{hooks.EnsureIndexes, nil},
		{deliveries.EnsureIndexes, []mongo.IndexModel{
			{Keys: bson.D{{Key: "account", Value: 1}, {Key: "doc.webhook", Value: 1}, {Key: "created", Value: -1}}},
			{Keys: store.DueIndex},
		}},
	}
	for _, ix := range indexes {
		if err := ix.ensure(ctx, ix.models...); err != nil {
			b.NATS.Close()
			_ = b.Mongo.Disconnect(context.Background())
			return nil, err
		}
	}
	// Before consuming: list the webhooks the lists do not name yet (made
	// before the lists existed, or by a create that stopped half-way). One
	// scan of the webhooks per start, none per event.
	if err := lists.Reconcile(ctx, webhooks); err != nil {
		b.NATS.Close()
		_ = b.Mongo.Disconnect(context.Background())
		return nil, err
	}
	// Secrets an earlier version stored in the clear are sealed now; until
	// then they are read as they are. Also one scan per start.
	if n, err := webhooks.SealSecrets(ctx); err != nil {
		b.NATS.Close()
		_ = b.Mongo.Disconnect(context.Background())
		return nil, err
	} else if n > 0 {
		b.Log.Info("sealed webhook secrets stored in the clear by an earlier version", "webhooks", n)
	}
	queue := webhook.NewQueue(webhook.Limits{PerAccount: cfg.WebhookAccountConcurrency, Total: cfg.WebhookConcurrency})
	// The replica's name in the delivery leases it writes: readable in the
	// database, and unique per process.
	host, _ := os.Hostname()
	replica := host + "/" + docstore.NewID()[:8]
	pages, err := b.PageKeyset(ctx)
	if err != nil {
		b.NATS.Close()
		_ = b.Mongo.Disconnect(context.Background())
		return nil, err
	}
	a := app.New(app.Deps{
		Notes:        notes,
		Contacts:     contacts,
		Mailer:       mailer,
		SMS:          texts,
		Webhooks:     webhooks,
		WebhookLists: lists,
		Deliveries:   store.NewDeliveries(deliveries),
		Poster:       webhook.NewClient(webhook.AddressPolicy{AllowPrivate: cfg.WebhookAllowPrivate}, cfg.Now),
		Queue:        queue,
		Retry: domain.RetryPolicy{
			Initial: cfg.WebhookRetryInitial, Max: cfg.WebhookRetryMax, MaxAttempts: cfg.WebhookMaxAttempts,
		},
		Replica:        replica,
		AttemptTimeout: webhook.Timeout,
		Now:            cfg.Now,
		Log:            b.Log,
	})
	b.GRPC.Register(&notificationv1.NotificationService_ServiceDesc, &grpcapi.Server{App: a, Pages: pages})
	b.Go(func(ctx context.Context) error {
		return b.NATS.Consume(ctx, events.ConsumeOptions{
			Durable:    Durable,
			Subjects:   []string{events.StreamSubjects},
			RetryDelay: cfg.RetryDelay,
			Log:        b.Log,
		}, a.Handle)
	})
	b.Go(func(ctx context.Context) error { return queue.Run(ctx, a.Deliver) })
	// The sweep schedules the PENDING deliveries the in-memory queue does
	// not hold: those an earlier process left, or another replica made or
	// claimed and then stopped (its lease runs out). On MongoDB, where
	// other replicas write too, it runs every interval and reads, by
	// store.DueIndex, what comes due before the next one (at most
	// app.SweepLimit). On FerretDB this process is the only writer: the
	// sweep at start reads every PENDING delivery (its one scan of the
	// collection); after it, every pending delivery it makes is in the
	// queue until done, so there is nothing left to find and no periodic
	// scan. Each replica sweeping the same deliveries is harmless: the
	// claim lets one of them send.
	single := b.SingleWriter()
	b.Go(func(ctx context.Context) error {
		t := time.NewTicker(cfg.WebhookSweepInterval)
		defer t.Stop()
		for {
			horizon, limit := cfg.WebhookSweepInterval, app.SweepLimit
			if single {
				horizon, limit = -1, 0
			}
			_, err := a.SweepDeliveries(ctx, horizon, limit)
			if err != nil && ctx.Err() == nil {
				b.Log.Warn("webhook delivery sweep failed; will retry", "err", err)
			}
			if err == nil && single {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	b.FillListIndexes(notes, deliveries, hooks)
	return &Service{Base: b, sms: rec}, nil
}
