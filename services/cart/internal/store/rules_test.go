package store_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tienda/tienda/services/cart/internal/store"
)

func TestCheckAdd(t *testing.T) {
	tests := []struct {
		name        string
		inCart      int64
		quantity    int64
		maxQuantity int64
		want        int64
		wantErr     error
		wantLimit   *store.QuantityLimitError
	}{
		{name: "no_limit", inCart: 5, quantity: 995, want: 1000},
		{name: "under_max", inCart: 1, quantity: 1, maxQuantity: 3, want: 2},
		{name: "at_max", inCart: 1, quantity: 2, maxQuantity: 3, want: 3},
		{
			name: "over_max", inCart: 1, quantity: 3, maxQuantity: 3,
			wantLimit: &store.QuantityLimitError{SKU: "s", InCart: 1, Requested: 4, Limit: 3},
		},
		{
			name: "over_line_cap", inCart: 0, quantity: 1001, maxQuantity: 5000,
			wantLimit: &store.QuantityLimitError{SKU: "s", Requested: 1001, Limit: 1000},
		},
		{
			name: "huge_quantity_does_not_overflow", inCart: 5, quantity: math.MaxInt64,
			wantLimit: &store.QuantityLimitError{
				SKU: "s", InCart: 5, Requested: math.MaxInt64, Limit: 1000,
			},
		},
		{name: "zero_quantity", quantity: 0, wantErr: store.ErrInvalidArgument},
		{name: "negative_max", quantity: 1, maxQuantity: -1, wantErr: store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.CheckAdd("s", tc.inCart, tc.quantity, tc.maxQuantity)
			if tc.wantLimit != nil {
				var limitErr *store.QuantityLimitError
				if !errors.As(err, &limitErr) {
					t.Fatalf("CheckAdd error = %v, want a QuantityLimitError", err)
				}
				if diff := cmp.Diff(tc.wantLimit, limitErr); diff != "" {
					t.Errorf("CheckAdd error mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckAdd error = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("CheckAdd = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPriceLines(t *testing.T) {
	usd := func(amount int64) store.Money { return store.Money{Currency: "USD", Amount: amount} }
	in := []store.OrderLine{
		{SKU: "a", UnitPrice: usd(1999), Quantity: 3, LineTotal: usd(7)},
		{SKU: "b", UnitPrice: usd(0), Quantity: 1},
		{SKU: "c", UnitPrice: usd(math.MaxInt64 / 1000), Quantity: 1},
	}
	lines, total, err := store.PriceLines(in)
	if err != nil {
		t.Fatalf("PriceLines: %v", err)
	}
	want := []store.OrderLine{
		{SKU: "a", UnitPrice: usd(1999), Quantity: 3, LineTotal: usd(5997)},
		{SKU: "b", UnitPrice: usd(0), Quantity: 1, LineTotal: usd(0)},
		{SKU: "c", UnitPrice: usd(math.MaxInt64 / 1000), Quantity: 1,
			LineTotal: usd(math.MaxInt64 / 1000)},
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("PriceLines lines mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(usd(5997+math.MaxInt64/1000), total); diff != "" {
		t.Errorf("PriceLines total mismatch (-want +got):\n%s", diff)
	}
	if in[0].LineTotal != usd(7) {
		t.Errorf("PriceLines changed its input: %+v", in[0])
	}
}

func TestPageToken(t *testing.T) {
	tests := []struct {
		name   string
		cursor store.Cursor
	}{
		{"ascii", store.Cursor{
			CreateTime: time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC),
			OrderID:    "order-1",
		}},
		{"unicode_id", store.Cursor{
			CreateTime: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
			OrderID:    "pedido-ñandú-🛒",
		}},
		{"before_1970", store.Cursor{
			CreateTime: time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC),
			OrderID:    "o",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := store.EncodePageToken(tc.cursor)
			got, err := store.DecodePageToken(token)
			if err != nil {
				t.Fatalf("DecodePageToken(%q): %v", token, err)
			}
			if diff := cmp.Diff(tc.cursor, got); diff != "" {
				t.Errorf("DecodePageToken(EncodePageToken(c)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPageSize(t *testing.T) {
	tests := []struct {
		name    string
		in      int
		want    int
		wantErr error
	}{
		{"zero_is_default", 0, store.DefaultPageSize, nil},
		{"small", 3, 3, nil},
		{"max", store.MaxPageSize, store.MaxPageSize, nil},
		{"over_max", store.MaxPageSize + 1, store.MaxPageSize, nil},
		{"negative", -1, 0, store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.PageSize(tc.in)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("PageSize(%d) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
