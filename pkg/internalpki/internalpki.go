// Package internalpki is the embedded default's private PKI for component
// identity: a root made on first start (never used for customer
// certificates) that gives each component a short-lived certificate naming
// it, renewed well before it expires. Production uses certificates from
// files instead (mtls.FileSource), issued by cert-manager.
package internalpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/certflow/certflow/pkg/mtls"
)

// Lifetimes. A component certificate lives a day and is renewed after two
// thirds of it, so a stolen one is short-lived and a renewal that fails has
// hours to succeed.
const (
	RootLifetime = 10 * 365 * 24 * time.Hour
	LeafLifetime = 24 * time.Hour
)

// Authority issues component certificates.
type Authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	pool    *x509.CertPool
	// Now is the clock (tests move it to see renewal).
	Now func() time.Time
}

// New makes an authority held only in memory (tests).
func New() (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"certflow"}, CommonName: "certflow internal root (component identity only)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(RootLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// Name-constrained to the internal names, so this root cannot
		// vouch for a public name even if someone trusted it by mistake.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{mtls.TrustDomain, "localhost"},
		PermittedURIDomains:         []string{mtls.TrustDomain},
		PermittedIPRanges:           []*net.IPNet{{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}, {IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create internal root: %w", err)
	}
	return fromDER(der, key)
}

func fromDER(der []byte, key crypto.Signer) (*Authority, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &Authority{cert: cert, key: key, pool: pool, Now: time.Now,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadOrCreate opens the authority in dir (ca.pem, ca-key.pem), making it
// on first start.
func LoadOrCreate(dir string) (*Authority, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		a, err := New()
		if err != nil {
			return nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(a.key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(certPath, a.certPEM, 0o644); err != nil {
			return nil, err
		}
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("internal PKI: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("internal PKI: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("internal PKI in %s: %w", dir, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("internal PKI key in %s cannot sign", dir)
	}
	a, err := fromDER(pair.Certificate[0], signer)
	if err != nil {
		return nil, err
	}
	if a.Now().After(a.cert.NotAfter.Add(-30 * 24 * time.Hour)) {
		return nil, fmt.Errorf("internal root in %s expires %s: remove the folder to make a new one", dir, a.cert.NotAfter.Format(time.DateOnly))
	}
	return a, nil
}

// CertPEM is the root certificate, the CA bundle every component trusts.
func (a *Authority) CertPEM() []byte { return a.certPEM }

// Issue makes a certificate naming component name, valid for lifetime:
// URI SAN spiffe://certflow.internal/<name>, DNS <name>.certflow.internal
// and localhost, IP loopback; for both server and client authentication.
func (a *Authority) Issue(name string, lifetime time.Duration) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := a.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"certflow"}, CommonName: name},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{mtls.ID(name)},
		DNSNames:     []string{mtls.ServerName(name), "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// WriteIdentity writes a certificate for name, valid for lifetime, to
// <dir>/<name>.pem and <dir>/<name>-key.pem (for an operator's grpcurl).
func (a *Authority) WriteIdentity(dir, name string, lifetime time.Duration) error {
	c, err := a.Issue(name, lifetime)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644)
}

// Identity is component name's mutual-TLS identity: issued by pki when
// given (the embedded default, tests), otherwise read from files.
func Identity(name string, files mtls.Files, pki *Authority) (mtls.Source, error) {
	if pki != nil {
		return pki.Source(name), nil
	}
	src, err := mtls.NewFileSource(files)
	if err != nil {
		return nil, fmt.Errorf("%s identity: %w", name, err)
	}
	return src, nil
}

// Source is a renewing identity for component name.
func (a *Authority) Source(name string) *Source {
	return &Source{a: a, name: name, Lifetime: LeafLifetime}
}

// Source is an mtls.Source that asks its authority for a new certificate
// once two thirds of the current one's lifetime have passed.
type Source struct {
	a        *Authority
	name     string
	Lifetime time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	renewAt time.Time
	// Renewals counts certificates issued (tests).
	Renewals int
}

var _ mtls.Source = (*Source)(nil)

// Certificate returns a current certificate, renewing it when due.
func (s *Source) Certificate() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.a.Now()
	if s.cert != nil && now.Before(s.renewAt) {
		return s.cert, nil
	}
	c, err := s.a.Issue(s.name, s.Lifetime)
	if err != nil {
		if s.cert != nil && now.Before(s.cert.Leaf.NotAfter) {
			return s.cert, nil // keep the one still valid; try again next time
		}
		return nil, err
	}
	s.cert, s.Renewals = c, s.Renewals+1
	s.renewAt = c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) * 2 / 3)
	return c, nil
}

// Roots is the internal root.
func (s *Source) Roots() (*x509.CertPool, error) { return s.a.pool, nil }

func serial() *big.Int {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := sha256.Sum256(b[:])
	return new(big.Int).SetBytes(h[:16])
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
