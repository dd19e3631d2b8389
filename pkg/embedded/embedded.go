// Package embedded runs the suite's infrastructure in-process for the
// default run and for tests: a NATS server with JetStream and a
// MongoDB-wire database (FerretDB with its SQLite handler). Services never
// import this package; they only see the URLs it returns.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded nats-server with JetStream.
type NATS struct {
	srv *natsserver.Server
}

// StartNATS starts nats-server on addr ("127.0.0.1:0" for a random port)
// with JetStream stored under dir, and waits until it accepts clients.
func StartNATS(addr, dir string) (*NATS, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats store dir: %w", err)
	}
	opts := &natsserver.Options{
		ServerName: "certflow-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		// JetStream's own limits default to a share of the machine; keep the
		// embedded server modest.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  4 << 30,
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats server did not start within 10s")
	}
	return &NATS{srv: srv}, nil
}

// URL is the client URL, for example nats://127.0.0.1:4222.
func (n *NATS) URL() string { return n.srv.ClientURL() }

// Close shuts the server down and waits for it.
func (n *NATS) Close() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// Mongo is an embedded FerretDB speaking the MongoDB wire protocol, storing
// each database as an SQLite file.
type Mongo struct {
	db     *ferretdb.FerretDB
	cancel context.CancelFunc
	done   chan error
}

// StartMongo starts FerretDB on addr ("127.0.0.1:0" for a random port)
// storing data under dir. log may be nil for a quiet server.
func StartMongo(addr, dir string, log *slog.Logger) (*Mongo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("ferretdb data dir: %w", err)
	}
	if log == nil {
		// FerretDB logs every connection at Info; only its errors matter here.
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mongo{db: db, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- db.Run(ctx) }()
	return m, nil
}

// URI is the MongoDB connection string.
func (m *Mongo) URI() string { return m.db.MongoDBURI() }

// Close stops the server and waits for it.
func (m *Mongo) Close() {
	m.cancel()
	<-m.done
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	var port int
	if _, err := fmt.Sscanf(portStr, "%d", &port); err != nil {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	return host, port, nil
}
