// Package domain holds the verification service's rules: challenges, what
// to publish for each method, their lifetime and retry schedule.
package domain

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/domainname"
)

// Method is how control is proven.
type Method string

// Methods (BR 3.2.2.4.7 DNS change, as a TXT record or as a CNAME to a
// CA-chosen target; 3.2.2.4.18 agreed-upon change to website v2; 3.2.2.4.4
// constructed email to a domain contact).
const (
	DNSTXT   Method = "DNS_TXT"
	DNSCNAME Method = "DNS_CNAME"
	HTTPFile Method = "HTTP_FILE"
	Email    Method = "EMAIL"
)

// IsDNS reports whether m proves control through DNS, the only kind of
// proof that covers a wildcard name.
func (m Method) IsDNS() bool { return m == DNSTXT || m == DNSCNAME }

// State is where a challenge is.
type State string

// States.
const (
	Pending   State = "PENDING"
	Verified  State = "VERIFIED"
	Failed    State = "FAILED"
	Cancelled State = "CANCELLED"
)

// RecordPrefix is the label under which the DNS proof (TXT or CNAME) goes.
const RecordPrefix = "_certflow-challenge"

// WellKnownPath is where the HTTP proof file goes (BR 3.2.2.4.18).
const WellKnownPath = "/.well-known/pki-validation/"

// Challenge is one name's proof of control for one application attempt.
type Challenge struct {
	Application string
	Attempt     int
	Domain      string
	Method      Method
	State       State
	// Token is the random value (256 bits) the customer publishes. EMAIL
	// and reused challenges have none.
	Token string
	// RecordName is the TXT or CNAME record's owner name (DNS_TXT,
	// DNS_CNAME).
	RecordName string
	// CNAMETarget is where the CNAME must point (DNS_CNAME): a label
	// derived from Token under the CA's CNAME zone, without a trailing dot.
	CNAMETarget string
	// FilePath is the URL path of the proof file (HTTP_FILE).
	FilePath string
	// HTTPPort is the port the file is fetched from (80 in production).
	HTTPPort int
	// EmailAddress is where the code was sent (EMAIL).
	EmailAddress string
	// CodeHash is the hex SHA-256 of the emailed code (EMAIL); the code
	// itself is never stored in the challenge.
	CodeHash string
	// ConfirmFailures counts wrong codes (EMAIL).
	ConfirmFailures int
	// EmailCodes counts the codes made for the challenge (EMAIL): 1 at
	// first, one more each time the mail had to be sent anew with a new
	// code because the previous one was never accepted for delivery.
	EmailCodes int
	// EmailSendTime is when the notification service accepted the mail of
	// the current code (EMAIL); zero while it has not.
	EmailSendTime time.Time
	// RuleVersion is the Baseline Requirements rule set (certpolicy.Version)
	// in force when the challenge was made, then when it was verified.
	RuleVersion   string
	CreateTime    time.Time
	ExpireTime    time.Time
	VerifyTime    time.Time
	CheckCount    int
	LastCheckTime time.Time
	NextCheckTime time.Time
	LastError     string
	// Warning is about the method, e.g. that EMAIL is being phased out.
	Warning string
	// Reused is set when an earlier validation stood in for this challenge;
	// ValidationTime is then when that validation was done.
	Reused         bool
	ValidationTime time.Time
	// Perspectives are the remote perspectives' results (BR 3.2.2.9) of
	// the check that verified the challenge, or of the last check that
	// asked them.
	Perspectives []PerspectiveResult
}

// Policy is the challenge lifetime and retry schedule.
type Policy struct {
	Lifetime     time.Duration
	RetryInitial time.Duration
	RetryMax     time.Duration
	HTTPPort     int
	// CNAMEZone is the CA's zone under which DNS_CNAME targets are made,
	// e.g. "dcv.certflow.test".
	CNAMEZone string
}

// Spec is what one challenge is made for.
type Spec struct {
	// ID is the challenge's id; it names the HTTP proof file.
	ID          string
	Application string
	Attempt     int
	Name        string
	Method      Method
	// EmailLocalPart is the constructed mailbox for EMAIL; "" means admin.
	EmailLocalPart string
	// Token, if set, is used instead of a new random one: DNS_CNAME
	// challenges of one request for a name and its wildcard share the record
	// _certflow-challenge.<base>, and a name can have only one CNAME.
	Token string
}

