package domain

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

var dcvPolicy = Policy{Lifetime: 7 * 24 * time.Hour, RetryInitial: 10 * time.Second, RetryMax: 10 * time.Minute, HTTPPort: 80, CNAMEZone: "DCV.certflow.test."}

func TestNewCNAMEChallenge(t *testing.T) {
	label := regexp.MustCompile(`^[a-z2-7]{52}\.dcv\.certflow\.test$`)
	for _, name := range []string{"www.example.com", "*.example.com"} {
		c, code, err := NewChallenge(Spec{ID: "c1", Application: "applications/a", Attempt: 1, Name: name, Method: DNSCNAME}, dcvPolicy, now)
		if err != nil || code != "" {
			t.Fatalf("NewChallenge(%q, DNS_CNAME) = %v, code %q; want no error and no code", name, err, code)
		}
		wantRecord := "_certflow-challenge." + strings.TrimPrefix(name, "*.")
		if c.RecordName != wantRecord || !label.MatchString(c.CNAMETarget) {
			t.Errorf("NewChallenge(%q, DNS_CNAME) = record %q target %q; want record %q and target <52 base32>.dcv.certflow.test",
				name, c.RecordName, c.CNAMETarget, wantRecord)
		}
	}
	// A shared token gives the same target (a name and its wildcard).
	a, _, _ := NewChallenge(Spec{Name: "example.com", Method: DNSCNAME, Token: "tok"}, dcvPolicy, now)
	b, _, _ := NewChallenge(Spec{Name: "*.example.com", Method: DNSCNAME, Token: "tok"}, dcvPolicy, now)
	if a.CNAMETarget != b.CNAMETarget || a.RecordName != b.RecordName {
		t.Errorf("shared token targets = %q, %q; want equal", a.CNAMETarget, b.CNAMETarget)
	}
	if _, _, err := NewChallenge(Spec{Name: "example.com", Method: DNSCNAME}, policy, now); err == nil {
		t.Errorf("NewChallenge(DNS_CNAME) without a CNAME zone = nil error; want one")
	}
}

func TestCNAMELabel(t *testing.T) {
	for _, tok := range []string{newToken(), "", "not base64!", strings.Repeat("A", 200)} {
		l := CNAMELabel(tok)
		if len(l) == 0 || len(l) > 63 || !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(l) {
			t.Errorf("CNAMELabel(%q) = %q; want 1-63 lower-case base32 characters", tok, l)
		}
	}
}

func TestEmailLocalPart(t *testing.T) {
	tests := []struct {
		in, want, reason string
	}{
		{"", "admin", ""},
		{"admin", "admin", ""},
		{"Hostmaster", "hostmaster", ""},
		{"administrator", "administrator", ""},
		{"webmaster", "webmaster", ""},
		{"postmaster", "postmaster", ""},
		{"root", "", "INVALID_EMAIL_LOCAL_PART"},
		{"admin@evil.test", "", "INVALID_EMAIL_LOCAL_PART"},
	}
	for _, tt := range tests {
		got, err := EmailLocalPart(tt.in)
		if got != tt.want || apierr.ReasonOf(err) != tt.reason {
			t.Errorf("EmailLocalPart(%q) = %q, %v; want %q, reason %q", tt.in, got, err, tt.want, tt.reason)
		}
	}
}

func newEmail(t *testing.T, name, local string) (Challenge, string) {
	t.Helper()
	c, code, err := NewChallenge(Spec{ID: "c", Application: "applications/a", Attempt: 1, Name: name, Method: Email, EmailLocalPart: local}, dcvPolicy, now)
	if err != nil {
		t.Fatalf("NewChallenge(%q, EMAIL) = %v", name, err)
	}
	return c, code
}

