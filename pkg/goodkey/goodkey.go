// Package goodkey is certflow's key policy: one object that judges every
// public key the CA is asked to certify, from a customer's CSR or made by
// the issuance service itself, after the design of Boulder's goodkey.
//
// A refused key is an *apierr.Error of kind InvalidArgument whose Reason
// names the one check it failed (KEY_SIZE, KEY_CLOSE_PRIMES, ...) and whose
// Message says what to do: make a new key. Resending the same key never
// helps, so every refusal is the client's argument, not the system's state.
// An error from a blocklist lookup is not a refusal: it is Unavailable, and
// the caller should retry.
//
// The checks, in the order they run:
//
//   - the key is RSA or ECDSA (KEY_UNSUPPORTED);
//   - RSA: the modulus length is one of RSASizes (KEY_SIZE), the exponent is
//     65537 (KEY_EXPONENT), the modulus has no prime factor below 752 (BR
//     6.1.6; KEY_SMALL_FACTOR), it does not have the structure of the
//     Infineon keys broken by ROCA, CVE-2017-15361 (KEY_ROCA), it cannot be
//     factored by FermatRounds rounds of Fermat's method (BR 6.1.1.3 asks
//     for 100; KEY_CLOSE_PRIMES), and it is not a Debian weak key
//     (CVE-2008-0166; KEY_DEBIAN_WEAK);
//   - ECDSA: the curve is one of Curves (KEY_CURVE) and the point is a valid
//     point of it (KEY_INVALID_POINT);
//   - the key is not one of the CA's own keys (KEY_IS_CA_KEY);
//   - the key is on no compromised-key blocklist (KEY_COMPROMISED).
package goodkey

import (
	"context"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // only to name and refuse DSA keys
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/titanous/rocacheck"

	"github.com/certflow/certflow/pkg/apierr"
)

// The reasons a key is refused (ErrorInfo.reason); clients switch on them.
const (
	ReasonUnsupported  = "KEY_UNSUPPORTED"
	ReasonSize         = "KEY_SIZE"
	ReasonExponent     = "KEY_EXPONENT"
	ReasonSmallFactor  = "KEY_SMALL_FACTOR"
	ReasonROCA         = "KEY_ROCA"
	ReasonClosePrimes  = "KEY_CLOSE_PRIMES"
	ReasonDebianWeak   = "KEY_DEBIAN_WEAK"
	ReasonCurve        = "KEY_CURVE"
	ReasonInvalidPoint = "KEY_INVALID_POINT"
	ReasonIsCAKey      = "KEY_IS_CA_KEY"
	ReasonCompromised  = "KEY_COMPROMISED"
	// ReasonBlocklistUnavailable is not a refusal: a blocklist could not
	// be asked (Unavailable), so no answer was given.
	ReasonBlocklistUnavailable = "KEY_BLOCKLIST_UNAVAILABLE"
)

// Reasons lists every refusal reason, for tests and documentation.
var Reasons = []string{
	ReasonUnsupported, ReasonSize, ReasonExponent, ReasonSmallFactor, ReasonROCA, ReasonClosePrimes,
	ReasonDebianWeak, ReasonCurve, ReasonInvalidPoint, ReasonIsCAKey, ReasonCompromised,
}

// RSAExponent is the only RSA public exponent accepted. The BRs allow any
// odd e >= 3 and recommend 2^16+1 or more; accepting one value, the one
// every current tool uses, keeps the key space small (as Boulder does).
const RSAExponent = 65537

// MinFermatRounds is what BR 6.1.1.3 asks for.
const MinFermatRounds = 100

