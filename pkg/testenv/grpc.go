package testenv

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/certflow/certflow/pkg/auth"
)

// Dial connects to a gRPC server as an outside client would (no certflow
// interceptors); close happens at the end of the test.
func Dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// As returns ctx with the metadata the gateway sets for an account's key.
func As(ctx context.Context, account string, role auth.Role) context.Context {
	return metadata.AppendToOutgoingContext(ctx, auth.MetadataAccount, account, auth.MetadataRole, string(role))
}

// Code returns err's gRPC code.
func Code(err error) codes.Code { return status.Code(err) }

// Run starts a service's Run in the background and stops it at the end of
// the test, failing the test if Run returned an error.
func Run(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service stopped with error: %v", err)
		}
	})
}
