package grpcserver

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/certflow/certflow/pkg/apierr"
)

// Domain is the ErrorInfo domain of every certflow error.
const Domain = "certflow.dev"

var kindCodes = map[apierr.Kind]codes.Code{
	apierr.Internal:           codes.Internal,
	apierr.InvalidArgument:    codes.InvalidArgument,
	apierr.NotFound:           codes.NotFound,
	apierr.AlreadyExists:      codes.AlreadyExists,
	apierr.FailedPrecondition: codes.FailedPrecondition,
	apierr.PermissionDenied:   codes.PermissionDenied,
	apierr.Unauthenticated:    codes.Unauthenticated,
	apierr.Aborted:            codes.Aborted,
	apierr.Unavailable:        codes.Unavailable,
	apierr.ResourceExhausted:  codes.ResourceExhausted,
}

// Status converts err to a gRPC status with ErrorInfo (and BadRequest for
// field violations). Errors that are not *apierr.Error become Internal with
// a generic message: their text may hold details clients must not see.
func Status(err error) *status.Status {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && !isAPIErr(err) {
		return s
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		switch {
		case errors.Is(err, context.Canceled):
			return status.New(codes.Canceled, "request cancelled")
		case errors.Is(err, context.DeadlineExceeded):
			return status.New(codes.DeadlineExceeded, "deadline exceeded; retry later")
		}
		return status.New(codes.Internal, "internal error; retry later, and report it if it persists")
	}
	st := status.New(kindCodes[e.Kind], e.Message)
	info := &errdetails.ErrorInfo{Reason: e.Reason, Domain: Domain, Metadata: e.Metadata}
	details := []any{info}
	if len(e.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range e.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		details = append(details, br)
	}
	if withDetails, derr := st.WithDetails(toProto(details)...); derr == nil {
		return withDetails
	}
	return st
}

func isAPIErr(err error) bool {
	var e *apierr.Error
	return errors.As(err, &e)
}
