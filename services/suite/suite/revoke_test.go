package suite_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/events"
)

// issueDV buys nothing: it applies with instance for name, proves control
// by DNS and waits for the certificate; it returns the certificate.
func (e *env) issueDV(t *testing.T, instance, name string) obj {
	t.Helper()
	app := e.apply(t, obj{
		"instance": instance, "domains": []string{name}, "applicant": applicant(),
		"validation_method": "VALIDATION_METHOD_DNS_TXT",
	})
	e.prove(t, e.submit(t, app))
	issued := e.waitState(t, e.s.APIKey, app, "ISSUED")
	var cert obj
	if code := e.call(t, e.s.APIKey, "GET", "/v1/"+issued["certificate"].(string), nil, &cert); code != 200 {
		t.Fatalf("GET %s = %d %v", issued["certificate"], code, cert)
	}
	return cert
}

// TestRevokeThroughGateway: the customer revokes its certificate for
// keyCompromise with its API key, a reviewer another for
// privilegeWithdrawn; both show REVOKED, so do their instances, the events
// are published, and the intermediate's CRL served over HTTP lists both
// with their reasons.
func TestRevokeThroughGateway(t *testing.T) {
	e := start(t)
	key, rev := e.s.APIKey, e.s.ReviewerKey
	instances := e.buy(t, key, "products/dv-single-1y", 2)
	mine := e.issueDV(t, instances[0], "rev1.shop.test")
	staff := e.issueDV(t, instances[1], "rev2.shop.test")

	var out obj
	if code := e.call(t, otherKey, "POST", "/v1/"+mine["name"].(string)+":revoke", obj{"reason": "REVOCATION_REASON_SUPERSEDED"}, &out); code != http.StatusNotFound {
		t.Fatalf("another account revokes = %d %v; want 404", code, out)
	}
	if code := e.call(t, key, "POST", "/v1/"+staff["name"].(string)+":revoke", obj{"reason": "REVOCATION_REASON_PRIVILEGE_WITHDRAWN"}, &out); code != http.StatusBadRequest || reasonOf(out) != "REVOCATION_REASON_NOT_ALLOWED" {
		t.Fatalf("customer revokes for privilegeWithdrawn = %d %v; want 400 REVOCATION_REASON_NOT_ALLOWED", code, out)
	}

	var revoked obj
	if code := e.call(t, key, "POST", "/v1/"+mine["name"].(string)+":revoke", obj{"reason": "REVOCATION_REASON_KEY_COMPROMISE", "request_id": "r-1"}, &revoked); code != 200 {
		t.Fatalf("customer revokes = %d %v", code, revoked)
	}
	if revoked["state"] != "REVOKED" || revoked["revocation_reason"] != "REVOCATION_REASON_KEY_COMPROMISE" || revoked["revoke_time"] == nil {
		t.Fatalf("revoked certificate = %v; want REVOKED for keyCompromise with a time", revoked)
	}
	if code := e.call(t, rev, "POST", "/v1/"+staff["name"].(string)+":revoke", obj{"reason": "REVOCATION_REASON_PRIVILEGE_WITHDRAWN"}, &revoked); code != 200 || revoked["state"] != "REVOKED" {
		t.Fatalf("reviewer revokes = %d %v; want REVOKED", code, revoked)
	}
	var read obj
	if e.call(t, key, "GET", "/v1/"+staff["name"].(string), nil, &read); read["state"] != "REVOKED" || read["revocation_reason"] != "REVOCATION_REASON_PRIVILEGE_WITHDRAWN" {
		t.Fatalf("the customer reads the certificate the reviewer revoked: %v", read)
	}

	// The instances follow (certificate.revoked -> application -> order).
	for _, in := range instances {
		for deadline := time.Now().Add(20 * time.Second); ; {
			var inst obj
			e.call(t, key, "GET", "/v1/"+in, nil, &inst)
			if inst["state"] == "REVOKED" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s is %v; want REVOKED", in, inst["state"])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The CRL at the suite's URL lists both, signed by the intermediate.
	var ca obj
	if code := e.call(t, key, "GET", "/v1/caCertificates", nil, &ca); code != 200 {
		t.Fatalf("GET /v1/caCertificates = %d", code)
	}
	b, _ := pem.Decode([]byte(ca["intermediate_pem"].(string)))
	inter, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{mine["serial_number"].(string): 1, staff["serial_number"].(string): 9}
	for deadline := time.Now().Add(60 * time.Second); ; {
		crl := fetchCRL(t, e.s.IssuanceHTTPURL+"/crl/intermediate.crl")
		if err := crl.CheckSignatureFrom(inter); err != nil {
			t.Fatalf("CRL does not verify against the intermediate: %v", err)
		}
		got := map[string]int{}
		for _, en := range crl.RevokedCertificateEntries {
			got[fmt.Sprintf("%X", en.SerialNumber)] = en.ReasonCode
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRL entries %v; want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for deadline := time.Now().Add(10 * time.Second); ; {
		e.mu.Lock()
		c, i := e.events[events.CertificateRevoked], e.events[events.InstanceRevoked]
		e.mu.Unlock()
		if c == 2 && i == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events: %d %s, %d %s; want 2 of each", c, events.CertificateRevoked, i, events.InstanceRevoked)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The applicant is told of both.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var revokedMails []string
		for _, m := range e.smtp.Messages() {
			if s := subjectOf(m.Data); strings.Contains(s, "was revoked") {
				revokedMails = append(revokedMails, s)
			}
		}
		if len(revokedMails) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation mails %q; want 2", revokedMails)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetchCRL(t *testing.T, url string) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// TestCompromisedKeyRefusedThroughGateway: after the customer revokes a
// certificate for keyCompromise, an application with a CSR of the same key
// fails with KEY_COMPROMISED as its cause.
func TestCompromisedKeyRefusedThroughGateway(t *testing.T) {
	e := start(t)
	key := e.s.APIKey
	inst := e.buy(t, key, "products/dv-single-1y", 2)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	apply := func(instance string) string {
		app := e.apply(t, obj{"instance": instance, "domains": []string{"k.csr.test"}, "applicant": applicant(), "csr_mode": "CSR_MODE_MANUAL", "csr": makeCSR(t, p256, "k.csr.test")})
		e.prove(t, e.submit(t, app))
		return app
	}
	issued := e.waitState(t, key, apply(inst[0]), "ISSUED")
	var out obj
	if code := e.call(t, key, "POST", "/v1/"+issued["certificate"].(string)+":revoke", obj{"reason": "REVOCATION_REASON_KEY_COMPROMISE"}, &out); code != 200 {
		t.Fatalf("revoke = %d %v", code, out)
	}
	failed := e.waitState(t, key, apply(inst[1]), "VALIDATION_FAILED")
	if cause, _ := failed["failure_cause"].(string); !strings.Contains(cause, "KEY_COMPROMISED") {
		t.Fatalf("failure cause %q; want KEY_COMPROMISED", cause)
	}
}
