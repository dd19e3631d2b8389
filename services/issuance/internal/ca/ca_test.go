package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/services/issuance/internal/keyseal"
	"github.com/certflow/certflow/services/issuance/internal/lint"
	"github.com/certflow/certflow/services/issuance/internal/profile"
)

// testNow is late 2026, when the maximum validity is 200 days.
var testNow = time.Date(2026, time.November, 21, 12, 0, 0, 0, time.UTC)

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func newSealer(t testing.TB) *keyseal.Sealer {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	s, err := keyseal.New(kek)
	if err != nil {
		t.Fatalf("keyseal.New: %v", err)
	}
	return s
}

func newCA(t testing.TB, now time.Time) (*Authority, string, *keyseal.Sealer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	s := newSealer(t)
	a, err := LoadOrCreate(dir, s, Options{Now: fixedNow(now)})
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return a, dir, s
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaErr  error
)

// rsaTestKey makes one RSA-2048 key per test binary; they are slow to make.
func rsaTestKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() { rsaKey, rsaErr = rsa.GenerateKey(rand.Reader, 2048) })
	if rsaErr != nil {
		t.Fatal(rsaErr)
	}
	return rsaKey
}

func p256Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fingerprint(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

func TestLoadOrCreateCreates(t *testing.T) {
	a, dir, _ := newCA(t, testNow)

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("folder mode = %v; want 0700", got)
	}
	for name, want := range map[string]fs.FileMode{
		RootCertFile: 0o644, IntermediateCertFile: 0o644,
		RootKeyFile: 0o600, IntermediateKeyFile: 0o600,
	} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("Stat(%s) = %v", name, err)
			continue
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v; want %v", name, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %q; want only the 4 CA files", names)
	}

	root, inter := a.Root(), a.Intermediate()
	nb := testNow.Add(-time.Minute)

	if k, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Errorf("root key = %T; want ECDSA P-384", root.PublicKey)
	}
	if root.Subject.CommonName != DefaultRootCommonName {
		t.Errorf("root CN = %q; want %q", root.Subject.CommonName, DefaultRootCommonName)
	}
	if !root.IsCA || !root.BasicConstraintsValid {
		t.Errorf("root IsCA = %v; want true", root.IsCA)
	}
	if !root.NotBefore.Equal(nb) || !root.NotAfter.Equal(nb.AddDate(20, 0, 0).Add(-time.Second)) {
		t.Errorf("root validity = %v .. %v; want 20 years from %v", root.NotBefore, root.NotAfter, nb)
	}
	if len(root.SubjectKeyId) == 0 || !bytes.Equal(root.SubjectKeyId, root.AuthorityKeyId) {
		t.Errorf("root SKI = %x, AKI = %x; want equal and present", root.SubjectKeyId, root.AuthorityKeyId)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}

	if k, ok := inter.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("intermediate key = %T; want ECDSA P-256", inter.PublicKey)
	}
	if inter.Subject.CommonName != DefaultIntermediateCommonName {
		t.Errorf("intermediate CN = %q; want %q", inter.Subject.CommonName, DefaultIntermediateCommonName)
	}
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate IsCA = %v, MaxPathLen = %d, MaxPathLenZero = %v; want true, 0, true", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; inter.KeyUsage != want {
		t.Errorf("intermediate KeyUsage = %b; want %b", inter.KeyUsage, want)
	}
	if !slices.Equal(inter.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("intermediate ExtKeyUsage = %v; want [serverAuth]", inter.ExtKeyUsage)
	}
	if !inter.NotBefore.Equal(nb) || !inter.NotAfter.Equal(nb.AddDate(5, 0, 0).Add(-time.Second)) {
		t.Errorf("intermediate validity = %v .. %v; want 5 years from %v", inter.NotBefore, inter.NotAfter, nb)
	}
	if len(inter.SubjectKeyId) == 0 || !bytes.Equal(inter.AuthorityKeyId, root.SubjectKeyId) {
		t.Errorf("intermediate SKI = %x, AKI = %x; want SKI present, AKI = root SKI %x", inter.SubjectKeyId, inter.AuthorityKeyId, root.SubjectKeyId)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}

	if !strings.Contains(a.RootPEM(), "-----BEGIN CERTIFICATE-----") || strings.Count(a.ChainPEM(), "BEGIN CERTIFICATE") != 1 {
		t.Errorf("RootPEM/ChainPEM are not one PEM certificate each")
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != a.RootPEM() {
		t.Errorf("RootPEM() differs from %s", RootCertFile)
	}
}

