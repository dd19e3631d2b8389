package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

var (
	now    = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	policy = Policy{Lifetime: 7 * 24 * time.Hour, RetryInitial: 10 * time.Second, RetryMax: 10 * time.Minute, HTTPPort: 80}
)

func TestNewChallenge(t *testing.T) {
	tests := []struct {
		name       string
		method     Method
		wantReason string
		wantRecord string
		wantURL    string
	}{
		{"www.example.com", DNSTXT, "", "_certflow-challenge.www.example.com", ""},
		{"*.example.com", DNSTXT, "", "_certflow-challenge.example.com", ""},
		{"www.example.com", HTTPFile, "", "", "http://www.example.com/.well-known/pki-validation/c1.txt"},
		{"*.example.com", HTTPFile, "WILDCARD_NEEDS_DNS", "", ""},
		{"www.example.com", "FAX", "UNSUPPORTED_METHOD", "", ""},
		{"exa mple.com", DNSTXT, "INVALID_DOMAIN", "", ""},
	}
	for _, tt := range tests {
		c, _, err := NewChallenge(Spec{ID: "c1", Application: "applications/a", Attempt: 1, Name: tt.name, Method: tt.method}, policy, now)
		if got := apierr.ReasonOf(err); got != tt.wantReason {
			t.Errorf("NewChallenge(%q, %s) reason = %q; want %q", tt.name, tt.method, got, tt.wantReason)
			continue
		}
		if err != nil {
			continue
		}
		if c.RecordName != tt.wantRecord || c.URL() != tt.wantURL || len(c.Token) != 43 || c.State != Pending {
			t.Errorf("NewChallenge(%q, %s) = record %q url %q token %q; want record %q url %q and a 43-char token",
				tt.name, tt.method, c.RecordName, c.URL(), c.Token, tt.wantRecord, tt.wantURL)
		}
	}
}

func TestLifetimeCappedAt30Days(t *testing.T) {
	c, _, _ := NewChallenge(Spec{ID: "c", Application: "applications/a", Attempt: 1, Name: "example.com", Method: DNSTXT}, Policy{Lifetime: 90 * 24 * time.Hour, RetryInitial: time.Second, RetryMax: time.Minute}, now)
	if got := c.ExpireTime.Sub(now); got != 30*24*time.Hour {
		t.Fatalf("lifetime = %v; want capped at 30 days (BR random value reuse)", got)
	}
}

func TestRetryBackoffAndExpiry(t *testing.T) {
	c, _, _ := NewChallenge(Spec{ID: "c", Application: "applications/a", Attempt: 1, Name: "example.com", Method: DNSTXT}, policy, now)
	notYet := errors.New("no TXT record")
	at := now
	var delays []time.Duration
	for range 8 {
		if out := c.RecordCheck(notYet, policy, at); out != StillPending {
			t.Fatalf("RecordCheck = %v; want StillPending", out)
		}
		delays = append(delays, c.NextCheckTime.Sub(at))
		at = c.NextCheckTime
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 320 * time.Second, 10 * time.Minute, 10 * time.Minute}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("retry delays = %v; want %v", delays, want)
		}
	}
	if out := c.RecordCheck(notYet, policy, c.ExpireTime); out != BecameFailed || c.State != Failed {
		t.Fatalf("check at expiry = %v, state %s; want BecameFailed", out, c.State)
	}
	if out := c.RecordCheck(nil, policy, c.ExpireTime); out != NotPending {
		t.Fatalf("check after failure = %v; want NotPending", out)
	}

	ok, _, _ := NewChallenge(Spec{ID: "c", Application: "applications/a", Attempt: 1, Name: "example.com", Method: DNSTXT}, policy, now)
	if out := ok.RecordCheck(nil, policy, now); out != BecameVerified || ok.VerifyTime != now {
		t.Fatalf("successful check = %v at %v; want BecameVerified at %v", out, ok.VerifyTime, now)
	}
	if ok.Cancel(now) {
		t.Fatalf("Cancel of a verified challenge succeeded")
	}
}

func TestEmailCodeReplacedOnlyUntilSent(t *testing.T) {
	c, first, err := NewChallenge(Spec{ID: "c1", Application: "applications/a", Attempt: 1, Name: "example.com", Method: Email}, Policy{Lifetime: time.Hour}, now)
	if err != nil || first == "" || c.EmailCodes != 1 || !c.EmailUnsent() {
		t.Fatalf("NewChallenge(EMAIL) = %+v, %q, %v; want an unsent first code", c, first, err)
	}
	second := c.NewEmailCode()
	if second == "" || second == first || c.EmailCodes != 2 {
		t.Fatalf("NewEmailCode = %q (codes %d); want a second, different code", second, c.EmailCodes)
	}
	if c.MarkEmailSent(1, now) {
		t.Errorf("MarkEmailSent(1) after a second code = true; want the stale mail ignored")
	}
	if !c.MarkEmailSent(2, now) || c.EmailUnsent() {
		t.Fatalf("MarkEmailSent(2) did not record the mail")
	}
	if again := c.NewEmailCode(); again != "" {
		t.Errorf("NewEmailCode after the mail was sent = %q; want none: a delivered code is never replaced", again)
	}
	if out, err := c.Confirm(first, now); err == nil || out == BecameVerified {
		t.Errorf("Confirm(replaced code) = %v, %v; want refused", out, err)
	}
	if out, err := c.Confirm(second, now); err != nil || out != BecameVerified {
		t.Errorf("Confirm(current code) = %v, %v; want verified", out, err)
	}
}

func TestProofAfterExpiryRefused(t *testing.T) {
	for _, at := range []time.Duration{0, time.Second, 48 * time.Hour} {
		c, _, _ := NewChallenge(Spec{ID: "c", Application: "applications/a", Attempt: 1, Name: "example.com", Method: DNSTXT}, policy, now)
		when := c.ExpireTime.Add(at)
		if out := c.RecordCheck(nil, policy, when); out != BecameFailed || c.State != Failed || !c.VerifyTime.IsZero() || !strings.Contains(c.LastError, "expired") {
			t.Errorf("RecordCheck(proof found) at expiry+%v = %v, %s, verified at %v (%q); want BecameFailed, FAILED, never verified, a cause saying it expired",
				at, out, c.State, c.VerifyTime, c.LastError)
		}
	}
	c, _, _ := NewChallenge(Spec{ID: "c", Application: "applications/a", Attempt: 1, Name: "example.com", Method: HTTPFile}, policy, now)
	if out := c.RecordCheck(nil, policy, c.ExpireTime.Add(-time.Nanosecond)); out != BecameVerified {
		t.Errorf("RecordCheck(proof found) just before expiry = %v; want BecameVerified", out)
	}
}
