// Package suite starts the whole of certflow in one process on the embedded
// default: an embedded NATS server with JetStream, an embedded FerretDB, a
// development DNS responder, the six services and the gateway, each on its
// own loopback port and talking real gRPC. The services see only a MongoDB
// URI and a NATS URL; nothing in them knows it is embedded.
package suite

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/tally"
	application "github.com/certflow/certflow/services/application/service"
	audit "github.com/certflow/certflow/services/audit/service"
	gateway "github.com/certflow/certflow/services/gateway/service"
	issuance "github.com/certflow/certflow/services/issuance/service"
	notification "github.com/certflow/certflow/services/notification/service"
	order "github.com/certflow/certflow/services/order/service"
	verification "github.com/certflow/certflow/services/verification/service"
)

// Options configure the suite. Zero values give the default run's fixed
// ports; tests use "127.0.0.1:0" everywhere.
type Options struct {
	// DataDir holds everything that must survive a restart: JetStream,
	// the database files, the CA and the generated secrets.
	DataDir string

	NATSAddr, MongoAddr string
	// NATSURL, if set, is a NATS server or cluster to use instead of the
	// embedded one (comma-separated URLs). Its users' seeds are in
	// NATSSeedsDir (<user>.nk, made by embedded.NATSUsers); the
	// administrator's seed in NATSAdminSeed creates the stream with
	// StreamReplicas copies.
	NATSURL, NATSSeedsDir, NATSAdminSeed                       string
	StreamReplicas                                             int
	OrderAddr, ApplicationAddr, VerificationAddr, IssuanceAddr string
	// IssuanceHTTPAddr serves the AIA and CRL URLs written into
	// certificates (default 127.0.0.1:9180); their base URL follows the
	// listener.
	IssuanceHTTPAddr              string
	NotificationAddr, GatewayAddr string
	AuditAddr                     string
	// TrustedProxies is the gateway's -trusted-proxies.
	TrustedProxies string
	// MongoURI, if set, is used instead of starting FerretDB (a real
	// MongoDB for tests).
	MongoURI string

	// DevDNSAddr runs the development DNS responder there (UDP and TCP)
	// with its admin API at DevDNSAdminAddr; domain validation queries it.
	// Empty DevDNSAddr means no responder: DNSServers is used instead.
	DevDNSAddr, DevDNSAdminAddr string
	DNSServers                  string
	// DCVHTTPPort is the port HTTP proof files are fetched from.
	DCVHTTPPort int
	// DCVAllowAddresses, if set, are the only private or loopback ranges
	// domain validation may reach (tests: the one web server); otherwise
	// it reaches every private address, as the development run needs.
	DCVAllowAddresses []netip.Prefix

	// SMTPAddr sends notification mail through a server; empty logs it.
	SMTPAddr string
	// DebianWeakKeysFile and BlockedKeysFile are the issuance service's
	// lists of keys never to certify (see its -debian-weak-keys-file and
	// -blocked-keys-file); empty = none.
	DebianWeakKeysFile, BlockedKeysFile string
	// ExtraAPIKeys are more lines of the gateway's keys file (tests):
	// `sha256:<hex> <account> [role]`, see gateway.HashAPIKey.
	ExtraAPIKeys string
	// WebhookRetryInitial is the first webhook retry delay (tests shorten it).
	WebhookRetryInitial time.Duration

	// DCV retry schedule; defaults suit a person at a terminal.
	RetryInitial, RetryMax, SweepInterval time.Duration
	ChallengeLifetime                     time.Duration

	// Tally, if set, counts every service's database commands and the
	// gRPC calls it serves.
	Tally *tally.Counters

	// PKI, if set, issues the component identities instead of the one
	// kept in DataDir/pki (tests share one with their own clients).
	PKI *internalpki.Authority

	// ReminderOffsets and ReminderInterval are the issuance service's
	// -reminder-offsets and -reminder-interval (empty, zero: its defaults);
	// ReminderInterval is also how often the order service expires
	// instances. RenewAt is the issuance service's -renew-at.
	ReminderOffsets  string
	ReminderInterval time.Duration
	RenewAt          float64

	// GatewayLimits are the gateway's per-key rate and overload bound
	// (zero fields: the gateway's defaults).
	GatewayLimits gateway.Limits

	// EventChaos, if set, makes every service receive every event twice
	// and out of order (tests of idempotence).
	EventChaos *events.Chaos

	Log *slog.Logger
	Now func() time.Time
}

func (o *Options) defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.NATSAddr, "127.0.0.1:4222")
	def(&o.MongoAddr, "127.0.0.1:27018")
	def(&o.OrderAddr, fmt.Sprintf("127.0.0.1:%d", order.DefaultPort))
	def(&o.ApplicationAddr, fmt.Sprintf("127.0.0.1:%d", application.DefaultPort))
	def(&o.VerificationAddr, fmt.Sprintf("127.0.0.1:%d", verification.DefaultPort))
	def(&o.IssuanceAddr, fmt.Sprintf("127.0.0.1:%d", issuance.DefaultPort))
	def(&o.NotificationAddr, fmt.Sprintf("127.0.0.1:%d", notification.DefaultPort))
	def(&o.AuditAddr, fmt.Sprintf("127.0.0.1:%d", audit.DefaultPort))
	def(&o.IssuanceHTTPAddr, "127.0.0.1:9180")
	def(&o.GatewayAddr, gateway.DefaultAddr)
	if o.DCVHTTPPort == 0 {
		o.DCVHTTPPort = 80
	}
	if o.RetryInitial == 0 {
		o.RetryInitial = 2 * time.Second
	}
	if o.RetryMax == 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Second
	}
	if o.ChallengeLifetime == 0 {
		o.ChallengeLifetime = 7 * 24 * time.Hour
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Suite is a started suite.
type Suite struct {
	GatewayURL string
	// APIKey is the development customer key (account "dev"); ReviewerKey
	// is a key with the reviewer role (account "ca-staff"). They are read
	// from CredentialsPath; the gateway's keys file holds only their hashes.
	APIKey, ReviewerKey string
	// CredentialsPath is DataDir/dev-credentials, the development keys in
	// the clear (mode 0600), lines `<key> <account> <role>`.
	CredentialsPath string
	// NewCredentials is set when this start made the keys: the one time
	// the command shows them.
	NewCredentials    bool
	RootCAPath        string
	NATSURL, MongoURI string
	// PKIDir holds the internal PKI: ca.pem, and operator.pem with
	// operator-key.pem for grpcurl.
	PKIDir string
	// NATSSeeds holds each NATS user's nkey seed (<user>.nk), reader.nk
	// among them; NATSAdmin connects in-process as the administrator.
	NATSSeeds string
	NATSAdmin func() []natsgo.Option
	DevDNS    *devdns.Server
	// Service gRPC addresses, for gRPC clients.
	OrderAddr, ApplicationAddr, VerificationAddr, IssuanceAddr, NotificationAddr, AuditAddr string
	// IssuanceHTTPURL is the base URL of the AIA and CRL listener.
	IssuanceHTTPURL string
	// Issuance is the issuance service (its Publish mounts the CRLs).
	Issuance *issuance.Service

	runs    []func(context.Context) error
	closers []func()
	// settled wait for services' background start work (Settled).
	settled []func(context.Context) error
}

// Settled waits until every service has finished the work it does in the
// background after it starts serving (filling memory list indexes).
func (s *Suite) Settled(ctx context.Context) error {
	for _, wait := range s.settled {
		if err := wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// externalNATS uses a NATS server or cluster started elsewhere: the
// administrator makes (or updates) the stream with its replicas.
func (s *Suite) externalNATS(ctx context.Context, o Options) error {
	admin, err := natsgo.NkeyOptionFromSeed(o.NATSAdminSeed)
	if err != nil {
		return fmt.Errorf("NATS administrator seed: %w", err)
	}
	s.NATSURL = o.NATSURL
	s.NATSAdmin = func() []natsgo.Option { return []natsgo.Option{admin} }
	nc, err := natsgo.Connect(o.NATSURL, admin, natsgo.Name("certflow-suite-admin"))
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", o.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// A cluster that has just started elects its JetStream leader first.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		actx, cancel := context.WithTimeout(cctx, 5*time.Second)
		err = events.EnsureStream(actx, js, o.StreamReplicas)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if cctx.Err() != nil {
			return fmt.Errorf("NATS at %s: the stream was not made within 30s: %w", o.NATSURL, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Start starts everything; call Run to serve until the context ends.
func Start(ctx context.Context, o Options) (_ *Suite, err error) {
	o.defaults()
	if o.DataDir == "" {
		return nil, errors.New("a data folder is required")
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	s := &Suite{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	secrets := filepath.Join(o.DataDir, "secrets")
	// Two key-encryption keys: customer keys under kek, the CA's own keys
	// under ca-kek. A data folder from before ca-kek existed gets a new one
	// and the issuance service re-seals the CA keys under it on start.
	kek, err := secret(filepath.Join(secrets, "kek"), func() string {
		return base64.StdEncoding.EncodeToString(random(32))
	})
	if err != nil {
		return nil, err
	}
	caKEK, err := secret(filepath.Join(secrets, "ca-kek"), func() string {
		return base64.StdEncoding.EncodeToString(random(32))
	})
	if err != nil {
		return nil, err
	}
	webhookKEK, err := secret(filepath.Join(secrets, "webhook-kek"), func() string {
		return base64.StdEncoding.EncodeToString(random(32))
	})
	if err != nil {
		return nil, err
	}
	auditPageKey, err := secret(filepath.Join(secrets, "audit-page-key"), func() string {
		return base64.StdEncoding.EncodeToString(random(32))
	})
	if err != nil {
		return nil, err
	}
	keys, err := s.apiKeys(secrets, o.DataDir)
	if err != nil {
		return nil, err
	}

	// Component identity: the internal PKI's root (never used for
	// customer certificates) issues each component a short-lived
	// certificate; the operator's lets grpcurl in for health and
	// reflection (README, Operating).
	s.PKIDir = filepath.Join(o.DataDir, "pki")
	pki := o.PKI
	if pki == nil {
		if pki, err = internalpki.LoadOrCreate(s.PKIDir); err != nil {
			return nil, err
		}
	}
	if err := pki.WriteIdentity(s.PKIDir, callpolicy.Operator, 30*24*time.Hour); err != nil {
		return nil, fmt.Errorf("operator identity: %w", err)
	}
	// NATS users: one per service, and a read-only one for other teams.
	s.NATSSeeds = filepath.Join(secrets, "nats")
	if o.NATSSeedsDir != "" {
		s.NATSSeeds = o.NATSSeedsDir
	}
	natsUsers, err := embedded.NATSUsers(s.NATSSeeds)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	if o.NATSURL != "" {
		if err := s.externalNATS(ctx, o); err != nil {
			return nil, err
		}
	} else {
		nats, err := labelled("nats", func() (*embedded.NATS, error) {
			return embedded.StartNATS(o.NATSAddr, filepath.Join(o.DataDir, "nats"), natsUsers)
		})
		if err != nil {
			return nil, err
		}
		s.NATSAdmin = nats.AdminOptions
		s.closers = append(s.closers, nats.Close)
		s.NATSURL = nats.URL()
	}
	s.MongoURI = o.MongoURI
	var embeddedDB *embedded.Mongo
	if s.MongoURI == "" {
		db, err := labelled("database", func() (*embedded.Mongo, error) {
			return embedded.StartMongo(o.MongoAddr, filepath.Join(o.DataDir, "db"), nil)
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, db.Close)
		s.MongoURI = db.URI()
		embeddedDB = db
	}
	dnsServers := o.DNSServers
	if o.DevDNSAddr != "" {
		s.DevDNS, err = labelled("devdns", func() (*devdns.Server, error) {
			return devdns.Start(ctx, devdns.Options{Addr: o.DevDNSAddr, AdminAddr: o.DevDNSAdminAddr, DefaultA: "127.0.0.1", Logger: o.Log})
		})
		if err != nil {
			return nil, fmt.Errorf("development DNS: %w", err)
		}
		s.closers = append(s.closers, func() { _ = s.DevDNS.Close() })
		dnsServers = s.DevDNS.Addr()
	}
	if dnsServers == "" {
		return nil, errors.New("no DNS for domain validation: set DevDNSAddr or DNSServers")
	}

	base := func(name, addr string) service.Config {
		return service.Config{Name: name, GRPCAddr: addr, MongoURI: s.MongoURI, NATSURL: s.NATSURL, Log: o.Log,
			PKI: pki, NATSSeedFile: embedded.NATSSeedFile(s.NATSSeeds, name), Tally: o.Tally, EventChaos: o.EventChaos}
	}
	ord, err := order.New(ctx, order.Config{Config: base("order", o.OrderAddr), Now: o.Now, ExpiryInterval: o.ReminderInterval})
	if err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	s.add("order", ord.Run)
	not, err := notification.New(ctx, notification.Config{
		Config: base("notification", o.NotificationAddr), SMTPAddr: o.SMTPAddr, Now: o.Now,
		// The development run and tests deliver webhooks to this machine.
		WebhookAllowPrivate: true, WebhookRetryInitial: o.WebhookRetryInitial, WebhookKEK: webhookKEK,
	})
	if err != nil {
		return nil, fmt.Errorf("notification: %w", err)
	}
	s.add("notification", not.Run)
	s.settled = append(s.settled, not.Settled)
	aud, err := audit.New(ctx, audit.Config{Config: base("audit", o.AuditAddr), PageKey: auditPageKey})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	s.add("audit", aud.Run)
	s.settled = append(s.settled, aud.Settled)
	s.AuditAddr = aud.GRPC.Addr()
	// Verification asks the application service about documents, and the
	// application service calls verification: the application's listener
	// opens first so each learns the other's address.
	appLis, err := net.Listen("tcp", o.ApplicationAddr)
	if err != nil {
		return nil, fmt.Errorf("application: listen on %s: %w", o.ApplicationAddr, err)
	}
	s.closers = append(s.closers, func() { _ = appLis.Close() })
	vcfg := verification.Config{
		Config: base("verification", o.VerificationAddr), DNSServers: dnsServers, HTTPPort: o.DCVHTTPPort,
		ApplicationAddr: appLis.Addr().String(),
		// EMAIL challenges' codes are mailed through the notification
		// service, in a call, never through the stream.
		NotificationAddr: not.GRPC.Addr(),
		// The development run validates names that resolve to this machine.
		AllowPrivateAddresses: true,
		ChallengeLifetime:     o.ChallengeLifetime, RetryInitial: o.RetryInitial, RetryMax: o.RetryMax, SweepInterval: o.SweepInterval, Now: o.Now,
	}
	if len(o.DCVAllowAddresses) > 0 {
		vcfg.AllowPrivateAddresses, vcfg.AllowAddresses = false, o.DCVAllowAddresses
	}
	// The remote perspectives (BR 3.2.2.9) the quorum needs, on loopback
	// ports with the same resolvers, each in its own region and RIR.
	perspectives, err := verification.StartLocal(ctx, &vcfg)
	if err != nil {
		return nil, fmt.Errorf("verification perspectives: %w", err)
	}
	for _, p := range perspectives {
		s.add("perspective", p.Run)
	}
	ver, err := verification.New(ctx, vcfg)
	if err != nil {
		return nil, fmt.Errorf("verification: %w", err)
	}
	s.add("verification", ver.Run)
	caDir := filepath.Join(o.DataDir, "ca")
	// The CA asks verification before every signature.
	iss, err := issuance.New(ctx, issuance.Config{Config: base("issuance", o.IssuanceAddr), CADir: caDir, KEK: kek, CAKEK: caKEK, VerificationAddr: ver.GRPC.Addr(),
		DebianWeakKeysFile: o.DebianWeakKeysFile, BlockedKeysFile: o.BlockedKeysFile, HTTPAddr: o.IssuanceHTTPAddr, Now: o.Now,
		ReminderOffsets: o.ReminderOffsets, ReminderInterval: o.ReminderInterval, RenewAt: o.RenewAt})
	if err != nil {
		return nil, fmt.Errorf("issuance: %w", err)
	}
	s.add("issuance", iss.Run)
	s.RootCAPath = filepath.Join(caDir, "root.pem")
	s.IssuanceHTTPURL = iss.PublicBaseURL()
	s.Issuance = iss
	s.OrderAddr, s.VerificationAddr, s.IssuanceAddr, s.NotificationAddr = ord.GRPC.Addr(), ver.GRPC.Addr(), iss.GRPC.Addr(), not.GRPC.Addr()
	acfg := base("application", o.ApplicationAddr)
	acfg.GRPCListener = appLis
	app, err := application.New(ctx, application.Config{
		Config: acfg, OrderAddr: s.OrderAddr, VerificationAddr: s.VerificationAddr, IssuanceAddr: s.IssuanceAddr,
		RetryDelay: 200 * time.Millisecond, Now: o.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("application: %w", err)
	}
	s.add("application", app.Run)
	s.settled = append(s.settled, app.Settled)
	s.ApplicationAddr = app.GRPC.Addr()
	gw, err := gateway.New(ctx, gateway.Config{
		Addr: o.GatewayAddr, OrderAddr: s.OrderAddr, ApplicationAddr: s.ApplicationAddr, VerificationAddr: s.VerificationAddr,
		IssuanceAddr: s.IssuanceAddr, NotificationAddr: s.NotificationAddr, AuditAddr: s.AuditAddr, TrustedProxies: o.TrustedProxies, APIKeys: keys + "\n" + o.ExtraAPIKeys, Log: o.Log, PKI: pki, Limits: o.GatewayLimits,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.add("gateway", gw.Run)
	s.GatewayURL = gw.URL()
	if embeddedDB != nil {
		// The services have made their collections (EnsureIndexes): give
		// them the _id index now rather than at the server's next pass.
		if err := embeddedDB.IndexIDs(ctx); err != nil {
			o.Log.Warn("index _id of the embedded database; the server retries", "err", err)
		}
	}
	return s, nil
}

// add runs a component with the run. Its goroutines carry the pprof label
// component=<name>, so that a CPU profile of the suite splits by component
// (certflow-load -budget).
func (s *Suite) add(name string, run func(context.Context) error) {
	s.runs = append(s.runs, func(ctx context.Context) (err error) {
		pprof.Do(ctx, pprof.Labels("component", name), func(ctx context.Context) { err = run(ctx) })
		return err
	})
}

// labelled runs start with the pprof label component=name, so that the
// goroutines it starts (an embedded server's) carry it.
func labelled[T any](name string, start func() (T, error)) (v T, err error) {
	pprof.Do(context.Background(), pprof.Labels("component", name), func(context.Context) { v, err = start() })
	return v, err
}

// Run serves until ctx is done, then stops the services and the embedded
// servers, in that order.
func (s *Suite) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range s.runs {
		g.Go(func() error { return run(gctx) })
	}
	err := g.Wait()
	s.close()
	return err
}

func (s *Suite) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// apiKeys returns the gateway's keys file, secrets/api-keys, which holds
// only hashes. On first start it makes a customer and a reviewer key and
// writes them in the clear to dataDir/dev-credentials (0600) for the
// developer, and their hashes to the keys file. A keys file written by an
// earlier version, with the keys themselves, is rewritten as hashes and its
// keys moved to dev-credentials.
func (s *Suite) apiKeys(secrets, dataDir string) (string, error) {
	s.CredentialsPath = filepath.Join(dataDir, "dev-credentials")
	path := filepath.Join(secrets, "api-keys")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		creds := fmt.Sprintf("%s dev customer\n%s ca-staff reviewer\n",
			"cf_dev_"+hex.EncodeToString(random(16)), "cf_rev_"+hex.EncodeToString(random(16)))
		if err := writeSecret(s.CredentialsPath, creds); err != nil {
			return "", err
		}
		if err := writeSecret(path, hashLines(creds)); err != nil {
			return "", err
		}
		s.NewCredentials = true
	case err != nil:
		return "", err
	case hasPlainKeys(string(b)):
		// Keys in the clear from an earlier version: keep them for the
		// developer, hash them for the gateway.
		if _, err := os.Stat(s.CredentialsPath); errors.Is(err, os.ErrNotExist) {
			if err := writeSecret(s.CredentialsPath, string(b)); err != nil {
				return "", err
			}
		}
		if err := writeSecret(path, hashLines(string(b))); err != nil {
			return "", err
		}
	}
	if b, err = os.ReadFile(path); err != nil {
		return "", err
	}
	creds, err := os.ReadFile(s.CredentialsPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	for _, line := range strings.Split(string(creds), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "customer" && s.APIKey == "" {
			s.APIKey = f[0]
		}
		if len(f) == 3 && f[2] == "reviewer" && s.ReviewerKey == "" {
			s.ReviewerKey = f[0]
		}
	}
	return string(b), nil
}

// hashLines turns key lines `<key> <account> [role]` into keys-file lines
// `sha256:<hex> <account> [role]`; lines already hashed, comments and blank
// lines stay as they are.
func hashLines(text string) string {
	var b strings.Builder
	b.WriteString("# sha256:<hex of SHA-256 of the key> <account> <role>; the keys are in ../dev-credentials (development only)\n")
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
			continue
		case !strings.HasPrefix(f[0], "sha256:"):
			f[0] = gateway.HashAPIKey(f[0])
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	return b.String()
}

// hasPlainKeys reports whether a keys file has a line with a key rather
// than its hash.
func hasPlainKeys(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") && !strings.HasPrefix(f[0], "sha256:") {
			return true
		}
	}
	return false
}

// writeSecret writes a file readable only by the user, through a temporary
// file and a rename.
func writeSecret(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// secret reads a file, or creates it (0600) with make's content.
func secret(path string, make func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return string(b), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	v := make()
	if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return b
}
