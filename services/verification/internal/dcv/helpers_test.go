package dcv

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/certflow/certflow/pkg/devdns"
)

// startDNS starts a real devdns server on loopback.
func startDNS(t *testing.T, opts devdns.Options) *devdns.Server {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := devdns.Start(ctx, opts)
	if err != nil {
		t.Fatalf("devdns.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newResolver(t *testing.T, opts ResolverOptions) *Resolver {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	r, err := NewResolver(opts)
	if err != nil {
		t.Fatalf("NewResolver(%+v): %v", opts, err)
	}
	return r
}

// silentServer is a UDP socket that never answers, to make queries time out.
func silentServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