func TestEmailChallenge(t *testing.T) {
	c, code := newEmail(t, "*.Example.com", "webmaster")
	if c.EmailAddress != "webmaster@example.com" || c.Token != "" || c.NextCheckTime != c.ExpireTime {
		t.Fatalf("email challenge = address %q token %q next check %v; want webmaster@example.com, no token, next check at expiry %v",
			c.EmailAddress, c.Token, c.NextCheckTime, c.ExpireTime)
	}
	if !regexp.MustCompile(`^([A-Z2-7]{4}-){5}[A-Z2-7]{4}$`).MatchString(code) {
		t.Fatalf("code = %q; want 6 groups of 4 base32 characters (120 bits)", code)
	}
	if strings.Contains(c.CodeHash, code) || len(c.CodeHash) != 64 {
		t.Fatalf("CodeHash = %q; want a hex SHA-256, not the code", c.CodeHash)
	}
	_, other := newEmail(t, "example.com", "")
	if other == code {
		t.Fatalf("two challenges got the same code %q", code)
	}

	out, err := c.Confirm("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA", now)
	if out != StillPending || apierr.ReasonOf(err) != "CODE_MISMATCH" || !errors.Is(err, apierr.ErrInvalidArgument) || c.ConfirmFailures != 1 {
		t.Fatalf("Confirm(wrong) = %v, %v (failures %d); want StillPending, CODE_MISMATCH, 1", out, err, c.ConfirmFailures)
	}
	// Case, spaces and hyphens do not matter.
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	if out, err := c.Confirm(typed, now.Add(time.Minute)); out != BecameVerified || err != nil || c.State != Verified {
		t.Fatalf("Confirm(%q) = %v, %v; want BecameVerified", typed, out, err)
	}
	if c.RuleVersion == "" || !c.VerifyTime.Equal(now.Add(time.Minute)) {
		t.Fatalf("verified challenge rule version %q at %v; want set, at %v", c.RuleVersion, c.VerifyTime, now.Add(time.Minute))
	}
	if out, err := c.Confirm(code, now.Add(2*time.Minute)); out != NoChange || apierr.ReasonOf(err) != "CODE_ALREADY_USED" {
		t.Fatalf("Confirm(code) again = %v, %v; want NoChange, CODE_ALREADY_USED", out, err)
	}
}

func TestEmailGuessingFails(t *testing.T) {
	c, code := newEmail(t, "example.com", "")
	for i := 1; i <= MaxConfirmFailures; i++ {
		out, err := c.Confirm("wrong", now)
		want := StillPending
		if i == MaxConfirmFailures {
			want = BecameFailed
		}
		if out != want || apierr.ReasonOf(err) != "CODE_MISMATCH" {
			t.Fatalf("Confirm(wrong) #%d = %v, %v; want %v, CODE_MISMATCH", i, out, err, want)
		}
	}
	if c.State != Failed || c.LastError == "" {
		t.Fatalf("after %d wrong codes state = %s (%q); want FAILED with a cause", MaxConfirmFailures, c.State, c.LastError)
	}
	if out, err := c.Confirm(code, now); out != NoChange || apierr.ReasonOf(err) != "CHALLENGE_NOT_PENDING" {
		t.Fatalf("Confirm(right code) after failing = %v, %v; want NoChange, CHALLENGE_NOT_PENDING", out, err)
	}
}

func TestEmailExpiry(t *testing.T) {
	c, code := newEmail(t, "example.com", "")
	// The worker has nothing to poll before expiry.
	if out := c.RecordCheck(errors.New("x"), dcvPolicy, now.Add(time.Hour)); out != NoChange || c.CheckCount != 0 {
		t.Fatalf("RecordCheck(EMAIL) before expiry = %v (checks %d); want NoChange, no check counted", out, c.CheckCount)
	}
	late := c
	if out, err := late.Confirm(code, c.ExpireTime); out != BecameFailed || apierr.ReasonOf(err) != "CHALLENGE_EXPIRED" || !errors.Is(err, apierr.ErrFailedPrecondition) {
		t.Fatalf("Confirm at expiry = %v, %v; want BecameFailed, CHALLENGE_EXPIRED", out, err)
	}
	if out := c.RecordCheck(errors.New("x"), dcvPolicy, c.ExpireTime); out != BecameFailed || c.State != Failed || !strings.Contains(c.LastError, "admin@example.com") {
		t.Fatalf("RecordCheck(EMAIL) at expiry = %v, %s %q; want BecameFailed naming the address", out, c.State, c.LastError)
	}

	dns, _, _ := NewChallenge(Spec{Name: "example.com", Method: DNSTXT}, dcvPolicy, now)
	if out, err := dns.Confirm("code", now); out != NoChange || apierr.ReasonOf(err) != "NOT_EMAIL_CHALLENGE" {
		t.Fatalf("Confirm(DNS_TXT challenge) = %v, %v; want NoChange, NOT_EMAIL_CHALLENGE", out, err)
	}
}

