package gateway

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
)

// stock is what the inventory holds of a product.
type stock struct {
	Available, Reserved, Sold int64
}

func stockOf(t testing.TB, inv *fakeInventory, sku string) stock {
	t.Helper()
	p := inv.product(sku)
	return stock{Available: p.GetAvailable(), Reserved: p.GetReserved(), Sold: p.GetSold()}
}

func TestCheckout(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			s := newSession(t, env.client(t, p))
			s.addToCart(t, skuMug, 2)
			s.addToCart(t, skuTee, 1)

			order, err := s.checkout(t, "req-1")
			if err != nil {
				t.Fatalf("Checkout: %v", err)
			}
			want := &shopv1.Order{
				OrderId: env.gw.orderID(s.shopperID, "req-1"),
				Lines: []*shopv1.OrderLine{
					{
						Sku:       skuMug,
						Name:      "Enamel mug",
						UnitPrice: usd(1200),
						Quantity:  2,
						LineTotal: usd(2400),
					},
					{
						Sku:       skuTee,
						Name:      "Organic tee",
						UnitPrice: usd(2500),
						Quantity:  1,
						LineTotal: usd(2500),
					},
				},
				Total:  usd(4900),
				Status: shopv1.OrderStatus_ORDER_STATUS_PLACED,
			}
			if diff := cmp.Diff(want, order, protocmp.Transform()); diff != "" {
				t.Errorf("Checkout mismatch (-want +got):\n%s", diff)
			}
			wantStock := map[string]stock{
				skuMug: {Available: 3, Sold: 2},
				skuTee: {Available: 1, Sold: 1},
			}
			checkStock(t, env.inv, wantStock)
			if lines := env.cart.cart(s.shopperID).GetLines(); len(lines) != 0 {
				t.Errorf("cart after Checkout holds %v, want nothing", lines)
			}

			// A retry, as after a lost answer, returns the same order and
			// neither holds nor sells more stock.
			again, err := s.checkout(t, "req-1")
			if err != nil {
				t.Fatalf("Checkout again: %v", err)
			}
			if diff := cmp.Diff(want, again, protocmp.Transform()); diff != "" {
				t.Errorf("Checkout again mismatch (-want +got):\n%s", diff)
			}
			if n := env.inv.count("ReserveStock"); n != 1 {
				t.Errorf("ReserveStock called %d times, want 1", n)
			}
			checkStock(t, env.inv, wantStock)

			got, err := s.shop.GetOrder(t.Context(), req(s, &shopv1.GetOrderRequest{
				OrderId: want.OrderId,
			}))
			if err != nil {
				t.Fatalf("GetOrder: %v", err)
			}
			if diff := cmp.Diff(want, got.Msg.GetOrder(), protocmp.Transform()); diff != "" {
				t.Errorf("GetOrder mismatch (-want +got):\n%s", diff)
			}
			list, err := s.shop.ListOrders(t.Context(), req(s, &shopv1.ListOrdersRequest{}))
			if err != nil {
				t.Fatalf("ListOrders: %v", err)
			}
			wantList := &shopv1.ListOrdersResponse{Orders: []*shopv1.Order{want}}
			if diff := cmp.Diff(wantList, list.Msg, protocmp.Transform()); diff != "" {
				t.Errorf("ListOrders mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func checkStock(t testing.TB, inv *fakeInventory, want map[string]stock) {
	t.Helper()
	got := make(map[string]stock)
	for sku := range want {
		got[sku] = stockOf(t, inv, sku)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stock mismatch (-want +got):\n%s", diff)
	}
}

func TestCheckoutRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(testing.TB, *testEnv, *session)
		wantCode connect.Code
		wantMsg  string
	}{
		{
			name:     "empty_cart",
			setup:    func(testing.TB, *testEnv, *session) {},
			wantCode: connect.CodeFailedPrecondition,
			wantMsg:  "cart is empty",
		},
		{
			name: "request_id_reused_for_another_cart",
			setup: func(t testing.TB, env *testEnv, s *session) {
				s.addToCart(t, skuMug, 1)
				if _, err := s.checkout(t, "req-1"); err != nil {
					t.Fatalf("first Checkout: %v", err)
				}
				s.addToCart(t, skuTee, 1)
			},
			wantCode: connect.CodeAlreadyExists,
			wantMsg:  `request_id "req-1" was already used for order ord_`,
		},
		{
			name: "product_no_longer_sold",
			setup: func(t testing.TB, env *testEnv, s *session) {
				env.cart.setLines(s.shopperID,
					&cartv1.CartLine{Sku: skuMug, Quantity: 1},
					&cartv1.CartLine{Sku: "GONE-1", Quantity: 1})
			},
			wantCode: connect.CodeFailedPrecondition,
			wantMsg:  "GONE-1 is no longer sold",
		},
	}
	for _, p := range protocols {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				env := newEnv(t)
				s := newSession(t, env.client(t, p))
				tc.setup(t, env, s)
				reserves := env.inv.count("ReserveStock")

				_, err := s.checkout(t, "req-1")
				checkCode(t, "Checkout", err, tc.wantCode, tc.wantMsg)
				if n := env.inv.count("ReserveStock"); n != reserves {
					t.Errorf("refused Checkout called ReserveStock %d times, want 0", n-reserves)
				}
			})
		}
	}
}

