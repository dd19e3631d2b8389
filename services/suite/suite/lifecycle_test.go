package suite_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/services/suite/suite"
)

// Helpers for the whole-lifecycle tests (the seeds' every step through the
// JSON gateway).

func company() obj {
	return obj{"name": "Example Trading Ltd", "type": "enterprise", "phone": "+86 571 1234 5678", "organization_id": "91330100MA2XXXXX",
		"country": "CN", "province": "Zhejiang", "city": "Hangzhou", "address": "1 Wensan Road", "zip_code": "310000"}
}

func ovApplicant() obj {
	a := applicant()
	a["id_number"] = "330106199001011234"
	return a
}

func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// apply creates an application and returns its name.
func (e *env) apply(t *testing.T, body obj) string {
	t.Helper()
	var app obj
	if code := e.call(t, e.s.APIKey, "POST", "/v1/applications", body, &app); code != 200 {
		t.Fatalf("POST /v1/applications = %d %v", code, app)
	}
	return app["name"].(string)
}

func (e *env) upload(t *testing.T, app string, name string, content []byte) (int, obj) {
	t.Helper()
	var out obj
	code := e.call(t, e.s.APIKey, "POST", "/v1/"+app+"/documents", obj{"display_name": name, "content": base64.StdEncoding.EncodeToString(content)}, &out)
	return code, out
}

func (e *env) submit(t *testing.T, app string) obj {
	t.Helper()
	var out obj
	if code := e.call(t, e.s.APIKey, "POST", "/v1/"+app+":submit", obj{}, &out); code != 200 {
		t.Fatalf("submit %s = %d %v", app, code, out)
	}
	return out
}

// prove publishes every pending DNS challenge of the application in the
// test DNS server and asks for a check.
func (e *env) prove(t *testing.T, app obj) {
	t.Helper()
	txt := map[string][]string{}
	for _, c := range app["challenges"].([]any) {
		ch := c.(obj)
		if ch["state"] != "PENDING" {
			continue
		}
		switch ch["dns_record_type"] {
		case "TXT":
			n := ch["dns_record_name"].(string)
			txt[n] = append(txt[n], ch["dns_record_value"].(string))
			e.dns.SetTXT(n, txt[n]...)
		case "CNAME":
			e.dns.SetCNAME(ch["dns_record_name"].(string), ch["dns_record_value"].(string))
		default:
			t.Fatalf("cannot prove challenge %v by DNS", ch)
		}
	}
	for _, c := range app["challenges"].([]any) {
		if ch := c.(obj); ch["state"] == "PENDING" {
			e.call(t, e.s.APIKey, "POST", "/v1/"+ch["name"].(string)+":check", obj{}, nil)
		}
	}
}

