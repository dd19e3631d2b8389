package domain

import (
	"fmt"
	"time"
)

// State is where a certificate is in its life; expiry is read from
// NotAfter. Certificates stored before revocation existed have no state and
// read as Issued.
type State string

// Certificate states.
const (
	Issued  State = "ISSUED"
	Revoked State = "REVOKED"
)

// Reason is an RFC 5280 CRLReason code (section 5.3.1).
type Reason int

// The reasons the Baseline Requirements allow (BR 7.2.2); certificateHold
// (6) is forbidden (BR 4.9.13), removeFromCRL (8) and aACompromise (10) do
// not apply to TLS certificates.
const (
	Unspecified          Reason = 0
	KeyCompromise        Reason = 1
	CACompromise         Reason = 2
	AffiliationChanged   Reason = 3
	Superseded           Reason = 4
	CessationOfOperation Reason = 5
	PrivilegeWithdrawn   Reason = 9
)

var reasonNames = map[Reason]string{
	Unspecified:          "unspecified",
	KeyCompromise:        "keyCompromise",
	CACompromise:         "cACompromise",
	AffiliationChanged:   "affiliationChanged",
	Superseded:           "superseded",
	CessationOfOperation: "cessationOfOperation",
	PrivilegeWithdrawn:   "privilegeWithdrawn",
}

// String is the RFC 5280 name, for example keyCompromise.
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Revoker is who asks for a revocation.
type Revoker string

// Revokers.
const (
	// BySubscriber is the customer that owns the certificate.
	BySubscriber Revoker = "customer"
	// ByCA is CA staff (a reviewer).
	ByCA Revoker = "reviewer"
)

// MayRevokeWith reports whether by may give reason for a subscriber
// (leaf) certificate. BR 4.9.1.1 and 7.2.2: a subscriber may leave the
// reason unspecified or give keyCompromise, affiliationChanged, superseded
// or cessationOfOperation; privilegeWithdrawn is the CA's alone.
// cACompromise is for CA certificates only, so never here.
func MayRevokeWith(by Revoker, reason Reason) bool {
	switch reason {
	case Unspecified, KeyCompromise, AffiliationChanged, Superseded, CessationOfOperation:
		return by == BySubscriber || by == ByCA
	case PrivilegeWithdrawn:
		return by == ByCA
	}
	return false
}

// Revocation is one entry of the intermediate's CRL, kept in its own
// collection (one document per serial, across accounts) so that making the
// CRL reads only what it lists, never the certificates.
type Revocation struct {
	// Certificate is certificates/{id}.
	Certificate string
	SerialHex   string
	Reason      Reason
	RevokeTime  time.Time
	// NotAfter: after it the entry leaves the CRL (RFC 5280 3.3).
	NotAfter time.Time
	By       Revoker
}

// BlockedKey is a public key revoked for keyCompromise: every later
// request with it is refused.
type BlockedKey struct {
	// SPKISHA256 is the hex SHA-256 of the DER SubjectPublicKeyInfo (also
	// the record's id).
	SPKISHA256 string
	// Certificate is the certificate whose revocation blocked it.
	Certificate string
	BlockTime   time.Time
}

// CRL is the latest CRL an issuer signed.
type CRL struct {
	// Issuer is "intermediate" or "root" (also the record's id).
	Issuer string
	// Number is the cRLNumber, increasing by one with every CRL signed.
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	DER        []byte
	// Digest identifies the entries the CRL lists, to tell whether a new
	// one is due before its refresh time.
	Digest string
}
