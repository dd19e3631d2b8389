package domain

import (
	"fmt"
	"strings"
)

// RevokedMail tells the applicant that the certificate was revoked: relying
// parties that check the CRL refuse it from now on.
type RevokedMail struct {
	Application string
	Certificate string // certificates/{id}
	Domains     []string
	// Reason is the RFC 5280 name, for example keyCompromise.
	Reason string
	// By is customer or reviewer.
	By string
}

// Render implements Template.
func (m RevokedMail) Render() Message {
	names := strings.Join(m.Domains, ", ")
	if len(m.Domains) > maxSubjectDomains {
		names = fmt.Sprintf("%s and %d more", strings.Join(m.Domains[:maxSubjectDomains], ", "), len(m.Domains)-maxSubjectDomains)
	}
	who := "at your request"
	if m.By == "reviewer" {
		who = "by the CA"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nthe certificate %s of your application %s was revoked %s (reason: %s). It covered:\n\n", m.Certificate, m.Application, who, m.Reason)
	for _, d := range m.Domains {
		fmt.Fprintf(&b, "  - %s\n", d)
	}
	b.WriteString("\nBrowsers and other clients that check the CA's revocation list refuse it from now on: replace it on every server that uses it.\n")
	if m.Reason == "keyCompromise" {
		b.WriteString("Its key was reported compromised and is refused for every new certificate: make a new key.\n")
	}
	return Message{Subject: fmt.Sprintf("Your certificate for %s was revoked", names), Body: b.String()}
}
