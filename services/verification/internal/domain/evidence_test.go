package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

func TestEvidencePermitsSigning(t *testing.T) {
	day := 24 * time.Hour
	late2026 := time.Date(2026, time.November, 21, 12, 0, 0, 0, time.UTC)
	april2026 := time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC)
	emailEnd := time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		e      Evidence
		at     time.Time
		reason string // "" = permitted
	}{
		{"fresh DNS", Evidence{Domain: "a.test", Method: DNSTXT, ValidationTime: late2026}, late2026, ""},
		{"one second under 200 days", Evidence{Domain: "a.test", Method: DNSTXT, ValidationTime: april2026}, april2026.Add(200*day - time.Second), ""},
		{"200 days", Evidence{Domain: "a.test", Method: DNSTXT, ValidationTime: april2026}, april2026.Add(200 * day), ReasonValidationExpired},
		// 2027-03-15 shortens the period to 100 days for validations made before.
		{"150 days across 2027-03-15", Evidence{Domain: "a.test", Method: DNSCNAME, ValidationTime: late2026}, late2026.Add(150 * day), ReasonValidationExpired},
		{"reused keeps its original time", Evidence{Domain: "a.test", Method: DNSTXT, ValidationTime: april2026, Reused: true}, april2026.Add(200 * day), ReasonValidationExpired},
		{"from the future", Evidence{Domain: "a.test", Method: DNSTXT, ValidationTime: late2026.Add(time.Minute)}, late2026, ReasonValidationMissing},
		{"email in 2026", Evidence{Domain: "a.test", Method: Email, ValidationTime: late2026}, late2026.Add(day), ""},
		{"email for a wildcard, fresh", Evidence{Domain: "*.a.test", Method: Email, ValidationTime: late2026}, late2026, ""},
		{"email for a wildcard, reused", Evidence{Domain: "*.a.test", Method: Email, ValidationTime: late2026, Reused: true}, late2026, ReasonMethodNotAllowed},
		{"email signed from 2028-03-15", Evidence{Domain: "a.test", Method: Email, ValidationTime: emailEnd.Add(-day)}, emailEnd, ReasonMethodNotAllowed},
		{"http for a wildcard", Evidence{Domain: "*.a.test", Method: HTTPFile, ValidationTime: late2026}, late2026, ReasonMethodNotAllowed},
		{"dns for a wildcard, reused", Evidence{Domain: "*.a.test", Method: DNSTXT, ValidationTime: late2026, Reused: true}, late2026, ""},
	}
	for _, tt := range tests {
		err := tt.e.PermitsSigning(tt.at)
		if tt.reason == "" && err != nil || tt.reason != "" && !errors.Is(err, &apierr.Error{Reason: tt.reason}) {
			t.Errorf("%s: PermitsSigning(%v) = %v; want reason %q", tt.name, tt.at, err, tt.reason)
		}
		if err != nil && apierr.KindOf(err) != apierr.FailedPrecondition {
			t.Errorf("%s: PermitsSigning kind = %v; want FailedPrecondition", tt.name, apierr.KindOf(err))
		}
	}
}

func TestChallengeEvidence(t *testing.T) {
	at := time.Date(2026, time.November, 21, 12, 0, 0, 0, time.UTC)
	if _, ok := (Challenge{Domain: "a.test", State: Pending, VerifyTime: at}).Evidence(); ok {
		t.Errorf("a PENDING challenge gave evidence")
	}
	e, ok := Challenge{Domain: "a.test", Method: DNSTXT, State: Verified, VerifyTime: at}.Evidence()
	if !ok || !e.ValidationTime.Equal(at) || e.Reused {
		t.Errorf("VERIFIED challenge evidence = %v, %v; want validated at %v", e, ok, at)
	}
	orig := at.Add(-30 * 24 * time.Hour)
	e, ok = Challenge{Domain: "a.test", Method: DNSTXT, State: Verified, VerifyTime: at, Reused: true, ValidationTime: orig}.Evidence()
	if !ok || !e.ValidationTime.Equal(orig) || !e.Reused {
		t.Errorf("reused challenge evidence = %v, %v; want validated at the original %v", e, ok, orig)
	}
}
