package domain

import "time"

// Issuance records a request to sign, before anything is signed: every
// serial reserved for it, so that each certificate the CA ever signed is on
// record (Boulder keeps a serials table for the same reason), and a claim,
// so that two retries of one request never sign twice.
type Issuance struct {
	// Certificate is the name the certificate is stored under.
	Certificate string
	// Serials are the serial numbers (hex) reserved for the request,
	// oldest first. The last is the one being signed; an earlier one was
	// reserved by a signer that stopped before storing its certificate
	// (its certificate never left that process).
	Serials []string
	// Claimed is when the current signer reserved the last serial.
	Claimed time.Time
}

// ClaimTTL is how long a signer holds a request: longer than a signature
// and its store take, short enough that a retry after a crash goes on soon.
const ClaimTTL = 30 * time.Second

// Held reports whether another signer still holds the claim at now.
func (i Issuance) Held(now time.Time) bool {
	return now.Before(i.Claimed.Add(ClaimTTL))
}
