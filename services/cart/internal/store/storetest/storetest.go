// Package storetest is the contract test suite of the cart store: every
// implementation of [store.Store] passes [Run], which proves the semantics
// that the interface documents, including under concurrent use.
package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tienda/tienda/services/cart/internal/store"
)

// Run runs the contract suite. open returns a new, empty store for one
// subtest and closes it when the subtest ends; subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s store.Store)
	}{
		{"get_cart_of_unknown_shopper", testGetCartOfUnknownShopper},
		{"add_item", testAddItem},
		{"add_item_limits", testAddItemLimits},
		{"line_limit", testLineLimit},
		{"update_item", testUpdateItem},
		{"remove_item", testRemoveItem},
		{"clear_cart", testClearCart},
		{"carts_are_private", testCartsArePrivate},
		{"place_order", testPlaceOrder},
		{"place_order_retry", testPlaceOrderRetry},
		{"place_order_errors", testPlaceOrderErrors},
		{"place_order_id_conflict", testPlaceOrderIDConflict},
		{"orders_are_private", testOrdersArePrivate},
		{"list_orders_paging", testListOrdersPaging},
		{"list_orders_page_sizes", testListOrdersPageSizes},
		{"list_orders_bad_page_token", testListOrdersBadPageToken},
		{"canceled_context", testCanceledContext},
		{"concurrent_add_item_same_line", testConcurrentAddSameLine},
		{"concurrent_add_item_other_lines", testConcurrentAddOtherLines},
		{"concurrent_add_item_limit", testConcurrentAddLimit},
		{"concurrent_update_item", testConcurrentUpdate},
		{"concurrent_place_order_same_id", testConcurrentPlaceOrderSameID},
		{"concurrent_place_order_other_ids", testConcurrentPlaceOrderOtherIDs},
		{"concurrent_place_order_and_add_item", testConcurrentPlaceOrderAndAdd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, open(t))
		})
	}
}

// base is the time of the first write in each test. It has nanoseconds, which
// the stores drop.
var base = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// at returns the time n minutes after base.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }

// cartOpts compares carts and orders, treating nil and empty slices alike.
var cartOpts = cmpopts.EquateEmpty()

func usd(amount int64) store.Money { return store.Money{Currency: "USD", Amount: amount} }

func lines(skuQty ...any) []store.Line {
	var ls []store.Line
	for i := 0; i < len(skuQty); i += 2 {
		ls = append(ls, store.Line{SKU: skuQty[i].(string), Quantity: int64(skuQty[i+1].(int))})
	}
	return ls
}

// fill adds lines to the shopper's cart, one write each, and returns the cart.
func fill(tb testing.TB, s store.Store, shopperID string, ls []store.Line) store.Cart {
	tb.Helper()
	cart, err := s.GetCart(context.Background(), shopperID)
	if err != nil {
		tb.Fatalf("GetCart(%q): %v", shopperID, err)
	}
	for i, l := range ls {
		cart, err = s.AddItem(context.Background(), shopperID, l.SKU, l.Quantity, 0, at(i))
		if err != nil {
			tb.Fatalf("AddItem(%q, %q, %d): %v", shopperID, l.SKU, l.Quantity, err)
		}
	}
	return cart
}

// priced returns order lines for ls at 100 times the line's index plus 99
// cents a unit.
func priced(ls []store.Line) []store.OrderLine {
	out := make([]store.OrderLine, len(ls))
	for i, l := range ls {
		out[i] = store.OrderLine{
			SKU:       l.SKU,
			Name:      "Product " + l.SKU,
			UnitPrice: usd(int64(100*i + 99)),
			Quantity:  l.Quantity,
		}
	}
	return out
}

// placeOrder fills the shopper's cart with ls and places it as orderID.
func placeOrder(tb testing.TB, s store.Store, shopperID, orderID string, ls []store.Line,
	now time.Time) store.Order {
	tb.Helper()
	cart := fill(tb, s, shopperID, ls)
	o, err := s.PlaceOrder(context.Background(), shopperID, orderID, cart.Version, priced(ls), now)
	if err != nil {
		tb.Fatalf("PlaceOrder(%q, %q): %v", shopperID, orderID, err)
	}
	return o
}

func getCart(tb testing.TB, s store.Store, shopperID string) store.Cart {
	tb.Helper()
	cart, err := s.GetCart(context.Background(), shopperID)
	if err != nil {
		tb.Fatalf("GetCart(%q): %v", shopperID, err)
	}
	return cart
}

// checkCart fails tb unless the shopper's cart holds want at version.
func checkCart(tb testing.TB, s store.Store, shopperID string, want []store.Line,
	version int64) {
	tb.Helper()
	got := getCart(tb, s, shopperID)
	if diff := cmp.Diff(want, got.Lines, cartOpts); diff != "" {
		tb.Errorf("GetCart(%q) lines mismatch (-want +got):\n%s", shopperID, diff)
	}
	if got.Version != version {
		tb.Errorf("GetCart(%q) version = %d, want %d", shopperID, got.Version, version)
	}
}

