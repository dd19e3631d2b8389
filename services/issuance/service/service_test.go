package service_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	verificationv1 "github.com/certflow/certflow/gen/go/certflow/verification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/smtptest"
	"github.com/certflow/certflow/pkg/testenv"
	issuance "github.com/certflow/certflow/services/issuance/service"
	notification "github.com/certflow/certflow/services/notification/service"
	verification "github.com/certflow/certflow/services/verification/service"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is the services' injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// env is an issuance service and the real verification service it asks
// before signing, with a test DNS server for validations and CAA, sharing
// one clock.
type env struct {
	client issuancev1.IssuanceServiceClient
	verify verificationv1.VerificationServiceClient
	dns    *devdns.Server
	smtp   *smtptest.Server
	conn   *events.Conn
	clock  *clock
	// http is the CRLs' base URL.
	http string
	svc  *issuance.Service
}

func start(t *testing.T, at time.Time, opts ...func(*issuance.Config)) *env {
	t.Helper()
	e := &env{clock: &clock{t: at}}
	var err error
	e.dns, err = devdns.Start(context.Background(), devdns.Options{Addr: "127.0.0.1:0", DefaultA: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.dns.Close() })
	natsURL := testenv.NATS(t)
	// The real notification service mails EMAIL codes to a real SMTP
	// server the test reads.
	e.smtp = smtptest.Start(t)
	_, ndb := testenv.Database(t)
	not, err := notification.New(context.Background(), notification.Config{
		Config:   service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: ndb, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "notification"), PKI: testenv.PKI(t), Log: testenv.Logger(t)},
		SMTPAddr: e.smtp.Addr(), WebhookKEK: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)),
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, not.Run)
	_, vdb := testenv.Database(t)
	vcfg := verification.Config{
		NotificationAddr: not.GRPC.Addr(),
		ApplicationAddr:  "127.0.0.1:1", // never called: no documents here
		Config:           service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: vdb, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "verification"), PKI: testenv.PKI(t), Log: testenv.Logger(t), RelayInterval: 100 * time.Millisecond},
		DNSServers:       e.dns.Addr(), HTTPPort: 80,
		ChallengeLifetime: time.Hour, RetryInitial: time.Minute, RetryMax: time.Minute, SweepInterval: time.Hour,
		Now: e.clock.Now,
	}
	perspectives, err := verification.StartLocal(context.Background(), &vcfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range perspectives {
		testenv.Run(t, p.Run)
	}
	ver, err := verification.New(context.Background(), vcfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, ver.Run)
	_, db := testenv.Database(t)
	cfg := issuance.Config{
		Config:           service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "issuance"), PKI: testenv.PKI(t), Log: testenv.Logger(t)},
		CADir:            t.TempDir(),
		KEK:              base64.StdEncoding.EncodeToString(make([]byte, 32)),
		CAKEK:            base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		VerificationAddr: ver.GRPC.Addr(),
		HTTPAddr:         "127.0.0.1:0",
		Now:              e.clock.Now,
		CRLCheckInterval: 200 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := issuance.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, svc.Run)
	e.svc = svc
	e.client = issuancev1.NewIssuanceServiceClient(testenv.Dial(t, svc.GRPC.Addr()))
	e.verify = verificationv1.NewVerificationServiceClient(testenv.Dial(t, ver.GRPC.Addr()))
	e.conn = testenv.Conn(t, natsURL)
	e.http = "http://" + svc.HTTPAddr()
	return e
}

// validate proves control of names for attempt 1 of an application of the
// account of ctx, as the application service and the customer would: DNS
// TXT challenges, published in the test DNS and checked.
func (e *env) validate(t *testing.T, ctx context.Context, application string, names ...string) {
	t.Helper()
	resp, err := e.verify.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: application, Attempt: 1, Domains: names, Method: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	})
	if err != nil {
		t.Fatalf("CreateChallenges(%s, %q) = %v", application, names, err)
	}
	for _, c := range resp.Challenges {
		if c.State == verificationv1.Challenge_VERIFIED {
			continue // reused
		}
		e.dns.SetTXT(c.DnsRecordName, c.DnsRecordValue)
		if got, err := e.verify.CheckChallenge(ctx, &verificationv1.CheckChallengeRequest{Name: c.Name}); err != nil || got.State != verificationv1.Challenge_VERIFIED {
			t.Fatalf("CheckChallenge(%s) = %v, %v; want VERIFIED", c.Domain, got.GetState(), err)
		}
	}
}