// pendingReview returns the pending review of kind for the application,
// as the reviewer sees it in the queue.
func (e *env) pendingReview(t *testing.T, app, kind string) obj {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list obj
		if code := e.call(t, e.s.ReviewerKey, "GET", "/v1/reviews?filter="+url.QueryEscape(`state = PENDING AND application = "`+app+`"`), nil, &list); code != 200 {
			t.Fatalf("GET /v1/reviews as reviewer = %d %v", code, list)
		}
		for _, r := range asList(list["reviews"]) {
			if r.(obj)["kind"] == kind {
				return r.(obj)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pending %s review for %s in %v", kind, app, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func reasonOf(body obj) string {
	for _, d := range asList(body["details"]) {
		if r, ok := d.(obj)["reason"].(string); ok {
			return r
		}
	}
	return ""
}

func historyStates(app obj) []string {
	var out []string
	for _, h := range asList(app["history"]) {
		out = append(out, h.(obj)["state"].(string))
	}
	return out
}

// TestOVWithDocumentsReviewAndPhone: an OV certificate needs company
// details and documents; after domain verification a reviewer opens the
// documents, records the phone call and approves; the certificate issues.
func TestOVWithDocumentsReviewAndPhone(t *testing.T) {
	e := start(t)
	key, rev := e.s.APIKey, e.s.ReviewerKey
	inst := e.buy(t, key, "products/ov-single-1y", 1)

	var body obj
	if code := e.call(t, key, "POST", "/v1/applications", obj{"instance": inst[0], "domains": []string{"www.trading.test"}, "applicant": ovApplicant()}, &body); code != 400 || reasonOf(body) != "MISSING_FIELD" {
		t.Fatalf("OV without company = %d %v; want 400 MISSING_FIELD", code, body)
	}
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"www.trading.test"}, "applicant": ovApplicant(), "company": company()})
	if code := e.call(t, key, "POST", "/v1/"+app+":submit", obj{}, &body); code != 400 || reasonOf(body) != "DOCUMENTS_REQUIRED" {
		t.Fatalf("submit without documents = %d %v; want 400 DOCUMENTS_REQUIRED", code, body)
	}
	if code, out := e.upload(t, app, "licence.png", []byte("GIF89a not really a png")); code != 400 || reasonOf(out) != "UNSUPPORTED_FILE_TYPE" {
		t.Fatalf("upload of a GIF named .png = %d %v; want 400 UNSUPPORTED_FILE_TYPE", code, out)
	}
	if code, out := e.upload(t, app, "huge.png", append(tinyPNG(t), make([]byte, 600*1024)...)); code != 400 || reasonOf(out) != "FILE_TOO_LARGE" {
		t.Fatalf("upload of 600 KB = %d %v; want 400 FILE_TOO_LARGE", code, out)
	}
	code, doc := e.upload(t, app, "licence.png", tinyPNG(t))
	if code != 200 || doc["content_type"] != "image/png" {
		t.Fatalf("upload PNG = %d %v", code, doc)
	}
	var docs obj
	e.call(t, key, "GET", "/v1/"+app+"/documents", nil, &docs)
	if len(asList(docs["documents"])) != 1 {
		t.Fatalf("documents listed with the application = %v; want 1", docs)
	}

	sub := e.submit(t, app)
	e.prove(t, sub)
	got := e.waitState(t, key, app, "PENDING_ORGANIZATION_VERIFICATION")
	if got["progress_percent"] != float64(70) {
		t.Fatalf("progress in organization verification = %v; want 70", got["progress_percent"])
	}

	// Roles: a customer cannot review, a reviewer cannot act as a customer.
	if code := e.call(t, key, "GET", "/v1/reviews", nil, nil); code != http.StatusForbidden {
		t.Fatalf("customer GET /v1/reviews = %d; want 403", code)
	}
	if code := e.call(t, rev, "POST", "/v1/orders", obj{"product": "products/dv-single-1y", "quantity": 1}, nil); code != http.StatusForbidden {
		t.Fatalf("reviewer POST /v1/orders = %d; want 403", code)
	}
	if code := e.call(t, rev, "POST", "/v1/"+app+":withdraw", obj{}, nil); code != http.StatusForbidden {
		t.Fatalf("reviewer withdraw = %d; want 403", code)
	}

	review := e.pendingReview(t, app, "ORGANIZATION")
	rname := review["name"].(string)
	var full obj
	e.call(t, rev, "GET", "/v1/"+rname, nil, &full)
	rdocs := asList(full["documents"])
	if len(rdocs) != 1 || full["organization"].(obj)["organization_id"] != "91330100MA2XXXXX" {
		t.Fatalf("review = %v; want the company and its one document", full)
	}
	var content obj
	if code := e.call(t, rev, "GET", "/v1/"+rdocs[0].(obj)["name"].(string), nil, &content); code != 200 || content["content"] == nil {
		t.Fatalf("reviewer opens the document = %d; want its content", code)
	}
	if code := e.call(t, key, "POST", "/v1/"+rname+":approve", obj{}, nil); code != http.StatusForbidden {
		t.Fatalf("customer approves = %d; want 403", code)
	}
	if code := e.call(t, rev, "POST", "/v1/"+rname+":recordPhoneCall", obj{"phone": "+86 571 1234 5678", "outcome": "OUTCOME_CONFIRMED", "notes": "spoke to the legal representative"}, &body); code != 200 {
		t.Fatalf("record phone call = %d %v", code, body)
	}
	if code := e.call(t, rev, "POST", "/v1/"+rname+":approve", obj{"note": "licence and call check out"}, &body); code != 200 || body["state"] != "APPROVED" {
		t.Fatalf("approve = %d %v", code, body)
	}
	issued := e.waitState(t, key, app, "ISSUED")
	checkIssued(t, e, key, issued["certificate"].(string), "OV")
	want := []string{"DRAFT", "PENDING_DOMAIN_VERIFICATION", "PENDING_ORGANIZATION_VERIFICATION", "PENDING_ISSUANCE", "ISSUED"}
	if got := historyStates(issued); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history = %v; want %v", got, want)
	}

	// The applicant was told to expect the call, by mail and SMS.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var notes obj
		e.call(t, key, "GET", "/v1/notifications?filter="+url.QueryEscape(`application = "`+app+`"`), nil, &notes)
		var phoneMail, sms bool
		for _, n := range asList(notes["notifications"]) {
			n := n.(obj)
			if n["channel"] == "CHANNEL_EMAIL" && strings.Contains(fmt.Sprint(n["subject"]), "phone") {
				phoneMail = true
			}
			if n["channel"] == "CHANNEL_SMS" && n["recipient"] == "+86 571 8502 2088" {
				sms = true
			}
		}
		if phoneMail && sms {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications = %v; want an 'answer the phone' mail and an SMS", notes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEVRejectedThenResubmitted: the reviewer rejects with a cause, the
// customer edits the company details and resubmits; the domain validation
// of the first attempt is reused, and the second attempt issues.
func TestEVRejectedThenResubmitted(t *testing.T) {
	e := start(t)
	key, rev := e.s.APIKey, e.s.ReviewerKey
	inst := e.buy(t, key, "products/ev-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"secure.trading.test"}, "applicant": ovApplicant(), "company": company()})
	e.upload(t, app, "licence.png", tinyPNG(t))
	e.prove(t, e.submit(t, app))
	r := e.pendingReview(t, app, "ORGANIZATION")
	var body obj
	if code := e.call(t, rev, "POST", "/v1/"+r["name"].(string)+":reject", obj{"cause": "the registered address does not match the business licence"}, &body); code != 200 {
		t.Fatalf("reject = %d %v", code, body)
	}
	failed := e.waitState(t, key, app, "VALIDATION_FAILED")
	if !strings.Contains(fmt.Sprint(failed["failure_cause"]), "registered address does not match") {
		t.Fatalf("failure cause = %v; want the reviewer's cause", failed["failure_cause"])
	}
	c := company()
	c["address"] = "88 Jiangnan Avenue"
	if code := e.call(t, key, "PATCH", "/v1/"+app+"?update_mask=company", obj{"company": c, "etag": failed["etag"]}, &body); code != 200 {
		t.Fatalf("edit company = %d %v", code, body)
	}
	sub := e.submit(t, app)
	if sub["attempt"] != float64(2) {
		t.Fatalf("attempt = %v; want 2", sub["attempt"])
	}
	r2 := e.pendingReview(t, app, "ORGANIZATION")
	if r2["attempt"] != float64(2) {
		t.Fatalf("review of attempt %v; want 2", r2["attempt"])
	}
	if code := e.call(t, rev, "POST", "/v1/"+r2["name"].(string)+":approve", obj{}, &body); code != 200 {
		t.Fatalf("approve = %d %v", code, body)
	}
	issued := e.waitState(t, key, app, "ISSUED")
	checkIssued(t, e, key, issued["certificate"].(string), "EV")
	for _, ch := range asList(issued["challenges"]) {
		if ch.(obj)["reused"] != true {
			t.Errorf("second attempt's challenge %v was not a reuse of the first validation", ch)
		}
	}
	want := []string{"DRAFT", "PENDING_DOMAIN_VERIFICATION", "PENDING_ORGANIZATION_VERIFICATION", "VALIDATION_FAILED",
		"PENDING_DOMAIN_VERIFICATION", "PENDING_ORGANIZATION_VERIFICATION", "PENDING_ISSUANCE", "ISSUED"}
	if got := historyStates(issued); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history = %v; want both attempts %v", got, want)
	}
	// The trail has the rejection and the approval, by the reviewer, on
	// the customer's account.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rejected := e.auditEvents(t, key, `action = "review.reject"`)
		approved := e.auditEvents(t, key, `action = "review.approve"`)
		if len(rejected) == 1 && len(approved) == 1 {
			if str(rejected[0], "resource") != r["name"] || str(rejected[0], "actor") != keyID(rev) || str(approved[0], "resource") != r2["name"] {
				t.Fatalf("records %v %v; want the reject of %s and the approval of %s by %s", rejected, approved, r["name"], r2["name"], keyID(rev))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trail has %d rejections and %d approvals; want 1 each", len(rejected), len(approved))
		}
	}
}

// TestManualReviewForFlaggedWord: a name holding "pay" waits for a
// reviewer after domain validation (by CNAME here).
func TestManualReviewForFlaggedWord(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"pay.shop.test"}, "applicant": applicant(), "validation_method": "VALIDATION_METHOD_DNS_CNAME"})
	sub := e.submit(t, app)
	if ch := asList(sub["challenges"])[0].(obj); ch["dns_record_type"] != "CNAME" {
		t.Fatalf("CNAME challenge = %v", ch)
	}
	e.prove(t, sub)
	got := e.waitState(t, key, app, "PENDING_MANUAL_REVIEW")
	if got["progress_percent"] != float64(80) || fmt.Sprint(got["flagged_words"]) != "[pay]" {
		t.Fatalf("manual review = %v%%, flagged %v; want 80%% and [pay]", got["progress_percent"], got["flagged_words"])
	}
	r := e.pendingReview(t, app, "MANUAL")
	if code := e.call(t, e.s.ReviewerKey, "POST", "/v1/"+r["name"].(string)+":approve", obj{}, nil); code != 200 {
		t.Fatalf("approve manual review = %d", code)
	}
	e.waitState(t, key, app, "ISSUED")
}

