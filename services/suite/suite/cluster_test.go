package suite_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/suite/suite"
)

// natsNode is one nats-server process of a test cluster.
type natsNode struct {
	name, conf, url string
	cmd             *exec.Cmd
	log             *os.File
}

func (n *natsNode) start(t *testing.T, bin string) {
	t.Helper()
	n.cmd = exec.Command(bin, "-c", n.conf)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(n.url, "nats://")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server %s did not listen on %s", n.name, addr)
		}
	}
}

func (n *natsNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestChaosNATSCluster (make chaos): the suite runs against three
// nats-server processes in one JetStream cluster with the stream on all
// three. The stream's leader is SIGKILLed in the middle of a run and later
// started again: every application reaches ISSUED, no event is lost or
// doubled, and the restarted node catches up.
func TestChaosNATSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nats-server")
	// The nats-server of this module's build list, compiled here: no
	// download beyond the module proxy.
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	seeds := filepath.Join(dir, "seeds")
	keys, err := embedded.NATSUsers(seeds)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := nkeys.CreateUser()
	adminSeed, _ := admin.Seed()
	adminFile := filepath.Join(dir, "admin.nk")
	if err := os.WriteFile(adminFile, adminSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	keys[events.AdminUser], _ = admin.PublicKey()
	auth := events.AuthorizationBlock(func(u string) string { return keys[u] })

	nodes := make([]*natsNode, 3)
	routes := make([]string, 3)
	clientPorts := make([]int, 3)
	for i := range nodes {
		clientPorts[i] = freePort(t)
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", freePort(t))
	}
	var urls []string
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
}
cluster {
  name: certflow
  listen: %s
  routes: [%s]
}
%s`, name, clientPorts[i], filepath.Join(dir, name), strings.TrimPrefix(routes[i], "nats-route://"), strings.Join(routes, ", "), auth)
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &natsNode{name: name, conf: path, url: fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]), log: log}
		urls = append(urls, nodes[i].url)
	}
	for _, n := range nodes {
		n.start(t, bin)
		t.Cleanup(n.kill)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				b, _ := os.ReadFile(n.log.Name())
				t.Logf("%s log (last 2 KB):\n%s", n.name, b[max(0, len(b)-2048):])
			}
		}
	})

	e := startWith(t, func(o *suite.Options) {
		o.NATSURL, o.NATSSeedsDir, o.NATSAdminSeed, o.StreamReplicas = strings.Join(urls, ","), seeds, adminFile, 3
	})
	key := e.s.APIKey
	nc, err := natsgo.Connect(strings.Join(urls, ","), e.s.NATSAdmin()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream := func() *jetstream.StreamInfo {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, events.Stream)
		if err != nil {
			return nil
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil
		}
		return info
	}
	info := stream()
	if info == nil || info.Config.Replicas != 3 || info.Cluster == nil {
		t.Fatalf("stream info = %+v; want the stream on all three nodes", info)
	}

	const n = 10
	insts := e.buy(t, key, "products/dv-single-1y", n)
	var apps []string
	run := func(from, to int) {
		var subs []obj
		for i := from; i < to; i++ {
			a := e.apply(t, obj{"instance": insts[i], "domains": []string{fmt.Sprintf("www.cluster%d.test", i)}, "applicant": applicant()})
			apps = append(apps, a)
			subs = append(subs, e.submit(t, a))
		}
		for _, s := range subs {
			e.prove(t, s)
		}
	}
	run(0, n/2)
	// Kill the stream's leader: the others elect a new one.
	leader := stream().Cluster.Leader
	var victim *natsNode
	for _, nd := range nodes {
		if nd.name == leader {
			victim = nd
		}
	}
	if victim == nil {
		t.Fatalf("stream leader %q is none of the nodes", leader)
	}
	victim.kill()
	t.Logf("killed %s, the stream's leader", leader)
	run(n/2, n)
	for _, a := range apps {
		e.waitStateFor(t, key, a, "ISSUED", 2*time.Minute)
	}
	victim.start(t, bin)
	t.Logf("restarted %s", victim.name)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		info := stream()
		caught := info != nil && info.Cluster != nil && len(info.Cluster.Replicas) == 2
		if caught {
			for _, r := range info.Cluster.Replicas {
				caught = caught && r.Current && r.Lag == 0 && !r.Offline
			}
		}
		if caught {
			t.Logf("%s caught up: leader %s, %d messages", victim.name, info.Cluster.Leader, info.State.Msgs)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not catch up within a minute: %+v", info)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		e.mu.Lock()
		issued, submitted := e.events["certflow.certificate.issued"], e.events["certflow.application.submitted"]
		dups := 0
		for _, c := range e.ids {
			if c > 1 {
				dups++
			}
		}
		e.mu.Unlock()
		if issued == n && submitted == n && dups == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reader got %d certificate.issued and %d application.submitted (%d ids twice); want %d each, none twice", issued, submitted, dups, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
