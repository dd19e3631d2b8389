// Package domain holds the issuance service's certificate record.
package domain

import "time"

// Certificate is an issued certificate. The private key, when the service
// made it, is stored sealed (AES-256-GCM under the key-encryption key, bound
// to the certificate's name) and never leaves the service except in a
// download to the owning account.
type Certificate struct {
	Application string
	// Attempt is the application's attempt whose validations it was signed
	// on.
	Attempt         int
	RequestID       string
	Domains         []string
	SerialHex       string
	NotBefore       time.Time
	NotAfter        time.Time
	KeyAlgorithm    string
	ServiceHoldsKey bool
	SealedKey       []byte
	DER             []byte
	Fingerprint     string
	Issuer          string
	CreateTime      time.Time
	// Validations are what each name was signed on, as the verification
	// service answered immediately before signing (Record the method used:
	// BR 3.2.2.4).
	Validations []Validation
	// RuleVersion is the Baseline Requirements rule set at signing.
	RuleVersion string
	// State is Issued (or "" for a record older than revocation) or
	// Revoked.
	State State
	// Revocation, when Revoked.
	RevokeTime       time.Time
	RevocationReason Reason
	RevokedBy        Revoker
	// RevokeRequestID is the request_id of the revocation, so a retry
	// returns the revoked certificate.
	RevokeRequestID string
	// ValidationLevel is the profile signed under: DV, OV or EV ("" in
	// records made before profiles: DV).
	ValidationLevel string
	// Organization is the approved organization an OV or EV subject was
	// made from, and the review that approved it.
	Organization       *Organization `bson:",omitempty"`
	OrganizationReview string        `bson:",omitempty"`
	// LintNotices are zlint's notices on the to-be-signed certificate.
	LintNotices []string `bson:",omitempty"`
	// Replaces names the certificate of the same application this one
	// replaced (a reissue).
	Replaces string `bson:",omitempty"`
	// ReplacedBy names the certificate issued in this one's place
	// (reissue, renewal); a replaced certificate gets no expiry reminders.
	ReplacedBy string `bson:",omitempty"`
	// Reminded are the expiry reminder offsets done (sent, or passed while
	// a later one was sent).
	Reminded []time.Duration `bson:",omitempty"`
	// RenewalDone: the renewal was asked for; ExpiryDone: the expiry was
	// announced.
	RenewalDone bool `bson:",omitempty"`
	ExpiryDone  bool `bson:",omitempty"`
	// ReminderDue is when the next scheduled work (reminder, renewal,
	// expiry) is due (zero: none), indexed to find what is due (Plan).
	ReminderDue time.Time
	// KeyExports counts the exports that handed out the private key, and
	// LastKeyExport is the latest: written with the key_exported event, so
	// every key that left is on record.
	KeyExports    int       `bson:",omitempty"`
	LastKeyExport time.Time `bson:",omitempty"`
}

// RecordKeyExport records that the private key was exported at.
func (c *Certificate) RecordKeyExport(at time.Time) {
	c.KeyExports++
	c.LastKeyExport = at.UTC()
}

// Organization is the approved organization as the subject used it.
type Organization struct {
	Name, Type, RegistrationNumber, Country, Province, City string
}

// Validation is the evidence of control of one name of a certificate.
type Validation struct {
	Domain         string
	Method         string
	ValidationTime time.Time
	// Challenge is the verification service's challenge (challenges/{id}).
	Challenge   string
	Reused      bool
	RuleVersion string
}