// TestWithdrawInEachState: withdrawing before issuance works from every
// state, cancels what is pending and frees the instance.
func TestWithdrawInEachState(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	check := func(t *testing.T, app, instance string) {
		t.Helper()
		var body obj
		// A review hand-off may hold the application for a moment after the
		// review appears; the 409 says to retry, as a client would.
		code := 0
		for try := 0; try < 50; try++ {
			body = nil
			if code = e.call(t, key, "POST", "/v1/"+app+":withdraw", obj{}, &body); code != http.StatusConflict {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code != 200 || body["state"] != "WITHDRAWN" {
			t.Fatalf("withdraw = %d %v", code, body)
		}
		var inst obj
		deadline := time.Now().Add(10 * time.Second)
		for {
			e.call(t, key, "GET", "/v1/"+instance, nil, &inst)
			if inst["state"] == "PENDING_APPLICATION" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance after withdraw = %v; want PENDING_APPLICATION", inst["state"])
			}
			time.Sleep(20 * time.Millisecond)
		}
		var chs obj
		e.call(t, key, "GET", "/v1/challenges?filter="+url.QueryEscape(`application = "`+app+`" AND state = PENDING`), nil, &chs)
		if n := len(asList(chs["challenges"])); n != 0 {
			t.Fatalf("%d challenges still pending after withdraw", n)
		}
		var revs obj
		e.call(t, e.s.ReviewerKey, "GET", "/v1/reviews?filter="+url.QueryEscape(`state = PENDING AND application = "`+app+`"`), nil, &revs)
		if n := len(asList(revs["reviews"])); n != 0 {
			t.Fatalf("%d reviews still pending after withdraw", n)
		}
		if code := e.call(t, key, "POST", "/v1/"+app+":withdraw", obj{}, &body); code != 400 || reasonOf(body) != "APPLICATION_ALREADY_WITHDRAWN" {
			t.Fatalf("second withdraw = %d %v", code, body)
		}
	}
	t.Run("DRAFT", func(t *testing.T) {
		inst := e.buy(t, key, "products/dv-single-1y", 1)
		check(t, e.apply(t, obj{"instance": inst[0], "domains": []string{"draft.withdraw.test"}, "applicant": applicant()}), inst[0])
	})
	t.Run("PENDING_DOMAIN_VERIFICATION", func(t *testing.T) {
		inst := e.buy(t, key, "products/dv-single-1y", 1)
		app := e.apply(t, obj{"instance": inst[0], "domains": []string{"dcv.withdraw.test"}, "applicant": applicant()})
		e.submit(t, app)
		check(t, app, inst[0])
	})
	t.Run("PENDING_ORGANIZATION_VERIFICATION", func(t *testing.T) {
		inst := e.buy(t, key, "products/ov-single-1y", 1)
		app := e.apply(t, obj{"instance": inst[0], "domains": []string{"org.withdraw.test"}, "applicant": ovApplicant(), "company": company()})
		e.upload(t, app, "licence.png", tinyPNG(t))
		e.prove(t, e.submit(t, app))
		e.waitState(t, key, app, "PENDING_ORGANIZATION_VERIFICATION")
		e.pendingReview(t, app, "ORGANIZATION")
		check(t, app, inst[0])
	})
	t.Run("PENDING_MANUAL_REVIEW", func(t *testing.T) {
		inst := e.buy(t, key, "products/dv-single-1y", 1)
		app := e.apply(t, obj{"instance": inst[0], "domains": []string{"bank.withdraw.test"}, "applicant": applicant()})
		e.prove(t, e.submit(t, app))
		e.waitState(t, key, app, "PENDING_MANUAL_REVIEW")
		e.pendingReview(t, app, "MANUAL")
		check(t, app, inst[0])
	})
	t.Run("PENDING_ISSUANCE", func(t *testing.T) {
		// A CAA lookup that keeps failing holds the application before
		// signing (a failed lookup is never permission).
		e.dns.FailWith("hold.withdraw.test", 2) // SERVFAIL
		defer e.dns.Delete("hold.withdraw.test")
		inst := e.buy(t, key, "products/dv-single-1y", 1)
		app := e.apply(t, obj{"instance": inst[0], "domains": []string{"hold.withdraw.test"}, "applicant": applicant()})
		e.prove(t, e.submit(t, app))
		e.waitState(t, key, app, "PENDING_ISSUANCE")
		check(t, app, inst[0])
	})
	t.Run("VALIDATION_FAILED", func(t *testing.T) {
		e.dns.SetCAA("forbid.withdraw.test", devdns.CAA{Tag: "issue", Value: "other-ca.example"})
		inst := e.buy(t, key, "products/dv-single-1y", 1)
		app := e.apply(t, obj{"instance": inst[0], "domains": []string{"www.forbid.withdraw.test"}, "applicant": applicant()})
		e.prove(t, e.submit(t, app))
		e.waitState(t, key, app, "VALIDATION_FAILED")
		check(t, app, inst[0])
	})
}

// TestCAAForbidsIssuance: a CAA record naming another CA fails the
// application with that cause.
func TestCAAForbidsIssuance(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	e.dns.SetCAA("caa.test", devdns.CAA{Tag: "issue", Value: "other-ca.example"})
	inst := e.buy(t, key, "products/dv-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"www.caa.test"}, "applicant": applicant()})
	e.prove(t, e.submit(t, app))
	failed := e.waitState(t, key, app, "VALIDATION_FAILED")
	if cause := fmt.Sprint(failed["failure_cause"]); !strings.Contains(cause, "CAA") || !strings.Contains(cause, "other-ca.example") {
		t.Fatalf("failure cause = %q; want the CAA record", cause)
	}
}

// TestEmailDCV: the code goes to the constructed address over SMTP and
// confirming it through the gateway verifies the name.
func TestEmailDCV(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"mail.example.test"}, "applicant": applicant(),
		"validation_method": "VALIDATION_METHOD_EMAIL", "approver_mailbox": "hostmaster"})
	sub := e.submit(t, app)
	if len(asList(sub["warnings"])) == 0 {
		t.Errorf("email validation in late 2026 carries no warning; the BRs say SHOULD NOT")
	}
	ch := asList(sub["challenges"])[0].(obj)
	codeRE := regexp.MustCompile(`"code":\s*"([^"]+)"`)
	var code string
	deadline := time.Now().Add(15 * time.Second)
	for code == "" {
		for _, m := range e.smtp.Messages() {
			if len(m.To) == 1 && m.To[0] == "hostmaster@mail.example.test" {
				if mm := codeRE.FindSubmatch(m.Data); mm != nil {
					code = string(mm[1])
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no validation mail with a code reached hostmaster@mail.example.test")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var body obj
	if status := e.call(t, key, "POST", "/v1/"+ch["name"].(string)+":confirm", obj{"code": "WRONG-CODE"}, &body); status != 400 {
		t.Fatalf("confirm with a wrong code = %d %v; want 400", status, body)
	}
	if status := e.call(t, otherKey, "POST", "/v1/"+ch["name"].(string)+":confirm", obj{"code": code}, &body); status != 404 {
		t.Fatalf("confirm by another account = %d; want 404", status)
	}
	if status := e.call(t, key, "POST", "/v1/"+ch["name"].(string)+":confirm", obj{"code": code}, &body); status != 200 || body["state"] != "VERIFIED" {
		t.Fatalf("confirm = %d %v", status, body)
	}
	if status := e.call(t, key, "POST", "/v1/"+ch["name"].(string)+":confirm", obj{"code": code}, &body); status != 400 {
		t.Fatalf("confirm twice = %d %v; want 400 (single use)", status, body)
	}
	e.waitState(t, key, app, "ISSUED")
}

// TestManualCSR: a pasted CSR for exactly the bound names is accepted and
// the service keeps no key; every kind of bad CSR is refused with its reason.
func TestManualCSR(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-multi-1y", 2)
	names := []string{"a.csr.test", "b.csr.test"}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := makeCSR(t, p256, names...)

	bad := func(mutate func([]byte) []byte) string {
		der := csrDER(t, p256, names...)
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: mutate(der)}))
	}
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	tests := []struct {
		name, csr, reason string
	}{
		{"not PEM", "hello", "CSR_NOT_PEM"},
		{"not a CSR", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: csrDER(t, p256, names...)})), "CSR_NOT_A_CSR"},
		{"bad signature", bad(func(b []byte) []byte { b[len(b)-3] ^= 0xff; return b }), "CSR_BAD_SIGNATURE"},
		{"RSA 1024", makeCSR(t, rsa1024, names...), "KEY_SIZE"},
		{"P-224", makeCSR(t, p224, names...), "KEY_CURVE"},
		{"RSA close primes", makeCSR(t, closePrimesKey(t), names...), "KEY_CLOSE_PRIMES"},
		{"missing a name", makeCSR(t, p256, names[0]), "CSR_NAME_MISMATCH"},
		{"extra name", makeCSR(t, p256, append(names, "c.csr.test")...), "CSR_NAME_MISMATCH"},
	}
	for _, tt := range tests {
		var body obj
		code := e.call(t, key, "POST", "/v1/applications", obj{"instance": inst[0], "domains": names, "applicant": applicant(), "csr_mode": "CSR_MODE_MANUAL", "csr": tt.csr}, &body)
		if code != 400 || reasonOf(body) != tt.reason {
			t.Errorf("manual CSR %s = %d %s; want 400 %s (%v)", tt.name, code, reasonOf(body), tt.reason, body["message"])
		}
	}

	app := e.apply(t, obj{"instance": inst[1], "domains": names, "applicant": applicant(), "csr_mode": "CSR_MODE_MANUAL", "csr": good})
	sub := e.submit(t, app)
	if sub["service_holds_key"] == true {
		t.Fatalf("manual CSR application says the service holds the key")
	}
	e.prove(t, sub)
	issued := e.waitState(t, key, app, "ISSUED")
	var bundle obj
	e.call(t, key, "GET", "/v1/"+issued["certificate"].(string)+":download", nil, &bundle)
	if bundle["private_key_pem"] != nil && bundle["private_key_pem"] != "" {
		t.Fatalf("download of a manual-CSR certificate carries a key")
	}
	block, _ := pem.Decode([]byte(bundle["certificate_pem"].(string)))
	leaf, _ := x509.ParseCertificate(block.Bytes)
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(&p256.PublicKey) {
		t.Fatalf("certificate is not for the customer's key")
	}
}

