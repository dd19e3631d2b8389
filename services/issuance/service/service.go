// Package service assembles the issuance service: the CA from its folder,
// the key sealer, the certificate store, the client of the verification
// service (asked before each signature) and the gRPC API.
package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/duequeue"
	"github.com/certflow/certflow/pkg/goodkey"
	"github.com/certflow/certflow/pkg/page"
	"github.com/certflow/certflow/pkg/sealbox"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/blockedkeys"
	"github.com/certflow/certflow/services/issuance/internal/ca"
	"github.com/certflow/certflow/services/issuance/internal/crl"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/grpcapi"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
	"github.com/certflow/certflow/services/issuance/internal/publish"
	"github.com/certflow/certflow/services/issuance/internal/verifier"
)

// DefaultPort is the issuance service's gRPC port in the default run.
const DefaultPort = 9104

// Config configures the issuance service.
//
// Two key-encryption keys (KEKs) seal private keys at rest: the CA KEK seals
// the CA's own keys (root and intermediate), the customer KEK the keys the
// service makes for customers, so that neither opens the other's keys. Each
// is 32 random bytes in base64, read from a file or from the environment,
// never from a command-line argument.
type Config struct {
	service.Config
	// CADir holds the CA certificates and sealed keys; made on first start.
	CADir string
	// KEKFile holds the customer KEK; KEK, if set, is the key itself
	// (environment CERTFLOW_KEK, or set by a program embedding the service).
	KEKFile string
	KEK     string
	// CAKEKFile holds the CA KEK; CAKEK, if set, is the key itself
	// (environment CERTFLOW_CA_KEK). It must differ from the customer KEK.
	//
	// A CA folder sealed by an earlier version, under the one KEK it had,
	// is migrated on start: keys that open only under the customer KEK are
	// re-sealed under the CA KEK, once.
	CAKEKFile string
	CAKEK     string
	// Validity of issued certificates; 0 = one day under the BR maximum.
	Validity time.Duration
	// VerificationAddr is the verification service, asked immediately
	// before each signature whether the names are validated and CAA permits.
	VerificationAddr string
	// HTTPAddr is where the CA certificates (AIA) and CRLs are served over
	// plain HTTP (internal/publish); PublicBaseURL is how relying parties
	// reach it, written into every certificate. An empty PublicBaseURL, or
	// one with port 0, follows the listener's actual address (tests).
	HTTPAddr      string
	PublicBaseURL string
	// DebianWeakKeysFile is a Debian openssl-blacklist file (truncated
	// SHA-1s of "Modulus=..." lines; see goodkey.DebianWeakKeys) of keys
	// never to certify; empty = no Debian list.
	DebianWeakKeysFile string
	// BlockedKeysFile lists keys never to certify, one hex SHA-256 of the
	// SubjectPublicKeyInfo a line (see goodkey.LoadSet); empty = none.
	BlockedKeysFile string
	// CRLCheckInterval is how often the CRLs are checked for new
	// revocations (default 30s, so a revocation is on the CRL within a
	// minute); CRLRefresh how old one may get before it is signed again
	// anyway (default a day; nextUpdate is 7 days on).
	CRLCheckInterval time.Duration
	CRLRefresh       time.Duration
	// ReminderOffsets are when expiry reminders go out, before notAfter:
	// durations joined by commas ("" = DefaultReminderOffsets, "none" =
	// no reminders). ReminderInterval is how often due reminders are
	// looked for (default a minute).
	ReminderOffsets  string
	ReminderInterval time.Duration
	// RenewAt is the fraction of a certificate's lifetime after which its
	// renewal is asked for (certflow.certificate.renewal_due); 0 means
	// domain.DefaultRenewAt, a negative value no automatic renewal.
	RenewAt float64
	Now     func() time.Time
}

// DefaultReminderOffsets are 30, 7 and 1 days before notAfter.
const DefaultReminderOffsets = "720h,168h,24h"

// parseOffsets reads -reminder-offsets.
func parseOffsets(s string) ([]time.Duration, error) {
	switch strings.TrimSpace(s) {
	case "":
		s = DefaultReminderOffsets
	case "none":
		return nil, nil
	}
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("-reminder-offsets %q: %q is not a positive duration such as 168h (or give none)", s, part)
		}
		if slices.Contains(out, d) {
			return nil, fmt.Errorf("-reminder-offsets %q: %s appears twice", s, part)
		}
		out = append(out, d)
	}
	return out, nil
}

