package events_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/certflow/certflow/pkg/events"
)

var update = flag.Bool("update", false, "rewrite the generated deploy files")

func envName(user string) string { return "CERTFLOW_NKEY_" + strings.ToUpper(user) }

func list(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func renderNATSConfig() string {
	var b strings.Builder
	b.WriteString(`# Generated from pkg/events/permissions.go by TestDeployNATSConfig; do not edit.
# Regenerate: cd pkg/events && go test -run TestDeployNATSConfig -update
#
# One nkey user per certflow service, publishing only its own subjects, a
# read-only user for other teams, and an administrator who creates the
# CERTFLOW stream (deploy/nats/README.md). No anonymous access. The public
# keys come from the environment (NATS expands $VARIABLES in its config).
port: 4222
tls {
  cert_file: "/tls/tls.crt"
  key_file: "/tls/tls.key"
}
jetstream {
  store_dir: "/data/jetstream"
}
authorization {
  users = [
    {nkey: $CERTFLOW_NKEY_ADMIN}
`)
	for _, u := range events.Users() {
		p, _ := events.Permissions(u)
		fmt.Fprintf(&b, "    {nkey: $%s, permissions: {\n", envName(u))
		fmt.Fprintf(&b, "      publish: {allow: %s", list(p.PublishAllow))
		if len(p.PublishDeny) > 0 {
			fmt.Fprintf(&b, ", deny: %s", list(p.PublishDeny))
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "      subscribe: {allow: %s}\n", list(p.SubscribeAllow))
		b.WriteString("    }}\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

// TestDeployNATSConfig keeps deploy/nats/nats.conf equal to the permission
// table, and checks that nats-server reads it with those permissions.
func TestDeployNATSConfig(t *testing.T) {
	const path = "../../deploy/nats/nats.conf"
	want := renderNATSConfig()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date with pkg/events/permissions.go; regenerate it with `go test -run TestDeployNATSConfig -update`", path)
	}
	keys := map[string]string{}
	for _, u := range append(events.Users(), "admin") {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		keys[u], _ = kp.PublicKey()
		t.Setenv(envName(u), keys[u])
	}
	// Parse without the TLS block (its files exist only in the pod).
	conf := strings.Replace(string(got), "tls {\n  cert_file: \"/tls/tls.crt\"\n  key_file: \"/tls/tls.key\"\n}\n", "", 1)
	tmp := t.TempDir() + "/nats.conf"
	if err := os.WriteFile(tmp, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(tmp)
	if err != nil {
		t.Fatalf("nats-server cannot read %s: %v", path, err)
	}
	byKey := map[string]*natsserver.NkeyUser{}
	for _, u := range opts.Nkeys {
		byKey[u.Nkey] = u
	}
	for _, u := range events.Users() {
		nu := byKey[keys[u]]
		p, _ := events.Permissions(u)
		if nu == nil || nu.Permissions == nil || !slices.Equal(nu.Permissions.Publish.Allow, p.PublishAllow) || !slices.Equal(nu.Permissions.Subscribe.Allow, p.SubscribeAllow) {
			t.Errorf("user %s: nats-server read %+v; want %+v", u, nu, p)
		}
	}
}
