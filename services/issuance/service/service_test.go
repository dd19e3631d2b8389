package service_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/testenv"
	issuance "github.com/certflow/certflow/services/issuance/service"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func start(t *testing.T, now func() time.Time) issuancev1.IssuanceServiceClient {
	t.Helper()
	_, db := testenv.Database(t)
	svc, err := issuance.New(context.Background(), issuance.Config{
		Config: service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: testenv.NATS(t), Log: testenv.Logger(t)},
		CADir:  t.TempDir(),
		KEK:    base64.StdEncoding.EncodeToString(make([]byte, 32)),
		CAKEK:  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		Now:    now,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, svc.Run)
	return issuancev1.NewIssuanceServiceClient(testenv.Dial(t, svc.GRPC.Addr()))
}

func TestIssueAndDownload(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	client := start(t, func() time.Time { return now })
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	req := &issuancev1.IssueCertificateRequest{
		RequestId: "applications/a1/attempts/1", Application: "applications/a1",
		Domains: []string{"www.example.com", "example.com"},
	}
	cert, err := client.IssueCertificate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := client.IssueCertificate(ctx, req)
	if err != nil || again.SerialNumber != cert.SerialNumber {
		t.Fatalf("IssueCertificate retry = %v, %v; want the same certificate %s", again.GetSerialNumber(), err, cert.SerialNumber)
	}
	if !cert.ServiceHoldsKey || cert.KeyAlgorithm != string(csr.ECDSAP256) {
		t.Fatalf("certificate = %v; want a service-held ECDSA-P256 key", cert)
	}
	if got := cert.NotAfter.AsTime().Sub(cert.NotBefore.AsTime()) + time.Second; got != 199*24*time.Hour {
		t.Fatalf("validity = %v; want 199 days (one under the SC-081 maximum)", got)
	}

	bundle, err := client.DownloadCertificate(ctx, &issuancev1.DownloadCertificateRequest{Name: cert.Name})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := client.GetCaCertificates(ctx, &issuancev1.GetCaCertificatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(ca.RootPem))
	inters.AppendCertsFromPEM([]byte(bundle.ChainPem))
	block, _ := pem.Decode([]byte(bundle.CertificatePem))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range req.Domains {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inters, CurrentTime: now.Add(time.Hour)}); err != nil {
			t.Errorf("leaf does not verify for %s: %v", name, err)
		}
	}
	kb, _ := pem.Decode([]byte(bundle.PrivateKeyPem))
	if kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatalf("private key PEM missing from the bundle of a service-made key")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatalf("downloaded key does not match the certificate")
	}

	bob := testenv.As(context.Background(), "bob", auth.Customer)
	if _, err := client.DownloadCertificate(bob, &issuancev1.DownloadCertificateRequest{Name: cert.Name}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("DownloadCertificate by another account = %v; want NotFound", err)
	}
}

func TestIssueWithCustomerCSR(t *testing.T) {
	client := start(t, time.Now)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	key, _ := csr.GenerateKey(csr.ECDSAP256)
	der, _ := csr.Build(key, []string{"shop.example.com"})
	pemCSR := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))

	if _, err := client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "x/1", Application: "applications/x", Domains: []string{"other.example.com"}, Csr: pemCSR,
	}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("IssueCertificate with a CSR for other names = %v; want InvalidArgument", err)
	}
	cert, err := client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "x/2", Application: "applications/x", Domains: []string{"shop.example.com"}, Csr: pemCSR,
	})
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := client.DownloadCertificate(ctx, &issuancev1.DownloadCertificateRequest{Name: cert.Name})
	if err != nil {
		t.Fatal(err)
	}
	if cert.ServiceHoldsKey || bundle.PrivateKeyPem != "" {
		t.Fatalf("a customer CSR's certificate came with a service key (holds=%v)", cert.ServiceHoldsKey)
	}
}

// TestKEKsNeverFlags: the key-encryption keys come from files or the
// environment, never from the command line.
func TestKEKsNeverFlags(t *testing.T) {
	kek := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	t.Setenv("CERTFLOW_KEK", kek)
	t.Setenv("CERTFLOW_CA_KEK", kek+"ca")
	var cfg issuance.Config
	s := config.New("issuance")
	cfg.Flags(s)
	for _, name := range []string{"kek", "ca-kek"} {
		if s.FS.Lookup(name) != nil {
			t.Errorf("flag -%s exists; a key on the command line is visible to every user of the machine", name)
		}
	}
	if err := s.Parse([]string{"-kek", kek}); err == nil {
		t.Errorf("Parse(-kek <key>) = nil; want an unknown flag")
	}
	if cfg.KEK != kek || cfg.CAKEK != kek+"ca" {
		t.Errorf("KEK, CAKEK = %q, %q; want them from CERTFLOW_KEK and CERTFLOW_CA_KEK", cfg.KEK, cfg.CAKEK)
	}
	for _, name := range []string{"kek-file", "ca-kek-file"} {
		if s.FS.Lookup(name) == nil {
			t.Errorf("flag -%s missing", name)
		}
	}
}

// TestOneKEKForBothRefused: CA keys and customer keys are sealed under
// different keys.
func TestOneKEKForBothRefused(t *testing.T) {
	kek := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	_, err := issuance.New(context.Background(), issuance.Config{
		Config: service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: "mongodb://127.0.0.1:1/", NATSURL: "nats://127.0.0.1:1"},
		CADir:  t.TempDir(), KEK: kek, CAKEK: kek,
	})
	if err == nil || !strings.Contains(err.Error(), "different keys") {
		t.Fatalf("New(KEK = CA KEK) = %v; want a refusal", err)
	}
	if strings.Contains(err.Error(), kek) {
		t.Fatalf("the error quotes the key: %v", err)
	}
}
