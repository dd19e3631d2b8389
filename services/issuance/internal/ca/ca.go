// Package ca is certflow's embedded certificate authority: a self-signed
// root and an intermediate that signs TLS server (leaf) certificates.
package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
	"github.com/certflow/certflow/services/issuance/internal/lint"
	"github.com/certflow/certflow/services/issuance/internal/profile"
)

// The files of a CA in its folder.
const (
	RootCertFile         = "root.pem"
	IntermediateCertFile = "intermediate.pem"
	RootKeyFile          = "root.key.sealed"
	IntermediateKeyFile  = "intermediate.key.sealed"
)

// Owners the CA keys are sealed for, so that one cannot be swapped for the other.
const (
	rootKeyOwner         = "ca/root"
	intermediateKeyOwner = "ca/intermediate"
)

const (
	rootValidityYears         = 20
	intermediateValidityYears = 5
	// backdate is how far NotBefore is set before the requested time, so
	// that relying parties whose clocks run a little behind ours do not
	// see a freshly issued certificate as not yet valid.
	backdate = time.Minute
	// maxCNLength is ub-common-name (RFC 5280); longer names are SAN-only.
	maxCNLength = 64
)

// Defaults for Options.
const (
	DefaultOrganization           = "certflow"
	DefaultRootCommonName         = "certflow Development Root CA"
	DefaultIntermediateCommonName = "certflow Development Intermediate CA"
)

// oidAnyPolicy is asserted by the intermediate: it issues DV, OV and EV
// leaves, and a policy-restricted subordinate CA may hold only one reserved
// policy (BR 7.1.2.10.5; zlint e_ca_multiple_reserved_policy_oids), while
// one operated by the root's own CA (an Affiliate) may assert anyPolicy.
// Each leaf asserts its own profile's reserved policy.
var oidAnyPolicy = profile.AnyPolicy

// DefaultCountry is the countryName of a new root and intermediate.
const DefaultCountry = "US"

// DefaultBaseURL is where the issuance service serves CA certificates and
// CRLs by default (services/issuance/internal/publish).
const DefaultBaseURL = "http://127.0.0.1:9180"

// URLs are the HTTP URLs written into certificates: AIA caIssuers and the
// CRL distribution point (RFC 5280 4.2.2.1, 4.2.1.13; plain HTTP, as
// BR 7.1.2.7.7 and 7.1.2.11.2 ask, since what is served is signed).
type URLs struct {
	RootCert, IntermediateCert string // DER certificates (application/pkix-cert)
	RootCRL, IntermediateCRL   string // DER CRLs (application/pkix-crl)
}

// The paths under the base URL (services/issuance/internal/publish serves
// them).
const (
	RootCertPath         = "/ca/root.der"
	IntermediateCertPath = "/ca/intermediate.der"
	RootCRLPath          = "/crl/root.crl"
	IntermediateCRLPath  = "/crl/intermediate.crl"
)

// URLsFor are the URLs under base (for example http://ca.example.com).
func URLsFor(base string) URLs {
	base = strings.TrimRight(base, "/")
	return URLs{RootCert: base + RootCertPath, IntermediateCert: base + IntermediateCertPath,
		RootCRL: base + RootCRLPath, IntermediateCRL: base + IntermediateCRLPath}
}

