package suite_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/certflow/certflow/services/suite/suite"
)

// TestReissueThroughGateway: an issued application gets a new certificate
// within its subscription: a new key for the same names without new proof
// (the validation is within its reuse period), a changed name proven
// afresh, the customer's CSR. Each new certificate records the one it
// replaced, which stays valid and is marked replaced; the instance holds
// the newest. A retry with the same request id makes nothing new; a draft,
// another account, a reissue without a request id, a withdrawal of a
// reissue in progress and a reissue after the subscription are refused.
func TestReissueThroughGateway(t *testing.T) {
	clock := newTestClock(time.Now().UTC())
	e := startWith(t, func(o *suite.Options) { o.Now = clock.Now })
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 2)
	first := e.issueDV(t, inst[0], "www.reissue.test")
	app, old := str(first, "application"), str(first, "name")

	reissue := func(k string, body obj) (int, obj) {
		var out obj
		code := e.call(t, k, "POST", "/v1/"+app+":reissue", body, &out)
		return code, out
	}
	// waitCert waits for the application's certificate to be another than prev.
	waitCert := func(prev string) obj {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var a obj
			e.call(t, key, "GET", "/v1/"+app, nil, &a)
			if a["state"] == "ISSUED" && str(a, "certificate") != prev {
				var c obj
				e.call(t, key, "GET", "/v1/"+str(a, "certificate"), nil, &c)
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is %v (certificate %v, cause %v); want a new certificate after %s", app, a["state"], a["certificate"], a["failure_cause"], prev)
			}
		}
	}
	keyOf := func(cert string) string {
		var b obj
		if code := e.call(t, key, "GET", "/v1/"+cert+":download", nil, &b); code != 200 {
			t.Fatalf("download %s = %d %v", cert, code, b)
		}
		return str(b, "private_key_pem")
	}

	// Same names, new key: no new proof needed.
	code, out := reissue(key, obj{"request_id": "reissue-1"})
	if code != 200 || str(out, "reissue_of") != old {
		t.Fatalf("reissue = %d %v; want 200 with reissue_of %s", code, out, old)
	}
	second := waitCert(old)
	if str(second, "replaces") != old || keyOf(str(second, "name")) == keyOf(old) {
		t.Fatalf("reissued certificate = %v; want it to replace %s with a new key", second, old)
	}
	var was obj
	e.call(t, key, "GET", "/v1/"+old, nil, &was)
	if was["state"] != "ISSUED" || str(was, "replaced_by") != str(second, "name") {
		t.Fatalf("the replaced certificate = %v; want still ISSUED, replaced_by %s", was, second["name"])
	}
	var instance obj
	e.call(t, key, "GET", "/v1/"+inst[0], nil, &instance)
	if instance["state"] != "ISSUED" || str(instance, "certificate") != str(second, "name") {
		t.Fatalf("instance = %v; want ISSUED with %s", instance, second["name"])
	}
	if code, again := reissue(key, obj{"request_id": "reissue-1"}); code != 200 || again["attempt"] != out["attempt"] {
		t.Fatalf("the same reissue again = %d %v; want the application unchanged (attempt %v)", code, again, out["attempt"])
	}

	// A changed name is validated afresh; meanwhile a withdrawal is refused.
	code, out = reissue(key, obj{"request_id": "reissue-2", "domains": []string{"www.reissued.test"}})
	if code != 200 || out["state"] != "PENDING_DOMAIN_VERIFICATION" {
		t.Fatalf("reissue with a new name = %d %v; want PENDING_DOMAIN_VERIFICATION", code, out)
	}
	var body obj
	if code := e.call(t, key, "POST", "/v1/"+app+":withdraw", obj{}, &body); code != http.StatusBadRequest || reasonOf(body) != "REISSUE_IN_PROGRESS" {
		t.Fatalf("withdraw during a reissue = %d %v; want 400 REISSUE_IN_PROGRESS", code, body)
	}
	e.prove(t, out)
	third := waitCert(str(second, "name"))
	if ds := asList(third["domains"]); len(ds) != 1 || ds[0] != "www.reissued.test" || str(third, "replaces") != str(second, "name") {
		t.Fatalf("certificate for the new name = %v", third)
	}

	// The customer's own CSR.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	code, out = reissue(key, obj{"request_id": "reissue-3", "csr": makeCSR(t, k, "www.reissued.test")})
	if code != 200 {
		t.Fatalf("reissue with a CSR = %d %v", code, out)
	}
	fourth := waitCert(str(third, "name"))
	if fourth["service_holds_key"] == true || str(fourth, "replaces") != str(third, "name") {
		t.Fatalf("certificate from the customer's CSR = %v", fourth)
	}

	// Refusals.
	draft := e.apply(t, obj{"instance": inst[1], "domains": []string{"www.draft.test"}, "applicant": applicant()})
	for _, tt := range []struct {
		name, key, app string
		body           obj
		wantCode       int
		wantReason     string
	}{
		{"a draft", key, draft, obj{"request_id": "r"}, 400, "APPLICATION_NOT_ISSUED"},
		{"another account", otherKey, app, obj{"request_id": "r"}, 404, ""},
		{"no request id", key, app, obj{}, 400, "MISSING_FIELD"},
		{"a name beyond the product", key, app, obj{"request_id": "r4", "domains": []string{"a.reissue.test", "b.reissue.test"}}, 400, ""},
	} {
		var out obj
		code := e.call(t, tt.key, "POST", "/v1/"+tt.app+":reissue", tt.body, &out)
		if code != tt.wantCode || tt.wantReason != "" && reasonOf(out) != tt.wantReason {
			t.Errorf("reissue of %s = %d %v; want %d %s", tt.name, code, out, tt.wantCode, tt.wantReason)
		}
	}
	clock.Advance(367 * 24 * time.Hour)
	if code, out := reissue(key, obj{"request_id": "reissue-late"}); code != http.StatusBadRequest || reasonOf(out) != "SUBSCRIPTION_ENDED" {
		t.Fatalf("reissue after the subscription = %d %v; want 400 SUBSCRIPTION_ENDED", code, out)
	}
	var a obj
	e.call(t, key, "GET", "/v1/"+app, nil, &a)
	if a["state"] != "ISSUED" || str(a, "certificate") != str(fourth, "name") || a["reissue_of"] != nil {
		t.Fatalf("after the refused reissue the application = %v; want it unchanged", a)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		n := e.events["certflow.application.reissue_requested"]
		e.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d certflow.application.reissue_requested on the stream; want 3", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
