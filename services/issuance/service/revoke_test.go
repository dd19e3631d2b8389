package service_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	issuancev1 "github.com/certflow/certflow/gen/go/certflow/issuance/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/testenv"
	issuance "github.com/certflow/certflow/services/issuance/service"
)

// issue validates names for application and has a certificate signed, with
// the key of csrKey (nil: the service makes one).
func (e *env) issue(t *testing.T, ctx context.Context, application string, csrKey crypto.Signer, names ...string) *issuancev1.Certificate {
	t.Helper()
	e.validate(t, ctx, application, names...)
	req := &issuancev1.IssueCertificateRequest{RequestId: application + "/attempts/1", Application: application, Attempt: 1, Domains: names}
	if csrKey != nil {
		req.Csr = pemCSR(t, csrKey, names...)
	}
	cert, err := e.client.IssueCertificate(ctx, req)
	if err != nil {
		t.Fatalf("IssueCertificate(%s) = %v", application, err)
	}
	return cert
}

func pemCSR(t *testing.T, key crypto.Signer, names ...string) string {
	t.Helper()
	der, err := csr.Build(key, names)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// fetchCRL GETs a CRL from the service's HTTP listener and parses it.
func (e *env) fetchCRL(t *testing.T, path string) (*x509.RevocationList, []byte) {
	t.Helper()
	resp, err := http.Get(e.http + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/pkix-crl" {
		t.Fatalf("GET %s: Content-Type %q; want application/pkix-crl", path, ct)
	}
	if resp.Header.Get("Cache-Control") == "" || resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("GET %s: caching headers missing: %v", path, resp.Header)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("GET %s: x509.ParseRevocationList = %v", path, err)
	}
	return crl, der
}

// waitCRL polls the intermediate's CRL until it lists serial (or, with
// serial nil, until there is one), and returns it with the time it took.
func (e *env) waitCRL(t *testing.T, serial *big.Int) (*x509.RevocationList, []byte, time.Duration) {
	t.Helper()
	return e.waitCRLAt(t, "/crl/intermediate.crl", serial)
}

func (e *env) waitCRLAt(t *testing.T, path string, serial *big.Int) (*x509.RevocationList, []byte, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		crl, der := e.fetchCRL(t, path)
		if crl != nil && (serial == nil || entry(crl, serial) != nil) {
			return crl, der, time.Since(start)
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s does not list %v after %v", path, serial, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func entry(crl *x509.RevocationList, serial *big.Int) *x509.RevocationListEntry {
	for i, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return &crl.RevokedCertificateEntries[i]
		}
	}
	return nil
}

func serialOf(t *testing.T, c *issuancev1.Certificate) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(c.SerialNumber, 16)
	if !ok {
		t.Fatalf("serial %q is not hex", c.SerialNumber)
	}
	return n
}