// loopback reports whether u is served from a loopback address: a CA that
// publishes there cannot be a public one, so it is linted as a test CA.
func (u URLs) loopback() bool {
	for _, s := range []string{u.RootCert, u.IntermediateCert, u.RootCRL, u.IntermediateCRL} {
		h := s
		if i := strings.Index(h, "://"); i >= 0 {
			h = h[i+3:]
		}
		h, _, _ = strings.Cut(h, "/")
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		ip := net.ParseIP(strings.Trim(h, "[]"))
		if h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

var (
	// ErrValidity is returned (wrapped) by Sign when the requested
	// validity is not longer than the one-minute backdating, not a whole
	// number of seconds, or longer than certpolicy.MaxValidity allows.
	ErrValidity = errors.New("ca: validity out of range")
	// ErrIncomplete is returned (wrapped) by LoadOrCreate when the folder
	// holds some of the CA's files but not all.
	ErrIncomplete = errors.New("ca: incomplete CA folder")
)

// Options configure a new CA. Apart from PreviousSealer they are ignored
// when an existing CA is loaded.
type Options struct {
	Organization           string           // default DefaultOrganization
	RootCommonName         string           // default DefaultRootCommonName
	IntermediateCommonName string           // default DefaultIntermediateCommonName
	Country                string           // default DefaultCountry
	Now                    func() time.Time // default time.Now
	// URLs are written into the intermediate and the leaves; default
	// URLsFor(DefaultBaseURL). They are applied to a loaded CA too: an
	// intermediate without them is re-issued (see load).
	URLs URLs
	// Linter lints every certificate before it is signed; default
	// lint.New, as a test CA when URLs are on loopback.
	Linter *lint.Linter
	// PreviousSealer, if set, opens CA keys sealed before the CA had a
	// key-encryption key of its own (earlier versions sealed them under the
	// one KEK that also seals customer keys). A key that opens only under it
	// is re-sealed under the CA's sealer when loaded, once; afterwards the
	// previous KEK no longer opens the CA's keys.
	PreviousSealer *keyseal.Sealer
	// Log, if set, is told when keys are re-sealed.
	Log func(msg string, args ...any)
}

func (o Options) withDefaults() Options {
	if o.Organization == "" {
		o.Organization = DefaultOrganization
	}
	if o.RootCommonName == "" {
		o.RootCommonName = DefaultRootCommonName
	}
	if o.IntermediateCommonName == "" {
		o.IntermediateCommonName = DefaultIntermediateCommonName
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Country == "" {
		o.Country = DefaultCountry
	}
	return o
}

// withLinks fills in what a loaded CA uses too.
func (o Options) withLinks() (Options, error) {
	if o.URLs == (URLs{}) {
		o.URLs = URLsFor(DefaultBaseURL)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Linter == nil {
		l, err := lint.New(lint.Options{TestCA: o.URLs.loopback()})
		if err != nil {
			return o, err
		}
		o.Linter = l
	}
	return o, nil
}

// Authority is a two-tier CA: a self-signed root and an intermediate that
// signs leaves. It is safe for concurrent use.
type Authority struct {
	root, intermediate *x509.Certificate
	signer             crypto.Signer // the intermediate's key
	rootSigner         crypto.Signer // the root's key: signs the root's CRL (crl.go)
	roots, inters      *x509.CertPool
	rootPEM, chainPEM  string
	urls               URLs
	linter             *lint.Linter
	// previous are intermediates the current one replaced (re-issued
	// with the same key), newest last.
	previous []*x509.Certificate
}

// ChainPEMFor returns the intermediate in PEM that issued leaf (DER): the
// current one, or for a certificate issued before the intermediate was
// re-issued under another name, the one it names as issuer.
func (a *Authority) ChainPEMFor(leafDER []byte) string {
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil || bytes.Equal(leaf.RawIssuer, a.intermediate.RawSubject) {
		return a.chainPEM
	}
	for i := len(a.previous) - 1; i >= 0; i-- {
		if p := a.previous[i]; bytes.Equal(leaf.RawIssuer, p.RawSubject) && leaf.CheckSignatureFrom(p) == nil {
			return string(pemCert(p.Raw))
		}
	}
	return a.chainPEM
}

// LoadOrCreate loads the CA kept in dir, or creates one there when dir holds
// none of its files (creating dir with mode 0700 if needed).
//
// A new CA has an ECDSA P-384 root valid for 20 years and an ECDSA P-256
// intermediate valid for 5 years (path length 0, key usage certSign, cRLSign
// and digitalSignature, extended key usage serverAuth as BR 7.1.2.2 wants for
// TLS subordinate CAs). Certificates are written as root.pem and
// intermediate.pem (mode 0644), keys sealed with sealer as root.key.sealed
// and intermediate.key.sealed (mode 0600), each through a temporary file and
// a rename.
//
// When dir holds some of these files but not all, LoadOrCreate returns an
// error wrapping ErrIncomplete rather than make a new key over an old one.
//
// Only one process may own dir: two creating a CA at once in an empty folder
// could mix their files.
func LoadOrCreate(dir string, sealer *keyseal.Sealer, opts Options) (*Authority, error) {
	if sealer == nil {
		return nil, errors.New("ca: no key sealer")
	}
	files := []string{RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile}
	var present, missing []string
	for _, name := range files {
		_, err := os.Lstat(filepath.Join(dir, name))
		switch {
		case err == nil:
			present = append(present, name)
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
		default:
			return nil, fmt.Errorf("ca: looking for %s: %w", name, err)
		}
	}
	opts, err := opts.withLinks()
	if err != nil {
		return nil, err
	}
	switch {
	case len(present) == 0:
		return create(dir, sealer, opts.withDefaults())
	case len(missing) == 0:
		return load(dir, sealer, opts)
	default:
		return nil, fmt.Errorf("%w: %s has %s but not %s; restore the missing files from a backup, or empty the folder to create a new CA (whose root every client will then have to trust anew)",
			ErrIncomplete, dir, strings.Join(present, ", "), strings.Join(missing, ", "))
	}
}

func create(dir string, sealer *keyseal.Sealer, opts Options) (*Authority, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: making root key: %w", err)
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: making intermediate key: %w", err)
	}
	notBefore := opts.Now().Add(-backdate).UTC().Truncate(time.Second)

	rootSKI, err := keyID(rootKey.Public())
	if err != nil {
		return nil, err
	}
	rootSerial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          rootSerial,
		Subject:               subject(opts.Country, opts.RootCommonName, opts.Organization),
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(rootValidityYears, 0, 0).Add(-time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          rootSKI,
		// x509 sets the AKI only when issuer and subject differ; a root
		// may carry its own (BR 7.1.2.1.3) and some tools expect one.
		AuthorityKeyId: rootSKI,
	}
	// A root's linted form carries the throwaway key (lint.Linter), so it
	// is not compared with the real one.
	_, rootLint, err := opts.Linter.Certificate("root", rootTmpl, nil, rootKey.Public(), rootKey.Public())
	if err != nil {
		return nil, fmt.Errorf("ca: linting root: %w", err)
	}
	logNotices(opts, "root", rootLint)
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: signing root: %w", err)
	}

	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing new root: %w", err)
	}

	interName, err := asn1.Marshal(subject(opts.Country, opts.IntermediateCommonName, opts.Organization).ToRDNSequence())
	if err != nil {
		return nil, fmt.Errorf("ca: encoding intermediate subject: %w", err)
	}
	inter, err := issueIntermediate(root, rootKey, interKey, interName,
		notBefore, notBefore.AddDate(intermediateValidityYears, 0, 0).Add(-time.Second), opts)
	if err != nil {
		return nil, err
	}
	interDER := inter.Raw

	sealedRoot, err := sealer.Seal(rootKey, rootKeyOwner)
	if err != nil {
		return nil, fmt.Errorf("ca: sealing root key: %w", err)
	}
	sealedInter, err := sealer.Seal(interKey, intermediateKeyOwner)
	if err != nil {
		return nil, fmt.Errorf("ca: sealing intermediate key: %w", err)
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: making folder: %w", err)
	}
	// Keys first: a crash part way leaves an incomplete folder, which
	// LoadOrCreate refuses, rather than certificates without keys being
	// mistaken for a CA.
	writes := []struct {
		name string
		data []byte
		perm fs.FileMode
	}{
		{RootKeyFile, sealedRoot, 0o600},
		{IntermediateKeyFile, sealedInter, 0o600},
		{RootCertFile, pemCert(rootDER), 0o644},
		{IntermediateCertFile, pemCert(interDER), 0o644},
	}
	for _, w := range writes {
		if err := writeFileAtomic(dir, w.name, w.data, w.perm); err != nil {
			return nil, err
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return newAuthority(root, inter, interKey, rootKey, opts)
}

// issueIntermediate signs an intermediate for interKey under root: path
// length 0, key usage certSign, cRLSign and digitalSignature, extended key
// usage serverAuth (BR 7.1.2.2 for TLS subordinate CAs), anyPolicy, and the
// root's AIA caIssuers and CRL distribution point. It is linted first.
func issueIntermediate(root *x509.Certificate, rootKey, interKey crypto.Signer, rawSubject []byte, notBefore, notAfter time.Time, opts Options) (*x509.Certificate, error) {
	interSKI, err := keyID(interKey.Public())
	if err != nil {
		return nil, err
	}
	interSerial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          interSerial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          interSKI,
		Policies:              []x509.OID{oidAnyPolicy},
		IssuingCertificateURL: []string{opts.URLs.RootCert},
		CRLDistributionPoints: []string{opts.URLs.RootCRL},
	}
	// A re-issue keeps the subject exactly as it was encoded.
	tmpl.RawSubject = rawSubject
	linted, res, err := opts.Linter.Certificate("intermediate", tmpl, root, interKey.Public(), nil)
	if err != nil {
		return nil, fmt.Errorf("ca: linting intermediate: %w", err)
	}
	logNotices(opts, "intermediate", res)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, interKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: signing intermediate: %w", err)
	}
	if err := lint.Check(linted, der); err != nil {
		return nil, fmt.Errorf("ca: intermediate: %w", err)
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing new intermediate: %w", err)
	}
	return inter, nil
}

// current reports whether inter carries what this version writes into an
// intermediate with these URLs.
func current(inter *x509.Certificate, u URLs) bool {
	return slices.Equal(inter.IssuingCertificateURL, []string{u.RootCert}) &&
		slices.Equal(inter.CRLDistributionPoints, []string{u.RootCRL}) &&
		slices.ContainsFunc(inter.Policies, func(o x509.OID) bool { return o.Equal(oidAnyPolicy) })
}

func load(dir string, sealer *keyseal.Sealer, opts Options) (*Authority, error) {
	root, err := readCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	inter, err := readCert(filepath.Join(dir, IntermediateCertFile))
	if err != nil {
		return nil, err
	}
	// The root key signs the root's CRL and re-issues the intermediate;
	// opening it also proves the folder and the KEK still belong together.
	rootKey, rootOld, err := readKey(dir, RootKeyFile, sealer, opts.PreviousSealer, rootKeyOwner)
	if err != nil {
		return nil, err
	}
	interKey, interOld, err := readKey(dir, IntermediateKeyFile, sealer, opts.PreviousSealer, intermediateKeyOwner)
	if err != nil {
		return nil, err
	}
	if !samePublicKey(root.PublicKey, rootKey.Public()) {
		return nil, fmt.Errorf("ca: %s does not hold the key of %s", RootKeyFile, RootCertFile)
	}
	if !samePublicKey(inter.PublicKey, interKey.Public()) {
		return nil, fmt.Errorf("ca: %s does not hold the key of %s", IntermediateKeyFile, IntermediateCertFile)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("ca: %s is not a self-signed CA certificate: %w", RootCertFile, err)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("ca: %s was not issued by %s: %w", IntermediateCertFile, RootCertFile, err)
	}
	// Only a folder that checked out is migrated to the CA's own KEK.
	for _, k := range []struct {
		old   bool
		file  string
		key   crypto.Signer
		owner string
	}{{rootOld, RootKeyFile, rootKey, rootKeyOwner}, {interOld, IntermediateKeyFile, interKey, intermediateKeyOwner}} {
		if !k.old {
			continue
		}
		sealed, err := sealer.Seal(k.key, k.owner)
		if err != nil {
			return nil, fmt.Errorf("ca: re-sealing %s: %w", k.file, err)
		}
		if err := writeFileAtomic(dir, k.file, sealed, 0o600); err != nil {
			return nil, err
		}
		if err := syncDir(dir); err != nil {
			return nil, err
		}
		if opts.Log != nil {
			opts.Log("CA key was sealed under the previous key-encryption key; re-sealed under the CA key-encryption key", "file", filepath.Join(dir, k.file))
		}
	}
	if !current(inter, opts.URLs) {
		if inter, err = reissue(dir, root, inter, rootKey, interKey, opts); err != nil {
			return nil, err
		}
	}
	a, err := newAuthority(root, inter, interKey, rootKey, opts)
	if err != nil {
		return nil, err
	}
	// The intermediates this one replaced, for the chains of what they
	// issued.
	olds, err := filepath.Glob(filepath.Join(dir, "intermediate-*.pem"))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	slices.Sort(olds)
	for _, p := range olds {
		c, err := readCert(p)
		if err != nil {
			return nil, err
		}
		if err := c.CheckSignatureFrom(root); err != nil {
			return nil, fmt.Errorf("ca: %s was not issued by %s: %w", p, RootCertFile, err)
		}
		a.previous = append(a.previous, c)
	}
	return a, nil
}

// reissue replaces an intermediate made by an earlier version (without AIA
// and CRL distribution point, asserting only the DV policy) or for other
// URLs by one with the same key, subject and validity and this version's
// extensions, signed by the same root. Certificates the old one issued
// verify under the new one (same name, same key, same key identifier), so
// nothing already issued breaks; the old certificate is kept beside it as
// intermediate-<serial>.pem. The root is never re-issued: its name and key
// are what clients trust.
func reissue(dir string, root, old *x509.Certificate, rootKey, interKey crypto.Signer, opts Options) (*x509.Certificate, error) {
	rawSubject := old.RawSubject
	if len(old.Subject.Country) == 0 {
		// Earlier versions wrote no countryName, which a CA certificate
		// must have (BR 7.1.2.10.2; zlint e_ca_country_name_missing): the
		// re-issue adds it. Leaves of the old certificate name the old
		// subject as their issuer, so they chain to the old certificate,
		// kept beside it and still served with them (ChainPEMFor).
		name := old.Subject
		country := opts.Country
		if country == "" {
			country = DefaultCountry
		}
		name.Country = []string{country}
		name.ExtraNames = nil
		var err error
		if rawSubject, err = asn1.Marshal(name.ToRDNSequence()); err != nil {
			return nil, fmt.Errorf("ca: encoding intermediate subject: %w", err)
		}
	}
	inter, err := issueIntermediate(root, rootKey, interKey, rawSubject, old.NotBefore, old.NotAfter, opts)
	if err != nil {
		return nil, fmt.Errorf("ca: re-issuing the intermediate with this version's extensions: %w", err)
	}
	backup := fmt.Sprintf("intermediate-%X.pem", old.SerialNumber)
	if err := writeFileAtomic(dir, backup, pemCert(old.Raw), 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(dir, IntermediateCertFile, pemCert(inter.Raw), 0o644); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	if opts.Log != nil {
		opts.Log("intermediate re-issued with the same key for this version's extensions (AIA, CRL distribution point, anyPolicy); the previous certificate is kept",
			"file", filepath.Join(dir, IntermediateCertFile), "previous", filepath.Join(dir, backup), "aia", opts.URLs.RootCert, "crl", opts.URLs.RootCRL)
	}
	return inter, nil
}

func newAuthority(root, inter *x509.Certificate, signer, rootSigner crypto.Signer, opts Options) (*Authority, error) {
	a := &Authority{
		urls:         opts.URLs,
		linter:       opts.Linter,
		root:         root,
		intermediate: inter,
		signer:       signer,
		rootSigner:   rootSigner,
		roots:        x509.NewCertPool(),
		inters:       x509.NewCertPool(),
		rootPEM:      string(pemCert(root.Raw)),
		chainPEM:     string(pemCert(inter.Raw)),
	}
	a.roots.AddCert(root)
	a.inters.AddCert(inter)
	return a, nil
}

// Root returns the root certificate. Callers must not modify it.
func (a *Authority) Root() *x509.Certificate { return a.root }

// Intermediate returns the intermediate certificate. Callers must not modify it.
func (a *Authority) Intermediate() *x509.Certificate { return a.intermediate }

// RootPEM returns the root certificate in PEM, for clients to trust.
func (a *Authority) RootPEM() string { return a.rootPEM }

// ChainPEM returns the intermediate certificate in PEM: what a server sends
// after its leaf. It does not include the root.
func (a *Authority) ChainPEM() string { return a.chainPEM }

// LeafRequest is a certificate to sign.
type LeafRequest struct {
	// PublicKey is the subject's key, from a CSR already checked by
	// pkg/csr.
	PublicKey crypto.PublicKey
	// Domains are normalized DNS names; the first is also the common name
	// (unless longer than 64 characters), all are SANs.
	Domains []string
	// NotBefore is the time of issuance (the caller's now). The
	// certificate's NotBefore is one minute earlier.
	NotBefore time.Time
	// Validity is the inclusive validity period, counted from the
	// backdated NotBefore: more than one minute (the backdating), whole
	// seconds, and at most certpolicy.MaxValidity(NotBefore).
	Validity time.Duration
	// Profile is the issuance profile (zero: DV).
	Profile profile.Profile
	// Organization is the organization the CA staff approved, for the
	// subject of an OV or EV profile.
	Organization profile.Organization
	// Serial is the serial number, reserved by the caller before signing
	// (NewSerial); nil draws a fresh one.
	Serial *big.Int
}

// NewSerial draws a serial number as the CA does for every certificate (64
// bits of randomness and more, BR 7.1), for a caller that records it before
// signing.
func NewSerial() (*big.Int, error) { return randomSerial() }

// ErrProfile is returned (wrapped) by Sign when the request does not fit
// its profile: an EV wildcard, or an organization that cannot make the
// subject (profile.ErrSubject).
var ErrProfile = errors.New("ca: request does not fit its profile")

// Signed is a new leaf with the lint notices on its to-be-signed form.
type Signed struct {
	Cert    *x509.Certificate
	Notices []string
}

// Sign issues a TLS server certificate from the intermediate, and checks the
// result chains to the root for every domain before returning it.
//
// The leaf has a random positive 128-bit serial, key usage digitalSignature
// (and keyEncipherment for RSA keys), extended key usage serverAuth, critical
// basicConstraints cA=false, an authority key identifier and the
// domain-validated policy. NotAfter is NotBefore+Validity-1s because RFC 5280
// validity includes both ends.
func (a *Authority) Sign(req LeafRequest) (*x509.Certificate, error) {
	s, err := a.SignLinted(req)
	if err != nil {
		return nil, err
	}
	return s.Cert, nil
}

// SignLinted is Sign, also returning the lint notices. The to-be-signed
// leaf is first signed by a throwaway key under a mirror of the
// intermediate and linted with zlint; an error or warning refuses it
// (wrapping lint.ErrLint, as a *lint.Error naming the lints), and the real
// certificate must have the linted one's to-be-signed bytes.
func (a *Authority) SignLinted(req LeafRequest) (*Signed, error) {
	if req.Profile.Level == "" {
		req.Profile = profile.Profiles[profile.DV]
	}
	if len(req.Domains) == 0 {
		return nil, errors.New("ca: no domains to sign for")
	}
	if slices.Contains(req.Domains, "") {
		return nil, errors.New("ca: empty domain name")
	}
	if !req.Profile.Wildcards && slices.ContainsFunc(req.Domains, func(d string) bool { return strings.HasPrefix(d, "*.") }) {
		return nil, fmt.Errorf("%w: %s certificates cannot hold a wildcard name (EV Guidelines 9.8.1)", ErrProfile, req.Profile.Level)
	}
	rawSubject, err := req.Profile.Subject(req.Organization)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProfile, err)
	}
	alg, err := csr.Algorithm(req.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ca: refusing key: %w", err)
	}
	if req.NotBefore.IsZero() {
		return nil, errors.New("ca: no issuance time")
	}
	maxValidity := certpolicy.MaxValidity(req.NotBefore)
	switch {
	case req.Validity <= 0:
		return nil, fmt.Errorf("%w: validity %v is not positive", ErrValidity, req.Validity)
	case req.Validity <= backdate:
		// The backdating counts against the validity (BRs measure from
		// NotBefore), so anything shorter would be expired on issue.
		return nil, fmt.Errorf("%w: validity %v is not longer than the %v backdating", ErrValidity, req.Validity, backdate)
	case req.Validity%time.Second != 0:
		// Certificate times have whole seconds, so a fraction would make
		// the real validity differ from the one asked for.
		return nil, fmt.Errorf("%w: validity %v is not a whole number of seconds", ErrValidity, req.Validity)
	case req.Validity > maxValidity:
		return nil, fmt.Errorf("%w: validity %s is over the maximum of %s for a certificate issued at %s (%s)",
			ErrValidity, days(req.Validity), days(maxValidity), req.NotBefore.UTC().Format(time.RFC3339), certpolicy.Version(req.NotBefore))
	}

	// Backdate for relying parties whose clocks are a little behind, and
	// truncate to the second that the certificate will actually record.
	notBefore := req.NotBefore.Add(-backdate).UTC().Truncate(time.Second)
	notAfter := notBefore.Add(req.Validity - time.Second)
	if notBefore.Before(a.intermediate.NotBefore) || notAfter.After(a.intermediate.NotAfter) {
		return nil, fmt.Errorf("ca: a certificate valid from %s to %s would outlive the intermediate CA, valid from %s to %s; shorten the validity or rotate the intermediate",
			notBefore.Format(time.RFC3339), notAfter.Format(time.RFC3339),
			a.intermediate.NotBefore.UTC().Format(time.RFC3339), a.intermediate.NotAfter.UTC().Format(time.RFC3339))
	}

	serial := req.Serial
	if serial == nil {
		var err error
		if serial, err = randomSerial(); err != nil {
			return nil, err
		}
	}
	usage := x509.KeyUsageDigitalSignature
	if strings.HasPrefix(string(alg), "RSA-") {
		// Allows RSA key exchange for the old TLS clients that still
		// need it (BR 7.1.2.7.11 permits it for RSA keys only).
		usage |= x509.KeyUsageKeyEncipherment
	}
	ski, err := keyID(req.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            rawSubject,
		DNSNames:              req.Domains,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		Policies:              []x509.OID{req.Profile.Policy},
		// RFC 5280 4.2.1.2 asks for an SKI, BR 7.1.2.7.6 makes it NOT
		// RECOMMENDED; certflow carries it (issue 8), see lint.Exclusions.
		// x509 fills in the AKI from the intermediate's SKI.
		SubjectKeyId:          ski,
		IssuingCertificateURL: []string{a.urls.IntermediateCert},
		CRLDistributionPoints: []string{a.urls.IntermediateCRL},
		// No commonName (see profile.Profile): the subjectAltName holds
		// the names, and is critical when the subject is empty (DV).
	}
	what := "leaf for " + req.Domains[0]
	linted, res, err := a.linter.Certificate(what, tmpl, a.intermediate, req.PublicKey, nil)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.intermediate, req.PublicKey, a.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: signing leaf for %s: %w", req.Domains[0], err)
	}
	if err := lint.Check(linted, der); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", what, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing new leaf for %s: %w", req.Domains[0], err)
	}
	opts := x509.VerifyOptions{
		Roots:         a.roots,
		Intermediates: a.inters,
		CurrentTime:   notBefore.Add(backdate),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, d := range req.Domains {
		opts.DNSName = d
		if _, err := cert.Verify(opts); err != nil {
			return nil, fmt.Errorf("ca: new leaf does not verify for %s: %w", d, err)
		}
	}
	return &Signed{Cert: cert, Notices: res.Notices}, nil
}