// validateByEmail proves control of name by the emailed code (EMAIL), read
// from the mail the notification service sent.
func (e *env) validateByEmail(t *testing.T, ctx context.Context, application, name string) {
	t.Helper()
	resp, err := e.verify.CreateChallenges(ctx, &verificationv1.CreateChallengesRequest{
		Application: application, Attempt: 1, Domains: []string{name}, Method: verificationv1.ValidationMethod_VALIDATION_METHOD_EMAIL,
	})
	if err != nil {
		t.Fatal(err)
	}
	challenge := resp.Challenges[0].Name
	codeRE := regexp.MustCompile(`"code":\s*"([^"]+)"`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		for _, m := range e.smtp.Messages() {
			if mm := codeRE.FindSubmatch(m.Data); mm != nil && strings.Contains(string(m.Data), name) {
				if _, err := e.verify.ConfirmChallenge(ctx, &verificationv1.ConfirmChallengeRequest{Name: challenge, Code: string(mm[1])}); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no validation mail for %s reached the SMTP server", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reason is the ErrorInfo reason of a gRPC error, and its domain metadata.
func reason(err error) (string, string) {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason, info.Metadata["domain"]
		}
	}
	return "", ""
}

func TestIssueAndDownload(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	e := start(t, now)
	client := e.client
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	e.validate(t, ctx, "applications/a1", "www.example.com", "example.com")
	req := &issuancev1.IssueCertificateRequest{
		RequestId: "applications/a1/attempts/1", Application: "applications/a1", Attempt: 1,
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
	if nb := cert.NotBefore.AsTime(); !nb.Equal(now.Add(-time.Minute)) {
		t.Fatalf("notBefore = %v; want the signing time %v backdated one minute", nb, now)
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
	e := start(t, time.Now())
	client := e.client
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	e.validate(t, ctx, "applications/x", "shop.example.com")
	key, _ := csr.GenerateKey(csr.ECDSAP256)
	der, _ := csr.Build(key, []string{"shop.example.com"})
	pemCSR := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))

	if _, err := client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "x/1", Application: "applications/x", Attempt: 1, Domains: []string{"other.example.com"}, Csr: pemCSR,
	}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("IssueCertificate with a CSR for other names = %v; want InvalidArgument", err)
	}
	cert, err := client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "x/2", Application: "applications/x", Attempt: 1, Domains: []string{"shop.example.com"}, Csr: pemCSR,
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

// TestIssueOnlyValidatedNames: the CA signs only when, at the signing
// time, every name has a validation of the account for the application's
// attempt, by a method allowed then, younger than the reuse period then,
// CAA permits, and the names are exactly the validated ones. Otherwise
// FailedPrecondition with the reason, and nothing is signed.
func TestIssueOnlyValidatedNames(t *testing.T) {
	// 2028-03-01: validations are reusable for 100 days; EMAIL is allowed
	// until 2028-03-15.
	t0 := time.Date(2028, time.March, 1, 12, 0, 0, 0, time.UTC)
	e := start(t, t0)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	e.validate(t, alice, "applications/good", "www.good.test", "*.good.test")
	e.validate(t, alice, "applications/part", "a.part.test")
	if _, err := e.verify.CreateChallenges(alice, &verificationv1.CreateChallengesRequest{
		Application: "applications/part", Attempt: 1, Domains: []string{"b.part.test"}, Method: verificationv1.ValidationMethod_VALIDATION_METHOD_DNS_TXT,
	}); err != nil {
		t.Fatal(err)
	}
	e.validate(t, bob, "applications/bobs", "www.bob.test")
	e.validate(t, alice, "applications/caa", "www.caa.test")
	e.dns.SetCAA("caa.test", devdns.CAA{Tag: "issue", Value: "other-ca.example"})
	e.validateByEmail(t, alice, "applications/mail", "mail.good.test")
	day := 24 * time.Hour

	tests := []struct {
		name        string
		ctx         context.Context
		application string
		attempt     int32
		domains     []string
		at          time.Time
		code        codes.Code
		reason      string
		domain      string
	}{
		{"made-up application", alice, "applications/mallory", 1, []string{"www.google.com"}, t0, codes.FailedPrecondition, "VALIDATION_MISSING", "www.google.com"},
		{"name not yet validated", alice, "applications/part", 1, []string{"a.part.test", "b.part.test"}, t0, codes.FailedPrecondition, "VALIDATION_MISSING", "b.part.test"},
		{"another account's validation", alice, "applications/bobs", 1, []string{"www.bob.test"}, t0, codes.FailedPrecondition, "VALIDATION_MISSING", "www.bob.test"},
		{"another attempt", alice, "applications/good", 2, []string{"www.good.test", "*.good.test"}, t0, codes.FailedPrecondition, "VALIDATION_MISSING", "www.good.test"},
		{"extra name", alice, "applications/good", 1, []string{"www.good.test", "*.good.test", "www.google.com"}, t0, codes.FailedPrecondition, "NAMES_MISMATCH", "www.google.com"},
		{"missing name", alice, "applications/good", 1, []string{"*.good.test"}, t0, codes.FailedPrecondition, "NAMES_MISMATCH", "www.good.test"},
		{"CAA now forbids", alice, "applications/caa", 1, []string{"www.caa.test"}, t0, codes.FailedPrecondition, "CAA_FORBIDS", "www.caa.test"},
		{"email before 2028-03-15", alice, "applications/mail", 1, []string{"mail.good.test"}, t0.Add(time.Hour), codes.OK, "", ""},
		// EMAIL is judged at signing time too: two weeks after the proof,
		// on the day the method ends, the name is refused.
		{"email from 2028-03-15", alice, "applications/mail", 1, []string{"mail.good.test"}, time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC), codes.FailedPrecondition, "METHOD_NOT_ALLOWED", "mail.good.test"},
		{"all good, one second under the reuse period", alice, "applications/good", 1, []string{"*.good.test", "WWW.good.test"}, t0.Add(100*day - time.Second), codes.OK, "", ""},
		{"older than the reuse period at signing", alice, "applications/good", 1, []string{"www.good.test", "*.good.test"}, t0.Add(100 * day), codes.FailedPrecondition, "VALIDATION_EXPIRED", "www.good.test"},
	}
	signed := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Set(tt.at)
			cert, err := e.client.IssueCertificate(tt.ctx, &issuancev1.IssueCertificateRequest{
				RequestId: fmt.Sprintf("%s/attempts/%d/case-%d", tt.application, tt.attempt, i), Application: tt.application, Attempt: tt.attempt, Domains: tt.domains,
			})
			r, d := reason(err)
			if testenv.Code(err) != tt.code || r != tt.reason || d != tt.domain {
				t.Fatalf("IssueCertificate(%s #%d, %q at %v) = %v (%s, domain %q); want %v %s naming %q",
					tt.application, tt.attempt, tt.domains, tt.at, err, r, d, tt.code, tt.reason, tt.domain)
			}
			if err == nil {
				signed++
				if nb := cert.NotBefore.AsTime(); !nb.Equal(tt.at.Add(-time.Minute).Truncate(time.Second)) {
					t.Errorf("notBefore = %v; want the signing time %v backdated one minute", nb, tt.at)
				}
			}
		})
	}

	// Refusals sign nothing.
	list, err := e.client.ListCertificates(alice, &issuancev1.ListCertificatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Certificates) != signed {
		t.Fatalf("certificates of alice = %d; want the %d signed", len(list.Certificates), signed)
	}
	if list, _ := e.client.ListCertificates(bob, &issuancev1.ListCertificatesRequest{}); len(list.GetCertificates()) != 0 {
		t.Fatalf("certificates of bob = %d; want 0", len(list.GetCertificates()))
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

// TestIssueRefusedByLint: a certificate zlint warns about is not signed;
// the refusal is LINT_FAILED with the lint's name. A 200-day validity is
// within the SC-081 maximum but at it, which the BRs say SHOULD NOT be used.
func TestIssueRefusedByLint(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	e := start(t, now, func(c *issuance.Config) { c.Validity = 200 * 24 * time.Hour })
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	e.validate(t, ctx, "applications/a1", "www.example.com")
	_, err := e.client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "applications/a1/attempts/1", Application: "applications/a1", Attempt: 1, Domains: []string{"www.example.com"},
	})
	if r, _ := reason(err); status.Code(err) != codes.FailedPrecondition || r != "LINT_FAILED" || !strings.Contains(err.Error(), "w_server_cert_valid_time_longer_than_199_days") {
		t.Fatalf("IssueCertificate(200 days) = %v; want FailedPrecondition LINT_FAILED naming w_server_cert_valid_time_longer_than_199_days", err)
	}
}