// NewChallenge makes a pending challenge for one name. For EMAIL it also
// returns the single-use code to send (only its hash is kept); for other
// methods the code is "". It does not apply the date rules on EMAIL (see
// certpolicy.EmailDCV): the caller refuses or warns first.
func NewChallenge(s Spec, p Policy, now time.Time) (Challenge, string, error) {
	d, err := domainname.Normalize(s.Name)
	if err != nil {
		return Challenge{}, "", apierr.Invalid("domains", "INVALID_DOMAIN", "%v", err)
	}
	switch s.Method {
	case DNSTXT, DNSCNAME, HTTPFile, Email:
	default:
		return Challenge{}, "", apierr.Invalid("method", "UNSUPPORTED_METHOD",
			"validation method %q is not supported; use DNS_TXT, DNS_CNAME, HTTP_FILE or EMAIL", s.Method)
	}
	// BR 3.2.2.4.18 (and .19) may not be used for wildcards. Constructed
	// email (3.2.2.4.4) may: it goes to the base name's mailbox.
	if s.Method == HTTPFile && domainname.IsWildcard(d) {
		return Challenge{}, "", apierr.Invalid("method", "WILDCARD_NEEDS_DNS",
			"%s is a wildcard name, which can be validated only through DNS (BR 3.2.2.4); use DNS_TXT or DNS_CNAME", d)
	}
	lifetime := min(p.Lifetime, certpolicy.MaxTokenLifetime)
	now = now.UTC()
	c := Challenge{
		Application: s.Application, Attempt: s.Attempt, Domain: d, Method: s.Method, State: Pending,
		RuleVersion: certpolicy.Version(now), CreateTime: now, ExpireTime: now.Add(lifetime), NextCheckTime: now,
	}
	base := domainname.Base(d)
	var code string
	switch s.Method {
	case DNSTXT:
		c.Token = tokenOr(s.Token)
		c.RecordName = RecordPrefix + "." + base
	case DNSCNAME:
		if p.CNAMEZone == "" {
			return Challenge{}, "", fmt.Errorf("domain: no CNAME zone configured for DNS_CNAME")
		}
		c.Token = tokenOr(s.Token)
		c.RecordName = RecordPrefix + "." + base
		c.CNAMETarget = CNAMELabel(c.Token) + "." + strings.TrimSuffix(strings.ToLower(p.CNAMEZone), ".")
	case HTTPFile:
		c.Token = tokenOr(s.Token)
		c.HTTPPort = p.HTTPPort
		c.FilePath = WellKnownPath + s.ID + ".txt"
	case Email:
		local, err := EmailLocalPart(s.EmailLocalPart)
		if err != nil {
			return Challenge{}, "", err
		}
		c.EmailAddress = local + "@" + base
		code = newCode()
		c.CodeHash = hashCode(code)
		c.EmailCodes = 1
		// Nothing to poll: the check worker sees it again only at expiry.
		c.NextCheckTime = c.ExpireTime
	}
	return c, code, nil
}

// URL is where the HTTP proof file must be served.
func (c *Challenge) URL() string {
	if c.Method != HTTPFile {
		return ""
	}
	host := c.Domain
	if c.HTTPPort != 0 && c.HTTPPort != 80 {
		host += ":" + strconv.Itoa(c.HTTPPort)
	}
	return "http://" + host + c.FilePath
}

// Due reports whether the challenge should be checked at now.
func (c *Challenge) Due(now time.Time) bool {
	return c.State == Pending && !now.Before(c.NextCheckTime)
}

// Expired reports whether the challenge's random value is past its
// lifetime at now: from then on no proof counts.
func (c *Challenge) Expired(now time.Time) bool { return !now.Before(c.ExpireTime) }

// Outcome is what happened to a challenge after a check.
type Outcome int

// Outcomes.
const (
	StillPending Outcome = iota
	BecameVerified
	BecameFailed
	NotPending
	// NoChange: nothing to record (an EMAIL challenge is not polled).
	NoChange
)

// RecordCheck applies a check's result: proof seen, not seen yet (retry
// with backoff), or the token expired.
func (c *Challenge) RecordCheck(checkErr error, p Policy, now time.Time) Outcome {
	if c.State != Pending {
		return NotPending
	}
	now = now.UTC()
	if c.Method == Email {
		return c.expireEmail(now)
	}
	c.CheckCount++
	c.LastCheckTime = now
	// Expiry first: a proof found after the challenge expired proves
	// nothing (the random value is past its lifetime, BR 3.2.2.4), so the
	// challenge expires instead of verifying, however the check went.
	if c.Expired(now) {
		c.State = Failed
		last := "the proof was found too late"
		if checkErr != nil {
			last = checkErr.Error()
		}
		c.LastError = fmt.Sprintf("the challenge expired on %s before the proof was accepted (last check: %s); edit and resubmit the application to get a new one",
			c.ExpireTime.Format(time.RFC3339), last)
		return BecameFailed
	}
	if checkErr == nil {
		c.verify(now)
		return BecameVerified
	}
	c.LastError = checkErr.Error()
	delay := p.RetryInitial
	for i := 1; i < c.CheckCount && delay < p.RetryMax; i++ {
		delay *= 2
	}
	c.NextCheckTime = minTime(now.Add(min(delay, p.RetryMax)), c.ExpireTime)
	return StillPending
}

// Cancel stops a pending challenge.
func (c *Challenge) Cancel(now time.Time) bool {
	if c.State != Pending {
		return false
	}
	c.State, c.LastError = Cancelled, "the application was withdrawn"
	return true
}

// verify marks the challenge verified at now, under the rules in force now.
func (c *Challenge) verify(now time.Time) {
	c.State, c.VerifyTime, c.LastError = Verified, now, ""
	c.RuleVersion = certpolicy.Version(now)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func tokenOr(t string) string {
	if t != "" {
		return t
	}
	return newToken()
}

func newToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
