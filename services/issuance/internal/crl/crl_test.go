package crl_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/issuance/internal/ca"
	"github.com/certflow/certflow/services/issuance/internal/crl"
	"github.com/certflow/certflow/services/issuance/internal/domain"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type fixture struct {
	ca   *ca.Authority
	revs *docstore.Store[domain.Revocation]
	crls *docstore.Store[domain.CRL]
	clk  *clock
}

func setup(t *testing.T) *fixture {
	t.Helper()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	s, err := keyseal.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	a, err := ca.LoadOrCreate(filepath.Join(t.TempDir(), "ca"), s, ca.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	db, _ := testenv.Database(t)
	return &fixture{
		ca:   a,
		revs: docstore.New[domain.Revocation](db.Collection("revocations"), "revocation", docstore.WithClock(clk.Now)),
		crls: docstore.New[domain.CRL](db.Collection("crls"), "CRL", docstore.WithClock(clk.Now)),
		clk:  clk,
	}
}

func (f *fixture) generator(t *testing.T, check time.Duration) *crl.Generator {
	return crl.New(crl.Config{Revocations: f.revs, CRLs: f.crls, Signer: f.ca, Now: f.clk.Now, Log: testenv.Logger(t), CheckInterval: check})
}

func (f *fixture) revoke(t *testing.T, serial string, reason domain.Reason, notAfter time.Time) {
	t.Helper()
	if _, _, err := f.revs.Create(context.Background(), serial, "alice", domain.Revocation{
		Certificate: "certificates/" + serial, SerialHex: serial, Reason: reason, RevokeTime: f.clk.Now(), NotAfter: notAfter, By: domain.BySubscriber,
	}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url string) (*x509.RevocationList, *http.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, resp
	}
	c, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp
}

// TestRevocationOfAnotherReplica: a revocation this process was not told
// about (written by another replica) is on the served CRL within the check
// interval, with no Kick.
func TestRevocationOfAnotherReplica(t *testing.T) {
	f := setup(t)
	g := f.generator(t, 100*time.Millisecond)
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, _ := get(t, srv.URL+crl.IntermediatePath); c != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no CRL served")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.revoke(t, "0ABCDEF1", domain.Superseded, f.clk.Now().Add(time.Hour))
	start := time.Now()
	for {
		c, _ := get(t, srv.URL+crl.IntermediatePath)
		if len(c.RevokedCertificateEntries) == 1 && c.RevokedCertificateEntries[0].SerialNumber.Cmp(big.NewInt(0x0ABCDEF1)) == 0 {
			t.Logf("on the CRL %v after the revocation", time.Since(start))
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("revocation not on the CRL after %v (check interval 100ms)", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSchedule: a CRL is signed again only when its entries change or it
// is a refresh period old, each time with the next cRLNumber and
// nextUpdate 7 days on; expired certificates leave the CRL; the root's CRL
// is empty and verifies against the root; caching headers are set.
func TestSchedule(t *testing.T) {
	f := setup(t)
	g := f.generator(t, time.Second)
	ctx := context.Background()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	if c, resp := get(t, srv.URL+crl.IntermediatePath); c != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("before the first CRL: %d; want 503", resp.StatusCode)
	}
	update := func() *x509.RevocationList {
		t.Helper()
		if err := g.Update(ctx); err != nil {
			t.Fatal(err)
		}
		c, resp := get(t, srv.URL+crl.IntermediatePath)
		if c == nil {
			t.Fatalf("GET %s = %d", crl.IntermediatePath, resp.StatusCode)
		}
		if err := c.CheckSignatureFrom(f.ca.Intermediate()); err != nil {
			t.Fatal(err)
		}
		if got := c.NextUpdate.Sub(c.ThisUpdate); got != 7*24*time.Hour {
			t.Fatalf("nextUpdate - thisUpdate = %v; want 7 days", got)
		}
		return c
	}
	c := update()
	if c.Number.Int64() != 1 || len(c.RevokedCertificateEntries) != 0 {
		t.Fatalf("first CRL: number %v, %d entries; want 1, empty", c.Number, len(c.RevokedCertificateEntries))
	}
	f.clk.Add(time.Hour)
	if c = update(); c.Number.Int64() != 1 {
		t.Fatalf("nothing changed, an hour on: number %v; want still 1", c.Number)
	}
	f.revoke(t, "01", domain.KeyCompromise, f.clk.Now().Add(48*time.Hour))
	f.revoke(t, "02", domain.Unspecified, f.clk.Now().Add(2*time.Hour))
	if c = update(); c.Number.Int64() != 2 || len(c.RevokedCertificateEntries) != 2 {
		t.Fatalf("after revocations: number %v, %d entries; want 2 with 2", c.Number, len(c.RevokedCertificateEntries))
	}
	for _, e := range c.RevokedCertificateEntries {
		want := map[int64]int{1: 1, 2: 0}[e.SerialNumber.Int64()]
		if e.ReasonCode != want {
			t.Errorf("serial %v reason %d; want %d", e.SerialNumber, e.ReasonCode, want)
		}
	}
	// Serial 02 expires: off the next CRL, signed at the refresh.
	f.clk.Add(24 * time.Hour)
	if c = update(); c.Number.Int64() != 3 || len(c.RevokedCertificateEntries) != 1 || c.RevokedCertificateEntries[0].SerialNumber.Int64() != 1 {
		t.Fatalf("a day on: number %v, entries %v; want 3 listing serial 01 only", c.Number, c.RevokedCertificateEntries)
	}
	// A day past its notAfter the entry is deleted.
	f.clk.Add(24 * time.Hour)
	update()
	if _, err := f.revs.Get(ctx, "", "02"); err == nil {
		t.Errorf("the entry of a certificate expired over a day ago is still kept")
	}

	root, resp := get(t, srv.URL+crl.RootPath)
	if root == nil {
		t.Fatalf("GET %s = %d", crl.RootPath, resp.StatusCode)
	}
	if err := root.CheckSignatureFrom(f.ca.Root()); err != nil || len(root.RevokedCertificateEntries) != 0 {
		t.Fatalf("root CRL: %v, %d entries; want it verified and empty", err, len(root.RevokedCertificateEntries))
	}
	if resp.Header.Get("Content-Type") != "application/pkix-crl" || resp.Header.Get("Cache-Control") == "" || resp.Header.Get("ETag") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	req, _ := http.NewRequest("GET", srv.URL+crl.RootPath, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET = %v, %v; want 304", r.StatusCode, err)
	}
}