func testGetCartOfUnknownShopper(t *testing.T, s store.Store) {
	for range 2 { // reading must not create the cart
		got, err := s.GetCart(t.Context(), "alice")
		if err != nil {
			t.Fatalf("GetCart: %v", err)
		}
		if diff := cmp.Diff(store.Cart{ShopperID: "alice"}, got, cartOpts); diff != "" {
			t.Errorf("GetCart mismatch (-want +got):\n%s", diff)
		}
	}
	cart, err := s.AddItem(t.Context(), "alice", "sku-1", 1, 0, at(0))
	if err != nil {
		t.Fatalf("AddItem: %v", err)
	}
	if cart.Version != 1 {
		t.Errorf("AddItem to a new cart: version = %d, want 1", cart.Version)
	}
}

func testAddItem(t *testing.T, s store.Store) {
	steps := []struct {
		sku      string
		quantity int64
		want     store.Cart
	}{
		{"sku-a", 2, store.Cart{Lines: lines("sku-a", 2), Version: 1}},
		{"sku-b", 1, store.Cart{Lines: lines("sku-a", 2, "sku-b", 1), Version: 2}},
		{"sku-a", 3, store.Cart{Lines: lines("sku-a", 5, "sku-b", 1), Version: 3}},
		{"sku-c", 1000, store.Cart{
			Lines:   lines("sku-a", 5, "sku-b", 1, "sku-c", 1000),
			Version: 4,
		}},
	}
	for i, step := range steps {
		now := at(i)
		got, err := s.AddItem(t.Context(), "alice", step.sku, step.quantity, 0, now)
		if err != nil {
			t.Fatalf("AddItem(%q, %d): %v", step.sku, step.quantity, err)
		}
		want := step.want
		want.ShopperID = "alice"
		want.UpdateTime = store.StoredTime(now)
		if diff := cmp.Diff(want, got, cartOpts); diff != "" {
			t.Errorf("AddItem(%q, %d) mismatch (-want +got):\n%s", step.sku, step.quantity, diff)
		}
		if diff := cmp.Diff(want, getCart(t, s, "alice"), cartOpts); diff != "" {
			t.Errorf("GetCart after AddItem(%q, %d) mismatch (-want +got):\n%s",
				step.sku, step.quantity, diff)
		}
	}
}

func testAddItemLimits(t *testing.T, s store.Store) {
	tests := []struct {
		name    string
		inCart  int64
		add     int64
		max     int64
		want    int64 // the line's quantity after a successful addition
		wantErr *store.QuantityLimitError
	}{
		{name: "up_to_max", inCart: 2, add: 3, max: 5, want: 5},
		{name: "new_line_up_to_max", add: 3, max: 3, want: 3},
		{name: "no_max_up_to_1000", inCart: 999, add: 1, want: 1000},
		{
			name: "over_max", inCart: 2, add: 4, max: 5,
			wantErr: &store.QuantityLimitError{InCart: 2, Requested: 6, Limit: 5},
		},
		{
			name: "new_line_over_max", add: 3, max: 2,
			wantErr: &store.QuantityLimitError{InCart: 0, Requested: 3, Limit: 2},
		},
		{
			name: "no_max_over_1000", inCart: 1000, add: 1,
			wantErr: &store.QuantityLimitError{InCart: 1000, Requested: 1001, Limit: 1000},
		},
		{
			name: "max_over_1000_is_1000", inCart: 600, add: 500, max: 5000,
			wantErr: &store.QuantityLimitError{InCart: 600, Requested: 1100, Limit: 1000},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shopper := "shopper-" + tc.name
			// Another line shows that a refused addition leaves the whole
			// cart alone.
			start := lines("other", 1)
			if tc.inCart > 0 {
				start = append(start, store.Line{SKU: "sku", Quantity: tc.inCart})
			}
			before := fill(t, s, shopper, start)

			got, err := s.AddItem(t.Context(), shopper, "sku", tc.add, tc.max, at(10))
			if tc.wantErr != nil {
				var limitErr *store.QuantityLimitError
				if !errors.As(err, &limitErr) || !errors.Is(err, store.ErrQuantityLimit) {
					t.Fatalf("AddItem(%d, max %d) error = %v, want a QuantityLimitError",
						tc.add, tc.max, err)
				}
				tc.wantErr.SKU = "sku"
				if diff := cmp.Diff(tc.wantErr, limitErr); diff != "" {
					t.Errorf("AddItem(%d, max %d) error mismatch (-want +got):\n%s",
						tc.add, tc.max, diff)
				}
				checkCart(t, s, shopper, before.Lines, before.Version)
				return
			}
			if err != nil {
				t.Fatalf("AddItem(%d, max %d): %v", tc.add, tc.max, err)
			}
			want := append(lines("other", 1), store.Line{SKU: "sku", Quantity: tc.want})
			if diff := cmp.Diff(want, got.Lines, cartOpts); diff != "" {
				t.Errorf("AddItem(%d, max %d) lines mismatch (-want +got):\n%s",
					tc.add, tc.max, diff)
			}
			if got.Version != before.Version+1 {
				t.Errorf("AddItem version = %d, want %d", got.Version, before.Version+1)
			}
		})
	}
}

