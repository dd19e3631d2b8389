package goodkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"sync"
	"testing"
)

// Test keys are made at test time (no private key is committed) and each
// once per test binary: RSA keys are slow to make.

// once memoizes one test key.
type once[T any] struct {
	o   sync.Once
	v   T
	err error
}

func (o *once[T]) get(t testing.TB, make func() (T, error)) T {
	t.Helper()
	o.o.Do(func() { o.v, o.err = make() })
	if o.err != nil {
		t.Fatalf("making a test key: %v", o.err)
	}
	return o.v
}

var (
	rsa1024Key, rsa2048Key, rsa2048Key2, rsa3072Key, rsa4096Key, rsa8192Key once[*rsa.PrivateKey]
	rsaE3Key, smallFactorKey, closeKey, closeKeyFar, rocaKey                once[*rsa.PublicKey]
	p224Key, p256Key, p256Key2, p384Key, p521Key                            once[*ecdsa.PrivateKey]
)

func genRSA(bits int) func() (*rsa.PrivateKey, error) {
	return func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }
}

func genEC(c elliptic.Curve) func() (*ecdsa.PrivateKey, error) {
	return func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(c, rand.Reader) }
}

func rsaPub(t testing.TB, o *once[*rsa.PrivateKey], bits int) *rsa.PublicKey {
	return &o.get(t, genRSA(bits)).PublicKey
}

func ecPub(t testing.TB, o *once[*ecdsa.PrivateKey], c elliptic.Curve) *ecdsa.PublicKey {
	return &o.get(t, genEC(c)).PublicKey
}

// e3Key is a real 2048-bit RSA key with public exponent 3 (rsa.GenerateKey
// always uses 65537): primes with p-1 not a multiple of 3, so 3 is
// invertible.
func e3Key() (*rsa.PublicKey, error) {
	three, one := big.NewInt(3), big.NewInt(1)
	prime := func() (*big.Int, error) {
		for {
			p, err := rand.Prime(rand.Reader, 1024)
			if err != nil {
				return nil, err
			}
			if new(big.Int).Mod(new(big.Int).Sub(p, one), three).Sign() != 0 {
				return p, nil
			}
		}
	}
	p, err := prime()
	if err != nil {
		return nil, err
	}
	q, err := prime()
	if err != nil {
		return nil, err
	}
	return &rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 3}, nil
}

// smallFactor is a 2048-bit modulus 751*q for a prime q: the largest prime
// below the BR's 752.
func smallFactor() (*rsa.PublicKey, error) {
	f := big.NewInt(751)
	for {
		q, err := rand.Prime(rand.Reader, 2038)
		if err != nil {
			return nil, err
		}
		n := new(big.Int).Mul(q, f)
		if n.BitLen() == 2048 {
			return &rsa.PublicKey{N: n, E: RSAExponent}, nil
		}
	}
}

// closePrimes is a 2048-bit modulus p*q with q the first prime after
// p + 2^gapBits: a gap of up to about 2^512 is found by Fermat's first
// round, 2^516 after about 30.
func closePrimes(gapBits uint) func() (*rsa.PublicKey, error) {
	return func() (*rsa.PublicKey, error) {
		p, err := rand.Prime(rand.Reader, 1024)
		if err != nil {
			return nil, err
		}
		q := new(big.Int).Add(p, new(big.Int).Lsh(big.NewInt(1), gapBits))
		q.SetBit(q, 0, 1)
		for !q.ProbablyPrime(20) {
			q.Add(q, big.NewInt(2))
		}
		return &rsa.PublicKey{N: new(big.Int).Mul(p, q), E: RSAExponent}, nil
	}
}

// rocaStructured is a 2048-bit modulus with the structure of the Infineon
// keys of ROCA (Nemec et al., CCS 2017): each prime is k*M + (65537^a mod M)
// with M the product of the first 126 primes (the M the paper gives for
// keys of 1984 to 3936 bits) and random k and a. Such a modulus is a power
// of 65537 modulo every prime of M, which is the fingerprint detectors
// test. Both factors are prime, so this is a real (if broken) key.
func rocaStructured() (*rsa.PublicKey, error) {
	m := big.NewInt(1)
	count := 0
	for i := int64(2); count < 126; i++ {
		if big.NewInt(i).ProbablyPrime(0) {
			m.Mul(m, big.NewInt(i))
			count++
		}
	}
	g := big.NewInt(RSAExponent)
	prime := func() (*big.Int, error) {
		kBits := 1024 - m.BitLen()
		for {
			k, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(kBits)))
			if err != nil {
				return nil, err
			}
			k.SetBit(k, kBits-1, 1).SetBit(k, kBits-2, 1) // a full-size p
			a, err := rand.Int(rand.Reader, m)
			if err != nil {
				return nil, err
			}
			p := new(big.Int).Mul(k, m)
			p.Add(p, new(big.Int).Exp(g, a, m))
			if p.BitLen() == 1024 && p.ProbablyPrime(20) {
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
		if n := new(big.Int).Mul(p, q); n.BitLen() == 2048 {
			return &rsa.PublicKey{N: n, E: RSAExponent}, nil
		}
	}
}
