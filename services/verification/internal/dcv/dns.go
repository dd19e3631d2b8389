package dcv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

var (
	// ErrNotFound means the proof is absent: no record, no file.
	ErrNotFound = errors.New("proof not found")
	// ErrMismatch means something is there but it is not the proof.
	ErrMismatch = errors.New("proof does not match")
)

// errNoResolver guards against a zero-value checker.
var errNoResolver = errors.New("dcv: checker has no resolver")

// DNSChecker proves control with DNS records.
type DNSChecker struct {
	Resolver *Resolver
}

// CheckTXT passes when any TXT string at recordName equals want exactly.
// It fails with ErrNotFound, ErrMismatch, or a lookup error (wrapping
// ErrLookupFailed) that is temporary.
func (c DNSChecker) CheckTXT(ctx context.Context, recordName, want string) error {
	if c.Resolver == nil {
		return errNoResolver
	}
	values, err := c.Resolver.LookupTXT(ctx, recordName)
	switch {
	case errors.Is(err, ErrNoRecords):
		return fmt.Errorf("%w: no TXT record at %s; create a TXT record there with value %q", ErrNotFound, recordName, want)
	case err != nil:
		return fmt.Errorf("looking up TXT at %s (temporary, will retry): %w", recordName, err)
	}
	for _, v := range values {
		if v == want {
			return nil
		}
	}
	return fmt.Errorf("%w: TXT at %s has %s but not %q; add a TXT record with exactly that value",
		ErrMismatch, recordName, quoteSome(values), want)
}

// CheckCNAME passes when the CNAME at recordName points at wantTarget,
// ignoring case and a trailing dot.
func (c DNSChecker) CheckCNAME(ctx context.Context, recordName, wantTarget string) error {
	if c.Resolver == nil {
		return errNoResolver
	}
	target, err := c.Resolver.LookupCNAME(ctx, recordName)
	switch {
	case errors.Is(err, ErrNoRecords):
		return fmt.Errorf("%w: no CNAME record at %s; create a CNAME there pointing at %s", ErrNotFound, recordName, wantTarget)
	case err != nil:
		return fmt.Errorf("looking up CNAME at %s (temporary, will retry): %w", recordName, err)
	}
	if target != dns.CanonicalName(strings.TrimSpace(wantTarget)) {
		return fmt.Errorf("%w: CNAME at %s points at %s, not %s; change its target", ErrMismatch, recordName, target, wantTarget)
	}
	return nil
}

// quoteSome renders found values for an error, bounded so a hostile zone
// cannot blow up our logs.
func quoteSome(values []string) string {
	const maxShown, maxLen = 5, 100
	var parts []string
	for i, v := range values {
		if i == maxShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(values)-maxShown))
			break
		}
		if len(v) > maxLen {
			v = v[:maxLen] + "..."
		}
		parts = append(parts, fmt.Sprintf("%q", v))
	}
	return fmt.Sprintf("%d value(s) [%s]", len(values), strings.Join(parts, ", "))
}
