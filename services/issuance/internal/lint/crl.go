// Package lint checks what the CA is about to sign with zlint v3, as
// Boulder's linter does: the to-be-signed object is first signed by a
// throwaway key standing in for the issuer, and only a clean result may be
// signed for real.
package lint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"
)

// CRLError refuses a CRL: the lints that found an error or a warning.
type CRLError struct {
	// Lints are "name: details", sorted.
	Lints []string
}

func (e *CRLError) Error() string {
	return "CRL refused by lints: " + strings.Join(e.Lints, "; ")
}

// CRL signs tmpl as issuer would, but with a throwaway key of the same
// algorithm, and lints the result with every zlint revocation-list lint.
// An error, fatal or warning refuses it (*CRLError); notices are returned.
// tbs is the linted tbsCertList: the caller signs for real and checks its
// own tbsCertList is the same bytes.
func CRL(tmpl *x509.RevocationList, issuer *x509.Certificate) (tbs []byte, notices []string, err error) {
	key, err := crlThrowawayKey(issuer.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		return nil, nil, fmt.Errorf("lint: signing the CRL with the throwaway key: %w", err)
	}
	zcrl, err := zx509.ParseRevocationList(der)
	if err != nil {
		return nil, nil, fmt.Errorf("lint: parsing the throwaway CRL: %w", err)
	}
	res := zlint.LintRevocationList(zcrl)
	var bad []string
	for name, r := range res.Results {
		switch r.Status {
		case zl.Error, zl.Fatal, zl.Warn:
			bad = append(bad, fmt.Sprintf("%s (%s): %s", name, r.Status, r.Details))
		case zl.Notice:
			notices = append(notices, name)
		}
	}
	sort.Strings(bad)
	sort.Strings(notices)
	if len(bad) > 0 {
		return nil, notices, &CRLError{Lints: bad}
	}
	parsed, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, nil, fmt.Errorf("lint: parsing the throwaway CRL: %w", err)
	}
	return parsed.RawTBSRevocationList, notices, nil
}

var crlKeys struct {
	sync.Mutex
	m map[string]crypto.Signer
}

// crlThrowawayKey returns a key of pub's algorithm and size, made once per
// process: it never signs anything that leaves the linter.
func crlThrowawayKey(pub crypto.PublicKey) (crypto.Signer, error) {
	var id string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		id = "ecdsa-" + k.Curve.Params().Name
	case *rsa.PublicKey:
		id = fmt.Sprintf("rsa-%d", k.N.BitLen())
	default:
		return nil, fmt.Errorf("lint: issuer key %T is not supported", pub)
	}
	crlKeys.Lock()
	defer crlKeys.Unlock()
	if k, ok := crlKeys.m[id]; ok {
		return k, nil
	}
	var (
		key crypto.Signer
		err error
	)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		key, err = ecdsa.GenerateKey(k.Curve, rand.Reader)
	case *rsa.PublicKey:
		key, err = rsa.GenerateKey(rand.Reader, k.N.BitLen())
	}
	if err != nil {
		return nil, fmt.Errorf("lint: making a throwaway key: %w", err)
	}
	if crlKeys.m == nil {
		crlKeys.m = map[string]crypto.Signer{}
	}
	crlKeys.m[id] = key
	return key, nil
}
