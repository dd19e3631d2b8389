// Command certflow-load measures the DV path end to end on the embedded
// default: it starts the suite in a temporary folder, then N times (C at
// once) buys an instance, applies, submits, publishes the TXT record in the
// development DNS, asks for a check and waits for ISSUED, all through the
// JSON gateway. It reports applications per second and the time from
// submit to issued (p50, p99).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/services/suite/suite"
)

func main() {
	n := flag.Int("n", 100, "applications to issue")
	c := flag.Int("concurrency", 1, "applications in flight at once")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole suite here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "certflow-load:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *c, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "certflow-load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(n, c int, timeout time.Duration) error {
	dir, err := os.MkdirTemp("", "certflow-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	any := "127.0.0.1:0"
	s, err := suite.Start(ctx, suite.Options{
		DataDir: dir, NATSAddr: any, MongoAddr: any, OrderAddr: any, ApplicationAddr: any, VerificationAddr: any,
		IssuanceAddr: any, IssuanceHTTPAddr: any, NotificationAddr: any, GatewayAddr: any, DevDNSAddr: any,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() { stop(); <-done }()

	cl := &client{base: s.GatewayURL, key: s.APIKey, http: &http.Client{Timeout: 30 * time.Second}, waiting: map[string]chan string{}}
	// Issued (or failed) is learnt from the lifecycle events, as another
	// team would, instead of by polling the API.
	reader, err := nats.NkeyOptionFromSeed(embedded.NATSSeedFile(s.NATSSeeds, events.Reader))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(s.NATSURL, reader, nats.CustomInboxPrefix(events.Inbox(events.Reader)))
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := nc.Subscribe("certflow.application.*", func(m *nats.Msg) {
		switch m.Subject {
		case events.ApplicationIssued:
			var ev eventsv1.ApplicationIssued
			if proto.Unmarshal(m.Data, &ev) == nil {
				cl.finish(ev.Application, "")
			}
		case events.ApplicationFailed:
			var ev eventsv1.ApplicationFailed
			if proto.Unmarshal(m.Data, &ev) == nil {
				cl.finish(ev.Application, ev.Cause)
			}
		}
	}); err != nil {
		return err
	}
	// Warm up: one application outside the measurement.
	if _, err := cl.issue(ctx, s, -1); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		next      atomic.Int64
		firstErr  error
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				d, err := cl.issue(ctx, s, int(i))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					latencies = append(latencies, d)
				}
				done := len(latencies)
				mu.Unlock()
				if done%max(n/10, 1) == 0 && err == nil {
					fmt.Fprintf(os.Stderr, "  %d/%d issued\n", done, n)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	fmt.Printf("concurrency %d: %d applications in %.1fs = %.1f applications/s; submit→issued p50 %v, p99 %v\n",
		c, len(latencies), elapsed.Seconds(), float64(len(latencies))/elapsed.Seconds(),
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
	return nil
}

type client struct {
	base, key string
	http      *http.Client

	mu      sync.Mutex
	waiting map[string]chan string // application -> failure cause ("" when issued)
}

func (c *client) wait(app string) chan string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.waiting[app]
	if !ok {
		ch = make(chan string, 1)
		c.waiting[app] = ch
	}
	return ch
}

func (c *client) finish(app, cause string) {
	select {
	case c.wait(app) <- cause:
	default:
	}
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

type challenge struct {
	Name        string `json:"name"`
	RecordName  string `json:"dns_record_name"`
	RecordValue string `json:"dns_record_value"`
}

type application struct {
	Name       string      `json:"name"`
	Challenges []challenge `json:"challenges"`
}

// issue runs one DV application and returns the submit→issued time.
func (c *client) issue(ctx context.Context, s *suite.Suite, i int) (time.Duration, error) {
	var order struct {
		Instances []string `json:"instances"`
	}
	if err := c.do(ctx, "POST", "/v1/orders", map[string]any{"product": "products/dv-single-1y", "quantity": 1}, &order); err != nil {
		return 0, err
	}
	var app application
	if err := c.do(ctx, "POST", "/v1/applications", map[string]any{
		"instance": order.Instances[0], "domains": []string{fmt.Sprintf("www%d.load.test", i+1)},
		"applicant": map[string]string{"name": "Load", "phone": "+1 555 0100", "email": "load@example.test"},
	}, &app); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := c.do(ctx, "POST", "/v1/"+app.Name+":submit", map[string]any{}, &app); err != nil {
		return 0, err
	}
	ch := app.Challenges[0]
	s.DevDNS.SetTXT(ch.RecordName, ch.RecordValue)
	var checked challenge
	if err := c.do(ctx, "POST", "/v1/"+ch.Name+":check", map[string]any{}, &checked); err != nil {
		return 0, err
	}
	done := c.wait(app.Name)
	select {
	case cause := <-done:
		if cause != "" {
			return 0, fmt.Errorf("%s failed: %s", app.Name, cause)
		}
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
