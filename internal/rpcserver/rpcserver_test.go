package rpcserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	"github.com/tienda/tienda/internal/rpcserver"
)

// fakeInventory answers GetProduct according to the SKU it is asked for, so
// that each test can pick the handler behaviour it needs.
type fakeInventory struct {
	inventoryv1connect.UnimplementedInventoryServiceHandler
	streaming chan struct{} // closed once WatchStock has sent its first message
}

var _ inventoryv1connect.InventoryServiceHandler = (*fakeInventory)(nil)

func (f *fakeInventory) GetProduct(
	ctx context.Context, req *connect.Request[inventoryv1.GetProductRequest],
) (*connect.Response[inventoryv1.GetProductResponse], error) {
	switch req.Msg.GetSku() {
	case "SQL":
		return nil, fmt.Errorf("select sku from products where x: %w", errors.New("disk I/O error"))
	case "PANIC":
		panic("index out of range")
	case "HANG":
		<-ctx.Done()
		return nil, ctx.Err()
	case "MISSING":
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no product MISSING"))
	}
	p := &inventoryv1.Product{Sku: req.Msg.GetSku(), Name: "Mug"}
	return connect.NewResponse(&inventoryv1.GetProductResponse{Product: p}), nil
}

func (f *fakeInventory) WatchStock(
	ctx context.Context,
	_ *connect.Request[inventoryv1.WatchStockRequest],
	stream *connect.ServerStream[inventoryv1.WatchStockResponse],
) error {
	if err := stream.Send(&inventoryv1.WatchStockResponse{Sku: "MUG", Available: 3}); err != nil {
		return err
	}
	close(f.streaming)
	<-ctx.Done()
	return ctx.Err()
}

// syncBuffer is a log sink that tests read while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	srv  *rpcserver.Server
	fake *fakeInventory
	logs *syncBuffer
}

func startServer(tb testing.TB, origins ...string) *testServer {
	tb.Helper()
	return startServerWith(tb, rpcserver.Config{AllowedOrigins: origins})
}

func startServerWith(tb testing.TB, cfg rpcserver.Config) *testServer {
	tb.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	cfg.Name, cfg.Addr, cfg.Logger = "test", "127.0.0.1:0", logger
	srv := rpcserver.New(cfg)
	fake := &fakeInventory{streaming: make(chan struct{})}
	srv.Mount(inventoryv1connect.NewInventoryServiceHandler(fake, srv.HandlerOptions()...))
	if err := srv.Start(); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &testServer{srv: srv, fake: fake, logs: logs}
}

func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{name: "connect_json", opts: []connect.ClientOption{connect.WithProtoJSON()}},
	{name: "connect_proto"},
	{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpc_web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
}

func TestErrorsReachClientsSafely(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	tests := []struct {
		name        string
		sku         string
		wantCode    connect.Code
		wantMessage string
		wantLogged  string
	}{
		{
			name:        "validation_names_the_field",
			sku:         "",
			wantCode:    connect.CodeInvalidArgument,
			wantMessage: "sku",
		},
		{
			name:        "domain_error_passes_through",
			sku:         "MISSING",
			wantCode:    connect.CodeNotFound,
			wantMessage: "no product MISSING",
		},
		{
			name:        "sql_text_is_hidden",
			sku:         "SQL",
			wantCode:    connect.CodeInternal,
			wantMessage: "internal error",
			wantLogged:  "select sku from products",
		},
		{
			name:        "panic_is_recovered",
			sku:         "PANIC",
			wantCode:    connect.CodeInternal,
			wantMessage: "internal error",
			wantLogged:  "index out of range",
		},
	}
	for _, proto := range protocols {
		client := inventoryv1connect.NewInventoryServiceClient(h2cClient(), ts.srv.URL(), proto.opts...)
		for _, tc := range tests {
			t.Run(proto.name+"/"+tc.name, func(t *testing.T) {
				req := connect.NewRequest(&inventoryv1.GetProductRequest{Sku: tc.sku})
				req.Header().Set(rpcserver.RequestIDHeader, "req-"+proto.name+"-"+tc.name)
				_, err := client.GetProduct(t.Context(), req)
				if got := connect.CodeOf(err); got != tc.wantCode {
					t.Fatalf("GetProduct(%q) code = %v, want %v (err %v)", tc.sku, got, tc.wantCode, err)
				}
				var ce *connect.Error
				if !errors.As(err, &ce) {
					t.Fatalf("GetProduct(%q) error %T is not a *connect.Error", tc.sku, err)
				}
				if !strings.Contains(ce.Message(), tc.wantMessage) {
					t.Errorf("message = %q, want it to contain %q", ce.Message(), tc.wantMessage)
				}
				for _, secret := range []string{"select", "disk I/O", "goroutine", ".go:"} {
					if strings.Contains(ce.Message(), secret) {
						t.Errorf("message %q leaks %q", ce.Message(), secret)
					}
				}
				if got, want := ce.Meta().Get(rpcserver.RequestIDHeader), req.Header().Get(rpcserver.RequestIDHeader); got != want {
					t.Errorf("request id in error = %q, want %q", got, want)
				}
				if tc.wantLogged != "" && !strings.Contains(ts.logs.String(), tc.wantLogged) {
					t.Errorf("log lacks %q:\n%s", tc.wantLogged, ts.logs.String())
				}
			})
		}
	}
}

