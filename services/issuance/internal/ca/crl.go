package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/certflow/certflow/services/issuance/internal/lint"
)

// SignCRL signs tmpl as the intermediate: the CRL of the leaves it issued.
// tmpl is linted first (lint.Linter.CRL, signed by a throwaway key standing in for
// the intermediate); an error or warning refuses it. The caller fills
// Number, ThisUpdate, NextUpdate and the entries.
func (a *Authority) SignCRL(tmpl *x509.RevocationList) (*x509.RevocationList, error) {
	return a.signCRL(tmpl, a.intermediate, a.signer)
}

// SignRootCRL signs tmpl as the root: the CRL of the CA certificates it
// issued, the intermediate's, linted first as SignCRL does.
func (a *Authority) SignRootCRL(tmpl *x509.RevocationList) (*x509.RevocationList, error) {
	if a.rootSigner == nil {
		return nil, errors.New("ca: the root key is not loaded")
	}
	return a.signCRL(tmpl, a.root, a.rootSigner)
}

func (a *Authority) signCRL(tmpl *x509.RevocationList, issuer *x509.Certificate, key crypto.Signer) (*x509.RevocationList, error) {
	if tmpl.Number == nil || tmpl.Number.Sign() <= 0 {
		return nil, errors.New("ca: a CRL needs a positive cRLNumber")
	}
	if tmpl.ThisUpdate.IsZero() || !tmpl.NextUpdate.After(tmpl.ThisUpdate) {
		return nil, errors.New("ca: a CRL needs thisUpdate before nextUpdate")
	}
	linted, _, err := a.linter.CRL("CRL of "+issuer.Subject.CommonName, tmpl, issuer)
	if err != nil {
		return nil, fmt.Errorf("ca: CRL of %s: %w", issuer.Subject.CommonName, err)
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
	if err != nil {
		return nil, fmt.Errorf("ca: signing the CRL of %s: %w", issuer.Subject.CommonName, err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing the new CRL of %s: %w", issuer.Subject.CommonName, err)
	}
	// What is signed is what was linted (Boulder's issuance/crl.go).
	if err := lint.CheckCRL(linted, der); err != nil {
		return nil, fmt.Errorf("ca: CRL of %s: %w", issuer.Subject.CommonName, err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("ca: the new CRL of %s does not verify: %w", issuer.Subject.CommonName, err)
	}
	return crl, nil
}
