package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/testenv"
	gateway "github.com/certflow/certflow/services/gateway/service"
	"github.com/certflow/certflow/services/suite/suite"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const otherKey = "cf_test_cli_other_account_0001"

// harness is an embedded suite the CLI talks to through its gateway only.
type harness struct {
	s   *suite.Suite
	dns *devdns.Server
}

func startSuite(t *testing.T) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	h := &harness{}
	var err error
	h.dns, err = devdns.Start(context.Background(), devdns.Options{Addr: "127.0.0.1:0", DefaultA: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.dns.Close() })
	any := "127.0.0.1:0"
	h.s, err = suite.Start(context.Background(), suite.Options{
		DataDir: t.TempDir(), MongoURI: os.Getenv(testenv.MongoEnv),
		NATSAddr: any, MongoAddr: any, OrderAddr: any, ApplicationAddr: any, VerificationAddr: any,
		IssuanceAddr: any, IssuanceHTTPAddr: any, NotificationAddr: any, AuditAddr: any, GatewayAddr: any,
		DNSServers: h.dns.Addr(), DCVHTTPPort: 1,
		RetryInitial: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond, SweepInterval: 50 * time.Millisecond,
		ExtraAPIKeys:  gateway.HashAPIKey(otherKey) + " other customer\n",
		GatewayLimits: gateway.Limits{KeyRate: 1e6, KeyBurst: 1e6},
		Log:           testenv.Logger(t),
		PKI:           testenv.PKI(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, h.s.Run)
	return h
}

// run runs the CLI in this process with the given key and returns its
// exit code, stdout and stderr.
func (h *harness) run(t *testing.T, key string, args ...string) (int, string, string) {
	t.Helper()
	env := map[string]string{"CERTFLOW_API_URL": h.s.GatewayURL, "CERTFLOW_API_KEY": key, "XDG_CONFIG_HOME": t.TempDir()}
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func (h *harness) json(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out, errs := h.run(t, h.s.APIKey, append([]string{"-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("certflow %v = exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("certflow %v printed no JSON object: %v\n%s", args, err, out)
	}
	return v
}

func TestCLIEndToEnd(t *testing.T) {
	h := startSuite(t)
	order := h.json(t, "buy", "--product", "dv-single-1y", "--quantity", "1")
	inst := order["instances"].([]any)[0].(string)

	file := filepath.Join(t.TempDir(), "application.yaml")
	yml := fmt.Sprintf(`# what POST /v1/applications takes, in YAML
instance: %s
domains:
  - www.cli.test
validation_method: VALIDATION_METHOD_DNS_TXT
applicant:
  name: Li Lei
  email: li@example.test
  phone: "+86 571 8502 2088"
`, inst)
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	app := h.json(t, "apply", "-f", file, "--submit")
	name := app["name"].(string)
	if app["state"] != "PENDING_DOMAIN_VERIFICATION" {
		t.Fatalf("apply --submit = %v; want PENDING_DOMAIN_VERIFICATION", app)
	}

	// The text instructions name the record; the JSON ones carry it.
	code, text, _ := h.run(t, h.s.APIKey, "instructions", name)
	if code != 0 || !strings.Contains(text, "publish DNS TXT") {
		t.Fatalf("instructions = %d %q", code, text)
	}
	code, out, _ := h.run(t, h.s.APIKey, "-o", "json", "instructions", name)
	var challenges []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &challenges) != nil || len(challenges) != 1 {
		t.Fatalf("instructions -o json = %d %s", code, out)
	}
	h.dns.SetTXT(challenges[0]["dns_record_name"].(string), challenges[0]["dns_record_value"].(string))

	issued := h.json(t, "wait", name, "--timeout", "1m")
	cert, _ := issued["certificate"].(string)
	if issued["state"] != "ISSUED" || cert == "" {
		t.Fatalf("wait = %v; want ISSUED with a certificate", issued)
	}

	// Download for nginx: the key only for its owner; no overwrite.
	dir := t.TempDir()
	code, out, errs := h.run(t, h.s.APIKey, "download", cert, "--server", "nginx", "--dir", dir)
	if code != 0 {
		t.Fatalf("download = %d\n%s\n%s", code, out, errs)
	}
	st, err := os.Stat(filepath.Join(dir, "privkey.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("privkey.pem = %v, %v; want mode 0600", st, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "fullchain.pem")); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("fullchain.pem = %v, %v; want mode 0644", st, err)
	}
	if code, _, errs := h.run(t, h.s.APIKey, "download", cert, "--server", "nginx", "--dir", dir); code != ExitUsage || !strings.Contains(errs, "--force") {
		t.Fatalf("download over existing files = %d %q; want usage error naming --force", code, errs)
	}
	// A keystore: the generated password is shown once, on stderr; the PFX
	// opens with it and holds the certificate downloaded above.
	iis := t.TempDir()
	code, out, errs = h.run(t, h.s.APIKey, "download", cert, "--server", "iis", "--zip", "--dir", iis)
	m := regexp.MustCompile(`keystore password: (\S+)`).FindStringSubmatch(errs)
	if code != 0 || m == nil {
		t.Fatalf("download --server iis = %d\n%s\n%s; want the generated password on stderr", code, out, errs)
	}
	pfx, err := os.ReadFile(filepath.Join(iis, "certificate.pfx"))
	if err != nil {
		t.Fatal(err)
	}
	_, leaf, _, err := pkcs12.DecodeChain(pfx, m[1])
	if err != nil {
		t.Fatalf("certificate.pfx with the password shown: %v", err)
	}
	full, _ := os.ReadFile(filepath.Join(dir, "fullchain.pem"))
	if b, _ := pem.Decode(full); b == nil || !bytes.Equal(b.Bytes, leaf.Raw) {
		t.Fatalf("certificate.pfx holds another certificate than fullchain.pem")
	}
	if st, err := os.Stat(filepath.Join(iis, "iis-bundle.zip")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("iis-bundle.zip = %v, %v; want mode 0600", st, err)
	}

	code, out, errs = h.run(t, h.s.APIKey, "-o", "json", "reissue", name)
	if code != 0 {
		t.Fatalf("reissue = %d\n%s\n%s", code, out, errs)
	}

	revoked := h.json(t, "revoke", cert, "--reason", "superseded")
	if revoked["state"] != "REVOKED" {
		t.Fatalf("revoke = %v", revoked)
	}

	// Refusals, each with a message and its exit code.
	for _, tt := range []struct {
		name     string
		key      string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no key", "", []string{"get", name}, ExitUsage, "no API key"},
		{"wrong key", "cf_not_a_key", []string{"get", name}, ExitFailed, "HTTP 401"},
		{"another account", otherKey, []string{"get", name}, ExitFailed, "HTTP 404"},
		{"bad name", h.s.APIKey, []string{"wait", "orders/x"}, ExitUsage, "not a name of applications"},
		{"bad reason", h.s.APIKey, []string{"revoke", cert, "--reason", "bored"}, ExitUsage, "key-compromise"},
		{"unknown flag", h.s.APIKey, []string{"buy", "--colour", "red"}, ExitUsage, "unknown flag"},
	} {
		code, _, errs := h.run(t, tt.key, tt.args...)
		if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) {
			t.Errorf("%s: exit %d, stderr %q; want %d with %q", tt.name, code, errs, tt.wantCode, tt.wantErr)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("instance: x\ndomains: [a\n  b: c\n"), 0o600)
	if code, _, errs := h.run(t, h.s.APIKey, "apply", "-f", bad); code != ExitUsage || !strings.Contains(errs, "line") {
		t.Errorf("bad YAML: exit %d, stderr %q; want a usage error naming the line", code, errs)
	}
}

// TestCLIBinary runs the built binary once: the process as a user starts
// it, with the key from a config file.
func TestCLIBinary(t *testing.T) {
	h := startSuite(t)
	bin := filepath.Join(t.TempDir(), "certflow")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/certflow").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("api_url: "+h.s.GatewayURL+"\napi_key: "+h.s.APIKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg, "buy", "--product", "dv-single-1y")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bought orders/") || strings.Contains(string(out), h.s.APIKey) {
		t.Fatalf("certflow buy = %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "--config", cfg, "get", "applications/nosuchthing")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitFailed || !strings.Contains(string(out), "404") {
		t.Fatalf("certflow get of a missing application = %v\n%s; want exit 1 with the 404", err, out)
	}
}