// Hash is the SHA-256 of a key's DER SubjectPublicKeyInfo, as
// x509.MarshalPKIXPublicKey writes it: the one name of a key in every
// blocklist.
type Hash [sha256.Size]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a Hash from its 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil {
		return h, fmt.Errorf("goodkey: key hash %q is not hex: %w", s, err)
	}
	if len(b) != len(h) {
		return h, fmt.Errorf("goodkey: key hash %q has %d bytes, want %d (a hex SHA-256)", s, len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// SPKIHash hashes pub's SubjectPublicKeyInfo.
func SPKIHash(pub crypto.PublicKey) (Hash, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Hash{}, fmt.Errorf("goodkey: encoding public key: %w", err)
	}
	return sha256.Sum256(der), nil
}

// Blocklist is a set of blocked keys. The compromised-key store (keys
// revoked for keyCompromise, in MongoDB) implements it; so does Set.
type Blocklist interface {
	Contains(ctx context.Context, h Hash) (bool, error)
}

// Policy says which keys are good. The zero value accepts nothing; use
// Default and adjust. A Policy must not be changed once Check may be called
// concurrently (the blocklists themselves may change: they are interfaces).
type Policy struct {
	// RSASizes are the accepted modulus lengths in bits.
	RSASizes []int
	// Curves are the accepted ECDSA curves.
	Curves []elliptic.Curve
	// FermatRounds is how many steps of Fermat's factorization to try;
	// at least MinFermatRounds.
	FermatRounds int
	// SmallPrimes is the product of the primes no modulus may be
	// divisible by (one GCD tests them all).
	SmallPrimes *big.Int
	// DebianWeak, if set, lists the Debian weak keys.
	DebianWeak *DebianWeakKeys
	// CAKeys are the CA's own keys, by hash, with their names (root,
	// intermediate).
	CAKeys map[Hash]string
	// Compromised are blocklists of keys that must never be certified
	// again: the blocked-keys file, and the keys revoked for
	// keyCompromise.
	Compromised []Blocklist
}

// Default is the policy of certflow's CPS: RSA 2048, 3072 and 4096 bits with
// e = 65537, ECDSA P-256 and P-384, no factor below 752, 110 Fermat rounds
// (a margin over the BRs' 100), ROCA; no blocklists and no CA keys yet.
//
// RSA sizes are those three, not every multiple of 8 from 2048 to 4096
// that the BRs allow, as in Boulder: the Debian weak key lists only cover
// common sizes, and every tool makes these.
func Default() *Policy {
	return &Policy{
		RSASizes:     []int{2048, 3072, 4096},
		Curves:       []elliptic.Curve{elliptic.P256(), elliptic.P384()},
		FermatRounds: 110,
		SmallPrimes:  PrimesProduct(752),
	}
}

// PrimesProduct is the product of the primes below limit.
func PrimesProduct(limit int) *big.Int {
	prod := big.NewInt(1)
	composite := make([]bool, limit)
	for i := 2; i < limit; i++ {
		if composite[i] {
			continue
		}
		prod.Mul(prod, big.NewInt(int64(i)))
		for j := i * i; j < limit; j += i {
			composite[j] = true
		}
	}
	return prod
}

// AddCAKey records one of the CA's own keys under a name (root,
// intermediate) so that no CSR may reuse it.
func (p *Policy) AddCAKey(name string, pub crypto.PublicKey) error {
	h, err := SPKIHash(pub)
	if err != nil {
		return fmt.Errorf("goodkey: CA key %s: %w", name, err)
	}
	if p.CAKeys == nil {
		p.CAKeys = map[Hash]string{}
	}
	p.CAKeys[h] = name
	return nil
}

// Validate reports a policy that cannot be right.
func (p *Policy) Validate() error {
	switch {
	case len(p.RSASizes) == 0 && len(p.Curves) == 0:
		return errors.New("goodkey: the policy accepts no key size and no curve")
	case len(p.RSASizes) > 0 && p.FermatRounds < MinFermatRounds:
		return fmt.Errorf("goodkey: %d Fermat rounds; the Baseline Requirements ask for at least %d", p.FermatRounds, MinFermatRounds)
	case len(p.RSASizes) > 0 && (p.SmallPrimes == nil || p.SmallPrimes.Cmp(big.NewInt(1)) <= 0):
		return errors.New("goodkey: no small primes to test RSA moduli against")
	}
	return nil
}

const (
	newRSA = "make a new key pair (openssl req -new -newkey rsa:2048 -nodes ...) or an ECDSA P-256 one (-newkey ec -pkeyopt ec_paramgen_curve:P-256), and a new CSR with it"
	newKey = "make a new key pair (openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ...) and a new CSR with it"
)

func refuse(reason, format string, args ...any) *apierr.Error {
	return apierr.New(apierr.InvalidArgument, reason, format, args...)
}

// Check returns nil for a good key, an InvalidArgument *apierr.Error with
// one of the Reasons for a refused one, and an Unavailable error when a
// blocklist could not be asked.
func (p *Policy) Check(ctx context.Context, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return refuse(ReasonUnsupported, "the RSA key is empty; %s", newRSA)
		}
		if err := p.checkRSA(k); err != nil {
			return err
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return refuse(ReasonUnsupported, "the ECDSA key is empty; %s", newKey)
		}
		if err := p.checkECDSA(k); err != nil {
			return err
		}
	default:
		return refuse(ReasonUnsupported, "%s keys are not accepted; only RSA (%s bits) and ECDSA (%s) are; %s", typeName(pub), p.sizeList(), p.curveList(), newKey)
	}
	h, err := SPKIHash(pub)
	if err != nil {
		// A key that passed the checks above always encodes.
		return refuse(ReasonUnsupported, "the key cannot be encoded (%v); %s", err, newKey)
	}
	if name, ok := p.CAKeys[h]; ok {
		return refuse(ReasonIsCAKey, "the key is the certificate authority's own %s key; a certificate may never certify it: %s", name, newKey).WithMeta("key_sha256", h.String())
	}
	for _, bl := range p.Compromised {
		blocked, err := bl.Contains(ctx, h)
		if err != nil {
			return apierr.Wrap(err, apierr.Unavailable, ReasonBlocklistUnavailable, "the list of compromised keys could not be read; retry later")
		}
		if blocked {
			return refuse(ReasonCompromised, "the key is known to be compromised (its private key was disclosed, or a certificate for it was revoked for key compromise) and will never be certified again; %s, and keep the private key secret", newKey).WithMeta("key_sha256", h.String())
		}
	}
	return nil
}