// revokedEvent waits for the certflow.certificate.revoked event of cert.
func (e *env) revokedEvent(t *testing.T, cert string) *eventsv1.CertificateRevoked {
	t.Helper()
	ctx := context.Background()
	stream, err := e.conn.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err != nil || m.Subject != events.CertificateRevoked {
				continue
			}
			var ev eventsv1.CertificateRevoked
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Certificate == cert {
				return &ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s", events.CertificateRevoked, cert)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRevoke: a customer revokes its own certificates with each reason a
// subscriber may give, not another account's, not with the CA's reasons; a
// reviewer revokes any. Each shows REVOKED with reason and time, the event
// is published, and the intermediate's CRL served over HTTP lists it with
// its reason within a minute.
func TestRevoke(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	e := start(t, now)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	reviewer := testenv.As(context.Background(), "staff", auth.Reviewer)

	ca, err := e.client.GetCaCertificates(alice, &issuancev1.GetCaCertificatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	root, inter := parsePEMCert(t, ca.RootPem), parsePEMCert(t, ca.IntermediatePem)

	// Before any revocation the CRLs exist, empty, and verify.
	first, _, _ := e.waitCRL(t, nil)
	if len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("first CRL lists %d entries; want none", len(first.RevokedCertificateEntries))
	}
	rootCRL, _, _ := e.waitCRLAt(t, "/crl/root.crl", nil)
	if err := rootCRL.CheckSignatureFrom(root); err != nil {
		t.Fatalf("root CRL does not verify against the root: %v", err)
	}
	if len(rootCRL.RevokedCertificateEntries) != 0 || rootCRL.NextUpdate.Sub(rootCRL.ThisUpdate) > 10*24*time.Hour {
		t.Fatalf("root CRL: %d entries, thisUpdate %v, nextUpdate %v; want empty, at most 10 days", len(rootCRL.RevokedCertificateEntries), rootCRL.ThisUpdate, rootCRL.NextUpdate)
	}

	other := e.issue(t, alice, "applications/other", nil, "other.example.com")
	if _, err := e.client.RevokeCertificate(bob, &issuancev1.RevokeCertificateRequest{Name: other.Name}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("RevokeCertificate of alice's certificate by bob = %v; want NotFound", err)
	}
	for _, r := range []issuancev1.RevocationReason{
		issuancev1.RevocationReason_REVOCATION_REASON_PRIVILEGE_WITHDRAWN,
		issuancev1.RevocationReason_REVOCATION_REASON_CA_COMPROMISE,
		issuancev1.RevocationReason(6), // certificateHold: never (BR 4.9.13)
		issuancev1.RevocationReason(8),
	} {
		_, err := e.client.RevokeCertificate(alice, &issuancev1.RevokeCertificateRequest{Name: other.Name, Reason: r})
		if got, _ := reason(err); testenv.Code(err) != codes.InvalidArgument || got != "REVOCATION_REASON_NOT_ALLOWED" {
			t.Errorf("RevokeCertificate(%v) by the customer = %v (%s); want InvalidArgument REVOCATION_REASON_NOT_ALLOWED", r, err, got)
		}
	}
	if got, err := e.client.GetCertificate(alice, &issuancev1.GetCertificateRequest{Name: other.Name}); err != nil || got.State != issuancev1.Certificate_ISSUED {
		t.Fatalf("after refused revocations GetCertificate = %v, %v; want ISSUED", got.GetState(), err)
	}

	tests := []struct {
		name   string
		ctx    context.Context
		reason issuancev1.RevocationReason
	}{
		{"customer unspecified", alice, issuancev1.RevocationReason_REVOCATION_REASON_UNSPECIFIED},
		{"customer keyCompromise", alice, issuancev1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE},
		{"customer affiliationChanged", alice, issuancev1.RevocationReason_REVOCATION_REASON_AFFILIATION_CHANGED},
		{"customer superseded", alice, issuancev1.RevocationReason_REVOCATION_REASON_SUPERSEDED},
		{"customer cessationOfOperation", alice, issuancev1.RevocationReason_REVOCATION_REASON_CESSATION_OF_OPERATION},
		{"reviewer privilegeWithdrawn", reviewer, issuancev1.RevocationReason_REVOCATION_REASON_PRIVILEGE_WITHDRAWN},
		{"reviewer keyCompromise", reviewer, issuancev1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE},
	}
	number := first.Number
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Add(time.Minute)
			at := e.clock.Now()
			app := fmt.Sprintf("applications/r%d", i)
			cert := e.issue(t, alice, app, nil, fmt.Sprintf("r%d.example.com", i))
			rid := "revoke-" + strconv.Itoa(i)
			got, err := e.client.RevokeCertificate(tt.ctx, &issuancev1.RevokeCertificateRequest{Name: cert.Name, Reason: tt.reason, RequestId: rid})
			if err != nil {
				t.Fatalf("RevokeCertificate(%v) = %v", tt.reason, err)
			}
			if got.State != issuancev1.Certificate_REVOKED || got.RevocationReason != tt.reason || !got.RevokeTime.AsTime().Equal(at) {
				t.Fatalf("revoked certificate: %v %v at %v; want REVOKED %v at %v", got.State, got.RevocationReason, got.RevokeTime.AsTime(), tt.reason, at)
			}
			read, err := e.client.GetCertificate(alice, &issuancev1.GetCertificateRequest{Name: cert.Name})
			if err != nil || !proto.Equal(read, got) {
				t.Fatalf("GetCertificate = %v, %v; want %v", read, err, got)
			}
			// The same request again returns the revoked certificate;
			// another one is refused and changes nothing.
			if again, err := e.client.RevokeCertificate(tt.ctx, &issuancev1.RevokeCertificateRequest{Name: cert.Name, Reason: tt.reason, RequestId: rid}); err != nil || !proto.Equal(again, got) {
				t.Fatalf("RevokeCertificate retry = %v, %v; want the revoked certificate", again, err)
			}
			_, err = e.client.RevokeCertificate(tt.ctx, &issuancev1.RevokeCertificateRequest{Name: cert.Name, Reason: issuancev1.RevocationReason_REVOCATION_REASON_SUPERSEDED})
			if r, _ := reason(err); testenv.Code(err) != codes.FailedPrecondition || r != "CERTIFICATE_ALREADY_REVOKED" {
				t.Fatalf("RevokeCertificate of a revoked certificate = %v (%s); want FailedPrecondition CERTIFICATE_ALREADY_REVOKED", err, r)
			}

			ev := e.revokedEvent(t, cert.Name)
			if ev.Account != "alice" || ev.Application != app || ev.SerialNumber != cert.SerialNumber || ev.ReasonCode != int32(tt.reason) || !ev.RevokeTime.AsTime().Equal(at) {
				t.Fatalf("event = %v; want alice's %s revoked for %d at %v", ev, cert.Name, tt.reason, at)
			}

			crl, _, took := e.waitCRL(t, serialOf(t, cert))
			t.Logf("on the CRL %v after the revocation", took)
			if err := crl.CheckSignatureFrom(inter); err != nil {
				t.Fatalf("CRL does not verify against the intermediate: %v", err)
			}
			en := entry(crl, serialOf(t, cert))
			if en.ReasonCode != int(tt.reason) || !en.RevocationTime.Equal(at) {
				t.Fatalf("CRL entry: reason %d at %v; want %d at %v", en.ReasonCode, en.RevocationTime, tt.reason, at)
			}
			if crl.NextUpdate.Sub(crl.ThisUpdate) > 10*24*time.Hour || crl.ThisUpdate.After(e.clock.Now()) {
				t.Fatalf("CRL thisUpdate %v nextUpdate %v; want nextUpdate at most 10 days on", crl.ThisUpdate, crl.NextUpdate)
			}
			if crl.Number.Cmp(number) <= 0 {
				t.Fatalf("CRL number %v after %v; want it to grow", crl.Number, number)
			}
			number = crl.Number
			if len(crl.RevokedCertificateEntries) != i+1 {
				t.Fatalf("CRL lists %d entries; want %d", len(crl.RevokedCertificateEntries), i+1)
			}
		})
	}
}

