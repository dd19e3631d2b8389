package service_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/testenv"
	gateway "github.com/certflow/certflow/services/gateway/service"
)

// TestServesHTTPSOnly: with a certificate configured the gateway answers
// HTTPS and refuses plain HTTP on the same port.
func TestServesHTTPSOnly(t *testing.T) {
	pki := testenv.PKI(t)
	c, err := pki.Issue("gateway", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, _ := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	g, err := gateway.New(context.Background(), gateway.Config{
		Addr: "127.0.0.1:0", OrderAddr: "127.0.0.1:1", ApplicationAddr: "127.0.0.1:1", VerificationAddr: "127.0.0.1:1",
		IssuanceAddr: "127.0.0.1:1", NotificationAddr: "127.0.0.1:1",
		HTTPSCert: certFile, HTTPSKey: keyFile, PKI: pki, Log: testenv.Logger(t),
		APIKeys: gateway.HashAPIKey("cf_test_"+strings.Repeat("a", 32)) + " acct customer\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, g.Run)
	if !strings.HasPrefix(g.URL(), "https://") {
		t.Fatalf("URL = %s; want https", g.URL())
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pki.CertPEM())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Get(g.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("GET /healthz over HTTPS = %d %q", resp.StatusCode, body)
	}
	plain := "http://" + strings.TrimPrefix(g.URL(), "https://")
	resp, err = http.Get(plain + "/healthz")
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the HTTPS port = %d; want 400", resp.StatusCode)
		}
	}
}