func (p *Policy) checkRSA(k *rsa.PublicKey) error {
	bits := k.N.BitLen()
	if !slices.Contains(p.RSASizes, bits) {
		return refuse(ReasonSize, "the RSA key has %d bits; accepted sizes are %s bits: %s", bits, p.sizeList(), newRSA)
	}
	if k.E != RSAExponent {
		return refuse(ReasonExponent, "the RSA public exponent is %d; only %d is accepted, which openssl and every current tool use by default: %s", k.E, RSAExponent, newRSA)
	}
	if new(big.Int).GCD(nil, nil, k.N, p.SmallPrimes).Cmp(big.NewInt(1)) != 0 {
		return refuse(ReasonSmallFactor, "the RSA modulus has a small prime factor, so it is trivially factored; the key generator is broken: %s with another tool", newRSA)
	}
	if rocacheck.IsWeak(k) {
		return refuse(ReasonROCA, "the RSA key has the structure of keys made by Infineon chips with the ROCA flaw (CVE-2017-15361), whose private key can be computed from the public key; update the firmware of the token or smart card that made it, or make the key elsewhere: %s", newRSA)
	}
	if fermatFactor(k.N, p.FermatRounds) != nil {
		return refuse(ReasonClosePrimes, "the RSA modulus is the product of two primes so close together that it is factored in a few steps of Fermat's method; the key generator is broken: %s with another tool", newRSA)
	}
	if p.DebianWeak != nil && p.DebianWeak.Contains(k) {
		return refuse(ReasonDebianWeak, "the RSA key is one of the Debian weak keys (CVE-2008-0166), made by a broken random number generator and publicly known; %s on an up-to-date system", newRSA)
	}
	return nil
}

