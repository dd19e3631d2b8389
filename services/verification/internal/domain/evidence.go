package domain

import (
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/domainname"
)

// Reasons the CA may not sign a name (AuthorizeIssuance). Each is a
// FailedPrecondition naming the domain in ErrorInfo metadata "domain",
// except CAA_LOOKUP_FAILED, which is Unavailable: a lookup failure is never
// a permission, but it may pass.
const (
	ReasonValidationMissing = "VALIDATION_MISSING"
	ReasonValidationExpired = "VALIDATION_EXPIRED"
	ReasonMethodNotAllowed  = "METHOD_NOT_ALLOWED"
	ReasonCAAForbids        = "CAA_FORBIDS"
	ReasonCAALookupFailed   = "CAA_LOOKUP_FAILED"
	ReasonNamesMismatch     = "NAMES_MISMATCH"
	// ReasonNotCorroborated: the remote perspectives (BR 3.2.2.9) did not
	// corroborate CAA at signing time.
	ReasonNotCorroborated = "NOT_CORROBORATED"
)

// Evidence is what a VERIFIED challenge proves about its name: control
// shown by Method at ValidationTime (for a reused validation, the original
// time, from which the reuse period counts).
type Evidence struct {
	Domain         string
	Method         Method
	ValidationTime time.Time
	RuleVersion    string
	Reused         bool
	// Perspectives corroborated the validation (for a reused one, the
	// original validation's).
	Perspectives []PerspectiveResult
}

// Evidence returns what c proves, and false when it proves nothing (it is
// not VERIFIED).
func (c Challenge) Evidence() (Evidence, bool) {
	if c.State != Verified {
		return Evidence{}, false
	}
	at := c.VerifyTime
	if c.Reused {
		at = c.ValidationTime
	}
	if at.IsZero() {
		return Evidence{}, false
	}
	return Evidence{Domain: c.Domain, Method: c.Method, ValidationTime: at, RuleVersion: c.RuleVersion, Reused: c.Reused, Perspectives: c.Perspectives}, true
}

// ExpireTime is when e stops being usable under the rules in force at t.
func (e Evidence) ExpireTime(t time.Time) time.Time {
	return e.ValidationTime.Add(certpolicy.DomainValidationReuse(t))
}

// PermitsSigning says whether a certificate for e's name may be signed at
// t on e: by a method allowed at t for the name (only DNS for a reused
// validation of a wildcard, as in Covers), and younger than the reuse
// period in force at t (BR 4.2.1 with SC-081). The error is a
// FailedPrecondition with reason METHOD_NOT_ALLOWED or VALIDATION_EXPIRED
// that says what to do.
func (e Evidence) PermitsSigning(t time.Time) error {
	t = t.UTC()
	wildcard := domainname.IsWildcard(e.Domain)
	allowed, why := certpolicy.MethodAllowed(string(e.Method), wildcard, t)
	if allowed && wildcard && e.Reused && !e.Method.IsDNS() {
		allowed, why = false, "a reused "+string(e.Method)+" validation never covers a wildcard name; only DNS (DNS_TXT or DNS_CNAME) does"
	}
	if !allowed {
		return Refusal(ReasonMethodNotAllowed, e.Domain,
			"%s was validated by %s on %s, which cannot be relied on for a certificate signed on %s: %s; edit and resubmit the application",
			e.Domain, e.Method, day(e.ValidationTime), day(t), why).WithMeta("method", string(e.Method))
	}
	if e.ValidationTime.After(t) {
		// Clocks apart: evidence from the future is no evidence.
		return Refusal(ReasonValidationMissing, e.Domain, "the validation of %s is dated %s, after the signing time %s; retry later",
			e.Domain, e.ValidationTime.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	if reuse := certpolicy.DomainValidationReuse(t); t.Sub(e.ValidationTime) >= reuse {
		return Refusal(ReasonValidationExpired, e.Domain,
			"the validation of %s (%s, %s) is older than the %d days the Baseline Requirements allow for a certificate signed on %s (%s); resubmit the application to validate the name again",
			e.Domain, e.Method, e.ValidationTime.Format(time.RFC3339), int(reuse/(24*time.Hour)), day(t), certpolicy.Version(t)).
			WithMeta("validation_time", e.ValidationTime.Format(time.RFC3339)).WithMeta("expire_time", e.ExpireTime(t).Format(time.RFC3339))
	}
	return nil
}

// Refusal is a FailedPrecondition of reason about domain, with the domain
// in the ErrorInfo metadata.
func Refusal(reason, domain, format string, args ...any) *apierr.Error {
	return apierr.New(apierr.FailedPrecondition, reason, format, args...).WithMeta("domain", domain)
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }
