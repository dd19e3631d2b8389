package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/csr"
	"github.com/certflow/certflow/pkg/domainname"
)

// KeyAlgorithms the service makes with automatic CSR generation.
var KeyAlgorithms = []string{string(csr.ECDSAP256), string(csr.ECDSAP384), string(csr.RSA2048), string(csr.RSA4096)}

var phoneRE = regexp.MustCompile(`^\+?[0-9][0-9 ()./-]{5,24}$`)

// Normalize checks the details against the product and returns them in
// canonical form (names normalized, defaults filled in). Every problem is
// reported as an InvalidArgument naming the field and what to do.
func (d Details) Normalize(p Product) (Details, error) {
	names, err := domainname.NormalizeList(d.Domains)
	if err != nil {
		var de *domainname.Error
		reason := "INVALID_DOMAIN"
		if errors.As(err, &de) && de.Reason == domainname.ReasonDuplicate {
			reason = "DUPLICATE_DOMAIN"
		}
		return d, apierr.Invalid("application.domains", reason, "%v", err)
	}
	d.Domains = names
	if err := checkDomainsForProduct(names, p); err != nil {
		return d, err
	}

	if d.Method == "" {
		d.Method = DNSTXT
	}
	switch d.Method {
	case DNSTXT, DNSCNAME:
	case HTTPFile, Email:
		for _, n := range names {
			if domainname.IsWildcard(n) {
				return d, apierr.Invalid("application.validation_method", "WILDCARD_NEEDS_DNS",
					"%s is a wildcard name, which can be validated only through DNS; use VALIDATION_METHOD_DNS_TXT or VALIDATION_METHOD_DNS_CNAME", n)
			}
		}
	default:
		return d, apierr.Invalid("application.validation_method", "UNSUPPORTED_METHOD", "validation method %q is not supported; use DNS_TXT, DNS_CNAME, HTTP_FILE or EMAIL", d.Method)
	}
	if d.Method == Email {
		if d.ApproverMailbox == "" {
			d.ApproverMailbox = Mailboxes[0]
		}
		if !slices.Contains(Mailboxes, d.ApproverMailbox) {
			return d, apierr.Invalid("application.approver_mailbox", "INVALID_MAILBOX",
				"approver mailbox %q is not a constructed address; use one of %s", d.ApproverMailbox, strings.Join(Mailboxes, ", "))
		}
	} else if d.ApproverMailbox != "" {
		return d, apierr.Invalid("application.approver_mailbox", "MAILBOX_NOT_EXPECTED", "approver_mailbox applies only to VALIDATION_METHOD_EMAIL")
	}

	if err := d.checkLengths(); err != nil {
		return d, err
	}
	if err := d.Applicant.check(p.Level); err != nil {
		return d, err
	}
	if p.Level != DV {
		if err := d.Company.check(); err != nil {
			return d, err
		}
	}

	if d.CSRMode == "" {
		d.CSRMode = Automatic
	}
	switch d.CSRMode {
	case Automatic:
		if strings.TrimSpace(d.CSR) != "" {
			return d, apierr.Invalid("application.csr", "CSR_NOT_EXPECTED", "a CSR was given with automatic CSR generation; set csr_mode to CSR_MODE_MANUAL or leave csr empty")
		}
		d.CSR = ""
		if d.KeyAlgorithm == "" {
			d.KeyAlgorithm = string(csr.ECDSAP256)
		}
		if !slices.Contains(KeyAlgorithms, d.KeyAlgorithm) {
			return d, apierr.Invalid("application.key_algorithm", "UNSUPPORTED_KEY_ALGORITHM", "key algorithm %q is not offered; use one of %s", d.KeyAlgorithm, strings.Join(KeyAlgorithms, ", "))
		}
	case Manual:
		if strings.TrimSpace(d.CSR) == "" {
			return d, apierr.Invalid("application.csr", "MISSING_FIELD", "manual CSR generation needs the PEM CSR in csr; make one with `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -subj /CN=%s`", names[0])
		}
		if _, err := csr.Check(d.CSR, names); err != nil {
			reason := "INVALID_CSR"
			var ce *csr.Error
			if errors.As(err, &ce) {
				reason = string(ce.Reason)
			}
			return d, apierr.Invalid("application.csr", reason, "%v", err)
		}
		// The customer keeps the key; no algorithm is chosen for them.
		d.KeyAlgorithm = ""
	default:
		return d, apierr.Invalid("application.csr_mode", "UNSUPPORTED_CSR_MODE", "csr_mode must be CSR_MODE_AUTOMATIC or CSR_MODE_MANUAL")
	}
	return d, nil
}

