package service

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/services/verification/internal/caa"
	"github.com/certflow/certflow/services/verification/internal/dcv"
	"github.com/certflow/certflow/services/verification/internal/domain"
)

// Defaults of the domain validation settings (also used when a Config is
// built in code and leaves them empty).
const (
	defaultCNAMEZone     = "dcv.certflow.test"
	defaultCAAIdentities = "certflow.test"
	// defaultCAAAccountURIBase makes account URIs such as
	// https://certflow.test/accounts/acct-1 (RFC 8657 accounturi).
	defaultCAAAccountURIBase = "https://certflow.test/accounts"
)

// dcvSettings are the checked domain validation settings.
type dcvSettings struct {
	cnameZone string
	caa       *caa.Checker
}

// domainValidation checks the CNAME zone and CAA identities and builds the
// CAA checker on the DCV resolver.
func domainValidation(cfg Config, resolver *dcv.Resolver) (dcvSettings, error) {
	zone := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(cfg.CNAMEZone), "."))
	if zone == "" {
		zone = defaultCNAMEZone
	}
	// A target is <52-character label>.<zone>; a name has at most 253.
	if _, ok := dns.IsDomainName(zone); !ok || !strings.Contains(zone, ".") || len(zone) > 253-53 {
		return dcvSettings{}, fmt.Errorf("cname zone %q is not a domain name of at most 200 characters with two labels or more", cfg.CNAMEZone)
	}
	ids := cfg.CAAIdentities
	if strings.TrimSpace(ids) == "" {
		ids = defaultCAAIdentities
	}
	var identities []string
	for _, id := range strings.Split(ids, ",") {
		id = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(id), "."))
		if id == "" {
			continue
		}
		if _, ok := dns.IsDomainName(id); !ok || strings.ContainsAny(id, "; \"") {
			return dcvSettings{}, fmt.Errorf("caa identity %q is not a domain name", id)
		}
		identities = append(identities, id)
	}
	base := strings.TrimSuffix(strings.TrimSpace(cfg.CAAAccountURIBase), "/")
	if base == "" {
		base = defaultCAAAccountURIBase
	}
	if u, err := url.Parse(base); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(base, "; \"") {
		return dcvSettings{}, fmt.Errorf("caa account uri base %q is not an https URL without query or fragment", cfg.CAAAccountURIBase)
	}
	return dcvSettings{cnameZone: zone, caa: &caa.Checker{Resolver: resolver, Identities: identities, AccountURIBase: base}}, nil
}

// validationStore keeps each account's latest validation of each name, for
// reuse. Its records carry no events (no relay) and it needs no index: it
// is read by _id only.
func validationStore(b *service.Base, now func() time.Time) *docstore.Store[domain.Validation] {
	return docstore.New[domain.Validation](b.DB.Collection("validations"), "validation", b.StoreOptions(now)...)
}

// challengeIndexStore keeps each account's index of each application's
// challenges (app/index.go): no events (no relay), read by _id only, and
// cached (written at submit, read at issuance).
func challengeIndexStore(b *service.Base, now func() time.Time) *docstore.Store[domain.ChallengeIndex] {
	return docstore.New[domain.ChallengeIndex](b.DB.Collection("challenge_indexes"), "challenge index",
		append(b.StoreOptions(now), docstore.ReadCache(service.SmallReadCacheBytes))...)
}
