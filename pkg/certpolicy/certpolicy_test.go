package certpolicy

import (
	"strings"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	const d = 24 * time.Hour
	sc081 := time.Date(2026, time.March, 15, 0, 0, 0, 0, time.UTC)
	step2 := time.Date(2027, time.March, 15, 0, 0, 0, 0, time.UTC)
	step3 := time.Date(2029, time.March, 15, 0, 0, 0, 0, time.UTC)
	// The same instant in another zone must give the same answer: the
	// dates are 00:00 UTC, not local midnight.
	tokyo := time.FixedZone("JST", 9*3600)

	tests := []struct {
		name     string
		t        time.Time
		validity time.Duration
		dcv      time.Duration
		version  string
	}{
		{"long before", time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC), 398 * d, 398 * d, "BR-2.2/pre-SC-081"},
		{"zero time", time.Time{}, 398 * d, 398 * d, "BR-2.2/pre-SC-081"},
		{"1ns before 2026-03-15", sc081.Add(-time.Nanosecond), 398 * d, 398 * d, "BR-2.2/pre-SC-081"},
		{"at 2026-03-15", sc081, 200 * d, 200 * d, "BR-2.2/SC-081-2026-03-15"},
		{"at 2026-03-15 in JST", sc081.In(tokyo), 200 * d, 200 * d, "BR-2.2/SC-081-2026-03-15"},
		{"2026-03-15 00:00 JST is still before", time.Date(2026, time.March, 15, 0, 0, 0, 0, tokyo), 398 * d, 398 * d, "BR-2.2/pre-SC-081"},
		{"late 2026", time.Date(2026, time.November, 21, 12, 0, 0, 0, time.UTC), 200 * d, 200 * d, "BR-2.2/SC-081-2026-03-15"},
		{"1ns before 2027-03-15", step2.Add(-time.Nanosecond), 200 * d, 200 * d, "BR-2.2/SC-081-2026-03-15"},
		{"at 2027-03-15", step2, 100 * d, 100 * d, "BR-2.2/SC-081-2027-03-15"},
		{"1ns before 2029-03-15", step3.Add(-time.Nanosecond), 100 * d, 100 * d, "BR-2.2/SC-081-2027-03-15"},
		{"at 2029-03-15", step3, 47 * d, 10 * d, "BR-2.2/SC-081-2029-03-15"},
		{"far future", time.Date(2100, time.January, 1, 0, 0, 0, 0, time.UTC), 47 * d, 10 * d, "BR-2.2/SC-081-2029-03-15"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MaxValidity(tc.t); got != tc.validity {
				t.Errorf("MaxValidity(%v) = %v; want %v", tc.t, got, tc.validity)
			}
			if got, want := DefaultValidity(tc.t), tc.validity-d; got != want {
				t.Errorf("DefaultValidity(%v) = %v; want %v", tc.t, got, want)
			}
			if got := DomainValidationReuse(tc.t); got != tc.dcv {
				t.Errorf("DomainValidationReuse(%v) = %v; want %v", tc.t, got, tc.dcv)
			}
			if got := Version(tc.t); got != tc.version {
				t.Errorf("Version(%v) = %q; want %q", tc.t, got, tc.version)
			}
		})
	}
}

func TestDefaultValidityLate2026(t *testing.T) {
	now := time.Date(2026, time.November, 21, 0, 0, 0, 0, time.UTC)
	if got, want := DefaultValidity(now), 199*24*time.Hour; got != want {
		t.Errorf("DefaultValidity(%v) = %v; want %v", now, got, want)
	}
}

func TestConstants(t *testing.T) {
	if got, want := OrganizationValidationReuse, 398*24*time.Hour; got != want {
		t.Errorf("OrganizationValidationReuse = %v; want %v", got, want)
	}
	if got, want := MaxTokenLifetime, 30*24*time.Hour; got != want {
		t.Errorf("MaxTokenLifetime = %v; want %v", got, want)
	}
}