func testUpdateItem(t *testing.T, s store.Store) {
	tests := []struct {
		name        string
		sku         string
		quantity    int64
		want        []store.Line
		wantChanged bool
		wantErr     error
	}{
		{
			name: "set_quantity", sku: "sku-a", quantity: 7,
			want: lines("sku-a", 7, "sku-b", 1), wantChanged: true,
		},
		{
			name: "zero_removes_line", sku: "sku-a", quantity: 0,
			want: lines("sku-b", 1), wantChanged: true,
		},
		{
			name: "new_sku_goes_last", sku: "sku-c", quantity: 4,
			want: lines("sku-a", 2, "sku-b", 1, "sku-c", 4), wantChanged: true,
		},
		{
			name: "up_to_1000", sku: "sku-b", quantity: 1000,
			want: lines("sku-a", 2, "sku-b", 1000), wantChanged: true,
		},
		{
			name: "same_quantity_changes_nothing", sku: "sku-a", quantity: 2,
			want: lines("sku-a", 2, "sku-b", 1),
		},
		{
			name: "zero_of_missing_line_changes_nothing", sku: "sku-c", quantity: 0,
			want: lines("sku-a", 2, "sku-b", 1),
		},
		{
			name: "over_1000", sku: "sku-a", quantity: 1001,
			want: lines("sku-a", 2, "sku-b", 1), wantErr: store.ErrQuantityLimit,
		},
		{
			name: "negative", sku: "sku-a", quantity: -1,
			want: lines("sku-a", 2, "sku-b", 1), wantErr: store.ErrInvalidArgument,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shopper := "shopper-" + tc.name
			before := fill(t, s, shopper, lines("sku-a", 2, "sku-b", 1))

			got, err := s.UpdateItem(t.Context(), shopper, tc.sku, tc.quantity, at(10))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("UpdateItem(%q, %d) error = %v, want %v",
					tc.sku, tc.quantity, err, tc.wantErr)
			}
			wantVersion := before.Version
			if tc.wantChanged {
				wantVersion++
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got.Lines, cartOpts); diff != "" {
					t.Errorf("UpdateItem(%q, %d) lines mismatch (-want +got):\n%s",
						tc.sku, tc.quantity, diff)
				}
				if got.Version != wantVersion {
					t.Errorf("UpdateItem(%q, %d) version = %d, want %d",
						tc.sku, tc.quantity, got.Version, wantVersion)
				}
			}
			checkCart(t, s, shopper, tc.want, wantVersion)
		})
	}

	t.Run("unknown_shopper", func(t *testing.T) {
		if _, err := s.UpdateItem(t.Context(), "nobody", "sku-a", 0, at(0)); err != nil {
			t.Fatalf("UpdateItem to 0: %v", err)
		}
		checkCart(t, s, "nobody", nil, 0)
		if _, err := s.UpdateItem(t.Context(), "nobody", "sku-a", 3, at(0)); err != nil {
			t.Fatalf("UpdateItem to 3: %v", err)
		}
		checkCart(t, s, "nobody", lines("sku-a", 3), 1)
	})
}

func testRemoveItem(t *testing.T, s store.Store) {
	fill(t, s, "alice", lines("sku-a", 2, "sku-b", 1, "sku-c", 5))

	steps := []struct {
		sku         string
		want        []store.Line
		wantVersion int64
	}{
		{"sku-b", lines("sku-a", 2, "sku-c", 5), 4},
		{"sku-b", lines("sku-a", 2, "sku-c", 5), 4}, // no longer there
		{"sku-x", lines("sku-a", 2, "sku-c", 5), 4},
		{"sku-a", lines("sku-c", 5), 5},
	}
	for _, step := range steps {
		got, err := s.RemoveItem(t.Context(), "alice", step.sku, at(10))
		if err != nil {
			t.Fatalf("RemoveItem(%q): %v", step.sku, err)
		}
		if diff := cmp.Diff(step.want, got.Lines, cartOpts); diff != "" {
			t.Errorf("RemoveItem(%q) lines mismatch (-want +got):\n%s", step.sku, diff)
		}
		if got.Version != step.wantVersion {
			t.Errorf("RemoveItem(%q) version = %d, want %d",
				step.sku, got.Version, step.wantVersion)
		}
		checkCart(t, s, "alice", step.want, step.wantVersion)
	}

	got, err := s.RemoveItem(t.Context(), "nobody", "sku-a", at(10))
	if err != nil {
		t.Fatalf("RemoveItem of unknown shopper: %v", err)
	}
	if got.Version != 0 || len(got.Lines) != 0 {
		t.Errorf("RemoveItem of unknown shopper = %+v, want an empty cart at version 0", got)
	}
	checkCart(t, s, "nobody", nil, 0)
}

