package suite_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/testenv"
	"github.com/certflow/certflow/services/suite/suite"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the README's copies of scripts/walkthrough")

const walkthroughs = "../../../scripts/walkthrough"

// TestWalkthroughsRunTwice runs the README's walkthroughs, as the scripts
// they are, twice each against one suite laid out as `make run` lays it out:
// a second run must make new purchases and applications, not trip over the
// first run's request ids or files.
func TestWalkthroughsRunTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	for _, tool := range []string{"bash", "curl", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the walkthroughs need %s: %v (.ci/run installs it)", tool, err)
		}
	}
	data := filepath.Join(t.TempDir(), "var")
	any := "127.0.0.1:0"
	s, err := suite.Start(context.Background(), suite.Options{
		DataDir:  data,
		MongoURI: os.Getenv(testenv.MongoEnv),
		NATSAddr: any, MongoAddr: any, OrderAddr: any, ApplicationAddr: any, VerificationAddr: any,
		IssuanceAddr: any, IssuanceHTTPAddr: any, NotificationAddr: any, AuditAddr: any, GatewayAddr: any,
		DevDNSAddr: any, DevDNSAdminAddr: any,
		RetryInitial: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond, SweepInterval: 50 * time.Millisecond,
		Log: testenv.Logger(t),
		PKI: testenv.PKI(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, s.Run)
	dir, err := filepath.Abs(walkthroughs)
	if err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{"dv.sh", "ov.sh"} {
		for run := 1; run <= 2; run++ {
			cmd := exec.Command("bash", filepath.Join(dir, script))
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "API="+s.GatewayURL, "DNS_ADMIN="+s.DevDNS.AdminURL(), "CRL="+s.IssuanceHTTPURL, "VAR="+data)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := runFor(cmd, 2*time.Minute); err != nil {
				t.Fatalf("%s run %d: %v\n%s", script, run, err, out.String())
			}
			t.Logf("%s run %d:\n%s", script, run, out.String())
			for _, f := range []string{"cert.pem", "key.pem"} {
				if b, err := os.ReadFile(filepath.Join(cmd.Dir, f)); err == nil && bytes.Contains(b, []byte("null")) {
					t.Errorf("%s run %d wrote null into %s", script, run, f)
				}
			}
		}
	}

	// A step that fails stops the script with the API's message.
	cmd := exec.Command("bash", filepath.Join(dir, "dv.sh"))
	cmd.Dir = t.TempDir()
	bad := filepath.Join(t.TempDir(), "var")
	if err := os.MkdirAll(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "dev-credentials"), []byte("cf_not_a_key dev customer\ncf_not_a_key ca-staff reviewer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "API="+s.GatewayURL, "VAR="+bad)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stopped: GET /v1/products") || !strings.Contains(string(out), "HTTP 401") {
		t.Fatalf("dv.sh with a wrong key: err %v, output:\n%s\nwant it to stop at the first call with HTTP 401", err, out)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "cert.pem")); err == nil {
		t.Fatalf("dv.sh with a wrong key wrote cert.pem")
	}
}

func runFor(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return context.DeadlineExceeded
	}
}

// TestREADMEShowsWalkthroughs keeps the README's copy of each walkthrough
// equal to the script the test above runs. Regenerate with
// `go test -run TestREADMEShowsWalkthroughs -update-readme`.
func TestREADMEShowsWalkthroughs(t *testing.T) {
	path := "../../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, script := range []string{"lib.sh", "dv.sh", "ov.sh"} {
		body, err := os.ReadFile(filepath.Join(walkthroughs, script))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile("(?s)(<!-- scripts/walkthrough/" + regexp.QuoteMeta(script) + " -->\n```sh\n)(.*?)(```\n)")
		m := re.FindStringSubmatchIndex(text)
		if m == nil {
			t.Fatalf("README.md has no block `<!-- scripts/walkthrough/%s -->` followed by a sh fence", script)
		}
		if got := text[m[4]:m[5]]; got != string(body) {
			if !*updateREADME {
				t.Fatalf("README.md's copy of scripts/walkthrough/%s is out of date; run go test -run TestREADMEShowsWalkthroughs -update-readme", script)
			}
			text = text[:m[4]] + string(body) + text[m[5]:]
		}
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
