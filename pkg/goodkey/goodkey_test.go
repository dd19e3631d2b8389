package goodkey

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certflow/certflow/pkg/apierr"
)

// readPub reads a committed public key. testdata holds public keys only:
// rsa4096.pub.pem and rsa8192.pub.pem are the public halves of keys made
// once with rsa.GenerateKey, whose private halves were never written (an
// RSA-8192 key takes about a minute to make, too slow for every run).
func readPub(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return pub
}

// fixture is a policy with every list in use: a Debian weak key list and a
// blocked-keys file written by the test from keys it made, the CA's keys
// and a second, run-time blocklist.
type fixture struct {
	policy             *Policy
	debian, compromise crypto.PublicKey
	caRoot, caInter    crypto.PublicKey
	runtime            *Set
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		debian:     rsaPub(t, &rsa2048Key2, 2048),
		compromise: ecPub(t, &p256Key2, elliptic.P256()),
		caRoot:     ecPub(t, &p384Key, elliptic.P384()),
		caInter:    mustEC(t, elliptic.P256()),
		runtime:    NewSet(),
	}
	dir := t.TempDir()
	debianFile := filepath.Join(dir, "blacklist.RSA-2048")
	write(t, debianFile, "# a Debian openssl-blacklist file, made by the test\n"+
		DebianLine(rsaPub(t, &rsa1024Key, 1024))+"\n"+DebianLine(f.debian.(*rsa.PublicKey))+"\n")
	h, err := SPKIHash(f.compromise)
	if err != nil {
		t.Fatal(err)
	}
	blockedFile := filepath.Join(dir, "blocked-keys.txt")
	write(t, blockedFile, "# SPKI SHA-256 of keys never to certify\n"+h.String()+"  compromised.pem\n")
	p, blocked, err := Files{DebianWeakKeys: debianFile, BlockedKeys: blockedFile}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if blocked.Len() != 1 || p.DebianWeak.Len() != 2 {
		t.Fatalf("Load() read %d blocked and %d Debian keys; want 1 and 2", blocked.Len(), p.DebianWeak.Len())
	}
	if err := p.AddCAKey("root", f.caRoot); err != nil {
		t.Fatal(err)
	}
	if err := p.AddCAKey("intermediate", f.caInter); err != nil {
		t.Fatal(err)
	}
	p.Compromised = append(p.Compromised, f.runtime)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	f.policy = p
	return f
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	p256 := ecPub(t, &p256Key, elliptic.P256())
	k2048 := rsaPub(t, &rsa2048Key, 2048)
	ed, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  func(testing.TB) crypto.PublicKey
		want string // "" = accepted
	}{
		{"RSA-2048", func(testing.TB) crypto.PublicKey { return k2048 }, ""},
		{"RSA-3072", func(t testing.TB) crypto.PublicKey { return rsaPub(t, &rsa3072Key, 3072) }, ""},
		{"RSA-4096", func(t testing.TB) crypto.PublicKey { return readPub(t, "rsa4096.pub.pem") }, ""},
		{"ECDSA P-256", func(testing.TB) crypto.PublicKey { return p256 }, ""},
		{"ECDSA P-384 (not the CA's)", func(t testing.TB) crypto.PublicKey { return mustEC(t, elliptic.P384()) }, ""},

		{"RSA-1024", func(t testing.TB) crypto.PublicKey { return rsaPub(t, &rsa1024Key, 1024) }, ReasonSize},
		{"RSA-8192", func(t testing.TB) crypto.PublicKey { return readPub(t, "rsa8192.pub.pem") }, ReasonSize},
		{"RSA-2040 (a multiple of 8 between the sizes)", func(t testing.TB) crypto.PublicKey { return odd(t, 2040) }, ReasonSize},
		{"RSA e=3", func(t testing.TB) crypto.PublicKey { return rsaE3Key.get(t, e3Key) }, ReasonExponent},
		{"RSA e=65539", func(testing.TB) crypto.PublicKey { return &rsa.PublicKey{N: k2048.N, E: 65539} }, ReasonExponent},
		{"RSA modulus 751*q", func(t testing.TB) crypto.PublicKey { return smallFactorKey.get(t, smallFactor) }, ReasonSmallFactor},
		{"RSA even modulus", func(testing.TB) crypto.PublicKey {
			return &rsa.PublicKey{N: new(big.Int).SetBit(new(big.Int).Set(k2048.N), 0, 0), E: RSAExponent}
		}, ReasonSmallFactor},
		{"RSA ROCA-structured", func(t testing.TB) crypto.PublicKey { return rocaKey.get(t, rocaStructured) }, ReasonROCA},
		{"RSA primes 2^100 apart", func(t testing.TB) crypto.PublicKey { return closeKey.get(t, closePrimes(100)) }, ReasonClosePrimes},
		{"RSA primes 2^516 apart (found after rounds)", func(t testing.TB) crypto.PublicKey { return closeKeyFar.get(t, closePrimes(516)) }, ReasonClosePrimes},
		{"RSA Debian weak", func(testing.TB) crypto.PublicKey { return f.debian }, ReasonDebianWeak},
		{"blocked-keys file", func(testing.TB) crypto.PublicKey { return f.compromise }, ReasonCompromised},
		{"CA root key", func(testing.TB) crypto.PublicKey { return f.caRoot }, ReasonIsCAKey},
		{"CA intermediate key", func(testing.TB) crypto.PublicKey { return f.caInter }, ReasonIsCAKey},
		{"ECDSA P-224", func(t testing.TB) crypto.PublicKey { return ecPub(t, &p224Key, elliptic.P224()) }, ReasonCurve},
		{"ECDSA P-521", func(t testing.TB) crypto.PublicKey { return ecPub(t, &p521Key, elliptic.P521()) }, ReasonCurve},
		{"ECDSA point off the curve", func(testing.TB) crypto.PublicKey {
			return &ecdsa.PublicKey{Curve: elliptic.P256(), X: p256.X, Y: new(big.Int).Add(p256.Y, big.NewInt(1))}
		}, ReasonInvalidPoint},
		{"ECDSA point at infinity", func(testing.TB) crypto.PublicKey {
			return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int), Y: new(big.Int)}
		}, ReasonInvalidPoint},
		{"ECDSA x >= p", func(testing.TB) crypto.PublicKey {
			return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Add(p256.X, elliptic.P256().Params().P), Y: p256.Y}
		}, ReasonInvalidPoint},
		{"ECDSA no coordinates", func(testing.TB) crypto.PublicKey { return &ecdsa.PublicKey{Curve: elliptic.P384()} }, ReasonInvalidPoint},
		{"Ed25519", func(testing.TB) crypto.PublicKey { return ed }, ReasonUnsupported},
		{"nil", func(testing.TB) crypto.PublicKey { return nil }, ReasonUnsupported},
		{"nil RSA", func(testing.TB) crypto.PublicKey { return (*rsa.PublicKey)(nil) }, ReasonUnsupported},
		{"RSA value, not pointer", func(testing.TB) crypto.PublicKey { return *k2048 }, ReasonUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key(t)
			err := f.policy.Check(context.Background(), key)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check(%s) = %v; want nil", tc.name, err)
				}
				return
			}
			if !errors.Is(err, &apierr.Error{Reason: tc.want}) {
				t.Fatalf("Check(%s) = %v (reason %q); want reason %s", tc.name, err, apierr.ReasonOf(err), tc.want)
			}
			if !errors.Is(err, apierr.ErrInvalidArgument) {
				t.Errorf("Check(%s) kind = %v; want InvalidArgument", tc.name, apierr.KindOf(err))
			}
			if msg := err.Error(); !strings.Contains(msg, "make a new key") {
				t.Errorf("Check(%s) message %q does not say to make a new key", tc.name, msg)
			}
		})
	}
}

