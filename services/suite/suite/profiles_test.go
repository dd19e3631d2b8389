package suite_test

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
}