func testClearCart(t *testing.T, s store.Store) {
	fill(t, s, "alice", lines("sku-a", 2, "sku-b", 1))

	for i, wantVersion := range []int64{3, 3} { // the second clear changes nothing
		got, err := s.ClearCart(t.Context(), "alice", at(10+i))
		if err != nil {
			t.Fatalf("ClearCart #%d: %v", i+1, err)
		}
		want := store.Cart{
			ShopperID:  "alice",
			Version:    wantVersion,
			UpdateTime: store.StoredTime(at(10)),
		}
		if diff := cmp.Diff(want, got, cartOpts); diff != "" {
			t.Errorf("ClearCart #%d mismatch (-want +got):\n%s", i+1, diff)
		}
	}

	// The version keeps counting after the cart was emptied.
	got, err := s.AddItem(t.Context(), "alice", "sku-c", 1, 0, at(20))
	if err != nil {
		t.Fatalf("AddItem: %v", err)
	}
	if got.Version != 4 {
		t.Errorf("AddItem after ClearCart: version = %d, want 4", got.Version)
	}

	if _, err := s.ClearCart(t.Context(), "nobody", at(0)); err != nil {
		t.Fatalf("ClearCart of unknown shopper: %v", err)
	}
	checkCart(t, s, "nobody", nil, 0)
}

func testCartsArePrivate(t *testing.T, s store.Store) {
	fill(t, s, "alice", lines("sku-a", 2))
	fill(t, s, "bob", lines("sku-a", 5, "sku-b", 1))

	if _, err := s.RemoveItem(t.Context(), "bob", "sku-a", at(10)); err != nil {
		t.Fatalf("RemoveItem: %v", err)
	}
	if _, err := s.ClearCart(t.Context(), "carol", at(10)); err != nil {
		t.Fatalf("ClearCart: %v", err)
	}
	checkCart(t, s, "alice", lines("sku-a", 2), 1)
	checkCart(t, s, "bob", lines("sku-b", 1), 3)
}

func testPlaceOrder(t *testing.T, s store.Store) {
	cart := fill(t, s, "alice", lines("sku-a", 2, "sku-b", 3))
	in := []store.OrderLine{
		// In another order than the cart's, which is fine.
		{SKU: "sku-b", Name: "Bee", UnitPrice: usd(250), Quantity: 3},
		{SKU: "sku-a", Name: "Ay", UnitPrice: usd(1999), Quantity: 2, LineTotal: usd(1)},
	}
	now := at(10)

	got, err := s.PlaceOrder(t.Context(), "alice", "order-1", cart.Version, in, now)
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	want := store.Order{
		ID:        "order-1",
		ShopperID: "alice",
		Lines: []store.OrderLine{
			{SKU: "sku-b", Name: "Bee", UnitPrice: usd(250), Quantity: 3, LineTotal: usd(750)},
			{SKU: "sku-a", Name: "Ay", UnitPrice: usd(1999), Quantity: 2, LineTotal: usd(3998)},
		},
		Total:       usd(4748),
		Status:      store.OrderPlaced,
		CreateTime:  store.StoredTime(now),
		CartVersion: cart.Version,
	}
	if diff := cmp.Diff(want, got, cartOpts); diff != "" {
		t.Errorf("PlaceOrder mismatch (-want +got):\n%s", diff)
	}

	// The order is stored as returned, and the cart is empty at a new version.
	stored, err := s.GetOrder(t.Context(), "alice", "order-1")
	if err != nil {
		t.Fatalf("GetOrder: %v", err)
	}
	if diff := cmp.Diff(want, stored, cartOpts); diff != "" {
		t.Errorf("GetOrder mismatch (-want +got):\n%s", diff)
	}
	after := getCart(t, s, "alice")
	wantCart := store.Cart{
		ShopperID:  "alice",
		Version:    cart.Version + 1,
		UpdateTime: store.StoredTime(now),
	}
	if diff := cmp.Diff(wantCart, after, cartOpts); diff != "" {
		t.Errorf("GetCart after PlaceOrder mismatch (-want +got):\n%s", diff)
	}
}

