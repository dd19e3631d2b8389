// Package certpolicy holds the CA/Browser Forum Baseline Requirements limits
// (v2.2.x, with the schedule of ballot SC-081) that depend on the issuance date.
//
// A "day" is 86,400 seconds, as the Baseline Requirements define it, so every
// duration here is a whole multiple of 24h regardless of time zones or leap
// seconds.
package certpolicy

import "time"

const day = 24 * time.Hour

// OrganizationValidationReuse is how long validated subject identity
// information (organization details) may be reused: 398 days.
const OrganizationValidationReuse = 398 * day

// MaxTokenLifetime is the longest a random value used for domain control
// validation may be used after it was generated: 30 days.
const MaxTokenLifetime = 30 * day

// step is one line of the SC-081 schedule: the rules in force from "from".
type step struct {
	from        time.Time
	validity    time.Duration
	dcvReuse    time.Duration
	versionName string
}

// schedule is ordered by date, newest first, so the first step whose start is
// not after t is the one in force.
var schedule = []step{
	{date(2029, time.March, 15), 47 * day, 10 * day, "BR-2.2/SC-081-2029-03-15"},
	{date(2027, time.March, 15), 100 * day, 100 * day, "BR-2.2/SC-081-2027-03-15"},
	{date(2026, time.March, 15), 200 * day, 200 * day, "BR-2.2/SC-081-2026-03-15"},
	{time.Time{}, 398 * day, 398 * day, "BR-2.2/pre-SC-081"},
}

func date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func rulesAt(t time.Time) step {
	for _, s := range schedule {
		if !t.Before(s.from) {
			return s
		}
	}
	// Unreachable: the last step starts at the zero time, and times before
	// it still get the oldest (most lenient) rules.
	return schedule[len(schedule)-1]
}

// MaxValidity is the longest TLS certificate validity allowed for a
// certificate issued at t: 398 days before 2026-03-15, 200 days from
// 2026-03-15, 100 days from 2027-03-15 and 47 days from 2029-03-15 (all at
// 00:00 UTC).
//
// The validity period is inclusive of both NotBefore and NotAfter (RFC 5280),
// so a certificate of validity v has NotAfter = NotBefore + v - 1s.
func MaxValidity(t time.Time) time.Duration {
	return rulesAt(t).validity
}

// DefaultValidity is the validity certflow issues unless asked otherwise: one
// day under MaxValidity, so that clock skew or rounding can never push a
// default certificate over the limit.
func DefaultValidity(t time.Time) time.Duration {
	return MaxValidity(t) - day
}

// DomainValidationReuse is how long a completed domain validation may be
// reused for a certificate issued at t: 398 days before 2026-03-15, 200 days
// from 2026-03-15, 100 days from 2027-03-15 and 10 days from 2029-03-15.
func DomainValidationReuse(t time.Time) time.Duration {
	return rulesAt(t).dcvReuse
}

// Version names the rule set in force at t, for recording with each
// validation and certificate so that later audits know which limits applied,
// e.g. "BR-2.2/SC-081-2026-03-15".
func Version(t time.Time) string {
	return rulesAt(t).versionName
}

// Email-based domain validation (BR 3.2.2.4.4, constructed email to a domain
// contact) is being phased out: SHOULD NOT from 2026-03-15, MUST NOT from
// 2028-03-15 (00:00 UTC).
var (
	emailDiscouragedFrom = date(2026, time.March, 15)
	emailForbiddenFrom   = date(2028, time.March, 15)
)

// EmailDCV says whether a domain may be validated by email to a constructed
// address (admin@, administrator@, webmaster@, hostmaster@, postmaster@) at
// t. Before 2026-03-15 it is allowed with no warning; from 2026-03-15 it is
// allowed with a warning (the Baseline Requirements say SHOULD NOT); from
// 2028-03-15 it is not allowed, and the string says why and what to use
// instead.
func EmailDCV(t time.Time) (allowed bool, warning string) {
	const end = "2028-03-15"
	switch {
	case !t.Before(emailForbiddenFrom):
		return false, "validation by email to a constructed address (BR 3.2.2.4.4) is not allowed from " + end +
			"; use DNS_TXT (or DNS_CNAME or HTTP_FILE) instead"
	case !t.Before(emailDiscouragedFrom):
		return true, "the Baseline Requirements say validation by email to a constructed address (BR 3.2.2.4.4) SHOULD NOT be used from 2026-03-15, and it stops being accepted on " + end +
			"; prefer DNS_TXT"
	}
	return true, ""
}

