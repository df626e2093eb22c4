package cart_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/testing/protocmp"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	"github.com/tienda/tienda/internal/pgtest"
	"github.com/tienda/tienda/services/cart"
)

// protocol is one way for a client to reach the service.
type protocol struct {
	name  string
	opts  []connect.ClientOption
	http2 bool // cleartext HTTP/2 rather than HTTP/1.1
}

var protocols = []protocol{
	{name: "connect_http1"},
	{name: "connect_h2c", http2: true},
	{name: "connect_get_http1", opts: []connect.ClientOption{connect.WithHTTPGet()}},
	{name: "grpc_h2c", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true},
	{name: "grpcweb_http1", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	{name: "grpcweb_h2c", opts: []connect.ClientOption{connect.WithGRPCWeb()}, http2: true},
}

// base is the first time the service's clock returns.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newClient starts the service on a temporary SQLite store behind an HTTP
// server that speaks HTTP/1.1 and cleartext HTTP/2, and returns a client
// for it that uses p. The service's clock moves one second per call of it,
// so later writes have later times.
func newClient(tb testing.TB, p protocol) cartv1connect.CartServiceClient {
	tb.Helper()
	var ticks atomic.Int64
	return serve(tb, p, cart.Config{
		DataDir: tb.TempDir(),
		Now:     func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Second) },
	})
}

// serve opens the service with cfg, logging to tb, and serves it until tb
// ends. It returns a client for it that uses p.
func serve(tb testing.TB, p protocol, cfg cart.Config) cartv1connect.CartServiceClient {
	tb.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(tb.Output(), nil))
	svc, err := cart.Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := svc.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})

	mux := http.NewServeMux()
	mux.Handle(svc.Handler())
	srv := httptest.NewUnstartedServer(withProtoHeader(mux))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)

	var protos http.Protocols
	if p.http2 {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	transport := &http.Transport{Protocols: &protos}
	tb.Cleanup(transport.CloseIdleConnections)
	httpClient := &http.Client{Transport: transport}
	return cartv1connect.NewCartServiceClient(httpClient, srv.URL, p.opts...)
}

// withProtoHeader tells the client which HTTP version its request came in
// with, in the Test-Proto response header.
func withProtoHeader(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Test-Proto", r.Proto)
		h.ServeHTTP(w, r)
	})
}

// forEachProtocol runs test in parallel against a new service per protocol.
func forEachProtocol(t *testing.T,
	test func(t *testing.T, client cartv1connect.CartServiceClient)) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			test(t, newClient(t, p))
		})
	}
}

func TestProtocols(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			res, err := newClient(t, p).GetCart(t.Context(),
				connect.NewRequest(&cartv1.GetCartRequest{ShopperId: "alice"}))
			if err != nil {
				t.Fatalf("GetCart: %v", err)
			}
			want := "HTTP/1.1"
			if p.http2 {
				want = "HTTP/2.0"
			}
			if got := res.Header().Get("Test-Proto"); got != want {
				t.Errorf("GetCart went over %q, want %q", got, want)
			}
		})
	}
}

// msgOf returns the message of a call's response, or nil if the call failed.
func msgOf[T any](res *connect.Response[T], err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func line(sku string, quantity int64) *cartv1.CartLine {
	return &cartv1.CartLine{Sku: sku, Quantity: quantity}
}

func usd(amount int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: "USD", Amount: amount}
}

// codeOf returns err's Connect code, or 0 if err is nil.
func codeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}

// precondition returns the type and subject of the PreconditionFailure
// violation that err carries, if any.
func precondition(err error) (string, string) {
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) {
		return "", ""
	}
	for _, d := range connectErr.Details() {
		v, _ := d.Value()
		if pf, ok := v.(*errdetails.PreconditionFailure); ok && len(pf.GetViolations()) == 1 {
			return pf.GetViolations()[0].GetType(), pf.GetViolations()[0].GetSubject()
		}
	}
	return "", ""
}

