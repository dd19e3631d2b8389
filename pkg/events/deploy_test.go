package events_test

import (
	"flag"
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

func renderNATSConfig() string {
	return `# Generated from pkg/events/permissions.go by TestDeployNATSConfig; do not edit.
# Regenerate: cd pkg/events && go test -run TestDeployNATSConfig -update
#
# One nkey user per certflow service, publishing only its own subjects, a
# read-only user for other teams, and an administrator who creates the
# CERTFLOW stream (deploy/nats/README.md). No anonymous access. The public
# keys come from the environment (NATS expands $VARIABLES in its config).
#
# Three of these form a JetStream cluster (the stream is replicated on all
# three: deploy/nats/README.md); each pod sets SERVER_NAME to its own name.
server_name: $SERVER_NAME
port: 4222
tls {
  cert_file: "/tls/tls.crt"
  key_file: "/tls/tls.key"
}
jetstream {
  store_dir: "/data/jetstream"
}
cluster {
  name: certflow
  listen: 0.0.0.0:6222
  routes: [
    nats-route://nats-0.nats:6222
    nats-route://nats-1.nats:6222
    nats-route://nats-2.nats:6222
  ]
}
` + events.AuthorizationBlock(func(u string) string { return "$" + envName(u) })
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
	t.Setenv("SERVER_NAME", "nats-0")
	for _, u := range append(events.Users(), events.AdminUser) {
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
