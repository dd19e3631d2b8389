// Package caa decides whether CAA records (RFC 8659) let this CA issue for a
// set of names, as the Baseline Requirements (3.2.2.8) require before
// issuance.
//
// For each name the search starts at the name (a wildcard's base name) and
// climbs to its parents up to, not including, the top-level domain; the
// first non-empty CAA RRset is the relevant one (CNAMEs are followed by the
// resolver at each name, as RFC 8659 says). Issuance is allowed when no
// relevant RRset exists, or when it has no property restricting issuance, or
// when one of its issue records (issuewild for a wildcard, if the set has
// any) names one of the CA's identities. A critical property (flag 128) this
// CA does not understand forbids issuance, and so does any failed lookup:
// a lookup failure is never permission.
//
// Parameters after ';' in issue values (accounturi, validationmethods) are
// not interpreted: only the issuer domain name is compared.
package caa

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/certflow/certflow/services/verification/internal/dcv"
)

// Resolver looks up the CAA RRset at exactly one name; no records is an
// error wrapping dcv.ErrNoRecords, anything else that is not an answer is a
// failure.
type Resolver interface {
	LookupCAA(ctx context.Context, name string) ([]dcv.CAARecord, error)
}

// Checker checks CAA for the CA's identities.
type Checker struct {
	Resolver Resolver
	// Identities are the issuer domain names that mean this CA, e.g.
	// "certflow.test"; compared without case.
	Identities []string
}

// Result is the decision for a set of names.
type Result struct {
	// Allowed is true when every name permits issuance.
	Allowed bool
	// Domain is the first name that does not, as asked (a wildcard stays a
	// wildcard); Reason says which record (or lookup) stops it and what to
	// do.
	Domain string
	Reason string
	// LookupFailed is true when the answer is no because a lookup failed.
	LookupFailed bool
}

// criticalFlag is the Issuer Critical flag: bit 0, the most significant.
const criticalFlag = 128

// knownTags are the properties this CA understands, so a critical one of
// them does not forbid issuance: RFC 8659, RFC 9495 (issuemail), the BR's
// contactemail and contactphone, and issuevmc.
var knownTags = map[string]bool{
	"issue": true, "issuewild": true, "iodef": true,
	"issuemail": true, "issuevmc": true, "contactemail": true, "contactphone": true,
}

// Check decides for names (normalized: lower-case, no trailing dot; "*."
// marks a wildcard), stopping at the first that does not allow issuance.
func (c *Checker) Check(ctx context.Context, names []string) (Result, error) {
	if c.Resolver == nil || len(c.Identities) == 0 {
		return Result{}, errors.New("caa: checker needs a resolver and at least one identity")
	}
	sets := map[string]lookup{} // one lookup per owner name per call
	for _, name := range names {
		if r := c.checkName(ctx, name, sets); !r.Allowed {
			return r, nil
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
	}
	return Result{Allowed: true}, nil
}

type lookup struct {
	records []dcv.CAARecord
	err     error
}

func (c *Checker) checkName(ctx context.Context, name string, sets map[string]lookup) Result {
	wildcard := strings.HasPrefix(name, "*.")
	base := strings.TrimSuffix(strings.TrimPrefix(name, "*."), ".")
	// RFC 8659 §3: climb to, and including, the TLD (the root is not
	// searched).
	for owner := base; owner != ""; owner = parent(owner) {
		l, ok := sets[owner]
		if !ok {
			l.records, l.err = c.Resolver.LookupCAA(ctx, owner)
			if errors.Is(l.err, dcv.ErrNoRecords) {
				l.records, l.err = nil, nil
			}
			sets[owner] = l
		}
		if l.err != nil {
			return Result{Domain: name, LookupFailed: true, Reason: fmt.Sprintf(
				"CAA lookup at %s failed (%v); a failed lookup is never permission to issue: make the domain's DNS servers answer CAA queries and check again",
				owner, l.err)}
		}
		if len(l.records) == 0 {
			continue
		}
		if reason := c.evaluate(owner, l.records, wildcard); reason != "" {
			return Result{Domain: name, Reason: reason}
		}
		return Result{Allowed: true}
	}
	return Result{Allowed: true}
}

// evaluate applies the relevant RRset found at owner; "" means issuance is
// allowed, otherwise it is the reason it is not.
func (c *Checker) evaluate(owner string, set []dcv.CAARecord, wildcard bool) string {
	for _, r := range set {
		if r.Flag&criticalFlag != 0 && !knownTags[strings.ToLower(r.Tag)] {
			return fmt.Sprintf("CAA at %s: %s is a critical property this CA does not understand, so no certificate may be issued; remove it or clear its critical flag",
				owner, format(r))
		}
	}
	tag := "issue"
	if wildcard && hasTag(set, "issuewild") {
		tag = "issuewild"
	}
	var restricting []string
	for _, r := range set {
		if !strings.EqualFold(r.Tag, tag) {
			continue
		}
		if c.authorizes(r.Value) {
			return ""
		}
		restricting = append(restricting, format(r))
	}
	if len(restricting) == 0 {
		return "" // only iodef or other non-restricting properties
	}
	return fmt.Sprintf("CAA at %s: %s does not authorize %s; add 0 %s %q or remove it",
		owner, strings.Join(restricting, ", "), c.Identities[0], tag, c.Identities[0])
}

// authorizes reports whether an issue or issuewild value names one of the
// CA's identities: the issuer domain name is what comes before any ';'.
// An empty one (as in ";") names no CA.
func (c *Checker) authorizes(value string) bool {
	issuer, _, _ := strings.Cut(value, ";")
	issuer = strings.TrimSuffix(strings.TrimSpace(issuer), ".")
	if issuer == "" {
		return false
	}
	for _, id := range c.Identities {
		if strings.EqualFold(issuer, strings.TrimSuffix(strings.TrimSpace(id), ".")) {
			return true
		}
	}
	return false
}

func hasTag(set []dcv.CAARecord, tag string) bool {
	for _, r := range set {
		if strings.EqualFold(r.Tag, tag) {
			return true
		}
	}
	return false
}

// format renders a record as in a zone file: 0 issue "ca.example".
func format(r dcv.CAARecord) string {
	return fmt.Sprintf("%d %s %q", r.Flag, r.Tag, r.Value)
}

// parent drops the leftmost label: "a.example.com" -> "example.com",
// "com" -> "".
func parent(name string) string {
	i := strings.IndexByte(name, '.')
	if i < 0 {
		return ""
	}
	return name[i+1:]
}
