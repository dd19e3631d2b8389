package internalpki_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/pkg/mtls"
)

func TestRenewsAfterTwoThirds(t *testing.T) {
	a, err := internalpki.New()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.Now = func() time.Time { return now }
	src := a.Source("issuance")
	first, err := src.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := mtls.NameOf(first.Leaf); got != "issuance" {
		t.Fatalf("certificate names %q; want issuance", got)
	}
	if life := first.Leaf.NotAfter.Sub(now); life > internalpki.LeafLifetime {
		t.Fatalf("lifetime %v; want at most %v", life, internalpki.LeafLifetime)
	}
	for _, tt := range []struct {
		after time.Duration
		renew bool
	}{
		{time.Hour, false},
		{15 * time.Hour, false},
		{17 * time.Hour, true}, // past 2/3 of 24h (+5 min backdating)
	} {
		now = first.Leaf.NotBefore.Add(5 * time.Minute).Add(tt.after)
		c, err := src.Certificate()
		if err != nil {
			t.Fatal(err)
		}
		if renewed := c != first; renewed != tt.renew {
			t.Errorf("after %v: renewed %v; want %v", tt.after, renewed, tt.renew)
		}
		roots, _ := src.Roots()
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("after %v: %v", tt.after, err)
		}
	}
}

func TestRootKeptAcrossRestartsAndNameConstrained(t *testing.T) {
	dir := t.TempDir()
	a, err := internalpki.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := internalpki.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CertPEM()) != string(b.CertPEM()) {
		t.Fatal("a restart made a new root")
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file: %v, %v; want mode 0600", fi, err)
	}
	// The root is name-constrained: it cannot vouch for a public name.
	c, err := b.Issue("gateway", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.CertPEM())
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "gateway.certflow.internal"}); err != nil {
		t.Fatalf("component certificate does not verify: %v", err)
	}
	// Were the key ever misused to sign a public name, the constraint
	// still refuses it.
	forged := *c.Leaf
	forged.DNSNames = []string{"www.example.com"}
	if _, err := forged.Verify(x509.VerifyOptions{Roots: pool, DNSName: "www.example.com"}); err == nil {
		t.Fatal("the internal root vouched for www.example.com")
	}
}