func TestCart(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, client cartv1connect.CartServiceClient) {
		ctx := t.Context()
		add := func(sku string, quantity, limit int64) (*cartv1.Cart, error) {
			m, err := msgOf(client.AddItem(ctx, connect.NewRequest(&cartv1.AddItemRequest{
				ShopperId: "alice", Sku: sku, Quantity: quantity, MaxQuantity: limit,
			})))
			return m.GetCart(), err
		}
		update := func(sku string, quantity int64) (*cartv1.Cart, error) {
			m, err := msgOf(client.UpdateItem(ctx, connect.NewRequest(&cartv1.UpdateItemRequest{
				ShopperId: "alice", Sku: sku, Quantity: quantity,
			})))
			return m.GetCart(), err
		}
		remove := func(sku string) (*cartv1.Cart, error) {
			m, err := msgOf(client.RemoveItem(ctx, connect.NewRequest(&cartv1.RemoveItemRequest{
				ShopperId: "alice", Sku: sku,
			})))
			return m.GetCart(), err
		}
		clear := func() (*cartv1.Cart, error) {
			m, err := msgOf(client.ClearCart(ctx, connect.NewRequest(&cartv1.ClearCartRequest{
				ShopperId: "alice",
			})))
			return m.GetCart(), err
		}
		get := func() (*cartv1.Cart, error) {
			m, err := msgOf(client.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{
				ShopperId: "alice",
			})))
			return m.GetCart(), err
		}

		// Each step runs on the cart the steps before it left.
		steps := []struct {
			name        string
			call        func() (*cartv1.Cart, error)
			wantLines   []*cartv1.CartLine
			wantVersion int64
			wantCode    connect.Code
			wantDetail  string // the PreconditionFailure violation type
		}{
			{name: "get_new_cart", call: get},
			{
				name:      "add_first_line",
				call:      func() (*cartv1.Cart, error) { return add("sku-a", 2, 0) },
				wantLines: []*cartv1.CartLine{line("sku-a", 2)}, wantVersion: 1,
			},
			{
				name:      "add_second_line",
				call:      func() (*cartv1.Cart, error) { return add("sku-b", 1, 0) },
				wantLines: []*cartv1.CartLine{line("sku-a", 2), line("sku-b", 1)}, wantVersion: 2,
			},
			{
				name:      "add_up_to_max",
				call:      func() (*cartv1.Cart, error) { return add("sku-a", 1, 3) },
				wantLines: []*cartv1.CartLine{line("sku-a", 3), line("sku-b", 1)}, wantVersion: 3,
			},
			{
				name:      "add_past_max",
				call:      func() (*cartv1.Cart, error) { return add("sku-a", 1, 3) },
				wantLines: []*cartv1.CartLine{line("sku-a", 3), line("sku-b", 1)}, wantVersion: 3,
				wantCode: connect.CodeFailedPrecondition, wantDetail: "QUANTITY_LIMIT",
			},
			{
				name:      "update_line",
				call:      func() (*cartv1.Cart, error) { return update("sku-b", 5) },
				wantLines: []*cartv1.CartLine{line("sku-a", 3), line("sku-b", 5)}, wantVersion: 4,
			},
			{
				name:      "update_to_same_quantity",
				call:      func() (*cartv1.Cart, error) { return update("sku-b", 5) },
				wantLines: []*cartv1.CartLine{line("sku-a", 3), line("sku-b", 5)}, wantVersion: 4,
			},
			{
				name:      "update_to_zero",
				call:      func() (*cartv1.Cart, error) { return update("sku-a", 0) },
				wantLines: []*cartv1.CartLine{line("sku-b", 5)}, wantVersion: 5,
			},
			{
				name:      "update_adds_missing_line",
				call:      func() (*cartv1.Cart, error) { return update("sku-c", 1) },
				wantLines: []*cartv1.CartLine{line("sku-b", 5), line("sku-c", 1)}, wantVersion: 6,
			},
			{
				name:      "remove_line",
				call:      func() (*cartv1.Cart, error) { return remove("sku-b") },
				wantLines: []*cartv1.CartLine{line("sku-c", 1)}, wantVersion: 7,
			},
			{
				name:      "remove_missing_line",
				call:      func() (*cartv1.Cart, error) { return remove("sku-b") },
				wantLines: []*cartv1.CartLine{line("sku-c", 1)}, wantVersion: 7,
			},
			{name: "clear", call: clear, wantVersion: 8},
			{name: "clear_empty_cart", call: clear, wantVersion: 8},
			{name: "get_cleared_cart", call: get, wantVersion: 8},
		}
		for _, step := range steps {
			got, err := step.call()
			if code := codeOf(err); code != step.wantCode {
				t.Fatalf("%s: error = %v, want code %v", step.name, err, step.wantCode)
			}
			if kind, _ := precondition(err); kind != step.wantDetail {
				t.Errorf("%s: precondition violation %q, want %q", step.name, kind, step.wantDetail)
			}
			if err != nil {
				if got, err = get(); err != nil {
					t.Fatalf("%s: GetCart: %v", step.name, err)
				}
			}
			want := &cartv1.Cart{
				ShopperId: "alice",
				Lines:     step.wantLines,
				Version:   step.wantVersion,
			}
			if diff := cmp.Diff(want, got, protocmp.Transform(),
				protocmp.IgnoreFields(&cartv1.Cart{}, "update_time")); diff != "" {
				t.Errorf("%s: cart mismatch (-want +got):\n%s", step.name, diff)
			}
			if (got.GetUpdateTime() == nil) != (step.wantVersion == 0) {
				t.Errorf("%s: update time %v at version %d", step.name, got.GetUpdateTime(),
					step.wantVersion)
			}
		}
	})
}

