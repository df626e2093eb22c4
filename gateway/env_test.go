package gateway

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
)

// protocol is a way for a client to call the gateway.
type protocol struct {
	name  string
	opts  []connect.ClientOption
	http1 bool
}

// protocols are the ways every public method is tested.
var protocols = []protocol{
	{name: "connect"},
	{name: "connect_http1", http1: true},
	{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpc_web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
}

// testEnv is a gateway wired to fake services, each on its own test server.
type testEnv struct {
	inv    *fakeInventory // nil when the env runs another inventory
	cart   *fakeCart
	gw     *Gateway
	clock  *fakeClock
	logs   *logBuffer
	url    string
	invSrv *httptest.Server
}

// envOptions changes what newEnv builds.
type envOptions struct {
	inventory   inventoryv1connect.InventoryServiceHandler
	handlerOpts []connect.HandlerOption
}

// newEnv starts a gateway on fake services, with a fake clock, and stops
// everything when the test ends.
func newEnv(t testing.TB, opts ...func(*envOptions)) *testEnv {
	t.Helper()
	env := &testEnv{
		cart:  newFakeCart(),
		clock: &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		logs:  &logBuffer{t: t},
	}
	o := envOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.inventory == nil {
		env.inv = newFakeInventory()
		o.inventory = env.inv
	}

	invHandler := mount(inventoryv1connect.NewInventoryServiceHandler(o.inventory))
	env.invSrv = httptest.NewServer(invHandler)
	t.Cleanup(env.invSrv.Close)
	cartSrv := httptest.NewServer(mount(cartv1connect.NewCartServiceHandler(env.cart)))
	t.Cleanup(cartSrv.Close)

	gw, err := New(Config{
		Inventory: NewInventoryClient(env.invSrv.Client(), env.invSrv.URL),
		Cart:      NewCartClient(cartSrv.Client(), cartSrv.URL),
		Secret:    []byte(strings.Repeat("k", MinSecretBytes)),
		Logger:    slog.New(slog.NewTextHandler(env.logs, nil)),
		Now:       env.clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	gw.commitBackoff = time.Millisecond
	env.gw = gw

	srv := httptest.NewUnstartedServer(mount(gw.Handler(o.handlerOpts...)))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	env.url = srv.URL
	return env
}

// withInventory runs the env on inv instead of a fakeInventory.
func withInventory(inv inventoryv1connect.InventoryServiceHandler) func(*envOptions) {
	return func(o *envOptions) { o.inventory = inv }
}

// withHandlerOptions builds the gateway's handler with opts.
func withHandlerOptions(opts ...connect.HandlerOption) func(*envOptions) {
	return func(o *envOptions) { o.handlerOpts = opts }
}

func mount(path string, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return mux
}

// client returns a ShopService client that speaks p.
func (env *testEnv) client(t testing.TB, p protocol) shopv1connect.ShopServiceClient {
	t.Helper()
	transport := &http.Transport{Protocols: new(http.Protocols)}
	if p.http1 {
		transport.Protocols.SetHTTP1(true)
	} else {
		transport.Protocols.SetUnencryptedHTTP2(true)
	}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	return shopv1connect.NewShopServiceClient(client, env.url, p.opts...)
}

// session is a shopper's client and identity.
type session struct {
	shop      shopv1connect.ShopServiceClient
	token     string
	shopperID string
}

// newSession creates a guest session through c.
func newSession(t testing.TB, c shopv1connect.ShopServiceClient) *session {
	t.Helper()
	res, err := c.CreateSession(t.Context(), connect.NewRequest(&shopv1.CreateSessionRequest{}))
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return &session{shop: c, token: res.Msg.GetToken(), shopperID: res.Msg.GetShopperId()}
}

// req returns a request for msg that carries the session's token.
func req[T any](s *session, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set("Authorization", "Bearer "+s.token)
	return r
}

// addToCart adds quantity units of sku to the session's cart.
func (s *session) addToCart(t testing.TB, sku string, quantity int64) {
	t.Helper()
	_, err := s.shop.AddToCart(t.Context(), req(s, &shopv1.AddToCartRequest{
		Sku:      sku,
		Quantity: quantity,
	}))
	if err != nil {
		t.Fatalf("AddToCart(%s, %d): %v", sku, quantity, err)
	}
}

// checkout checks out the session's cart.
func (s *session) checkout(t testing.TB, requestID string) (*shopv1.Order, error) {
	t.Helper()
	res, err := s.shop.Checkout(t.Context(), req(s, &shopv1.CheckoutRequest{RequestId: requestID}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetOrder(), nil
}

// checkCode fails the test unless err is a *connect.Error with code and a
// message that contains msgPart, and returns it.
func checkCode(
	t testing.TB, call string, err error, code connect.Code, msgPart string,
) *connect.Error {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("%s: error = %v, want a %v error", call, err, code)
	}
	if cerr.Code() != code || !strings.Contains(cerr.Message(), msgPart) {
		t.Fatalf("%s: error = %v, want code %v and a message with %q", call, err, code, msgPart)
	}
	return cerr
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer keeps what the gateway logs and echoes it to the test log.
type logBuffer struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.t.Log(strings.TrimSuffix(string(p), "\n"))
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