func TestValidationErrorCarriesViolations(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	client := inventoryv1connect.NewInventoryServiceClient(h2cClient(), ts.srv.URL())

	_, err := client.GetProduct(t.Context(), connect.NewRequest(&inventoryv1.GetProductRequest{}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
		t.Fatalf("GetProduct(empty sku) = %v, want InvalidArgument", err)
	}
	var fields []string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatalf("decode detail: %v", derr)
		}
		if vs, ok := v.(*validate.Violations); ok {
			for _, violation := range vs.GetViolations() {
				fields = append(fields, violation.GetField().GetElements()[0].GetFieldName())
			}
		}
	}
	// An empty SKU breaks two rules (length and pattern), both of field sku.
	if len(fields) == 0 || slices.ContainsFunc(fields, func(f string) bool { return f != "sku" }) {
		t.Errorf("violated fields = %v, want only sku", fields)
	}
}

func TestRequestIDIsEchoedAndLogged(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	client := inventoryv1connect.NewInventoryServiceClient(h2cClient(), ts.srv.URL())

	req := connect.NewRequest(&inventoryv1.GetProductRequest{Sku: "MUG"})
	req.Header().Set(rpcserver.RequestIDHeader, "abc-123")
	res, err := client.GetProduct(t.Context(), req)
	if err != nil {
		t.Fatalf("GetProduct: %v", err)
	}
	if got := res.Header().Get(rpcserver.RequestIDHeader); got != "abc-123" {
		t.Errorf("response request id = %q, want %q", got, "abc-123")
	}
	if !strings.Contains(ts.logs.String(), `"request_id":"abc-123"`) {
		t.Errorf("log lacks the request id:\n%s", ts.logs.String())
	}

	// An id that is unsafe to log is replaced by a fresh one.
	req = connect.NewRequest(&inventoryv1.GetProductRequest{Sku: "MUG"})
	req.Header().Set(rpcserver.RequestIDHeader, "evil\"id with spaces")
	res, err = client.GetProduct(t.Context(), req)
	if err != nil {
		t.Fatalf("GetProduct: %v", err)
	}
	if got := res.Header().Get(rpcserver.RequestIDHeader); got == "" || strings.Contains(got, " ") {
		t.Errorf("response request id = %q, want a fresh safe id", got)
	}
}

