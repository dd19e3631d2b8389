package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/certflow/certflow/pkg/config"
)

// Files names the PEM files of a component's identity, as cert-manager
// writes them into a mounted Secret (tls.crt, tls.key, ca.crt).
type Files struct {
	Cert, Key, CA string
}

// Flags registers the identity files on s: -tls-cert, -tls-key, -tls-ca.
func Flags(s *config.Set, f *Files) {
	s.String(&f.Cert, "tls-cert", "CERTFLOW_TLS_CERT", "", "this component's certificate (PEM; tls.crt of its cert-manager Secret)")
	s.String(&f.Key, "tls-key", "CERTFLOW_TLS_KEY", "", "this component's private key (PEM; tls.key)")
	s.String(&f.CA, "tls-ca", "CERTFLOW_TLS_CA", "", "CA bundle its peers' certificates chain to (PEM; ca.crt)")
}

// Set reports whether any file is named.
func (f Files) Set() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// FileSource reads an identity from files and reads them again when they
// change, at most once per CheckEvery, so that rotated certificates are
// picked up without a restart. A rotation caught half-written keeps the
// previous identity until the files agree again.
type FileSource struct {
	files Files
	// CheckEvery bounds how often the files are looked at (default 1s).
	CheckEvery time.Duration

	mu      sync.Mutex
	checked time.Time
	stamp   string
	cert    *tls.Certificate
	roots   *x509.CertPool
	public  bool
}

// NewFileSource loads the files once, failing if they do not make an
// identity.
func NewFileSource(f Files) (*FileSource, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, errors.New("mutual TLS needs a certificate, its key and the CA bundle: set -tls-cert, -tls-key and -tls-ca")
	}
	s := &FileSource{files: f, CheckEvery: time.Second}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewKeyPairSource reads a certificate and key that are not a component
// identity (the gateway's public HTTPS certificate) and reads them again
// when they change; Roots is nil.
func NewKeyPairSource(cert, key string) (*FileSource, error) {
	if cert == "" || key == "" {
		return nil, errors.New("HTTPS needs both a certificate and its key")
	}
	s := &FileSource{files: Files{Cert: cert, Key: key}, CheckEvery: time.Second, public: true}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (s *FileSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Certificate()
}

// Certificate returns the current certificate.
func (s *FileSource) Certificate() (*tls.Certificate, error) {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, nil
}

// Roots returns the current CA bundle.
func (s *FileSource) Roots() (*x509.CertPool, error) {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roots, nil
}

func (s *FileSource) refresh() {
	s.mu.Lock()
	due := time.Since(s.checked) >= s.CheckEvery
	s.mu.Unlock()
	if due {
		// A failed reload keeps the identity already loaded: the files
		// may be mid-rotation.
		_ = s.reload()
	}
}

func (s *FileSource) reload() error {
	stamp, err := s.stampNow()
	s.mu.Lock()
	s.checked = time.Now()
	same := err == nil && stamp == s.stamp
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if same {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("load certificate %s and key %s: %w", s.files.Cert, s.files.Key, err)
	}
	var roots *x509.CertPool
	if !s.public {
		caPEM, err := os.ReadFile(s.files.CA)
		if err != nil {
			return fmt.Errorf("read CA bundle: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(caPEM) {
			return fmt.Errorf("CA bundle %s holds no PEM certificate", s.files.CA)
		}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("parse %s: %w", s.files.Cert, err)
	}
	if _, err := NameOf(leaf); err != nil && !s.public {
		return fmt.Errorf("%s: %w", s.files.Cert, err)
	}
	cert.Leaf = leaf
	s.mu.Lock()
	s.stamp, s.cert, s.roots = stamp, &cert, roots
	s.mu.Unlock()
	return nil
}

// stampNow identifies the files' current contents by size and mtime.
func (s *FileSource) stampNow() (string, error) {
	out := ""
	for _, p := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("identity file: %w", err)
		}
		out += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return out, nil
}
