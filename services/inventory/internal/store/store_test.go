package store_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tienda/tienda/services/inventory/internal/store"
)

func TestNormalizeLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		lines   []store.Line
		want    []store.Line
		wantErr error
	}{
		{
			name:  "sorted_by_sku",
			lines: []store.Line{{SKU: "B", Quantity: 1}, {SKU: "A", Quantity: 2}},
			want:  []store.Line{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 1}},
		},
		{name: "empty", lines: nil, wantErr: store.ErrInvalidArgument},
		{
			name:    "duplicate",
			lines:   []store.Line{{SKU: "A", Quantity: 1}, {SKU: "A", Quantity: 2}},
			wantErr: store.ErrInvalidArgument,
		},
		{name: "zero", lines: []store.Line{{SKU: "A"}}, wantErr: store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := append([]store.Line(nil), tc.lines...)
			got, err := store.NormalizeLines(tc.lines)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("NormalizeLines(%v) = %v, want %v", tc.lines, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NormalizeLines(%v) mismatch (-want +got):\n%s", tc.lines, diff)
			}
			if diff := cmp.Diff(in, tc.lines); diff != "" {
				t.Errorf("NormalizeLines() changed its argument (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	t.Parallel()
	opts := store.ListOptions{Query: "Blue  MUG", Category: "kitchen", PageSize: 2}
	q, err := store.PrepareList(opts)
	if err != nil {
		t.Fatalf("PrepareList() = %v", err)
	}
	if diff := cmp.Diff([]string{"blue", "mug"}, q.Words); diff != "" {
		t.Errorf("PrepareList() words mismatch (-want +got):\n%s", diff)
	}

	page := q.Page([]store.Product{{SKU: "A"}, {SKU: "B"}, {SKU: "C"}})
	if len(page.Products) != 2 || page.NextPageToken == "" {
		t.Fatalf("Page(3 products, limit 2) = %+v, want 2 products and a token", page)
	}
	next, err := store.PrepareList(store.ListOptions{
		Query: "blue mug", Category: "kitchen", PageToken: page.NextPageToken,
	})
	if err != nil {
		t.Fatalf("PrepareList(next page) = %v", err)
	}
	if next.After != "B" {
		t.Errorf("PrepareList(next page).After = %q, want %q", next.After, "B")
	}
	if last := next.Page([]store.Product{{SKU: "C"}}); last.NextPageToken != "" {
		t.Errorf("Page(last) token = %q, want none", last.NextPageToken)
	}
}

func TestShortageError(t *testing.T) {
	t.Parallel()
	var err error = &store.ShortageError{Shortages: []store.Shortage{
		{SKU: "MUG-ENAMEL-WHT", Requested: 5, Available: 2},
	}}
	if !errors.Is(err, store.ErrInsufficientStock) {
		t.Errorf("errors.Is(%v, ErrInsufficientStock) = false", err)
	}
	want := "not enough stock: MUG-ENAMEL-WHT has 2 left, 5 requested"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