func TestLoadOrCreateOptions(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir, newSealer(t), Options{
		Organization: "Example Corp", RootCommonName: "Example Root", IntermediateCommonName: "Example Issuing CA", Now: fixedNow(testNow),
	})
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	if got := a.Root().Subject; got.CommonName != "Example Root" || !slices.Equal(got.Organization, []string{"Example Corp"}) {
		t.Errorf("root subject = %v; want CN=Example Root,O=Example Corp", got)
	}
	if got := a.Intermediate().Subject.CommonName; got != "Example Issuing CA" {
		t.Errorf("intermediate CN = %q; want %q", got, "Example Issuing CA")
	}
}

func TestLoadOrCreateLoads(t *testing.T) {
	a, dir, s := newCA(t, testNow)
	// Different options must not matter: an existing CA is loaded as is.
	b, err := LoadOrCreate(dir, s, Options{RootCommonName: "other", Now: fixedNow(testNow.AddDate(1, 0, 0))})
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if fingerprint(a.Root()) != fingerprint(b.Root()) {
		t.Errorf("second LoadOrCreate root fingerprint = %x; want %x", fingerprint(b.Root()), fingerprint(a.Root()))
	}
	if fingerprint(a.Intermediate()) != fingerprint(b.Intermediate()) {
		t.Errorf("second LoadOrCreate made a new intermediate")
	}
	// The loaded CA must be able to sign.
	leaf, err := b.Sign(LeafRequest{PublicKey: p256Key(t).Public(), Domains: []string{"example.com"}, NotBefore: testNow, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatalf("Sign with loaded CA: %v", err)
	}
	if err := leaf.CheckSignatureFrom(a.Intermediate()); err != nil {
		t.Errorf("leaf from loaded CA not signed by the original intermediate: %v", err)
	}
}

func TestLoadOrCreateWrongKEK(t *testing.T) {
	_, dir, _ := newCA(t, testNow)
	_, err := LoadOrCreate(dir, newSealer(t), Options{Now: fixedNow(testNow)})
	if !errors.Is(err, keyseal.ErrOpen) {
		t.Errorf("LoadOrCreate(wrong KEK) = %v; want keyseal.ErrOpen", err)
	}
}

// TestLoadOrCreateReseals: a CA sealed by an earlier version under the one
// KEK it had loads with that KEK as PreviousSealer, is re-sealed under the
// CA's own KEK, and then no longer opens with the previous one.
func TestLoadOrCreateReseals(t *testing.T) {
	a, dir, old := newCA(t, testNow)
	caSealer := newSealer(t)
	before, err := os.ReadFile(filepath.Join(dir, IntermediateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var logged int
	b, err := LoadOrCreate(dir, caSealer, Options{PreviousSealer: old, Log: func(string, ...any) { logged++ }})
	if err != nil {
		t.Fatalf("LoadOrCreate(CA KEK, previous KEK) = %v; want the old CA re-sealed", err)
	}
	if fingerprint(a.Intermediate()) != fingerprint(b.Intermediate()) {
		t.Fatalf("re-sealing made a new intermediate")
	}
	if logged != 2 {
		t.Errorf("re-sealing logged %d times; want once per key (2)", logged)
	}
	after, _ := os.ReadFile(filepath.Join(dir, IntermediateKeyFile))
	if string(before) == string(after) {
		t.Errorf("%s was not re-sealed", IntermediateKeyFile)
	}
	if _, err := LoadOrCreate(dir, old, Options{}); !errors.Is(err, keyseal.ErrOpen) {
		t.Errorf("LoadOrCreate(previous KEK) after re-sealing = %v; want keyseal.ErrOpen", err)
	}
	if _, err := LoadOrCreate(dir, caSealer, Options{PreviousSealer: old, Log: func(string, ...any) { t.Errorf("re-sealed twice") }}); err != nil {
		t.Errorf("LoadOrCreate(CA KEK) after re-sealing = %v", err)
	}
	// A wrong previous KEK opens nothing.
	_, dir2, _ := newCA(t, testNow)
	if _, err := LoadOrCreate(dir2, caSealer, Options{PreviousSealer: newSealer(t)}); !errors.Is(err, keyseal.ErrOpen) {
		t.Errorf("LoadOrCreate(two wrong KEKs) = %v; want keyseal.ErrOpen", err)
	}
}

func TestLoadOrCreateSwappedKeys(t *testing.T) {
	_, dir, s := newCA(t, testNow)
	// Swapping the sealed keys must fail: each is bound to its owner.
	rk := filepath.Join(dir, RootKeyFile)
	ik := filepath.Join(dir, IntermediateKeyFile)
	tmp := filepath.Join(dir, "swap")
	for _, mv := range [][2]string{{rk, tmp}, {ik, rk}, {tmp, ik}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadOrCreate(dir, s, Options{Now: fixedNow(testNow)}); !errors.Is(err, keyseal.ErrOpen) {
		t.Errorf("LoadOrCreate(swapped keys) = %v; want keyseal.ErrOpen", err)
	}
}

func TestLoadOrCreateIncomplete(t *testing.T) {
	for _, missing := range []string{RootCertFile, IntermediateCertFile, RootKeyFile, IntermediateKeyFile} {
		t.Run(missing, func(t *testing.T) {
			_, dir, s := newCA(t, testNow)
			before := map[string][]byte{}
			for _, name := range []string{RootCertFile, IntermediateCertFile, RootKeyFile, IntermediateKeyFile} {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				before[name] = b
			}
			if err := os.Remove(filepath.Join(dir, missing)); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir, s, Options{Now: fixedNow(testNow)})
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("LoadOrCreate(without %s) = %v; want ErrIncomplete", missing, err)
			}
			if !strings.Contains(err.Error(), missing) {
				t.Errorf("LoadOrCreate(without %s) = %q; want it to name the missing file", missing, err)
			}
			if _, statErr := os.Stat(filepath.Join(dir, missing)); !errors.Is(statErr, fs.ErrNotExist) {
				t.Errorf("LoadOrCreate(without %s) recreated it", missing)
			}
			for name, b := range before {
				if name == missing {
					continue
				}
				now, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || !bytes.Equal(now, b) {
					t.Errorf("LoadOrCreate(without %s) changed %s", missing, name)
				}
			}
		})
	}
}

func TestSign(t *testing.T) {
	a, _, _ := newCA(t, testNow)
	pool := x509.NewCertPool()
	pool.AddCert(a.Root())
	inters := x509.NewCertPool()
	inters.AddCert(a.Intermediate())

	tests := []struct {
		name      string
		key       crypto.Signer
		domains   []string
		verifyFor []string // extra host names the leaf must be valid for
		wantUsage x509.KeyUsage
	}{
		{"P-256", p256Key(t), []string{"example.com", "www.example.com"}, nil, x509.KeyUsageDigitalSignature},
		{"RSA-2048", rsaTestKey(t), []string{"example.org"}, nil, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{"wildcard", p256Key(t), []string{"*.example.com", "example.com"}, []string{"www.example.com", "api.example.com"}, x509.KeyUsageDigitalSignature},
	}
	validity := certpolicy.DefaultValidity(testNow)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := a.Sign(LeafRequest{PublicKey: tc.key.Public(), Domains: tc.domains, NotBefore: testNow, Validity: validity})
			if err != nil {
				t.Fatalf("Sign(%q) = %v", tc.domains, err)
			}
			for _, host := range append(slices.Clone(tc.domains), tc.verifyFor...) {
				_, err := leaf.Verify(x509.VerifyOptions{
					Roots: pool, Intermediates: inters, DNSName: host,
					CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				})
				if err != nil {
					t.Errorf("Verify(%q) = %v; want nil", host, err)
				}
			}
			if err := leaf.VerifyHostname("other.example.net"); err == nil {
				t.Errorf("VerifyHostname(other.example.net) = nil; want an error")
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ExtKeyUsage = %v; want [serverAuth]", leaf.ExtKeyUsage)
			}
			if leaf.KeyUsage != tc.wantUsage {
				t.Errorf("KeyUsage = %b; want %b", leaf.KeyUsage, tc.wantUsage)
			}
			if leaf.IsCA || !leaf.BasicConstraintsValid {
				t.Errorf("IsCA = %v, BasicConstraintsValid = %v; want false, true", leaf.IsCA, leaf.BasicConstraintsValid)
			}
			if !basicConstraintsCritical(leaf) {
				t.Errorf("basicConstraints is not critical")
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore) + time.Second; got != validity {
				t.Errorf("inclusive validity = %v; want %v", got, validity)
			}
			if want := testNow.Add(-time.Minute); !leaf.NotBefore.Equal(want) {
				t.Errorf("NotBefore = %v; want %v", leaf.NotBefore, want)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() < 64 || leaf.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %x has %d bits, sign %d; want positive, 64 to 128 bits", leaf.SerialNumber, leaf.SerialNumber.BitLen(), leaf.SerialNumber.Sign())
			}
			// DV: an empty subject (no commonName, BR 7.1.2.7.2), the names
			// in the subjectAltName.
			if len(leaf.Subject.Names) != 0 || !slices.Equal(leaf.DNSNames, tc.domains) {
				t.Errorf("subject = %q, SANs = %q; want empty, %q", leaf.Subject, leaf.DNSNames, tc.domains)
			}
			if !bytes.Equal(leaf.AuthorityKeyId, a.Intermediate().SubjectKeyId) {
				t.Errorf("AKI = %x; want intermediate SKI %x", leaf.AuthorityKeyId, a.Intermediate().SubjectKeyId)
			}
			if !slices.ContainsFunc(leaf.Policies, profile.Profiles[profile.DV].Policy.Equal) {
				t.Errorf("Policies = %v; want the domain-validated policy", leaf.Policies)
			}
		})
	}
}

