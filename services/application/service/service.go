// Package service assembles the application service: the store, clients of
// the order, verification and issuance services, the event consumers and
// the gRPC API.
package service

import (
	"context"
	"os"
	"strings"
	"time"

	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/application/internal/app"
	"github.com/certflow/certflow/services/application/internal/clients"
	"github.com/certflow/certflow/services/application/internal/domain"
	"github.com/certflow/certflow/services/application/internal/grpcapi"
)

// DefaultPort is the application service's gRPC port in the default run.
const DefaultPort = 9102

// Config configures the application service.
type Config struct {
	service.Config
	OrderAddr        string
	VerificationAddr string
	IssuanceAddr     string
	// RetryDelay is how long a failed event waits before redelivery.
	RetryDelay time.Duration
	// ReviewWords send names holding them to manual review.
	ReviewWords []string
	Now         func() time.Time
}

// Flags registers the application settings.
func (c *Config) Flags(s *config.Set) {
	c.Config.Flags(s, "application", DefaultPort)
	s.String(&c.OrderAddr, "order-addr", "CERTFLOW_ORDER_ADDR", "127.0.0.1:9101", "order service gRPC address")
	s.String(&c.VerificationAddr, "verification-addr", "CERTFLOW_VERIFICATION_ADDR", "127.0.0.1:9103", "verification service gRPC address")
	s.String(&c.IssuanceAddr, "issuance-addr", "CERTFLOW_ISSUANCE_ADDR", "127.0.0.1:9104", "issuance service gRPC address")
	s.Duration(&c.RetryDelay, "event-retry-delay", "CERTFLOW_EVENT_RETRY_DELAY", time.Second, "delay before a failed event is retried")
	s.FS.Func("review-words", "comma-separated words that send a name to manual review (env CERTFLOW_REVIEW_WORDS; default bank,pay,live)", func(v string) error {
		c.ReviewWords = splitWords(v)
		return nil
	})
	if v, ok := os.LookupEnv("CERTFLOW_REVIEW_WORDS"); ok {
		c.ReviewWords = splitWords(v)
	}
}

func splitWords(v string) []string {
	var out []string
	for _, w := range strings.Split(v, ",") {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// Service is a running application service.
type Service struct{ *service.Base }

// New connects and listens; call Run to serve and consume events.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Name = "application"
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.ReviewWords == nil {
		cfg.ReviewWords = domain.DefaultReviewWords
	}
	b, err := service.Start(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	oc, err := b.Dial(callpolicy.Order, cfg.OrderAddr)
	if err != nil {
		return nil, err
	}
	vc, err := b.Dial(callpolicy.Verification, cfg.VerificationAddr)
	if err != nil {
		return nil, err
	}
	ic, err := b.Dial(callpolicy.Issuance, cfg.IssuanceAddr)
	if err != nil {
		return nil, err
	}
	apps := docstore.New[domain.Application](b.DB.Collection("applications"), "application", append(b.OutboxStoreOptions(cfg.Now), docstore.ReadCache(service.ReadCacheBytes), docstore.MemoryListIndex("doc.state"))...)
	if err := apps.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	templates := docstore.New[domain.Template](b.DB.Collection("templates"), "template", append(b.StoreOptions(cfg.Now), docstore.MemoryListIndex())...)
	if err := templates.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	pages, err := b.PageKeyset(ctx)
	if err != nil {
		return nil, err
	}
	a := app.New(app.Deps{
		Applications: apps,
		Templates:    templates,
		Orders:       clients.Orders{C: orderv1.NewOrderServiceClient(oc)},
		Verifier:     clients.Verifier{C: verificationv1.NewVerificationServiceClient(vc)},
		Reviews:      clients.Reviews{C: verificationv1.NewReviewServiceClient(vc)},
		Issuer:       clients.Issuer{C: issuancev1.NewIssuanceServiceClient(ic)},
		ReviewWords:  cfg.ReviewWords,
		Now:          cfg.Now,
		Log:          b.Log,
	})
	b.GRPC.Register(&applicationv1.ApplicationService_ServiceDesc, &grpcapi.Server{App: a, Pages: pages})
	// Two consumers so that a slow issuance (an RSA-4096 key) does not hold
	// up domain events of other applications.
	for _, c := range []struct {
		durable  string
		subjects []string
	}{
		{"application", app.ExternalSubjects},
		{"application-saga", app.SagaSubjects},
	} {
		b.Go(func(ctx context.Context) error {
			// A saga step is retried until it succeeds or decides to fail
			// the application: dropping it would strand the application.
			return b.NATS.Consume(ctx, events.ConsumeOptions{Durable: c.durable, Subjects: c.subjects, RetryDelay: cfg.RetryDelay, MaxDeliver: -1, Log: b.Log}, a.HandleEvent)
		})
	}
	b.FillListIndexes(templates)
	return &Service{b}, nil
}
