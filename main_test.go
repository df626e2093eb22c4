package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
)

// startTestApp runs all three parts in-process on free loopback ports, on a
// fresh data directory unless one is given, and stops them when the test
// ends. Logs go to t.Log.
func startTestApp(tb testing.TB, dataDir string) *app {
	tb.Helper()
	if dataDir == "" {
		dataDir = tb.TempDir()
	}
	cfg := defaults
	cfg.DataDir = dataDir
	cfg.GatewayAddr = "127.0.0.1:0"
	cfg.InventoryAddr = "127.0.0.1:0"
	cfg.CartAddr = "127.0.0.1:0"

	a, err := startApp(context.Background(), cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("startApp: %v", err)
	}
	tb.Cleanup(func() { stopTestApp(tb, a) })
	return a
}

func stopTestApp(tb testing.TB, a *app) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.shutdown(ctx); err != nil {
		tb.Errorf("shutdown: %v", err)
	}
}

// testLogger sends logs to tb.Log, where they show only for failed tests.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// h2cClient speaks cleartext HTTP/2, which gRPC needs.
func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

// clientProtocols are the ways a generated client can talk to tienda.
var clientProtocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{name: "connect_json", opts: []connect.ClientOption{connect.WithProtoJSON()}},
	{name: "connect_proto"},
	{name: "connect_get", opts: []connect.ClientOption{connect.WithHTTPGet()}},
	{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpc_web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
}

// shopper is a guest session seen through one client protocol.
type shopper struct {
	tb     testing.TB
	client shopv1connect.ShopServiceClient
	token  string
	id     string
}

func newShopper(tb testing.TB, a *app, opts ...connect.ClientOption) *shopper {
	tb.Helper()
	client := shopv1connect.NewShopServiceClient(h2cClient(), a.gatewayURL, opts...)
	res, err := client.CreateSession(context.Background(),
		connect.NewRequest(&shopv1.CreateSessionRequest{}))
	if err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	if res.Msg.GetToken() == "" || res.Msg.GetShopperId() == "" {
		tb.Fatalf("CreateSession returned %v, want a token and a shopper id", res.Msg)
	}
	return &shopper{tb: tb, client: client, token: res.Msg.GetToken(), id: res.Msg.GetShopperId()}
}