// TestAIAServed: the URLs in an issued certificate are served over HTTP;
// the AIA one returns the issuer.
func TestAIAServed(t *testing.T) {
	now := time.Now()
	e := start(t, now)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	e.validate(t, ctx, "applications/a1", "www.example.com")
	cert, err := e.client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "applications/a1/attempts/1", Application: "applications/a1", Attempt: 1, Domains: []string{"www.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cert.ValidationLevel != "DV" {
		t.Errorf("validation_level = %q; want DV", cert.ValidationLevel)
	}
	b, err := e.client.DownloadCertificate(ctx, &issuancev1.DownloadCertificateRequest{Name: cert.Name})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(b.CertificatePem))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	base := e.svc.PublicBaseURL()
	if !slices.Equal(leaf.IssuingCertificateURL, []string{base + "/ca/intermediate.der"}) || !slices.Equal(leaf.CRLDistributionPoints, []string{base + "/crl/intermediate.crl"}) {
		t.Fatalf("AIA %q, CRLDP %q; want under %s", leaf.IssuingCertificateURL, leaf.CRLDistributionPoints, base)
	}
	for _, u := range []string{leaf.IssuingCertificateURL[0], base + "/ca/root.der"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c, err := x509.ParseCertificate(der)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-cert" || err != nil {
			t.Fatalf("GET %s = %d %q %v", u, resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
		if u == leaf.IssuingCertificateURL[0] {
			if err := leaf.CheckSignatureFrom(c); err != nil {
				t.Errorf("GET %s did not return the issuer: %v", u, err)
			}
		}
	}
}

// TestIssueLevelNeedsApprovedOrganization: an OV certificate asked for an
// attempt without an approved organization review is refused, never signed
// DV instead.
func TestIssueLevelNeedsApprovedOrganization(t *testing.T) {
	e := start(t, time.Now())
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	e.validate(t, ctx, "applications/a1", "www.example.com")
	_, err := e.client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "applications/a1/attempts/1", Application: "applications/a1", Attempt: 1, Domains: []string{"www.example.com"},
		ValidationLevel: "OV",
	})
	if r, _ := reason(err); status.Code(err) != codes.FailedPrecondition || r != "ORGANIZATION_NOT_APPROVED" {
		t.Fatalf("IssueCertificate(OV without a review) = %v; want FailedPrecondition ORGANIZATION_NOT_APPROVED", err)
	}
	cert, err := e.client.IssueCertificate(ctx, &issuancev1.IssueCertificateRequest{
		RequestId: "applications/a1/attempts/1", Application: "applications/a1", Attempt: 1, Domains: []string{"www.example.com"},
		ValidationLevel: "DV",
	})
	if err != nil || cert.ValidationLevel != "DV" {
		t.Fatalf("IssueCertificate(DV) = %v, %v; want a DV certificate", cert, err)
	}
}
