package suite_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/suite/suite"
)

// TestDuplicateShuffledDelivery: every consumer (the application service's
// event handler and saga, notification, and whatever consumes later) gets
// every event twice and out of order; what is stored and sent in the end is
// what one ordered delivery makes of the same requests.
func TestDuplicateShuffledDelivery(t *testing.T) {
	ordered := runWorkload(t, nil)
	// Events arriving within 200ms of each other are shuffled together.
	chaos := &events.Chaos{Window: 200 * time.Millisecond}
	shuffled := runWorkload(t, chaos)
	if chaos.Deliveries() == 0 {
		t.Fatal("chaos delivered nothing: the consumers did not go through it")
	}
	if chaos.Reordered() == 0 {
		t.Error("no two events were ever held together: nothing was shuffled; widen the window")
	}
	if n := chaos.NotIdempotent(); n != 0 {
		t.Errorf("%d events applied once failed on their duplicate delivery", n)
	}
	if ordered != shuffled {
		t.Fatalf("state after duplicate, shuffled delivery differs from one ordered delivery:\nordered:\n%s\nshuffled:\n%s", ordered, shuffled)
	}
	t.Logf("%d deliveries under chaos, %d batches shuffled; end state:\n%s", chaos.Deliveries(), chaos.Reordered(), shuffled)
}