func (p *Policy) checkECDSA(k *ecdsa.PublicKey) error {
	params := k.Curve.Params()
	if !slices.ContainsFunc(p.Curves, func(c elliptic.Curve) bool { return c.Params() == params }) {
		name := "unknown"
		if params != nil && params.Name != "" {
			name = params.Name
		}
		return refuse(ReasonCurve, "the ECDSA key uses the curve %s; accepted curves are %s: %s", name, p.curveList(), newKey)
	}
	// NIST SP 800-56A 5.6.2.3.3 (partial public-key validation) for curves
	// of cofactor 1: the coordinates are field elements, the point is on
	// the curve and not the point at infinity; crypto/ecdh checks the last
	// two. With cofactor 1 every such point has the full order n.
	if k.X == nil || k.Y == nil || k.X.Sign() < 0 || k.Y.Sign() < 0 || k.X.Cmp(params.P) >= 0 || k.Y.Cmp(params.P) >= 0 {
		return refuse(ReasonInvalidPoint, "the ECDSA public key's coordinates are not elements of the %s field; %s", params.Name, newKey)
	}
	if _, err := k.ECDH(); err != nil {
		return refuse(ReasonInvalidPoint, "the ECDSA public key is not a valid point of %s; %s", params.Name, newKey)
	}
	return nil
}

// fermatFactor tries rounds steps of Fermat's method on the odd n: with
// a = ceil(sqrt(n)), a, a+1, ... while a^2 - n is not a square b^2. It
// returns the factor a-b if found within rounds, nil otherwise. Primes p, q
// chosen independently at random are never this close; a generator that
// picks q as the next prime after p is.
func fermatFactor(n *big.Int, rounds int) *big.Int {
	if n.Sign() <= 0 || n.Bit(0) == 0 {
		return nil
	}
	a := new(big.Int).Sqrt(n)
	b2 := new(big.Int).Mul(a, a)
	if b2.Cmp(n) < 0 {
		a.Add(a, big.NewInt(1))
		b2.Mul(a, a)
	}
	b2.Sub(b2, n) // a^2 - n
	b := new(big.Int)
	step := new(big.Int)
	mod := new(big.Int)
	for range rounds {
		if isSquare(b2, b, mod) {
			return new(big.Int).Sub(a, b)
		}
		// (a+1)^2 - n = a^2 - n + 2a + 1
		step.Lsh(a, 1)
		step.Add(step, big.NewInt(1))
		b2.Add(b2, step)
		a.Add(a, big.NewInt(1))
	}
	return nil
}

// squareFilters are the quadratic residues modulo 64, 63, 65 and 11: a
// number that is not one modulo each is not a square, which spares most
// square roots (the classic filter; about 1 in 160 numbers passes all four).
var squareFilters = func() [][]bool {
	var f [][]bool
	for _, n := range []int{64, 63, 65, 11} {
		r := make([]bool, n)
		for i := range n {
			r[i*i%n] = true
		}
		f = append(f, r)
	}
	return f
}()

var squareFilterModulus = big.NewInt(64 * 63 * 65 * 11)

// isSquare reports whether x >= 0 is a perfect square, leaving its root in
// root when it is; mod is scratch space.
func isSquare(x, root, mod *big.Int) bool {
	if x.Sign() < 0 {
		return false
	}
	r := int(mod.Mod(x, squareFilterModulus).Int64())
	for _, ok := range squareFilters {
		if !ok[r%len(ok)] {
			return false
		}
	}
	root.Sqrt(x)
	return mod.Mul(root, root).Cmp(x) == 0
}

func (p *Policy) sizeList() string {
	s := make([]string, len(p.RSASizes))
	for i, b := range p.RSASizes {
		s[i] = strconv.Itoa(b)
	}
	return strings.Join(s, ", ")
}

func (p *Policy) curveList() string {
	s := make([]string, len(p.Curves))
	for i, c := range p.Curves {
		s[i] = c.Params().Name
	}
	return strings.Join(s, ", ")
}

func typeName(pub crypto.PublicKey) string {
	switch pub.(type) {
	case nil:
		return "unknown"
	case ed25519.PublicKey, *ed25519.PublicKey:
		return "Ed25519"
	case *dsa.PublicKey:
		return "DSA"
	case *ecdh.PublicKey:
		return "ECDH (X25519 or key-agreement-only)"
	}
	return fmt.Sprintf("%T", pub)
}
