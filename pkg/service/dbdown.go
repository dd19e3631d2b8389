package service

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DatabaseTimeout is how long a request waits to reach the database before
// it fails: a client is told quickly to retry rather than held for the
// driver's default 30 s.
const DatabaseTimeout = 5 * time.Second

// databaseDown reports whether err says the database could not be reached
// (as opposed to a request it refused).
func databaseDown(err error) bool {
	var sel topology.ServerSelectionError
	var wq topology.WaitQueueTimeoutError
	return errors.As(err, &sel) || errors.As(err, &wq) || mongo.IsNetworkError(err) || errors.Is(err, mongo.ErrClientDisconnected)
}

// unavailableWhenDatabaseDown answers Unavailable (HTTP 503 through the
// gateway) with a message when a call failed because the database could not
// be reached, instead of an internal error: the client may retry. Every
// write is one document update, so nothing is half-written; a connection
// cut after a write was sent may or may not have made it, which the
// request id makes safe to retry.
func unavailableWhenDatabaseDown(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil && databaseDown(err) {
		return nil, status.Error(codes.Unavailable, "the database cannot be reached: retry the request in a few seconds (with the same request_id, a write that did reach the database is not made twice)")
	}
	return resp, err
}
