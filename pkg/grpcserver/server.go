// Package grpcserver is the one way certflow services serve gRPC: health,
// reflection, logging, panic recovery, the caller's principal from metadata,
// apierr errors turned into google.rpc.Status, and a graceful stop that
// first marks the service NOT_SERVING (as Boulder's server builder does).
package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/mtls"
)

// Server is a gRPC server with health and reflection.
type Server struct {
	GRPC   *grpc.Server
	health *health.Server
	lis    net.Listener
	log    *slog.Logger
	names  []string
}

// New listens on addr ("127.0.0.1:0" for a random port) and builds a server
// that accepts only mutual TLS with a certificate from id's CA bundle, and
// only calls the call policy allows (pkg/callpolicy).
func New(log *slog.Logger, addr string, id mtls.Source, opts ...grpc.ServerOption) (*Server, error) {
	if id == nil {
		return nil, errors.New("grpc server: no TLS identity; every internal connection is mutual TLS")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return NewOn(log, lis, id, opts...)
}

// NewOn is New on a listener the caller opened: a process starting
// services that call each other both ways learns each one's address before
// any of them is built.
func NewOn(log *slog.Logger, lis net.Listener, id mtls.Source, opts ...grpc.ServerOption) (*Server, error) {
	if id == nil {
		_ = lis.Close()
		return nil, errors.New("grpc server: no TLS identity; every internal connection is mutual TLS")
	}
	s := &Server{log: log, lis: lis, health: health.NewServer()}
	opts = append(opts,
		grpc.Creds(mtls.ServerCredentials(id)),
		grpc.ChainUnaryInterceptor(s.recoverer, s.logger, authorizeUnary, errorMapper),
		grpc.ChainStreamInterceptor(s.authorizeStream))
	s.GRPC = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.GRPC, s.health)
	reflection.Register(s.GRPC)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Register adds a service implementation and tracks its health. Every
// method must have a call policy: a service with an unlisted method is a
// programming error caught at start, before it could be refused at runtime.
func (s *Server) Register(desc *grpc.ServiceDesc, impl any) {
	for _, m := range desc.Methods {
		mustBeListed("/" + desc.ServiceName + "/" + m.MethodName)
	}
	for _, m := range desc.Streams {
		mustBeListed("/" + desc.ServiceName + "/" + m.StreamName)
	}
	s.GRPC.RegisterService(desc, impl)
	s.names = append(s.names, desc.ServiceName)
}

// Serve serves until ctx is done, then marks every service NOT_SERVING,
// stops accepting calls and waits up to 10s for running ones.
func (s *Server) Serve(ctx context.Context) error {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, n := range s.names {
		s.health.SetServingStatus(n, healthpb.HealthCheckResponse_SERVING)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.GRPC.Serve(s.lis) }()
	s.log.Info("gRPC serving", "addr", s.Addr(), "services", s.names)
	select {
	case err := <-errc:
		return fmt.Errorf("grpc serve: %w", err)
	case <-ctx.Done():
	}
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("graceful stop timed out; closing remaining calls")
		s.GRPC.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

func (s *Server) recoverer(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error; retry later, and report it if it persists")
		}
	}()
	return h(ctx, req)
}

func (s *Server) logger(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	if err == nil && !s.log.Enabled(ctx, slog.LevelDebug) {
		// The common case logs nothing: skip reading the caller's
		// certificate and building the line (an allocation or five per
		// call).
		return resp, nil
	}
	code := status.Code(err)
	attrs := []any{"method", info.FullMethod, "code", code.String(), "ms", time.Since(start).Milliseconds()}
	if c, err := callerOf(ctx); err == nil {
		attrs = append(attrs, "caller", c)
	}
	if p, ok := auth.From(ctx); ok {
		attrs = append(attrs, "account", p.Account)
	}
	switch {
	case err == nil:
		s.log.Debug("rpc", attrs...)
	case code == codes.Internal || code == codes.Unknown:
		s.log.Error("rpc failed", append(attrs, "err", err)...)
	default:
		s.log.Info("rpc refused", append(attrs, "err", err)...)
	}
	return resp, err
}

// errorMapper runs innermost so the logger sees the final code but the
// original error text (logged above) stays server-side.
func errorMapper(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		return nil, &mapped{st: Status(err), err: err}
	}
	return resp, nil
}

// mapped carries the client-facing status and the original error (for logs).
type mapped struct {
	st  *status.Status
	err error
}

func (m *mapped) Error() string              { return m.err.Error() }
func (m *mapped) GRPCStatus() *status.Status { return m.st }
func (m *mapped) Unwrap() error              { return m.err }
