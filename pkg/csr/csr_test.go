package csr

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/goodkey"
)

// RSA keys are slow to make, so each test binary makes each kind once.
var (
	rsaOnce             sync.Once
	rsa2048Key, rsa1024 *rsa.PrivateKey
	rsaE3Key            *rsa.PrivateKey
	rsaErr, rsaE3Err    error
	p256Once            sync.Once
	p256Key             *ecdsa.PrivateKey
)

func rsaKeys(t testing.TB) (k2048, k1024, kE3 *rsa.PrivateKey) {
	t.Helper()
	rsaOnce.Do(func() {
		var s crypto.Signer
		if s, rsaErr = GenerateKey(RSA2048); rsaErr != nil {
			return
		}
		rsa2048Key = s.(*rsa.PrivateKey)
		if rsa1024, rsaErr = rsa.GenerateKey(rand.Reader, 1024); rsaErr != nil {
			return
		}
		rsaE3Key, rsaE3Err = makeRSAE3(2048)
	})
	if rsaErr != nil {
		t.Fatalf("generating RSA test keys: %v", rsaErr)
	}
	return rsa2048Key, rsa1024, rsaE3Key
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	p256Once.Do(func() {
		var err error
		if p256Key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return p256Key
}

// makeRSAE3 builds an RSA key with public exponent 3 by hand, since
// rsa.GenerateKey always uses 65537.
func makeRSAE3(bits int) (*rsa.PrivateKey, error) {
	three := big.NewInt(3)
	one := big.NewInt(1)
	prime := func() (*big.Int, error) {
		for {
			p, err := rand.Prime(rand.Reader, bits/2)
			if err != nil {
				return nil, err
			}
			// e must be invertible mod p-1, so p-1 must not be a
			// multiple of 3.
			if new(big.Int).Mod(new(big.Int).Sub(p, one), three).Sign() != 0 {
				return p, nil
			}
		}
	}
	for {
		p, err := prime()
		if err != nil {
			return nil, err
		}
		q, err := prime()
		if err != nil {
			return nil, err
		}
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || n.BitLen() != bits {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(three, phi)
		if d == nil {
			continue
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 3}, D: d, Primes: []*big.Int{p, q}}
		k.Precompute()
		if err := k.Validate(); err != nil {
			return nil, err
		}
		return k, nil
	}
}

func toPEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func csrDER(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("x509.CreateCertificateRequest: %v", err)
	}
	return der
}

func csrPEM(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) string {
	t.Helper()
	return toPEM("CERTIFICATE REQUEST", csrDER(t, key, tmpl))
}

func names(cn string, dns ...string) *x509.CertificateRequest {
	return &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
}

// withSPKI re-encodes a CSR with another SubjectPublicKeyInfo, keeping the
// old signature; the result has a key x509 cannot make signatures with.
func withSPKI(t testing.TB, der, spki []byte) []byte {
	t.Helper()
	seq := func(parts ...[]byte) []byte {
		b, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: bytes.Join(parts, nil)})
		if err != nil {
			t.Fatalf("asn1.Marshal: %v", err)
		}
		return b
	}
	var outer, tbs, sigAlg, sig, version, subject, oldSPKI asn1.RawValue
	mustRest := func(rest []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("asn1.Unmarshal: %v", err)
		}
		return rest
	}
	mustRest(asn1.Unmarshal(der, &outer))
	rest := mustRest(asn1.Unmarshal(outer.Bytes, &tbs))
	rest = mustRest(asn1.Unmarshal(rest, &sigAlg))
	mustRest(asn1.Unmarshal(rest, &sig))
	rest = mustRest(asn1.Unmarshal(tbs.Bytes, &version))
	rest = mustRest(asn1.Unmarshal(rest, &subject))
	attrs := mustRest(asn1.Unmarshal(rest, &oldSPKI))
	return seq(seq(version.FullBytes, subject.FullBytes, spki, attrs), sigAlg.FullBytes, sig.FullBytes)
}

func marshalSPKI(t testing.TB, algo pkix.AlgorithmIdentifier, key []byte) []byte {
	t.Helper()
	b, err := asn1.Marshal(struct {
		Algo pkix.AlgorithmIdentifier
		Key  asn1.BitString
	}{algo, asn1.BitString{Bytes: key, BitLength: 8 * len(key)}})
	if err != nil {
		t.Fatalf("asn1.Marshal: %v", err)
	}
	return b
}

func reasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestParse(t *testing.T) {
	k2048, k1024, kE3 := rsaKeys(t)
	ecKey := p256(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	good := csrDER(t, ecKey, names("example.com", "example.com"))
	goodPEM := toPEM("CERTIFICATE REQUEST", good)

	flipped := bytes.Clone(good)
	// The signature BIT STRING is the last field, so the last byte is
	// part of the signature.
	flipped[len(flipped)-1] ^= 0x01

	dsaSPKI := marshalSPKI(t, pkix.AlgorithmIdentifier{
		Algorithm:  asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1},
		Parameters: asn1.RawValue{FullBytes: mustMarshal(t, struct{ P, Q, G *big.Int }{big.NewInt(23), big.NewInt(11), big.NewInt(4)})},
	}, mustMarshal(t, big.NewInt(8)))
	k1Point := append([]byte{4}, bytes.Repeat([]byte{1}, 64)...)
	secp256k1SPKI := marshalSPKI(t, pkix.AlgorithmIdentifier{
		Algorithm:  oidPublicKeyECDSA,
		Parameters: asn1.RawValue{FullBytes: mustMarshal(t, asn1.ObjectIdentifier{1, 3, 132, 0, 10})},
	}, k1Point)
	hugeN := new(big.Int).Lsh(big.NewInt(1), 8199)
	hugeN.Add(hugeN, big.NewInt(1))
	hugeRSASPKI, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: hugeN, E: 65537})
	if err != nil {
		t.Fatalf("x509.MarshalPKIXPublicKey: %v", err)
	}

	var e3PEM string
	if kE3 != nil {
		if der, err := x509.CreateCertificateRequest(rand.Reader, names("example.com", "example.com"), kE3); err == nil {
			e3PEM = toPEM("CERTIFICATE REQUEST", der)
		} else {
			// If x509 ever refuses to sign with e=3, the case is
			// skipped below rather than failing.
			t.Logf("cannot sign with an e=3 key: %v", err)
		}
	} else {
		t.Logf("cannot build an e=3 key: %v", rsaE3Err)
	}

	cert := toPEM("CERTIFICATE", good)
	uri, _ := url.Parse("https://example.com/")

	tests := []struct {
		name string
		pem  string
		want Reason // "" means accepted
	}{
		{"empty", "", ReasonNotPEM},
		{"plain text", "hello", ReasonNotPEM},
		{"base64 without armor", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", ReasonNotPEM},
		{"unterminated block", "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n", ReasonNotPEM},
		{"trailing garbage", goodPEM + "garbage\n", ReasonNotPEM},
		{"leading text", "Certificate Request:\n" + goodPEM, ReasonNotPEM},
		{"two blocks", goodPEM + goodPEM, ReasonNotPEM},
		{"certificate block", cert, ReasonNotCSR},
		{"private key block", toPEM("PRIVATE KEY", []byte{1, 2, 3}), ReasonNotCSR},
		{"garbage DER", toPEM("CERTIFICATE REQUEST", []byte("this is not DER")), ReasonNotCSR},
		{"DER with trailing bytes", toPEM("CERTIFICATE REQUEST", append(bytes.Clone(good), 0)), ReasonNotCSR},
		{"flipped signature", toPEM("CERTIFICATE REQUEST", flipped), ReasonBadSignature},
		{"RSA-1024", csrPEM(t, k1024, names("example.com", "example.com")), goodkey.ReasonSize},
		{"RSA e=3", e3PEM, goodkey.ReasonExponent},
		{"RSA over 8192 bits", toPEM("CERTIFICATE REQUEST", withSPKI(t, good, hugeRSASPKI)), goodkey.ReasonSize},
		{"Ed25519", csrPEM(t, edKey, names("example.com", "example.com")), ReasonUnsupportedKey},
		{"ECDSA P-224", csrPEM(t, p224, names("example.com", "example.com")), goodkey.ReasonCurve},
		{"ECDSA P-521", csrPEM(t, p521, names("example.com", "example.com")), goodkey.ReasonCurve},
		{"ECDSA secp256k1", toPEM("CERTIFICATE REQUEST", withSPKI(t, good, secp256k1SPKI)), goodkey.ReasonCurve},
		{"DSA", toPEM("CERTIFICATE REQUEST", withSPKI(t, good, dsaSPKI)), ReasonUnsupportedKey},
		{"IP SAN", csrPEM(t, ecKey, &x509.CertificateRequest{DNSNames: []string{"example.com"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}), ReasonForbiddenContent},
		{"email SAN", csrPEM(t, ecKey, &x509.CertificateRequest{DNSNames: []string{"example.com"}, EmailAddresses: []string{"a@example.com"}}), ReasonForbiddenContent},
		{"URI SAN", csrPEM(t, ecKey, &x509.CertificateRequest{DNSNames: []string{"example.com"}, URIs: []*url.URL{uri}}), ReasonForbiddenContent},
		{"good P-256", goodPEM, ""},
		{"good P-256 with surrounding whitespace", "\n\n  " + goodPEM + "\n\t\n", ""},
		{"good P-256 with CRLF", strings.ReplaceAll(goodPEM, "\n", "\r\n"), ""},
		{"good NEW CERTIFICATE REQUEST", toPEM("NEW CERTIFICATE REQUEST", good), ""},
		{"good P-384", csrPEM(t, p384, names("example.com", "example.com")), ""},
		{"good RSA-2048", csrPEM(t, k2048, names("example.com", "example.com")), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "RSA e=3" && tc.pem == "" {
				t.Skip("no CSR with an e=3 key could be made")
			}
			req, err := Parse(tc.pem)
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("Parse(%s) = %v; want reason %q", tc.name, err, tc.want)
			}
			if tc.want == "" {
				if req == nil {
					t.Fatalf("Parse(%s) returned a nil request and no error", tc.name)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Detail == "" {
				t.Errorf("Parse(%s) = %v; want an *Error with a Detail", tc.name, err)
			}
		})
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatalf("asn1.Marshal: %v", err)
	}
	return b
}

func TestWeakKeyDetail(t *testing.T) {
	_, k1024, _ := rsaKeys(t)
	_, err := Parse(csrPEM(t, k1024, names("example.com", "example.com")))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse(RSA-1024) = %v; want *Error", err)
	}
	if !strings.Contains(e.Detail, "1024 bits") || !strings.Contains(e.Detail, "2048") {
		t.Errorf("Parse(RSA-1024) detail = %q; want it to name 1024 bits and 2048", e.Detail)
	}
	if got := e.Error(); !strings.HasPrefix(got, "csr: KEY_SIZE: ") {
		t.Errorf("Error() = %q; want prefix %q", got, "csr: KEY_SIZE: ")
	}
}

