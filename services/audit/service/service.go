// Package service assembles the audit service: it consumes the audit
// records of customer and reviewer actions (certflow.audit.>) with a
// durable consumer, stores each once, and serves the trail over gRPC.
package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"time"

	auditv1 "github.com/certflow/certflow/gen/go/certflow/audit/v1"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/sealbox"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/audit/internal/app"
	"github.com/certflow/certflow/services/audit/internal/grpcapi"
	"github.com/certflow/certflow/services/audit/internal/store"
)

// DefaultPort is the audit service's gRPC port in the default run.
const DefaultPort = 9106

// Durable is the name of the service's JetStream consumer.
const Durable = "audit"

// Config configures the audit service.
type Config struct {
	service.Config
	// PageKeyFile holds a base64 32-byte secret that page tokens are
	// authenticated under, so that they survive restarts and replicas
	// accept each other's; PageKey, if set, is the secret itself
	// (environment CERTFLOW_AUDIT_PAGE_KEY, or a program embedding the
	// service). Never a command-line argument.
	PageKeyFile, PageKey string
	// RetryDelay is how long a failed event waits before redelivery
	// (default 500ms).
	RetryDelay time.Duration
}

// Flags registers the common settings and the page-token key on s.
func (c *Config) Flags(s *config.Set, name string, port int) {
	c.Config.Flags(s, name, port)
	s.String(&c.PageKeyFile, "page-key-file", "CERTFLOW_AUDIT_PAGE_KEY_FILE", "", "file with the base64 32-byte secret page tokens are signed with (or the secret itself in env CERTFLOW_AUDIT_PAGE_KEY)")
	s.SecretEnv(&c.PageKey, "CERTFLOW_AUDIT_PAGE_KEY")
}

// Service is a running audit service.
type Service struct{ *service.Base }

// New connects and listens; call Run to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Name = "audit"
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 500 * time.Millisecond
	}
	secret, err := sealbox.LoadKEK("audit page-token key", cfg.PageKey, cfg.PageKeyFile, "-page-key-file or CERTFLOW_AUDIT_PAGE_KEY")
	if err != nil {
		return nil, err
	}
	b, err := service.Start(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	trail := store.New(b.DB.Collection("audit_events"))
	if err := trail.EnsureIndexes(ctx); err != nil {
		b.NATS.Close()
		_ = b.Mongo.Disconnect(context.Background())
		return nil, err
	}
	if b.SingleWriter() {
		trail.KeepMemoryIndex()
		b.FillListIndexes(trail)
	}
	a := app.New(trail)
	b.GRPC.Register(&auditv1.AuditService_ServiceDesc, &grpcapi.Server{App: a, Pages: page.NewKeyset(pageKey(secret))})
	b.Go(func(ctx context.Context) error {
		return b.NATS.Consume(ctx, events.ConsumeOptions{
			Durable:    Durable,
			Subjects:   []string{events.AuditSubjects},
			RetryDelay: cfg.RetryDelay,
			Log:        b.Log,
		}, a.Handle)
	})
	return &Service{Base: b}, nil
}

// pageKey derives the page-token key from the configured secret, so the
// secret itself signs nothing.
func pageKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("certflow audit page tokens v1"))
	return m.Sum(nil)
}
