package gateway

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/internal/rpcserver"
)

func TestProducts(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := newSession(t, env.client(t, p))

			list, err := s.shop.ListProducts(t.Context(), req(s, &shopv1.ListProductsRequest{
				Category: "kitchen",
			}))
			if err != nil {
				t.Fatalf("ListProducts: %v", err)
			}
			mug := &shopv1.Product{
				Sku:       skuMug,
				Name:      "Enamel mug",
				Category:  "kitchen",
				Price:     usd(1200),
				Available: 5,
			}
			want := &shopv1.ListProductsResponse{Products: []*shopv1.Product{mug}}
			if diff := cmp.Diff(want, list.Msg, protocmp.Transform()); diff != "" {
				t.Errorf("ListProducts(kitchen) mismatch (-want +got):\n%s", diff)
			}

			got, err := s.shop.GetProduct(t.Context(), req(s, &shopv1.GetProductRequest{Sku: skuMug}))
			if err != nil {
				t.Fatalf("GetProduct: %v", err)
			}
			if diff := cmp.Diff(mug, got.Msg.GetProduct(), protocmp.Transform()); diff != "" {
				t.Errorf("GetProduct(%s) mismatch (-want +got):\n%s", skuMug, diff)
			}

			_, err = s.shop.GetProduct(t.Context(), req(s, &shopv1.GetProductRequest{Sku: "NOPE-1"}))
			checkCode(t, "GetProduct(NOPE-1)", err, connect.CodeNotFound, `"NOPE-1"`)
		})
	}
}

func TestGetCartPricesLinesInOneBatch(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			s := newSession(t, env.client(t, p))
			env.cart.setLines(s.shopperID,
				&cartv1.CartLine{Sku: skuMug, Quantity: 2},
				&cartv1.CartLine{Sku: "GONE-1", Quantity: 1},
				&cartv1.CartLine{Sku: skuTee, Quantity: 3},
			)

			res, err := s.shop.GetCart(t.Context(), req(s, &shopv1.GetCartRequest{}))
			if err != nil {
				t.Fatalf("GetCart: %v", err)
			}
			want := &shopv1.Cart{
				Lines: []*shopv1.CartLine{
					{
						Sku:       skuMug,
						Name:      "Enamel mug",
						UnitPrice: usd(1200),
						Quantity:  2,
						LineTotal: usd(2400),
						InStock:   true,
						Available: 5,
					},
					{Sku: "GONE-1", Name: "GONE-1", Quantity: 1},
					{
						Sku:       skuTee,
						Name:      "Organic tee",
						UnitPrice: usd(2500),
						Quantity:  3,
						LineTotal: usd(7500),
						InStock:   false,
						Available: 2,
					},
				},
				Total:   usd(9900),
				Version: 1,
			}
			if diff := cmp.Diff(want, res.Msg.GetCart(), protocmp.Transform()); diff != "" {
				t.Errorf("GetCart mismatch (-want +got):\n%s", diff)
			}
			if n := env.inv.count("BatchGetProducts"); n != 1 {
				t.Errorf("GetCart made %d BatchGetProducts calls, want 1", n)
			}
			if n := env.inv.count("GetProduct"); n != 0 {
				t.Errorf("GetCart made %d GetProduct calls, want 0", n)
			}
		})
	}
}

func TestGetCartEmpty(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	s := newSession(t, env.client(t, protocols[0]))
	res, err := s.shop.GetCart(t.Context(), req(s, &shopv1.GetCartRequest{}))
	if err != nil {
		t.Fatalf("GetCart: %v", err)
	}
	want := &shopv1.Cart{Total: &commonv1.Money{CurrencyCode: EmptyCartCurrency}}
	if diff := cmp.Diff(want, res.Msg.GetCart(), protocmp.Transform()); diff != "" {
		t.Errorf("GetCart mismatch (-want +got):\n%s", diff)
	}
	if n := env.inv.count("BatchGetProducts"); n != 0 {
		t.Errorf("GetCart of an empty cart made %d BatchGetProducts calls, want 0", n)
	}
}

