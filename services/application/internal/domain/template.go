package domain

import (
	"errors"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/domainname"
)

// Template is saved application details ("save the application
// information for subsequent use"). Unlike an application it may be
// partial: it only prefills.
type Template struct {
	DisplayName string
	Details     Details
	CreateTime  time.Time
}

// MaxTemplateDomains bounds a template's names: no product binds more (the
// order service's multi-domain maximum), and without a bound a template
// could grow the stored data without limit.
const MaxTemplateDomains = 250

// Normalize checks what the template holds; empty fields are fine.
func (t Template) Normalize(now time.Time) (Template, error) {
	if len(t.DisplayName) > 200 {
		return t, apierr.Invalid("template.display_name", "INVALID_DISPLAY_NAME", "display_name must be at most 200 characters")
	}
	if err := t.Details.checkLengths(); err != nil {
		return t, err
	}
	if n := len(t.Details.Domains); n > MaxTemplateDomains {
		return t, apierr.Invalid("template.domains", "DOMAIN_LIMIT_EXCEEDED", "a template holds at most %d names (the largest multi-domain product), got %d", MaxTemplateDomains, n)
	}
	if len(t.Details.Domains) > 0 {
		names, err := domainname.NormalizeList(t.Details.Domains)
		if err != nil {
			var de *domainname.Error
			reason := "INVALID_DOMAIN"
			if errors.As(err, &de) && de.Reason == domainname.ReasonDuplicate {
				reason = "DUPLICATE_DOMAIN"
			}
			return t, apierr.Invalid("template.domains", reason, "%v", err)
		}
		t.Details.Domains = names
	}
	if e := t.Details.Applicant.Email; e != "" {
		if addr, err := mail.ParseAddress(e); err != nil || addr.Address != e {
			return t, apierr.Invalid("template.applicant.email", "INVALID_EMAIL", "applicant email %q is not an address like name@example.com", e)
		}
	}
	if m := t.Details.ApproverMailbox; m != "" && !slices.Contains(Mailboxes, m) {
		return t, apierr.Invalid("template.approver_mailbox", "INVALID_MAILBOX", "approver mailbox %q is not one of %s", m, strings.Join(Mailboxes, ", "))
	}
	if strings.TrimSpace(t.Details.CSR) != "" {
		return t, apierr.Invalid("template.csr", "CSR_NOT_EXPECTED", "a template cannot hold a CSR: a CSR names exact domains and its key belongs to one certificate")
	}
	t.CreateTime = now.UTC()
	return t, nil
}

// Fill returns d with every empty field taken from the template.
func (t Details) Fill(d Details) Details {
	if len(d.Domains) == 0 {
		d.Domains = t.Domains
	}
	if d.Method == "" {
		d.Method = t.Method
	}
	if d.Applicant == (Applicant{}) {
		d.Applicant = t.Applicant
	}
	if d.Company == (Company{}) {
		d.Company = t.Company
	}
	if d.CSRMode == "" {
		d.CSRMode = t.CSRMode
	}
	if d.KeyAlgorithm == "" {
		d.KeyAlgorithm = t.KeyAlgorithm
	}
	if d.ApproverMailbox == "" {
		d.ApproverMailbox = t.ApproverMailbox
	}
	return d
}