// checkDomainsForProduct applies the product's limits on names (the seeds:
// "limitations on bound domain names vary with certificate types").
func checkDomainsForProduct(names []string, p Product) error {
	if len(names) == 0 {
		return apierr.Invalid("application.domains", "MISSING_FIELD", "at least one domain is required")
	}
	wild := 0
	for _, n := range names {
		if domainname.IsWildcard(n) {
			wild++
		}
	}
	switch p.Type {
	case Single:
		if len(names) != 1 {
			return apierr.Invalid("application.domains", "DOMAIN_LIMIT_EXCEEDED", "a single-domain certificate binds exactly one name, got %d; buy a multi-domain certificate for more", len(names))
		}
		if wild > 0 {
			return apierr.Invalid("application.domains", "WILDCARD_NOT_ALLOWED", "%s is a wildcard name; a single-domain certificate needs a fully qualified name, or buy a wildcard certificate", names[0])
		}
	case Multi:
		if len(names) > p.MaxDomains {
			return apierr.Invalid("application.domains", "DOMAIN_LIMIT_EXCEEDED", "this instance binds at most %d names, got %d", p.MaxDomains, len(names))
		}
		if wild > 0 {
			return apierr.Invalid("application.domains", "WILDCARD_NOT_ALLOWED", "a multi-domain certificate takes fully qualified names only; buy a wildcard certificate for *.names")
		}
	case Wildcard:
		if wild != 1 {
			return apierr.Invalid("application.domains", "WILDCARD_REQUIRED", "a wildcard certificate binds exactly one wildcard name such as *.example.com, got %d", wild)
		}
		var w string
		for _, n := range names {
			if domainname.IsWildcard(n) {
				w = n
			}
		}
		for _, n := range names {
			if n != w && n != domainname.Base(w) {
				return apierr.Invalid("application.domains", "DOMAIN_NOT_COVERED", "a wildcard certificate for %s may add only its base name %s, not %s", w, domainname.Base(w), n)
			}
		}
	default:
		return fmt.Errorf("unknown product type %q", p.Type)
	}
	return nil
}

func (a Applicant) check(l Level) error {
	if strings.TrimSpace(a.Name) == "" {
		return apierr.Invalid("application.applicant.name", "MISSING_FIELD", "applicant name is required")
	}
	if a.Email == "" {
		return apierr.Invalid("application.applicant.email", "MISSING_FIELD", "applicant email is required: the CA's verification mail goes there")
	}
	if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email || !strings.Contains(a.Email[strings.LastIndexByte(a.Email, '@')+1:], ".") {
		return apierr.Invalid("application.applicant.email", "INVALID_EMAIL", "applicant email %q is not an address like name@example.com", a.Email)
	}
	if !phoneRE.MatchString(a.Phone) {
		return apierr.Invalid("application.applicant.phone", "INVALID_PHONE", "applicant phone %q is missing or not a phone number; the CA may call it, e.g. +86 571 8502 2088", a.Phone)
	}
	if l != DV && strings.TrimSpace(a.IDNumber) == "" {
		return apierr.Invalid("application.applicant.id_number", "MISSING_FIELD", "applicant ID number is required for %s certificates", l)
	}
	return nil
}

func (c Company) check() error {
	required := []struct{ field, value string }{
		{"name", c.Name}, {"type", c.Type}, {"phone", c.Phone}, {"organization_id", c.OrganizationID},
		{"country", c.Country}, {"address", c.Address}, {"zip_code", c.ZipCode},
	}
	for _, r := range required {
		if strings.TrimSpace(r.value) == "" {
			return apierr.Invalid("application.company."+r.field, "MISSING_FIELD", "company %s is required for OV and EV certificates", strings.ReplaceAll(r.field, "_", " "))
		}
	}
	if !phoneRE.MatchString(c.Phone) {
		return apierr.Invalid("application.company.phone", "INVALID_PHONE", "company phone %q is not a phone number", c.Phone)
	}
	if len(c.Country) != 2 || strings.ToUpper(c.Country) != c.Country {
		return apierr.Invalid("application.company.country", "INVALID_COUNTRY", "company country %q must be an ISO 3166-1 alpha-2 code such as CN or US", c.Country)
	}
	return nil
}

// MaxFieldLength bounds every free-text detail: the CA's reviewers and the
// certificate's subject need no more, and the review queue refuses longer.
const MaxFieldLength = 200

func (d Details) checkLengths() error {
	fields := map[string]string{
		"applicant.name": d.Applicant.Name, "applicant.phone": d.Applicant.Phone, "applicant.email": d.Applicant.Email,
		"applicant.id_number": d.Applicant.IDNumber, "company.name": d.Company.Name, "company.type": d.Company.Type,
		"company.phone": d.Company.Phone, "company.organization_id": d.Company.OrganizationID, "company.country": d.Company.Country,
		"company.province": d.Company.Province, "company.city": d.Company.City, "company.address": d.Company.Address,
		"company.zip_code": d.Company.ZipCode,
	}
	for field, v := range fields {
		if len(v) > MaxFieldLength {
			return apierr.Invalid("application."+field, "FIELD_TOO_LONG", "%s is %d characters; at most %d are allowed", field, len(v), MaxFieldLength)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return apierr.Invalid("application."+field, "INVALID_CHARACTERS", "%s contains control characters", field)
		}
	}
	return nil
}
