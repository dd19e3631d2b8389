package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is a rendered email: a one-line subject and a plain-text body.
type Message struct {
	Subject string
	Body    string
}

// Template is the facts of one kind of email; Render writes its text.
// Templates are plain Go rather than text/template so a missing fact is a
// compile error, not a runtime one.
type Template interface {
	Render() Message
}

// Redactor is a Template that holds a secret for the recipient alone: the
// notification record keeps Redacted, the mail carries Render.
type Redactor interface {
	Template
	Redacted() Message
}

// Challenge is what the customer must publish to prove control of a name.
type Challenge struct {
	// Name is challenges/{id}.
	Name   string
	Domain string
	// Method is DNS_TXT, HTTP_FILE or EMAIL.
	Method      string
	RecordName  string
	RecordType  string
	RecordValue string
	URL         string
	Content     string
	// EmailAddress is where an EMAIL challenge's code is sent.
	EmailAddress string
	ExpireTime   time.Time
}

// DVWithin is how long domain validation usually takes once the proof is
// published (DESIGN.md: DV is expected within 2 hours).
const DVWithin = "2 hours"

// SubmittedMail tells the applicant what to publish after a submit.
type SubmittedMail struct {
	Application       string // applications/{id}
	Attempt           int
	Domains           []string
	ValidationLevel   string // DV, OV or EV
	Challenges        []Challenge
	ExpectedIssueTime time.Time
	// Warnings are shown to the customer as they are, for example about
	// the EMAIL method.
	Warnings []string
}

// Render implements Template.
func (m SubmittedMail) Render() Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nyour application %s was submitted", m.Application)
	if m.Attempt > 1 {
		fmt.Fprintf(&b, " again (attempt %d)", m.Attempt)
	}
	level := m.ValidationLevel
	if level == "" {
		level = "DV"
	}
	fmt.Fprintf(&b, " for a %s certificate covering:\n\n", level)
	for _, d := range m.Domains {
		fmt.Fprintf(&b, "  - %s\n", d)
	}
	b.WriteString("\nTo prove that you control these domains, publish the following exactly as shown.\n")
	for i, c := range m.Challenges {
		fmt.Fprintf(&b, "\n%d. %s\n", i+1, c.Domain)
		switch c.Method {
		case "DNS_TXT":
			b.WriteString("   Add this DNS record at your DNS provider:\n")
			fmt.Fprintf(&b, "   Record name:  %s\n", c.RecordName)
			fmt.Fprintf(&b, "   Record type:  %s\n", orDefault(c.RecordType, "TXT"))
			fmt.Fprintf(&b, "   Record value: %s\n", c.RecordValue)
		case "HTTP_FILE":
			b.WriteString("   Serve this file from your web server (a 2xx answer; only 301, 302, 307 or 308 redirects are followed):\n")
			fmt.Fprintf(&b, "   URL:     %s\n", c.URL)
			fmt.Fprintf(&b, "   Content: %s\n", c.Content)
			b.WriteString("   The file must contain exactly this content, nothing more.\n")
		case "EMAIL":
			fmt.Fprintf(&b, "   A confirmation code is emailed to %s.\n", orDefault(c.EmailAddress, "the domain's administrative address"))
			if c.Name != "" {
				fmt.Fprintf(&b, "   Confirm it with POST /v1/%s:confirm and the body {\"code\": \"<code>\"}.\n", c.Name)
			}
		default:
			// A method this service does not know yet: show every fact given.
			fmt.Fprintf(&b, "   Method: %s\n", c.Method)
			for _, kv := range [][2]string{{"Record name", c.RecordName}, {"Record type", c.RecordType}, {"Record value", c.RecordValue}, {"URL", c.URL}, {"Content", c.Content}} {
				if kv[1] != "" {
					fmt.Fprintf(&b, "   %s: %s\n", kv[0], kv[1])
				}
			}
		}
		if !c.ExpireTime.IsZero() {
			fmt.Fprintf(&b, "   Publish it before %s; after that the challenge expires.\n", formatTime(c.ExpireTime))
		}
	}
	b.WriteString("\n")
	if len(m.Warnings) > 0 {
		b.WriteString("Please note:\n")
		for _, w := range m.Warnings {
			fmt.Fprintf(&b, "  - %s\n", w)
		}
		b.WriteString("\n")
	}
	if !m.ExpectedIssueTime.IsZero() {
		fmt.Fprintf(&b, "Expected issue time: %s.\n", formatTime(m.ExpectedIssueTime))
	}
	fmt.Fprintf(&b, "Domain validation usually completes within %s once the proof is published.\n", DVWithin)
	if level == "OV" || level == "EV" {
		b.WriteString("Organization validation follows and usually takes 3 to 5 business days.\n")
	}
	fmt.Fprintf(&b, "\nFollow the progress with GET /v1/%s.\n", m.Application)
	return Message{Subject: "Verify your domains for " + m.Application, Body: b.String()}
}

