// Package service is the plumbing every certflow service shares: it
// connects to MongoDB and NATS, listens for gRPC, runs the outbox relay and
// the service's background tasks, and shuts all of it down in order.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/docstore"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/grpcclient"
	"github.com/certflow/certflow/pkg/grpcserver"
	"github.com/certflow/certflow/pkg/internalpki"
	"github.com/certflow/certflow/pkg/mtls"
	"github.com/certflow/certflow/pkg/tally"
)

// Config is what every service needs.
type Config struct {
	// Name is the service name: order, application, …
	Name     string
	GRPCAddr string
	// GRPCListener, if set, is served instead of listening on GRPCAddr.
	GRPCListener net.Listener
	MongoURI     string
	// Database defaults to certflow_<name>.
	Database string
	NATSURL  string
	Log      *slog.Logger
	// RelayInterval is the outbox sweep period (default 5s).
	RelayInterval time.Duration

	// TLS names this service's certificate, key and CA bundle files
	// (production; reread when they change). PKI, if set instead, issues
	// and renews the certificate in-process (the embedded default, tests).
	TLS mtls.Files
	PKI *internalpki.Authority
	// NATSSeedFile is this service's nkey seed for NATS.
	NATSSeedFile string
	// Tally, if set, counts the service's database commands and the gRPC
	// calls it serves (benchmarks' budget per lifecycle).
	Tally *tally.Counters
	// EventChaos, if set (tests), delivers every event this service
	// consumes twice and out of order.
	EventChaos *events.Chaos
}

