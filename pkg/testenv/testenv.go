// Package testenv gives tests real infrastructure: an embedded NATS server
// with JetStream per test, and a MongoDB-wire database per test binary
// (embedded FerretDB, or a real MongoDB when CERTFLOW_TEST_MONGO_URI is set)
// with a fresh database per test.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/certflow/certflow/pkg/embedded"
	"github.com/certflow/certflow/pkg/events"
)

// MongoEnv names the variable that points tests at a real MongoDB.
const MongoEnv = "CERTFLOW_TEST_MONGO_URI"

var (
	mongoOnce sync.Once
	mongoURI  string
	mongoErr  error
	mongoDir  string
	mongoSrv  *embedded.Mongo
)

// Main runs the tests and then stops the shared embedded database. Use it
// from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if mongoSrv != nil {
		mongoSrv.Close()
	}
	if mongoDir != "" {
		_ = os.RemoveAll(mongoDir)
	}
	os.Exit(code)
}

// MongoURI returns the URI of the test binary's database server, starting
// an embedded FerretDB on first use.
func MongoURI(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a database; skipped with -short")
	}
	mongoOnce.Do(func() {
		if uri := os.Getenv(MongoEnv); uri != "" {
			mongoURI = uri
			return
		}
		mongoDir, mongoErr = os.MkdirTemp("", "certflow-ferretdb-")
		if mongoErr != nil {
			return
		}
		mongoSrv, mongoErr = embedded.StartMongo("127.0.0.1:0", mongoDir, nil)
		if mongoErr == nil {
			mongoURI = mongoSrv.URI()
		}
	})
	if mongoErr != nil {
		t.Fatalf("start embedded FerretDB: %v", mongoErr)
	}
	return mongoURI
}

// Database returns a fresh, uniquely named database, dropped at the end of
// the test, and its name.
func Database(t testing.TB) (*mongo.Database, string) {
	t.Helper()
	uri := MongoURI(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("connect to %s: %v", uri, err)
	}
	name := DBName(t)
	db := client.Database(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = db.Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	return db, name
}

// DBName returns a unique database name for the test.
func DBName(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("t_%s_%s", base, hex.EncodeToString(b[:]))
}

// NATS starts an embedded NATS server with JetStream and the CERTFLOW
// stream for the test and returns its URL; it stops at the end of the
// test. Its users are those of pkg/events' permission table, with seeds
// from NATSSeed; Conn connects as its in-process administrator.
func NATS(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs NATS; skipped with -short")
	}
	seeds := t.TempDir()
	users, err := embedded.NATSUsers(seeds)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.StartNATS("127.0.0.1:0", t.TempDir(), users)
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	natsMu.Lock()
	natsServers[srv.URL()] = natsEnv{srv: srv, seeds: seeds}
	natsMu.Unlock()
	t.Cleanup(func() {
		natsMu.Lock()
		delete(natsServers, srv.URL())
		natsMu.Unlock()
		srv.Close()
	})
	return srv.URL()
}

type natsEnv struct {
	srv   *embedded.NATS
	seeds string
}

var (
	natsMu      sync.Mutex
	natsServers = map[string]natsEnv{}
)

func natsOf(t testing.TB, url string) natsEnv {
	t.Helper()
	natsMu.Lock()
	defer natsMu.Unlock()
	n, ok := natsServers[url]
	if !ok {
		t.Fatalf("no test NATS server at %s (start it with testenv.NATS)", url)
	}
	return n
}

// NATSSeed is the nkey seed file of user on the test server at url.
func NATSSeed(t testing.TB, url, user string) string {
	t.Helper()
	return embedded.NATSSeedFile(natsOf(t, url).seeds, user)
}

// Conn connects to the test server at url as its administrator (tests
// publish and read anything).
func Conn(t testing.TB, url string) *events.Conn {
	t.Helper()
	return conn(t, url, events.Credentials{Options: natsOf(t, url).srv.AdminOptions()})
}

// ConnAs connects to the test server at url as user, with its permissions.
func ConnAs(t testing.TB, url, user string) *events.Conn {
	t.Helper()
	return conn(t, url, events.Credentials{User: user, SeedFile: NATSSeed(t, url, user)})
}

func conn(t testing.TB, url string, creds events.Credentials) *events.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := events.Connect(ctx, url, t.Name(), creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Logger returns a logger that writes through t.Log.
// Lines logged after the test ended are dropped (testing panics otherwise).
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
