package lint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"
)

// issuer is a stand-in intermediate for the tests.
func issuer(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"certflow"}, CommonName: "certflow Test Intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, SubjectKeyId: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCRL(t *testing.T) {
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	iss := issuer(t)
	now := time.Now().UTC().Truncate(time.Second)
	good := func() *x509.RevocationList {
		return &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(7 * 24 * time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(42), RevocationTime: now.Add(-time.Minute), ReasonCode: 1}},
		}
	}
	if _, res, err := l.CRL("CRL", good(), iss); err != nil {
		t.Fatalf("CRL(good) = %v, %v; want clean", res, err)
	}
	// BR 7.2.2: reason code 6 (certificateHold) is not allowed.
	hold := good()
	hold.RevokedCertificateEntries[0].ReasonCode = 6
	_, _, err = l.CRL("CRL", hold, iss)
	var le *Error
	if !errors.Is(err, ErrLint) || !errors.As(err, &le) || len(le.Names()) == 0 {
		t.Fatalf("CRL(certificateHold) = %v; want a lint error naming the lint", err)
	}
	t.Logf("certificateHold: %v", le.Names())
	// nextUpdate more than 10 days after thisUpdate (BR 4.9.7).
	long := good()
	long.NextUpdate = now.Add(11 * 24 * time.Hour)
	if _, _, err := l.CRL("CRL", long, iss); !errors.Is(err, ErrLint) {
		t.Errorf("CRL(nextUpdate in 11 days) = %v; want a lint error", err)
	}
}

func TestCertificateNamesLints(t *testing.T) {
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	iss := issuer(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	// No AIA, no CRL distribution point, no policy: refused, with names.
	tbs := &x509.Certificate{SerialNumber: big.NewInt(99), DNSNames: []string{"www.example.com"}, NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true}
	_, _, err = l.Certificate("leaf", tbs, iss, key.Public(), nil)
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("Certificate(bare leaf) = %v; want *Error", err)
	}
	for _, want := range []string{"e_sub_cert_aia_missing", "e_sub_cert_cert_policy_empty"} {
		if !slices.Contains(le.Names(), want) {
			t.Errorf("Certificate(bare leaf) lints %v; want %s among them", le.Names(), want)
		}
	}
}
