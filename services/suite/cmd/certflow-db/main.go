// Command certflow-db runs the embedded database alone (FerretDB with its
// SQLite handler, as in certflow-suite) in its own process, so that a test
// can SIGKILL the database and start it again on the same files while the
// services, each its own binary, keep running (TestChaosCrashEachService).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/certflow/certflow/pkg/config"
	"github.com/certflow/certflow/pkg/embedded"
)

func main() {
	var addr, dir string
	s := config.New("certflow-db")
	s.String(&addr, "addr", "CERTFLOW_MONGO_ADDR", "127.0.0.1:27018", "MongoDB wire protocol listen address")
	s.String(&dir, "data", "CERTFLOW_DB_DATA", "./var/db", "folder of the SQLite files; kept across restarts")
	if err := s.Parse(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	db, err := embedded.StartMongo(addr, dir, nil)
	if err != nil {
		slog.Error("could not start the database", "err", err)
		os.Exit(1)
	}
	// The line a supervisor (or a test) waits for.
	fmt.Printf("certflow-db: serving %s on %s\n", dir, db.URI())
	<-ctx.Done()
	db.Close()
}