// add puts quantity units of sku in the shopper's cart.
func (s *shopper) add(ctx context.Context, sku string, quantity int64) (*shopv1.Cart, error) {
	res, err := s.client.AddToCart(ctx, authed(s, &shopv1.AddToCartRequest{Sku: sku, Quantity: quantity}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetCart(), nil
}

// order reads one of the shopper's orders.
func (s *shopper) order(ctx context.Context, orderID string) (*shopv1.Order, error) {
	res, err := s.client.GetOrder(ctx, authed(s, &shopv1.GetOrderRequest{OrderId: orderID}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetOrder(), nil
}

// authed wraps msg in a request that carries the shopper's token.
func authed[T any](s *shopper, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+s.token)
	return req
}

// pickProducts returns n products that have at least minStock available.
func pickProducts(tb testing.TB, s *shopper, n int, minStock int64) []*shopv1.Product {
	tb.Helper()
	var picked []*shopv1.Product
	token := ""
	for len(picked) < n {
		res, err := s.client.ListProducts(context.Background(),
			authed(s, &shopv1.ListProductsRequest{PageSize: 50, PageToken: token}))
		if err != nil {
			tb.Fatalf("ListProducts: %v", err)
		}
		for _, p := range res.Msg.GetProducts() {
			if p.GetAvailable() >= minStock && len(picked) < n {
				picked = append(picked, p)
			}
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(picked) < n {
		tb.Fatalf("catalog has %d products with %d in stock, want %d", len(picked), minStock, n)
	}
	return picked
}

func TestShopperJourney(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")

	for _, proto := range clientProtocols {
		t.Run(proto.name, func(t *testing.T) {
			s := newShopper(t, a, proto.opts...)
			ctx := t.Context()
			products := pickProducts(t, s, 2, 5)
			mug, other := products[0], products[1]

			got, err := s.client.GetProduct(ctx, authed(s, &shopv1.GetProductRequest{Sku: mug.GetSku()}))
			if err != nil {
				t.Fatalf("GetProduct(%s): %v", mug.GetSku(), err)
			}
			if got.Msg.GetProduct().GetName() != mug.GetName() {
				t.Errorf("GetProduct(%s).name = %q, want %q", mug.GetSku(), got.Msg.GetProduct().GetName(), mug.GetName())
			}
			if proto.name == "connect_get" {
				return // GET is for side-effect-free calls only
			}

			if _, err := s.add(ctx, mug.GetSku(), 2); err != nil {
				t.Fatalf("AddToCart(%s, 2): %v", mug.GetSku(), err)
			}
			if _, err := s.add(ctx, other.GetSku(), 1); err != nil {
				t.Fatalf("AddToCart(%s, 1): %v", other.GetSku(), err)
			}
			upd, err := s.client.UpdateCartItem(ctx,
				authed(s, &shopv1.UpdateCartItemRequest{Sku: mug.GetSku(), Quantity: 3}))
			if err != nil {
				t.Fatalf("UpdateCartItem(%s, 3): %v", mug.GetSku(), err)
			}
			if n := len(upd.Msg.GetCart().GetLines()); n != 2 {
				t.Fatalf("cart after update has %d lines, want 2", n)
			}
			_, err = s.client.RemoveFromCart(ctx, authed(s, &shopv1.RemoveFromCartRequest{Sku: other.GetSku()}))
			if err != nil {
				t.Fatalf("RemoveFromCart(%s): %v", other.GetSku(), err)
			}

			cart, err := s.client.GetCart(ctx, authed(s, &shopv1.GetCartRequest{}))
			if err != nil {
				t.Fatalf("GetCart: %v", err)
			}
			lines := cart.Msg.GetCart().GetLines()
			if len(lines) != 1 {
				t.Fatalf("GetCart has %d lines, want 1: %v", len(lines), cart.Msg)
			}
			line := lines[0]
			wantTotal := 3 * mug.GetPrice().GetAmount()
			if line.GetSku() != mug.GetSku() || line.GetName() != mug.GetName() || line.GetQuantity() != 3 ||
				line.GetUnitPrice().GetAmount() != mug.GetPrice().GetAmount() ||
				line.GetLineTotal().GetAmount() != wantTotal || !line.GetInStock() {
				t.Errorf("cart line = %v, want 3 × %s at %d in stock", line, mug.GetSku(), mug.GetPrice().GetAmount())
			}
			if got := cart.Msg.GetCart().GetTotal(); got.GetAmount() != wantTotal || got.GetCurrencyCode() != "USD" {
				t.Errorf("cart total = %v, want %d USD", got, wantTotal)
			}

			requestID := "journey-" + proto.name
			order, err := s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: requestID}))
			if err != nil {
				t.Fatalf("Checkout: %v", err)
			}
			o := order.Msg.GetOrder()
			if o.GetOrderId() == "" || o.GetTotal().GetAmount() != wantTotal ||
				o.GetStatus() != shopv1.OrderStatus_ORDER_STATUS_PLACED || o.GetCreatedAt() == nil {
				t.Errorf("Checkout order = %v, want a placed order of %d", o, wantTotal)
			}

			again, err := s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: requestID}))
			if err != nil {
				t.Fatalf("Checkout retry: %v", err)
			}
			if again.Msg.GetOrder().GetOrderId() != o.GetOrderId() {
				t.Errorf("retried Checkout gave order %s, want %s", again.Msg.GetOrder().GetOrderId(), o.GetOrderId())
			}

			empty, err := s.client.GetCart(ctx, authed(s, &shopv1.GetCartRequest{}))
			if err != nil {
				t.Fatalf("GetCart after checkout: %v", err)
			}
			if n := len(empty.Msg.GetCart().GetLines()); n != 0 {
				t.Errorf("cart after checkout has %d lines, want 0", n)
			}

			list, err := s.client.ListOrders(ctx, authed(s, &shopv1.ListOrdersRequest{}))
			if err != nil {
				t.Fatalf("ListOrders: %v", err)
			}
			if n := len(list.Msg.GetOrders()); n != 1 || list.Msg.GetOrders()[0].GetOrderId() != o.GetOrderId() {
				t.Errorf("ListOrders = %v, want just order %s", list.Msg.GetOrders(), o.GetOrderId())
			}
			read, err := s.client.GetOrder(ctx, authed(s, &shopv1.GetOrderRequest{OrderId: o.GetOrderId()}))
			if err != nil {
				t.Fatalf("GetOrder(%s): %v", o.GetOrderId(), err)
			}
			if read.Msg.GetOrder().GetTotal().GetAmount() != wantTotal {
				t.Errorf("GetOrder total = %v, want %d", read.Msg.GetOrder().GetTotal(), wantTotal)
			}
		})
	}
}