func TestValidationCovers(t *testing.T) {
	const day = 24 * time.Hour
	late2026 := time.Date(2026, time.November, 21, 0, 0, 0, 0, time.UTC)
	at2027 := time.Date(2027, time.March, 15, 0, 0, 0, 0, time.UTC)
	at2028 := time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC)
	v := func(name string, m Method, at time.Time) Validation {
		return Validation{Domain: name, Method: m, VerifyTime: at, RuleVersion: "r"}
	}
	tests := []struct {
		v    Validation
		name string
		now  time.Time
		want bool
	}{
		{v("example.com", HTTPFile, late2026.Add(-199*day)), "example.com", late2026, true},
		{v("example.com", HTTPFile, late2026.Add(-200*day)), "example.com", late2026, false},
		{v("example.com", HTTPFile, late2026), "www.example.com", late2026, false},
		{v("example.com", DNSTXT, late2026.Add(time.Hour)), "example.com", late2026, false}, // from the future
		{v("example.com", DNSTXT, at2027.Add(-99*day)), "example.com", at2027, true},
		{v("example.com", DNSTXT, at2027.Add(-100*day)), "example.com", at2027, false}, // 100 days from 2027-03-15
		{v("*.example.com", DNSTXT, late2026.Add(-day)), "*.example.com", late2026, true},
		{v("*.example.com", DNSCNAME, late2026.Add(-day)), "*.example.com", late2026, true},
		{v("*.example.com", Email, late2026.Add(-day)), "*.example.com", late2026, false},
		{v("*.example.com", HTTPFile, late2026.Add(-day)), "*.example.com", late2026, false},
		{v("example.com", Email, late2026.Add(-day)), "example.com", late2026, true},
		{v("example.com", Email, at2028.Add(-day)), "example.com", at2028, false}, // email no longer allowed
	}
	for _, tt := range tests {
		if got := tt.v.Covers(tt.name, tt.now); got != tt.want {
			t.Errorf("%+v.Covers(%q, %v) = %v; want %v", tt.v, tt.name, tt.now, got, tt.want)
		}
	}
}

func TestNewReusedChallenge(t *testing.T) {
	orig := Validation{Domain: "example.com", Method: DNSCNAME, VerifyTime: now.Add(-10 * 24 * time.Hour), RuleVersion: "BR-old", Challenge: "c0",
		Perspectives: []PerspectiveResult{{Perspective: "us-east", RIR: "ARIN", Corroborates: true}}}
	c := NewReusedChallenge(Spec{ID: "c1", Application: "applications/b", Attempt: 2, Name: "example.com", Method: HTTPFile}, orig, now)
	if c.State != Verified || !c.Reused || c.Method != DNSCNAME || c.RuleVersion != "BR-old" || !c.ValidationTime.Equal(orig.VerifyTime) || c.Application != "applications/b" ||
		!reflect.DeepEqual(c.Perspectives, orig.Perspectives) {
		t.Fatalf("NewReusedChallenge = %+v; want VERIFIED, reused, DNS_CNAME, BR-old, validation time %v", c, orig.VerifyTime)
	}
	var latest Validation
	if !latest.Newer(orig) || latest.Newer(Validation{VerifyTime: orig.VerifyTime.Add(-time.Hour)}) || !reflect.DeepEqual(latest, orig) {
		t.Fatalf("Newer did not keep the latest validation: %+v", latest)
	}
}
