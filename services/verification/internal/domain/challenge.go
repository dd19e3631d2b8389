// Package domain holds the verification service's rules: challenges, what
// to publish for each method, their lifetime and retry schedule.
package domain

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/certpolicy"
	"github.com/certflow/certflow/pkg/domainname"
)

// Method is how control is proven.
type Method string

// Methods (BR 3.2.2.4.7 DNS change, 3.2.2.4.18 agreed-upon change to
// website v2).
const (
	DNSTXT   Method = "DNS_TXT"
	HTTPFile Method = "HTTP_FILE"
)

// State is where a challenge is.
type State string

// States.
const (
	Pending   State = "PENDING"
	Verified  State = "VERIFIED"
	Failed    State = "FAILED"
	Cancelled State = "CANCELLED"
)

// RecordPrefix is the label under which the DNS TXT proof goes.
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
	// Token is the random value (256 bits) the customer publishes.
	Token string
	// RecordName is the TXT record's owner name (DNS_TXT).
	RecordName string
	// FilePath is the URL path of the proof file (HTTP_FILE).
	FilePath string
	// HTTPPort is the port the file is fetched from (80 in production).
	HTTPPort      int
	RuleVersion   string
	CreateTime    time.Time
	ExpireTime    time.Time
	VerifyTime    time.Time
	CheckCount    int
	LastCheckTime time.Time
	NextCheckTime time.Time
	LastError     string
}

// Policy is the challenge lifetime and retry schedule.
type Policy struct {
	Lifetime     time.Duration
	RetryInitial time.Duration
	RetryMax     time.Duration
	HTTPPort     int
}

// NewChallenge makes a challenge for one name; id names its proof file.
func NewChallenge(id, application string, attempt int, name string, m Method, p Policy, now time.Time) (Challenge, error) {
	d, err := domainname.Normalize(name)
	if err != nil {
		return Challenge{}, apierr.Invalid("domains", "INVALID_DOMAIN", "%v", err)
	}
	switch m {
	case DNSTXT, HTTPFile:
	default:
		return Challenge{}, apierr.Invalid("method", "UNSUPPORTED_METHOD", "validation method %q is not supported; use DNS_TXT or HTTP_FILE", m)
	}
	if m == HTTPFile && domainname.IsWildcard(d) {
		return Challenge{}, apierr.Invalid("method", "WILDCARD_NEEDS_DNS",
			"%s is a wildcard name, which can be validated only through DNS (BR 3.2.2.4); use DNS_TXT", d)
	}
	lifetime := min(p.Lifetime, certpolicy.MaxTokenLifetime)
	now = now.UTC()
	c := Challenge{
		Application: application, Attempt: attempt, Domain: d, Method: m, State: Pending,
		Token: newToken(), RuleVersion: certpolicy.Version(now), HTTPPort: p.HTTPPort,
		CreateTime: now, ExpireTime: now.Add(lifetime), NextCheckTime: now,
	}
	base := domainname.Base(d)
	switch m {
	case DNSTXT:
		c.RecordName = RecordPrefix + "." + base
	case HTTPFile:
		c.FilePath = WellKnownPath + id + ".txt"
	}
	return c, nil
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

// Outcome is what happened to a challenge after a check.
type Outcome int

// Outcomes.
const (
	StillPending Outcome = iota
	BecameVerified
	BecameFailed
	NotPending
)

// RecordCheck applies a check's result: proof seen, not seen yet (retry
// with backoff), or the token expired.
func (c *Challenge) RecordCheck(checkErr error, p Policy, now time.Time) Outcome {
	if c.State != Pending {
		return NotPending
	}
	now = now.UTC()
	c.CheckCount++
	c.LastCheckTime = now
	if checkErr == nil {
		c.State, c.VerifyTime, c.LastError = Verified, now, ""
		return BecameVerified
	}
	c.LastError = checkErr.Error()
	if !now.Before(c.ExpireTime) {
		c.State = Failed
		c.LastError = fmt.Sprintf("the challenge expired on %s without the proof being found (last check: %s); edit and resubmit the application to get a new one",
			c.ExpireTime.Format(time.RFC3339), checkErr)
		return BecameFailed
	}
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

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func newToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
