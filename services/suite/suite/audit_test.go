package suite_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/events"
	gateway "github.com/certflow/certflow/services/gateway/service"
	"github.com/certflow/certflow/services/suite/suite"
)

// callH is call with request headers; it returns the status and the
// answer's headers.
func (e *env) callH(t *testing.T, key, method, path string, hdr map[string]string, body, out any) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.s.GatewayURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// keyID is the actor an API key is recorded as.
func keyID(key string) string { return gateway.HashAPIKey(key)[:len("sha256:")+16] }

// auditEvents lists every record key sees with filter, following the pages.
func (e *env) auditEvents(t *testing.T, key, filter string) []obj {
	t.Helper()
	var all []obj
	token := ""
	for {
		var out obj
		path := "/v1/auditEvents?page_size=4&filter=" + url.QueryEscape(filter) + "&page_token=" + url.QueryEscape(token)
		if code := e.call(t, key, "GET", path, nil, &out); code != 200 {
			t.Fatalf("GET %s = %d %v", path, code, out)
		}
		for _, r := range asList(out["audit_events"]) {
			all = append(all, r.(obj))
		}
		if token = str(out, "next_page_token"); token == "" {
			return all
		}
	}
}

// TestAuditTrailThroughGateway: every customer and reviewer action of a DV
// lifecycle (create, edit, submit, key download, reissue, revoke), a
// withdrawal and an OV review (phone call, approval) is in the trail once,
// with the key that acted, the client's address and the request's id, even
// though every event is delivered twice and shuffled; the filters and page
// tokens work; another account sees none of it; headers a client sends to
// forge the actor or the address change nothing; the records are on NATS.
func TestAuditTrailThroughGateway(t *testing.T) {
	chaos := &events.Chaos{Window: 50 * time.Millisecond}
	e := startWith(t, func(o *suite.Options) { o.EventChaos = chaos })
	key, rev := e.s.APIKey, e.s.ReviewerKey
	began := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)

	type want struct{ action, resource, requestID, key string }
	var wants []want
	// act makes one request with a request id of its own and checks the
	// gateway answers with that id.
	act := func(k, method, path string, body any, reqID, action string, resource func(obj) string) obj {
		t.Helper()
		var out obj
		code, h := e.callH(t, k, method, path, map[string]string{"X-Request-Id": reqID}, body, &out)
		if code != 200 {
			t.Fatalf("%s %s = %d %v", method, path, code, out)
		}
		if got := h.Get("X-Request-Id"); got != reqID {
			t.Fatalf("%s %s answered X-Request-Id %q; want %q", method, path, got, reqID)
		}
		wants = append(wants, want{action, resource(out), reqID, k})
		return out
	}
	named := func(o obj) string { return str(o, "name") }
	fixed := func(s string) func(obj) string { return func(obj) string { return s } }

	// A DV application: create, edit, submit, issue, download the key,
	// reissue, revoke the first certificate.
	dv := e.buy(t, key, "products/dv-single-1y", 2)
	appA := named(act(key, "POST", "/v1/applications", obj{"instance": dv[0], "domains": []string{"www.audit.test"}, "applicant": applicant(),
		"validation_method": "VALIDATION_METHOD_DNS_TXT"}, "rq-create-a", "application.create", named))
	edited := applicant()
	edited["name"] = "Han Meimei"
	act(key, "PATCH", "/v1/"+appA+"?update_mask=applicant", obj{"applicant": edited}, "rq-update-a", "application.update", named)
	e.prove(t, act(key, "POST", "/v1/"+appA+":submit", obj{}, "rq-submit-a", "application.submit", named))
	cert := str(e.waitState(t, key, appA, "ISSUED"), "certificate")
	bundle := act(key, "GET", "/v1/"+cert+":download", nil, "rq-download", "certificate.key_download", fixed(cert))
	if !strings.Contains(str(bundle, "private_key_pem"), "PRIVATE KEY") {
		t.Fatalf("download = %v; want the key", bundle)
	}
	act(key, "POST", "/v1/"+appA+":reissue", obj{"request_id": "audit-reissue-1"}, "rq-reissue", "application.reissue", named)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var a obj
		e.call(t, key, "GET", "/v1/"+appA, nil, &a)
		if a["state"] == "ISSUED" && str(a, "certificate") != cert {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v; want reissued", appA, a["state"])
		}
	}
	act(key, "POST", "/v1/"+cert+":revoke", obj{"reason": "REVOCATION_REASON_SUPERSEDED", "request_id": "audit-revoke-1"}, "rq-revoke", "certificate.revoke", fixed(cert))

	// A second application, created with headers that try to forge the
	// actor and the address (a client may not speak for the gateway), and
	// withdrawn with a request id that is not a sane token (replaced by
	// one the gateway makes and answers with).
	var created obj
	code, h := e.callH(t, key, "POST", "/v1/applications", map[string]string{
		"X-Request-Id": "rq-create-b", "X-Certflow-Actor": "sha256:forgedforgedforg", "Grpc-Metadata-X-Certflow-Actor": "sha256:forgedforgedforg",
		"X-Certflow-Source": "198.51.100.66", "Grpc-Metadata-X-Certflow-Account": "other", "X-Forwarded-For": "203.0.113.9",
	}, obj{"instance": dv[1], "domains": []string{"b.audit.test"}, "applicant": applicant()}, &created)
	if code != 200 || h.Get("X-Request-Id") != "rq-create-b" {
		t.Fatalf("create with forged headers = %d %v", code, created)
	}
	appB := named(created)
	wants = append(wants, want{"application.create", appB, "rq-create-b", key})
	var withdrawn obj
	code, h = e.callH(t, key, "POST", "/v1/"+appB+":withdraw", map[string]string{"X-Request-Id": "not a token; <script>"}, obj{}, &withdrawn)
	made := h.Get("X-Request-Id")
	if code != 200 || made == "" || strings.ContainsAny(made, " ;<") {
		t.Fatalf("withdraw = %d %v, X-Request-Id %q; want 200 and a request id the gateway made", code, withdrawn, made)
	}
	wants = append(wants, want{"application.withdraw", appB, made, key})

	// An OV application: the reviewer records the call and approves.
	ov := e.buy(t, key, "products/ov-single-1y", 1)
	appO := named(act(key, "POST", "/v1/applications", obj{"instance": ov[0], "domains": []string{"www.trading-audit.test"}, "applicant": ovApplicant(), "company": company()},
		"rq-create-ov", "application.create", named))
	if code, out := e.upload(t, appO, "licence.png", tinyPNG(t)); code != 200 {
		t.Fatalf("upload = %d %v", code, out)
	}
	e.prove(t, act(key, "POST", "/v1/"+appO+":submit", obj{}, "rq-submit-ov", "application.submit", named))
	e.waitState(t, key, appO, "PENDING_ORGANIZATION_VERIFICATION")
	review := named(e.pendingReview(t, appO, "ORGANIZATION"))
	act(rev, "POST", "/v1/"+review+":recordPhoneCall", obj{"phone": "+86 571 1234 5678", "outcome": "OUTCOME_CONFIRMED"}, "rq-call", "review.phone_call", named)
	act(rev, "POST", "/v1/"+review+":approve", obj{"note": "ok"}, "rq-approve", "review.approve", named)
	e.waitState(t, key, appO, "ISSUED")

	// The trail: each action once, in the account's trail, newest first.
	var got []obj
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got = e.auditEvents(t, key, ""); len(got) >= len(wants) || time.Now().After(deadline) {
			break
		}
	}
	// Redeliveries of the last ones, if any, have come by now.
	time.Sleep(500 * time.Millisecond)
	got = e.auditEvents(t, key, "")
	if len(got) != len(wants) {
		t.Fatalf("the trail has %d records; want %d:\n%v", len(got), len(wants), got)
	}
	byKey := map[string]obj{}
	for i, r := range got {
		k := str(r, "action") + " " + str(r, "resource") + " " + str(r, "request_id")
		if byKey[k] != nil {
			t.Errorf("recorded twice: %s", k)
		}
		byKey[k] = r
		if i > 0 && str(got[i-1], "time") < str(r, "time") {
			t.Errorf("records not newest first: %s before %s", got[i-1]["time"], r["time"])
		}
	}
	for _, w := range wants {
		r := byKey[w.action+" "+w.resource+" "+w.requestID]
		role, actorAccount := "customer", "dev"
		if w.key == rev {
			role, actorAccount = "reviewer", "ca-staff"
		}
		switch {
		case r == nil:
			t.Errorf("no record of %s on %s (request %s); have %v", w.action, w.resource, w.requestID, got)
		case str(r, "actor") != keyID(w.key) || str(r, "role") != role || str(r, "actor_account") != actorAccount ||
			str(r, "account") != "dev" || str(r, "source") != "127.0.0.1" || !strings.HasPrefix(str(r, "name"), "auditEvents/"):
			t.Errorf("record %v; want actor %s (%s, %s), account dev, source 127.0.0.1", r, keyID(w.key), role, actorAccount)
		}
	}

	// Filters.
	count := func(k, filter string) int { return len(e.auditEvents(t, k, filter)) }
	for _, tt := range []struct {
		key, filter string
		want        int
	}{
		{key, `action = "certificate.key_download"`, 1},
		{key, `resource = "` + appA + `"`, 4},
		{key, `actor = "` + keyID(rev) + `"`, 2},
		{key, `action = "application.create" AND resource = "` + appB + `"`, 1},
		{key, `time >= "` + began + `"`, len(wants)},
		{key, `time < "` + began + `"`, 0},
		{key, `time >= "` + began + `" AND time < "2999-01-01T00:00:00Z" AND action = "review.approve"`, 1},
		{rev, `account = "dev"`, len(wants)},
		{rev, `account = "other"`, 0},
		{rev, ``, len(wants)},
		{otherKey, ``, 0},
		{otherKey, `resource = "` + appA + `"`, 0},
	} {
		if n := count(tt.key, tt.filter); n != tt.want {
			t.Errorf("%s lists %d records with filter %q; want %d", tt.key[:7], n, tt.filter, tt.want)
		}
	}
	// Refusals: a customer filtering by account, bad filters, page tokens
	// changed or carried to another query.
	var first obj
	if code := e.call(t, key, "GET", "/v1/auditEvents?page_size=2", nil, &first); code != 200 || str(first, "next_page_token") == "" {
		t.Fatalf("first page = %d %v; want a next page token", code, first)
	}
	tok := str(first, "next_page_token")
	tampered := tok[:len(tok)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(tok, "AA")]
	for _, tt := range []struct {
		key, query, reason string
	}{
		{otherKey, "filter=" + url.QueryEscape(`account = "dev"`), "INVALID_FILTER"},
		{key, "filter=" + url.QueryEscape(`account = "dev"`), "INVALID_FILTER"},
		{key, "filter=" + url.QueryEscape(`time >= "yesterday"`), "INVALID_FILTER"},
		{key, "filter=" + url.QueryEscape(`time >= "`+began+`" AND time > "`+began+`"`), "INVALID_FILTER"},
		{key, "filter=" + url.QueryEscape(`source = "127.0.0.1"`), "INVALID_FILTER"},
		{key, "page_token=" + url.QueryEscape(tampered), "INVALID_PAGE_TOKEN"},
		{key, "page_token=" + url.QueryEscape(tok) + "&filter=" + url.QueryEscape(`action = "application.create"`), "INVALID_PAGE_TOKEN"},
		{otherKey, "page_token=" + url.QueryEscape(tok), "INVALID_PAGE_TOKEN"},
		{rev, "page_token=" + url.QueryEscape(tok), "INVALID_PAGE_TOKEN"},
	} {
		var out obj
		if code := e.call(t, tt.key, "GET", "/v1/auditEvents?"+tt.query, nil, &out); code != http.StatusBadRequest || reasonOf(out) != tt.reason {
			t.Errorf("GET /v1/auditEvents?%s as %s = %d %v; want 400 %s", tt.query, tt.key[:7], code, out, tt.reason)
		}
	}

	// Audit teams read the same records on NATS, once each.
	wantOnNATS := map[string]int{}
	for _, w := range wants {
		wantOnNATS[events.AuditSubject(w.action)]++
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e.mu.Lock()
		var have []string
		for typ, n := range e.events {
			if strings.HasPrefix(typ, events.AuditPrefix) {
				have = append(have, fmt.Sprintf("%s=%d", typ, n))
			}
		}
		e.mu.Unlock()
		var exp []string
		for typ, n := range wantOnNATS {
			exp = append(exp, fmt.Sprintf("%s=%d", typ, n))
		}
		sort.Strings(have)
		sort.Strings(exp)
		if fmt.Sprint(have) == fmt.Sprint(exp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit events on NATS %v; want %v", have, exp)
		}
	}
	if chaos.Deliveries() == 0 {
		t.Fatal("chaos delivered nothing: the consumers did not go through it")
	}
}