func TestAddItemLimitMessage(t *testing.T) {
	t.Parallel()
	client := newClient(t, protocols[0])
	add := func(quantity, limit int64) error {
		_, err := client.AddItem(t.Context(), connect.NewRequest(&cartv1.AddItemRequest{
			ShopperId: "alice", Sku: "sku-a", Quantity: quantity, MaxQuantity: limit,
		}))
		return err
	}
	if err := add(4, 0); err != nil {
		t.Fatalf("AddItem: %v", err)
	}

	err := add(3, 5)
	var connectErr *connect.Error
	if !errors.As(err, &connectErr) || connectErr.Code() != connect.CodeFailedPrecondition {
		t.Fatalf("AddItem past the limit: error = %v, want FailedPrecondition", err)
	}
	// The message names the line, what it holds and its limit.
	for _, want := range []string{`"sku-a"`, "holds 4", "at most 5"} {
		if !strings.Contains(connectErr.Message(), want) {
			t.Errorf("AddItem past the limit: message %q does not contain %q",
				connectErr.Message(), want)
		}
	}
	if kind, subject := precondition(err); kind != "QUANTITY_LIMIT" || subject != "sku-a" {
		t.Errorf("AddItem past the limit: violation %q of %q, want QUANTITY_LIMIT of sku-a",
			kind, subject)
	}
}

// fill adds lines to the shopper's cart and returns its version.
func fill(tb testing.TB, client cartv1connect.CartServiceClient, shopperID string,
	lines ...*cartv1.CartLine) int64 {
	tb.Helper()
	var version int64
	for _, l := range lines {
		res, err := client.AddItem(tb.Context(), connect.NewRequest(&cartv1.AddItemRequest{
			ShopperId: shopperID, Sku: l.GetSku(), Quantity: l.GetQuantity(),
		}))
		if err != nil {
			tb.Fatalf("AddItem(%q, %q): %v", shopperID, l.GetSku(), err)
		}
		version = res.Msg.GetCart().GetVersion()
	}
	return version
}

// placeOrder fills the shopper's cart with one unit of sku at 100 cents and
// places it as orderID.
func placeOrder(tb testing.TB, client cartv1connect.CartServiceClient,
	shopperID, orderID, sku string) *cartv1.Order {
	tb.Helper()
	version := fill(tb, client, shopperID, line(sku, 1))
	res, err := client.PlaceOrder(tb.Context(), connect.NewRequest(&cartv1.PlaceOrderRequest{
		ShopperId:   shopperID,
		OrderId:     orderID,
		CartVersion: version,
		Lines: []*cartv1.OrderLine{
			{Sku: sku, Name: "Product " + sku, UnitPrice: usd(100), Quantity: 1},
		},
	}))
	if err != nil {
		tb.Fatalf("PlaceOrder(%q, %q): %v", shopperID, orderID, err)
	}
	return res.Msg.GetOrder()
}

