package plugins

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error kinds. A driver returns an error made by NotFound, Exists, Invalid,
// InUse or Unsupported (or wrapping one of these kinds); the agent sees an error
// of the same kind, with the same message, on its side of the process
// boundary: errors.Is(err, plugins.ErrNotFound). Any other error arrives
// as a plain error with its message. ErrUnavailable is the agent's: the
// plugin process is not there (it crashed, is restarting, or never
// answered).
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrInvalid     = errors.New("invalid argument")
	ErrUnsupported = errors.New("not supported")
	ErrInUse       = errors.New("in use")
	ErrUnavailable = errors.New("plugin unavailable")
)

// Error is an error of a kind with the message for the user.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func kindf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// NotFound reports that the network, endpoint or volume does not exist.
func NotFound(format string, args ...any) error { return kindf(ErrNotFound, format, args...) }

// Exists reports a conflict with something that already exists.
func Exists(format string, args ...any) error { return kindf(ErrExists, format, args...) }

// Invalid reports a request the driver cannot accept as given.
func Invalid(format string, args ...any) error { return kindf(ErrInvalid, format, args...) }

// InUse reports that the object is busy: a volume that is still mounted,
// a network with endpoints.
func InUse(format string, args ...any) error { return kindf(ErrInUse, format, args...) }

// Unsupported reports an option or operation the driver does not have.
func Unsupported(format string, args ...any) error { return kindf(ErrUnsupported, format, args...) }

var kindCodes = []struct {
	kind error
	code codes.Code
}{
	{ErrNotFound, codes.NotFound},
	{ErrExists, codes.AlreadyExists},
	{ErrInvalid, codes.InvalidArgument},
	{ErrUnsupported, codes.Unimplemented},
	{ErrInUse, codes.FailedPrecondition},
	{ErrUnavailable, codes.Unavailable},
}

// toStatus is the server side: an error of a kind becomes a gRPC status
// with that kind's code.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, k := range kindCodes {
		if errors.Is(err, k.kind) {
			return status.Error(k.code, err.Error())
		}
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// fromStatus is the client side: a gRPC status becomes an error of its
// kind again; a broken connection becomes ErrUnavailable naming the plugin.
func fromStatus(plugin string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable, codes.Canceled:
		// A driver's own Unavailable or Canceled comes back as sent; the
		// transport's (the process went away) names the plugin.
		return &Error{Kind: ErrUnavailable, Msg: fmt.Sprintf("plugin %q unavailable: %s", plugin, st.Message())}
	case codes.DeadlineExceeded:
		return fmt.Errorf("plugin %q: %s: %w", plugin, st.Message(), context.DeadlineExceeded)
	}
	for _, k := range kindCodes {
		if k.code == st.Code() {
			return &Error{Kind: k.kind, Msg: st.Message()}
		}
	}
	return errors.New(st.Message())
}
