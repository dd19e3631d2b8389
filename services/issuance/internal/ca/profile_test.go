package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	zlintlint "github.com/zmap/zlint/v3/lint"

	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/services/issuance/internal/lint"
	"github.com/certflow/certflow/services/issuance/internal/profile"
)

var approved = profile.Organization{
	Name: "Example Trading Ltd", Type: "enterprise", RegistrationNumber: "91330100MA2XXXXX",
	Country: "CN", Province: "Zhejiang", City: "Hangzhou",
}

// zlintClean lints a real certificate with every zlint lint (only those
// in lint.Exclusions and lint.TestCAExclusions left out, each justified
// there) and fails on any error or warning.
func zlintClean(t *testing.T, what string, der []byte) {
	t.Helper()
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("%s: zcrypto: %v", what, err)
	}
	var skip []string
	for n := range lint.Exclusions {
		skip = append(skip, n)
	}
	for n := range lint.TestCAExclusions {
		skip = append(skip, n)
	}
	reg, err := zlintlint.GlobalRegistry().Filter(zlintlint.FilterOptions{ExcludeNames: skip})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range zlint.LintCertificateEx(zc, reg).Results {
		if r.Status == zlintlint.Error || r.Status == zlintlint.Warn || r.Status == zlintlint.Fatal {
			t.Errorf("%s: zlint %s = %s %s", what, name, r.Status, r.Details)
		}
	}
}

func opensslVerify(t *testing.T, a *Authority, leaf *x509.Certificate, policy string) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	dir := t.TempDir()
	write := func(name string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"verify", "-CAfile", write("root.pem", a.Root().Raw), "-untrusted", write("inter.pem", a.Intermediate().Raw),
		"-purpose", "sslserver", "-policy", policy, "-explicit_policy", write("leaf.pem", leaf.Raw)}
	if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
		t.Errorf("openssl %s = %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestSignProfiles issues each profile with each key type and checks
// subject, policy and extensions, zlint (zero errors, zero warnings) and
// openssl's policy check.
func TestSignProfiles(t *testing.T) {
	now := time.Now()
	a, _, _ := newCA(t, now.Add(-time.Hour))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]string, 250)
	for i := range many {
		many[i] = fmt.Sprintf("host%03d.example.com", i)
	}
	tests := []struct {
		name    string
		level   profile.Level
		key     crypto.PublicKey
		domains []string
		subject string // pkix.Name.String of the subject
		policy  string
	}{
		{"DV ECDSA", profile.DV, p256Key(t).Public(), []string{"www.example.com"}, "", "2.23.140.1.2.1"},
		{"DV RSA", profile.DV, rsaKey.Public(), []string{"www.example.com", "example.com"}, "", "2.23.140.1.2.1"},
		{"DV wildcard", profile.DV, p256Key(t).Public(), []string{"*.example.com", "example.com"}, "", "2.23.140.1.2.1"},
		{"DV 250 names", profile.DV, p256Key(t).Public(), many, "", "2.23.140.1.2.1"},
		{"OV ECDSA", profile.OV, p256Key(t).Public(), []string{"www.example.com"}, "O=Example Trading Ltd,L=Hangzhou,ST=Zhejiang,C=CN", "2.23.140.1.2.2"},
		{"OV RSA wildcard", profile.OV, rsaKey.Public(), []string{"*.example.com"}, "O=Example Trading Ltd,L=Hangzhou,ST=Zhejiang,C=CN", "2.23.140.1.2.2"},
		{"EV ECDSA", profile.EV, p256Key(t).Public(), []string{"secure.example.com"}, "SERIALNUMBER=91330100MA2XXXXX,O=Example Trading Ltd,L=Hangzhou,ST=Zhejiang,C=CN,1.3.6.1.4.1.311.60.2.1.1=#130848616e677a686f75,1.3.6.1.4.1.311.60.2.1.2=#13085a68656a69616e67,1.3.6.1.4.1.311.60.2.1.3=#1302434e,2.5.4.15=#131450726976617465204f7267616e697a6174696f6e", "2.23.140.1.1"},
		{"EV RSA", profile.EV, rsaKey.Public(), []string{"secure.example.com"}, "", "2.23.140.1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := a.SignLinted(LeafRequest{PublicKey: tc.key, Domains: tc.domains, NotBefore: now, Validity: certpolicy.DefaultValidity(now),
				Profile: profile.Profiles[tc.level], Organization: approved})
			if err != nil {
				t.Fatalf("SignLinted(%s) = %v", tc.level, err)
			}
			leaf := s.Cert
			if tc.subject != "" && leaf.Subject.String() != tc.subject {
				t.Errorf("subject = %q; want %q", leaf.Subject.String(), tc.subject)
			}
			if tc.level == profile.DV && len(leaf.Subject.Names) != 0 {
				t.Errorf("DV subject = %q; want empty", leaf.Subject)
			}
			if len(leaf.Policies) != 1 || leaf.Policies[0].String() != tc.policy {
				t.Errorf("policies = %v; want %s", leaf.Policies, tc.policy)
			}
			u := a.URLs()
			if !slices.Equal(leaf.IssuingCertificateURL, []string{u.IntermediateCert}) || !slices.Equal(leaf.CRLDistributionPoints, []string{u.IntermediateCRL}) {
				t.Errorf("AIA = %q, CRLDP = %q; want %q, %q", leaf.IssuingCertificateURL, leaf.CRLDistributionPoints, u.IntermediateCert, u.IntermediateCRL)
			}
			if len(leaf.SubjectKeyId) == 0 || string(leaf.AuthorityKeyId) != string(a.Intermediate().SubjectKeyId) {
				t.Errorf("SKI = %x, AKI = %x; want an SKI and the intermediate's", leaf.SubjectKeyId, leaf.AuthorityKeyId)
			}
			if !slices.Equal(leaf.DNSNames, tc.domains) {
				t.Errorf("SANs = %d names; want %d", len(leaf.DNSNames), len(tc.domains))
			}
			zlintClean(t, tc.name, leaf.Raw)
			opensslVerify(t, a, leaf, tc.policy)
		})
	}
	zlintClean(t, "root", a.Root().Raw)
	zlintClean(t, "intermediate", a.Intermediate().Raw)
	for name, c := range map[string]*x509.Certificate{"root": a.Root(), "intermediate": a.Intermediate()} {
		if len(c.Subject.Country) != 1 || len(c.Subject.Organization) != 1 || c.Subject.CommonName == "" {
			t.Errorf("%s subject = %q; want C, O and CN", name, c.Subject)
		}
	}
	in := a.Intermediate()
	if !slices.Equal(in.IssuingCertificateURL, []string{a.URLs().RootCert}) || !slices.Equal(in.CRLDistributionPoints, []string{a.URLs().RootCRL}) ||
		!in.MaxPathLenZero || !slices.Equal(in.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("intermediate AIA %q CRLDP %q pathlen0 %v EKU %v; want the root's URLs, path length 0 and serverAuth", in.IssuingCertificateURL, in.CRLDistributionPoints, in.MaxPathLenZero, in.ExtKeyUsage)
	}
}

