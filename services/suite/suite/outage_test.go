package suite_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/suite/suite"
)

// TestChaosDatabaseOutage (make chaos): the database is unreachable for 30 s
// while applications are in flight. Requests meanwhile fail with 503 and a
// message, except reads the embedded default answers from its cache;
// nothing is half-written (a create retried with its request id afterwards
// makes one order); and everything in flight completes once the database
// is back: every application ISSUED with exactly one certificate.
func TestChaosDatabaseOutage(t *testing.T) {
	const outage = 30 * time.Second
	target := os.Getenv(testenv.MongoEnv)
	embeddedDB := target == "" // one writer per database: reads cached
	if embeddedDB {
		db, err := embedded.StartMongo("127.0.0.1:0", t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		target = db.URI()
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	e := startWith(t, func(o *suite.Options) { o.MongoURI = u.String() })
	key := e.s.APIKey

	const n = 6
	insts := e.buy(t, key, "products/dv-single-1y", n)
	var apps []string
	var subs []obj
	for i, in := range insts {
		a := e.apply(t, obj{"instance": in, "domains": []string{fmt.Sprintf("www.outage%d.test", i)}, "applicant": applicant()})
		apps = append(apps, a)
		subs = append(subs, e.submit(t, a))
	}
	for _, s := range subs[:n/2] {
		e.prove(t, s)
	}

	proxy.Cut()
	cut := time.Now()
	t.Logf("database cut at %s", cut.Format(time.TimeOnly))
	// The other half publish their records now; their checks and every
	// other request fail while the database is away, with 503 and a message.
	for _, s := range subs[n/2:] {
		for _, c := range asList(s["challenges"]) {
			ch := c.(obj)
			e.dns.SetTXT(str(ch, "dns_record_name"), str(ch, "dns_record_value"))
		}
	}
	// A record the application service wrote and nobody writes during the
	// cut (its challenge is not yet proven) is read from the single
	// writer's cache: the bytes it last committed, so the answer is 200
	// with its state (README, "Reads while the database is away").
	// On MongoDB (several writers, no cache) the read fails like the rest.
	var body obj
	waiting := apps[n-1]
	code := e.call(t, key, "GET", "/v1/"+waiting, nil, &body)
	switch {
	case embeddedDB && (code != http.StatusOK || str(body, "name") != waiting || str(body, "state") != str(subs[n-1], "state")):
		t.Errorf("GET %s during the outage = %d %v; want 200 with its state %s from the cache", waiting, code, body, str(subs[n-1], "state"))
	case !embeddedDB && (code != http.StatusServiceUnavailable || !strings.Contains(str(body, "message"), "database")):
		t.Errorf("GET %s during the outage = %d %v; want 503 saying the database cannot be reached", waiting, code, body)
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/orders?request_id=during-outage"},
		{"POST", "/v1/" + str(asList(subs[n-1]["challenges"])[0].(obj), "name") + ":check"},
	} {
		var req any
		if r.method == "POST" {
			req = obj{"product": "products/dv-single-1y", "quantity": 2}
			if strings.HasSuffix(r.path, ":check") {
				req = obj{}
			}
		}
		body = nil
		code = e.call(t, key, r.method, r.path, req, &body)
		if code != http.StatusServiceUnavailable || !strings.Contains(str(body, "message"), "database") {
			t.Errorf("%s %s during the outage = %d %v; want 503 saying the database cannot be reached", r.method, r.path, code, body)
		}
	}
	time.Sleep(outage - time.Since(cut))
	proxy.Restore()
	t.Logf("database back after %v", time.Since(cut).Round(time.Second))

	// The refused purchase, retried with its request id, is made once.
	var order obj
	if code := e.call(t, key, "POST", "/v1/orders?request_id=during-outage", obj{"product": "products/dv-single-1y", "quantity": 2}, &order); code != 200 {
		t.Fatalf("retried purchase = %d %v", code, order)
	}
	var again obj
	if code := e.call(t, key, "POST", "/v1/orders?request_id=during-outage", obj{"product": "products/dv-single-1y", "quantity": 2}, &again); code != 200 || str(again, "name") != str(order, "name") {
		t.Fatalf("purchase retried again = %d %v; want the same order %s", code, again, str(order, "name"))
	}
	for _, a := range apps {
		e.waitStateFor(t, key, a, "ISSUED", 3*time.Minute)
	}
	t.Logf("all %d applications ISSUED %v after the database came back", n, time.Since(cut)-outage)
	var certs obj
	e.call(t, key, "GET", "/v1/certificates?page_size=100", nil, &certs)
	per := map[string]int{}
	for _, c := range asList(certs["certificates"]) {
		per[str(c.(obj), "application")]++
	}
	for _, a := range apps {
		if per[a] != 1 {
			t.Errorf("%s has %d certificates; want exactly 1", a, per[a])
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		e.mu.Lock()
		issued, submitted := e.events["certflow.certificate.issued"], e.events["certflow.application.submitted"]
		e.mu.Unlock()
		if issued == n && submitted == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d certificate.issued and %d application.submitted; want %d each", issued, submitted, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