// methodRule is one line of the table of domain validation methods: the
// Baseline Requirements section, whether it can validate a wildcard name,
// and from when a validation by it may no longer be relied on (zero: no end
// is scheduled).
type methodRule struct {
	method      string
	section     string
	wildcard    bool
	forbiddenAt time.Time
}

// methods are the domain validation methods certflow offers, by their API
// name. A validation is relied on twice: when it is made and when the
// certificate is signed, so a method's end applies to validations made
// before it too (the conservative reading of BR 3.2.2.4).
var methods = []methodRule{
	{"DNS_TXT", "BR 3.2.2.4.7", true, time.Time{}},
	{"DNS_CNAME", "BR 3.2.2.4.7", true, time.Time{}},
	{"HTTP_FILE", "BR 3.2.2.4.18", false, time.Time{}},
	{"EMAIL", "BR 3.2.2.4.4", true, emailForbiddenFrom},
}

// MethodAllowed says whether a domain validation done by method (DNS_TXT,
// DNS_CNAME, HTTP_FILE, EMAIL) may be relied on at t for a name, wildcard or
// not. When it may not, the string says why.
func MethodAllowed(method string, wildcard bool, t time.Time) (bool, string) {
	for _, m := range methods {
		if m.method != method {
			continue
		}
		if wildcard && !m.wildcard {
			return false, method + " (" + m.section + ") cannot validate a wildcard name; only DNS (DNS_TXT or DNS_CNAME) can"
		}
		if !m.forbiddenAt.IsZero() && !t.Before(m.forbiddenAt) {
			return false, method + " (" + m.section + ") may not be relied on from " + m.forbiddenAt.Format(time.DateOnly) +
				"; validate the name again by DNS_TXT (or DNS_CNAME or HTTP_FILE)"
		}
		return true, ""
	}
	return false, "validation method " + method + " is not one the Baseline Requirements allow certflow to use"
}

// Quorum is what multi-perspective issuance corroboration (BR 3.2.2.9)
// requires at a date: at least Remote remote perspectives are asked, at most
// MaxNonCorroborating of them may disagree (a perspective that does not
// answer disagrees), and the corroborating ones are in at least MinRIRs
// Regional Internet Registries' service regions. Remote 0 means no
// corroboration is required.
type Quorum struct {
	From                time.Time
	Remote              int
	MaxNonCorroborating int
	MinRIRs             int
}

// quorums is the BR 3.2.2.9 phase-in, newest first: 2 remote perspectives
// from 2025-09-15, 3 from 2026-03-15, 4 from 2026-06-15, 5 from
// 2026-12-15; with up to 5 perspectives at most one may disagree, and the
// corroborating ones span at least 2 RIRs.
var quorums = []Quorum{
	{date(2026, time.December, 15), 5, 1, 2},
	{date(2026, time.June, 15), 4, 1, 2},
	{date(2026, time.March, 15), 3, 1, 2},
	{date(2025, time.September, 15), 2, 1, 2},
	{time.Time{}, 0, 0, 0},
}

// PerspectiveQuorum is the corroboration quorum in force at t.
func PerspectiveQuorum(t time.Time) Quorum {
	for _, q := range quorums {
		if !t.Before(q.From) {
			return q
		}
	}
	return quorums[len(quorums)-1]
}

// MaxRemotePerspectives is the most remote perspectives any phase of the
// table asks for.
func MaxRemotePerspectives() int {
	n := 0
	for _, q := range quorums {
		n = max(n, q.Remote)
	}
	return n
}

// RIRs are the five Regional Internet Registries a perspective's region
// may be in.
var RIRs = []string{"AFRINIC", "APNIC", "ARIN", "LACNIC", "RIPE"}
