package mtls_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/pkg/mtls"
)

func writeIdentity(t *testing.T, a *internalpki.Authority, dir, name string) mtls.Files {
	t.Helper()
	c, err := a.Issue(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	f := mtls.Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), CA: filepath.Join(dir, "ca.crt")}
	for path, data := range map[string][]byte{
		f.Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		f.Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		f.CA:   a.CertPEM(),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestFilesRotatedWithoutRestart: a server reading its identity from files
// (as from a cert-manager Secret) serves the new certificate and trusts
// the new CA bundle after the files are replaced, without a restart.
func TestFilesRotatedWithoutRestart(t *testing.T) {
	oldCA, _ := internalpki.New()
	newCA, _ := internalpki.New()
	dir := t.TempDir()
	files := writeIdentity(t, oldCA, dir, "issuance")
	src, err := mtls.NewFileSource(files)
	if err != nil {
		t.Fatal(err)
	}
	src.CheckEvery = 0
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(mtls.ServerCredentials(src)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	if err := healthOK(lis.Addr().String(), oldCA); err != nil {
		t.Fatalf("before rotation, old client: %v", err)
	}
	if err := healthOK(lis.Addr().String(), newCA); err == nil {
		t.Fatal("before rotation, a client of the new CA was trusted")
	}
	// Rotate everything to the new CA (mtime must move for the check).
	time.Sleep(10 * time.Millisecond)
	writeIdentity(t, newCA, dir, "issuance")
	if err := healthOK(lis.Addr().String(), newCA); err != nil {
		t.Fatalf("after rotation, new client: %v", err)
	}
	if err := healthOK(lis.Addr().String(), oldCA); err == nil {
		t.Fatal("after rotation, a client of the old CA is still trusted")
	}
}

func healthOK(addr string, client *internalpki.Authority) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(mtls.ClientCredentials(client.Source("application"), "issuance")))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// TestClientChecksTheServersName: a client calling issuance refuses a
// server whose certificate names another component.
func TestClientChecksTheServersName(t *testing.T) {
	a, _ := internalpki.New()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(mtls.ServerCredentials(a.Source("notification"))))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	if err := healthOK(lis.Addr().String(), a); err == nil {
		t.Fatal("a client expecting issuance accepted a server named notification")
	}
}

func TestNameOf(t *testing.T) {
	a, _ := internalpki.New()
	c, _ := a.Issue("order", time.Hour)
	if n, err := mtls.NameOf(c.Leaf); err != nil || n != "order" {
		t.Fatalf("NameOf = %q, %v", n, err)
	}
	c.Leaf.URIs = nil
	if _, err := mtls.NameOf(c.Leaf); err == nil {
		t.Fatal("a certificate without a SPIFFE ID was named")
	}
}
