package goodkey

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/certflow/certflow/pkg/apierr"
)

// checkResult fails t unless err is nil or a refusal with one of Reasons
// and a message.
func checkResult(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *apierr.Error
	if !errors.As(err, &e) || e.Kind != apierr.InvalidArgument || !slices.Contains(Reasons, e.Reason) || e.Message == "" {
		t.Fatalf("Check(%s) = %v; want nil or an InvalidArgument with a known reason and a message", what, err)
	}
}

// FuzzCheckDER parses SubjectPublicKeyInfo bytes as the CA would from a CSR
// and checks the key: Check must never panic and must answer nil or a
// refusal with a known reason. Seeds (public keys of every kind, good and
// bad, and broken DER) are in testdata/fuzz/FuzzCheckDER.
func FuzzCheckDER(f *testing.F) {
	p := Default()
	p.Compromised = []Blocklist{NewSet()}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return
		}
		err = p.Check(ctx, pub)
		checkResult(t, "SPKI", err)
		if err == nil {
			// A good key is one the CA can sign for: it encodes.
			if _, err := SPKIHash(pub); err != nil {
				t.Fatalf("accepted a key that does not encode: %v", err)
			}
		}
	})
}

// FuzzCheckRSA checks RSA public keys built from any modulus and exponent,
// which x509 would refuse to parse (even, negative-looking, tiny): the
// arithmetic checks must hold for every number of the accepted sizes.
func FuzzCheckRSA(f *testing.F) {
	p := Default()
	f.Add([]byte{0xc3, 0x01}, 65537, 0)
	f.Add([]byte{0xff, 0xff, 0xff, 0xfb}, 3, 2048)
	f.Add([]byte{0x80}, 65537, 2048)
	f.Add([]byte{0x01}, 65537, 4096)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tail []byte, e int, bits int) {
		// Most fuzzed moduli are padded to an accepted size, so that the
		// checks after the size check run on them.
		n := new(big.Int).SetBytes(tail)
		switch bits {
		case 2048, 3072, 4096:
			if n.BitLen() < bits {
				n.SetBit(n, bits-1, 1)
			}
		}
		checkResult(t, "RSA", p.Check(ctx, &rsa.PublicKey{N: n, E: e}))
	})
}

// TestFuzzCheckDERSeeds makes sure the committed seeds reach the checks
// they are named for, so the fuzzer starts from every path.
func TestFuzzCheckDERSeeds(t *testing.T) {
	want := map[string]string{
		"p256": "", "p384": "", "rsa2048": "", "rsa4096": "",
		"p224": ReasonCurve, "p521": ReasonCurve, "rsa1024": ReasonSize, "rsa2048_e3": ReasonExponent,
		"rsa2048_small_factor": ReasonSmallFactor, "rsa2048_roca": ReasonROCA, "rsa2048_close_primes": ReasonClosePrimes,
		"ed25519": ReasonUnsupported,
	}
	p := Default()
	for name, reason := range want {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzCheckDER", name))
		if err != nil {
			t.Fatal(err)
		}
		_, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		pub, err := x509.ParsePKIXPublicKey([]byte(s))
		if err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		if got := apierr.ReasonOf(p.Check(context.Background(), pub)); got != reason {
			t.Errorf("Check(seed %s) reason = %q; want %q", name, got, reason)
		}
	}
}