func TestCatalogPagingAndSearch(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")
	s := newShopper(t, a, connect.WithGRPC())
	ctx := t.Context()

	seen := map[string]bool{}
	categories := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("ListProducts never ran out of pages")
		}
		res, err := s.client.ListProducts(ctx, authed(s, &shopv1.ListProductsRequest{PageSize: 7, PageToken: token}))
		if err != nil {
			t.Fatalf("ListProducts(page %d): %v", pages, err)
		}
		if n := len(res.Msg.GetProducts()); n > 7 {
			t.Fatalf("page %d has %d products, want at most 7", pages, n)
		}
		for _, p := range res.Msg.GetProducts() {
			if seen[p.GetSku()] {
				t.Errorf("product %s listed twice", p.GetSku())
			}
			seen[p.GetSku()] = true
			categories[p.GetCategory()] = true
			if p.GetName() == "" || p.GetDescription() == "" || p.GetPrice().GetAmount() <= 0 {
				t.Errorf("product %s lacks a name, description or price: %v", p.GetSku(), p)
			}
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(seen) < 50 || len(categories) < 4 {
		t.Errorf("catalog has %d products in %d categories, want at least 50 in 4", len(seen), len(categories))
	}

	var someCategory string
	for c := range categories {
		someCategory = c
		break
	}
	res, err := s.client.ListProducts(ctx, authed(s, &shopv1.ListProductsRequest{Category: someCategory, PageSize: 100}))
	if err != nil {
		t.Fatalf("ListProducts(category %q): %v", someCategory, err)
	}
	if len(res.Msg.GetProducts()) == 0 {
		t.Errorf("category %q lists nothing", someCategory)
	}
	for _, p := range res.Msg.GetProducts() {
		if p.GetCategory() != someCategory {
			t.Errorf("category %q lists %s of category %q", someCategory, p.GetSku(), p.GetCategory())
		}
	}

	first := pickProducts(t, s, 1, 0)[0]
	word := strings.Fields(first.GetName())[0]
	query := &shopv1.ListProductsRequest{Query: strings.ToUpper(word), PageSize: 100}
	res, err = s.client.ListProducts(ctx, authed(s, query))
	if err != nil {
		t.Fatalf("ListProducts(query %q): %v", word, err)
	}
	found := false
	for _, p := range res.Msg.GetProducts() {
		found = found || p.GetSku() == first.GetSku()
	}
	if !found || len(res.Msg.GetProducts()) >= len(seen) {
		t.Errorf("query %q found %d products, want %s among fewer than all",
			word, len(res.Msg.GetProducts()), first.GetSku())
	}

	_, err = s.client.ListProducts(ctx, authed(s, &shopv1.ListProductsRequest{PageToken: "not-a-token"}))
	if got := connect.CodeOf(err); got != connect.CodeInvalidArgument {
		t.Errorf("ListProducts(garbage page token) code = %v, want InvalidArgument", got)
	}
}