func TestCheckNames(t *testing.T) {
	key := p256(t)
	tests := []struct {
		name    string
		tmpl    *x509.CertificateRequest
		domains []string
		want    Reason
		detail  []string // substrings the Detail must hold
	}{
		{"exact", names("example.com", "example.com", "www.example.com"), []string{"example.com", "www.example.com"}, "", nil},
		{"order and case", names("WWW.Example.com", "www.example.com", "EXAMPLE.com"), []string{"example.com", "www.example.com"}, "", nil},
		{"duplicates in CSR", names("", "example.com", "example.com", "Example.com"), []string{"example.com"}, "", nil},
		{"no CN", names("", "example.com", "www.example.com"), []string{"www.example.com", "example.com"}, "", nil},
		{"CN only", names("example.com"), []string{"example.com"}, "", nil},
		{"wildcard", names("*.example.com", "*.example.com", "example.com"), []string{"example.com", "*.example.com"}, "", nil},
		{"missing name", names("example.com", "example.com"), []string{"example.com", "www.example.com"}, ReasonNameMismatch, []string{"missing www.example.com"}},
		{"extra name", names("example.com", "example.com", "evil.example.net"), []string{"example.com"}, ReasonNameMismatch, []string{"evil.example.net"}},
		{"missing and extra", names("", "a.example.com"), []string{"b.example.com"}, ReasonNameMismatch, []string{"missing b.example.com", "a.example.com"}},
		{"CN not among SANs", names("other.example.com", "example.com"), []string{"example.com"}, ReasonNameMismatch, []string{"other.example.com"}},
		{"CN only, wrong name", names("other.example.com"), []string{"example.com"}, ReasonNameMismatch, []string{"missing example.com"}},
		{"no names at all", names(""), []string{"example.com"}, ReasonNameMismatch, []string{"missing example.com"}},
		{"IP SAN", &x509.CertificateRequest{DNSNames: []string{"example.com"}, IPAddresses: []net.IP{net.ParseIP("2001:db8::1")}}, []string{"example.com"}, ReasonForbiddenContent, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := x509.ParseCertificateRequest(csrDER(t, key, tc.tmpl))
			if err != nil {
				t.Fatalf("x509.ParseCertificateRequest: %v", err)
			}
			err = CheckNames(req, tc.domains)
			if got := reasonOf(err); got != tc.want {
				t.Fatalf("CheckNames(%q, %q) = %v; want reason %q", req.DNSNames, tc.domains, err, tc.want)
			}
			for _, s := range tc.detail {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("CheckNames(%q, %q) = %v; want it to mention %q", req.DNSNames, tc.domains, err, s)
				}
			}
		})
	}
}