// TestBlockedKeyRefusedAtSigning: a CSR whose key is on the CA's
// blocked-keys file passes the application service's checks (it has no
// lists) but the CA refuses to sign it; the application fails with the
// reason and what to do, instead of being retried forever.
func TestBlockedKeyRefusedAtSigning(t *testing.T) {
	blockedKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, err := x509.MarshalPKIXPublicKey(blockedKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	blockedFile := filepath.Join(t.TempDir(), "blocked-keys")
	if err := os.WriteFile(blockedFile, []byte("# compromised test key\n"+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startWith(t, func(o *suite.Options) { o.BlockedKeysFile = blockedFile })
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 1)
	names := []string{"blocked.csr.test"}
	app := e.apply(t, obj{"instance": inst[0], "domains": names, "applicant": applicant(), "csr_mode": "CSR_MODE_MANUAL", "csr": makeCSR(t, blockedKey, names...)})
	e.prove(t, e.submit(t, app))
	failed := e.waitState(t, key, app, "VALIDATION_FAILED")
	if cause := fmt.Sprint(failed["failure_cause"]); !strings.Contains(cause, "KEY_COMPROMISED") || !strings.Contains(cause, "make a new key") {
		t.Fatalf("failure cause = %q; want KEY_COMPROMISED and what to do", cause)
	}
}

func csrDER(t *testing.T, key any, names ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// closePrimesKey is a real RSA-2048 key whose primes are so close that
// Fermat's method factors it at once: q is the first prime after p+2^100.
// crypto/rsa refuses to sign with such a key, so it signs by hand
// (PKCS #1 v1.5 with SHA-256, the textbook way).
func closePrimesKey(t *testing.T) crypto.Signer {
	t.Helper()
	p, err := rand.Prime(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	q := new(big.Int).Add(p, new(big.Int).Lsh(big.NewInt(1), 100))
	q.SetBit(q, 0, 1)
	for !q.ProbablyPrime(20) {
		q.Add(q, big.NewInt(2))
	}
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(big.NewInt(65537), phi)
	if d == nil {
		t.Skip("65537 is not invertible for these primes; rare, run again")
	}
	k := rawRSA{pub: &rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}, d: d}
	digest := sha256.Sum256([]byte("self-test"))
	sig, err := k.Sign(nil, digest[:], crypto.SHA256)
	if err == nil {
		err = rsa.VerifyPKCS1v15(k.pub, crypto.SHA256, digest[:], sig)
	}
	if err != nil {
		t.Fatalf("the hand-made RSA signer does not make valid signatures: %v", err)
	}
	return k
}

type rawRSA struct {
	pub *rsa.PublicKey
	d   *big.Int
}

func (k rawRSA) Public() crypto.PublicKey { return k.pub }

func (k rawRSA) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("rawRSA signs SHA-256 only, not %v", opts.HashFunc())
	}
	// EMSA-PKCS1-v1_5: 00 01 FF..FF 00 DigestInfo(SHA-256) digest.
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	size := (k.pub.N.BitLen() + 7) / 8
	em := make([]byte, size)
	em[1] = 1
	tLen := len(prefix) + len(digest)
	for i := 2; i < size-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-tLen:], append(prefix, digest...))
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), k.d, k.pub.N)
	return s.FillBytes(make([]byte, size)), nil
}