func testPlaceOrderRetry(t *testing.T, s store.Store) {
	ls := lines("sku-a", 2, "sku-b", 3)
	first := placeOrder(t, s, "alice", "order-1", ls, at(10))

	// The shopper fills the cart again; retries must leave it alone.
	cart := fill(t, s, "alice", lines("sku-c", 1))

	retries := []struct {
		name    string
		version int64
		lines   []store.OrderLine
	}{
		{"same_request", first.CartVersion, priced(ls)},
		{"current_cart_version", cart.Version, priced(ls)},
		{"lines_reordered_and_repriced", first.CartVersion, []store.OrderLine{
			{SKU: "sku-b", Name: "B", UnitPrice: usd(1), Quantity: 3},
			{SKU: "sku-a", Name: "A", UnitPrice: usd(2), Quantity: 2},
		}},
	}
	for _, r := range retries {
		got, err := s.PlaceOrder(t.Context(), "alice", "order-1", r.version, r.lines, at(20))
		if err != nil {
			t.Fatalf("PlaceOrder retry %s: %v", r.name, err)
		}
		if diff := cmp.Diff(first, got, cartOpts); diff != "" {
			t.Errorf("PlaceOrder retry %s mismatch (-want +got):\n%s", r.name, diff)
		}
	}
	checkCart(t, s, "alice", lines("sku-c", 1), cart.Version)
}

func testPlaceOrderErrors(t *testing.T, s store.Store) {
	ls := lines("sku-a", 2, "sku-b", 1)
	mixed := priced(ls)
	mixed[1].UnitPrice.Currency = "EUR"
	negative := priced(ls)
	negative[0].UnitPrice.Amount = -1
	noCurrency := priced(ls)
	noCurrency[0].UnitPrice.Currency = ""
	noCurrency[1].UnitPrice.Currency = ""
	overflow := priced(ls)
	overflow[0].UnitPrice.Amount = 1 << 62

	tests := []struct {
		name       string
		cart       []store.Line
		version    int64 // relative to the cart's version
		lines      []store.OrderLine
		wantErr    error
		wantBefore bool
	}{
		{name: "older_version", version: -1, lines: priced(ls), wantErr: store.ErrCartChanged},
		{name: "newer_version", version: +1, lines: priced(ls), wantErr: store.ErrCartChanged},
		{
			name: "missing_line", lines: priced(lines("sku-a", 2)),
			wantErr: store.ErrLinesMismatch,
		},
		{
			name: "extra_line", lines: priced(lines("sku-a", 2, "sku-b", 1, "sku-c", 1)),
			wantErr: store.ErrLinesMismatch,
		},
		{
			name: "other_quantity", lines: priced(lines("sku-a", 3, "sku-b", 1)),
			wantErr: store.ErrLinesMismatch,
		},
		{
			name: "other_sku", lines: priced(lines("sku-a", 2, "sku-c", 1)),
			wantErr: store.ErrLinesMismatch,
		},
		{
			name: "empty_cart", cart: []store.Line{}, version: 0,
			lines: priced(ls), wantErr: store.ErrCartChanged,
		},
		{
			name: "duplicate_sku", lines: priced(lines("sku-a", 2, "sku-a", 2)),
			wantErr: store.ErrInvalidArgument,
		},
		{name: "no_lines", lines: nil, wantErr: store.ErrInvalidArgument},
		{name: "mixed_currencies", lines: mixed, wantErr: store.ErrInvalidArgument},
		{name: "no_currency", lines: noCurrency, wantErr: store.ErrInvalidArgument},
		{name: "negative_price", lines: negative, wantErr: store.ErrInvalidArgument},
		{name: "total_overflows", lines: overflow, wantErr: store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			shopper := "shopper-" + tc.name
			cartLines := ls
			if tc.cart != nil {
				cartLines = tc.cart
			}
			cart := fill(t, s, shopper, cartLines)
			version := max(1, cart.Version+tc.version) // PlaceOrder needs a positive version

			_, err := s.PlaceOrder(t.Context(), shopper, "order-1", version, tc.lines, at(10))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("PlaceOrder(version %d, %v) error = %v, want %v",
					version, tc.lines, err, tc.wantErr)
			}
			checkCart(t, s, shopper, cart.Lines, cart.Version)
			_, err = s.GetOrder(t.Context(), shopper, "order-1")
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetOrder of refused order: error = %v, want ErrNotFound", err)
			}
		})
	}
}

func testPlaceOrderIDConflict(t *testing.T, s store.Store) {
	first := placeOrder(t, s, "alice", "order-1", lines("sku-a", 2), at(10))

	t.Run("same_shopper_other_lines", func(t *testing.T) {
		cart := fill(t, s, "alice", lines("sku-a", 1))
		_, err := s.PlaceOrder(t.Context(), "alice", "order-1", cart.Version,
			priced(cart.Lines), at(20))
		if !errors.Is(err, store.ErrOrderConflict) {
			t.Fatalf("PlaceOrder error = %v, want ErrOrderConflict", err)
		}
		checkCart(t, s, "alice", cart.Lines, cart.Version)
	})
	t.Run("other_shopper_same_lines", func(t *testing.T) {
		cart := fill(t, s, "bob", lines("sku-a", 2))
		_, err := s.PlaceOrder(t.Context(), "bob", "order-1", cart.Version,
			priced(cart.Lines), at(20))
		if !errors.Is(err, store.ErrOrderConflict) {
			t.Fatalf("PlaceOrder error = %v, want ErrOrderConflict", err)
		}
		checkCart(t, s, "bob", cart.Lines, cart.Version)
	})

	got, err := s.GetOrder(t.Context(), "alice", "order-1")
	if err != nil {
		t.Fatalf("GetOrder: %v", err)
	}
	if diff := cmp.Diff(first, got, cartOpts); diff != "" {
		t.Errorf("GetOrder after conflicts mismatch (-want +got):\n%s", diff)
	}
}

