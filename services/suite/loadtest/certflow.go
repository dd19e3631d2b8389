package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/tally"
	gateway "github.com/certflow/certflow/services/gateway/service"
	"github.com/certflow/certflow/services/suite/suite"
)

// Certflow drives the DV path of an embedded suite through its JSON
// gateway, as a customer would: buy, apply, submit, publish the TXT record
// in the development DNS, check, and wait for the
// certflow.application.issued event (read as the NATS reader user, as
// another team would). The latency is submit → issued.
type Certflow struct {
	s    *suite.Suite
	stop func()
	nc   *nats.Conn
	http *http.Client
	run  atomic.Int64
	// warmup is the application issued at start.
	warmup application

	mu      sync.Mutex
	waiting map[string]chan string // application -> failure cause ("" when issued)
}

// StartCertflow starts the whole suite on the embedded default in dir
// (loopback, random ports) and issues one warm-up certificate. With tally
// set, it counts the services' database commands and gRPC calls and every
// event published.
func StartCertflow(ctx context.Context, dir string, log *slog.Logger, t *tally.Counters) (*Certflow, error) {
	return StartCertflowWith(ctx, CertflowConfig{Dir: dir, Log: log, Tally: t})
}

// CertflowConfig configures StartCertflowWith.
type CertflowConfig struct {
	Dir   string
	Log   *slog.Logger
	Tally *tally.Counters
	// Run numbers the names of this start's certificates
	// (www<i>.r<Run>.load.test), so a suite started again on the same data
	// asks for new names.
	Run int64
	// ExtraAPIKeys are more lines of the gateway's keys file.
	ExtraAPIKeys string
}

// StartCertflowWith is StartCertflow with more choices.
func StartCertflowWith(ctx context.Context, cfg CertflowConfig) (*Certflow, error) {
	any := "127.0.0.1:0"
	s, err := suite.Start(ctx, suite.Options{
		DataDir: cfg.Dir, NATSAddr: any, MongoAddr: any, OrderAddr: any, ApplicationAddr: any, VerificationAddr: any,
		IssuanceAddr: any, IssuanceHTTPAddr: any, NotificationAddr: any, AuditAddr: any, GatewayAddr: any, DevDNSAddr: any, Log: cfg.Log, Tally: cfg.Tally,
		// The load client drives many applications from one key: measured
		// here is the lifecycle, not the per-key rate limit.
		GatewayLimits: gateway.Limits{KeyRate: 1e6, KeyBurst: 1e6, MaxInFlight: 4096},
		ExtraAPIKeys:  cfg.ExtraAPIKeys,
	})
	if err != nil {
		return nil, err
	}
	t := cfg.Tally
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	c := &Certflow{s: s, stop: func() { stop(); <-done }, waiting: map[string]chan string{},
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	c.run.Store(cfg.Run)
	reader, err := nats.NkeyOptionFromSeed(embedded.NATSSeedFile(s.NATSSeeds, events.Reader))
	if err != nil {
		c.Close()
		return nil, err
	}
	if c.nc, err = nats.Connect(s.NATSURL, reader, nats.CustomInboxPrefix(events.Inbox(events.Reader))); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.nc.Subscribe("certflow.application.*", func(m *nats.Msg) {
		switch m.Subject {
		case events.ApplicationIssued:
			var ev eventsv1.ApplicationIssued
			if proto.Unmarshal(m.Data, &ev) == nil {
				c.finish(ev.Application, "")
			}
		case events.ApplicationFailed:
			var ev eventsv1.ApplicationFailed
			if proto.Unmarshal(m.Data, &ev) == nil {
				c.finish(ev.Application, ev.Cause)
			}
		}
	}); err != nil {
		c.Close()
		return nil, err
	}
	if t != nil {
		if _, err := c.nc.Subscribe("certflow.>", func(m *nats.Msg) { t.Add("event "+m.Subject, 1) }); err != nil {
			c.Close()
			return nil, err
		}
	}
	if c.warmup, err = c.issue(ctx, -1); err != nil {
		c.Close()
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return c, nil
}

// Suite is the started suite.
func (c *Certflow) Suite() *suite.Suite { return c.s }

// Warmup is the application the start issued, and its domain.
func (c *Certflow) Warmup() (application, domain string) { return c.warmup.Name, c.warmup.domain }

// Domain is the name of the i-th certificate of this run.
func (c *Certflow) Domain(i int) string { return fmt.Sprintf("www%d.r%d.load.test", i+1, c.run.Load()) }

// Get reads path through the gateway with the development key into out.
func (c *Certflow) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, "GET", path, nil, out)
}