func TestAddToCart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		before    []*cartv1.CartLine // already in the cart
		sku       string
		quantity  int64
		wantLines []*cartv1.CartLine // in the cart service afterwards
		wantCode  connect.Code
		wantMsg   string
	}{
		{
			name:      "new_line",
			sku:       skuMug,
			quantity:  2,
			wantLines: []*cartv1.CartLine{{Sku: skuMug, Quantity: 2}},
		},
		{
			name:      "all_that_is_available",
			before:    []*cartv1.CartLine{{Sku: skuMug, Quantity: 3}},
			sku:       skuMug,
			quantity:  2,
			wantLines: []*cartv1.CartLine{{Sku: skuMug, Quantity: 5}},
		},
		{
			name:     "more_than_available",
			sku:      skuMug,
			quantity: 6,
			wantCode: connect.CodeFailedPrecondition,
			wantMsg:  "only 5 left of " + skuMug,
		},
		{
			name:      "more_than_available_with_the_line",
			before:    []*cartv1.CartLine{{Sku: skuMug, Quantity: 4}},
			sku:       skuMug,
			quantity:  2,
			wantLines: []*cartv1.CartLine{{Sku: skuMug, Quantity: 4}},
			wantCode:  connect.CodeFailedPrecondition,
			wantMsg:   "only 5 left of " + skuMug,
		},
		{
			name:     "out_of_stock",
			sku:      skuPoster,
			quantity: 1,
			wantCode: connect.CodeFailedPrecondition,
			wantMsg:  skuPoster + " is out of stock",
		},
		{
			name:     "unknown_sku",
			sku:      "NOPE-1",
			quantity: 1,
			wantCode: connect.CodeNotFound,
			wantMsg:  `"NOPE-1"`,
		},
	}
	for _, p := range protocols {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				env := newEnv(t)
				s := newSession(t, env.client(t, p))
				if tc.before != nil {
					env.cart.setLines(s.shopperID, tc.before...)
				}

				res, err := s.shop.AddToCart(t.Context(), req(s, &shopv1.AddToCartRequest{
					Sku:      tc.sku,
					Quantity: tc.quantity,
				}))
				if tc.wantCode != 0 {
					checkCode(t, "AddToCart", err, tc.wantCode, tc.wantMsg)
				} else if err != nil {
					t.Fatalf("AddToCart: %v", err)
				} else if got := res.Msg.GetCart().GetLines(); len(got) != len(tc.wantLines) {
					t.Errorf("AddToCart: cart has %d lines, want %d", len(got), len(tc.wantLines))
				}
				got := env.cart.cart(s.shopperID).GetLines()
				if diff := cmp.Diff(tc.wantLines, got, protocmp.Transform()); diff != "" {
					t.Errorf("cart lines after AddToCart mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestUpdateAndRemoveCartItems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		call      func(context.Context, *session) error
		wantLines []*cartv1.CartLine
		wantCode  connect.Code
		wantMsg   string
	}{
		{
			name:      "update_quantity",
			call:      update(skuMug, 4),
			wantLines: []*cartv1.CartLine{{Sku: skuMug, Quantity: 4}, {Sku: skuTee, Quantity: 1}},
		},
		{
			name:      "update_to_zero_removes",
			call:      update(skuMug, 0),
			wantLines: []*cartv1.CartLine{{Sku: skuTee, Quantity: 1}},
		},
		{
			name:      "update_beyond_available",
			call:      update(skuTee, 3),
			wantLines: []*cartv1.CartLine{{Sku: skuMug, Quantity: 1}, {Sku: skuTee, Quantity: 1}},
			wantCode:  connect.CodeFailedPrecondition,
			wantMsg:   "only 2 left of " + skuTee,
		},
		{
			name:      "update_unknown_sku",
			call:      update("NOPE-1", 1),
			wantLines: []*cartv1.CartLine{{Sku: skuMug, Quantity: 1}, {Sku: skuTee, Quantity: 1}},
			wantCode:  connect.CodeNotFound,
			wantMsg:   "NOPE-1",
		},
		{
			name: "remove",
			call: func(ctx context.Context, s *session) error {
				_, err := s.shop.RemoveFromCart(ctx, req(s, &shopv1.RemoveFromCartRequest{Sku: skuTee}))
				return err
			},
			wantLines: []*cartv1.CartLine{{Sku: skuMug, Quantity: 1}},
		},
	}
	for _, p := range protocols {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				env := newEnv(t)
				s := newSession(t, env.client(t, p))
				env.cart.setLines(s.shopperID,
					&cartv1.CartLine{Sku: skuMug, Quantity: 1},
					&cartv1.CartLine{Sku: skuTee, Quantity: 1},
				)

				err := tc.call(t.Context(), s)
				if tc.wantCode != 0 {
					checkCode(t, tc.name, err, tc.wantCode, tc.wantMsg)
				} else if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				got := env.cart.cart(s.shopperID).GetLines()
				if diff := cmp.Diff(tc.wantLines, got, protocmp.Transform()); diff != "" {
					t.Errorf("cart lines mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func update(sku string, quantity int64) func(context.Context, *session) error {
	return func(ctx context.Context, s *session) error {
		_, err := s.shop.UpdateCartItem(ctx, req(s, &shopv1.UpdateCartItemRequest{
			Sku:      sku,
			Quantity: quantity,
		}))
		return err
	}
}

func TestWatchAvailability(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			s := newSession(t, env.client(t, p))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()

			stream, err := s.shop.WatchAvailability(ctx, req(s, &shopv1.WatchAvailabilityRequest{
				Skus: []string{skuMug, skuTee},
			}))
			if err != nil {
				t.Fatalf("WatchAvailability: %v", err)
			}
			defer stream.Close()
			receive := func(want *shopv1.WatchAvailabilityResponse) {
				t.Helper()
				if !stream.Receive() {
					t.Fatalf("WatchAvailability: stream ended: %v", stream.Err())
				}
				if diff := cmp.Diff(want, stream.Msg(), protocmp.Transform()); diff != "" {
					t.Errorf("WatchAvailability message mismatch (-want +got):\n%s", diff)
				}
			}
			receive(&shopv1.WatchAvailabilityResponse{Sku: skuMug, Available: 5})
			receive(&shopv1.WatchAvailabilityResponse{Sku: skuTee, Available: 2})

			// The inventory watch is subscribed once it has sent the above.
			env.inv.setAvailable(skuPoster, 7) // not watched
			env.inv.setAvailable(skuTee, 1)
			receive(&shopv1.WatchAvailabilityResponse{Sku: skuTee, Available: 1})

			// A client that goes away ends the inventory's stream too.
			cancel()
			select {
			case <-env.inv.watchEnded:
			case <-time.After(10 * time.Second):
				t.Fatal("inventory's WatchStock still runs after the client went away")
			}
		})
	}
}

func TestInventoryDown(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.invSrv.Close()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := newSession(t, env.client(t, p))
			// A deadline far above the retries' backoff: Unavailable must come
			// first.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			_, err := s.shop.ListProducts(ctx, req(s, &shopv1.ListProductsRequest{}))
			checkCode(t, "ListProducts", err, connect.CodeUnavailable, "inventory is unavailable")
			_, err = s.shop.AddToCart(ctx, req(s, &shopv1.AddToCartRequest{Sku: skuMug, Quantity: 1}))
			checkCode(t, "AddToCart", err, connect.CodeUnavailable, "inventory is unavailable")

			stream, err := s.shop.WatchAvailability(ctx, req(s, &shopv1.WatchAvailabilityRequest{
				Skus: []string{skuMug},
			}))
			if err == nil {
				defer stream.Close()
				for stream.Receive() {
				}
				err = stream.Err()
			}
			checkCode(t, "WatchAvailability", err, connect.CodeUnavailable, "inventory is unavailable")
		})
	}
}

