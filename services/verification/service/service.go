// Package service assembles the verification service: the challenge store,
// the DNS and HTTP provers, the check worker and the gRPC API.
package service

import (
	"context"
	"fmt"
	applicationv1 "github.com/certflow/certflow/gen/go/certflow/application/v1"
	"github.com/certflow/certflow/pkg/apierr"
	"net/netip"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/verification/internal/app"
	"github.com/certflow/certflow/services/verification/internal/dcv"
	"github.com/certflow/certflow/services/verification/internal/domain"
	"github.com/certflow/certflow/services/verification/internal/grpcapi"
)

// DefaultPort is the verification service's gRPC port in the default run.
const DefaultPort = 9103

// Config configures the verification service.
type Config struct {
	service.Config
	// DNSServers are the resolvers DCV queries, comma-separated host:port.
	DNSServers string
	// HTTPPort is where HTTP proof files are fetched (80 in production).
	HTTPPort int
	// AllowPrivateAddresses lets DCV reach loopback and private addresses:
	// for tests and the local default run only.
	AllowPrivateAddresses bool
	// AllowAddresses lets DCV reach exactly these ranges (tests: one
	// loopback web server, with every other private address refused).
	AllowAddresses    []netip.Prefix
	ChallengeLifetime time.Duration
	RetryInitial      time.Duration
	RetryMax          time.Duration
	// SweepInterval is how often due challenges are looked for.
	SweepInterval time.Duration
	// CNAMEZone is the CA's zone DNS_CNAME targets are made under; default
	// "dcv.certflow.test".
	CNAMEZone string
	// CAAIdentities are the issuer domain names CAA issue records must name
	// for this CA, comma-separated; default "certflow.test".
	CAAIdentities string
	// CAAAccountURIBase is the prefix of account URIs in CAA accounturi
	// parameters (RFC 8657): <base>/<account id>; default
	// "https://certflow.test/accounts".
	CAAAccountURIBase string
	// NotificationAddr is the notification service, which mails EMAIL
	// challenges' codes (SendDomainValidationEmail).
	NotificationAddr string
	// ApplicationAddr is the application service, asked whether an
	// application exists and is open before a document is stored for it.
	ApplicationAddr string
	// Role is RolePrimary (the service) or RolePerspective (a remote
	// perspective: NewPerspective, in Region and RIR).
	Role        string
	Region, RIR string
	// Perspectives are the remote perspectives the primary asks (BR
	// 3.2.2.9): comma-separated region=host:port.
	Perspectives string
	// PerspectiveTimeout bounds each perspective's answer (default 15s).
	PerspectiveTimeout time.Duration
	Now                func() time.Time
}

// Flags registers the verification settings.
func (c *Config) Flags(s *config.Set) {
	c.Config.Flags(s, "verification", DefaultPort)
	s.String(&c.DNSServers, "dns-servers", "CERTFLOW_DNS_SERVERS", "8.8.8.8:53,1.1.1.1:53", "DNS resolvers for domain validation, comma-separated host:port")
	s.Int(&c.HTTPPort, "http-port", "CERTFLOW_DCV_HTTP_PORT", 80, "port HTTP proof files are fetched from")
	s.Bool(&c.AllowPrivateAddresses, "allow-private-addresses", "CERTFLOW_DCV_ALLOW_PRIVATE", false, "let validation reach loopback and private addresses (development only)")
	s.Duration(&c.ChallengeLifetime, "challenge-lifetime", "CERTFLOW_CHALLENGE_LIFETIME", 7*24*time.Hour, "how long a challenge may be satisfied (at most 30 days)")
	s.Duration(&c.RetryInitial, "retry-initial", "CERTFLOW_DCV_RETRY_INITIAL", 10*time.Second, "first retry delay of a pending challenge; doubles each time")
	s.Duration(&c.RetryMax, "retry-max", "CERTFLOW_DCV_RETRY_MAX", 10*time.Minute, "longest retry delay")
	s.Duration(&c.SweepInterval, "sweep-interval", "CERTFLOW_DCV_SWEEP_INTERVAL", time.Second, "how often due challenges are checked")
	s.String(&c.CNAMEZone, "cname-zone", "CERTFLOW_DCV_CNAME_ZONE", defaultCNAMEZone, "zone under which DNS_CNAME challenge targets are made")
	s.String(&c.NotificationAddr, "notification-addr", "CERTFLOW_NOTIFICATION_ADDR", "127.0.0.1:9105", "notification service gRPC address, which mails email validation codes")
	s.String(&c.ApplicationAddr, "application-addr", "CERTFLOW_APPLICATION_ADDR", "127.0.0.1:9102", "application service gRPC address, asked whether an application takes documents")
	s.String(&c.Role, "role", "CERTFLOW_VERIFICATION_ROLE", RolePrimary, "primary (the verification service) or perspective (a remote perspective for multi-perspective corroboration, BR 3.2.2.9)")
	s.String(&c.Region, "region", "CERTFLOW_PERSPECTIVE_REGION", "", "perspective role: this perspective's region, which names it, e.g. us-east")
	s.String(&c.RIR, "rir", "CERTFLOW_PERSPECTIVE_RIR", "", "perspective role: the Regional Internet Registry of its region: ARIN, RIPE, APNIC, LACNIC or AFRINIC")
	s.String(&c.Perspectives, "perspectives", "CERTFLOW_PERSPECTIVES", "", "primary role: remote perspectives to corroborate every validation and CAA check, comma-separated region=host:port")
	s.Duration(&c.PerspectiveTimeout, "perspective-timeout", "CERTFLOW_PERSPECTIVE_TIMEOUT", 15*time.Second, "primary role: how long a remote perspective may take to answer (one that does not counts as disagreeing)")
	s.String(&c.CAAAccountURIBase, "caa-account-uri-base", "CERTFLOW_CAA_ACCOUNT_URI_BASE", defaultCAAAccountURIBase, "prefix of the account URIs CAA accounturi parameters name: <base>/<account id> (RFC 8657)")
	s.String(&c.CAAIdentities, "caa-identities", "CERTFLOW_CAA_IDENTITIES", defaultCAAIdentities, "issuer domain names that CAA issue records must name for this CA, comma-separated")
}

