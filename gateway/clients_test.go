package gateway

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	"github.com/tienda/tienda/internal/rpcserver"
)

func unavailable() error {
	return connect.NewError(connect.CodeUnavailable, errors.New("restarting"))
}

// downstreams are the gateway's clients of both services.
type downstreams struct {
	inv  inventoryv1connect.InventoryServiceClient
	cart cartv1connect.CartServiceClient
}

func TestClientsRetryOnlyIdempotentCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		method    string
		failures  int
		call      func(context.Context, downstreams) error
		wantCalls int
		wantErr   bool
	}{
		{
			name:     "no_side_effects_recovers",
			method:   "GetProduct",
			failures: 2,
			call: func(ctx context.Context, d downstreams) error {
				_, err := d.inv.GetProduct(ctx, connect.NewRequest(
					&inventoryv1.GetProductRequest{Sku: skuMug}))
				return err
			},
			wantCalls: 3,
		},
		{
			name:     "idempotent_gives_up",
			method:   "ReleaseReservation",
			failures: 5,
			call: func(ctx context.Context, d downstreams) error {
				_, err := d.inv.ReleaseReservation(ctx, connect.NewRequest(
					&inventoryv1.ReleaseReservationRequest{ReservationId: "ord_x"}))
				return err
			},
			wantCalls: retryAttempts,
			wantErr:   true,
		},
		{
			name:     "adjust_stock_not_retried",
			method:   "AdjustStock",
			failures: 1,
			call: func(ctx context.Context, d downstreams) error {
				_, err := d.inv.AdjustStock(ctx, connect.NewRequest(
					&inventoryv1.AdjustStockRequest{Sku: skuMug, Delta: 1}))
				return err
			},
			wantCalls: 1,
			wantErr:   true,
		},
		{
			name:     "add_item_not_retried",
			method:   "AddItem",
			failures: 1,
			call: func(ctx context.Context, d downstreams) error {
				_, err := d.cart.AddItem(ctx, connect.NewRequest(
					&cartv1.AddItemRequest{ShopperId: "shp_a", Sku: skuMug, Quantity: 1}))
				return err
			},
			wantCalls: 1,
			wantErr:   true,
		},
		{
			name:     "cart_idempotent_recovers",
			method:   "GetCart",
			failures: 1,
			call: func(ctx context.Context, d downstreams) error {
				_, err := d.cart.GetCart(ctx, connect.NewRequest(
					&cartv1.GetCartRequest{ShopperId: "shp_a"}))
				return err
			},
			wantCalls: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inv, cart := newFakeInventory(), newFakeCart()
			errs := make([]error, tc.failures)
			for i := range errs {
				errs[i] = unavailable()
			}
			inv.failNext(tc.method, errs...)
			cart.failNext(tc.method, errs...)

			err := tc.call(t.Context(), startClients(t, inv, cart))
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("%s: error = %v, want error: %t", tc.method, err, tc.wantErr)
			}
			if tc.wantErr && connect.CodeOf(err) != connect.CodeUnavailable {
				t.Errorf("%s: error = %v, want Unavailable", tc.method, err)
			}
			if n := inv.count(tc.method) + cart.count(tc.method); n != tc.wantCalls {
				t.Errorf("%s: service got %d calls, want %d", tc.method, n, tc.wantCalls)
			}
		})
	}
}