func TestInventoryHangs(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withInventory(hangingInventory{}))
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := newSession(t, env.client(t, p))
			env.cart.setLines(s.shopperID, &cartv1.CartLine{Sku: skuMug, Quantity: 1})
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()

			_, err := s.shop.GetProduct(ctx, req(s, &shopv1.GetProductRequest{Sku: skuMug}))
			checkCode(t, "GetProduct", err, connect.CodeDeadlineExceeded, "")

			ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err = s.shop.GetCart(ctx, req(s, &shopv1.GetCartRequest{}))
			checkCode(t, "GetCart", err, connect.CodeDeadlineExceeded, "")
		})
	}
}

func TestServedWithRPCServerOptions(t *testing.T) {
	t.Parallel()
	srv := rpcserver.New(rpcserver.Config{Name: "gateway", Logger: slog.New(slog.DiscardHandler)})
	env := newEnv(t, withHandlerOptions(srv.HandlerOptions()...))
	s := newSession(t, env.client(t, protocols[0]))

	// The caller's request id reaches the services.
	r := req(s, &shopv1.GetProductRequest{Sku: skuMug})
	r.Header().Set(rpcserver.RequestIDHeader, "trace-1")
	if _, err := s.shop.GetProduct(t.Context(), r); err != nil {
		t.Fatalf("GetProduct: %v", err)
	}
	if diff := cmp.Diff([]string{"trace-1"}, env.inv.seenRequestIDs()); diff != "" {
		t.Errorf("request ids seen by inventory mismatch (-want +got):\n%s", diff)
	}

	// The gateway's own errors pass the error boundary unchanged.
	_, err := s.shop.AddToCart(t.Context(), req(s, &shopv1.AddToCartRequest{
		Sku:      skuMug,
		Quantity: 9,
	}))
	checkCode(t, "AddToCart", err, connect.CodeFailedPrecondition, "only 5 left of "+skuMug)
	env.invSrv.Close()
	_, err = s.shop.GetProduct(t.Context(), req(s, &shopv1.GetProductRequest{Sku: skuMug}))
	checkCode(t, "GetProduct", err, connect.CodeUnavailable, "inventory is unavailable")
}

