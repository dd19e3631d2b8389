// Package lint lints what the CA is about to sign, as Boulder's linter
// does: the to-be-signed certificate (or CRL) is first signed by a throwaway
// key standing in for the issuer, under an issuer certificate that mirrors
// the real one (same subject, same key identifier), and the result is
// linted with zlint v3. Errors and warnings refuse the signature; notices
// are returned for the record. The real signature is made only from a clean
// result, and Check confirms the real certificate is the one linted.
package lint

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	zlintlint "github.com/zmap/zlint/v3/lint"
)

// ErrLint is returned (wrapped, as an *Error) when a lint finds an error or
// a warning.
var ErrLint = errors.New("lint: refused")

// Error names the lints that refused.
type Error struct {
	// What was linted, for example "leaf for www.example.com".
	What string
	// Lints are the failing lints' names, sorted, each with its details
	// when zlint gives some ("e_name: details").
	Lints []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("lint: %s fails %s", e.What, strings.Join(e.Lints, "; "))
}

// Is makes errors.Is(err, ErrLint) true.
func (e *Error) Is(target error) bool { return target == ErrLint }

// Names are the failing lints' names without details.
func (e *Error) Names() []string {
	out := make([]string, len(e.Lints))
	for i, l := range e.Lints {
		out[i], _, _ = strings.Cut(l, ": ")
	}
	return out
}

// Result is what zlint said.
type Result struct {
	Errors, Warnings, Notices []string
}

// Exclusions are the lints never run, each with why it cannot apply to
// certflow. Everything else zlint v3 has runs (each lint decides itself
// whether it applies: S/MIME and code-signing lints skip TLS certificates).
var Exclusions = map[string]string{
	// RFC 5280 4.2.1.2 says an end-entity certificate SHOULD carry a
	// subjectKeyIdentifier (w_ext_subject_key_identifier_missing_sub_cert);
	// BR 7.1.2.7.6 says NOT RECOMMENDED. The two lints contradict each other,
	// so one of them always warns; certflow's profile carries the SKI (issue
	// 8 asks for it, for path building by key identifier), so the BR one
	// is the one not run.
	"w_ext_subject_key_identifier_not_recommended_subscriber": "contradicts RFC 5280 4.2.1.2 (w_ext_subject_key_identifier_missing_sub_cert); certflow's profile carries the SKI",
}

// TestCAExclusions are left out only by a test or development CA
// (Options.TestCA): what a CA on loopback signing reserved test names
// cannot satisfy, and a production CA must.
var TestCAExclusions = map[string]string{
	// Tests and the embedded default sign names under .test (RFC 6761),
	// reserved so that they are never delegated: no TLD check can pass.
	// pkg/domainname and the verification service decide which names may
	// be signed; a production CA keeps this lint.
	"e_dnsname_not_valid_tld": "test names are under the reserved .test TLD (RFC 6761)",
	// The AIA URL of a CA on loopback is http://127.0.0.1:<port>/...; zlint
	// looks the host with its port up as a TLD and warns. A production CA
	// serves AIA from a public name and keeps this lint.
	"w_sub_cert_aia_contains_internal_names": "a test CA serves AIA on loopback",
}

// Options configure a Linter.
type Options struct {
	// TestCA also leaves out TestCAExclusions.
	TestCA bool
}

// Linter lints certificates and CRLs before they are signed. It is safe for
// concurrent use.
type Linter struct {
	registry zlintlint.Registry
	mu       sync.Mutex
	keys     map[string]crypto.Signer // throwaway keys by key type
}

// New returns a Linter.
func New(opts Options) (*Linter, error) {
	var exclude []string
	for n := range Exclusions {
		exclude = append(exclude, n)
	}
	if opts.TestCA {
		for n := range TestCAExclusions {
			exclude = append(exclude, n)
		}
	}
	slices.Sort(exclude)
	reg, err := zlintlint.GlobalRegistry().Filter(zlintlint.FilterOptions{ExcludeNames: exclude})
	if err != nil {
		return nil, fmt.Errorf("lint: registry: %w", err)
	}
	return &Linter{registry: reg, keys: map[string]crypto.Signer{}}, nil
}

// throwaway returns a key of the same type (and size or curve) as pub,
// made once per type.
func (l *Linter) throwaway(pub crypto.PublicKey) (crypto.Signer, error) {
	var (
		kind string
		make func() (crypto.Signer, error)
	)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		kind = "ecdsa-" + k.Curve.Params().Name
		make = func() (crypto.Signer, error) { return ecdsa.GenerateKey(k.Curve, rand.Reader) }
	case *rsa.PublicKey:
		kind = fmt.Sprintf("rsa-%d", k.N.BitLen())
		make = func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, k.N.BitLen()) }
	default:
		return nil, fmt.Errorf("lint: issuer key %T is not supported", pub)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.keys[kind]; ok {
		return k, nil
	}
	k, err := make()
	if err != nil {
		return nil, fmt.Errorf("lint: making throwaway key: %w", err)
	}
	l.keys[kind] = k
	return k, nil
}

