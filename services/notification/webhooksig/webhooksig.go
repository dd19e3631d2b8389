// Package webhooksig signs and verifies certflow webhook requests.
//
// Every delivery carries the header
//
//	Certflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// where secret is the webhook's secret exactly as CreateWebhook returned it
// (with its "whsec_" prefix) and body is the raw request body. Signing the
// timestamp with the body lets a receiver reject replays of old requests.
// A header may hold several v1 values; one match is enough.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the name of the signature header.
const Header = "Certflow-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock; receivers may pick their own.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify, for errors.Is.
var (
	// ErrMalformed: the header is not t=…,v1=….
	ErrMalformed = errors.New("webhooksig: malformed signature header")
	// ErrExpired: the timestamp is outside the tolerance.
	ErrExpired = errors.New("webhooksig: timestamp outside the tolerance")
	// ErrMismatch: no v1 signature matches the body.
	ErrMismatch = errors.New("webhooksig: signature does not match")
)

// Sign returns the header value for body sent at t.
func Sign(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// Verify checks header against body: it must be well-formed, its timestamp
// within tolerance of now (either way, for clock skew), and one of its v1
// signatures the HMAC of the timestamp and body under secret.
func Verify(secret string, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q has no '='", ErrMalformed, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one t", ErrMalformed)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("%w: v1 is not a hex SHA-256 HMAC", ErrMalformed)
			}
			sigs = append(sigs, sig)
		}
		// Other keys are future schemes; ignore them.
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrMalformed)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t is not a number", ErrMalformed)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now", ErrExpired, time.Unix(sec, 0).UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrMismatch
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