// TestSignProfileRefusals: what a profile cannot sign.
func TestSignProfileRefusals(t *testing.T) {
	now := time.Now()
	a, _, _ := newCA(t, now.Add(-time.Hour))
	noCountry := approved
	noCountry.Country = "China"
	noLocation := approved
	noLocation.Province, noLocation.City = "", ""
	unknownType := approved
	unknownType.Type = "club"
	tests := []struct {
		name    string
		level   profile.Level
		domains []string
		org     profile.Organization
		want    error
	}{
		{"EV wildcard", profile.EV, []string{"*.example.com"}, approved, ErrProfile},
		{"OV without organization", profile.OV, []string{"www.example.com"}, profile.Organization{}, ErrProfile},
		{"OV country not ISO", profile.OV, []string{"www.example.com"}, noCountry, ErrProfile},
		{"OV without province or city", profile.OV, []string{"www.example.com"}, noLocation, ErrProfile},
		{"EV unknown business category", profile.EV, []string{"www.example.com"}, unknownType, ErrProfile},
		// A name with no public TLD is a lint error for a CA on a public
		// URL; the test CA here is on loopback, so this lints as .invalid
		// would under a production CA only through the linter below.
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.SignLinted(LeafRequest{PublicKey: p256Key(t).Public(), Domains: tc.domains, NotBefore: now, Validity: certpolicy.DefaultValidity(now),
				Profile: profile.Profiles[tc.level], Organization: tc.org})
			if !errors.Is(err, tc.want) {
				t.Errorf("SignLinted(%s %q, %+v) = %v; want %v", tc.level, tc.domains, tc.org, err, tc.want)
			}
		})
	}
	// A production CA (public URLs) lints with every lint: a name under a
	// reserved TLD is refused with the lint's name.
	prod, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca"), newSealer(t), Options{Now: fixedNow(now.Add(-time.Hour)), URLs: URLsFor("http://ca.example.com")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = prod.SignLinted(LeafRequest{PublicKey: p256Key(t).Public(), Domains: []string{"www.shop.test"}, NotBefore: now, Validity: certpolicy.DefaultValidity(now)})
	var le *lint.Error
	if !errors.As(err, &le) || !slices.Contains(le.Names(), "e_dnsname_not_valid_tld") {
		t.Errorf("production SignLinted(www.shop.test) = %v; want lint error e_dnsname_not_valid_tld", err)
	}
}

