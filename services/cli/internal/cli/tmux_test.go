package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProgressInTmux runs `certflow wait` in a real terminal (a tmux pane)
// and reads the screen: the bar shows the state and the percent while the
// application waits for its DNS record, and 100% once it is issued.
func TestProgressInTmux(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CERTFLOW_REQUIRE_TMUX") != "" {
			t.Fatal("tmux is required (CERTFLOW_REQUIRE_TMUX) and not installed")
		}
		t.Skip("no tmux")
	}
	h := startSuite(t)
	inst := h.json(t, "buy", "--product", "dv-single-1y")["instances"].([]any)[0].(string)
	app := h.json(t, "apply", "--instance", inst, "--domain", "www.tmux.test", "--applicant-name", "Li Lei",
		"--applicant-email", "li@example.test", "--applicant-phone", "+86 571 8502 2088", "--submit")
	name := app["name"].(string)

	dir := t.TempDir()
	bin := filepath.Join(dir, "certflow")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/certflow").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("api_url: "+h.s.GatewayURL+"\napi_key: "+h.s.APIKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	session := fmt.Sprintf("certflow-test-%d", time.Now().UnixNano())
	sock := filepath.Join(dir, "tmux.sock")
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := tm("new-session", "-d", "-s", session, "-x", "120", "-y", "12",
		fmt.Sprintf("%s --config %s wait %s --timeout 1m; echo exit=$?; sleep 30", bin, cfg, name)); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() { _, _ = tm("kill-server") })
	screen := func(want ...string) string {
		t.Helper()
		var last string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			last, _ = tm("capture-pane", "-p", "-t", session)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(last, w)
			}
			if ok {
				return last
			}
		}
		t.Fatalf("the pane never showed %q; it shows:\n%s", want, last)
		return ""
	}
	waiting := screen("PENDING_DOMAIN_VERIFICATION", "40%")
	t.Logf("while waiting for DNS:\n%s", strings.TrimRight(waiting, "\n"))
	ch := app["challenges"].([]any)[0].(map[string]any)
	h.dns.SetTXT(ch["dns_record_name"].(string), ch["dns_record_value"].(string))
	done := screen("100%", "is ISSUED: certificates/", "exit=0")
	t.Logf("when issued:\n%s", strings.TrimRight(done, "\n"))
}