// URLs are the URLs the CA writes into certificates.
func (a *Authority) URLs() URLs { return a.urls }

// Linter is the CA's linter, for CRLs (lint.Linter.CRL).
func (a *Authority) Linter() *lint.Linter { return a.linter }

// days formats d in days when it is whole days, as the BRs state limits.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

func subject(country, cn, org string) pkix.Name {
	n := pkix.Name{CommonName: cn}
	if country != "" {
		n.Country = []string{country}
	}
	if org != "" {
		n.Organization = []string{org}
	}
	return n
}

// randomSerial returns a positive serial from 128 random bits. As an unsigned
// value it is always positive; when its top bit is set DER adds a leading
// zero byte, giving 17 octets, within the 20 that RFC 5280 allows. BR 7.1
// asks for at least 64 bits from a CSPRNG.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("ca: making serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// keyID is the RFC 7093 section 2 method 1 key identifier: the leftmost 160
// bits of the SHA-256 of the subjectPublicKey bits.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ca: encoding public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("ca: decoding public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: %s holds no PEM CERTIFICATE block", path)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("ca: %s holds more than one certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing %s: %w", path, err)
	}
	return cert, nil
}

// readKey opens dir/name with sealer or, failing that, with previous (if
// set); old reports that only previous opened it.
func readKey(dir, name string, sealer, previous *keyseal.Sealer, owner string) (key crypto.Signer, old bool, err error) {
	path := filepath.Join(dir, name)
	sealed, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("ca: %w", err)
	}
	key, err = sealer.Open(sealed, owner)
	if err == nil {
		return key, false, nil
	}
	if previous != nil && errors.Is(err, keyseal.ErrOpen) {
		if key, perr := previous.Open(sealed, owner); perr == nil {
			return key, true, nil
		}
	}
	return nil, false, fmt.Errorf("ca: opening %s (is the CA key-encryption key the one the CA was created with?): %w", path, err)
}

// writeFileAtomic writes data to dir/name through a temporary file in the
// same folder, so that a crash never leaves a half-written file under name.
func writeFileAtomic(dir, name string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("ca: writing %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("ca: writing %s: %w", name, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// syncDir makes the renames into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ca: syncing folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ca: syncing folder: %w", err)
	}
	return nil
}

// logNotices records the lint notices of a CA certificate (a leaf's are
// stored with it).
func logNotices(opts Options, what string, r lint.Result) {
	if len(r.Notices) > 0 && opts.Log != nil {
		opts.Log("lint notices on the new "+what+" certificate", "notices", strings.Join(r.Notices, "; "))
	}
}
