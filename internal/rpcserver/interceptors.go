package rpcserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
)

// RequestIDHeader is the header that carries a call's request id. A client
// may send one; otherwise the server makes one up. Either way the response
// carries it, and every log line about the call names it.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID returns the id of the call that ctx belongs to, or "" outside a
// call.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns a copy of ctx that carries id as its request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestIDFrom returns the request id a client sent, if it is safe to log
// and echo, or a new random one.
func requestIDFrom(header http.Header) string {
	if id := header.Get(RequestIDHeader); validRequestID(id) {
		return id
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails: crypto/rand panics on failure instead
	return hex.EncodeToString(b)
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// observer is the outermost interceptor of every server. It gives each call
// a request id, writes one log line when the call ends, and is the error
// boundary: a handler error that is not a deliberate client-facing
// *connect.Error is logged in full and replaced by a generic Internal error,
// so that no SQL, file path or stack trace reaches a client.
type observer struct {
	logger *slog.Logger
	// timeout bounds unary calls whose client set no deadline, so that a
	// hanging dependency cannot hold a call, and its resources, forever.
	timeout time.Duration
}

var _ connect.Interceptor = (*observer)(nil)

func (o *observer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		start := time.Now()
		id := requestIDFrom(req.Header())
		ctx = WithRequestID(ctx, id)
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.timeout)
			defer cancel()
		}

		res, err := next(ctx, req)
		err = o.finish(ctx, req.Spec(), req.Peer(), start, err)
		if err != nil {
			var ce *connect.Error
			if errors.As(err, &ce) {
				ce.Meta().Set(RequestIDHeader, id)
			}
			return nil, err
		}
		res.Header().Set(RequestIDHeader, id)
		return res, nil
	}
}

func (o *observer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (o *observer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		id := requestIDFrom(conn.RequestHeader())
		ctx = WithRequestID(ctx, id)
		conn.ResponseHeader().Set(RequestIDHeader, id)

		err := next(ctx, conn)
		return o.finish(ctx, conn.Spec(), conn.Peer(), start, err)
	}
}

// finish logs the end of a call and returns the error the client may see.
func (o *observer) finish(
	ctx context.Context, spec connect.Spec, peer connect.Peer, start time.Time, err error,
) error {
	err = clientError(err)
	code := connect.CodeOf(err)
	attrs := []slog.Attr{
		slog.String("procedure", spec.Procedure),
		slog.String("protocol", peer.Protocol),
		slog.String("peer", peer.Addr),
		slog.String("request_id", RequestID(ctx)),
		slog.Duration("duration", time.Since(start)),
	}
	if err == nil {
		o.logger.LogAttrs(ctx, slog.LevelInfo, "call", append(attrs, slog.String("code", "ok"))...)
		return nil
	}

	attrs = append(attrs, slog.String("code", code.String()))
	level := slog.LevelInfo // a client's mistake is not a server error
	var internal *internalError
	if errors.As(err, &internal) {
		level = slog.LevelError
		attrs = append(attrs, slog.String("err", internal.cause.Error()))
		err = internal.public
	} else {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	o.logger.LogAttrs(ctx, level, "call", attrs...)
	return err
}

// internalError pairs the error a client sees with the cause only the log
// sees.
type internalError struct {
	public *connect.Error
	cause  error
}

func (e *internalError) Error() string { return e.public.Error() }
func (e *internalError) Unwrap() error { return e.public }

// clientError decides what a client learns of a handler's error. Errors a
// handler made on purpose with connect.NewError pass through, as do errors
// relayed from another tienda server. Everything else becomes a generic
// error whose cause is kept for the log.
func clientError(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("call canceled"))
	case errors.As(err, &ce) && !serverFault(ce.Code()):
		return err
	case connect.IsWireError(err):
		// Relayed from another tienda server, which sanitized and logged it.
		return err
	}
	return &internalError{
		public: connect.NewError(connect.CodeInternal,
			errors.New("internal error; the server log has details")),
		cause: err,
	}
}

func serverFault(code connect.Code) bool {
	return code == connect.CodeInternal || code == connect.CodeUnknown || code == connect.CodeDataLoss
}

// validator checks every request message against the protovalidate rules
// declared in the protos, before any handler sees it. A message that breaks
// a rule is refused with InvalidArgument, a message naming each field at
// fault, and a buf.validate.Violations detail for programs.
type validator struct {
	v protovalidate.Validator
}

var _ connect.Interceptor = (*validator)(nil)

func newValidator() (*validator, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("create protovalidate validator: %w", err)
	}
	return &validator{v: v}, nil
}

func (v *validator) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			if err := v.check(req.Any()); err != nil {
				return nil, err
			}
		}
		return next(ctx, req)
	}
}

func (v *validator) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (v *validator) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, &validatingConn{StreamingHandlerConn: conn, v: v})
	}
}

func (v *validator) check(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	err := v.v.Validate(m)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		// The rules themselves are broken: a server fault, not the client's.
		return fmt.Errorf("validate %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	cerr := connect.NewError(connect.CodeInvalidArgument, verr)
	if detail, derr := connect.NewErrorDetail(verr.ToProto()); derr == nil {
		cerr.AddDetail(detail)
	}
	return cerr
}

// validatingConn validates each message a streaming handler receives.
type validatingConn struct {
	connect.StreamingHandlerConn
	v *validator
}

func (c *validatingConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	return c.v.check(msg)
}
