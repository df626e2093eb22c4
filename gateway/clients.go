package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"connectrpc.com/connect"

	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	"github.com/tienda/tienda/internal/rpcserver"
)

// Retries of idempotent downstream calls that found the service unavailable.
const (
	retryAttempts  = 3
	retryBaseDelay = 20 * time.Millisecond
)

// NewInventoryClient returns a client of the inventory service at baseURL,
// such as "http://127.0.0.1:8081", that speaks the Connect protocol with
// binary Protobuf.
//
// Every call carries the request id of the gateway call it serves (see
// [rpcserver.RequestID]) in the X-Request-Id header. Unary calls whose
// method is marked NO_SIDE_EFFECTS or IDEMPOTENT are tried up to 3 times,
// with jittered exponential backoff, while they fail with Unavailable and
// the context's deadline leaves room; other calls, such as AdjustStock, are
// never retried. opts are applied after these, so their interceptors run
// once per attempt.
func NewInventoryClient(
	httpClient connect.HTTPClient, baseURL string, opts ...connect.ClientOption,
) inventoryv1connect.InventoryServiceClient {
	return inventoryv1connect.NewInventoryServiceClient(httpClient, baseURL, clientOptions(opts)...)
}

// NewCartClient returns a client of the cart service at baseURL, such as
// "http://127.0.0.1:8082", with the same protocol, request ids and retries
// as [NewInventoryClient]. AddItem is never retried.
func NewCartClient(
	httpClient connect.HTTPClient, baseURL string, opts ...connect.ClientOption,
) cartv1connect.CartServiceClient {
	return cartv1connect.NewCartServiceClient(httpClient, baseURL, clientOptions(opts)...)
}

func clientOptions(opts []connect.ClientOption) []connect.ClientOption {
	base := connect.WithInterceptors(requestIDPropagator{}, retrier{})
	return append([]connect.ClientOption{base}, opts...)
}

// requestIDPropagator copies the request id of the incoming call into the
// header of every outgoing one, so that one id follows a shopper's call
// through the logs of every part.
type requestIDPropagator struct{}

var _ connect.Interceptor = requestIDPropagator{}

func (requestIDPropagator) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if id := rpcserver.RequestID(ctx); id != "" && req.Spec().IsClient {
			req.Header().Set(rpcserver.RequestIDHeader, id)
		}
		return next(ctx, req)
	}
}

func (requestIDPropagator) WrapStreamingClient(
	next connect.StreamingClientFunc,
) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if id := rpcserver.RequestID(ctx); id != "" {
			conn.RequestHeader().Set(rpcserver.RequestIDHeader, id)
		}
		return conn
	}
}

func (requestIDPropagator) WrapStreamingHandler(
	next connect.StreamingHandlerFunc,
) connect.StreamingHandlerFunc {
	return next
}

// retrier retries idempotent unary calls that failed with Unavailable: a
// service restarting or a replica going away should not fail a shopper's
// call. It never retries a call that may have changed something and may
// not be repeated.
type retrier struct{}

var _ connect.Interceptor = retrier{}

func (retrier) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if !spec.IsClient || spec.IdempotencyLevel == connect.IdempotencyUnknown {
			return next(ctx, req)
		}
		for attempt := 1; ; attempt++ {
			res, err := next(ctx, req)
			if err == nil || connect.CodeOf(err) != connect.CodeUnavailable ||
				attempt == retryAttempts || !pause(ctx, backoff(attempt)) {
				return res, err
			}
		}
	}
}

func (retrier) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (retrier) WrapStreamingHandler(
	next connect.StreamingHandlerFunc,
) connect.StreamingHandlerFunc {
	return next
}

// backoff returns how long to wait after the given failed attempt (1 for the
// first): a random duration in [d/2, d) with d doubling per attempt, so that
// callers who failed together do not retry together.
func backoff(attempt int) time.Duration {
	d := retryBaseDelay << (attempt - 1)
	return d/2 + rand.N(d/2)
}

// pause waits for d and reports whether the caller should try again: false
// if ctx ended first or its deadline would pass before d has.
func pause(ctx context.Context, d time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// downstream turns the error of a call to service ("inventory" or "cart")
// into the error the shopper sees.
//
// An error the service sent keeps its code, message and details: the
// services write messages for their callers and hide their internals. An
// error the client made up locally means the answer never arrived whole: a
// refused or reset connection, a body cut off by a dying replica, a
// deadline. It says only that the service could not be reached in time,
// because its text names hosts and ports, and it has a code that invites a
// retry. Anything else is returned wrapped but not as a *connect.Error, so
// that the server's error boundary logs it and answers Internal.
func downstream(service string, err error) error {
	if err == nil {
		return nil
	}
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		return fmt.Errorf("call %s: %w", service, err)
	}
	if connect.IsWireError(cerr) {
		return relay(cerr.Code(), cerr.Message(), cerr)
	}
	if cerr.Code() == connect.CodeDeadlineExceeded {
		return connect.NewError(connect.CodeDeadlineExceeded,
			fmt.Errorf("%s did not answer in time", service))
	}
	// A canceled call lands here too: a stream reset by a service that
	// died looks like a cancel to the client, but the shopper canceled
	// nothing, and if the shopper did go away no answer reaches anyone.
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s is unavailable", service))
}

// relay returns a new error with code and message and the details of from.
// It copies rather than returns from, whose metadata holds the downstream
// response's headers.
func relay(code connect.Code, message string, from *connect.Error) *connect.Error {
	cerr := connect.NewError(code, errors.New(message))
	for _, d := range from.Details() {
		cerr.AddDetail(d)
	}
	return cerr
}

// wireError returns the error that a downstream service sent with code, if
// err is one.
func wireError(err error, code connect.Code) (*connect.Error, bool) {
	var cerr *connect.Error
	if !errors.As(err, &cerr) || !connect.IsWireError(cerr) || cerr.Code() != code {
		return nil, false
	}
	return cerr, true
}
