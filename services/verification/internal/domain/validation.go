package domain

import (
	"time"

	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/domainname"
)

// Validation is an account's latest completed validation of one name, kept
// so that later applications of the same account can reuse it within the
// Baseline Requirements' reuse period (BR 4.2.1, SC-081).
type Validation struct {
	Domain      string
	Method      Method
	VerifyTime  time.Time
	RuleVersion string
	// Challenge is the id of the challenge that proved it.
	Challenge string
	// Perspectives corroborated it (BR 3.2.2.9); a reuse carries them.
	Perspectives []PerspectiveResult
}

// ValidationOf is the validation a verified challenge stands for.
func ValidationOf(id string, c Challenge) Validation {
	return Validation{Domain: c.Domain, Method: c.Method, VerifyTime: c.VerifyTime, RuleVersion: c.RuleVersion, Challenge: id, Perspectives: c.Perspectives}
}

// Newer keeps the later of v and n in v and reports whether v changed.
func (v *Validation) Newer(n Validation) bool {
	if !n.VerifyTime.After(v.VerifyTime) {
		return false
	}
	*v = n
	return true
}

// Covers reports whether v may stand in for validating name at now: it is of
// the same name, younger than certpolicy.DomainValidationReuse(now), done by
// a method that is still allowed, and, for a wildcard, done through DNS (an
// HTTP or EMAIL validation never covers a wildcard).
func (v Validation) Covers(name string, now time.Time) bool {
	if v.Domain != name || v.VerifyTime.IsZero() || v.VerifyTime.After(now) {
		return false
	}
	if now.Sub(v.VerifyTime) >= certpolicy.DomainValidationReuse(now) {
		return false
	}
	if domainname.IsWildcard(name) && !v.Method.IsDNS() {
		return false
	}
	// An email validation is not relied on once the method is forbidden,
	// even if it was done before (the conservative reading of BR 3.2.2.4.4).
	if allowed, _ := certpolicy.EmailDCV(now); v.Method == Email && !allowed {
		return false
	}
	return true
}

// NewReusedChallenge is a challenge satisfied at once by an earlier
// validation v of the same account: VERIFIED, with v's method and rule
// version and ValidationTime = v's verify time. Nothing is published, so it
// has no token; ExpireTime is when v stops being reusable under the rules in
// force now.
func NewReusedChallenge(s Spec, v Validation, now time.Time) Challenge {
	now = now.UTC()
	return Challenge{
		Application: s.Application, Attempt: s.Attempt, Domain: v.Domain, Method: v.Method, State: Verified,
		RuleVersion: v.RuleVersion, CreateTime: now, VerifyTime: now, NextCheckTime: now,
		ExpireTime: v.VerifyTime.Add(certpolicy.DomainValidationReuse(now)),
		Reused:     true, ValidationTime: v.VerifyTime, Perspectives: v.Perspectives,
	}
}