// Flags registers the issuance settings. The KEKs themselves come only from
// the environment (CERTFLOW_KEK, CERTFLOW_CA_KEK) or from files.
func (c *Config) Flags(s *config.Set) {
	c.Config.Flags(s, "issuance", DefaultPort)
	s.String(&c.CADir, "ca-dir", "CERTFLOW_CA_DIR", "./var/ca", "folder of the CA certificates and sealed keys (created on first start)")
	s.String(&c.KEKFile, "kek-file", "CERTFLOW_KEK_FILE", "", "file with the base64 32-byte key-encryption key of customer private keys (or the key itself in env CERTFLOW_KEK)")
	s.String(&c.CAKEKFile, "ca-kek-file", "CERTFLOW_CA_KEK_FILE", "", "file with the base64 32-byte key-encryption key of the CA's own keys, not the customer one (or the key itself in env CERTFLOW_CA_KEK)")
	s.SecretEnv(&c.KEK, "CERTFLOW_KEK")
	s.SecretEnv(&c.CAKEK, "CERTFLOW_CA_KEK")
	s.String(&c.VerificationAddr, "verification-addr", "CERTFLOW_VERIFICATION_ADDR", "127.0.0.1:9103", "verification service gRPC address (asked before each signature)")
	s.String(&c.HTTPAddr, "http-addr", "CERTFLOW_ISSUANCE_HTTP_ADDR", "127.0.0.1:9180", "plain-HTTP address serving the CA certificates (AIA) and CRLs")
	s.String(&c.DebianWeakKeysFile, "debian-weak-keys-file", "CERTFLOW_DEBIAN_WEAK_KEYS_FILE", "", "Debian openssl-blacklist file of weak RSA keys to refuse (the last 20 hex digits of the SHA-1 of \"Modulus=<HEX>\\n\", one a line); empty = none")
	s.String(&c.BlockedKeysFile, "blocked-keys-file", "CERTFLOW_BLOCKED_KEYS_FILE", "", "file of keys to refuse as compromised: the hex SHA-256 of each DER SubjectPublicKeyInfo, one a line; empty = none")
	s.Duration(&c.CRLCheckInterval, "crl-check-interval", "CERTFLOW_CRL_CHECK_INTERVAL", crl.DefaultCheckInterval, "how often the CRLs are checked for new revocations (at most a minute)")
	s.Duration(&c.CRLRefresh, "crl-refresh", "CERTFLOW_CRL_REFRESH", crl.DefaultRefresh, "how old a CRL may get before it is signed again though nothing changed (below its 7-day nextUpdate)")
	s.String(&c.PublicBaseURL, "public-base-url", "CERTFLOW_ISSUANCE_PUBLIC_BASE_URL", "http://127.0.0.1:9180", "base URL of -http-addr as relying parties reach it, written into certificates (AIA caIssuers, CRL distribution point)")
	s.String(&c.ReminderOffsets, "reminder-offsets", "CERTFLOW_REMINDER_OFFSETS", DefaultReminderOffsets, "expiry reminders (email, SMS, webhook) this long before notAfter, joined by commas; none = no reminders")
	s.Duration(&c.ReminderInterval, "reminder-interval", "CERTFLOW_REMINDER_INTERVAL", time.Minute, "how often due expiry reminders, renewals and expiries are looked for")
	s.Float(&c.RenewAt, "renew-at", "CERTFLOW_RENEW_AT", domain.DefaultRenewAt, "renew a certificate automatically after this fraction of its lifetime (0.5 to 0.9); -1 = no automatic renewal")
	s.Duration(&c.Validity, "validity", "CERTFLOW_CERT_VALIDITY", 0, "certificate validity; 0 = one day under the CA/B Forum maximum (199 days in 2026)")
}

// Service is a running issuance service.
type Service struct {
	*service.Base
	// Publish serves the AIA and CRL URLs; the revocation code mounts the
	// CRLs on it (Publish.Handle).
	Publish *publish.Server
	// Authority is the CA.
	Authority *ca.Authority
	http      net.Listener
	baseURL   string
}

// HTTPAddr is the address of the AIA and CRL listener.
func (s *Service) HTTPAddr() string { return s.http.Addr().String() }

// PublicBaseURL is the base of the URLs written into certificates.
func (s *Service) PublicBaseURL() string { return s.baseURL }