// NextRun gives the following Issue calls fresh names.
func (c *Certflow) NextRun() { c.run.Add(1) }

// Close stops the suite.
func (c *Certflow) Close() {
	if c.nc != nil {
		c.nc.Close()
	}
	c.stop()
}

func (c *Certflow) wait(app string) chan string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.waiting[app]
	if !ok {
		ch = make(chan string, 1)
		c.waiting[app] = ch
	}
	return ch
}

func (c *Certflow) finish(app, cause string) {
	select {
	case c.wait(app) <- cause:
	default:
	}
}

func (c *Certflow) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.s.GatewayURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.s.APIKey)
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
	domain     string
	took       time.Duration
}

// Issue runs one DV application and returns the submit→issued time.
func (c *Certflow) Issue(ctx context.Context, i int) (time.Duration, error) {
	app, err := c.issue(ctx, i)
	return app.took, err
}

func (c *Certflow) issue(ctx context.Context, i int) (application, error) {
	var order struct {
		Instances []string `json:"instances"`
	}
	if err := c.do(ctx, "POST", "/v1/orders", map[string]any{"product": "products/dv-single-1y", "quantity": 1}, &order); err != nil {
		return application{}, err
	}
	var app application
	domain := c.Domain(i)
	if err := c.do(ctx, "POST", "/v1/applications", map[string]any{
		"instance": order.Instances[0], "domains": []string{domain},
		"applicant": map[string]string{"name": "Load", "phone": "+1 555 0100", "email": "load@example.test"},
	}, &app); err != nil {
		return application{}, err
	}
	app.domain = domain
	start := time.Now()
	if err := c.do(ctx, "POST", "/v1/"+app.Name+":submit", map[string]any{}, &app); err != nil {
		return application{}, err
	}
	ch := app.Challenges[0]
	c.s.DevDNS.SetTXT(ch.RecordName, ch.RecordValue)
	var checked challenge
	if err := c.do(ctx, "POST", "/v1/"+ch.Name+":check", map[string]any{}, &checked); err != nil {
		return application{}, err
	}
	select {
	case cause := <-c.wait(app.Name):
		if cause != "" {
			return application{}, fmt.Errorf("%s failed: %s", app.Name, cause)
		}
		app.took = time.Since(start)
		return app, nil
	case <-ctx.Done():
		return application{}, ctx.Err()
	}
}

// Template snapshots the warm-up lifecycle once it has settled (its events
// published and its notifications sent), for Preload.
func (c *Certflow) Template(ctx context.Context) (*Template, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(c.s.MongoURI))
	if err != nil {
		return nil, err
	}
	defer client.Disconnect(context.Background())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		t, err := Snapshot(ctx, client, "dev", []string{c.warmup.domain})
		if !errors.Is(err, ErrUnsettled) {
			return t, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PreloadDir writes n copies of t into the embedded database of the suite
// data folder dir, over accounts accounts, with only the database running
// (start the suite again on dir afterwards: the services then load what
// they keep in memory from the preloaded data, as after any restart).
func PreloadDir(ctx context.Context, dir string, t *Template, n, accounts int, progress io.Writer) (PreloadStats, error) {
	db, err := embedded.StartMongo("127.0.0.1:0", filepath.Join(dir, "db"), nil)
	if err != nil {
		return PreloadStats{}, err
	}
	defer db.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(db.URI()))
	if err != nil {
		return PreloadStats{}, err
	}
	defer client.Disconnect(context.Background())
	return Preload(ctx, client, t, n, accounts, progress)
}