func TestClientsPropagateRequestID(t *testing.T) {
	t.Parallel()
	inv, cart := newFakeInventory(), newFakeCart()
	d := startClients(t, inv, cart)
	ctx := rpcserver.WithRequestID(t.Context(), "req-abc")

	_, err := d.inv.GetProduct(ctx, connect.NewRequest(&inventoryv1.GetProductRequest{Sku: skuMug}))
	if err != nil {
		t.Fatalf("GetProduct: %v", err)
	}
	stream, err := d.inv.WatchStock(ctx, connect.NewRequest(&inventoryv1.WatchStockRequest{
		Skus: []string{skuMug},
	}))
	if err != nil {
		t.Fatalf("WatchStock: %v", err)
	}
	if !stream.Receive() {
		t.Fatalf("WatchStock: %v", stream.Err())
	}
	stream.Close()
	_, err = d.cart.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{ShopperId: "shp_a"}))
	if err != nil {
		t.Fatalf("GetCart: %v", err)
	}

	want := []string{"req-abc", "req-abc"}
	if diff := cmp.Diff(want, inv.seenRequestIDs()); diff != "" {
		t.Errorf("inventory request ids mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:1], cart.seenRequestIDs()); diff != "" {
		t.Errorf("cart request ids mismatch (-want +got):\n%s", diff)
	}
}

// startClients serves inv and cart and returns clients of them.
func startClients(t testing.TB, inv *fakeInventory, cart *fakeCart) downstreams {
	t.Helper()
	invSrv := httptest.NewServer(mount(inventoryv1connect.NewInventoryServiceHandler(inv)))
	t.Cleanup(invSrv.Close)
	cartSrv := httptest.NewServer(mount(cartv1connect.NewCartServiceHandler(cart)))
	t.Cleanup(cartSrv.Close)
	return downstreams{
		inv:  NewInventoryClient(invSrv.Client(), invSrv.URL),
		cart: NewCartClient(cartSrv.Client(), cartSrv.URL),
	}
}

func TestDownstreamErrorsReachShoppersSafely(t *testing.T) {
	t.Parallel()
	wire := func(code connect.Code, msg string) error {
		// An error decoded from a response, as a client sees what a
		// service sent.
		return connect.NewWireError(code, errors.New(msg))
	}
	tests := []struct {
		name      string
		err       error
		wantCode  connect.Code
		wantMsg   string
		isConnect bool
	}{
		{
			name:      "service_answer_kept",
			err:       wire(connect.CodeNotFound, "no product X"),
			wantCode:  connect.CodeNotFound,
			wantMsg:   "no product X",
			isConnect: true,
		},
		{
			name:      "refused_connection",
			err:       connect.NewError(connect.CodeUnavailable, errors.New("dial tcp 127.0.0.1:1")),
			wantCode:  connect.CodeUnavailable,
			wantMsg:   "cart is unavailable",
			isConnect: true,
		},
		{
			name:      "reset_stream",
			err:       connect.NewError(connect.CodeCanceled, errors.New("stream reset")),
			wantCode:  connect.CodeUnavailable,
			wantMsg:   "cart is unavailable",
			isConnect: true,
		},
		{
			name:      "slow_service",
			err:       connect.NewError(connect.CodeDeadlineExceeded, errors.New("timeout")),
			wantCode:  connect.CodeDeadlineExceeded,
			wantMsg:   "cart did not answer in time",
			isConnect: true,
		},
		{
			name:      "answer_cut_off",
			err:       connect.NewError(connect.CodeUnimplemented, errors.New("404 Not Found")),
			wantCode:  connect.CodeUnavailable,
			wantMsg:   "cart is unavailable",
			isConnect: true,
		},
		{
			name:      "not_a_call_error",
			err:       errors.New("marshal order: bad utf-8"),
			isConnect: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := downstream("cart", tc.err)
			var cerr *connect.Error
			if isConnect := errors.As(got, &cerr); isConnect != tc.isConnect {
				t.Fatalf("downstream(%v) = %T %v, want a *connect.Error: %v", tc.err, got, got, tc.isConnect)
			}
			if !tc.isConnect {
				return // the error boundary turns it into a generic Internal
			}
			if cerr.Code() != tc.wantCode || cerr.Message() != tc.wantMsg {
				t.Errorf("downstream(%v) = %v, want %v %q", tc.err, cerr, tc.wantCode, tc.wantMsg)
			}
		})
	}
}