// TestKeyCompromiseBlocksKey: once a certificate is revoked for
// keyCompromise, no later request may use its key, whatever the account.
func TestKeyCompromiseBlocksKey(t *testing.T) {
	e := start(t, time.Now())
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	bob := testenv.As(context.Background(), "bob", auth.Customer)
	key, _ := csr.GenerateKey(csr.ECDSAP256)
	cert := e.issue(t, alice, "applications/k1", key, "k.example.com")
	// Revoked for another reason, the key may still be used.
	again := e.issue(t, alice, "applications/k2", key, "k.example.com")
	if _, err := e.client.RevokeCertificate(alice, &issuancev1.RevokeCertificateRequest{Name: again.Name, Reason: issuancev1.RevocationReason_REVOCATION_REASON_SUPERSEDED}); err != nil {
		t.Fatal(err)
	}
	e.issue(t, alice, "applications/k3", key, "k.example.com")

	if _, err := e.client.RevokeCertificate(alice, &issuancev1.RevokeCertificateRequest{Name: cert.Name, Reason: issuancev1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ctx   context.Context
		app   string
		names []string
	}{
		{alice, "applications/k4", []string{"k.example.com"}},
		{alice, "applications/k5", []string{"new.example.com"}},
		{bob, "applications/b1", []string{"bob.example.com"}},
	} {
		e.validate(t, tt.ctx, tt.app, tt.names...)
		_, err := e.client.IssueCertificate(tt.ctx, &issuancev1.IssueCertificateRequest{
			RequestId: tt.app + "/attempts/1", Application: tt.app, Attempt: 1, Domains: tt.names, Csr: pemCSR(t, key, tt.names...),
		})
		if r, _ := reason(err); testenv.Code(err) != codes.FailedPrecondition || r != "KEY_COMPROMISED" {
			t.Errorf("IssueCertificate(%s) with the compromised key = %v (%s); want FailedPrecondition KEY_COMPROMISED", tt.app, err, r)
		}
	}
	// A new key is fine.
	fresh, _ := csr.GenerateKey(csr.ECDSAP256)
	e.issue(t, alice, "applications/k6", fresh, "k.example.com")
}

// TestOpenSSLRefusesRevoked: openssl verify -crl_check with the served CRL
// refuses a revoked certificate and accepts an unrevoked one.
func TestOpenSSLRefusesRevoked(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl on this machine")
	}
	now := time.Now().UTC().Truncate(time.Second)
	e := start(t, now)
	alice := testenv.As(context.Background(), "alice", auth.Customer)
	revoked := e.issue(t, alice, "applications/o1", nil, "revoked.example.com")
	good := e.issue(t, alice, "applications/o2", nil, "good.example.com")
	if _, err := e.client.RevokeCertificate(alice, &issuancev1.RevokeCertificateRequest{Name: revoked.Name, Reason: issuancev1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	_, der, _ := e.waitCRL(t, serialOf(t, revoked))
	ca, err := e.client.GetCaCertificates(alice, &issuancev1.GetCaCertificatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootPEM, interPEM := write("root.pem", ca.RootPem), write("intermediate.pem", ca.IntermediatePem)
	interCRL := string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	crlPEM := write("crl.pem", interCRL)
	_, rootDER, _ := e.waitCRLAt(t, "/crl/root.crl", nil)
	// -crl_check_all also checks the intermediate against the root's CRL.
	bothPEM := write("crls.pem", interCRL+string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: rootDER})))
	at := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	verify := func(c *issuancev1.Certificate, check, crls string) (string, error) {
		b, err := e.client.DownloadCertificate(alice, &issuancev1.DownloadCertificateRequest{Name: c.Name})
		if err != nil {
			t.Fatal(err)
		}
		leaf := write(strings.ReplaceAll(c.Name, "/", "_")+".pem", b.CertificatePem)
		out, err := exec.Command("openssl", "verify", "-attime", at, check, "-CAfile", rootPEM, "-untrusted", interPEM, "-CRLfile", crls, leaf).CombinedOutput()
		return string(out), err
	}
	for _, check := range []struct{ flag, crls string }{{"-crl_check", crlPEM}, {"-crl_check_all", bothPEM}} {
		if out, err := verify(revoked, check.flag, check.crls); err == nil || !strings.Contains(out, "certificate revoked") {
			t.Errorf("openssl verify %s of the revoked certificate = %v:\n%s\nwant \"certificate revoked\"", check.flag, err, out)
		}
		if out, err := verify(good, check.flag, check.crls); err != nil {
			t.Errorf("openssl verify %s of an unrevoked certificate = %v:\n%s", check.flag, err, out)
		}
	}
}

func parsePEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCRLScheduleBounds: a check interval over a minute, or a refresh that
// would let a CRL near its nextUpdate, is refused at start.
func TestCRLScheduleBounds(t *testing.T) {
	for _, cfg := range []issuance.Config{
		{CRLCheckInterval: 2 * time.Minute},
		{CRLRefresh: 5 * 24 * time.Hour},
	} {
		cfg.Config = service.Config{GRPCAddr: "127.0.0.1:0", MongoURI: "mongodb://127.0.0.1:1/", NATSURL: "nats://127.0.0.1:1"}
		cfg.CADir = t.TempDir()
		if _, err := issuance.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "CRL") {
			t.Errorf("New(check %v, refresh %v) = %v; want a refusal naming the CRL", cfg.CRLCheckInterval, cfg.CRLRefresh, err)
		}
	}
}
