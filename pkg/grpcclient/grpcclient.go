// Package grpcclient dials other certflow services: it passes the caller's
// principal on as metadata and turns the callee's errors into apierr errors
// that make sense to this service's own caller.
package grpcclient

import (
	"context"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/certflow/certflow/pkg/apierr"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/mtls"
)

// Dial returns a mutual-TLS client connection to component peer at target
// (host:port), presenting id's certificate. Connections are made lazily, so
// services may start in any order.
func Dial(target, peer string, id mtls.Source, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(mtls.ClientCredentials(id, peer)),
		grpc.WithChainUnaryInterceptor(propagate, translate),
	}, opts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return cc, nil
}

// propagate passes on the account the call is for. A service speaks for an
// account only as the system acting on its behalf, whatever role its own
// caller had: the callee trusts that role from services alone
// (pkg/callpolicy), and checks the account's ownership itself. The actor,
// source and request id of the request the call is made for go with it,
// so that logs and records downstream name the same request.
func propagate(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if p, ok := auth.From(ctx); ok {
		kv := []string{auth.MetadataAccount, p.Account, auth.MetadataRole, string(auth.System)}
		for _, f := range [...]struct{ key, value string }{
			{auth.MetadataActor, p.Actor}, {auth.MetadataSource, p.Source}, {auth.MetadataRequestID, p.RequestID},
		} {
			if f.value != "" {
				kv = append(kv, f.key, f.value)
			}
		}
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func translate(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		return nil
	}
	return FromStatus(method, err)
}

// ReasonRejected marks an error for a request another service refused as
// invalid: the same request will be refused again.
const ReasonRejected = "DOWNSTREAM_REJECTED"

// FromStatus maps a downstream error for this service's caller. Precondition,
// not-found, conflict and permission errors keep their reason: they are about
// the caller's own resources. An InvalidArgument from downstream means this
// service sent something wrong, so its caller sees Internal.
func FromStatus(method string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("call %s: %w", method, err)
	}
	reason := ""
	var meta map[string]string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason, meta = info.Reason, info.Metadata
		}
	}
	var kind apierr.Kind
	switch st.Code() {
	case codes.NotFound:
		kind = apierr.NotFound
	case codes.FailedPrecondition:
		kind = apierr.FailedPrecondition
	case codes.AlreadyExists:
		kind = apierr.AlreadyExists
	case codes.Aborted:
		kind = apierr.Aborted
	case codes.PermissionDenied:
		kind = apierr.PermissionDenied
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return apierr.Wrap(err, apierr.Unavailable, "DEPENDENCY_UNAVAILABLE", "a certflow service is unavailable; retry shortly")
	case codes.InvalidArgument:
		// Our request was refused: retrying it cannot help. The reason says
		// so to callers that retry (event handlers); clients see Internal.
		return apierr.Wrap(err, apierr.Internal, ReasonRejected, "internal error calling %s: %s", method, st.Message()).WithMeta("downstream_reason", reason)
	default:
		return apierr.Wrap(err, apierr.Internal, "INTERNAL", "internal error calling %s", method)
	}
	return &apierr.Error{Kind: kind, Reason: reason, Message: st.Message(), Metadata: meta, Err: err}
}
