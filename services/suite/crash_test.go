package durability_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/devdns"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/pkg/smtptest"
	gateway "github.com/certflow/certflow/services/gateway/service"
)

// The crash run: crashApplications DV applications, crashWorkers at a time
// (each worker drives its application to ISSUED before taking the next), and
// a SIGKILL of the next component in crashOrder every time crashEvery more
// applications reached ISSUED since the last one came back.
const (
	crashApplications = 200
	crashWorkers      = 8
	crashEvery        = 12
)

// crashOrder is what is killed, in turn: each service, then the database,
// then NATS.
var crashOrder = []string{"order", "application", "verification", "issuance", "notification", "gateway", "db", "nats"}

// perspectiveRegions are the remote perspectives (BR 3.2.2.9) verification
// needs for its quorum, each its own verification -role perspective process.
var perspectiveRegions = [][2]string{{"us-east", "ARIN"}, {"eu-west", "RIPE"}, {"ap-southeast", "APNIC"}, {"sa-east", "LACNIC"}, {"af-south", "AFRINIC"}}

// proc is one component's process, started again on the same arguments
// (ports, data folders) after a SIGKILL.
type proc struct {
	t     *testing.T
	name  string
	bin   string
	args  []string
	env   []string
	ready func() error // nil error once the component answers
	dir   string       // its logs, one file a run

	mu   sync.Mutex
	cmd  *exec.Cmd
	gone chan struct{}
	runs int
	logs []string
	// kills are the times this component was SIGKILLed.
	kills []time.Time
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	p.runs++
	log := filepath.Join(p.dir, fmt.Sprintf("%s.run%d.log", p.name, p.runs))
	p.logs = append(p.logs, log)
	p.mu.Unlock()
	f, err := os.Create(log)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	gone := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); _ = f.Close(); close(gone) }()
	p.mu.Lock()
	p.cmd, p.gone = cmd, gone
	p.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-gone:
			p.t.Fatalf("%s run %d exited before it was ready: %v\n%s", p.name, p.runs, waitErr, p.tail(4000))
		default:
		}
		err := p.ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s run %d not ready in 60s: %v\n%s", p.name, p.runs, err, p.tail(4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, gone := p.cmd, p.gone
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-gone:
		return
	default:
	}
	p.mu.Lock()
	p.kills = append(p.kills, time.Now())
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-gone
}

func (p *proc) killTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.kills...)
}

// stop ends the process at the end of the test, gently.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, gone := p.cmd, p.gone
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-gone:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-gone
	}
}

