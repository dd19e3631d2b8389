package domain

import "fmt"

// Texts of SMS messages. They stay short, since one SMS segment holds 160
// GSM-7 characters, and point to the email or API for details.

// maxSMSCause bounds the failure cause quoted in an SMS.
const maxSMSCause = 60

// OrganizationSMS warns the applicant that the CA may call.
func OrganizationSMS(application string) string {
	return fmt.Sprintf("certflow: the CA may call you to verify %s. Please answer; details by email.", application)
}

// FailedSMS says an application failed and why.
func FailedSMS(application, cause string) string {
	if cause = oneLine(cause); cause == "" {
		cause = "no cause given"
	}
	return fmt.Sprintf("certflow: %s failed: %s. Edit and resubmit it; details by email.", application, truncate(cause, maxSMSCause))
}

// IssuedSMS says the certificate is ready.
func IssuedSMS(certificate string) string {
	return fmt.Sprintf("certflow: your certificate %s is issued. Download it in the console or with GET /v1/%s:download.", certificate, certificate)
}