func TestPlaceOrder(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, client cartv1connect.CartServiceClient) {
		version := fill(t, client, "alice", line("sku-a", 2), line("sku-b", 1))
		priced := []*cartv1.OrderLine{
			{Sku: "sku-a", Name: "Ay", UnitPrice: usd(1999), Quantity: 2},
			{Sku: "sku-b", Name: "Bee", UnitPrice: usd(250), Quantity: 1},
		}
		eur := &commonv1.Money{CurrencyCode: "EUR", Amount: 250}
		place := func(orderID string, version int64,
			lines []*cartv1.OrderLine) (*cartv1.Order, error) {
			m, err := msgOf(client.PlaceOrder(t.Context(),
				connect.NewRequest(&cartv1.PlaceOrderRequest{
					ShopperId: "alice", OrderId: orderID, CartVersion: version, Lines: lines,
				})))
			return m.GetOrder(), err
		}

		// Refused orders first; none of them changes the cart.
		refused := []struct {
			name       string
			version    int64
			lines      []*cartv1.OrderLine
			wantCode   connect.Code
			wantDetail string
		}{
			{
				name: "cart_changed", version: version - 1, lines: priced,
				wantCode: connect.CodeFailedPrecondition, wantDetail: "CART_CHANGED",
			},
			{
				name: "lines_mismatch", version: version, lines: priced[:1],
				wantCode: connect.CodeFailedPrecondition, wantDetail: "LINES_MISMATCH",
			},
			{
				name: "duplicate_skus", version: version,
				lines:    []*cartv1.OrderLine{priced[0], priced[0]},
				wantCode: connect.CodeInvalidArgument,
			},
			{
				name: "mixed_currencies", version: version,
				lines: []*cartv1.OrderLine{
					priced[0],
					{Sku: "sku-b", Name: "Bee", UnitPrice: eur, Quantity: 1},
				},
				wantCode: connect.CodeInvalidArgument,
			},
		}
		for _, tc := range refused {
			_, err := place("order-1", tc.version, tc.lines)
			if code := codeOf(err); code != tc.wantCode {
				t.Errorf("PlaceOrder %s: error = %v, want code %v", tc.name, err, tc.wantCode)
			}
			if kind, _ := precondition(err); kind != tc.wantDetail {
				t.Errorf("PlaceOrder %s: violation %q, want %q", tc.name, kind, tc.wantDetail)
			}
		}
		_, err := place("order-1", version-1, priced)
		var connectErr *connect.Error
		wantMsg := "cart changed since it was priced; review it and check out again"
		if !errors.As(err, &connectErr) || connectErr.Message() != wantMsg {
			t.Errorf("PlaceOrder with an old version: error = %v, want message %q", err, wantMsg)
		}

		order, err := place("order-1", version, priced)
		if err != nil {
			t.Fatalf("PlaceOrder: %v", err)
		}
		want := &cartv1.Order{
			OrderId:   "order-1",
			ShopperId: "alice",
			Lines: []*cartv1.OrderLine{
				{Sku: "sku-a", Name: "Ay", UnitPrice: usd(1999), Quantity: 2, LineTotal: usd(3998)},
				{Sku: "sku-b", Name: "Bee", UnitPrice: usd(250), Quantity: 1, LineTotal: usd(250)},
			},
			Total:       usd(4248),
			Status:      cartv1.OrderStatus_ORDER_STATUS_PLACED,
			CartVersion: version,
		}
		if diff := cmp.Diff(want, order, protocmp.Transform(),
			protocmp.IgnoreFields(&cartv1.Order{}, "create_time")); diff != "" {
			t.Errorf("PlaceOrder mismatch (-want +got):\n%s", diff)
		}

		res, err := client.GetCart(t.Context(),
			connect.NewRequest(&cartv1.GetCartRequest{ShopperId: "alice"}))
		if err != nil {
			t.Fatalf("GetCart: %v", err)
		}
		if got := res.Msg.GetCart(); len(got.GetLines()) != 0 || got.GetVersion() != version+1 {
			t.Errorf("GetCart after PlaceOrder = %v, want empty at version %d", got, version+1)
		}

		// A retry returns the same order; the same id with other lines is
		// refused.
		again, err := place("order-1", version, priced)
		if err != nil {
			t.Fatalf("PlaceOrder retry: %v", err)
		}
		if diff := cmp.Diff(order, again, protocmp.Transform()); diff != "" {
			t.Errorf("PlaceOrder retry mismatch (-first +retry):\n%s", diff)
		}
		_, err = place("order-1", version, priced[1:])
		if code := codeOf(err); code != connect.CodeAlreadyExists {
			t.Errorf("PlaceOrder reusing an id: error = %v, want AlreadyExists", err)
		}

		got, err := client.GetOrder(t.Context(), connect.NewRequest(&cartv1.GetOrderRequest{
			ShopperId: "alice", OrderId: "order-1",
		}))
		if err != nil {
			t.Fatalf("GetOrder: %v", err)
		}
		if diff := cmp.Diff(order, got.Msg.GetOrder(), protocmp.Transform()); diff != "" {
			t.Errorf("GetOrder mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestOrdersArePrivate(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, client cartv1connect.CartServiceClient) {
		placeOrder(t, client, "alice", "order-a", "sku-a")

		tests := []struct {
			name    string
			shopper string
			orderID string
		}{
			{"other_shoppers_order", "bob", "order-a"},
			{"unknown_order", "alice", "order-x"},
		}
		for _, tc := range tests {
			_, err := client.GetOrder(t.Context(), connect.NewRequest(&cartv1.GetOrderRequest{
				ShopperId: tc.shopper, OrderId: tc.orderID,
			}))
			if code := codeOf(err); code != connect.CodeNotFound {
				t.Errorf("GetOrder %s: error = %v, want NotFound", tc.name, err)
			}
		}

		// Bob may not take over alice's order id either, and sees no orders.
		version := fill(t, client, "bob", line("sku-a", 1))
		_, err := client.PlaceOrder(t.Context(), connect.NewRequest(&cartv1.PlaceOrderRequest{
			ShopperId: "bob", OrderId: "order-a", CartVersion: version,
			Lines: []*cartv1.OrderLine{{Sku: "sku-a", UnitPrice: usd(100), Quantity: 1}},
		}))
		if code := codeOf(err); code != connect.CodeAlreadyExists {
			t.Errorf("PlaceOrder with another shopper's id: error = %v, want AlreadyExists", err)
		}
		res, err := client.ListOrders(t.Context(),
			connect.NewRequest(&cartv1.ListOrdersRequest{ShopperId: "bob"}))
		if err != nil {
			t.Fatalf("ListOrders: %v", err)
		}
		if n := len(res.Msg.GetOrders()); n != 0 {
			t.Errorf("ListOrders of bob = %d orders, want none", n)
		}
	})
}