func TestShopperErrors(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")
	alice := newShopper(t, a)
	bob := newShopper(t, a)
	product := pickProducts(t, alice, 1, 2)[0]

	// Bob places an order that Alice then tries to read.
	if _, err := bob.add(t.Context(), product.GetSku(), 1); err != nil {
		t.Fatalf("AddToCart: %v", err)
	}
	bobsOrder, err := bob.client.Checkout(t.Context(), authed(bob, &shopv1.CheckoutRequest{RequestId: "bob-1"}))
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}

	tests := []struct {
		name string
		call func(ctx context.Context) error
		want connect.Code
	}{
		{
			name: "unknown_product",
			call: func(ctx context.Context) error {
				_, err := alice.add(ctx, "NO-SUCH-SKU", 1)
				return err
			},
			want: connect.CodeNotFound,
		},
		{
			name: "zero_quantity",
			call: func(ctx context.Context) error {
				_, err := alice.client.AddToCart(ctx, authed(alice, &shopv1.AddToCartRequest{Sku: product.GetSku()}))
				return err
			},
			want: connect.CodeInvalidArgument,
		},
		{
			name: "negative_quantity",
			call: func(ctx context.Context) error {
				_, err := alice.client.UpdateCartItem(ctx,
					authed(alice, &shopv1.UpdateCartItemRequest{Sku: product.GetSku(), Quantity: -1}))
				return err
			},
			want: connect.CodeInvalidArgument,
		},
		{
			name: "empty_sku",
			call: func(ctx context.Context) error {
				_, err := alice.client.AddToCart(ctx, authed(alice, &shopv1.AddToCartRequest{Quantity: 1}))
				return err
			},
			want: connect.CodeInvalidArgument,
		},
		{
			// PostgreSQL refuses NUL in text; it must never get that far.
			name: "nul_in_sku",
			call: func(ctx context.Context) error {
				_, err := alice.add(ctx, "MUG\x00X", 1)
				return err
			},
			want: connect.CodeInvalidArgument,
		},
		{
			name: "nul_in_query",
			call: func(ctx context.Context) error {
				_, err := alice.client.ListProducts(ctx, authed(alice, &shopv1.ListProductsRequest{Query: "a\x00"}))
				return err
			},
			want: connect.CodeInvalidArgument,
		},
		{
			name: "oversized_page",
			call: func(ctx context.Context) error {
				_, err := alice.client.ListProducts(ctx, authed(alice, &shopv1.ListProductsRequest{PageSize: 5000}))
				return err
			},
			want: connect.CodeInvalidArgument,
		},
		{
			name: "beyond_stock",
			call: func(ctx context.Context) error {
				_, err := alice.add(ctx, product.GetSku(), product.GetAvailable()+1)
				return err
			},
			want: connect.CodeFailedPrecondition,
		},
		{
			name: "missing_token",
			call: func(ctx context.Context) error {
				_, err := alice.client.GetCart(ctx, connect.NewRequest(&shopv1.GetCartRequest{}))
				return err
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "forged_token",
			call: func(ctx context.Context) error {
				req := connect.NewRequest(&shopv1.GetCartRequest{})
				req.Header().Set("Authorization", "Bearer "+forge(alice.token, bob.id))
				_, err := alice.client.GetCart(ctx, req)
				return err
			},
			want: connect.CodeUnauthenticated,
		},
		{
			name: "other_shoppers_order",
			call: func(ctx context.Context) error {
				_, err := alice.order(ctx, bobsOrder.Msg.GetOrder().GetOrderId())
				return err
			},
			want: connect.CodeNotFound,
		},
		{
			name: "checkout_empty_cart",
			call: func(ctx context.Context) error {
				_, err := alice.client.Checkout(ctx, authed(alice, &shopv1.CheckoutRequest{RequestId: "alice-1"}))
				return err
			},
			want: connect.CodeFailedPrecondition,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t.Context())
			if got := connect.CodeOf(err); got != tc.want {
				t.Fatalf("code = %v, want %v (err: %v)", got, tc.want, err)
			}
			var ce *connect.Error
			if errors.As(err, &ce) && ce.Message() == "" {
				t.Errorf("error %v has no message for the shopper", err)
			}
		})
	}

	// A line holds at most 1000 units, whatever is in stock, and the
	// message says so rather than blaming the stock.
	stockProduct(t, inventoryAdmin(a), "BULK-NAILS", 5000)
	if _, err := alice.add(t.Context(), "BULK-NAILS", 1000); err != nil {
		t.Fatalf("AddToCart(1000): %v", err)
	}
	_, err = alice.add(t.Context(), "BULK-NAILS", 1)
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeFailedPrecondition ||
		!strings.Contains(cerr.Message(), "at most 1000") {
		t.Errorf("AddToCart past 1000 units: %v, want failed_precondition naming the limit", err)
	}
	if _, err := alice.client.RemoveFromCart(t.Context(),
		authed(alice, &shopv1.RemoveFromCartRequest{Sku: "BULK-NAILS"})); err != nil {
		t.Fatalf("RemoveFromCart: %v", err)
	}

	// Bob's order survived Alice's attempts, and so did Alice's empty cart.
	if _, err := bob.order(t.Context(), bobsOrder.Msg.GetOrder().GetOrderId()); err != nil {
		t.Errorf("Bob's GetOrder: %v", err)
	}
}

