// Package durability_test kills the suite with SIGKILL in the middle of a
// load run and starts it again on the same data (issue 7, item 6): no
// accepted application is lost, every one reaches ISSUED, no event is lost
// or applied twice, and no application gets two certificates.
package durability_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
)

const (
	applications = 40
	workers      = 8
	// killAfter is how many accepted submits the first SIGKILL waits for.
	killAfter = applications / 2
)

// suite is one certflow-suite process on fixed loopback ports.
type suite struct {
	t     *testing.T
	bin   string
	dir   string
	ports map[string]int
	cmd   *exec.Cmd
	gone  chan struct{} // closed when cmd has exited
	log   *os.File
	runs  int
}

var listeners = []string{"http-addr", "dev-dns-addr", "dev-dns-admin-addr", "nats-addr", "mongo-addr",
	"order-addr", "application-addr", "verification-addr", "issuance-addr", "notification-addr", "issuance-http-addr"}

func freePorts(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	var held []net.Listener
	for _, name := range listeners {
		for {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			// The DNS responder takes the same port on UDP too.
			if u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				_ = u.Close()
				held = append(held, l)
				out[name] = port
				break
			}
			_ = l.Close()
		}
	}
	for _, l := range held {
		_ = l.Close()
	}
	return out
}

func (s *suite) addr(name string) string { return fmt.Sprintf("127.0.0.1:%d", s.ports[name]) }
func (s *suite) gateway() string         { return "http://" + s.addr("http-addr") }

// start starts the process and waits for the gateway's /healthz.
func (s *suite) start() {
	s.t.Helper()
	s.runs++
	// Its clients poll hard with one key: the rate limit is not under test here.
	args := []string{"-data", s.dir, "-dcv-http-port", "1", "-log-level", "warn", "-rate-per-key", "100000", "-rate-burst", "100000"}
	for _, name := range listeners {
		args = append(args, "-"+name, s.addr(name))
	}
	log, err := os.Create(filepath.Join(s.t.TempDir(), fmt.Sprintf("run%d.log", s.runs)))
	if err != nil {
		s.t.Fatal(err)
	}
	s.log = log
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	cmd, gone := s.cmd, make(chan struct{})
	s.gone = gone
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(gone) }()
	s.t.Cleanup(func() {
		select {
		case <-gone:
		default:
			_ = cmd.Process.Kill()
			<-gone
		}
	})
	deadline := time.Now().Add(40 * time.Second)
	for {
		select {
		case <-gone:
			s.t.Fatalf("certflow-suite run %d exited before it was ready: %v\n%s", s.runs, waitErr, s.tail())
		default:
		}
		if resp, err := http.Get(s.gateway() + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("certflow-suite run %d not ready in 40s\n%s", s.runs, s.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *suite) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatal(err)
	}
	<-s.gone
}

func (s *suite) tail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

type client struct {
	s    *suite
	key  string
	http *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.s.gateway()+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out == nil {
		return 200, nil
	}
	return 200, json.Unmarshal(data, out)
}

// publishTXT puts a TXT record through the dev DNS admin API.
func (c *client) publishTXT(ctx context.Context, name, value string) error {
	b, _ := json.Marshal(map[string]any{"values": []string{value}})
	req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+c.s.addr("dev-dns-admin-addr")+"/records/"+name+"/TXT", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("PUT TXT %s: %d %s", name, resp.StatusCode, data)
	}
	return nil
}

type challenge struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	RecordName  string `json:"dns_record_name"`
	RecordValue string `json:"dns_record_value"`
}

type application struct {
	Name        string      `json:"name"`
	State       string      `json:"state"`
	Certificate string      `json:"certificate"`
	Cause       string      `json:"failure_cause"`
	Challenges  []challenge `json:"challenges"`
}

func readKey(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "dev-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fl := strings.Fields(sc.Text()); len(fl) == 3 && fl[2] == "customer" {
			return fl[0]
		}
	}
	t.Fatal("no customer key in dev-credentials")
	return ""
}

func TestSIGKILLDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts certflow-suite processes")
	}
	begin := time.Now()
	bin := filepath.Join(t.TempDir(), "certflow-suite")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/certflow-suite").CombinedOutput(); err != nil {
		t.Fatalf("build certflow-suite: %v\n%s", err, out)
	}
	t.Logf("built in %v", time.Since(begin).Round(time.Millisecond))
	s := &suite{t: t, bin: bin, dir: t.TempDir(), ports: freePorts(t)}
	s.start()
	c := &client{s: s, key: readKey(t, s.dir), http: &http.Client{Timeout: 20 * time.Second}}
	t.Logf("first start ready after %v", time.Since(begin).Round(time.Millisecond))

	// The load: each worker buys, applies, submits, publishes the TXT
	// record and asks for the check. A 200 on submit is an accepted
	// application; the SIGKILL comes when half are accepted.
	var (
		mu       sync.Mutex
		accepted = map[string]challenge{}
		next     atomic.Int64
		killed   = make(chan struct{})
		once     sync.Once
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > applications || ctx.Err() != nil {
					return
				}
				var order struct {
					Instances []string `json:"instances"`
				}
				if _, err := c.do(ctx, "POST", "/v1/orders", map[string]any{"product": "products/dv-single-1y", "quantity": 1}, &order); err != nil {
					continue
				}
				var app application
				if _, err := c.do(ctx, "POST", "/v1/applications", map[string]any{
					"instance": order.Instances[0], "domains": []string{fmt.Sprintf("www%d.durable.test", i)},
					"applicant": map[string]string{"name": "Durable", "phone": "+1 555 0100", "email": "durable@example.test"},
				}, &app); err != nil {
					continue
				}
				if _, err := c.do(ctx, "POST", "/v1/"+app.Name+":submit", map[string]any{}, &app); err != nil || len(app.Challenges) == 0 {
					continue
				}
				ch := app.Challenges[0]
				mu.Lock()
				accepted[app.Name] = ch
				n := len(accepted)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() { close(killed) })
				}
				if c.publishTXT(ctx, ch.RecordName, ch.RecordValue) != nil {
					continue
				}
				_, _ = c.do(ctx, "POST", "/v1/"+ch.Name+":check", map[string]any{}, nil)
			}
		}()
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatalf("not %d accepted submits in 60s\n%s", killAfter, s.tail())
	}
	s.kill()
	cancel()
	wg.Wait()
	t.Logf("SIGKILL at %v with %d applications accepted", time.Since(begin).Round(time.Millisecond), len(accepted))

	// Recovery, with a second SIGKILL once a part of it is done. The dev
	// DNS keeps its records in memory, so they are published again.
	names := make([]string, 0, len(accepted))
	for name := range accepted {
		names = append(names, name)
	}
	sort.Strings(names)
	state := map[string]application{}
	recover := func(deadline time.Time, stopAt int) bool {
		ctx := context.Background()
		lastCheck := map[string]time.Time{}
		lastLog := time.Now()
		for {
			done := 0
			for _, name := range names {
				if state[name].State == "ISSUED" {
					done++
					continue
				}
				var app application
				if code, err := c.do(ctx, "GET", "/v1/"+name, nil, &app); code == http.StatusNotFound {
					t.Fatalf("accepted application %s lost after the restart: %v", name, err)
				} else if err != nil {
					t.Logf("GET %s: %v", name, err)
					time.Sleep(200 * time.Millisecond)
					continue
				}
				state[name] = app
				switch app.State {
				case "ISSUED":
					done++
					continue
				case "FAILED", "REJECTED", "CANCELLED", "WITHDRAWN", "EXPIRED":
					t.Fatalf("accepted application %s ended %s (cause %q) after the restart", name, app.State, app.Cause)
				}
				if time.Since(lastCheck[name]) > 2*time.Second {
					ch := accepted[name]
					if err := c.publishTXT(ctx, ch.RecordName, ch.RecordValue); err != nil {
						t.Fatal(err)
					}
					_, _ = c.do(ctx, "POST", "/v1/"+ch.Name+":check", map[string]any{}, nil)
					lastCheck[name] = time.Now()
				}
			}
			if done == len(names) || done >= stopAt {
				return done == len(names)
			}
			if time.Since(lastLog) > 5*time.Second {
				count := map[string]int{}
				for _, name := range names {
					count[state[name].State]++
				}
				t.Logf("recovering: %v", count)
				lastLog = time.Now()
			}
			if time.Now().After(deadline) {
				var left []string
				for _, name := range names {
					if state[name].State != "ISSUED" {
						left = append(left, name+"="+state[name].State)
					}
				}
				t.Fatalf("%d of %d accepted applications not ISSUED after recovery: %v\n%s", len(left), len(names), left, s.tail())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	s.start()
	t.Logf("restart 1 ready at %v", time.Since(begin).Round(time.Millisecond))
	// What the kill left: issued, and in flight.
	recover(time.Now().Add(30*time.Second), 0)
	issuedNow := 0
	for _, name := range names {
		if state[name].State == "ISSUED" {
			issuedNow++
		}
	}
	t.Logf("after restart 1: %d of %d accepted applications ISSUED, the others in flight", issuedNow, len(names))
	if !recover(time.Now().Add(50*time.Second), issuedNow+(len(names)-issuedNow)/2) {
		s.kill()
		t.Logf("second SIGKILL during recovery at %v", time.Since(begin).Round(time.Millisecond))
		s.start()
		t.Logf("restart 2 ready at %v", time.Since(begin).Round(time.Millisecond))
		recover(time.Now().Add(50*time.Second), len(names))
	}
	t.Logf("all %d accepted applications ISSUED at %v", len(names), time.Since(begin).Round(time.Millisecond))

	// One certificate per application, through the API.
	certs := map[string][]string{} // application -> certificates
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
			path += "&page_token=" + token
		}
		if _, err := c.do(context.Background(), "GET", path, nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, cert := range page.Certificates {
			certs[cert.Application] = append(certs[cert.Application], cert.Name)
		}
		if token = page.Next; token == "" {
			break
		}
	}
	for app, list := range certs {
		if len(list) != 1 {
			t.Errorf("%s has %d certificates %v; want one (signed twice)", app, len(list), list)
		}
	}
	for _, name := range names {
		if len(certs[name]) == 0 {
			t.Errorf("%s is ISSUED with %s but the certificate list has none for it", name, state[name].Certificate)
		} else if certs[name][0] != state[name].Certificate {
			t.Errorf("%s is ISSUED with %s; the certificate list says %v", name, state[name].Certificate, certs[name])
		}
	}

	// Every event once, in the stream, read as the reader user.
	seed, err := nats.NkeyOptionFromSeed(embedded.NATSSeedFile(filepath.Join(s.dir, "secrets", "nats"), events.Reader))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://"+s.addr("nats-addr"), seed, nats.CustomInboxPrefix(events.Inbox(events.Reader)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	cons, err := js.OrderedConsumer(sctx, events.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ApplicationSubmitted, events.ApplicationIssued, events.CertificateIssued},
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]map[string]map[string]bool{} // subject -> application -> ce-ids
	issuedCert := map[string]map[string]bool{}     // application -> certificates in application.issued
	add := func(subject, app, id string) {
		if ids[subject] == nil {
			ids[subject] = map[string]map[string]bool{}
		}
		if ids[subject][app] == nil {
			ids[subject][app] = map[string]bool{}
		}
		ids[subject][app][id] = true
	}
	read := 0
	for {
		batch, err := cons.Fetch(200, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		pending := uint64(0)
		for m := range batch.Messages() {
			got++
			read++
			id := m.Headers().Get(events.HeaderID)
			switch m.Subject() {
			case events.ApplicationSubmitted:
				var ev eventsv1.ApplicationSubmitted
				if err := proto.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatal(err)
				}
				add(m.Subject(), ev.Application, id)
			case events.ApplicationIssued:
				var ev eventsv1.ApplicationIssued
				if err := proto.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatal(err)
				}
				add(m.Subject(), ev.Application, id)
				if issuedCert[ev.Application] == nil {
					issuedCert[ev.Application] = map[string]bool{}
				}
				issuedCert[ev.Application][ev.Certificate] = true
			case events.CertificateIssued:
				var ev eventsv1.CertificateIssued
				if err := proto.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatal(err)
				}
				add(m.Subject(), ev.Application, id)
			}
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && got == 0 {
			t.Fatal(err)
		}
		if got == 0 || pending == 0 {
			break
		}
	}
	unseen := 0
	for app := range ids[events.ApplicationSubmitted] {
		if accepted[app] == (challenge{}) {
			unseen++
		}
	}
	t.Logf("read %d events from the stream; %d applications submitted whose answer the kill cut off", read, unseen)
	for _, subject := range []string{events.ApplicationSubmitted, events.ApplicationIssued, events.CertificateIssued} {
		for _, name := range names {
			switch n := len(ids[subject][name]); {
			case n == 0:
				t.Errorf("%s: no %s event in the stream (lost)", name, subject)
			case n > 1:
				t.Errorf("%s: %d %s events with different ce-ids (applied twice)", name, n, subject)
			}
		}
		for app, set := range ids[subject] {
			if len(set) > 1 && accepted[app] == (challenge{}) {
				t.Errorf("%s (not seen accepted): %d %s events with different ce-ids (applied twice)", app, len(set), subject)
			}
		}
	}
	for _, name := range names {
		if len(issuedCert[name]) != 1 || !issuedCert[name][state[name].Certificate] {
			t.Errorf("%s: application.issued names certificates %v; the application has %s", name, issuedCert[name], state[name].Certificate)
		}
	}
	t.Logf("done in %v", time.Since(begin).Round(time.Millisecond))
}