func TestCheckoutShortage(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			s := newSession(t, env.client(t, p))
			s.addToCart(t, skuMug, 5)
			s.addToCart(t, skuTee, 2)
			// Other shoppers bought in the meantime.
			env.inv.setAvailable(skuMug, 1)
			env.inv.setAvailable(skuTee, 0)

			_, err := s.checkout(t, "req-1")
			cerr := checkCode(t, "Checkout", err, connect.CodeFailedPrecondition,
				"not enough stock: only 1 left of Enamel mug (MUG-ENAMEL-WHT), 5 in your cart; "+
					"Organic tee (TEE-ORGANIC-M) is out of stock")
			var got []*inventoryv1.StockShortage
			for _, d := range cerr.Details() {
				v, err := d.Value()
				if err != nil {
					t.Fatalf("detail %s: %v", d.Type(), err)
				}
				if s, ok := v.(*inventoryv1.StockShortage); ok {
					got = append(got, s)
				}
			}
			want := []*inventoryv1.StockShortage{
				{Sku: skuMug, Requested: 5, Available: 1},
				{Sku: skuTee, Requested: 2, Available: 0},
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Checkout error details mismatch (-want +got):\n%s", diff)
			}
			if orders := env.cart.placedOrders(); len(orders) != 0 {
				t.Errorf("Checkout placed %d orders, want none", len(orders))
			}
			if lines := env.cart.cart(s.shopperID).GetLines(); len(lines) != 2 {
				t.Errorf("cart after failed Checkout holds %v, want its 2 lines", lines)
			}
		})
	}
}

// TestCheckoutWhenPlaceOrderFails decides the fate of the hold by what the
// cart service said: an answer means its transaction is over and the hold
// goes back; no answer means PlaceOrder may still run and the hold stays.
// Either way nothing was bought, so the same request id succeeds next.
func TestCheckoutWhenPlaceOrderFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		err          *connect.Error
		wantCode     connect.Code
		wantMsg      string
		wantReleases int
		wantStock    stock
	}{
		{
			name:         "refused",
			err:          connect.NewError(connect.CodeFailedPrecondition, errors.New("cart changed")),
			wantCode:     connect.CodeFailedPrecondition,
			wantMsg:      "your cart changed",
			wantReleases: 1,
			wantStock:    stock{Available: 5},
		},
		{
			name:         "failed",
			err:          connect.NewError(connect.CodeInternal, errors.New("oops")),
			wantCode:     connect.CodeInternal,
			wantReleases: 1,
			wantStock:    stock{Available: 5},
		},
		{
			name:         "outcome_unknown",
			err:          connect.NewError(connect.CodeDeadlineExceeded, errors.New("slow")),
			wantCode:     connect.CodeDeadlineExceeded,
			wantReleases: 0,
			wantStock:    stock{Available: 3, Reserved: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			s := newSession(t, env.client(t, protocols[0]))
			s.addToCart(t, skuMug, 2)
			env.cart.failNext("PlaceOrder", tc.err)

			_, err := s.checkout(t, "req-1")
			checkCode(t, "Checkout", err, tc.wantCode, tc.wantMsg)
			if n := env.inv.count("ReleaseReservation"); n != tc.wantReleases {
				t.Errorf("ReleaseReservation called %d times, want %d", n, tc.wantReleases)
			}
			checkStock(t, env.inv, map[string]stock{skuMug: tc.wantStock})

			if _, err := s.checkout(t, "req-1"); err != nil {
				t.Fatalf("Checkout again with the same request_id: %v", err)
			}
			checkStock(t, env.inv, map[string]stock{skuMug: {Available: 3, Sold: 2}})
		})
	}
}

func TestCheckoutRetryAfterCartChanged(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	s := newSession(t, env.client(t, protocols[0]))
	s.addToCart(t, skuMug, 2)
	env.cart.failNext("PlaceOrder", connect.NewError(connect.CodeDeadlineExceeded, errors.New("slow")))
	if _, err := s.checkout(t, "req-1"); err == nil {
		t.Fatal("Checkout: got no error, want the injected one")
	}

	// The hold of req-1 is for two mugs; it must not pass for one tee.
	env.cart.setLines(s.shopperID, &cartv1.CartLine{Sku: skuTee, Quantity: 1})
	_, err := s.checkout(t, "req-1")
	checkCode(t, "Checkout again", err, connect.CodeAlreadyExists, "use a new request_id")
	if orders := env.cart.placedOrders(); len(orders) != 0 {
		t.Errorf("Checkout placed %v, want nothing", orders)
	}
}

func TestCheckoutCommitFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		errs      []error
		wantStock stock
		wantCode  connect.Code // 0 when Checkout succeeds
		wantLog   string       // "" for no error log
	}{
		{
			name: "retried_while_slow",
			errs: []error{
				connect.NewError(connect.CodeDeadlineExceeded, errors.New("slow")),
				connect.NewError(connect.CodeDeadlineExceeded, errors.New("slow")),
			},
			wantStock: stock{Available: 3, Sold: 2},
		},
		{
			name: "refused",
			errs: []error{
				connect.NewError(connect.CodeFailedPrecondition, errors.New("released")),
			},
			wantStock: stock{Available: 3, Reserved: 2},
			wantCode:  connect.CodeFailedPrecondition,
			wantLog:   "level=ERROR msg=\"commit reservation of placed order\" order_id=ord_",
		},
		{
			name:      "still_unavailable",
			errs:      repeatErr(unavailable(), commitAttempts*retryAttempts),
			wantStock: stock{Available: 3, Reserved: 2},
			wantCode:  connect.CodeUnavailable,
			wantLog:   "level=ERROR msg=\"commit reservation of placed order\" order_id=ord_",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			s := newSession(t, env.client(t, protocols[0]))
			s.addToCart(t, skuMug, 2)
			env.inv.failNext("CommitReservation", tc.errs...)

			// The order is placed whatever becomes of the commit, but the
			// client hears of success only once the stock is sold.
			_, err := s.checkout(t, "req-1")
			if got := connect.CodeOf(err); err != nil && got != tc.wantCode || err == nil && tc.wantCode != 0 {
				t.Fatalf("Checkout: %v, want code %v", err, tc.wantCode)
			}
			if n := len(env.cart.placedOrders()); n != 1 {
				t.Errorf("Checkout placed %d orders, want 1", n)
			}
			checkStock(t, env.inv, map[string]stock{skuMug: tc.wantStock})
			logs := env.logs.String()
			if tc.wantLog == "" && strings.Contains(logs, "level=ERROR") {
				t.Errorf("logs have an error, want none:\n%s", logs)
			}
			if !strings.Contains(logs, tc.wantLog) {
				t.Errorf("logs lack %q:\n%s", tc.wantLog, logs)
			}
		})
	}
}

func TestCheckoutConcurrentRetries(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		for _, versionFirst := range []bool{false, true} {
			name := p.name + "/order_id_checked_first"
			if versionFirst {
				name = p.name + "/cart_version_checked_first"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				env := newEnv(t)
				s := newSession(t, env.client(t, p))
				s.addToCart(t, skuMug, 2)
				// Both calls get past every step before PlaceOrder.
				env.cart.placeGate = newBarrier(2)
				env.cart.versionFirst = versionFirst

				var wg sync.WaitGroup
				orders := make([]*shopv1.Order, 2)
				errs := make([]error, 2)
				for i := range 2 {
					wg.Go(func() { orders[i], errs[i] = s.checkout(t, "req-1") })
				}
				wg.Wait()

				for i, err := range errs {
					if err != nil {
						t.Fatalf("Checkout %d: %v", i, err)
					}
				}
				if diff := cmp.Diff(orders[0], orders[1], protocmp.Transform()); diff != "" {
					t.Errorf("concurrent Checkouts returned different orders (-1st +2nd):\n%s", diff)
				}
				if n := len(env.cart.placedOrders()); n != 1 {
					t.Errorf("concurrent Checkouts placed %d orders, want 1", n)
				}
				if n := env.inv.count("ReleaseReservation"); n != 0 {
					t.Errorf("concurrent Checkouts released the hold %d times, want 0", n)
				}
				checkStock(t, env.inv, map[string]stock{skuMug: {Available: 3, Sold: 2}})
			})
		}
	}
}

func TestOrdersArePrivate(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t)
			client := env.client(t, p)
			alice, bob := newSession(t, client), newSession(t, client)
			alice.addToCart(t, skuMug, 1)
			order, err := alice.checkout(t, "req-1")
			if err != nil {
				t.Fatalf("Checkout: %v", err)
			}

			_, err = bob.shop.GetOrder(t.Context(), req(bob, &shopv1.GetOrderRequest{
				OrderId: order.GetOrderId(),
			}))
			checkCode(t, "GetOrder of another shopper's order", err, connect.CodeNotFound,
				order.GetOrderId())
			list, err := bob.shop.ListOrders(t.Context(), req(bob, &shopv1.ListOrdersRequest{}))
			if err != nil {
				t.Fatalf("ListOrders: %v", err)
			}
			if len(list.Msg.GetOrders()) != 0 {
				t.Errorf("ListOrders of another shopper = %v, want none", list.Msg.GetOrders())
			}

			// The same request id from another shopper is another order.
			bob.addToCart(t, skuMug, 1)
			bobs, err := bob.checkout(t, "req-1")
			if err != nil {
				t.Fatalf("Checkout of another shopper with the same request_id: %v", err)
			}
			if bobs.GetOrderId() == order.GetOrderId() {
				t.Errorf("two shoppers' Checkout(req-1) both made order %s", order.GetOrderId())
			}
		})
	}
}

func repeatErr(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}