func (p *proc) tail(n int) string {
	p.mu.Lock()
	logs := append([]string(nil), p.logs...)
	p.mu.Unlock()
	var b []byte
	for _, l := range logs {
		c, _ := os.ReadFile(l)
		b = append(b, fmt.Sprintf("--- %s\n", filepath.Base(l))...)
		b = append(b, c...)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// allLogs is every run's log of the component, concatenated.
func (p *proc) allLogs() []byte {
	p.mu.Lock()
	logs := append([]string(nil), p.logs...)
	p.mu.Unlock()
	var b []byte
	for _, l := range logs {
		c, _ := os.ReadFile(l)
		b = append(b, c...)
	}
	return b
}

func listening(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// crashPorts are free loopback ports, one per name, held for the test.
func crashPorts(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var held []net.Listener
	for _, n := range names {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		out[n] = l.Addr().String()
	}
	for _, l := range held {
		_ = l.Close()
	}
	return out
}

// crashClient calls the gateway and retries what a component being down
// answers (no connection, 502, 503, 504, 429, and 409 APPLICATION_BUSY for
// a claim a killed process left) with the same request: the
// creates carry request ids, so a retry of one that was done is not a
// second one.
type crashClient struct {
	base    string
	key     string
	http    *http.Client
	retries atomic.Int64
}

func (c *crashClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var payload []byte
	if body != nil {
		payload, _ = json.Marshal(body)
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer "+c.key)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			c.retries.Add(1)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			if out == nil {
				return 200, nil
			}
			return 200, json.Unmarshal(data, out)
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			c.retries.Add(1)
			select {
			case <-ctx.Done():
				return resp.StatusCode, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		case http.StatusConflict:
			// A claim the killed process held (a submit it was making)
			// lasts until its TTL; the answer says to retry in a moment.
			if bytes.Contains(data, []byte(`"APPLICATION_BUSY"`)) {
				c.retries.Add(1)
				select {
				case <-ctx.Done():
					return resp.StatusCode, ctx.Err()
				case <-time.After(500 * time.Millisecond):
				}
				continue
			}
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
}

type crashApp struct {
	Name        string      `json:"name"`
	State       string      `json:"state"`
	Certificate string      `json:"certificate"`
	Cause       string      `json:"failure_cause"`
	Challenges  []challenge `json:"challenges"`
	History     []struct {
		State string `json:"state"`
	} `json:"history"`
}

// TestChaosCrashEachService (make chaos; issue 10.1): every component is
// its own process — the five services and the gateway as their binaries,
// FerretDB (certflow-db), nats-server, five remote perspectives — and,
// during a run of 200 DV applications through the JSON API, each service in
// turn, then the database, then NATS, is SIGKILLed and started again on
// its data. Every application reaches ISSUED with one certificate; a
// durable consumer made before the run holds each application's events
// once; no email, SMS or webhook delivery is sent twice.
func TestChaosCrashEachService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts every component as a process")
	}
	begin := time.Now()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	pkgs := []string{
		"./cmd/certflow-db", "github.com/nats-io/nats-server/v2",
		"github.com/certflow/certflow/services/order/cmd/order",
		"github.com/certflow/certflow/services/application/cmd/application",
		"github.com/certflow/certflow/services/verification/cmd/verification",
		"github.com/certflow/certflow/services/issuance/cmd/issuance",
		"github.com/certflow/certflow/services/notification/cmd/notification",
		"github.com/certflow/certflow/services/gateway/cmd/gateway",
	}
	if out, err := exec.Command("go", append([]string{"build", "-o", bin + "/"}, pkgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Logf("built %d binaries in %v", len(pkgs), time.Since(begin).Round(time.Millisecond))

	names := []string{"db", "nats", "order", "application", "verification", "issuance", "issuance-http", "notification", "gateway", "dns", "dns-admin"}
	for _, r := range perspectiveRegions {
		names = append(names, "perspective-"+r[0])
	}
	addr := crashPorts(t, names...)

	// Secrets and identities, made here as certflow-suite makes them: the
	// internal PKI and a certificate per component, NATS nkeys, the
	// key-encryption keys, an API key.
	pkiDir := filepath.Join(dir, "pki")
	pki, err := internalpki.LoadOrCreate(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{callpolicy.Order, callpolicy.Application, callpolicy.Verification, callpolicy.Issuance, callpolicy.Notification, callpolicy.Gateway, callpolicy.Perspective} {
		if err := pki.WriteIdentity(pkiDir, c, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	tlsFlags := func(c string) []string {
		return []string{"-tls-cert", filepath.Join(pkiDir, c+".pem"), "-tls-key", filepath.Join(pkiDir, c+"-key.pem"), "-tls-ca", filepath.Join(pkiDir, "ca.pem")}
	}
	seeds := filepath.Join(dir, "nats-seeds")
	natsKeys, err := embedded.NATSUsers(seeds)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := nkeys.CreateUser()
	natsKeys[events.AdminUser], _ = admin.PublicKey()
	natsConf := filepath.Join(dir, "nats.conf")
	// sync_interval always: as the embedded server, a publish is on disk
	// before it is acknowledged.
	conf := fmt.Sprintf("server_name: crash\nlisten: %s\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n%s",
		addr["nats"], filepath.Join(dir, "nats"), events.AuthorizationBlock(func(u string) string { return natsKeys[u] }))
	if err := os.WriteFile(natsConf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(base64Key()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kek, caKEK, webhookKEK := keyFile("kek"), keyFile("ca-kek"), keyFile("webhook-kek")
	apiKey := "cf_crash_" + strings.Repeat("k", 24)
	keysFile := filepath.Join(dir, "api-keys")
	if err := os.WriteFile(keysFile, []byte(gateway.HashAPIKey(apiKey)+" crash customer\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// In this process, not killed: the DNS the names are proved in, the
	// mail server and the webhook receiver that count what arrives.
	dns, err := devdns.Start(context.Background(), devdns.Options{Addr: addr["dns"], AdminAddr: addr["dns-admin"], DefaultA: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	smtp := smtptest.Start(t)
	mailTimes := watchArrivals(t, func() int { return len(smtp.Messages()) })
	var hookMu sync.Mutex
	hooks := map[string][]time.Time{} // Certflow-Event-Id -> arrivals
	hookTypes := map[string]string{}  // Certflow-Event-Id -> type
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("Certflow-Event-Id")
		hookMu.Lock()
		hooks[id] = append(hooks[id], time.Now())
		hookTypes[id] = r.Header.Get("Certflow-Event-Type")
		hookMu.Unlock()
	}))
	t.Cleanup(hook.Close)

	mongoURI := "mongodb://" + addr["db"] + "/"
	natsURL := "nats://" + addr["nats"]
	logDir := filepath.Join(dir, "logs")
	if keep := os.Getenv("CERTFLOW_CRASH_LOGS"); keep != "" {
		// Keep the components' logs after the test, to read them.
		logDir = keep
	}
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	common := func(c string) []string {
		return append([]string{"-grpc-addr", addr[c], "-mongo-uri", mongoURI, "-nats-url", natsURL,
			"-nats-nkey-file", embedded.NATSSeedFile(seeds, c), "-log-level", "info"}, tlsFlags(c)...)
	}
	procs := map[string]*proc{}
	add := func(name, binary string, ready func() error, args ...string) *proc {
		p := &proc{t: t, name: name, bin: filepath.Join(bin, binary), args: args, ready: ready, dir: logDir}
		procs[name] = p
		return p
	}
	add("db", "certflow-db", listening(addr["db"]), "-addr", addr["db"], "-data", filepath.Join(dir, "db"))
	add("nats", "nats-server", listening(addr["nats"]), "-c", natsConf)
	add("order", "order", listening(addr["order"]), common("order")...)
	add("notification", "notification", listening(addr["notification"]), append(common("notification"),
		"-smtp-addr", smtp.Addr(), "-webhook-allow-private", "-webhook-kek-file", webhookKEK, "-webhook-retry-initial", "500ms")...)
	add("application", "application", listening(addr["application"]), append(common("application"),
		"-order-addr", addr["order"], "-verification-addr", addr["verification"], "-issuance-addr", addr["issuance"], "-event-retry-delay", "200ms")...)
	var perspectives []string
	var perspectiveProcs []*proc
	for _, r := range perspectiveRegions {
		n := "perspective-" + r[0]
		perspectives = append(perspectives, r[0]+"="+addr[n])
		perspectiveProcs = append(perspectiveProcs, add(n, "verification", listening(addr[n]), append([]string{"-role", "perspective", "-region", r[0], "-rir", r[1],
			"-grpc-addr", addr[n], "-dns-servers", addr["dns"], "-http-port", "1", "-allow-private-addresses"}, tlsFlags(callpolicy.Perspective)...)...))
	}
	add("verification", "verification", listening(addr["verification"]), append(common("verification"),
		"-dns-servers", addr["dns"], "-http-port", "1", "-allow-private-addresses", "-perspectives", strings.Join(perspectives, ","),
		"-notification-addr", addr["notification"], "-application-addr", addr["application"],
		"-retry-initial", "2s", "-retry-max", "10s", "-sweep-interval", "1s")...)
	add("issuance", "issuance", listening(addr["issuance"]), append(common("issuance"),
		"-ca-dir", filepath.Join(dir, "ca"), "-kek-file", kek, "-ca-kek-file", caKEK, "-verification-addr", addr["verification"],
		"-http-addr", addr["issuance-http"], "-public-base-url", "http://"+addr["issuance-http"])...)
	gatewayURL := "http://" + addr["gateway"]
	add("gateway", "gateway", func() error {
		resp, err := http.Get(gatewayURL + "/healthz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/healthz: %d", resp.StatusCode)
		}
		return nil
	}, append(tlsFlags(callpolicy.Gateway), "-http-addr", addr["gateway"], "-order-addr", addr["order"], "-application-addr", addr["application"],
		"-verification-addr", addr["verification"], "-issuance-addr", addr["issuance"], "-notification-addr", addr["notification"],
		"-api-keys-file", keysFile, "-rate-per-key", "100000", "-rate-burst", "100000", "-log-level", "info")...)
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range append(append([]string(nil), crashOrder...), "perspective-us-east") {
				t.Logf("%s log (tail):\n%s", n, procs[n].tail(3000))
			}
		}
	})

	procs["db"].start()
	procs["nats"].start()
	// The stream, made by the administrator as an operator would.
	adminOpt := nats.Nkey(natsKeys[events.AdminUser], func(nonce []byte) ([]byte, error) { return admin.Sign(nonce) })
	anc, err := nats.Connect(natsURL, adminOpt)
	if err != nil {
		t.Fatal(err)
	}
	ajs, _ := jetstream.New(anc)
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	if err := events.EnsureStream(sctx, ajs, 1); err != nil {
		t.Fatal(err)
	}
	scancel()
	anc.Close()
	for _, n := range []string{"order", "notification", "application"} {
		procs[n].start()
	}
	for _, p := range perspectiveProcs {
		p.start()
	}
	for _, n := range []string{"verification", "issuance", "gateway"} {
		procs[n].start()
	}
	t.Logf("all %d processes ready at %v", len(procs), time.Since(begin).Round(time.Millisecond))

	// Another team's durable consumer of every event, made before the run
	// and read after it: what it holds is what was delivered.
	readerSeed, err := nats.NkeyOptionFromSeed(embedded.NATSSeedFile(seeds, events.Reader))
	if err != nil {
		t.Fatal(err)
	}
	rnc, err := nats.Connect(natsURL, readerSeed, nats.CustomInboxPrefix(events.Inbox(events.Reader)), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer rnc.Close()
	rjs, err := jetstream.New(rnc)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	audit, err := rjs.CreateOrUpdateConsumer(cctx, events.Stream, jetstream.ConsumerConfig{
		Durable: "crash-audit", FilterSubject: "certflow.>", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: -1,
	})
	ccancel()
	if err != nil {
		t.Fatal(err)
	}

	c := &crashClient{base: gatewayURL, key: apiKey, http: &http.Client{Timeout: 20 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	if _, err := c.do(ctx, "POST", "/v1/webhooks?request_id=crash-webhook", map[string]any{"url": hook.URL + "/certflow"}, nil); err != nil {
		t.Fatal(err)
	}

	// The load.
	var (
		mu     sync.Mutex
		state  = map[string]crashApp{} // application -> its last answer
		byI    = map[int]string{}      // worker index -> application
		issued atomic.Int64
		next   atomic.Int64
		failed = make(chan string, crashApplications)
	)
	drive := func(i int) error {
		var order struct {
			Instances []string `json:"instances"`
		}
		if _, err := c.do(ctx, "POST", fmt.Sprintf("/v1/orders?request_id=crash-order-%d", i), map[string]any{"product": "products/dv-single-1y", "quantity": 1}, &order); err != nil {
			return err
		}
		if len(order.Instances) != 1 {
			return fmt.Errorf("order %d: instances %v", i, order.Instances)
		}
		var app crashApp
		if _, err := c.do(ctx, "POST", fmt.Sprintf("/v1/applications?request_id=crash-app-%d", i), map[string]any{
			"instance": order.Instances[0], "domains": []string{fmt.Sprintf("www%d.crash.test", i)},
			"applicant": map[string]string{"name": "Crash", "phone": "+1 555 0100", "email": fmt.Sprintf("crash%d@example.test", i)},
		}, &app); err != nil {
			return err
		}
		mu.Lock()
		byI[i] = app.Name
		mu.Unlock()
		// Submit has no request id: a retry of one that went through (its
		// answer lost) is refused, and the application says where it is.
		if code, err := c.do(ctx, "POST", "/v1/"+app.Name+":submit", map[string]any{}, &app); err != nil {
			if code == 0 {
				return err
			}
			if _, err := c.do(ctx, "GET", "/v1/"+app.Name, nil, &app); err != nil {
				return err
			}
			if app.State == "DRAFT" {
				return fmt.Errorf("submit %s: %v, and it is still a DRAFT", app.Name, err)
			}
		}
		if len(app.Challenges) == 0 {
			return fmt.Errorf("%s submitted without challenges", app.Name)
		}
		ch := app.Challenges[0]
		dns.SetTXT(ch.RecordName, ch.RecordValue)
		var lastCheck time.Time
		for {
			if time.Since(lastCheck) > 2*time.Second {
				// Ask now rather than at the service's next retry; refused
				// once it is verified, which is fine.
				_, _ = c.do(ctx, "POST", "/v1/"+ch.Name+":check", map[string]any{}, nil)
				lastCheck = time.Now()
			}
			if _, err := c.do(ctx, "GET", "/v1/"+app.Name, nil, &app); err != nil {
				return err
			}
			mu.Lock()
			state[app.Name] = app
			mu.Unlock()
			switch app.State {
			case "ISSUED":
				issued.Add(1)
				return nil
			case "VALIDATION_FAILED", "WITHDRAWN":
				return fmt.Errorf("%s ended %s (cause %q)", app.Name, app.State, app.Cause)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s still %s: %w", app.Name, app.State, ctx.Err())
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > crashApplications || ctx.Err() != nil {
					return
				}
				if err := drive(i); err != nil {
					failed <- fmt.Sprintf("application %d: %v", i, err)
				}
			}
		}()
	}

	// The kills, one component at a time, while the load runs.
	type kill struct {
		name         string
		at, back     time.Duration
		issuedBefore int64
	}
	var kills []kill
	loadDone := make(chan struct{})
	go func() { wg.Wait(); close(loadDone) }()
	mark := issued.Load()
	for _, name := range crashOrder {
		for issued.Load() < mark+crashEvery {
			select {
			case <-loadDone:
				t.Fatalf("the load ended (%d issued) before %s was killed", issued.Load(), name)
			case f := <-failed:
				t.Fatal(f)
			case <-time.After(50 * time.Millisecond):
			}
		}
		k := kill{name: name, at: time.Since(begin), issuedBefore: issued.Load()}
		procs[name].kill()
		// Down for a moment, so that requests and events meet it gone.
		time.Sleep(time.Second)
		procs[name].start()
		k.back = time.Since(begin)
		kills = append(kills, k)
		t.Logf("SIGKILL %s at %v with %d issued; back at %v", name, k.at.Round(time.Millisecond), k.issuedBefore, k.back.Round(time.Millisecond))
		mark = issued.Load()
	}
	// A run where nothing is issued for a minute after the kills has
	// stalled: stop it then rather than at the deadline.
	lastIssued, lastProgress := issued.Load(), time.Now()
	for waiting := true; waiting; {
		select {
		case <-loadDone:
			waiting = false
		case <-ctx.Done():
			waiting = false
		case <-time.After(15 * time.Second):
			t.Logf("%v: %d issued", time.Since(begin).Round(time.Second), issued.Load())
			if n := issued.Load(); n != lastIssued {
				lastIssued, lastProgress = n, time.Now()
			} else if time.Since(lastProgress) > time.Minute {
				t.Errorf("stalled: %d issued and none for a minute", n)
				cancel()
			}
		}
	}
	// Workers still driving when the time ran out return on the context;
	// wait for them before closing the channel they report on.
	wg.Wait()
	close(failed)
	for f := range failed {
		t.Error(f)
	}
	if ctx.Err() != nil {
		// Say where every unfinished application stood, so that a stall is
		// diagnosable from the log alone.
		mu.Lock()
		for name, a := range state {
			if a.State != "ISSUED" {
				t.Errorf("%s unfinished: state %s, cause %q, history %v", name, a.State, a.Cause, a.History)
				for _, ch := range a.Challenges {
					// What verification holds for it (the load's context is done).
					var got map[string]any
					dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
					code, err := c.do(dctx, "GET", "/v1/"+ch.Name, nil, &got)
					dcancel()
					t.Errorf("  %s (in the application: %s): GET = %d %v %v", ch.Name, ch.State, code, err, got)
				}
			}
		}
		mu.Unlock()
	}
	if t.Failed() {
		t.FailNow()
	}
	if n := issued.Load(); n != crashApplications {
		t.Fatalf("%d of %d applications ISSUED", n, crashApplications)
	}
	loadTime := time.Since(begin)
	t.Logf("all %d applications ISSUED at %v (%d requests retried while a component was down)", crashApplications, loadTime.Round(time.Millisecond), c.retries.Load())

	apps := make([]string, 0, len(state))
	for _, a := range byI {
		apps = append(apps, a)
	}
	sort.Strings(apps)
	if len(apps) != crashApplications {
		t.Fatalf("%d applications made for %d requests", len(apps), crashApplications)
	}

	// Each state of the lifecycle entered once (an event applied twice
	// would enter one again).
	for _, a := range apps {
		seen := map[string]int{}
		var hist []string
		for _, h := range state[a].History {
			seen[h.State]++
			hist = append(hist, h.State)
		}
		for s, n := range seen {
			if n > 1 {
				t.Errorf("%s entered %s %d times: history %v", a, s, n, hist)
			}
		}
	}

	// One certificate per application, through the API.
	certs := map[string][]string{}
	token := ""
	for {
		var page struct {
			Certificates []struct {
				Name        string `json:"name"`
				Application string `json:"application"`
			} `json:"certificates"`
			Next string `json:"next_page_token"`
		}
		path := "/v1/certificates?page_size=100"
		if token != "" {
			path += "&page_token=" + url.QueryEscape(token)
		}
		if _, err := c.do(ctx, "GET", path, nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, cert := range page.Certificates {
			certs[cert.Application] = append(certs[cert.Application], cert.Name)
		}
		if token = page.Next; token == "" {
			break
		}
	}
	for _, a := range apps {
		if list := certs[a]; len(list) != 1 || list[0] != state[a].Certificate {
			t.Errorf("%s (ISSUED with %s) has certificates %v; want exactly that one", a, state[a].Certificate, list)
		}
	}
	if len(certs) != len(apps) {
		t.Errorf("certificates name %d applications; %d were made", len(certs), len(apps))
	}

	// The durable consumer: every application's lifecycle events, each
	// once (one ce-id per event; JetStream's Nats-Msg-Id dedup and the
	// outbox keep a redelivered publish from being a second event).
	type evKey struct{ subject, app string }
	got := map[evKey]map[string]bool{}
	issuedCert := map[string]string{}
	read, redelivered := 0, 0
	for {
		batch, err := audit.Fetch(500, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			read++
			md, _ := m.Metadata()
			if md != nil {
				pending = md.NumPending
				if md.NumDelivered > 1 {
					redelivered++
				}
			}
			app := eventApplication(m.Subject(), m.Data())
			if app != "" {
				k := evKey{m.Subject(), app}
				if got[k] == nil {
					got[k] = map[string]bool{}
				}
				got[k][m.Headers().Get(events.HeaderID)] = true
			}
			if m.Subject() == events.ApplicationIssued {
				var ev eventsv1.ApplicationIssued
				if proto.Unmarshal(m.Data(), &ev) == nil {
					issuedCert[ev.Application] = ev.Certificate
				}
			}
			_ = m.Ack()
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	t.Logf("durable consumer read %d events (%d delivered more than once)", read, redelivered)
	for _, a := range apps {
		for _, subject := range []string{events.ApplicationCreated, events.ApplicationSubmitted, events.DomainVerified, events.CertificateIssued, events.ApplicationIssued} {
			switch n := len(got[evKey{subject, a}]); {
			case n == 0:
				t.Errorf("%s: no %s event reached the durable consumer (lost)", a, subject)
			case n > 1:
				t.Errorf("%s: %d %s events with different ce-ids (applied twice)", a, n, subject)
			}
		}
		if issuedCert[a] != state[a].Certificate {
			t.Errorf("%s: application.issued names %q; the application has %s", a, issuedCert[a], state[a].Certificate)
		}
	}

	// What was sent. The services send once and then record it; let the
	// last sends of the run arrive first. An event a killed consumer held
	// unacknowledged comes again only after the stream's AckWait, so the
	// count is not final before that has passed since the last restart.
	ackedBy := begin.Add(kills[len(kills)-1].back + events.AckWait + 2*time.Second)
	settle := func(what string, count func() int) {
		last, stable := count(), time.Now()
		for deadline := time.Now().Add(60 * time.Second); (time.Since(stable) < 3*time.Second || time.Now().Before(ackedBy)) && time.Now().Before(deadline); {
			time.Sleep(250 * time.Millisecond)
			if now := count(); now != last {
				last, stable = now, time.Now()
			}
		}
		t.Logf("%s: %d", what, last)
	}
	settle("mails received", func() int { return len(smtp.Messages()) })
	settle("webhook deliveries received", func() int {
		hookMu.Lock()
		defer hookMu.Unlock()
		n := 0
		for _, v := range hooks {
			n += len(v)
		}
		return n
	})
	// A message the notification service sent and had not yet recorded
	// when it was SIGKILLed is sent again after the restart, with the same
	// Message-ID or Certflow-Event-Id for the receiver to drop: delivery is
	// at least once, and a kill can fall between the send and its record.
	// Such a copy is allowed only when the first one arrived in the last
	// second before a SIGKILL of the notification service and the next
	// after it; any other second copy is a double send.
	notifKills := procs["notification"].killTimes()
	crashCopy := func(at []time.Time) bool {
		for _, k := range notifKills {
			// The watcher stamps mail up to 10 ms late.
			if at[0].Before(k.Add(50*time.Millisecond)) && k.Sub(at[0]) < time.Second && len(at) == 2 && at[1].After(k) {
				return true
			}
		}
		return false
	}
	tolerated := 0
	msgID := regexp.MustCompile(`(?im)^Message-Id:\s*<([^>]+)>`)
	mails := map[string][]time.Time{} // Message-ID -> arrivals
	recipients := map[string]int{}    // recipient -> distinct mails
	for i, m := range smtp.Messages() {
		id := ""
		if sub := msgID.FindSubmatch(m.Data); sub != nil {
			id = string(sub[1])
		}
		mails[id] = append(mails[id], mailTimes.when(i))
		if len(mails[id]) == 1 {
			for _, to := range m.To {
				recipients[to]++
			}
		}
	}
	for id, at := range mails {
		switch {
		case len(at) == 1:
		case crashCopy(at):
			tolerated++
			t.Logf("mail %s sent again after the notification service was killed between sending and recording it (arrived %v)", id, at)
		default:
			t.Errorf("mail %s sent %d times, at %v", id, len(at), at)
		}
	}
	for i := 1; i <= crashApplications; i++ {
		// Submitted (with the record to publish), domain verified, issued.
		if n := recipients[fmt.Sprintf("crash%d@example.test", i)]; n != 3 {
			t.Errorf("applicant of application %d got %d mails; want 3 (submitted, verified, issued)", i, n)
		}
	}
	sms := map[string][]time.Time{} // " to=... text=..." -> when the dev driver had it
	smsLine := regexp.MustCompile(`^time=(\S+) .*msg="SMS not sent[^"]*".*?( to=.*)$`)
	sc := bufio.NewScanner(bytes.NewReader(procs["notification"].allLogs()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if sub := smsLine.FindStringSubmatch(sc.Text()); sub != nil {
			at, err := time.Parse(time.RFC3339Nano, sub[1])
			if err != nil {
				t.Fatalf("SMS log line time %q: %v", sub[1], err)
			}
			sms[sub[2]] = append(sms[sub[2]], at)
		}
	}
	for text, at := range sms {
		switch {
		case len(at) == 1:
		case crashCopy(at):
			tolerated++
			t.Logf("SMS%s sent again after the notification service was killed between sending and recording it (%v)", text, at)
		default:
			t.Errorf("SMS%s sent %d times, at %v", text, len(at), at)
		}
	}
	if len(sms) != crashApplications {
		t.Errorf("%d distinct SMS sent; want %d (one per certificate issued)", len(sms), crashApplications)
	}
	hookMu.Lock()
	hookIssued := 0
	for id, at := range hooks {
		switch {
		case len(at) == 1:
		case crashCopy(at):
			tolerated++
			t.Logf("webhook delivery of event %s (%s) sent again after the notification service was killed between posting and recording it (%v)", id, hookTypes[id], at)
		default:
			t.Errorf("webhook delivery of event %s (%s) sent %d times, at %v", id, hookTypes[id], len(at), at)
		}
		if hookTypes[id] == events.ApplicationIssued {
			hookIssued++
		}
	}
	hookMu.Unlock()
	if hookIssued != crashApplications {
		t.Errorf("%d application.issued webhook deliveries; want %d", hookIssued, crashApplications)
	}
	t.Logf("%d mails, %d SMS, %d webhook deliveries, each once but %d sent again because a SIGKILL fell between its send and its record", len(mails), len(sms), len(hooks), tolerated)
	var ks []string
	for _, k := range kills {
		ks = append(ks, k.name)
	}
	t.Logf("killed %v; done in %v", ks, time.Since(begin).Round(time.Millisecond))
}

// eventApplication is the application an event is about, for the events
// that name one.
func eventApplication(subject string, data []byte) string {
	var m interface {
		proto.Message
		GetApplication() string
	}
	switch subject {
	case events.ApplicationCreated:
		m = &eventsv1.ApplicationCreated{}
	case events.ApplicationSubmitted:
		m = &eventsv1.ApplicationSubmitted{}
	case events.ApplicationIssued:
		m = &eventsv1.ApplicationIssued{}
	case events.DomainVerified:
		m = &eventsv1.DomainVerified{}
	case events.CertificateIssued:
		m = &eventsv1.CertificateIssued{}
	default:
		return ""
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return ""
	}
	return m.GetApplication()
}

func base64Key() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// arrivals are the times the messages of a growing list were first seen.
type arrivals struct {
	mu sync.Mutex
	at []time.Time
}

func (a *arrivals) when(i int) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i < len(a.at) {
		return a.at[i]
	}
	return time.Now()
}

// watchArrivals looks at count every 10 ms until the test ends and stamps
// each new item with the time it was first counted.
func watchArrivals(t *testing.T, count func() int) *arrivals {
	a := &arrivals{}
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			n := count()
			now := time.Now()
			a.mu.Lock()
			for len(a.at) < n {
				a.at = append(a.at, now)
			}
			a.mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return a
}