// VerifiedMail tells the applicant one domain passed validation.
type VerifiedMail struct {
	Application string
	Domain      string
	Method      string
	VerifyTime  time.Time
}

// Render implements Template.
func (m VerifiedMail) Render() Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nthe domain %s of your application %s passed validation", m.Domain, m.Application)
	if m.Method != "" {
		fmt.Fprintf(&b, " (method %s)", m.Method)
	}
	if !m.VerifyTime.IsZero() {
		fmt.Fprintf(&b, " on %s", formatTime(m.VerifyTime))
	}
	b.WriteString(".\n\n")
	b.WriteString("Keep the DNS record or file in place until the certificate is issued.\n")
	b.WriteString("Once every domain is verified the application moves on to issuance by itself.\n")
	fmt.Fprintf(&b, "\nFollow the progress with GET /v1/%s.\n", m.Application)
	return Message{Subject: fmt.Sprintf("Domain %s verified", m.Domain), Body: b.String()}
}

// FailedMail tells the applicant why the application failed and what to do.
type FailedMail struct {
	Application string
	Cause       string
}

// maxSubjectCause bounds the cause quoted in a subject line; the body has
// it in full.
const maxSubjectCause = 100

// Render implements Template.
func (m FailedMail) Render() Message {
	cause := m.Cause
	if strings.TrimSpace(cause) == "" {
		cause = "no cause given"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nyour application %s failed validation.\n\nCause: %s\n\n", m.Application, cause)
	b.WriteString("What to do next:\n")
	b.WriteString("  1. Fix what the cause names (for example publish the DNS record or file, or correct the details).\n")
	fmt.Fprintf(&b, "  2. Edit the application: PATCH /v1/%s (or in the console).\n", m.Application)
	fmt.Fprintf(&b, "  3. Submit it again: POST /v1/%s:submit.\n", m.Application)
	return Message{
		Subject: fmt.Sprintf("Application %s failed: %s", m.Application, truncate(oneLine(cause), maxSubjectCause)),
		Body:    b.String(),
	}
}

// IssuedMail tells the applicant the certificate is ready.
type IssuedMail struct {
	Application string
	Certificate string // certificates/{id}
	Domains     []string
}

// maxSubjectDomains bounds the names listed in a subject line.
const maxSubjectDomains = 3

// Render implements Template.
func (m IssuedMail) Render() Message {
	names := strings.Join(m.Domains, ", ")
	if len(m.Domains) > maxSubjectDomains {
		names = fmt.Sprintf("%s and %d more", strings.Join(m.Domains[:maxSubjectDomains], ", "), len(m.Domains)-maxSubjectDomains)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nthe certificate %s of your application %s is issued for:\n\n", m.Certificate, m.Application)
	for _, d := range m.Domains {
		fmt.Fprintf(&b, "  - %s\n", d)
	}
	b.WriteString("\nDownload it from the console or with:\n\n")
	fmt.Fprintf(&b, "  GET /v1/%s:download\n\n", m.Certificate)
	b.WriteString("The download holds the certificate, its chain, the full chain and, if certflow generated the key for you, the private key.\n")
	b.WriteString("Keep the private key secret.\n")
	return Message{Subject: fmt.Sprintf("Your certificate for %s is issued", names), Body: b.String()}
}

// OVWithin is how long organization validation usually takes (DESIGN.md:
// OV/EV within 3 to 5 business days).
const OVWithin = "3 to 5 business days"

// OrganizationMail tells the applicant that organization validation has
// started: the CA may phone them and the company, and reviews the uploaded
// documents.
type OrganizationMail struct {
	Application string
	// Company is the organization's name; the events do not carry it yet,
	// so empty reads "your organization".
	Company        string
	ApplicantPhone string
	CompanyPhone   string
}

// Render implements Template.
func (m OrganizationMail) Render() Message {
	company := orDefault(oneLine(m.Company), "your organization")
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nevery domain of your application %s is verified. The CA now verifies %s (organization validation).\n\n", m.Application, company)
	b.WriteString("Please answer the phone: the CA may call to confirm the application")
	var phones []string
	if m.ApplicantPhone != "" {
		phones = append(phones, fmt.Sprintf("the applicant at %s", m.ApplicantPhone))
	}
	if m.CompanyPhone != "" {
		phones = append(phones, fmt.Sprintf("the company at %s", m.CompanyPhone))
	}
	if len(phones) > 0 {
		fmt.Fprintf(&b, ", calling %s", strings.Join(phones, " and "))
	}
	b.WriteString(".\nIf nobody answers or the call does not confirm the request, the application fails.\n\n")
	fmt.Fprintf(&b, "The documents you uploaded are being reviewed; this usually takes %s.\n", OVWithin)
	b.WriteString("There is nothing else to do unless the CA asks for more.\n")
	fmt.Fprintf(&b, "\nFollow the progress with GET /v1/%s.\n", m.Application)
	return Message{
		Subject: fmt.Sprintf("Answer the phone: the CA will verify %s", truncate(company, maxSubjectCause)),
		Body:    b.String(),
	}
}

// DomainControlMail is the domain control validation email of the Baseline
// Requirements (3.2.2.4.4): it goes to a constructed address of the domain
// (admin@, hostmaster@, …), not to the applicant, and carries the code.
type DomainControlMail struct {
	Domain      string
	Challenge   string // challenges/{id}
	Application string
	Code        string
	ExpireTime  time.Time
}

// Render implements Template.
func (m DomainControlMail) Render() Message { return m.render(m.Code) }

// Redacted implements Redactor: the record the account can read must not
// hold the code, or the account could confirm without the mailbox.
func (m DomainControlMail) Redacted() Message { return m.render("[hidden: sent only to this mailbox]") }

func (m DomainControlMail) render(code string) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\na certflow customer asked for a TLS certificate for %s and named this address to prove control of the domain.\n\n", m.Domain)
	fmt.Fprintf(&b, "Confirmation code: %s\n\n", code)
	b.WriteString("To confirm, the applicant calls, with their certflow API key:\n\n")
	fmt.Fprintf(&b, "  POST /v1/%s:confirm\n", m.Challenge)
	fmt.Fprintf(&b, "  {\"code\": \"%s\"}\n\n", code)
	b.WriteString("If you are not the applicant and agree to the request, give them the code.\n")
	if !m.ExpireTime.IsZero() {
		fmt.Fprintf(&b, "The code expires on %s.\n", formatTime(m.ExpireTime))
	}
	b.WriteString("\nIf you did not expect this, ignore this email: without the code the domain is not verified.\n")
	return Message{Subject: "Confirm control of " + m.Domain, Body: b.String()}
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// oneLine folds line breaks so a cause fits a subject line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
