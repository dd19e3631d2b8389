// Package apierr is certflow's error type: a kind that maps to a gRPC code, a
// reason clients can switch on (AIP-193 ErrorInfo.reason) and a message that
// says what to do next. Domain code returns these without knowing about gRPC;
// pkg/grpcserver turns them into google.rpc.Status on the way out.
package apierr

import (
	"errors"
	"fmt"
)

// Kind is the class of an error; each maps to one gRPC code.
type Kind int

// The kinds, named after the gRPC codes they become.
const (
	Internal Kind = iota
	InvalidArgument
	NotFound
	AlreadyExists
	FailedPrecondition
	PermissionDenied
	Unauthenticated
	Aborted
	Unavailable
	ResourceExhausted
)

var kindNames = map[Kind]string{
	Internal:           "Internal",
	InvalidArgument:    "InvalidArgument",
	NotFound:           "NotFound",
	AlreadyExists:      "AlreadyExists",
	FailedPrecondition: "FailedPrecondition",
	PermissionDenied:   "PermissionDenied",
	Unauthenticated:    "Unauthenticated",
	Aborted:            "Aborted",
	Unavailable:        "Unavailable",
	ResourceExhausted:  "ResourceExhausted",
}

func (k Kind) String() string { return kindNames[k] }

// FieldViolation names one bad request field (google.rpc.BadRequest).
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a certflow error.
type Error struct {
	Kind Kind
	// Reason is an UPPER_SNAKE code, for example APPLICATION_ALREADY_ISSUED.
	Reason string
	// Message is for people: what is wrong and what to do next.
	Message    string
	Violations []FieldViolation
	// Metadata goes into ErrorInfo.metadata.
	Metadata map[string]string
	// Err is the underlying cause, if any; it is not shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Kind: k}) and errors.Is(err,
// &Error{Reason: r}) match by kind or reason, so callers compare by class,
// never by message text.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Reason != "" {
		return t.Reason == e.Reason
	}
	return t.Kind == e.Kind
}

// New makes an error of kind with reason and a formatted message.
func New(kind Kind, reason, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Wrap is New with an underlying cause kept for logs.
func Wrap(err error, kind Kind, reason, format string, args ...any) *Error {
	e := New(kind, reason, format, args...)
	e.Err = err
	return e
}

// WithField adds a field violation and returns e.
func (e *Error) WithField(field, description string) *Error {
	e.Violations = append(e.Violations, FieldViolation{Field: field, Description: description})
	return e
}

// WithMeta adds ErrorInfo metadata and returns e.
func (e *Error) WithMeta(key, value string) *Error {
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	e.Metadata[key] = value
	return e
}

// Invalid is shorthand for an InvalidArgument about one field.
func Invalid(field, reason, format string, args ...any) *Error {
	e := New(InvalidArgument, reason, format, args...)
	return e.WithField(field, e.Message)
}

// NotFoundf reports a missing resource. The same error is used when the
// resource belongs to another account, so names do not leak.
func NotFoundf(resource string) *Error {
	return New(NotFound, "NOT_FOUND", "%s not found; check the name and that it belongs to your account", resource)
}

// KindOf returns the kind of err, Internal for errors that are not *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// ReasonOf returns the reason of err, "" for errors that are not *Error.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Kinds for errors.Is comparisons.
var (
	ErrNotFound           = &Error{Kind: NotFound}
	ErrInvalidArgument    = &Error{Kind: InvalidArgument}
	ErrFailedPrecondition = &Error{Kind: FailedPrecondition}
	ErrAborted            = &Error{Kind: Aborted}
	ErrAlreadyExists      = &Error{Kind: AlreadyExists}
	ErrPermissionDenied   = &Error{Kind: PermissionDenied}
	ErrUnavailable        = &Error{Kind: Unavailable}
)