// forge returns token with its payload swapped for one naming shopperID,
// keeping the original signature: what an attacker would try.
func forge(token, shopperID string) string {
	if i := strings.LastIndex(token, "."); i > 0 {
		return "eyJzIjoi" + shopperID + "In0" + token[i:]
	}
	return token + "x"
}

// TestPostmanStyleJSON drives the gateway with plain JSON POSTs and no
// generated code, as Postman and curl do.
func TestPostmanStyleJSON(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")

	post := func(method, token, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
			a.gatewayURL+"/tienda.shop.v1.ShopService/"+method, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", method, err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("POST %s: body %q is not JSON: %v", method, raw, err)
		}
		return res.StatusCode, out
	}

	status, session := post("CreateSession", "", `{}`)
	token, _ := session["token"].(string)
	if status != http.StatusOK || token == "" || session["shopperId"] == "" {
		t.Fatalf("CreateSession = %d %v, want 200 with token and shopperId", status, session)
	}

	status, page := post("ListProducts", token, `{"page_size": 3}`)
	products, _ := page["products"].([]any)
	if status != http.StatusOK || len(products) != 3 || page["nextPageToken"] == "" {
		t.Fatalf("ListProducts = %d %v, want 3 products and a nextPageToken", status, page)
	}
	sku := products[0].(map[string]any)["sku"].(string)

	status, added := post("AddToCart", token, `{"sku": "`+sku+`", "quantity": 1}`)
	cart, _ := added["cart"].(map[string]any)
	if status != http.StatusOK || cart == nil || cart["total"] == nil {
		t.Fatalf("AddToCart = %d %v, want 200 with a cart and its total", status, added)
	}
	line := cart["lines"].([]any)[0].(map[string]any)
	for _, field := range []string{"sku", "name", "unitPrice", "quantity", "lineTotal", "inStock"} {
		if _, ok := line[field]; !ok {
			t.Errorf("cart line %v lacks %q", line, field)
		}
	}

	tests := []struct {
		name       string
		method     string
		token      string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"zero_quantity", "AddToCart", token, `{"sku": "` + sku + `", "quantity": 0}`, 400, "invalid_argument"},
		{"wrong_type", "AddToCart", token, `{"sku": 12, "quantity": "lots"}`, 400, "invalid_argument"},
		{"not_json", "AddToCart", token, `{"sku":`, 400, "invalid_argument"},
		{"no_token", "GetCart", "", `{}`, 401, "unauthenticated"},
		{"garbage_token", "GetCart", "abc.def", `{}`, 401, "unauthenticated"},
		{"unknown_sku", "GetProduct", token, `{"sku": "NOPE-404"}`, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.method, tc.token, tc.body)
			if status != tc.wantStatus || body["code"] != tc.wantCode {
				t.Errorf("POST %s %s = %d %v, want %d with code %q",
					tc.method, tc.body, status, body, tc.wantStatus, tc.wantCode)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Errorf("POST %s error has no message: %v", tc.method, body)
			}
		})
	}

	// After all those refusals the cart is exactly as it was.
	status, got := post("GetCart", token, `{}`)
	lines := got["cart"].(map[string]any)["lines"].([]any)
	if status != http.StatusOK || len(lines) != 1 {
		t.Errorf("GetCart after bad requests = %d %v, want the one line", status, got)
	}
}