func makeCSR(t *testing.T, key any, names ...string) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER(t, key, names...)}))
}

// TestTemplatePrefills: saved details prefill a new application.
func TestTemplatePrefills(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	var tpl obj
	if code := e.call(t, key, "POST", "/v1/templates", obj{"display_name": "Trading Ltd", "applicant": ovApplicant(), "company": company()}, &tpl); code != 200 {
		t.Fatalf("create template = %d %v", code, tpl)
	}
	inst := e.buy(t, key, "products/ov-single-1y", 1)
	var app obj
	if code := e.call(t, key, "POST", "/v1/applications?template="+url.QueryEscape(tpl["name"].(string)), obj{"instance": inst[0], "domains": []string{"tpl.trading.test"}}, &app); code != 200 {
		t.Fatalf("create from template = %d %v", code, app)
	}
	if app["company"].(obj)["organization_id"] != "91330100MA2XXXXX" || app["applicant"].(obj)["email"] != "li.lei@example.test" {
		t.Fatalf("application from template = %v; want the saved applicant and company", app)
	}
	if code := e.call(t, otherKey, "GET", "/v1/"+tpl["name"].(string), nil, nil); code != 404 {
		t.Fatalf("other account reads template = %d; want 404", code)
	}
	var list obj
	e.call(t, key, "GET", "/v1/templates", nil, &list)
	if n := len(asList(list["templates"])); n != 1 {
		t.Fatalf("templates listed = %d; want 1", n)
	}
	if code := e.call(t, otherKey, "DELETE", "/v1/"+tpl["name"].(string), nil, nil); code != 404 {
		t.Fatalf("other account deletes template = %d; want 404", code)
	}
	if code := e.call(t, key, "DELETE", "/v1/"+tpl["name"].(string), nil, nil); code != 200 {
		t.Fatalf("delete template = %d", code)
	}
	if code := e.call(t, key, "GET", "/v1/"+tpl["name"].(string), nil, nil); code != 404 {
		t.Fatalf("deleted template = %d; want 404", code)
	}
}