// mirror is an issuer certificate like issuer (subject, key identifier,
// validity, CA constraints) for key, self-signed by key.
func mirror(issuer *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		RawSubject:            issuer.RawSubject,
		NotBefore:             issuer.NotBefore,
		NotAfter:              issuer.NotAfter,
		KeyUsage:              issuer.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          issuer.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("lint: making throwaway issuer: %w", err)
	}
	return x509.ParseCertificate(der)
}

// Certificate lints tbs as issuer would sign it for subjectKey; issuer nil
// means tbs is self-signed (a root) with the key issuerKey. It
// returns the linted DER (for Check) and the result; a result with errors
// or warnings comes with an *Error.
func (l *Linter) Certificate(what string, tbs, issuer *x509.Certificate, subjectKey, issuerKey crypto.PublicKey) ([]byte, Result, error) {
	if issuer != nil {
		issuerKey = issuer.PublicKey
	}
	key, err := l.throwaway(issuerKey)
	if err != nil {
		return nil, Result{}, err
	}
	var der []byte
	if issuer == nil {
		// A root: zlint tells a root by its self-signature, so the
		// throwaway signs itself, with its own key in place of the
		// subject's (the template's subject, SKI and AKI are the real
		// ones). The linted DER then differs from the real one in the key,
		// so Check does not apply to roots.
		der, err = x509.CreateCertificate(rand.Reader, tbs, tbs, key.Public(), key)
	} else {
		var m *x509.Certificate
		if m, err = mirror(issuer, key); err == nil {
			der, err = x509.CreateCertificate(rand.Reader, tbs, m, subjectKey, key)
		}
	}
	if err != nil {
		return nil, Result{}, fmt.Errorf("lint: signing %s with the throwaway key: %w", what, err)
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, Result{}, fmt.Errorf("lint: zcrypto cannot parse %s: %w", what, err)
	}
	res := collect(zlint.LintCertificateEx(zc, l.registry))
	return der, res, res.err(what)
}

// CRL lints tmpl as issuer (whose key signs CRLs) would sign it, and
// returns the linted CRL (DER) for CheckCRL.
func (l *Linter) CRL(what string, tmpl *x509.RevocationList, issuer *x509.Certificate) ([]byte, Result, error) {
	key, err := l.throwaway(issuer.PublicKey)
	if err != nil {
		return nil, Result{}, err
	}
	m, err := mirror(issuer, key)
	if err != nil {
		return nil, Result{}, err
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, m, key)
	if err != nil {
		return nil, Result{}, fmt.Errorf("lint: signing %s with the throwaway key: %w", what, err)
	}
	zr, err := zx509.ParseRevocationList(der)
	if err != nil {
		return nil, Result{}, fmt.Errorf("lint: zcrypto cannot parse %s: %w", what, err)
	}
	res := collect(zlint.LintRevocationListEx(zr, l.registry))
	return der, res, res.err(what)
}

// Check confirms that the really signed certificate is the one linted: the
// same to-be-signed bytes (the throwaway issuer has the real issuer's name
// and key identifier, and the signature algorithm is the same for the same
// key type).
func Check(linted, signed []byte) error {
	a, err := x509.ParseCertificate(linted)
	if err != nil {
		return fmt.Errorf("lint: parsing linted certificate: %w", err)
	}
	b, err := x509.ParseCertificate(signed)
	if err != nil {
		return fmt.Errorf("lint: parsing signed certificate: %w", err)
	}
	if !bytes.Equal(a.RawTBSCertificate, b.RawTBSCertificate) {
		return errors.New("lint: the signed certificate differs from the linted one")
	}
	return nil
}

// CheckCRL is Check for CRLs.
func CheckCRL(linted, signed []byte) error {
	a, err := x509.ParseRevocationList(linted)
	if err != nil {
		return fmt.Errorf("lint: parsing linted CRL: %w", err)
	}
	b, err := x509.ParseRevocationList(signed)
	if err != nil {
		return fmt.Errorf("lint: parsing signed CRL: %w", err)
	}
	if !bytes.Equal(a.RawTBSRevocationList, b.RawTBSRevocationList) {
		return errors.New("lint: the signed CRL differs from the linted one")
	}
	return nil
}

func collect(rs *zlint.ResultSet) Result {
	var r Result
	for name, res := range rs.Results {
		n := name
		if res.Details != "" {
			n += ": " + res.Details
		}
		switch res.Status {
		case zlintlint.Error, zlintlint.Fatal:
			r.Errors = append(r.Errors, n)
		case zlintlint.Warn:
			r.Warnings = append(r.Warnings, n)
		case zlintlint.Notice:
			r.Notices = append(r.Notices, n)
		}
	}
	slices.Sort(r.Errors)
	slices.Sort(r.Warnings)
	slices.Sort(r.Notices)
	return r
}

func (r Result) err(what string) error {
	if len(r.Errors) == 0 && len(r.Warnings) == 0 {
		return nil
	}
	return &Error{What: what, Lints: append(slices.Clone(r.Errors), r.Warnings...)}
}