// TestDataSurvivesRestart stops tienda and starts it again on the same data
// directory: the session, the cart, the orders and the stock are as they
// were.
func TestDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	first := startTestApp(t, dir)
	s := newShopper(t, first)
	products := pickProducts(t, s, 2, 3)
	ctx := t.Context()
	for _, p := range products {
		if _, err := s.add(ctx, p.GetSku(), 1); err != nil {
			t.Fatalf("AddToCart(%s): %v", p.GetSku(), err)
		}
	}
	order, err := s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: "before-restart"}))
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if _, err := s.add(ctx, products[0].GetSku(), 2); err != nil {
		t.Fatalf("AddToCart after checkout: %v", err)
	}
	stopTestApp(t, first)

	second := startTestApp(t, dir)
	s.client = shopv1connect.NewShopServiceClient(h2cClient(), second.gatewayURL)
	cart, err := s.client.GetCart(ctx, authed(s, &shopv1.GetCartRequest{}))
	if err != nil {
		t.Fatalf("GetCart after restart with the old token: %v", err)
	}
	if lines := cart.Msg.GetCart().GetLines(); len(lines) != 1 || lines[0].GetQuantity() != 2 {
		t.Errorf("cart after restart = %v, want 2 × %s", lines, products[0].GetSku())
	}
	if _, err := s.order(ctx, order.Msg.GetOrder().GetOrderId()); err != nil {
		t.Errorf("GetOrder after restart: %v", err)
	}
	for _, p := range products {
		got, err := s.client.GetProduct(ctx, authed(s, &shopv1.GetProductRequest{Sku: p.GetSku()}))
		if err != nil {
			t.Fatalf("GetProduct(%s): %v", p.GetSku(), err)
		}
		if want := p.GetAvailable() - 1; got.Msg.GetProduct().GetAvailable() != want {
			t.Errorf("%s available after restart = %d, want %d", p.GetSku(), got.Msg.GetProduct().GetAvailable(), want)
		}
	}
}

// TestReflectionAndHealth asks every part what grpcurl asks: which services
// it serves, what they look like, and whether they are healthy.
func TestReflectionAndHealth(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")

	tests := []struct {
		name    string
		url     string
		service string
	}{
		{name: "gateway", url: a.gatewayURL, service: shopv1connect.ShopServiceName},
		{name: "inventory", url: a.inventoryURL, service: "tienda.inventory.v1.InventoryService"},
		{name: "cart", url: a.cartURL, service: "tienda.cart.v1.CartService"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stream := grpcreflect.NewClient(h2cClient(), tc.url).NewStream(t.Context())
			defer stream.Close()
			names, err := stream.ListServices()
			if err != nil {
				t.Fatalf("ListServices: %v", err)
			}
			var listed []string
			for _, n := range names {
				listed = append(listed, string(n))
			}
			if !strings.Contains(strings.Join(listed, " "), tc.service) {
				t.Errorf("ListServices() = %v, want %s", listed, tc.service)
			}
			files, err := stream.FileContainingSymbol(protoreflectName(tc.service))
			if err != nil || len(files) == 0 {
				t.Errorf("FileContainingSymbol(%s) = %d files, %v", tc.service, len(files), err)
			}

			health := grpchealth.NewClient(h2cClient(), tc.url, connect.WithGRPC())
			for _, service := range []string{"", tc.service} {
				res, err := health.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
				if err != nil || res.Status != grpchealth.StatusServing {
					t.Errorf("health Check(%q) = %v, %v; want serving", service, res, err)
				}
			}
		})
	}
}