func basicConstraintsCritical(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.String() == "2.5.29.19" {
			return e.Critical
		}
	}
	return false
}

func TestSignSerialsDiffer(t *testing.T) {
	a, _, _ := newCA(t, testNow)
	req := LeafRequest{PublicKey: p256Key(t).Public(), Domains: []string{"example.com"}, NotBefore: testNow, Validity: time.Hour}
	x, err := a.Sign(req)
	if err != nil {
		t.Fatal(err)
	}
	y, err := a.Sign(req)
	if err != nil {
		t.Fatal(err)
	}
	if x.SerialNumber.Cmp(y.SerialNumber) == 0 {
		t.Errorf("two leaves share serial %x", x.SerialNumber)
	}
}

func TestSignValidity(t *testing.T) {
	// A CA made well before SC-081 so that every date below is within
	// the intermediate's life.
	a, _, _ := newCA(t, time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC))
	const day = 24 * time.Hour
	sc081 := time.Date(2026, time.March, 15, 0, 0, 0, 0, time.UTC)
	key := p256Key(t).Public()
	tests := []struct {
		name      string
		notBefore time.Time
		validity  time.Duration
		wantErr   bool
		// lintErr: within the limit, but at the maximum, which the BRs
		// say SHOULD NOT be used and zlint warns about: refused.
		lintErr bool
	}{
		{"one second", testNow, time.Second, true, false},
		{"one minute: all backdating", testNow, time.Minute, true, false},
		{"61 seconds", testNow, time.Minute + time.Second, false, false},
		{"maximum late 2026", testNow, 200 * day, false, true},
		{"one day under the maximum late 2026", testNow, 199 * day, false, false},
		{"over maximum late 2026", testNow, 200*day + time.Second, true, false},
		{"398 days 1ns before SC-081", sc081.Add(-time.Nanosecond), 398 * day, false, true},
		{"397 days 1ns before SC-081", sc081.Add(-time.Nanosecond), 397 * day, false, false},
		{"399 days before SC-081", sc081.Add(-time.Nanosecond), 399 * day, true, false},
		{"398 days at SC-081", sc081, 398 * day, true, false},
		{"200 days at SC-081", sc081, 200 * day, false, false},
		{"zero", testNow, 0, true, false},
		{"negative", testNow, -day, true, false},
		{"fraction of a second", testNow, day + time.Millisecond, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := a.Sign(LeafRequest{PublicKey: key, Domains: []string{"example.com"}, NotBefore: tc.notBefore, Validity: tc.validity})
			if tc.lintErr {
				if !errors.Is(err, lint.ErrLint) {
					t.Errorf("Sign(validity %v at %v) = %v; want lint.ErrLint", tc.validity, tc.notBefore, err)
				}
				return
			}
			if tc.wantErr {
				if !errors.Is(err, ErrValidity) {
					t.Errorf("Sign(validity %v at %v) = %v; want ErrValidity", tc.validity, tc.notBefore, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Sign(validity %v at %v) = %v; want nil", tc.validity, tc.notBefore, err)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore) + time.Second; got != tc.validity {
				t.Errorf("Sign(validity %v) inclusive validity = %v", tc.validity, got)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	a, _, _ := newCA(t, testNow)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	good := p256Key(t).Public()
	inter := a.Intermediate()
	tests := []struct {
		name string
		req  LeafRequest
	}{
		{"no domains", LeafRequest{PublicKey: good, NotBefore: testNow, Validity: time.Hour}},
		{"empty domain", LeafRequest{PublicKey: good, Domains: []string{"example.com", ""}, NotBefore: testNow, Validity: time.Hour}},
		{"nil key", LeafRequest{Domains: []string{"example.com"}, NotBefore: testNow, Validity: time.Hour}},
		{"Ed25519 key", LeafRequest{PublicKey: edPub, Domains: []string{"example.com"}, NotBefore: testNow, Validity: time.Hour}},
		{"P-224 key", LeafRequest{PublicKey: p224.Public(), Domains: []string{"example.com"}, NotBefore: testNow, Validity: time.Hour}},
		{"no time", LeafRequest{PublicKey: good, Domains: []string{"example.com"}, Validity: time.Hour}},
		{"before the intermediate", LeafRequest{PublicKey: good, Domains: []string{"example.com"}, NotBefore: inter.NotBefore.Add(-time.Hour), Validity: time.Hour}},
		{"outlives the intermediate", LeafRequest{PublicKey: good, Domains: []string{"example.com"}, NotBefore: inter.NotAfter.Add(-24 * time.Hour), Validity: 47 * 24 * time.Hour}},
	}
	for _, tc := range tests {
		if leaf, err := a.Sign(tc.req); err == nil {
			t.Errorf("Sign(%s) = serial %x, nil; want an error", tc.name, leaf.SerialNumber)
		}
	}
}

// TestOpenSSLVerify checks the chain with an independent implementation.
func TestOpenSSLVerify(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	// openssl checks validity against the real clock.
	now := time.Now()
	a, _, _ := newCA(t, now)
	leaf, err := a.Sign(LeafRequest{PublicKey: p256Key(t).Public(), Domains: []string{"example.com", "*.example.com"}, NotBefore: now, Validity: certpolicy.DefaultValidity(now)})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	dir := t.TempDir()
	files := map[string]string{"root.pem": a.RootPEM(), "chain.pem": a.ChainPEM(), "leaf.pem": string(pemCert(leaf.Raw))}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, extra := range [][]string{nil, {"-purpose", "sslserver", "-x509_strict", "-verify_hostname", "www.example.com"}} {
		args := append([]string{"verify", "-CAfile", "root.pem", "-untrusted", "chain.pem"}, extra...)
		args = append(args, "leaf.pem")
		cmd := exec.Command(openssl, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "leaf.pem: OK") {
			t.Errorf("openssl %s = %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func BenchmarkSignP256(b *testing.B) {
	a, _, _ := newCA(b, testNow)
	req := LeafRequest{PublicKey: p256Key(b).Public(), Domains: []string{"example.com", "www.example.com"}, NotBefore: testNow, Validity: certpolicy.DefaultValidity(testNow)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Sign(req); err != nil {
			b.Fatal(err)
		}
	}
}