// Flags registers the common settings on s with defaults for a service
// whose gRPC port is port.
func (c *Config) Flags(s *config.Set, name string, port int) {
	c.Name = name
	s.String(&c.GRPCAddr, "grpc-addr", "CERTFLOW_GRPC_ADDR", fmt.Sprintf("127.0.0.1:%d", port), "gRPC listen address")
	s.String(&c.MongoURI, "mongo-uri", "CERTFLOW_MONGO_URI", "mongodb://127.0.0.1:27017/", "MongoDB connection string")
	s.String(&c.Database, "mongo-database", "CERTFLOW_MONGO_DATABASE", "certflow_"+name, "MongoDB database of this service")
	s.String(&c.NATSURL, "nats-url", "CERTFLOW_NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	s.String(&c.NATSSeedFile, "nats-nkey-file", "CERTFLOW_NATS_NKEY_FILE", "", "file holding this service's NATS nkey seed")
	mtls.Flags(s, &c.TLS)
}

// Base is a started service's shared parts.
type Base struct {
	Log   *slog.Logger
	Mongo *mongo.Client
	DB    *mongo.Database
	NATS  *events.Conn
	Relay *docstore.Relay
	GRPC  *grpcserver.Server
	// ID is the service's mutual-TLS identity, for its clients too.
	ID    mtls.Source
	tasks []func(context.Context) error
	conns []*grpc.ClientConn
	// singleWriter is set on a database that needs docstore.SingleWriter.
	singleWriter bool
	// filled closes when the background start work (FillListIndexes) is
	// done; see Settled.
	filled []chan struct{}
}

// Start connects to MongoDB and NATS and listens for gRPC. Nothing is
// served until Run.
func Start(ctx context.Context, cfg Config) (*Base, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log.With("service", cfg.Name)
	if cfg.Database == "" {
		cfg.Database = "certflow_" + cfg.Name
	}
	id, err := internalpki.Identity(cfg.Name, cfg.TLS, cfg.PKI)
	if err != nil {
		return nil, err
	}
	mopts := options.Client().ApplyURI(cfg.MongoURI).SetAppName("certflow-" + cfg.Name).
		SetServerSelectionTimeout(DatabaseTimeout).SetConnectTimeout(DatabaseTimeout)
	gopts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(unavailableWhenDatabaseDown)}
	if cfg.Tally != nil {
		name, t := cfg.Name, cfg.Tally
		// "db" counts commands; "dbtime" adds each command's time in µs
		// by collection, to find what costs in proportion to the data.
		var started sync.Map // request id → dbtime key
		done := func(id int64, d time.Duration) {
			if k, ok := started.LoadAndDelete(id); ok {
				t.Add(k.(string), d.Microseconds())
			}
		}
		mopts.SetMonitor(&event.CommandMonitor{
			Started: func(_ context.Context, e *event.CommandStartedEvent) {
				t.Add("db "+name+" "+e.CommandName, 1)
				coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
				if e.CommandName == "getMore" {
					coll, _ = e.Command.Lookup("collection").StringValueOK()
				}
				started.Store(e.RequestID, "dbtime "+name+" "+e.CommandName+" "+coll)
			},
			Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { done(e.RequestID, e.Duration) },
			Failed:    func(_ context.Context, e *event.CommandFailedEvent) { done(e.RequestID, e.Duration) },
		})
		gopts = append(gopts, grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			t.Add("grpc "+info.FullMethod, 1)
			return h(ctx, req)
		}))
	}
	client, err := mongo.Connect(mopts)
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB at %s: %w", cfg.MongoURI, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("MongoDB at %s does not answer (is it running?): %w", cfg.MongoURI, err)
	}
	nc, err := events.Connect(pctx, cfg.NATSURL, "certflow-"+cfg.Name, events.Credentials{User: cfg.Name, SeedFile: cfg.NATSSeedFile, CAFile: cfg.TLS.CA})
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	nc.Chaos = cfg.EventChaos
	var srv *grpcserver.Server
	if cfg.GRPCListener != nil {
		srv, err = grpcserver.NewOn(log, cfg.GRPCListener, id, gopts...)
	} else {
		srv, err = grpcserver.New(log, cfg.GRPCAddr, id, gopts...)
	}
	if err != nil {
		nc.Close()
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	single, err := isFerretDB(pctx, client)
	if err != nil {
		nc.Close()
		srv.GRPC.Stop()
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	b := &Base{
		singleWriter: single,
		Log:          log,
		Mongo:        client,
		DB:           client.Database(cfg.Database),
		NATS:         nc,
		Relay:        docstore.NewRelay(nc, log, cfg.RelayInterval),
		GRPC:         srv,
		ID:           id,
	}
	if single {
		b.Relay.SingleWriter()
		log.Info("database is FerretDB: one writer per database, writes filtered by _id")
	}
	b.Go(b.Relay.Run)
	return b, nil
}

// SingleWriter reports whether this process is its database's only writer
// (FerretDB, one process per database): it may then keep in memory what it
// writes, such as a queue of due work, instead of querying for it.
func (b *Base) SingleWriter() bool { return b.singleWriter }

// StoreOptions are the docstore options every store of the service uses:
// its clock, and SingleWriter on FerretDB.
func (b *Base) StoreOptions(now func() time.Time) []docstore.Option {
	opts := []docstore.Option{docstore.WithClock(now)}
	if b.singleWriter {
		opts = append(opts, docstore.SingleWriter())
	}
	return opts
}

// ReadCacheBytes bounds each read cache a service keeps (docstore.ReadCache)
// for the stores read most: applications, orders, certificates, challenges.
// 32 MiB holds some thousands of records of each.
const ReadCacheBytes = 32 << 20

// SmallReadCacheBytes bounds the read cache of a store of small records
// read on every event, such as an account's contacts.
const SmallReadCacheBytes = 8 << 20

// OutboxStoreOptions are StoreOptions for a store whose writes carry
// events: the relay publishes them and sweeps the collection.
func (b *Base) OutboxStoreOptions(now func() time.Time) []docstore.Option {
	return append(b.StoreOptions(now), docstore.WithRelay(b.Relay))
}

// isFerretDB asks the server what it is; FerretDB adds ferretdbVersion to
// buildInfo.
func isFerretDB(ctx context.Context, c *mongo.Client) (bool, error) {
	var info bson.M
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("buildInfo: %w", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok, nil
}

// Dial connects to component peer at addr over mutual TLS as this service;
// the connection closes when the service stops.
func (b *Base) Dial(peer, addr string) (*grpc.ClientConn, error) {
	cc, err := grpcclient.Dial(addr, peer, b.ID)
	if err != nil {
		return nil, err
	}
	b.conns = append(b.conns, cc)
	return cc, nil
}

// ListIndexFiller is a store whose memory list index is filled at start
// (docstore.Store.FillListIndex).
type ListIndexFiller interface {
	FillListIndex(ctx context.Context) error
}

// FillListIndexes fills the memory list indexes of stores that have no
// relay, in the background: until one is filled its lists ask the
// database, so a slow or failing read delays nothing. A failed read is
// tried again every few seconds until the service stops.
func (b *Base) FillListIndexes(stores ...ListIndexFiller) {
	done := make(chan struct{})
	b.filled = append(b.filled, done)
	b.Go(func(ctx context.Context) error {
		defer close(done)
		for _, s := range stores {
			for {
				err := s.FillListIndex(ctx)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return nil
				}
				b.Log.Warn("list index not filled yet; lists ask the database until it is", "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(5 * time.Second):
				}
			}
		}
		return nil
	})
}

// Settled waits until the service's background start work is done (its
// memory list indexes filled), so that a benchmark measures the service at
// work and not its start; the service serves before that.
func (b *Base) Settled(ctx context.Context) error {
	for _, c := range b.filled {
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Go adds a background task that runs with the service and stops with it.
func (b *Base) Go(task func(context.Context) error) { b.tasks = append(b.tasks, task) }

// Run serves until ctx is done or a task fails, then stops gRPC gracefully,
// waits for the tasks and closes the connections.
func (b *Base) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return b.GRPC.Serve(gctx) })
	for _, t := range b.tasks {
		g.Go(func() error { return t(gctx) })
	}
	err := g.Wait()
	for _, cc := range b.conns {
		_ = cc.Close()
	}
	b.NATS.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.Mongo.Disconnect(cctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	b.Log.Info("stopped")
	return nil
}

// Probe calls the health service of the server configured in s (its
// -grpc-addr and -tls-* settings) as the service itself.
func Probe(name string, s *config.Set) error {
	get := func(flag string) string {
		if f := s.FS.Lookup(flag); f != nil {
			return f.Value.String()
		}
		return ""
	}
	id, err := internalpki.Identity(name, mtls.Files{Cert: get("tls-cert"), Key: get("tls-key"), CA: get("tls-ca")}, nil)
	if err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(get("grpc-addr"))
	if err != nil {
		return fmt.Errorf("-grpc-addr: %w", err)
	}
	cc, err := grpcclient.Dial(net.JoinHostPort("127.0.0.1", port), name, id)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Main is a service binary's main: it parses the flags registered by setup,
// builds the service with run, and stops it on SIGINT or SIGTERM.
func Main(name string, setup func(s *config.Set) func(ctx context.Context, log *slog.Logger) error) {
	s := config.New(name)
	var level, format string
	s.String(&level, "log-level", "CERTFLOW_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.String(&format, "log-format", "CERTFLOW_LOG_FORMAT", "text", "log format: text or json")
	probe := s.FS.Bool("probe", false, "check this service's gRPC health over mutual TLS with its own identity and exit 0 if SERVING (a Kubernetes exec probe: kubelet's own gRPC probe speaks only plaintext)")
	probeAs := s.FS.String("probe-as", name, "with -probe: the component identity the server has and the probe presents, when the binary serves another role (perspective for verification -role perspective)")
	run := setup(s)
	if err := s.Parse(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	if *probe {
		if err := Probe(*probeAs, s); err != nil {
			fmt.Fprintf(os.Stderr, "%s: probe: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	log, err := config.Logger(level, format)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("exiting", "service", name, "err", err)
		os.Exit(1)
	}
}
