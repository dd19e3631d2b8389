package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
)

// EmailLocalParts are the constructed mailboxes of BR 3.2.2.4.4, in the order
// they are offered; the first is the default.
var EmailLocalParts = []string{"admin", "administrator", "webmaster", "hostmaster", "postmaster"}

// MaxConfirmFailures is how many wrong codes fail an EMAIL challenge, so the
// code cannot be guessed by trying.
const MaxConfirmFailures = 5

// EmailLocalPart checks a requested mailbox: "" means admin; anything but the
// five constructed ones is refused.
func EmailLocalPart(local string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(local))
	if l == "" {
		return EmailLocalParts[0], nil
	}
	for _, ok := range EmailLocalParts {
		if l == ok {
			return l, nil
		}
	}
	return "", apierr.Invalid("email_local_part", "INVALID_EMAIL_LOCAL_PART",
		"%q is not a constructed address the Baseline Requirements allow; use one of %s", local, strings.Join(EmailLocalParts, ", "))
}

// codeGroups and codeGroupLen shape the emailed code: 6 groups of 4 base32
// characters, 120 random bits (BR asks at least 112 for a Random Value),
// e.g. "K7QD-2MZP-XR4A-...".
const (
	codeGroups   = 6
	codeGroupLen = 4
)

var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newCode() string {
	var b [codeGroups * codeGroupLen * 5 / 8]byte // 15 bytes = 24 characters
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	s := codeEncoding.EncodeToString(b[:])
	groups := make([]string, 0, codeGroups)
	for i := 0; i < len(s); i += codeGroupLen {
		groups = append(groups, s[i:i+codeGroupLen])
	}
	return strings.Join(groups, "-")
}

// normalizeCode forgives what people do when typing a code: case, spaces,
// hyphens.
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, code)
}

func hashCode(code string) string {
	h := sha256.Sum256([]byte(normalizeCode(code)))
	return hex.EncodeToString(h[:])
}

// EmailUnsent reports whether c is a pending EMAIL challenge whose current
// code was never accepted for delivery: nobody can have it, so a new one
// may replace it.
func (c *Challenge) EmailUnsent() bool {
	return c.Method == Email && c.State == Pending && c.EmailSendTime.IsZero()
}

// NewEmailCode replaces the code of a challenge whose mail was never sent
// (EmailUnsent) and returns the new one; only its hash is kept. It returns
// "" if the challenge is not EmailUnsent.
func (c *Challenge) NewEmailCode() string {
	if !c.EmailUnsent() {
		return ""
	}
	code := newCode()
	c.CodeHash = hashCode(code)
	c.EmailCodes++
	return code
}

// MarkEmailSent records that the mail of the codes-th code was accepted for
// delivery at now, and says whether that changed anything: a newer code
// made meanwhile, or a mail already recorded, is left as it is.
func (c *Challenge) MarkEmailSent(codes int, now time.Time) bool {
	if c.Method != Email || codes != c.EmailCodes || !c.EmailSendTime.IsZero() {
		return false
	}
	c.EmailSendTime = now.UTC()
	return true
}

// Confirm checks an emailed code at now. It returns what changed (the caller
// writes any change, even when err is not nil: a wrong code is counted) and
// an error for the caller: the code is wrong, used, expired, or this is not
// an EMAIL challenge.
func (c *Challenge) Confirm(code string, now time.Time) (Outcome, error) {
	now = now.UTC()
	if c.Method != Email {
		return NoChange, apierr.New(apierr.FailedPrecondition, "NOT_EMAIL_CHALLENGE",
			"this challenge is validated by %s, not by email; publish its proof and call CheckChallenge", c.Method)
	}
	switch c.State {
	case Pending:
	case Verified:
		return NoChange, apierr.New(apierr.FailedPrecondition, "CODE_ALREADY_USED",
			"the code was already used: the challenge was confirmed at %s, and a code is single use", c.VerifyTime.Format(time.RFC3339))
	default:
		return NoChange, apierr.New(apierr.FailedPrecondition, "CHALLENGE_NOT_PENDING",
			"the challenge is %s (%s); resubmit the application for a new email", c.State, c.LastError)
	}
	if out := c.expireEmail(now); out == BecameFailed {
		return out, apierr.New(apierr.FailedPrecondition, "CHALLENGE_EXPIRED",
			"the code expired at %s; resubmit the application for a new email", c.ExpireTime.Format(time.RFC3339))
	}
	want, err := hex.DecodeString(c.CodeHash)
	got := sha256.Sum256([]byte(normalizeCode(code)))
	if err == nil && len(want) == len(got) && subtle.ConstantTimeCompare(got[:], want) == 1 {
		c.verify(now)
		return BecameVerified, nil
	}
	c.ConfirmFailures++
	if c.ConfirmFailures >= MaxConfirmFailures {
		c.State = Failed
		c.LastError = fmt.Sprintf("%d wrong codes were entered for %s, so the challenge was stopped to prevent guessing; resubmit the application for a new email",
			c.ConfirmFailures, c.EmailAddress)
		return BecameFailed, apierr.Invalid("code", "CODE_MISMATCH",
			"code does not match; that was the %dth wrong code, so the challenge failed: resubmit the application for a new email", c.ConfirmFailures)
	}
	c.LastError = fmt.Sprintf("%d wrong code(s) entered", c.ConfirmFailures)
	return StillPending, apierr.Invalid("code", "CODE_MISMATCH",
		"code does not match; check the code in the email sent to %s (%d attempt(s) left)", c.EmailAddress, MaxConfirmFailures-c.ConfirmFailures)
}

// expireEmail fails a pending EMAIL challenge whose code expired, so the
// application learns of it; before that there is nothing to check.
func (c *Challenge) expireEmail(now time.Time) Outcome {
	if now.Before(c.ExpireTime) {
		return NoChange
	}
	c.State = Failed
	c.LastCheckTime = now
	c.LastError = fmt.Sprintf("the code sent to %s was not confirmed before it expired on %s; edit and resubmit the application to get a new email",
		c.EmailAddress, c.ExpireTime.Format(time.RFC3339))
	return BecameFailed
}
