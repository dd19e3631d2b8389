package suite_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	zlintlint "github.com/zmap/zlint/v3/lint"
)

// lintSkipped are the lints the issuance service leaves out for a test CA
// (services/issuance/internal/lint: Exclusions and TestCAExclusions, each
// justified there).
var lintSkipped = []string{
	"w_ext_subject_key_identifier_not_recommended_subscriber",
	"e_dnsname_not_valid_tld",
	"w_sub_cert_aia_contains_internal_names",
}

var policies = map[string]string{"DV": "2.23.140.1.2.1", "OV": "2.23.140.1.2.2", "EV": "2.23.140.1.1"}

// checkIssued downloads an issued certificate and checks it against its
// profile: the policy of its level, for OV and EV the subject from the
// approved company(); zlint with every applicable lint (zero errors, zero
// warnings); openssl verify -policy <OID> -explicit_policy against root and
// intermediate; and an AIA fetch over HTTP that returns the intermediate.
func checkIssued(t *testing.T, e *env, key, certificate, level string) {
	t.Helper()
	var bundle obj
	if code := e.call(t, key, "GET", "/v1/"+certificate+":download", nil, &bundle); code != 200 {
		t.Fatalf("download = %d %v", code, bundle)
	}
	block, _ := pem.Decode([]byte(str(bundle, "certificate_pem")))
	if block == nil {
		t.Fatalf("bundle has no certificate: %v", bundle)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.Policies) != 1 || leaf.Policies[0].String() != policies[level] {
		t.Errorf("%s certificate policies = %v; want %s", level, leaf.Policies, policies[level])
	}
	c := company()
	switch level {
	case "DV":
		if len(leaf.Subject.Names) != 0 {
			t.Errorf("DV subject = %q; want empty", leaf.Subject)
		}
	case "OV", "EV":
		s := leaf.Subject
		if !slices.Equal(s.Organization, []string{c["name"].(string)}) || !slices.Equal(s.Country, []string{c["country"].(string)}) ||
			!slices.Equal(s.Province, []string{c["province"].(string)}) || !slices.Equal(s.Locality, []string{c["city"].(string)}) {
			t.Errorf("%s subject = %q; want the approved company %v", level, s, c)
		}
		if level == "EV" && s.SerialNumber != c["organization_id"] {
			t.Errorf("EV serialNumber = %q; want the registration number %v", s.SerialNumber, c["organization_id"])
		}
		if level == "EV" && !strings.Contains(s.String(), "2.5.4.15=") {
			t.Errorf("EV subject %q has no businessCategory", s)
		}
	}

	zc, err := zx509.ParseCertificate(leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := zlintlint.GlobalRegistry().Filter(zlintlint.FilterOptions{ExcludeNames: lintSkipped})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range zlint.LintCertificateEx(zc, reg).Results {
		if r.Status == zlintlint.Error || r.Status == zlintlint.Warn || r.Status == zlintlint.Fatal {
			t.Errorf("%s certificate: zlint %s = %s %s", level, name, r.Status, r.Details)
		}
	}

	if openssl, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		leafPath, chainPath := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "chain.pem")
		_ = os.WriteFile(leafPath, []byte(str(bundle, "certificate_pem")), 0o600)
		_ = os.WriteFile(chainPath, []byte(str(bundle, "chain_pem")), 0o600)
		args := []string{"verify", "-CAfile", e.s.RootCAPath, "-untrusted", chainPath, "-purpose", "sslserver",
			"-policy", policies[level], "-explicit_policy", leafPath}
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Errorf("openssl %s = %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	if len(leaf.IssuingCertificateURL) != 1 || !strings.HasPrefix(leaf.IssuingCertificateURL[0], e.s.IssuanceHTTPURL+"/") {
		t.Fatalf("AIA = %q; want one URL under %s", leaf.IssuingCertificateURL, e.s.IssuanceHTTPURL)
	}
	if len(leaf.CRLDistributionPoints) != 1 || !strings.HasPrefix(leaf.CRLDistributionPoints[0], e.s.IssuanceHTTPURL+"/crl/") {
		t.Errorf("CRL distribution points = %q; want one under %s/crl/", leaf.CRLDistributionPoints, e.s.IssuanceHTTPURL)
	}
	resp, err := http.Get(leaf.IssuingCertificateURL[0])
	if err != nil {
		t.Fatalf("AIA fetch: %v", err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	issuer, err := x509.ParseCertificate(der)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-cert" || err != nil {
		t.Fatalf("AIA fetch = %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if err := leaf.CheckSignatureFrom(issuer); err != nil {
		t.Errorf("the certificate from the AIA URL did not issue the leaf: %v", err)
	}
	// The CRL at the URL the certificate names: signed by its issuer,
	// current, and not listing it.
	crlResp, err := http.Get(leaf.CRLDistributionPoints[0])
	if err != nil {
		t.Fatalf("CRL fetch: %v", err)
	}
	defer crlResp.Body.Close()
	crlDER, _ := io.ReadAll(crlResp.Body)
	crl, err := x509.ParseRevocationList(crlDER)
	if crlResp.StatusCode != 200 || crlResp.Header.Get("Content-Type") != "application/pkix-crl" || err != nil {
		t.Fatalf("CRL fetch %s = %d %s %v", leaf.CRLDistributionPoints[0], crlResp.StatusCode, crlResp.Header.Get("Content-Type"), err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		t.Errorf("the CRL at %s is not signed by the leaf's issuer: %v", leaf.CRLDistributionPoints[0], err)
	}
	if !crl.NextUpdate.After(time.Now()) || crl.NextUpdate.Sub(crl.ThisUpdate) > 10*24*time.Hour {
		t.Errorf("CRL thisUpdate %v nextUpdate %v; want current and at most 10 days apart", crl.ThisUpdate, crl.NextUpdate)
	}
	for _, r := range crl.RevokedCertificateEntries {
		if r.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			t.Errorf("the CRL lists the certificate just issued")
		}
	}
}

// TestProfilesEndToEnd issues through the whole flow (order, application,
// DNS validation, organization review for OV/EV, issuance) a wildcard, a
// 250-name multi-domain certificate, RSA and ECDSA keys at each level, and
// checks each one with checkIssued.
func TestProfilesEndToEnd(t *testing.T) {
	e := start(t)
	key, rev := e.s.APIKey, e.s.ReviewerKey
	many := make([]string, 250)
	for i := range many {
		many[i] = fmt.Sprintf("h%03d.many.test", i)
	}
	tests := []struct {
		name, level, product, keyAlgorithm string
		domains                            []string
	}{
		{"DV wildcard ECDSA P-384", "DV", "products/dv-wildcard-1y", "KEY_ALGORITHM_ECDSA_P384", []string{"*.wild.test", "wild.test"}},
		{"DV RSA 4096", "DV", "products/dv-single-1y", "KEY_ALGORITHM_RSA_4096", []string{"rsa.single.test"}},
		{"OV wildcard RSA 2048", "OV", "products/ov-wildcard-1y", "KEY_ALGORITHM_RSA_2048", []string{"*.ovwild.test"}},
		{"OV multi ECDSA P-256", "OV", "products/ov-multi-1y", "KEY_ALGORITHM_ECDSA_P256", []string{"a.ovmulti.test", "b.ovmulti.test"}},
		{"EV RSA 2048", "EV", "products/ev-single-1y", "KEY_ALGORITHM_RSA_2048", []string{"ev.rsa.test"}},
		{"EV multi ECDSA P-384", "EV", "products/ev-multi-1y", "KEY_ALGORITHM_ECDSA_P384", []string{"a.evmulti.test", "b.evmulti.test"}},
		// Last: 250 names take the validation worker a while.
		{"DV 250 names ECDSA P-256", "DV", "products/dv-multi-1y", "KEY_ALGORITHM_ECDSA_P256", many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := obj{"product": tc.product, "quantity": 1}
			if strings.Contains(tc.product, "multi") {
				body["domain_count"] = len(tc.domains)
			}
			var order obj
			if code := e.call(t, key, "POST", "/v1/orders?request_id="+url.QueryEscape(tc.name), body, &order); code != 200 {
				t.Fatalf("POST /v1/orders = %d %v", code, order)
			}
			draft := obj{"instance": order["instances"].([]any)[0], "domains": tc.domains, "applicant": ovApplicant(), "key_algorithm": tc.keyAlgorithm}
			if tc.level != "DV" {
				draft["company"] = company()
			}
			app := e.apply(t, draft)
			if tc.level != "DV" {
				e.upload(t, app, "licence.png", tinyPNG(t))
			}
			e.prove(t, e.submit(t, app))
			if tc.level != "DV" {
				// The first OV/EV application's review is approved by the
				// reviewer; later ones of the same company are approved at
				// once by reuse (BR 4.2.1), and their subject comes from the
				// reused approval.
				e.approveUnlessReused(t, rev, app)
			}
			issued := e.waitStateFor(t, key, app, "ISSUED", 3*time.Minute)
			checkIssued(t, e, key, issued["certificate"].(string), tc.level)
			var cert obj
			e.call(t, key, "GET", "/v1/"+issued["certificate"].(string), nil, &cert)
			if cert["validation_level"] != tc.level {
				t.Errorf("certificate validation_level = %v; want %s", cert["validation_level"], tc.level)
			}
		})
	}
}

// waitStateFor is waitState with a deadline of its own.
func (e *env) waitStateFor(t *testing.T, key, name, want string, d time.Duration) obj {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var app obj
		e.call(t, key, "GET", "/v1/"+name, nil, &app)
		if app["state"] == want {
			return app
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v (cause %v); want %s", name, app["state"], app["failure_cause"], want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// approveUnlessReused approves the application's ORGANIZATION review, or
// finds it approved by reuse.
func (e *env) approveUnlessReused(t *testing.T, rev, app string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list obj
		if code := e.call(t, rev, "GET", "/v1/reviews?filter="+url.QueryEscape(`kind = ORGANIZATION AND application = "`+app+`"`), nil, &list); code != 200 {
			t.Fatalf("GET /v1/reviews as reviewer = %d %v", code, list)
		}
		for _, r := range asList(list["reviews"]) {
			switch r := r.(obj); r["state"] {
			case "APPROVED":
				return
			case "PENDING":
				var out obj
				if code := e.call(t, rev, "POST", "/v1/"+r["name"].(string)+":approve", obj{}, &out); code != 200 {
					t.Fatalf("approve = %d %v", code, out)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ORGANIZATION review for %s in %v", app, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
