// Package service assembles the issuance service: the CA from its folder,
// the key sealer, the certificate store, the client of the verification
// service (asked before each signature) and the gRPC API.
package service

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"time"

	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/issuance/internal/app"
	"github.com/certflow/certflow/services/issuance/internal/ca"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/grpcapi"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
	"github.com/certflow/certflow/services/issuance/internal/verifier"
)

// DefaultPort is the issuance service's gRPC port in the default run.
const DefaultPort = 9104

// Config configures the issuance service.
type Config struct {
	service.Config
	// CADir holds the CA certificates and sealed keys; made on first start.
	CADir string
	// KEKFile holds the base64 32-byte key-encryption key for private keys
	// at rest (CA and customer keys). KEK, if set, is used instead.
	KEKFile string
	KEK     string
	// Validity of issued certificates; 0 = one day under the BR maximum.
	Validity time.Duration
	// VerificationAddr is the verification service, asked immediately
	// before each signature whether the names are validated and CAA permits.
	VerificationAddr string
	Now              func() time.Time
}

// Flags registers the issuance settings.
func (c *Config) Flags(s *config.Set) {
	c.Config.Flags(s, "issuance", DefaultPort)
	s.String(&c.CADir, "ca-dir", "CERTFLOW_CA_DIR", "./var/ca", "folder of the CA certificates and sealed keys (created on first start)")
	s.String(&c.KEKFile, "kek-file", "CERTFLOW_KEK_FILE", "", "file with the base64 32-byte key-encryption key")
	s.String(&c.KEK, "kek", "CERTFLOW_KEK", "", "base64 32-byte key-encryption key (instead of -kek-file)")
	s.String(&c.VerificationAddr, "verification-addr", "CERTFLOW_VERIFICATION_ADDR", "127.0.0.1:9103", "verification service gRPC address (asked before each signature)")
	s.Duration(&c.Validity, "validity", "CERTFLOW_CERT_VALIDITY", 0, "certificate validity; 0 = one day under the CA/B Forum maximum (199 days in 2026)")
}

// Service is a running issuance service.
type Service struct{ *service.Base }

// New loads or creates the CA, connects and listens; call Run to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.Name = "issuance"
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	kek, err := loadKEK(cfg.KEK, cfg.KEKFile)
	if err != nil {
		return nil, err
	}
	sealer, err := keyseal.New(kek)
	if err != nil {
		return nil, err
	}
	authority, err := ca.LoadOrCreate(cfg.CADir, sealer, ca.Options{Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("CA in %s: %w", cfg.CADir, err)
	}
	if cfg.VerificationAddr == "" {
		return nil, fmt.Errorf("no verification service address: the CA signs only names it confirms (set -verification-addr)")
	}
	b, err := service.Start(ctx, cfg.Config)
	if err != nil {
		return nil, err
	}
	vc, err := b.Dial(callpolicy.Verification, cfg.VerificationAddr)
	if err != nil {
		return nil, err
	}
	certs := docstore.New[domain.Certificate](b.DB.Collection("certificates"), "certificate", b.OutboxStoreOptions(cfg.Now)...)
	if err := certs.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	b.GRPC.Register(&issuancev1.IssuanceService_ServiceDesc, &grpcapi.Server{App: app.New(certs, authority, sealer, verifier.Client{C: verificationv1.NewVerificationServiceClient(vc)}, cfg.Now, cfg.Validity)})
	b.Log.Info("CA ready", "root", cfg.CADir+"/"+ca.RootCertFile, "subject", authority.Root().Subject.String())
	return &Service{b}, nil
}

func loadKEK(inline, file string) ([]byte, error) {
	text := inline
	if text == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read key-encryption key: %w", err)
		}
		text = string(b)
	}
	if text == "" {
		return nil, fmt.Errorf("no key-encryption key: set -kek-file or CERTFLOW_KEK (32 random bytes, base64; e.g. `head -c32 /dev/urandom | base64`)")
	}
	kek, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(kek) != 32 {
		return nil, fmt.Errorf("key-encryption key must be 32 bytes in base64")
	}
	return kek, nil
}
