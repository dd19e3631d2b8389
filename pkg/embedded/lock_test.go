package embedded_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certflow/certflow/pkg/embedded"
)

// TestSecondServerOnOneFolderRefused: two processes writing one SQLite or
// JetStream folder corrupt it; the second is refused at start, and the
// folder is free again once the first has closed.
func TestSecondServerOnOneFolderRefused(t *testing.T) {
	t.Run("database", func(t *testing.T) {
		dir := t.TempDir()
		first, err := embedded.StartMongo("127.0.0.1:0", dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = embedded.StartMongo("127.0.0.1:0", dir, nil)
		if !errors.Is(err, embedded.ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			first.Close()
			t.Fatalf("second StartMongo on %s = %v; want ErrLocked naming pid %d", dir, err, os.Getpid())
		}
		first.Close()
		again, err := embedded.StartMongo("127.0.0.1:0", dir, nil)
		if err != nil {
			t.Fatalf("StartMongo after the first closed: %v", err)
		}
		again.Close()
	})
	t.Run("nats", func(t *testing.T) {
		dir := t.TempDir()
		users, err := embedded.NATSUsers(filepath.Join(dir, "seeds"))
		if err != nil {
			t.Fatal(err)
		}
		store := filepath.Join(dir, "js")
		first, err := embedded.StartNATS("127.0.0.1:0", store, users)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := embedded.StartNATS("127.0.0.1:0", store, users); !errors.Is(err, embedded.ErrLocked) {
			first.Close()
			t.Fatalf("second StartNATS on %s = %v; want ErrLocked", store, err)
		}
		first.Close()
		again, err := embedded.StartNATS("127.0.0.1:0", store, users)
		if err != nil {
			t.Fatalf("StartNATS after the first closed: %v", err)
		}
		again.Close()
	})
}
