package testenv

import (
	"context"
	"crypto/tls"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/internalpki"
)

var (
	pkiOnce sync.Once
	pki     *internalpki.Authority
	pkiErr  error
)

// PKI is the test binary's internal PKI: every service a test starts gets
// its mutual-TLS identity from it, as in the embedded default.
func PKI(t testing.TB) *internalpki.Authority {
	t.Helper()
	pkiOnce.Do(func() { pki, pkiErr = internalpki.New() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pki
}

// Dial connects to a gRPC server as certflow's own components do, picking
// for each call a component the call policy allows: the gateway for the
// methods it serves (customers and reviewers), otherwise the service that
// calls the method in production, which speaks for an account only as the
// system (as pkg/grpcclient does). Tests of the policy itself use DialAs.
func Dial(t testing.TB, addr string) grpc.ClientConnInterface {
	t.Helper()
	return &router{t: t, addr: addr, conns: map[string]*grpc.ClientConn{}}
}

type router struct {
	t     testing.TB
	addr  string
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (r *router) pick(ctx context.Context, method string) (context.Context, *grpc.ClientConn) {
	caller := callpolicy.Gateway
	if callers := callpolicy.Methods[method]; len(callers) > 0 && !slices.Contains(callers, callpolicy.Gateway) {
		caller = callers[0]
	}
	// A customer's request reaches an internal method through a service,
	// which speaks as the system; other roles are passed on unchanged, for
	// tests that see them refused.
	if md, ok := metadata.FromOutgoingContext(ctx); ok && caller != callpolicy.Gateway && slices.Contains(md.Get(auth.MetadataRole), string(auth.Customer)) {
		md = md.Copy()
		md.Set(auth.MetadataRole, string(auth.System))
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cc, ok := r.conns[caller]
	if !ok {
		cc = DialAs(r.t, r.addr, caller)
		r.conns[caller] = cc
	}
	return ctx, cc
}

func (r *router) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	ctx, cc := r.pick(ctx, method)
	return cc.Invoke(ctx, method, args, reply, opts...)
}

func (r *router) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx, cc := r.pick(ctx, method)
	return cc.NewStream(ctx, desc, method, opts...)
}

// DialAs connects to a gRPC server over mutual TLS as component caller
// (no certflow interceptors: metadata is what the test sets with As).
func DialAs(t testing.TB, addr, caller string) *grpc.ClientConn {
	t.Helper()
	src := PKI(t).Source(caller)
	cert, err := src.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := src.Roots()
	// Any certflow server will do: tests reach it by address, so the name
	// checked is the loopback one every component certificate carries.
	creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{*cert}})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
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