// Service is a running verification service.
type Service struct{ *service.Base }

// New connects and listens; call Run to serve and check.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Name = "verification"
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ChallengeLifetime <= 0 || cfg.RetryInitial <= 0 || cfg.RetryMax < cfg.RetryInitial || cfg.SweepInterval <= 0 {
		return nil, fmt.Errorf("challenge lifetime, retry and sweep intervals must be positive and retry-max >= retry-initial")
	}
	if cfg.Role != "" && cfg.Role != RolePrimary {
		return nil, fmt.Errorf("role %q: New starts the primary; a perspective starts with NewPerspective", cfg.Role)
	}
	resolver, err := newResolver(cfg)
	if err != nil {
		return nil, err
	}
	dcvCfg, err := domainValidation(cfg, resolver)
	if err != nil {
		return nil, err
	}
	prover := newProver(cfg, resolver)
	if _, err := checkPerspectives(cfg); err != nil {
		return nil, err
	}
	if cfg.NotificationAddr == "" {
		return nil, fmt.Errorf("no notification service address: email validation codes are mailed through it (-notification-addr)")
	}
	if cfg.ApplicationAddr == "" {
		return nil, fmt.Errorf("no application service address: documents are stored only for an existing, open application (-application-addr)")
	}
	b, err := service.Start(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	// The list methods' page-token key is kept in the service's own
	// database, as order's, application's and notification's are.
	pages, err := b.PageKeyset(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := b.Dial(callpolicy.Notification, cfg.NotificationAddr)
	if err != nil {
		return nil, err
	}
	ac, err := b.Dial(callpolicy.Application, cfg.ApplicationAddr)
	if err != nil {
		return nil, err
	}
	corr, err := corroborator(cfg, func(peer, addr string) (verificationv1.PerspectiveServiceClient, error) {
		cc, err := b.Dial(peer, addr)
		if err != nil {
			return nil, err
		}
		return verificationv1.NewPerspectiveServiceClient(cc), nil
	})
	if err != nil {
		return nil, err
	}
	// The account's challenge list filters on state alone (an
	// application's go through its index record). A challenge is read by
	// _id on every check, sweep and issuance authorization: cached.
	store := docstore.New[domain.Challenge](b.DB.Collection("challenges"), "challenge",
		append(b.OutboxStoreOptions(cfg.Now), docstore.ReadCache(service.ReadCacheBytes), docstore.MemoryListIndex("doc.state"))...)
	// The sweep finds due challenges by state and next check time (on
	// MongoDB); an application's challenges are found through its index
	// record (app/index.go), by _id.
	if err := store.EnsureIndexes(ctx,
		mongo.IndexModel{Keys: bson.D{{Key: "doc.state", Value: 1}, {Key: "doc.nextchecktime", Value: 1}}},
	); err != nil {
		return nil, err
	}
	indexes := challengeIndexStore(b, cfg.Now)
	if n, err := app.BuildChallengeIndexes(ctx, store, indexes); err != nil {
		return nil, err
	} else if n > 0 {
		b.Log.Info("indexed the challenges of applications stored before challenge indexes", "applications", n)
	}
	// The sweep's due challenges: on MongoDB, which several replicas may
	// write, by the index above; on FerretDB, which this process alone
	// writes and which would scan the collection for the query every
	// sweep, from a queue of the pending challenges kept in memory
	// (loaded by one scan now, before anything is served).
	var challenges app.Challenges = store
	var due app.DueChallenges = app.IndexedDue{Store: store}
	if b.SingleWriter() {
		q := app.NewQueuedChallenges(store)
		if err := q.Load(ctx); err != nil {
			return nil, err
		}
		b.Log.Info("due challenges kept in memory (single writer)", "pending", q.Len())
		challenges, due = q, q
	}
	a := app.New(challenges, indexes, due, validationStore(b, cfg.Now), prover, corr, mailer{notificationv1.NewNotificationServiceClient(nc)}, dcvCfg.caa, domain.Policy{
		Lifetime: cfg.ChallengeLifetime, RetryInitial: cfg.RetryInitial, RetryMax: cfg.RetryMax, HTTPPort: cfg.HTTPPort,
		CNAMEZone: dcvCfg.cnameZone,
	}, cfg.Now, b.Log)
	documents, reviews, err := startOrgValidation(ctx, b, applications{applicationv1.NewApplicationServiceClient(ac)}, pages, cfg.Now)
	if err != nil {
		return nil, err
	}
	b.GRPC.Register(&verificationv1.VerificationService_ServiceDesc, &grpcapi.Server{App: a, CAA: dcvCfg.caa, Documents: documents, Organizations: reviews, Pages: pages})
	b.Go(func(ctx context.Context) error { return a.RunWorker(ctx, cfg.SweepInterval, 8) })
	return &Service{b}, nil
}

// prover dispatches a challenge to the checker of its method.
type prover struct {
	dns  dcv.DNSChecker
	http dcv.HTTPChecker
}

func (p prover) Prove(ctx context.Context, c *domain.Challenge) error {
	switch c.Method {
	case domain.DNSTXT:
		return p.dns.CheckTXT(ctx, c.RecordName, c.Token)
	case domain.DNSCNAME:
		return p.dns.CheckCNAME(ctx, c.RecordName, c.CNAMETarget)
	case domain.HTTPFile:
		return p.http.CheckFile(ctx, c.Domain, c.FilePath, c.Token)
	}
	return fmt.Errorf("unknown method %q", c.Method)
}

// mailer hands EMAIL codes to the notification service, acting for the
// account as the system: the call is the only way the code leaves this
// service.
// applications asks the application service, as the caller's account,
// whether an application takes documents: one that does not exist there is
// NotFound (the service's own answer), a finished one is refused.
type applications struct {
	client applicationv1.ApplicationServiceClient
}

func (a applications) AcceptsDocuments(ctx context.Context, account, application string) error {
	ctx = auth.With(ctx, auth.Principal{Account: account, Role: auth.System})
	got, err := a.client.GetApplication(ctx, &applicationv1.GetApplicationRequest{Name: application})
	if err != nil {
		return err
	}
	switch st := got.GetState(); st {
	case applicationv1.Application_ISSUED, applicationv1.Application_WITHDRAWN:
		return apierr.New(apierr.FailedPrecondition, "APPLICATION_CLOSED",
			"%s is %s: documents are added to an open application; apply again for a new certificate", application, st)
	}
	return nil
}

func (a applications) Exists(ctx context.Context, account, application string) error {
	ctx = auth.With(ctx, auth.Principal{Account: account, Role: auth.System})
	_, err := a.client.GetApplication(ctx, &applicationv1.GetApplicationRequest{Name: application})
	return err
}

type mailer struct {
	client notificationv1.NotificationServiceClient
}

func (m mailer) SendDomainValidationEmail(ctx context.Context, account string, e app.ValidationEmail) error {
	ctx = auth.With(ctx, auth.Principal{Account: account, Role: auth.System})
	_, err := m.client.SendDomainValidationEmail(ctx, &notificationv1.SendDomainValidationEmailRequest{
		RequestId: e.RequestID, Challenge: e.Challenge, Application: e.Application, Domain: e.Domain,
		Recipient: e.Recipient, Code: e.Code, ExpireTime: timestamppb.New(e.ExpireTime),
	})
	return err
}