func mustEC(t testing.TB, c elliptic.Curve) *ecdsa.PublicKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

// odd is a random odd modulus of bits bits: enough for the size check,
// which comes first.
func odd(t testing.TB, bits int) *rsa.PublicKey {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	return &rsa.PublicKey{N: n, E: RSAExponent}
}

// TestCheckOneReason makes sure each bad test key fails only its own check:
// with that check switched off, the key passes. Otherwise a table entry
// could pass for the wrong reason.
func TestCheckOneReason(t *testing.T) {
	tests := []struct {
		name  string
		key   func(testing.TB) crypto.PublicKey
		relax func(*Policy)
	}{
		{"RSA modulus 751*q", func(t testing.TB) crypto.PublicKey { return smallFactorKey.get(t, smallFactor) }, func(p *Policy) { p.SmallPrimes = big.NewInt(2) }},
		{"RSA primes 2^100 apart", func(t testing.TB) crypto.PublicKey { return closeKey.get(t, closePrimes(100)) }, func(p *Policy) { p.FermatRounds = 0 }},
		{"RSA primes 2^516 apart", func(t testing.TB) crypto.PublicKey { return closeKeyFar.get(t, closePrimes(516)) }, func(p *Policy) { p.FermatRounds = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Default()
			tc.relax(p)
			if err := p.Check(context.Background(), tc.key(t)); err != nil {
				t.Errorf("Check(%s) with the check relaxed = %v; want nil", tc.name, err)
			}
		})
	}
	// The ROCA key is refused by rocacheck alone, not by any other check.
	p := Default()
	k := rocaKey.get(t, rocaStructured)
	if err := p.checkRSA(k); !errors.Is(err, &apierr.Error{Reason: ReasonROCA}) {
		t.Fatalf("checkRSA(ROCA-structured) = %v; want %s", err, ReasonROCA)
	}
	if f := fermatFactor(k.N, 1000); f != nil {
		t.Errorf("the ROCA-structured key falls to Fermat too")
	}
}