func testOrdersArePrivate(t *testing.T, s store.Store) {
	placeOrder(t, s, "alice", "order-a", lines("sku-a", 2), at(10))
	placeOrder(t, s, "bob", "order-b", lines("sku-b", 1), at(11))

	tests := []struct {
		name    string
		shopper string
		orderID string
	}{
		{"other_shoppers_order", "bob", "order-a"},
		{"unknown_order", "alice", "order-x"},
		{"unknown_shopper", "carol", "order-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.GetOrder(t.Context(), tc.shopper, tc.orderID)
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetOrder(%q, %q) error = %v, want ErrNotFound",
					tc.shopper, tc.orderID, err)
			}
		})
	}

	for shopper, want := range map[string][]string{
		"alice": {"order-a"},
		"bob":   {"order-b"},
		"carol": nil,
	} {
		page, err := s.ListOrders(t.Context(), shopper, 0, "")
		if err != nil {
			t.Fatalf("ListOrders(%q): %v", shopper, err)
		}
		if diff := cmp.Diff(want, orderIDs(page.Orders), cartOpts); diff != "" {
			t.Errorf("ListOrders(%q) mismatch (-want +got):\n%s", shopper, diff)
		}
	}
}

func orderIDs(orders []store.Order) []string {
	var ids []string
	for _, o := range orders {
		ids = append(ids, o.ID)
	}
	return ids
}

func testListOrdersPaging(t *testing.T, s store.Store) {
	// Orders placed at the same time sort by id, descending.
	placed := []struct {
		id     string
		minute int
	}{
		{"order-1", 1}, {"order-2", 2}, {"order-4", 3}, {"order-3", 3}, {"order-5", 3},
		{"order-6", 4}, {"order-7", 5},
	}
	want := map[string]store.Order{}
	for i, p := range placed {
		want[p.id] = placeOrder(t, s, "alice", p.id, lines(fmt.Sprintf("sku-%d", i), i+1),
			at(p.minute))
		placeOrder(t, s, "bob", p.id+"-bob", lines("sku", 1), at(p.minute))
	}

	var (
		token string
		pages [][]string
	)
	for range 10 {
		page, err := s.ListOrders(t.Context(), "alice", 3, token)
		if err != nil {
			t.Fatalf("ListOrders(page token %q): %v", token, err)
		}
		pages = append(pages, orderIDs(page.Orders))
		for _, o := range page.Orders {
			if diff := cmp.Diff(want[o.ID], o, cartOpts); diff != "" {
				t.Errorf("ListOrders: order %s mismatch (-want +got):\n%s", o.ID, diff)
			}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	wantPages := [][]string{
		{"order-7", "order-6", "order-5"},
		{"order-4", "order-3", "order-2"},
		{"order-1"},
	}
	if diff := cmp.Diff(wantPages, pages); diff != "" {
		t.Errorf("ListOrders pages mismatch (-want +got):\n%s", diff)
	}

	// A page that ends exactly at the last order has no next page.
	page, err := s.ListOrders(t.Context(), "alice", 7, "")
	if err != nil {
		t.Fatalf("ListOrders(7): %v", err)
	}
	if len(page.Orders) != 7 || page.NextPageToken != "" {
		t.Errorf("ListOrders(7) = %d orders, next page token %q; want 7 orders and no token",
			len(page.Orders), page.NextPageToken)
	}
}

func testListOrdersPageSizes(t *testing.T, s store.Store) {
	const n = store.DefaultPageSize + 1
	for i := range n {
		placeOrder(t, s, "alice", fmt.Sprintf("order-%02d", i), lines("sku", 1), at(i))
	}

	tests := []struct {
		name      string
		size      int
		wantLen   int
		wantToken bool
	}{
		{"zero_means_default", 0, store.DefaultPageSize, true},
		{"one", 1, 1, true},
		{"exactly_all", n, n, false},
		{"more_than_max", store.MaxPageSize + 1, n, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListOrders(t.Context(), "alice", tc.size, "")
			if err != nil {
				t.Fatalf("ListOrders(%d): %v", tc.size, err)
			}
			if len(page.Orders) != tc.wantLen || (page.NextPageToken != "") != tc.wantToken {
				t.Errorf("ListOrders(%d) = %d orders, next page token %q; want %d orders, token %t",
					tc.size, len(page.Orders), page.NextPageToken, tc.wantLen, tc.wantToken)
			}
		})
	}

	_, err := s.ListOrders(t.Context(), "alice", -1, "")
	if !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ListOrders(-1) error = %v, want ErrInvalidArgument", err)
	}
}

