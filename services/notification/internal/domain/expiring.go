package domain

import (
	"fmt"
	"strings"
	"time"
)

// ExpiringMail reminds the applicant that a certificate nears its notAfter
// and has not been replaced.
type ExpiringMail struct {
	Application string
	Certificate string // certificates/{id}
	Domains     []string
	NotAfter    time.Time
	DaysLeft    int
}

// Render implements Template.
func (m ExpiringMail) Render() Message {
	names := subjectNames(m.Domains)
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nthe certificate %s of your application %s expires on %s UTC, in %s. It covers:\n\n",
		m.Certificate, m.Application, m.NotAfter.UTC().Format("2006-01-02 15:04"), days(m.DaysLeft))
	for _, d := range m.Domains {
		fmt.Fprintf(&b, "  - %s\n", d)
	}
	fmt.Fprintf(&b, "\nReissue it (POST /v1/%s:reissue) while your subscription lasts, or buy a new one, and install the new certificate before then: clients refuse an expired one.\n", m.Application)
	return Message{Subject: fmt.Sprintf("Your certificate for %s expires in %s", names, days(m.DaysLeft)), Body: b.String()}
}

// ExpiringSMS is the short form of ExpiringMail.
func ExpiringSMS(certificate string, daysLeft int) string {
	return fmt.Sprintf("certflow: your certificate %s expires in %s. Reissue or renew it and install the new one; details by email.", certificate, days(daysLeft))
}

// RenewalActionMail asks the applicant to act for the automatic renewal
// of a certificate: some names' validations are too old to reuse.
type RenewalActionMail struct {
	Application string
	Certificate string // certificates/{id}, the one being renewed
	Domains     []string
	NotAfter    time.Time
}

// Render implements Template.
func (m RenewalActionMail) Render() Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nthe certificate %s of your application %s is being renewed automatically", m.Certificate, m.Application)
	if !m.NotAfter.IsZero() {
		fmt.Fprintf(&b, " (it expires on %s UTC)", m.NotAfter.UTC().Format("2006-01-02 15:04"))
	}
	b.WriteString(". The proof of control of these names is too old to reuse, so they must be validated again before the new certificate can be issued:\n\n")
	for _, d := range m.Domains {
		fmt.Fprintf(&b, "  - %s\n", d)
	}
	fmt.Fprintf(&b, "\nThe records to publish are in the next email and at GET /v1/%s (certflow instructions %s). Nothing else is needed: once they are found the certificate is issued.\n", m.Application, m.Application)
	return Message{Subject: fmt.Sprintf("Action needed to renew your certificate for %s", subjectNames(m.Domains)), Body: b.String()}
}

// RenewalActionSMS is the short form of RenewalActionMail.
func RenewalActionSMS(application string, names int) string {
	return fmt.Sprintf("certflow: renewing %s needs you: %d name(s) must be validated again; details by email.", application, names)
}

// subjectNames is a mail subject's list of names, cut after a few.
func subjectNames(domains []string) string {
	if len(domains) > maxSubjectDomains {
		return fmt.Sprintf("%s and %d more", strings.Join(domains[:maxSubjectDomains], ", "), len(domains)-maxSubjectDomains)
	}
	return strings.Join(domains, ", ")
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