func TestFermatFactor(t *testing.T) {
	k := closeKeyFar.get(t, closePrimes(516))
	f := fermatFactor(k.N, 110)
	if f == nil {
		t.Fatal("fermatFactor(primes 2^516 apart, 110) = nil; want a factor")
	}
	if new(big.Int).Mod(k.N, f).Sign() != 0 || f.Cmp(big.NewInt(1)) <= 0 || f.Cmp(k.N) >= 0 {
		t.Fatalf("fermatFactor returned %v, not a proper factor", f)
	}
	if fermatFactor(k.N, 1) != nil {
		t.Error("fermatFactor(primes 2^516 apart, 1) found a factor; the test key is too close to test the rounds")
	}
	for _, n := range []int64{0, -15, 1, 2, 9, 15, 21} {
		_ = fermatFactor(big.NewInt(n), 10) // must not panic or loop
	}
	if f := fermatFactor(big.NewInt(9), 1); f == nil || f.Int64() != 3 {
		t.Errorf("fermatFactor(9) = %v; want 3", f)
	}
}

func TestIsSquare(t *testing.T) {
	root, mod := new(big.Int), new(big.Int)
	for i := int64(0); i < 5000; i++ {
		x := big.NewInt(i)
		want := false
		for r := int64(0); r*r <= i; r++ {
			if r*r == i {
				want = true
			}
		}
		if got := isSquare(x, root, mod); got != want {
			t.Fatalf("isSquare(%d) = %v; want %v", i, got, want)
		}
	}
}

func TestBlocklistUnavailable(t *testing.T) {
	p := Default()
	p.Compromised = []Blocklist{failing{}}
	err := p.Check(context.Background(), ecPub(t, &p256Key, elliptic.P256()))
	if !errors.Is(err, apierr.ErrUnavailable) || apierr.ReasonOf(err) != ReasonBlocklistUnavailable {
		t.Fatalf("Check with a failing blocklist = %v; want Unavailable %s", err, ReasonBlocklistUnavailable)
	}
}

type failing struct{}

func (failing) Contains(context.Context, Hash) (bool, error) { return false, errors.New("store down") }

func TestRuntimeBlock(t *testing.T) {
	f := newFixture(t)
	key := ecPub(t, &p256Key, elliptic.P256())
	ctx := context.Background()
	if err := f.policy.Check(ctx, key); err != nil {
		t.Fatalf("Check(P-256) before blocking = %v; want nil", err)
	}
	h, err := SPKIHash(key)
	if err != nil {
		t.Fatal(err)
	}
	f.runtime.Add(h)
	if err := f.policy.Check(ctx, key); !errors.Is(err, &apierr.Error{Reason: ReasonCompromised}) {
		t.Fatalf("Check(P-256) after blocking = %v; want %s", err, ReasonCompromised)
	}
}

func TestReadSet(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		name, text string
		n          int
		ok         bool
	}{
		{"empty", "", 0, true},
		{"comments and blanks", "# x\n\n   \n", 0, true},
		{"one", h + "\n", 1, true},
		{"sha256sum output and comment", h + "  -\n" + strings.ToUpper(h) + " # same key\n", 1, true},
		{"short", "abcd\n", 0, false},
		{"not hex", strings.Repeat("zz", 32) + "\n", 0, false},
	}
	for _, tc := range tests {
		s, err := ReadSet(strings.NewReader(tc.text))
		if (err == nil) != tc.ok {
			t.Errorf("ReadSet(%s) error = %v; want ok %v", tc.name, err, tc.ok)
			continue
		}
		if err == nil && s.Len() != tc.n {
			t.Errorf("ReadSet(%s) has %d keys; want %d", tc.name, s.Len(), tc.n)
		}
	}
}