func TestCheckNamesSeveralCNs(t *testing.T) {
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidCommonName, Value: "evil.example.net"},
			{Type: oidCommonName, Value: "example.com"},
		}},
		DNSNames: []string{"example.com"},
	}
	req, err := x509.ParseCertificateRequest(csrDER(t, p256(t), tmpl))
	if err != nil {
		t.Fatalf("x509.ParseCertificateRequest: %v", err)
	}
	if err := CheckNames(req, []string{"example.com"}); reasonOf(err) != ReasonNameMismatch {
		t.Errorf("CheckNames(two CNs) = %v; want reason %q", err, ReasonNameMismatch)
	}
}

func TestCheckNamesArguments(t *testing.T) {
	req, err := x509.ParseCertificateRequest(csrDER(t, p256(t), names("example.com", "example.com")))
	if err != nil {
		t.Fatalf("x509.ParseCertificateRequest: %v", err)
	}
	if err := CheckNames(nil, []string{"example.com"}); err == nil {
		t.Error("CheckNames(nil, ...) = nil; want an error")
	}
	if err := CheckNames(req, nil); err == nil {
		t.Error("CheckNames(req, nil) = nil; want an error")
	}
}

func TestCheck(t *testing.T) {
	k2048, _, _ := rsaKeys(t)
	der, err := Build(k2048, []string{"example.com", "www.example.com"})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	text := toPEM("CERTIFICATE REQUEST", der)
	if _, err := Check(text, []string{"www.example.com", "example.com"}); err != nil {
		t.Errorf("Check(good) = %v; want nil", err)
	}
	if _, err := Check(text, []string{"example.com"}); reasonOf(err) != ReasonNameMismatch {
		t.Errorf("Check(extra name) = %v; want reason %q", err, ReasonNameMismatch)
	}
	if _, err := Check("nope", []string{"example.com"}); reasonOf(err) != ReasonNotPEM {
		t.Errorf("Check(nope) = %v; want reason %q", err, ReasonNotPEM)
	}
}