// TestWebhookSignedAndRetried: a registered URL receives the account's
// lifecycle events signed with HMAC-SHA256, and a 500 is retried.
func TestWebhookSignedAndRetried(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	var (
		mu       sync.Mutex
		secret   string
		received = map[string]int{}
		failures = 0
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !validSignature(secret, r.Header.Get("Certflow-Signature"), body) {
			t.Errorf("delivery with a bad signature: %q", r.Header.Get("Certflow-Signature"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		typ := r.Header.Get("Certflow-Event-Type")
		if typ == "certflow.application.submitted" && failures < 1 {
			failures++
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		received[typ]++
	}))
	defer hook.Close()
	var wh obj
	mu.Lock()
	if code := e.call(t, key, "POST", "/v1/webhooks", obj{"url": hook.URL + "/certflow"}, &wh); code != 200 || wh["secret"] == nil {
		mu.Unlock()
		t.Fatalf("create webhook = %d %v", code, wh)
	}
	secret = wh["secret"].(string)
	mu.Unlock()

	inst := e.buy(t, key, "products/dv-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"hook.example.test"}, "applicant": applicant()})
	e.prove(t, e.submit(t, app))
	e.waitState(t, key, app, "ISSUED")

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := received["certflow.application.submitted"] == 1 && received["certflow.application.issued"] == 1 && received["certflow.certificate.issued"] == 1
		got := fmt.Sprint(received)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook received %s; want submitted (after one 500), certificate.issued and application.issued", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var log obj
	e.call(t, key, "GET", "/v1/"+wh["name"].(string)+"/deliveries?page_size=100", nil, &log)
	var retried bool
	for _, d := range asList(log["deliveries"]) {
		d := d.(obj)
		if d["event_type"] == "certflow.application.submitted" && d["attempts"] == float64(2) && d["state"] == "DELIVERED" && d["last_status_code"] == float64(200) {
			retried = true
		}
	}
	if !retried {
		t.Fatalf("delivery log = %v; want the submitted event delivered on attempt 2", log)
	}
	if code := e.call(t, otherKey, "GET", "/v1/"+wh["name"].(string)+"/deliveries", nil, nil); code != 404 {
		t.Fatalf("other account reads the delivery log = %d; want 404", code)
	}
}

// validSignature checks `t=<unix>,v1=<hex hmac("<t>.<body>")>` as a
// customer's receiver would.
func validSignature(secret, header string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)) > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(sig))
}