func TestReadDebianWeakKeys(t *testing.T) {
	k := rsaPub(t, &rsa2048Key2, 2048)
	line := DebianLine(k)
	if len(line) != 20 {
		t.Fatalf("DebianLine = %q; want 20 hex digits", line)
	}
	full := strings.Repeat("0", 20) + line // a whole SHA-1 whose tail is the line
	tests := []struct {
		name, text string
		want, ok   bool
	}{
		{"Debian format", "# comment\n" + line + "\n", true, true},
		{"full SHA-1", full + "\n", true, true},
		{"other keys", "00112233445566778899\n", false, true},
		{"bad length", "0011\n", false, false},
		{"not hex", "zz112233445566778899\n", false, false},
	}
	for _, tc := range tests {
		d, err := ReadDebianWeakKeys(strings.NewReader(tc.text))
		if (err == nil) != tc.ok {
			t.Errorf("ReadDebianWeakKeys(%s) error = %v; want ok %v", tc.name, err, tc.ok)
			continue
		}
		if err == nil && d.Contains(k) != tc.want {
			t.Errorf("ReadDebianWeakKeys(%s).Contains = %v; want %v", tc.name, !tc.want, tc.want)
		}
	}
}

func TestFilesLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	write(t, bad, "not a hash\n")
	for _, f := range []Files{
		{DebianWeakKeys: filepath.Join(dir, "missing")},
		{BlockedKeys: filepath.Join(dir, "missing")},
		{DebianWeakKeys: bad},
		{BlockedKeys: bad},
	} {
		if _, _, err := f.Load(); err == nil {
			t.Errorf("%+v.Load() = nil error; want one", f)
		}
	}
	p, blocked, err := Files{}.Load()
	if err != nil || p.DebianWeak != nil || blocked.Len() != 0 || len(p.Compromised) != 1 {
		t.Fatalf("Files{}.Load() = %+v, %v, %v; want the default policy with one empty blocklist", p, blocked, err)
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	for name, change := range map[string]func(*Policy){
		"no keys":       func(p *Policy) { p.RSASizes, p.Curves = nil, nil },
		"few rounds":    func(p *Policy) { p.FermatRounds = 99 },
		"no primes":     func(p *Policy) { p.SmallPrimes = nil },
		"primes of one": func(p *Policy) { p.SmallPrimes = big.NewInt(1) },
	} {
		p := Default()
		change(p)
		if p.Validate() == nil {
			t.Errorf("Validate(%s) = nil; want an error", name)
		}
	}
}

func TestPrimesProduct(t *testing.T) {
	if got := PrimesProduct(12).Int64(); got != 2*3*5*7*11 {
		t.Errorf("PrimesProduct(12) = %d; want 2310", got)
	}
	// 751 is the largest prime below 752; 752 = 16*47 is not prime.
	p := PrimesProduct(752)
	if new(big.Int).Mod(p, big.NewInt(751)).Sign() != 0 || new(big.Int).Mod(p, big.NewInt(757)).Sign() == 0 {
		t.Error("PrimesProduct(752) is not the product of the primes up to 751")
	}
}

// BenchmarkCheckRSA2048 is the cost of a good RSA-2048 key: size and
// exponent, the GCD with the small primes, ROCA, all 110 Fermat rounds
// (a good key never stops early) and the hashes for the lists.
func BenchmarkCheckRSA2048(b *testing.B) {
	p := Default()
	key := rsaPub(b, &rsa2048Key, 2048)
	ctx := context.Background()
	for b.Loop() {
		if err := p.Check(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFermatRSA2048 and BenchmarkSmallPrimesRSA2048 split that cost.
func BenchmarkFermatRSA2048(b *testing.B) {
	key := rsaPub(b, &rsa2048Key, 2048)
	for b.Loop() {
		if fermatFactor(key.N, 110) != nil {
			b.Fatal("factored a random key")
		}
	}
}

func BenchmarkSmallPrimesRSA2048(b *testing.B) {
	key := rsaPub(b, &rsa2048Key, 2048)
	primes := PrimesProduct(752)
	for b.Loop() {
		new(big.Int).GCD(nil, nil, key.N, primes)
	}
}

func BenchmarkCheckP256(b *testing.B) {
	p := Default()
	key := ecPub(b, &p256Key, elliptic.P256())
	ctx := context.Background()
	for b.Loop() {
		if err := p.Check(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
