// Package rpcserver serves Connect handlers the way every tienda part does:
// one port for gRPC, gRPC-Web and Connect over HTTP/1.1 and cleartext HTTP/2,
// with health checks and server reflection for grpcurl, CORS for browsers,
// protovalidate rules enforced on every request, one log line per call,
// panics recovered, and a graceful shutdown.
//
// A part creates a [Server], builds its Connect handlers with
// [Server.HandlerOptions], mounts them, and starts it:
//
//	srv := rpcserver.New(rpcserver.Config{Name: "inventory", Addr: "127.0.0.1:8081", Logger: logger})
//	srv.Mount(inventoryv1connect.NewInventoryServiceHandler(impl, srv.HandlerOptions()...))
//	err := srv.Start()
package rpcserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/rs/cors"
)

// Limits that every tienda server applies.
const (
	// MaxMessageBytes is the largest request message a server reads.
	MaxMessageBytes = 4 << 20
	maxHeaderBytes  = 64 << 10
	readHeaderLimit = 10 * time.Second
	idleLimit       = 2 * time.Minute
	// DefaultBodyTimeout bounds how long a client may take to send a
	// request body once its headers are in.
	DefaultBodyTimeout = 30 * time.Second
)

// Config says what a [Server] serves and where.
type Config struct {
	// Name names the part in logs, such as "inventory".
	Name string
	// Addr is the TCP address to listen on; "127.0.0.1:0" picks a free port.
	Addr string
	// Logger receives the start-up line and one line per call.
	Logger *slog.Logger
	// AllowedOrigins are the browser origins, such as
	// "http://localhost:5173", that may call the server from another
	// origin; "*" allows every origin. Empty allows none.
	AllowedOrigins []string
	// Checker answers health checks; nil reports every mounted service as
	// serving for as long as the server runs.
	Checker grpchealth.Checker
	// CallTimeout bounds a unary call whose client set no deadline; zero
	// means [DefaultCallTimeout]. A client's own deadline always wins.
	CallTimeout time.Duration
	// BodyTimeout bounds how long a client may take to send a request
	// body; zero means [DefaultBodyTimeout].
	BodyTimeout time.Duration
}

// DefaultCallTimeout bounds unary calls that come without a deadline.
const DefaultCallTimeout = 15 * time.Second

// Server is one tienda part listening on one port. It is created by [New],
// filled by [Server.Mount], and run by [Server.Start] until
// [Server.Shutdown].
type Server struct {
	cfg       Config
	mux       *http.ServeMux
	services  []string
	http      *http.Server
	listener  net.Listener
	validator *validator
	observer  *observer

	// draining is closed when shutdown begins, to end streams that would
	// otherwise hold the shutdown until its deadline.
	draining  chan struct{}
	drainOnce sync.Once
}

// New returns a server for cfg. It panics only if the protovalidate rules
// compiled into the binary are unusable, a programming error.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With(slog.String("part", cfg.Name))
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	v, err := newValidator()
	if err != nil {
		panic(err)
	}
	return &Server{
		cfg:       cfg,
		mux:       http.NewServeMux(),
		validator: v,
		observer:  &observer{logger: cfg.Logger, timeout: cfg.CallTimeout},
		draining:  make(chan struct{}),
	}
}

// HandlerOptions returns the options every Connect handler of this server
// is built with: request ids and per-call logging, the error boundary,
// panic recovery, validation, a message size limit, and streams that end
// when the server drains.
func (s *Server) HandlerOptions() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithInterceptors(s.observer, &drainer{draining: s.draining}, s.validator),
		connect.WithRecover(s.recoverPanic),
		connect.WithReadMaxBytes(MaxMessageBytes),
	}
}

// Mount serves a Connect handler, as returned by a generated
// New…ServiceHandler function, and registers the service for health
// checks and reflection. Call it before [Server.Start].
func (s *Server) Mount(path string, h http.Handler) {
	s.mux.Handle(path, h)
	s.services = append(s.services, strings.Trim(path, "/"))
}