// TestWatchesPerShopperAreLimited opens one stream more than a shopper may:
// it is refused with ResourceExhausted, and closing one makes room again.
func TestWatchesPerShopperAreLimited(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	s := newSession(t, env.client(t, protocols[0]))
	open := func(ctx context.Context) error { return openWatch(ctx, s) }

	cancels := make([]context.CancelFunc, 0, MaxWatchesPerShopper)
	for i := range MaxWatchesPerShopper {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if err := open(ctx); err != nil {
			t.Fatalf("watch %d: %v", i+1, err)
		}
		cancels = append(cancels, cancel)
	}
	err := open(t.Context())
	if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
		t.Fatalf("watch %d: %v, want ResourceExhausted", MaxWatchesPerShopper+1, err)
	}

	// Another shopper is not affected.
	other := newSession(t, env.client(t, protocols[0]))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := openWatch(ctx, other); err != nil {
		t.Fatalf("another shopper's watch: %v", err)
	}

	cancels[0]()
	<-env.inv.watchEnded // the gateway let go of the closed stream
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := open(t.Context())
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("watch after closing one: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // the release runs as the handler returns
	}
}

// openWatch opens a watch of one product for s and waits for its first
// message, by which time the gateway has counted it.
func openWatch(ctx context.Context, s *session) error {
	stream, err := s.shop.WatchAvailability(ctx, req(s, &shopv1.WatchAvailabilityRequest{
		Skus: []string{skuMug},
	}))
	if err != nil {
		return err
	}
	if !stream.Receive() {
		return stream.Err()
	}
	return nil
}