func TestEmailDCV(t *testing.T) {
	discouraged := time.Date(2026, time.March, 15, 0, 0, 0, 0, time.UTC)
	forbidden := time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		t           time.Time
		allowed     bool
		wantWarning bool
	}{
		{time.Date(2025, time.June, 1, 0, 0, 0, 0, time.UTC), true, false},
		{discouraged.Add(-time.Nanosecond), true, false},
		{discouraged, true, true},
		{time.Date(2026, time.November, 21, 12, 0, 0, 0, time.UTC), true, true},
		{forbidden.Add(-time.Nanosecond), true, true},
		{forbidden, false, true},
		{forbidden.In(time.FixedZone("JST", 9*3600)), false, true},
		{time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC), false, true},
	}
	for _, tt := range tests {
		allowed, warning := EmailDCV(tt.t)
		if allowed != tt.allowed || (warning != "") != tt.wantWarning {
			t.Errorf("EmailDCV(%v) = %v, %q; want %v and a warning: %v", tt.t, allowed, warning, tt.allowed, tt.wantWarning)
		}
		if warning != "" && !strings.Contains(warning, "2028-03-15") {
			t.Errorf("EmailDCV(%v) warning %q does not name 2028-03-15", tt.t, warning)
		}
		if allowed && warning != "" && !strings.Contains(warning, "SHOULD NOT") {
			t.Errorf("EmailDCV(%v) warning %q does not say SHOULD NOT", tt.t, warning)
		}
		if !allowed && !strings.Contains(warning, "DNS_TXT") {
			t.Errorf("EmailDCV(%v) = %q; want it to suggest DNS_TXT", tt.t, warning)
		}
	}
}

func TestMethodAllowed(t *testing.T) {
	late2026 := time.Date(2026, time.November, 21, 12, 0, 0, 0, time.UTC)
	emailEnd := time.Date(2028, time.March, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		method   string
		wildcard bool
		t        time.Time
		allowed  bool
		why      string
	}{
		{"DNS_TXT", false, late2026, true, ""},
		{"DNS_TXT", true, emailEnd, true, ""},
		{"DNS_CNAME", true, late2026, true, ""},
		{"HTTP_FILE", false, emailEnd, true, ""},
		{"HTTP_FILE", true, late2026, false, "wildcard"},
		{"EMAIL", false, late2026, true, ""},
		{"EMAIL", true, late2026, true, ""},
		{"EMAIL", false, emailEnd.Add(-time.Nanosecond), true, ""},
		{"EMAIL", false, emailEnd, false, "2028-03-15"},
		{"EMAIL", true, emailEnd.Add(time.Hour), false, "2028-03-15"},
		{"WHOIS", false, late2026, false, "WHOIS"},
		{"", false, late2026, false, "not one"},
	}
	for _, tt := range tests {
		allowed, why := MethodAllowed(tt.method, tt.wildcard, tt.t)
		if allowed != tt.allowed || !strings.Contains(why, tt.why) || (allowed && why != "") {
			t.Errorf("MethodAllowed(%q, wildcard %v, %v) = %v, %q; want %v with %q", tt.method, tt.wildcard, tt.t, allowed, why, tt.allowed, tt.why)
		}
	}
}

func TestPerspectiveQuorum(t *testing.T) {
	tests := []struct {
		at                      time.Time
		remote, maxBad, minRIRs int
	}{
		{date(2025, time.September, 14).Add(23 * time.Hour), 0, 0, 0},
		{date(2025, time.September, 15), 2, 1, 2},
		{date(2026, time.March, 14).Add(23*time.Hour + 59*time.Minute), 2, 1, 2},
		{date(2026, time.March, 15), 3, 1, 2},
		{date(2026, time.June, 14), 3, 1, 2},
		{date(2026, time.June, 15), 4, 1, 2},
		{date(2026, time.December, 2), 4, 1, 2},
		{date(2026, time.December, 15).Add(-time.Nanosecond), 4, 1, 2},
		{date(2026, time.December, 15), 5, 1, 2},
		{date(2030, time.January, 1), 5, 1, 2},
	}
	for _, tt := range tests {
		q := PerspectiveQuorum(tt.at)
		if q.Remote != tt.remote || q.MaxNonCorroborating != tt.maxBad || q.MinRIRs != tt.minRIRs {
			t.Errorf("PerspectiveQuorum(%v) = %+v; want %d remote, at most %d disagreeing, %d RIRs", tt.at, q, tt.remote, tt.maxBad, tt.minRIRs)
		}
	}
}
