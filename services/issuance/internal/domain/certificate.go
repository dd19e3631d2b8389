// Package domain holds the issuance service's certificate record.
package domain

import "time"

// Certificate is an issued certificate. The private key, when the service
// made it, is stored sealed (AES-256-GCM under the key-encryption key, bound
// to the certificate's name) and never leaves the service except in a
// download to the owning account.
type Certificate struct {
	Application     string
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
}