func testListOrdersBadPageToken(t *testing.T, s store.Store) {
	placeOrder(t, s, "alice", "order-1", lines("sku", 1), at(1))

	tests := []struct {
		name  string
		token string
	}{
		{"not_base64", "not a token!"},
		{"too_short", token(1, 2, 3)},
		{"no_order_id", token(1, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"unknown_version", token(2, 0, 0, 0, 0, 0, 0, 0, 0, 'o')},
		{"padded", token(1, 0, 0, 0, 0, 0, 0, 0, 0, 'o') + "="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ListOrders(t.Context(), "alice", 1, tc.token)
			if !errors.Is(err, store.ErrInvalidPageToken) {
				t.Errorf("ListOrders(token %q) error = %v, want ErrInvalidPageToken", tc.token, err)
			}
		})
	}
}

// token returns b as a page token is encoded.
func token(b ...byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	calls := []struct {
		name string
		call func() error
	}{
		{"get_cart", func() error { _, err := s.GetCart(ctx, "alice"); return err }},
		{"add_item", func() error {
			_, err := s.AddItem(ctx, "alice", "sku", 1, 0, at(0))
			return err
		}},
		{"list_orders", func() error { _, err := s.ListOrders(ctx, "alice", 0, ""); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: error = %v, want context.Canceled", c.name, err)
		}
	}
	checkCart(t, s, "alice", nil, 0)
}

// concurrently calls f(i) for i from 0 to n-1, each in its own goroutine,
// released together, and returns their errors.
func concurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentAddSameLine(t *testing.T, s store.Store) {
	const n = 50
	errs := concurrently(n, func(int) error {
		_, err := s.AddItem(t.Context(), "alice", "sku", 1, 0, at(0))
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent AddItem: %v", err)
	}
	checkCart(t, s, "alice", lines("sku", n), n)
}

func testConcurrentAddOtherLines(t *testing.T, s store.Store) {
	const n = 20
	errs := concurrently(n, func(i int) error {
		_, err := s.AddItem(t.Context(), "alice", fmt.Sprintf("sku-%02d", i), int64(i+1), 0, at(0))
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent AddItem: %v", err)
	}
	cart := getCart(t, s, "alice")
	if cart.Version != n {
		t.Errorf("version = %d, want %d", cart.Version, n)
	}
	got := slices.SortedFunc(slices.Values(cart.Lines), func(a, b store.Line) int {
		return int(a.Quantity - b.Quantity)
	})
	var want []store.Line
	for i := range n {
		want = append(want, store.Line{SKU: fmt.Sprintf("sku-%02d", i), Quantity: int64(i + 1)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines mismatch (-want +got):\n%s", diff)
	}
}

// testConcurrentAddLimit checks that a limit holds under concurrent
// additions: of 30 additions of one unit with a limit of 10, exactly 10
// succeed.
func testConcurrentAddLimit(t *testing.T, s store.Store) {
	const n, limit = 30, 10
	errs := concurrently(n, func(int) error {
		_, err := s.AddItem(t.Context(), "alice", "sku", 1, limit, at(0))
		return err
	})
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrQuantityLimit):
			t.Errorf("concurrent AddItem: %v", err)
		}
	}
	if ok != limit {
		t.Errorf("%d of %d additions succeeded, want %d", ok, n, limit)
	}
	checkCart(t, s, "alice", lines("sku", limit), limit)
}

func testConcurrentUpdate(t *testing.T, s store.Store) {
	const n = 20
	fill(t, s, "alice", lines("sku", 1))

	// Each goroutine writes a quantity that no other writes, and none is 1,
	// so every update changes the line.
	errs := concurrently(n, func(i int) error {
		_, err := s.UpdateItem(t.Context(), "alice", "sku", int64(i+2), at(1))
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent UpdateItem: %v", err)
	}
	cart := getCart(t, s, "alice")
	if len(cart.Lines) != 1 || cart.Lines[0].Quantity < 2 || cart.Lines[0].Quantity > n+1 {
		t.Errorf("lines = %v, want one line with a quantity from 2 to %d", cart.Lines, n+1)
	}
	if cart.Version != n+1 {
		t.Errorf("version = %d, want %d", cart.Version, n+1)
	}
}

func testConcurrentPlaceOrderSameID(t *testing.T, s store.Store) {
	const n = 20
	ls := lines("sku-a", 2, "sku-b", 1)
	cart := fill(t, s, "alice", ls)

	orders := make([]store.Order, n)
	errs := concurrently(n, func(i int) error {
		var err error
		orders[i], err = s.PlaceOrder(t.Context(), "alice", "order-1", cart.Version,
			priced(ls), at(10))
		return err
	})

	var placed []store.Order
	for i, err := range errs {
		switch {
		case err == nil:
			placed = append(placed, orders[i])
		case !errors.Is(err, store.ErrCartChanged):
			t.Errorf("concurrent PlaceOrder: %v", err)
		}
	}
	if len(placed) == 0 {
		t.Fatal("no concurrent PlaceOrder succeeded")
	}
	for _, o := range placed[1:] {
		if diff := cmp.Diff(placed[0], o, cartOpts); diff != "" {
			t.Errorf("concurrent PlaceOrder returned different orders (-first +other):\n%s", diff)
		}
	}
	checkOneOrder(t, s, "alice", "order-1")
	checkCart(t, s, "alice", nil, cart.Version+1)
}

func testConcurrentPlaceOrderOtherIDs(t *testing.T, s store.Store) {
	const n = 20
	ls := lines("sku-a", 2, "sku-b", 1)
	cart := fill(t, s, "alice", ls)

	errs := concurrently(n, func(i int) error {
		_, err := s.PlaceOrder(t.Context(), "alice", fmt.Sprintf("order-%02d", i), cart.Version,
			priced(ls), at(10))
		return err
	})

	var winner string
	for i, err := range errs {
		switch {
		case err == nil && winner != "":
			t.Errorf("orders %s and order-%02d both succeeded", winner, i)
		case err == nil:
			winner = fmt.Sprintf("order-%02d", i)
		case !errors.Is(err, store.ErrCartChanged):
			t.Errorf("concurrent PlaceOrder: error = %v, want nil or ErrCartChanged", err)
		}
	}
	if winner == "" {
		t.Fatal("no concurrent PlaceOrder succeeded")
	}
	checkOneOrder(t, s, "alice", winner)
	checkCart(t, s, "alice", nil, cart.Version+1)
}

// testConcurrentPlaceOrderAndAdd races an order against additions to its
// cart: either the order holds the lines it was priced from and the
// additions land in the emptied cart, or an addition came first and the
// order fails with ErrCartChanged.
func testConcurrentPlaceOrderAndAdd(t *testing.T, s store.Store) {
	const adds = 10
	ls := lines("sku-a", 2)
	cart := fill(t, s, "alice", ls)

	var orderErr error
	errs := concurrently(adds+1, func(i int) error {
		if i == adds {
			_, orderErr = s.PlaceOrder(t.Context(), "alice", "order-1", cart.Version,
				priced(ls), at(10))
			return nil
		}
		_, err := s.AddItem(t.Context(), "alice", "sku-b", 1, 0, at(10))
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent AddItem: %v", err)
	}

	// An addition before the order would have changed the cart, so an
	// order that succeeded came before every addition.
	switch {
	case orderErr == nil:
		checkOneOrder(t, s, "alice", "order-1")
		checkCart(t, s, "alice", lines("sku-b", adds), cart.Version+1+adds)
	case errors.Is(orderErr, store.ErrCartChanged):
		checkCart(t, s, "alice", lines("sku-a", 2, "sku-b", adds), cart.Version+adds)
	default:
		t.Fatalf("PlaceOrder: error = %v, want nil or ErrCartChanged", orderErr)
	}
}

// checkOneOrder fails tb unless orderID is the shopper's only order.
func checkOneOrder(tb testing.TB, s store.Store, shopperID, orderID string) {
	tb.Helper()
	page, err := s.ListOrders(context.Background(), shopperID, 0, "")
	if err != nil {
		tb.Fatalf("ListOrders(%q): %v", shopperID, err)
	}
	if diff := cmp.Diff([]string{orderID}, orderIDs(page.Orders)); diff != "" {
		tb.Errorf("ListOrders(%q) mismatch (-want +got):\n%s", shopperID, diff)
	}
}

func testLineLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	const shopper = "shp_full"
	for i := range store.MaxLines {
		if _, err := s.AddItem(ctx, shopper, fmt.Sprintf("SKU-%03d", i), 1, 0, base); err != nil {
			t.Fatalf("AddItem(line %d) = %v", i+1, err)
		}
	}
	_, err := s.AddItem(ctx, shopper, "SKU-ONE-TOO-MANY", 1, 0, base)
	if !errors.Is(err, store.ErrTooManyLines) {
		t.Errorf("AddItem(line %d) = %v, want ErrTooManyLines", store.MaxLines+1, err)
	}
	_, err = s.UpdateItem(ctx, shopper, "SKU-ONE-TOO-MANY", 2, base)
	if !errors.Is(err, store.ErrTooManyLines) {
		t.Errorf("UpdateItem(new line %d) = %v, want ErrTooManyLines", store.MaxLines+1, err)
	}

	// Lines already in the cart still change.
	cart, err := s.AddItem(ctx, shopper, "SKU-000", 1, 0, base)
	if err != nil {
		t.Fatalf("AddItem(existing line) = %v", err)
	}
	if n := len(cart.Lines); n != store.MaxLines {
		t.Errorf("full cart has %d lines, want %d", n, store.MaxLines)
	}
}
