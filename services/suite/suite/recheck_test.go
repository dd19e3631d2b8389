package suite_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/services/suite/suite"
)

// testClock runs from base at the pace of real time, and jumps forward on
// Advance: every service of the suite reads it.
type testClock struct {
	mu     sync.Mutex
	base   time.Time
	start  time.Time
	offset time.Duration
}

func newTestClock(base time.Time) *testClock { return &testClock{base: base, start: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.start) + c.offset)
}

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.offset += d; c.mu.Unlock() }

// TestOVReviewOutlastsReusePeriod: the CA judges the domain validation's
// age when it signs, not when the challenges were made. In late March 2029
// a validation may be reused for 10 days (ballot SC-081); an OV review that
// takes 11 days ends with the application failed with VALIDATION_EXPIRED
// naming the domain, and nothing signed. Resubmitted, the name is validated
// again (the old proof is too old to reuse), the organization's approval is
// reused (398 days), and the certificate issues.
func TestOVReviewOutlastsReusePeriod(t *testing.T) {
	clock := newTestClock(time.Date(2029, time.March, 20, 9, 0, 0, 0, time.UTC))
	e := startWith(t, func(o *suite.Options) { o.Now = clock.Now })
	key, rev := e.s.APIKey, e.s.ReviewerKey
	inst := e.buy(t, key, "products/ov-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"slow.trading.test"}, "applicant": ovApplicant(), "company": company()})
	if code, out := e.upload(t, app, "licence.png", tinyPNG(t)); code != 200 {
		t.Fatalf("upload = %d %v", code, out)
	}
	e.prove(t, e.submit(t, app))
	e.waitState(t, key, app, "PENDING_ORGANIZATION_VERIFICATION")
	review := e.pendingReview(t, app, "ORGANIZATION")

	clock.Advance(11 * 24 * time.Hour) // the reviewer takes 11 days
	var body obj
	if code := e.call(t, rev, "POST", "/v1/"+review["name"].(string)+":approve", obj{}, &body); code != 200 {
		t.Fatalf("approve = %d %v", code, body)
	}
	failed := e.waitState(t, key, app, "VALIDATION_FAILED")
	cause := fmt.Sprint(failed["failure_cause"])
	t.Logf("failure cause: %s", cause)
	if !strings.Contains(cause, "VALIDATION_EXPIRED") || !strings.Contains(cause, "slow.trading.test") || !strings.Contains(cause, "10 days") {
		t.Fatalf("failure cause = %q; want VALIDATION_EXPIRED naming slow.trading.test and the 10-day period", cause)
	}
	if failed["certificate"] != nil && failed["certificate"] != "" {
		t.Fatalf("failed application has certificate %v", failed["certificate"])
	}
	var certs obj
	e.call(t, key, "GET", "/v1/certificates", nil, &certs)
	if n := len(asList(certs["certificates"])); n != 0 {
		t.Fatalf("certificates after the refusal = %d; want none", n)
	}

	// Resubmitted: a new proof, the organization's approval reused.
	sub := e.submit(t, app)
	for _, ch := range asList(sub["challenges"]) {
		if ch.(obj)["state"] != "PENDING" || ch.(obj)["reused"] == true {
			t.Fatalf("challenge of the resubmission = %v; want PENDING (the old proof is too old to reuse)", ch)
		}
	}
	e.prove(t, sub)
	issued := e.waitState(t, key, app, "ISSUED")
	want := []string{"DRAFT", "PENDING_DOMAIN_VERIFICATION", "PENDING_ORGANIZATION_VERIFICATION", "PENDING_ISSUANCE", "VALIDATION_FAILED",
		"PENDING_DOMAIN_VERIFICATION", "PENDING_ORGANIZATION_VERIFICATION", "PENDING_ISSUANCE", "ISSUED"}
	if got := historyStates(issued); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history = %v; want %v", got, want)
	}
}