// baseURL is configured unless it is empty or has port 0: then the
// listener's actual address.
func baseURL(configured string, ln net.Listener) (string, error) {
	if configured == "" {
		return "http://" + ln.Addr().String(), nil
	}
	u, err := url.Parse(configured)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("-public-base-url %q is not an http URL", configured)
	}
	if u.Port() == "0" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// New loads or creates the CA, connects and listens; call Run to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Name = "issuance"
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CRLCheckInterval > time.Minute {
		return nil, fmt.Errorf("CRL check interval %s is over a minute: a revocation must reach the CRL within one", cfg.CRLCheckInterval)
	}
	if cfg.CRLRefresh > 3*24*time.Hour {
		return nil, fmt.Errorf("CRL refresh %s is too long: CRLs must be renewed well before their 7-day nextUpdate (at most 3 days)", cfg.CRLRefresh)
	}
	offsets, err := parseOffsets(cfg.ReminderOffsets)
	if err != nil {
		return nil, err
	}
	if cfg.ReminderInterval <= 0 {
		cfg.ReminderInterval = time.Minute
	}
	plan := domain.Plan{Reminders: offsets, RenewAt: cfg.RenewAt, Expiry: true}
	switch {
	case cfg.RenewAt == 0:
		plan.RenewAt = domain.DefaultRenewAt
	case cfg.RenewAt < 0:
		plan.RenewAt = 0
	case cfg.RenewAt < 0.5 || cfg.RenewAt > 0.9:
		// Sooner wastes the certificate; later leaves no time to act when
		// a name must be validated again.
		return nil, fmt.Errorf("-renew-at %v: give a fraction of the lifetime from 0.5 to 0.9 (default %.4f), or -1 for no automatic renewal", cfg.RenewAt, domain.DefaultRenewAt)
	}
	kek, err := sealbox.LoadKEK("customer key-encryption key", cfg.KEK, cfg.KEKFile, "-kek-file or CERTFLOW_KEK")
	if err != nil {
		return nil, err
	}
	caKEK, err := sealbox.LoadKEK("CA key-encryption key", cfg.CAKEK, cfg.CAKEKFile, "-ca-kek-file or CERTFLOW_CA_KEK")
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(kek, caKEK) == 1 {
		return nil, errors.New("the CA key-encryption key and the customer key-encryption key are the same: CA keys and customer keys must be sealed under different keys (to move a CA sealed by an earlier version, keep its key as the customer KEK and give a new CA KEK: the CA keys are re-sealed on start)")
	}
	sealer, err := keyseal.New(kek)
	if err != nil {
		return nil, err
	}
	caSealer, err := keyseal.New(caKEK)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0" // a program embedding the service, a test
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("AIA/CRL listener: %w", err)
	}
	base, err := baseURL(cfg.PublicBaseURL, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	authority, err := ca.LoadOrCreate(cfg.CADir, caSealer, ca.Options{
		Now: cfg.Now, PreviousSealer: sealer, Log: log.With("service", "issuance").Warn, URLs: ca.URLsFor(base),
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("CA in %s: %w", cfg.CADir, err)
	}
	keys, err := keyPolicy(cfg, authority)
	if err != nil {
		ln.Close()
		return nil, err
	}
	log.Info("key policy ready", "service", "issuance", "debian_weak_keys", debianCount(keys), "blocked_keys_file", cfg.BlockedKeysFile)
	if cfg.VerificationAddr == "" {
		return nil, fmt.Errorf("no verification service address: the CA signs only names it confirms (set -verification-addr)")
	}
	b, err := service.Start(ctx, cfg.Config)
	if err != nil {
		ln.Close()
		return nil, err
	}
	pub := publish.New(authority.Root().Raw, authority.Intermediate().Raw)
	hs := &http.Server{Handler: pub, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	b.Go(func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("AIA/CRL HTTP: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
			return nil
		}
	})
	vc, err := b.Dial(callpolicy.Verification, cfg.VerificationAddr)
	if err != nil {
		return nil, err
	}
	certStore := docstore.New[domain.Certificate](b.DB.Collection("certificates"), "certificate", append(b.OutboxStoreOptions(cfg.Now), docstore.ReadCache(service.ReadCacheBytes), docstore.MemoryListIndex("doc.state", "doc.domains", "doc.notafter"))...)
	// Due reminders, renewals and expiries are found by their index.
	if err := certStore.EnsureIndexes(ctx, mongo.IndexModel{Keys: bson.D{{Key: app.DueField, Value: 1}}}); err != nil {
		return nil, err
	}
	// The reminders due: on MongoDB, which several replicas may write, by
	// the index above; on FerretDB, which this process alone writes and
	// which would scan the collection for that query every tick, from a
	// queue of the certificates with a reminder to come, kept in memory
	// (loaded by one scan now, before anything is served), so a tick costs
	// what is due, not what is stored.
	var certs app.Certificates = certStore
	var due app.DueCertificates = duequeue.Indexed[domain.Certificate]{Store: certStore, Field: app.DueField}
	if b.SingleWriter() {
		q := app.NewQueuedCertificates(certStore, plan)
		if err := app.LoadQueued(ctx, q, cfg.Now()); err != nil {
			return nil, err
		}
		b.Log.Info("reminders, renewals and expiries kept in memory (single writer)", "certificates", q.Len())
		certs, due = q, q
	}
	// Every serial is on record before it is signed.
	issuances := docstore.New[domain.Issuance](b.DB.Collection("issuances"), "issuance", b.StoreOptions(cfg.Now)...)
	revocations := docstore.New[domain.Revocation](b.DB.Collection("revocations"), "revocation", b.StoreOptions(cfg.Now)...)
	blocked := docstore.New[domain.BlockedKey](b.DB.Collection("blockedkeys"), "blocked key", b.StoreOptions(cfg.Now)...)
	// Keys revoked for keyCompromise join the key policy's blocklists.
	keys.Compromised = append(keys.Compromised, blockedkeys.Store{S: blocked}.Policy())
	crls := docstore.New[domain.CRL](b.DB.Collection("crls"), "CRL", b.StoreOptions(cfg.Now)...)
	for _, ensure := range []func(context.Context, ...mongo.IndexModel) error{issuances.EnsureIndexes, revocations.EnsureIndexes, blocked.EnsureIndexes, crls.EnsureIndexes} {
		if err := ensure(ctx); err != nil {
			return nil, err
		}
	}
	gen := crl.New(crl.Config{
		Revocations: revocations, CRLs: crls, Signer: authority, Now: cfg.Now, Log: b.Log,
		Refresh: cfg.CRLRefresh, CheckInterval: cfg.CRLCheckInterval,
	})
	pub.Handle("/crl/", gen.Handler())
	b.Go(gen.Run)
	a := app.New(certs, authority, sealer, verifier.Client{C: verificationv1.NewVerificationServiceClient(vc)}, keys, cfg.Now, cfg.Validity, app.WithIssuances(issuances)).
		WithRevocation(app.Revocation{Entries: revocations, Blocked: blockedkeys.Store{S: blocked}, Hash: blockedkeys.Hash, Changed: gen.Kick}).
		WithSchedule(plan, due)
	b.Go(func(ctx context.Context) error { return a.RunSchedule(ctx, cfg.ReminderInterval, b.Log.Warn) })
	b.GRPC.Register(&issuancev1.IssuanceService_ServiceDesc, &grpcapi.Server{App: a, Pages: page.NewKeyset(pageKey(kek))})
	b.Log.Info("CA ready", "root", cfg.CADir+"/"+ca.RootCertFile, "subject", authority.Root().Subject.String(), "http", ln.Addr().String(), "public_base_url", base)
	return &Service{Base: b, Publish: pub, Authority: authority, http: ln, baseURL: base}, nil
}

// keyPolicy is the policy every key to certify passes: goodkey's default
// with the Debian weak keys and blocked keys of cfg's files, loaded once at
// start, and the CA's own root and intermediate keys. Keys revoked for
// keyCompromise are to be appended to its Compromised blocklists.
func keyPolicy(cfg Config, authority *ca.Authority) (*goodkey.Policy, error) {
	p, _, err := goodkey.Files{DebianWeakKeys: cfg.DebianWeakKeysFile, BlockedKeys: cfg.BlockedKeysFile}.Load()
	if err != nil {
		return nil, err
	}
	if err := p.AddCAKey("root", authority.Root().PublicKey); err != nil {
		return nil, err
	}
	if err := p.AddCAKey("intermediate", authority.Intermediate().PublicKey); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// pageKey is the key of the list page tokens, derived from the customer
// KEK: stable across restarts and replicas, and never the KEK itself.
func pageKey(kek []byte) []byte {
	m := hmac.New(sha256.New, kek)
	m.Write([]byte("certflow issuance page tokens v1"))
	return m.Sum(nil)
}

func debianCount(p *goodkey.Policy) int {
	if p.DebianWeak == nil {
		return 0
	}
	return p.DebianWeak.Len()
}