func TestBuild(t *testing.T) {
	long := strings.Repeat("a", 60) + ".example.com" // 72 characters: too long for a CN
	tests := []struct {
		name    string
		alg     KeyAlgorithm
		domains []string
		wantCN  string
	}{
		{"P-256", ECDSAP256, []string{"example.com", "www.example.com"}, "example.com"},
		{"P-384", ECDSAP384, []string{"*.example.com"}, "*.example.com"},
		{"long first name", ECDSAP256, []string{long, "example.com"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := GenerateKey(tc.alg)
			if err != nil {
				t.Fatalf("GenerateKey(%q) = %v", tc.alg, err)
			}
			der, err := Build(key, tc.domains)
			if err != nil {
				t.Fatalf("Build(%q) = %v", tc.domains, err)
			}
			req, err := Check(toPEM("CERTIFICATE REQUEST", der), tc.domains)
			if err != nil {
				t.Fatalf("Check(Build(%q)) = %v; want nil", tc.domains, err)
			}
			if req.Subject.CommonName != tc.wantCN {
				t.Errorf("Build(%q) CN = %q; want %q", tc.domains, req.Subject.CommonName, tc.wantCN)
			}
			if alg, err := Algorithm(req.PublicKey); alg != tc.alg || err != nil {
				t.Errorf("Algorithm(Build(%q) key) = %q, %v; want %q, nil", tc.domains, alg, err, tc.alg)
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name    string
		key     crypto.Signer
		domains []string
	}{
		{"nil key", nil, []string{"example.com"}},
		{"no domains", p256(t), nil},
		{"empty domain", p256(t), []string{"example.com", ""}},
		{"Ed25519 key", edKey, []string{"example.com"}},
	}
	for _, tc := range tests {
		if _, err := Build(tc.key, tc.domains); err == nil {
			t.Errorf("Build(%s) = nil error; want an error", tc.name)
		}
	}
}

func TestAlgorithm(t *testing.T) {
	k2048, k1024, _ := rsaKeys(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	n3072 := roughModulus(t, 3072)
	n4096 := roughModulus(t, 4096)
	tests := []struct {
		name       string
		pub        crypto.PublicKey
		want       KeyAlgorithm
		wantReason Reason
	}{
		{"P-256", p256(t).Public(), ECDSAP256, ""},
		{"P-384", p384.Public(), ECDSAP384, ""},
		{"RSA-2048", k2048.Public(), RSA2048, ""},
		{"RSA-3072", &rsa.PublicKey{N: n3072, E: 65537}, "RSA-3072", ""},
		{"RSA-4096", &rsa.PublicKey{N: n4096, E: 65537}, RSA4096, ""},
		{"RSA-1024", k1024.Public(), "", goodkey.ReasonSize},
		{"RSA-4096 e=3", &rsa.PublicKey{N: n4096, E: 3}, "", goodkey.ReasonExponent},
		{"RSA-4096 even", &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 4095), E: 65537}, "", goodkey.ReasonSmallFactor},
		{"P-521", p521.Public(), "", goodkey.ReasonCurve},
		{"Ed25519", edPub, "", ReasonUnsupportedKey},
		{"nil", nil, "", ReasonUnsupportedKey},
		{"nil RSA", (*rsa.PublicKey)(nil), "", ReasonUnsupportedKey},
		{"string", "not a key", "", ReasonUnsupportedKey},
	}
	for _, tc := range tests {
		got, err := Algorithm(tc.pub)
		if got != tc.want || reasonOf(err) != tc.wantReason {
			t.Errorf("Algorithm(%s) = %q, %v; want %q, reason %q", tc.name, got, err, tc.want, tc.wantReason)
		}
	}
}

// roughModulus is a random odd number of bits bits without a prime factor
// below 752: it passes the default key policy as a modulus (a product of
// two unknown large factors, as far as the policy can tell) and is much
// faster to make than an RSA key.
func roughModulus(t testing.TB, bits int) *big.Int {
	t.Helper()
	small := goodkey.PrimesProduct(752)
	for {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		if err != nil {
			t.Fatal(err)
		}
		n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
		if new(big.Int).GCD(nil, nil, n, small).Cmp(big.NewInt(1)) == 0 {
			return n
		}
	}
}

func TestGenerateKeyUnknown(t *testing.T) {
	if k, err := GenerateKey("DSA-1024"); err == nil {
		t.Errorf("GenerateKey(DSA-1024) = %T, nil; want an error", k)
	}
}

func BenchmarkParseP256(b *testing.B) {
	key := p256(b)
	der, err := Build(key, []string{"example.com", "www.example.com"})
	if err != nil {
		b.Fatal(err)
	}
	text := toPEM("CERTIFICATE REQUEST", der)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildP256(b *testing.B) {
	key := p256(b)
	domains := []string{"example.com", "www.example.com"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(key, domains); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckerPolicy checks that a CSR goes through the policy it is given:
// its refusals keep their reasons, and its other errors are not refusals.
func TestCheckerPolicy(t *testing.T) {
	key := p256(t)
	pemText := csrPEM(t, key, names("example.com", "example.com"))
	ctx := context.Background()

	caKey := goodkey.Default()
	if err := caKey.AddCAKey("intermediate", key.Public()); err != nil {
		t.Fatal(err)
	}
	h, err := goodkey.SPKIHash(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	blocked := goodkey.Default()
	blocked.Compromised = []goodkey.Blocklist{goodkey.NewSet(h)}
	down := goodkey.Default()
	down.Compromised = []goodkey.Blocklist{failingList{}}

	tests := []struct {
		name   string
		keys   KeyPolicy
		reason Reason // "" = accepted
	}{
		{"zero Checker (default policy)", nil, ""},
		{"default policy", goodkey.Default(), ""},
		{"the CA's key", caKey, goodkey.ReasonIsCAKey},
		{"a compromised key", blocked, goodkey.ReasonCompromised},
	}
	for _, tc := range tests {
		_, err := Checker{Keys: tc.keys}.Check(ctx, pemText, []string{"example.com"})
		if got := reasonOf(err); got != tc.reason || (tc.reason == "" && err != nil) {
			t.Errorf("Checker(%s).Check = %v; want reason %q", tc.name, err, tc.reason)
		}
	}
	_, err = Checker{Keys: down}.Parse(ctx, pemText)
	var e *Error
	if err == nil || errors.As(err, &e) || !errors.Is(err, apierr.ErrUnavailable) {
		t.Errorf("Checker(blocklist down).Parse = %v; want the Unavailable error, not a refusal", err)
	}
}

type failingList struct{}

func (failingList) Contains(context.Context, goodkey.Hash) (bool, error) {
	return false, errors.New("store down")
}