// TestLoadMigratesIntermediate: a CA folder whose intermediate was made
// by an earlier version (no AIA, no CRL distribution point, only the DV
// policy) is loaded by this one: the intermediate is re-issued with the same
// key and subject, the old certificate is kept, and a leaf the old one
// issued verifies under the new chain.
func TestLoadMigratesIntermediate(t *testing.T) {
	now := time.Now()
	a, dir, s := newCA(t, now.Add(-time.Hour))
	rootKey, _, err := readKey(dir, RootKeyFile, s, nil, rootKeyOwner)
	if err != nil {
		t.Fatal(err)
	}
	interKey, _, err := readKey(dir, IntermediateKeyFile, s, nil, intermediateKeyOwner)
	if err != nil {
		t.Fatal(err)
	}
	// The root as earlier versions made it: no countryName.
	rootTmpl := &x509.Certificate{
		SerialNumber: mustSerial(t), Subject: pkix.Name{CommonName: DefaultRootCommonName, Organization: []string{DefaultOrganization}},
		NotBefore: a.Root().NotBefore, NotAfter: a.Root().NotAfter, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, SubjectKeyId: a.Root().SubjectKeyId, AuthorityKeyId: a.Root().SubjectKeyId,
	}
	oldRootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	oldRoot, _ := x509.ParseCertificate(oldRootDER)
	if err := os.WriteFile(filepath.Join(dir, RootCertFile), pemCert(oldRootDER), 0o644); err != nil {
		t.Fatal(err)
	}
	// The intermediate as earlier versions made it.
	oldTmpl := &x509.Certificate{
		SerialNumber: mustSerial(t), Subject: pkix.Name{CommonName: DefaultIntermediateCommonName, Organization: []string{DefaultOrganization}},
		NotBefore: a.Intermediate().NotBefore, NotAfter: a.Intermediate().NotAfter,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
		SubjectKeyId: a.Intermediate().SubjectKeyId, Policies: []x509.OID{profile.Profiles[profile.DV].Policy},
	}
	oldDER, err := x509.CreateCertificate(rand.Reader, oldTmpl, oldRoot, interKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := x509.ParseCertificate(oldDER)
	if err := os.WriteFile(filepath.Join(dir, IntermediateCertFile), pemCert(oldDER), 0o644); err != nil {
		t.Fatal(err)
	}
	// A leaf the old intermediate issued, as earlier versions did.
	leafTmpl := &x509.Certificate{SerialNumber: mustSerial(t), Subject: pkix.Name{CommonName: "old.example.com"}, DNSNames: []string{"old.example.com"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Policies: []x509.OID{profile.Profiles[profile.DV].Policy}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, old, p256Key(t).Public(), interKey)
	if err != nil {
		t.Fatal(err)
	}
	oldLeaf, _ := x509.ParseCertificate(leafDER)

	var logged []string
	b, err := LoadOrCreate(dir, s, Options{Log: func(msg string, _ ...any) { logged = append(logged, msg) }})
	if err != nil {
		t.Fatalf("LoadOrCreate(old folder) = %v", err)
	}
	if string(b.Root().Raw) != string(oldRootDER) {
		t.Errorf("root changed on load; want the earlier version's root kept as clients trust it")
	}
	in := b.Intermediate()
	if in.SerialNumber.Cmp(old.SerialNumber) == 0 || !current(in, b.URLs()) || !slices.Equal(in.Subject.Country, []string{DefaultCountry}) ||
		in.Subject.CommonName != old.Subject.CommonName ||
		!in.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(old.PublicKey) {
		t.Fatalf("intermediate after load = serial %x AIA %q; want a re-issue with the same name and key and this version's extensions", in.SerialNumber, in.IssuingCertificateURL)
	}
	if len(logged) != 1 {
		t.Errorf("logged %q; want one line about the re-issue", logged)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("intermediate-%X.pem", old.SerialNumber))); err != nil {
		t.Errorf("old intermediate not kept: %v", err)
	}
	// What the old intermediate issued still comes with it and verifies.
	chain := b.ChainPEMFor(oldLeaf.Raw)
	blk, _ := pem.Decode([]byte(chain))
	if blk == nil || string(blk.Bytes) != string(old.Raw) {
		t.Fatalf("ChainPEMFor(old leaf) is not the old intermediate")
	}
	if b.ChainPEMFor(in.Raw) != b.ChainPEM() {
		t.Errorf("ChainPEMFor(a current certificate) is not the current intermediate")
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(b.Root())
	inters.AddCert(old)
	if _, err := oldLeaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "old.example.com"}); err != nil {
		t.Errorf("a leaf of the old intermediate after the migration: %v", err)
	}
	zlintClean(t, "re-issued intermediate", in.Raw)
	// Loaded again, nothing changes.
	c, err := LoadOrCreate(dir, s, Options{Log: func(msg string, _ ...any) { t.Errorf("second load: %s", msg) }})
	if err != nil || c.Intermediate().SerialNumber.Cmp(in.SerialNumber) != 0 {
		t.Errorf("second LoadOrCreate = %v; want the same intermediate", err)
	}
	// A new leaf under the migrated CA lints clean.
	leaf, err := b.Sign(LeafRequest{PublicKey: p256Key(t).Public(), Domains: []string{"new.example.com"}, NotBefore: now, Validity: certpolicy.DefaultValidity(now)})
	if err != nil {
		t.Fatal(err)
	}
	zlintClean(t, "leaf after migration", leaf.Raw)
}

func mustSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
