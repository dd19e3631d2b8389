package dcv

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/devdns"
	"github.com/miekg/dns"
)

func TestCheckTXT(t *testing.T) {
	s := startDNS(t, devdns.Options{})
	long := strings.Repeat("k", 400)
	s.SetTXT("_pki-validation.ok.test", "unrelated", "token-123")
	s.SetTXT("_pki-validation.wrong.test", "token-999")
	s.SetTXT("_pki-validation.long.test", long)
	s.SetCNAME("_pki-validation.delegated.test", "token.validation.certflow.test")
	s.SetTXT("token.validation.certflow.test", "token-123")
	s.SetA("_pki-validation.aonly.test", "192.0.2.1")
	s.FailWith("_pki-validation.broken.test", dns.RcodeServerFailure)
	c := DNSChecker{Resolver: newResolver(t, ResolverOptions{Servers: []string{s.Addr()}})}

	tests := []struct {
		name, want string
		wantErr    error
	}{
		{"_pki-validation.ok.test", "token-123", nil},
		{"_pki-validation.delegated.test", "token-123", nil},
		{"_pki-validation.long.test", long, nil},
		{"_pki-validation.wrong.test", "token-123", ErrMismatch},
		{"_pki-validation.ok.test", "token-12", ErrMismatch},     // exact, not prefix
		{"_pki-validation.ok.test", " token-123", ErrMismatch},   // exact, not trimmed
		{"_pki-validation.none.test", "token-123", ErrNotFound},  // NXDOMAIN
		{"_pki-validation.aonly.test", "token-123", ErrNotFound}, // NODATA
		{"_pki-validation.broken.test", "token-123", ErrLookupFailed},
	}
	for _, tt := range tests {
		err := c.CheckTXT(testContext(t), tt.name, tt.want)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("CheckTXT(%q, %q) = %v; want %v", tt.name, tt.want, err, tt.wantErr)
		}
	}

	// A lookup failure is never evidence either way.
	err := c.CheckTXT(testContext(t), "_pki-validation.broken.test", "token-123")
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrMismatch) {
		t.Errorf("CheckTXT(SERVFAIL) = %v; want neither ErrNotFound nor ErrMismatch", err)
	}
	// The error tells the user what was found.
	err = c.CheckTXT(testContext(t), "_pki-validation.wrong.test", "token-123")
	if err == nil || !strings.Contains(err.Error(), `"token-999"`) {
		t.Errorf("CheckTXT(mismatch) = %v; want it to show the found value", err)
	}
}

func TestCheckTXTTimeout(t *testing.T) {
	r := newResolver(t, ResolverOptions{Servers: []string{silentServer(t)}, Timeout: 100 * time.Millisecond, Retries: -1})
	err := DNSChecker{Resolver: r}.CheckTXT(testContext(t), "_pki-validation.ok.test", "token")
	if !errors.Is(err, ErrLookupFailed) {
		t.Errorf("CheckTXT(silent server) = %v; want ErrLookupFailed", err)
	}
}

func TestCheckCNAME(t *testing.T) {
	s := startDNS(t, devdns.Options{})
	s.SetCNAME("_acme.ok.test", "Abc.Validation.Certflow.Test.")
	s.SetTXT("_acme.txt.test", "abc")
	s.FailWith("_acme.broken.test", dns.RcodeServerFailure)
	c := DNSChecker{Resolver: newResolver(t, ResolverOptions{Servers: []string{s.Addr()}})}

	tests := []struct {
		name, target string
		wantErr      error
	}{
		{"_acme.ok.test", "abc.validation.certflow.test", nil},
		{"_acme.ok.test", "ABC.validation.certflow.test.", nil},
		{"_acme.ok.test", "abd.validation.certflow.test", ErrMismatch},
		{"_acme.txt.test", "abc.validation.certflow.test", ErrNotFound},
		{"_acme.none.test", "abc.validation.certflow.test", ErrNotFound},
		{"_acme.broken.test", "abc.validation.certflow.test", ErrLookupFailed},
	}
	for _, tt := range tests {
		err := c.CheckCNAME(testContext(t), tt.name, tt.target)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("CheckCNAME(%q, %q) = %v; want %v", tt.name, tt.target, err, tt.wantErr)
		}
	}
}

func TestCheckersNeedResolver(t *testing.T) {
	if err := (DNSChecker{}).CheckTXT(testContext(t), "x.test", "v"); err == nil {
		t.Errorf("DNSChecker{}.CheckTXT = nil; want error")
	}
	if err := (HTTPChecker{}).CheckFile(testContext(t), "x.test", "/f", "v"); err == nil {
		t.Errorf("HTTPChecker{}.CheckFile = nil; want error")
	}
}
