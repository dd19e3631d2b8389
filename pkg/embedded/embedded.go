// Package embedded runs the suite's infrastructure in-process for the
// default run and for tests: a NATS server with JetStream and a
// MongoDB-wire database (FerretDB with its SQLite handler). Services never
// import this package; they only see the URLs it returns.
package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/certflow/certflow/pkg/events"
)

// NATS is an embedded nats-server with JetStream.
type NATS struct {
	srv   *natsserver.Server
	admin nkeys.KeyPair
	lock  *dirLock
}

// StartNATS starts nats-server on addr ("127.0.0.1:0" for a random port)
// with JetStream stored under dir, waits until it accepts clients and
// creates the CERTFLOW stream. users maps each user of pkg/events'
// permission table to its public nkey; the server accepts only them, each
// with its permissions, and an administrator that exists only in this
// process (AdminOptions). Anonymous connections are refused.
func StartNATS(addr, dir string, users map[string]string) (*NATS, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nats store dir: %w", err)
	}
	lock, err := lockDir(dir, "the embedded NATS store")
	if err != nil {
		return nil, err
	}
	n, err := startNATS(host, port, dir, users)
	if err != nil {
		lock.release()
		return nil, err
	}
	n.lock = lock
	return n, nil
}

func startNATS(host string, port int, dir string, users map[string]string) (*NATS, error) {
	admin, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	adminPub, err := admin.PublicKey()
	if err != nil {
		return nil, err
	}
	nkusers := []*natsserver.NkeyUser{{Nkey: adminPub}}
	for user, pub := range users {
		p, ok := events.Permissions(user)
		if !ok {
			return nil, fmt.Errorf("nats user %q is not in the events permission table", user)
		}
		nkusers = append(nkusers, &natsserver.NkeyUser{Nkey: pub, Permissions: &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: p.PublishAllow, Deny: p.PublishDeny},
			Subscribe: &natsserver.SubjectPermission{Allow: p.SubscribeAllow},
		}})
	}
	opts := &natsserver.Options{
		ServerName: "certflow-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		Nkeys:      nkusers,
		// JetStream's own limits default to a share of the machine; keep the
		// embedded server modest.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  4 << 30,
		// fsync every message before the publish is acknowledged. NATS's
		// default syncs every 2 minutes: the outbox (fsynced in SQLite)
		// would mark an event sent that a power cut then takes from the
		// stream. SIGKILL alone loses nothing either way (page cache).
		SyncAlways: true,
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
	n := &NATS{srv: srv, admin: admin}
	if err := n.ensureStream(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *NATS) ensureStream() error {
	nc, err := nats.Connect("", n.AdminOptions()...)
	if err != nil {
		return fmt.Errorf("embedded NATS administrator: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return events.EnsureStream(ctx, js, 1)
}

// AdminOptions connect in-process as the server's administrator, who may
// do anything (tests use it to publish and inspect the stream). The key
// never leaves this process.
func (n *NATS) AdminOptions() []nats.Option {
	pub, _ := n.admin.PublicKey()
	return []nats.Option{
		nats.InProcessServer(n.srv),
		nats.Nkey(pub, n.admin.Sign),
	}
}

// URL is the client URL, for example nats://127.0.0.1:4222.
func (n *NATS) URL() string { return n.srv.ClientURL() }

// Close shuts the server down and waits for it.
func (n *NATS) Close() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.lock.release()
}

// NATSUsers makes (or reads) an nkey seed file per user of the events
// permission table in dir (<user>.nk, readable only by the owner) and
// returns the users' public keys, for StartNATS.
func NATSUsers(dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, user := range events.Users() {
		path := NATSSeedFile(dir, user)
		seed, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			kp, err := nkeys.CreateUser()
			if err != nil {
				return nil, err
			}
			if seed, err = kp.Seed(); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", path, err)
		}
		if out[user], err = kp.PublicKey(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NATSSeedFile is where NATSUsers keeps user's seed.
func NATSSeedFile(dir, user string) string { return filepath.Join(dir, user+".nk") }

// Mongo is an embedded FerretDB speaking the MongoDB wire protocol, storing
// each database as an SQLite file.
type Mongo struct {
	db     *ferretdb.FerretDB
	dir    string
	lock   *dirLock
	cancel context.CancelFunc
	done   chan error
	idDone chan struct{}
	closed sync.Once
}

// IDIndexInterval is how often the server looks for collections without
// the _id index of IndexIDs (a few cheap queries per database file).
const IDIndexInterval = time.Second

// MongoOption configures StartMongo.
type MongoOption func(*mongoOptions)

type mongoOptions struct{ noIDIndexes bool }

// WithoutIDIndexes leaves FerretDB's tables as FerretDB makes them, so
// every find and write by _id scans its table; benchmarks use it to
// measure what IndexIDs saves.
func WithoutIDIndexes() MongoOption { return func(o *mongoOptions) { o.noIDIndexes = true } }

// StartMongo starts FerretDB on addr ("127.0.0.1:0" for a random port)
// storing data under dir. log may be nil for a quiet server. Every
// collection gets an index for FerretDB's queries by _id (IndexIDs): those
// in dir before the server accepts clients, later ones within
// IDIndexInterval.
func StartMongo(addr, dir string, log *slog.Logger, opts ...MongoOption) (*Mongo, error) {
	var o mongoOptions
	for _, opt := range opts {
		opt(&o)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("ferretdb data dir: %w", err)
	}
	lock, err := lockDir(abs, "the embedded database")
	if err != nil {
		return nil, err
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
		lock.release()
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mongo{db: db, dir: abs, lock: lock, cancel: cancel, done: make(chan error, 1), idDone: make(chan struct{})}
	if o.noIDIndexes {
		close(m.idDone)
	} else {
		// FerretDB has opened the files; index what is there before the
		// first client, so a restart on a large database does not scan.
		if err := m.IndexIDs(ctx); err != nil {
			log.Warn("index _id of existing collections; retrying in the background", "err", err)
		}
		go m.indexIDsEvery(ctx, log)
	}
	go func() { m.done <- db.Run(ctx) }()
	return m, nil
}

func (m *Mongo) indexIDsEvery(ctx context.Context, log *slog.Logger) {
	defer close(m.idDone)
	t := time.NewTicker(IDIndexInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.IndexIDs(ctx); err != nil && ctx.Err() == nil {
				log.Warn("index _id of new collections", "err", err)
			}
		}
	}
}

// URI is the MongoDB connection string.
func (m *Mongo) URI() string { return m.db.MongoDBURI() }

// Close stops the server and waits for it; it may be called again.
func (m *Mongo) Close() {
	m.closed.Do(func() {
		m.cancel()
		<-m.idDone
		<-m.done
		m.lock.release()
	})
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
