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
	names := strings.Join(m.Domains, ", ")
	if len(m.Domains) > maxSubjectDomains {
		names = fmt.Sprintf("%s and %d more", strings.Join(m.Domains[:maxSubjectDomains], ", "), len(m.Domains)-maxSubjectDomains)
	}
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

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
