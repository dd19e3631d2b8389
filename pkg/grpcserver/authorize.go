package grpcserver

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/callpolicy"
	"github.com/certflow/certflow/pkg/mtls"
)

type callerKey struct{}

// CallerFrom returns the component that made the call (from its verified
// certificate).
func CallerFrom(ctx context.Context) (string, bool) {
	c, ok := ctx.Value(callerKey{}).(string)
	return c, ok
}

// authorize identifies the calling component from its verified client
// certificate, checks the method's call policy, and believes account and
// role metadata (and with them actor, source and request id) only from a
// component allowed to assert that role.
func authorize(ctx context.Context, method string) (context.Context, error) {
	caller, err := callerOf(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "caller not identified: %v; connect with a certflow component certificate", err)
	}
	if err := callpolicy.Allow(method, caller); err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "%v", err)
	}
	ctx = context.WithValue(ctx, callerKey{}, caller)
	md, _ := metadata.FromIncomingContext(ctx)
	acct, role := first(md.Get(auth.MetadataAccount)), first(md.Get(auth.MetadataRole))
	if acct == "" && role == "" {
		return ctx, nil
	}
	if acct == "" || role == "" {
		return nil, status.Errorf(codes.PermissionDenied, "%s sent %s without %s; send both or neither", caller, pick(acct == "", auth.MetadataRole, auth.MetadataAccount), pick(acct == "", auth.MetadataAccount, auth.MetadataRole))
	}
	if !callpolicy.MayAssert(caller, auth.Role(role)) {
		return nil, status.Errorf(codes.PermissionDenied, "%s may not act as %s for an account", caller, role)
	}
	// Who acted, from where and in which request: believed from the same
	// callers as the account and role, since they are as easy to forge.
	return auth.With(ctx, auth.Principal{
		Account: acct, Role: auth.Role(role),
		Actor:     first(md.Get(auth.MetadataActor)),
		Source:    first(md.Get(auth.MetadataSource)),
		RequestID: first(md.Get(auth.MetadataRequestID)),
	}), nil
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

func callerOf(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", fmt.Errorf("connection is not TLS")
	}
	return mtls.PeerName(info.State)
}

func authorizeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) authorizeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := authorize(ss.Context(), info.FullMethod)
	if err != nil {
		s.log.Info("stream refused", "method", info.FullMethod, "err", err)
		return err
	}
	return h(srv, &stream{ServerStream: ss, ctx: ctx})
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func mustBeListed(method string) {
	if !callpolicy.Listed(method) {
		panic(fmt.Sprintf("grpcserver: %s has no entry in pkg/callpolicy; declare who may call it", method))
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