func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	health := grpchealth.NewClient(h2cClient(), ts.srv.URL(), connect.WithGRPC())
	res, err := health.Check(t.Context(), &grpchealth.CheckRequest{Service: inventoryv1connect.InventoryServiceName})
	if err != nil {
		t.Fatalf("health Check: %v", err)
	}
	if res.Status != grpchealth.StatusServing {
		t.Errorf("health status = %v, want serving", res.Status)
	}

	stream := grpcreflect.NewClient(h2cClient(), ts.srv.URL()).NewStream(t.Context())
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	var got []string
	for _, n := range names {
		got = append(got, string(n))
	}
	for _, want := range []string{inventoryv1connect.InventoryServiceName, grpchealth.HealthV1ServiceName} {
		if !strings.Contains(strings.Join(got, " "), want) {
			t.Errorf("ListServices() = %v, want it to include %s", got, want)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "http://shop.localhost:5173")

	tests := []struct {
		name      string
		origin    string
		wantAllow string
	}{
		{name: "configured_origin", origin: "http://shop.localhost:5173", wantAllow: "http://shop.localhost:5173"},
		{name: "other_origin", origin: "http://evil.localhost", wantAllow: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := ts.srv.URL() + inventoryv1connect.InventoryServiceGetProductProcedure
			req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", http.MethodPost)
			// Sorted and lowercase, as browsers send it.
			req.Header.Set("Access-Control-Request-Headers",
				"authorization,connect-protocol-version,content-type")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("preflight: %v", err)
			}
			res.Body.Close()
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != tc.wantAllow {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tc.wantAllow)
			}
		})
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	client := inventoryv1connect.NewInventoryServiceClient(h2cClient(), ts.srv.URL(), connect.WithGRPC())

	req := connect.NewRequest(&inventoryv1.WatchStockRequest{Skus: []string{"MUG"}})
	stream, err := client.WatchStock(t.Context(), req)
	if err != nil {
		t.Fatalf("WatchStock: %v", err)
	}
	if !stream.Receive() {
		t.Fatalf("WatchStock: no first message: %v", stream.Err())
	}
	<-ts.fake.streaming

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an open stream: %v", err)
	}
	for stream.Receive() {
	}
	if got := connect.CodeOf(stream.Err()); got != connect.CodeUnavailable {
		t.Errorf("stream ended with %v, want Unavailable", stream.Err())
	}
}

func TestCallsWithoutDeadlineAreBounded(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, rpcserver.Config{CallTimeout: 50 * time.Millisecond})
	client := inventoryv1connect.NewInventoryServiceClient(h2cClient(), ts.srv.URL())

	_, err := client.GetProduct(t.Context(), connect.NewRequest(&inventoryv1.GetProductRequest{Sku: "HANG"}))
	if got := connect.CodeOf(err); got != connect.CodeDeadlineExceeded {
		t.Errorf("GetProduct(hanging) with no client deadline: %v, want DeadlineExceeded", err)
	}
}

// TestSlowBodyIsCutOff sends headers and half a body, then nothing more:
// the server must give up on the request instead of holding it open.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, rpcserver.Config{BodyTimeout: 200 * time.Millisecond})
	addr := strings.TrimPrefix(ts.srv.URL(), "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\n\r\n{\"sku\":", inventoryv1connect.InventoryServiceGetProductProcedure, addr)
	if err != nil {
		t.Fatal(err)
	}

	// The test's own bound, far above the server's 200ms.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled request: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "deadline_exceeded") {
		t.Errorf("stalled request answered %d %s, want 504 deadline_exceeded", res.StatusCode, body)
	}
	if strings.Contains(string(body), "tcp") || strings.Contains(string(body), "127.0.0.1") {
		t.Errorf("answer leaks connection details: %s", body)
	}
}

// TestGetAnswersArePrivate calls a method with HTTP GET, as a Connect
// client may for side-effect-free methods: shared caches must not keep the
// answer, which may depend on the caller's token.
func TestGetAnswersArePrivate(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	client := inventoryv1connect.NewInventoryServiceClient(h2cClient(), ts.srv.URL(),
		connect.WithHTTPGet(), connect.WithProtoJSON())

	res, err := client.GetProduct(t.Context(), connect.NewRequest(&inventoryv1.GetProductRequest{Sku: "MUG"}))
	if err != nil {
		t.Fatalf("GetProduct over GET: %v", err)
	}
	if got := res.Header().Get("Cache-Control"); got != "private" {
		t.Errorf("Cache-Control = %q, want private", got)
	}
	if got := res.Header().Values("Vary"); !slices.Contains(got, "Authorization") {
		t.Errorf("Vary = %q, want it to include Authorization", got)
	}
}