func protoreflectName(s string) protoreflect.FullName { return protoreflect.FullName(s) }

// TestStartFailureIsReported starts tienda on a port that is taken: start-up
// fails with an error that names the port, and what did start is stopped.
func TestStartFailureIsReported(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	cfg := defaults
	cfg.DataDir = t.TempDir()
	cfg.InventoryAddr, cfg.CartAddr = "127.0.0.1:0", taken.Addr().String()
	a, err := startApp(t.Context(), cfg, testLogger(t))
	if err == nil {
		stopTestApp(t, a)
		t.Fatal("startApp on a taken port succeeded")
	}
	if !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("startApp error %q does not name the taken address %s", err, taken.Addr())
	}
}

// TestWatchAvailability watches a product through the gateway while another
// shopper buys it: the stream shows the stock now, then the change, and
// ends with the caller's deadline.
func TestWatchAvailability(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")
	stockProduct(t, inventoryAdmin(a), "WATCH-CUP", 10)
	watcher, buyer := newShopper(t, a, connect.WithGRPC()), newShopper(t, a)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := watcher.client.WatchAvailability(ctx,
		authed(watcher, &shopv1.WatchAvailabilityRequest{Skus: []string{"WATCH-CUP"}}))
	if err != nil {
		t.Fatalf("WatchAvailability: %v", err)
	}
	defer stream.Close()
	next := func() int64 {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("stream ended early: %v", stream.Err())
		}
		return stream.Msg().GetAvailable()
	}
	if got := next(); got != 10 {
		t.Fatalf("first message: available %d, want 10", got)
	}

	if _, err := buyer.add(t.Context(), "WATCH-CUP", 3); err != nil {
		t.Fatalf("AddToCart: %v", err)
	}
	_, err = buyer.client.Checkout(t.Context(), authed(buyer, &shopv1.CheckoutRequest{RequestId: "w1"}))
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	// The reservation and its commit may arrive as one change or two.
	got := next()
	for got != 7 {
		got = next()
	}

	cancel()
	for stream.Receive() {
	}
	if code := connect.CodeOf(stream.Err()); code != connect.CodeCanceled && code != connect.CodeDeadlineExceeded {
		t.Errorf("stream after the caller left ended with %v", stream.Err())
	}
}

// TestFullCartSaysSo fills a cart to its limit of distinct products: the
// next product is refused with a message about the cart, not the stock.
func TestFullCartSaysSo(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")
	inv := inventoryAdmin(a)
	s := newShopper(t, a)
	const lines = 100 // the cart service's limit
	for i := range lines + 1 {
		stockProduct(t, inv, fmt.Sprintf("FILL-%03d", i), 10)
	}
	for i := range lines {
		if _, err := s.add(t.Context(), fmt.Sprintf("FILL-%03d", i), 1); err != nil {
			t.Fatalf("AddToCart(line %d): %v", i+1, err)
		}
	}
	_, err := s.add(t.Context(), fmt.Sprintf("FILL-%03d", lines), 1)
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeFailedPrecondition ||
		!strings.Contains(cerr.Message(), "at most 100 different products") {
		t.Errorf("AddToCart(line %d): %v, want failed_precondition about a full cart", lines+1, err)
	}
	cart, err := s.client.GetCart(t.Context(), authed(s, &shopv1.GetCartRequest{}))
	if err != nil || len(cart.Msg.GetCart().GetLines()) != lines {
		t.Errorf("GetCart of a full cart: %v, want %d lines", err, lines)
	}
}
