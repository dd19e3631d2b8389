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
// Parameters after ';' in issue values are interpreted as RFC 8657 says: a
// record with accounturi authorizes only the account whose URI is exactly
// that value, one with validationmethods only a validation by one of the
// listed methods (labels of the ACME registry, or "ca-" labels of this CA).
// A record whose value is malformed, or that repeats either parameter,
// authorizes nothing; other parameters are ignored.
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
	// AccountURIBase is the prefix of this CA's RFC 8657 account URIs: an
	// account's URI is AccountURIBase + "/" + the account id, for example
	// "https://certflow.test/accounts/acct-1". Required.
	AccountURIBase string
}

// Query is what CAA is checked for.
type Query struct {
	// Names are normalized: lower-case, no trailing dot; "*." marks a
	// wildcard.
	Names []string
	// Account is the id of the account the certificate is for. "" (a
	// pre-check that does not know it) leaves accounturi unevaluated; the
	// check right before signing always gives it.
	Account string
	// Methods gives, for a name, the RFC 8657 labels its validation method
	// goes by (domain.Method.CAALabels). nil (a pre-check before the names
	// are validated) leaves validationmethods unevaluated; a name it gives
	// no label matches no validationmethods list.
	Methods func(name string) []string
}

// AccountURI is the RFC 8657 account URI of account.
func (c *Checker) AccountURI(account string) string {
	return strings.TrimSuffix(c.AccountURIBase, "/") + "/" + account
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

// Check decides for q's names, stopping at the first that does not allow
// issuance.
func (c *Checker) Check(ctx context.Context, q Query) (Result, error) {
	if c.Resolver == nil || len(c.Identities) == 0 || c.AccountURIBase == "" {
		return Result{}, errors.New("caa: checker needs a resolver, at least one identity and an account URI base")
	}
	sets := map[string]lookup{} // one lookup per owner name per call
	for _, name := range q.Names {
		want := wanted{checkAccount: q.Account != "", checkMethod: q.Methods != nil}
		if want.checkAccount {
			want.accountURI = c.AccountURI(q.Account)
		}
		if want.checkMethod {
			want.methods = q.Methods(name)
		}
		if r := c.checkName(ctx, name, want, sets); !r.Allowed {
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

// wanted is what an issue record's parameters are compared with, for one
// name.
type wanted struct {
	checkAccount, checkMethod bool
	accountURI                string
	methods                   []string
}

func (c *Checker) checkName(ctx context.Context, name string, want wanted, sets map[string]lookup) Result {
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
		if reason := c.evaluate(owner, l.records, wildcard, want); reason != "" {
			return Result{Domain: name, Reason: reason}
		}
		return Result{Allowed: true}
	}
	return Result{Allowed: true}
}

// evaluate applies the relevant RRset found at owner; "" means issuance is
// allowed, otherwise it is the reason it is not.
func (c *Checker) evaluate(owner string, set []dcv.CAARecord, wildcard bool, want wanted) string {
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
	var restricting, ours []string
	for _, r := range set {
		if !strings.EqualFold(r.Tag, tag) {
			continue
		}
		why, named := c.authorizes(r.Value, want)
		if why == "" {
			return ""
		}
		restricting = append(restricting, format(r))
		if named {
			ours = append(ours, format(r)+" "+why)
		}
	}
	if len(restricting) == 0 {
		return "" // only iodef or other non-restricting properties
	}
	if len(ours) > 0 {
		// A record names this CA but its parameters leave this request
		// out: say which, since "add a record" would not help.
		return fmt.Sprintf("CAA at %s: %s; change the record's parameters or add one that covers this request",
			owner, strings.Join(ours, "; "))
	}
	return fmt.Sprintf("CAA at %s: %s does not authorize %s; add 0 %s %q or remove it",
		owner, strings.Join(restricting, ", "), c.Identities[0], tag, c.Identities[0])
}

// authorizes decides one issue or issuewild value: "" when it authorizes
// the request, otherwise why not, and whether it names one of the CA's
// identities (the issuer domain name before any ';', compared without
// case; an empty one, as in ";", names no CA).
func (c *Checker) authorizes(value string, want wanted) (string, bool) {
	issuer, params, err := parseValue(value)
	if err != nil {
		return "is malformed (" + err.Error() + ") and authorizes no one", c.names(issuer)
	}
	if !c.names(issuer) {
		return "names another CA", false
	}
	if v, ok := params["accounturi"]; ok && want.checkAccount && v != want.accountURI {
		return fmt.Sprintf("authorizes only the account %s, not %s", v, want.accountURI), true
	}
	if v, ok := params["validationmethods"]; ok && want.checkMethod && !anyIn(want.methods, strings.Split(v, ",")) {
		used := strings.Join(want.methods, ", ")
		if used == "" {
			used = "none"
		}
		return fmt.Sprintf("authorizes only validation by %s, and the name was validated by a method with the labels %s", v, used), true
	}
	return "", true
}

func (c *Checker) names(issuer string) bool {
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

// parseValue splits an issue value (RFC 8659 §4.2) into its issuer domain
// name (without a trailing dot) and its parameters, tags lower-cased. A
// repeated accounturi or validationmethods (RFC 8657 §3, §4), a malformed
// parameter or a malformed validationmethods list is an error.
func parseValue(value string) (string, map[string]string, error) {
	issuer, rest, _ := strings.Cut(value, ";")
	issuer = strings.TrimSuffix(strings.TrimSpace(issuer), ".")
	params := map[string]string{}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return issuer, params, nil
	}
	for _, p := range strings.Split(rest, ";") {
		p = strings.TrimSpace(p)
		tag, v, ok := strings.Cut(p, "=")
		tag, v = strings.ToLower(strings.TrimSpace(tag)), strings.TrimSpace(v)
		if !ok || !isTag(tag) || !isParamValue(v) {
			return issuer, nil, fmt.Errorf("parameter %q is not tag=value", p)
		}
		if _, dup := params[tag]; dup && (tag == "accounturi" || tag == "validationmethods") {
			return issuer, nil, fmt.Errorf("%s appears twice", tag)
		}
		params[tag] = v
	}
	if v, ok := params["validationmethods"]; ok {
		for _, l := range strings.Split(v, ",") {
			if !isLabel(l) {
				return issuer, nil, fmt.Errorf("validationmethods %q is not a comma-separated list of method labels", v)
			}
		}
	}
	return issuer, params, nil
}

// isTag: (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)).
func isTag(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// isParamValue: *(%x21-3A / %x3C-7E).
func isParamValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ';' {
			return false
		}
	}
	return true
}

// isLabel: (ALPHA / DIGIT) 0*61(ALPHA / DIGIT / "-") (RFC 8657 §4).
func isLabel(s string) bool {
	if s == "" || len(s) > 62 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// anyIn reports whether one of have is in list, without case.
func anyIn(have, list []string) bool {
	for _, h := range have {
		for _, l := range list {
			if strings.EqualFold(h, l) {
				return true
			}
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
