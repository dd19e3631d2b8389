package suite_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/services/suite/suite"
)

// TestRenewalWithinSubscription follows one DV instance of a one-year
// subscription through its automatic renewals, on a clock in June 2026
// (BR: certificates of at most 199 days; a domain validation reused for 200
// days, 100 from 15 March 2027):
//
//   - at two thirds of the first certificate's lifetime the CA renews it
//     on its own: the validation is still within its reuse period, so the
//     new certificate is issued with nothing asked of the customer; it
//     replaces the first;
//   - at the second's renewal point the validation is too old: the
//     application waits for a new proof and the applicant is told, by
//     email and SMS, to act; once the record is published the third
//     certificate issues, cut to end with the subscription;
//   - that one, lasting to the subscription's end, is not renewed;
//   - after the subscription and the last certificate have ended, the
//     instance is EXPIRED, and a reissue is refused (SUBSCRIPTION_ENDED).
func TestRenewalWithinSubscription(t *testing.T) {
	clock := newTestClock(time.Date(2026, time.June, 1, 9, 0, 0, 0, time.UTC))
	e := startWith(t, func(o *suite.Options) {
		o.Now, o.ReminderInterval, o.ReminderOffsets = clock.Now, 50*time.Millisecond, "none"
	})
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 1)[0]
	var instance obj
	e.call(t, key, "GET", "/v1/"+inst, nil, &instance)
	subEnd := parseTime(t, str(instance, "subscription_end_time"))

	first := e.issueDV(t, inst, "www.renew.test")
	app := str(first, "application")
	certOf := func(name string) obj {
		t.Helper()
		var c obj
		if code := e.call(t, key, "GET", "/v1/"+name, nil, &c); code != 200 {
			t.Fatalf("GET %s = %d %v", name, code, c)
		}
		return c
	}
	// nextCert waits until the application is ISSUED with a certificate
	// other than prev and returns it.
	nextCert := func(prev string) obj {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var a obj
			e.call(t, key, "GET", "/v1/"+app, nil, &a)
			if c := str(a, "certificate"); a["state"] == "ISSUED" && c != prev {
				return certOf(c)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is %v with %v (cause %v); want ISSUED with a successor of %s", app, a["state"], a["certificate"], a["failure_cause"], prev)
			}
		}
	}
	renewalPoint := func(c obj) time.Time {
		nb, na := parseTime(t, str(c, "not_before")), parseTime(t, str(c, "not_after"))
		return nb.Add(na.Sub(nb) * 2 / 3)
	}
	actionMails := func() []string {
		var notes obj
		e.call(t, key, "GET", "/v1/notifications?page_size=100&filter="+url.QueryEscape(`application = "`+app+`"`), nil, &notes)
		var out []string
		for _, n := range asList(notes["notifications"]) {
			n := n.(obj)
			if strings.Contains(str(n, "subject"), "Action needed to renew") || n["channel"] == "CHANNEL_SMS" && strings.Contains(str(n, "body"), "renewing") {
				out = append(out, str(n, "channel"))
			}
		}
		return sortedStrings(out)
	}

	// 1. Renewed on the validation still valid.
	clock.Advance(renewalPoint(first).Add(time.Minute).Sub(clock.Now()))
	second := nextCert(str(first, "name"))
	if str(second, "replaces") != str(first, "name") || str(certOf(str(first, "name")), "replaced_by") != str(second, "name") {
		t.Fatalf("second certificate replaces %q, first replaced_by %q; want the chain first -> second", str(second, "replaces"), str(certOf(str(first, "name")), "replaced_by"))
	}
	if got := actionMails(); len(got) != 0 {
		t.Fatalf("a renewal on a reusable validation asked the customer to act: %v", got)
	}

	// 2. The validation is too old: the customer is asked to act.
	clock.Advance(renewalPoint(second).Add(time.Minute).Sub(clock.Now()))
	pending := e.waitState(t, key, app, "PENDING_DOMAIN_VERIFICATION")
	for deadline := time.Now().Add(20 * time.Second); len(actionMails()) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("action mails = %v; want an email and an SMS asking to act", actionMails())
		}
	}
	if got := actionMails(); strings.Join(got, ",") != "CHANNEL_EMAIL,CHANNEL_SMS" {
		t.Fatalf("action notifications = %v; want one email and one SMS", got)
	}
	if str(pending, "certificate") != str(second, "name") {
		t.Fatalf("during the renewal the application's certificate is %q; want the second, still valid", str(pending, "certificate"))
	}
	e.prove(t, pending)
	third := nextCert(str(second, "name"))
	if na := parseTime(t, str(third, "not_after")); na.After(subEnd) {
		t.Fatalf("third certificate's notAfter %v is after the subscription's end %v", na, subEnd)
	}

	// 3. It lasts to the subscription's end: no renewal.
	clock.Advance(renewalPoint(third).Add(time.Minute).Sub(clock.Now()))
	time.Sleep(time.Second) // twenty ticks
	var a obj
	e.call(t, key, "GET", "/v1/"+app, nil, &a)
	if a["state"] != "ISSUED" || str(a, "certificate") != str(third, "name") {
		t.Fatalf("after the last renewal point %s is %v with %v; want ISSUED with the third certificate", app, a["state"], a["certificate"])
	}

	// 4. Subscription and certificate ended: EXPIRED.
	clock.Advance(subEnd.Add(time.Minute).Sub(clock.Now()))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e.call(t, key, "GET", "/v1/"+inst, nil, &instance)
		if instance["state"] == "EXPIRED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after its subscription and certificate ended; want EXPIRED", inst, instance["state"])
		}
	}
	var out obj
	if code := e.call(t, key, "POST", "/v1/"+app+":reissue", obj{"request_id": "after-the-end"}, &out); code != 400 || !strings.Contains(strings.ToUpper(str(out, "message")), "SUBSCRIPTION") {
		t.Fatalf("reissue after the subscription = %d %v; want 400 SUBSCRIPTION_ENDED", code, out)
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return v
}