// TestDocumentsOnlyForOpenApplications: a document is stored only for an
// existing application of the caller's account that is still open; any
// other upload is refused and stores nothing.
func TestDocumentsOnlyForOpenApplications(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	inst := e.buy(t, key, "products/ov-single-1y", 1)
	app := e.apply(t, obj{"instance": inst[0], "domains": []string{"docs.trading.test"}, "applicant": ovApplicant(), "company": company()})
	png := tinyPNG(t)

	var out obj
	if code := e.call(t, otherKey, "POST", "/v1/"+app+"/documents", obj{"display_name": "x.png", "content": base64.StdEncoding.EncodeToString(png)}, &out); code != http.StatusNotFound {
		t.Fatalf("upload to another account's application = %d %v; want 404", code, out)
	}
	if code, out := e.upload(t, "applications/doesnotexist0000000000", "x.png", png); code != http.StatusNotFound {
		t.Fatalf("upload to an application that does not exist = %d %v; want 404", code, out)
	}
	if code, out := e.upload(t, app, "licence.png", png); code != 200 {
		t.Fatalf("upload to the draft = %d %v; want 200", code, out)
	}
	if code := e.call(t, key, "POST", "/v1/"+app+":withdraw", obj{}, &out); code != 200 {
		t.Fatalf("withdraw = %d %v", code, out)
	}
	if code, out := e.upload(t, app, "late.png", append(png, 0)); code != http.StatusBadRequest || reasonOf(out) != "APPLICATION_CLOSED" {
		t.Fatalf("upload after withdrawal = %d %v; want 400 APPLICATION_CLOSED", code, out)
	}
	var docs obj
	e.call(t, key, "GET", "/v1/"+app+"/documents", nil, &docs)
	if n := len(asList(docs["documents"])); n != 1 {
		t.Fatalf("documents of the application = %v; want only the one uploaded while it was open", docs)
	}
}