// runWorkload runs one set of requests against a new suite and returns
// what it ends with, with resource names replaced by their role in the
// workload so two suites compare.
func runWorkload(t *testing.T, chaos *events.Chaos) string {
	e := startWith(t, func(o *suite.Options) { o.EventChaos = chaos })
	key := e.s.APIKey
	var mu sync.Mutex
	hooks := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		hooks[r.Header.Get("Certflow-Event-Type")]++
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	if code := e.call(t, key, "POST", "/v1/webhooks", obj{"url": hook.URL + "/certflow"}, nil); code != 200 {
		t.Fatalf("create webhook = %d", code)
	}

	roles := map[string]string{} // resource name -> its role in the workload
	name := func(role, n string) { roles[n] = role }
	insts := e.buy(t, key, "products/dv-single-1y", 4)
	for i, in := range insts {
		name(fmt.Sprintf("instance-%d", i), in)
	}
	// Three DV certificates applied for side by side, so their events
	// interleave; one of them is revoked.
	var apps, submitted []string
	var subs []obj
	for i := range 3 {
		a := e.apply(t, obj{"instance": insts[i], "domains": []string{fmt.Sprintf("www.dup%d.test", i)}, "applicant": applicant()})
		name(fmt.Sprintf("application-%d", i), a)
		apps = append(apps, a)
	}
	for _, a := range apps {
		subs = append(subs, e.submit(t, a))
		submitted = append(submitted, a)
	}
	for _, sub := range subs {
		e.prove(t, sub)
	}
	for i, a := range submitted {
		issued := e.waitState(t, key, a, "ISSUED")
		name(fmt.Sprintf("certificate-%d", i), str(issued, "certificate"))
	}
	var rev obj
	if code := e.call(t, key, "POST", "/v1/"+roleName(roles, "certificate-1")+":revoke", obj{"reason": "REVOCATION_REASON_SUPERSEDED", "request_id": "dup-revoke"}, &rev); code != 200 {
		t.Fatalf("revoke = %d %v", code, rev)
	}
	// One withdrawn while it waits for its DNS record.
	w := e.apply(t, obj{"instance": insts[3], "domains": []string{"www.withdrawn.test"}, "applicant": applicant()})
	name("application-withdrawn", w)
	apps = append(apps, w)
	e.submit(t, w)
	if code := e.call(t, key, "POST", "/v1/"+w+":withdraw", obj{}, nil); code != 200 {
		t.Fatalf("withdraw = %d", code)
	}
	// One OV through the reviewer and the phone call.
	ov := e.buy(t, key, "products/ov-single-1y", 1)
	name("instance-ov", ov[0])
	oa := e.apply(t, obj{"instance": ov[0], "domains": []string{"www.dupov.test"}, "applicant": ovApplicant(), "company": company()})
	name("application-ov", oa)
	apps = append(apps, oa)
	if code, out := e.upload(t, oa, "licence.png", tinyPNG(t)); code != 200 {
		t.Fatalf("upload = %d %v", code, out)
	}
	e.prove(t, e.submit(t, oa))
	e.waitState(t, key, oa, "PENDING_ORGANIZATION_VERIFICATION")
	review := e.pendingReview(t, oa, "ORGANIZATION")
	rk := e.s.ReviewerKey
	if code := e.call(t, rk, "POST", "/v1/"+str(review, "name")+":recordPhoneCall", obj{"phone": "+86 571 1234 5678", "outcome": "OUTCOME_CONFIRMED"}, nil); code != 200 {
		t.Fatalf("phone call = %d", code)
	}
	if code := e.call(t, rk, "POST", "/v1/"+str(review, "name")+":approve", obj{}, nil); code != 200 {
		t.Fatalf("approve = %d", code)
	}
	issued := e.waitState(t, key, oa, "ISSUED")
	name("certificate-ov", str(issued, "certificate"))

	// The end state, once nothing changes any more.
	snapshot := func() string {
		var b strings.Builder
		for _, a := range apps {
			var app obj
			e.call(t, key, "GET", "/v1/"+a, nil, &app)
			var hist []string
			for _, h := range asList(app["history"]) {
				hist = append(hist, str(h.(obj), "state"))
			}
			fmt.Fprintf(&b, "%s: %s certificate=%s history=%v\n", roles[a], str(app, "state"), roleOrEmpty(roles, str(app, "certificate")), hist)
			var notes obj
			e.call(t, key, "GET", "/v1/notifications?page_size=100&filter="+url.QueryEscape(`application = "`+a+`"`), nil, &notes)
			var sent []string
			for _, n := range asList(notes["notifications"]) {
				n := n.(obj)
				sent = append(sent, str(n, "channel")+" "+str(n, "state")+" "+replaceNames(roles, str(n, "subject")))
			}
			sort.Strings(sent)
			fmt.Fprintf(&b, "  notifications %q\n", sent)
		}
		var certs obj
		e.call(t, key, "GET", "/v1/certificates?page_size=100", nil, &certs)
		var cs []string
		for _, c := range asList(certs["certificates"]) {
			c := c.(obj)
			cs = append(cs, roleOrEmpty(roles, str(c, "name"))+" "+str(c, "state")+" of "+roleOrEmpty(roles, str(c, "application")))
		}
		sort.Strings(cs)
		fmt.Fprintf(&b, "certificates %q\n", cs)
		var insts obj
		e.call(t, key, "GET", "/v1/instances?page_size=100", nil, &insts)
		var is []string
		for _, in := range asList(insts["instances"]) {
			in := in.(obj)
			is = append(is, roleOrEmpty(roles, str(in, "name"))+" "+str(in, "state"))
		}
		sort.Strings(is)
		fmt.Fprintf(&b, "instances %q\n", is)
		mu.Lock()
		fmt.Fprintf(&b, "webhook deliveries %v\n", sortedCounts(hooks))
		mu.Unlock()
		e.mu.Lock()
		fmt.Fprintf(&b, "events on the stream %v\n", sortedCounts(e.events))
		e.mu.Unlock()
		return b.String()
	}
	last, stable := snapshot(), time.Now()
	for deadline := time.Now().Add(60 * time.Second); time.Since(stable) < 3*time.Second; {
		if time.Now().After(deadline) {
			t.Fatalf("the state kept changing for a minute; last:\n%s", last)
		}
		time.Sleep(250 * time.Millisecond)
		if now := snapshot(); now != last {
			last, stable = now, time.Now()
		}
	}
	return last
}

func roleName(roles map[string]string, role string) string {
	for n, r := range roles {
		if r == role {
			return n
		}
	}
	return ""
}

func roleOrEmpty(roles map[string]string, n string) string {
	if n == "" {
		return "-"
	}
	if r, ok := roles[n]; ok {
		return r
	}
	return "unknown(" + n + ")"
}

var resourceName = regexp.MustCompile(`(applications|certificates|instances)/[a-z0-9-]+`)

func replaceNames(roles map[string]string, s string) string {
	return resourceName.ReplaceAllStringFunc(s, func(n string) string { return roleOrEmpty(roles, n) })
}

func sortedCounts(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}