// Handle serves a plain HTTP handler, such as a web page, at pattern.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// Start listens on the configured address and serves in the background. It
// returns once the port is bound, so that callers may connect right away.
func (s *Server) Start() error {
	checker := s.cfg.Checker
	if checker == nil {
		checker = grpchealth.NewStaticChecker(s.services...)
	}
	s.mux.Handle(grpchealth.NewHandler(checker))
	reflector := grpcreflect.NewStaticReflector(append(s.services, grpchealth.HealthV1ServiceName)...)
	s.mux.Handle(grpcreflect.NewHandlerV1(reflector))
	s.mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))

	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen for %s on %s: %w", s.cfg.Name, s.cfg.Addr, err)
	}
	s.listener = l

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.http = &http.Server{
		Handler:           s.withCORS(s.withRequestLimits(s.mux)),
		Protocols:         protocols,
		ReadHeaderTimeout: readHeaderLimit,
		IdleTimeout:       idleLimit,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		// No ReadTimeout or WriteTimeout: they would cut off long streams.
		// Calls are bounded by their own deadlines instead.
	}
	s.cfg.Logger.Info("listening",
		slog.String("addr", s.URL()),
		slog.Any("services", s.services),
		slog.Any("cors_origins", s.cfg.AllowedOrigins))
	go func() {
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("serve failed", slog.String("err", err.Error()))
		}
	}()
	return nil
}

// URL returns the base URL clients use to reach the server, such as
// "http://127.0.0.1:8081". It is valid after [Server.Start].
func (s *Server) URL() string {
	return "http://" + s.listener.Addr().String()
}

// Shutdown stops the server gracefully: it refuses new calls, ends open
// streams, and waits for calls in flight to finish until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	s.drainOnce.Do(func() { close(s.draining) })
	s.cfg.Logger.Info("draining")
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down %s: %w", s.cfg.Name, err)
	}
	return nil
}

// withRequestLimits marks answers to GET calls private, and gives each
// request BodyTimeout to deliver its body, so that a client trickling bytes
// cannot hold a connection and a goroutine forever. Once the body is read,
// the deadline is lifted again: a ReadTimeout on the whole server would
// instead cut off long streams.
func (s *Server) withRequestLimits(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			// Answers to GET calls depend on the caller's token: shared
			// caches must not keep them. Handlers may say otherwise.
			w.Header().Set("Cache-Control", "private")
			w.Header().Add("Vary", "Authorization")
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts its request's read deadline when the body ends.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF) && !b.done:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The network error names both ends of the connection; the client
		// needs only to know that its body was too slow.
		err = errSlowBody
	}
	return n, err
}

// errSlowBody is what a request whose body came too slowly fails with. It
// is a deadline error, so Connect answers deadline_exceeded.
var errSlowBody = fmt.Errorf("request body not received in time: %w", context.DeadlineExceeded)

func (s *Server) withCORS(h http.Handler) http.Handler {
	if len(s.cfg.AllowedOrigins) == 0 {
		return h
	}
	c := cors.New(cors.Options{
		AllowedOrigins: s.cfg.AllowedOrigins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", RequestIDHeader),
		ExposedHeaders: append(connectcors.ExposedHeaders(), RequestIDHeader),
		MaxAge:         7200,
	})
	return c.Handler(h)
}

// recoverPanic turns a handler's panic into an Internal error for the
// client and an error line with the stack for the operator.
func (s *Server) recoverPanic(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
	s.cfg.Logger.Error("handler panicked",
		slog.String("procedure", spec.Procedure),
		slog.String("request_id", RequestID(ctx)),
		slog.Any("panic", p),
		slog.String("stack", string(debug.Stack())))
	return connect.NewError(connect.CodeInternal, errors.New("internal error; the server log has details"))
}

// drainer ends server streams when the server starts to drain, so that a
// client watching stock does not hold up a shutdown.
type drainer struct {
	draining <-chan struct{}
}

var _ connect.Interceptor = (*drainer)(nil)

func (d *drainer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (d *drainer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (d *drainer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-d.draining:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := next(ctx, conn)
		select {
		case <-d.draining:
			// The client may reconnect to another replica or after restart.
			return connect.NewError(connect.CodeUnavailable, errors.New("server is shutting down"))
		default:
			return err
		}
	}
}
