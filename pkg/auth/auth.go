// Package auth carries the caller's identity through a request. The gateway
// authenticates API keys and sends the account and role as gRPC metadata;
// services read them with the server interceptor in pkg/grpcserver and pass
// them on to the services they call with the client interceptor in
// pkg/grpcclient.
package auth

import (
	"context"

	"github.com/certflow/certflow/pkg/apierr"
)

// Metadata keys set by the gateway (and by services calling services).
const (
	MetadataAccount = "x-certflow-account"
	MetadataRole    = "x-certflow-role"
	// MetadataActor, MetadataSource and MetadataRequestID say who made the
	// request (the API key's id), from where (the client's address) and
	// which request it is, for the audit trail (pkg/audit).
	MetadataActor     = "x-certflow-actor"
	MetadataSource    = "x-certflow-source"
	MetadataRequestID = "x-certflow-request-id"
)

// Role is what a caller may do.
type Role string

// Roles.
const (
	// Customer acts on its own account's resources.
	Customer Role = "customer"
	// Reviewer is CA staff: organization and manual review, phone records.
	Reviewer Role = "reviewer"
	// System is a service acting on its own (event handlers, sweeps).
	System Role = "system"
)

// Principal is who is calling.
type Principal struct {
	Account string
	Role    Role
	// Actor is the id of the API key the request came with (never the key
	// itself); Source the client's address; RequestID the request's id
	// (the client's X-Request-Id, or one the gateway made). They travel
	// with the request through service-to-service calls made for it, and
	// are empty for work a service starts on its own.
	Actor, Source, RequestID string
}

type ctxKey struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal in ctx, if any.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok && p.Account != ""
}

// Account returns the account of a caller acting on its own resources: a
// customer, or a service acting for one. Reviewers are CA staff, not
// customers, and are refused here; the methods they may use say so with
// Require.
func Account(ctx context.Context) (string, error) {
	p, err := Require(ctx, Customer, System)
	return p.Account, err
}

// Require returns the caller's account if it has one of the roles.
func Require(ctx context.Context, roles ...Role) (Principal, error) {
	p, ok := From(ctx)
	if !ok {
		return Principal{}, apierr.New(apierr.Unauthenticated, "UNAUTHENTICATED", "no account on the request; call through the gateway with an API key")
	}
	for _, r := range roles {
		if p.Role == r {
			return p, nil
		}
	}
	return Principal{}, apierr.New(apierr.PermissionDenied, "ROLE_REQUIRED", "this method needs the %s role; use an API key that has it", roles[0])
}