func TestListOrders(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, client cartv1connect.CartServiceClient) {
		for i := range 5 {
			placeOrder(t, client, "alice", fmt.Sprintf("order-%d", i), fmt.Sprintf("sku-%d", i))
		}
		placeOrder(t, client, "bob", "order-bob", "sku-0")

		var (
			pages [][]string
			token string
		)
		for range 10 {
			res, err := client.ListOrders(t.Context(), connect.NewRequest(&cartv1.ListOrdersRequest{
				ShopperId: "alice", PageSize: 2, PageToken: token,
			}))
			if err != nil {
				t.Fatalf("ListOrders(page token %q): %v", token, err)
			}
			var ids []string
			for _, o := range res.Msg.GetOrders() {
				ids = append(ids, o.GetOrderId())
			}
			pages = append(pages, ids)
			if token = res.Msg.GetNextPageToken(); token == "" {
				break
			}
		}
		want := [][]string{{"order-4", "order-3"}, {"order-2", "order-1"}, {"order-0"}}
		if diff := cmp.Diff(want, pages); diff != "" {
			t.Errorf("ListOrders pages mismatch (-want +got):\n%s", diff)
		}

		_, err := client.ListOrders(t.Context(), connect.NewRequest(&cartv1.ListOrdersRequest{
			ShopperId: "alice", PageToken: "bogus",
		}))
		if code := codeOf(err); code != connect.CodeInvalidArgument {
			t.Errorf("ListOrders with a bad token: error = %v, want InvalidArgument", err)
		}
	})
}

func TestOpenNeedsAStore(t *testing.T) {
	t.Parallel()
	if svc, err := cart.Open(t.Context(), cart.Config{}); err == nil {
		svc.Close()
		t.Error("Open with neither DataDir nor DSN succeeded, want an error")
	}
}

// TestPostgres runs the service on PostgreSQL when TIENDA_TEST_POSTGRES_DSN
// names a server; the store's own tests cover the rest.
func TestPostgres(t *testing.T) {
	t.Parallel()
	client := serve(t, protocols[0], cart.Config{DSN: pgtest.NewDatabase(t)})
	placeOrder(t, client, "alice", "order-1", "sku-a")

	res, err := client.GetOrder(t.Context(), connect.NewRequest(&cartv1.GetOrderRequest{
		ShopperId: "alice", OrderId: "order-1",
	}))
	if err != nil {
		t.Fatalf("GetOrder: %v", err)
	}
	if got := res.Msg.GetOrder().GetTotal().GetAmount(); got != 100 {
		t.Errorf("GetOrder total = %d, want 100", got)
	}
}
