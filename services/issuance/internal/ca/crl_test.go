package ca

import (
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/services/issuance/internal/lint"
)

func TestSignCRL(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	a, dir, s := newCA(t, now)
	serial := big.NewInt(0x1234567890)
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(7),
		ThisUpdate: now,
		NextUpdate: now.Add(7 * 24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: serial, RevocationTime: now.Add(-time.Hour), ReasonCode: 1},
			{SerialNumber: big.NewInt(42), RevocationTime: now.Add(-time.Hour)},
		},
	}
	crl, err := a.SignCRL(tmpl)
	if err != nil {
		t.Fatalf("SignCRL = %v", err)
	}
	if err := crl.CheckSignatureFrom(a.Intermediate()); err != nil {
		t.Fatalf("CRL does not verify against the intermediate: %v", err)
	}
	if crl.Number.Int64() != 7 || len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("CRL number %v with %d entries; want 7 with 2", crl.Number, len(crl.RevokedCertificateEntries))
	}
	if e := crl.RevokedCertificateEntries[0]; e.SerialNumber.Cmp(serial) != 0 || e.ReasonCode != 1 {
		t.Fatalf("entry = %v reason %d; want %v keyCompromise", e.SerialNumber, e.ReasonCode, serial)
	}

	// The root signs the intermediate's CRL, also after a reload.
	loaded, err := LoadOrCreate(dir, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rootCRL, err := loaded.SignRootCRL(&x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(7 * 24 * time.Hour)})
	if err != nil {
		t.Fatalf("SignRootCRL = %v", err)
	}
	if err := rootCRL.CheckSignatureFrom(a.Root()); err != nil {
		t.Fatalf("root CRL does not verify against the root: %v", err)
	}

	// The lints refuse what the BRs forbid, and nothing is signed.
	for _, tt := range []struct {
		name, lint string
		crl        *x509.RevocationList
	}{
		{"nextUpdate 11 days on", "e_crl_next_update_invalid", &x509.RevocationList{Number: big.NewInt(8), ThisUpdate: now, NextUpdate: now.Add(11 * 24 * time.Hour)}},
		{"certificateHold", "e_cab_crl_has_valid_reason_code", &x509.RevocationList{Number: big.NewInt(8), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: serial, RevocationTime: now, ReasonCode: 6}}}},
		{"revoked after thisUpdate", "e_crl_revocation_time_after_this_update", &x509.RevocationList{Number: big.NewInt(8), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: serial, RevocationTime: now.Add(time.Hour)}}}},
	} {
		var le *lint.Error
		_, err := a.SignCRL(tt.crl)
		if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.lint) {
			t.Errorf("SignCRL(%s) = %v; want a refusal by %s", tt.name, err, tt.lint)
		}
	}
}
