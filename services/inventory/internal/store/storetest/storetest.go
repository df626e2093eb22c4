// Package storetest is the contract test suite that every [store.Store]
// implementation must pass. Implementations call [Run] from their tests, and
// [RunReplicas] when several stores can share one database.
package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tienda/tienda/services/inventory/internal/store"
)

// t0 is the time at which every test starts; tests move time forward
// explicitly.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535000, time.UTC)

// OpenFunc returns a new, empty store that is closed when t ends.
type OpenFunc func(t *testing.T) store.Store

// Run runs the whole contract suite, each subtest on a store of its own.
func Run(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		test func(t *testing.T, s store.Store)
	}{
		{"upsert_and_get", testUpsertAndGet},
		{"upsert_keeps_stock", testUpsertKeepsStock},
		{"upsert_rejects_invalid", testUpsertRejectsInvalid},
		{"list_pages", testListPages},
		{"list_filters", testListFilters},
		{"list_page_size", testListPageSize},
		{"list_page_token_errors", testListPageTokenErrors},
		{"batch_get", testBatchGet},
		{"stock_levels", testStockLevels},
		{"adjust_stock", testAdjustStock},
		{"reserve_commit_release", testReserveCommitRelease},
		{"reserve_all_or_nothing", testReserveAllOrNothing},
		{"reserve_rejects_invalid", testReserveRejectsInvalid},
		{"reserve_idempotent", testReserveIdempotent},
		{"closed_reservations", testClosedReservations},
		{"release_expired", testReleaseExpired},
		{"load_catalog", testLoadCatalog},
		{"context_canceled", testContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, open(t))
		})
	}

	t.Run("concurrency", func(t *testing.T) {
		t.Parallel()
		RunReplicas(t, func(t *testing.T) []store.Store { return []store.Store{open(t)} })
	})
}

// RunReplicas runs the concurrency tests with their work spread over
// several stores that share one database, as replicas of the service do.
// open returns the stores, which are closed when t ends.
func RunReplicas(t *testing.T, open func(t *testing.T) []store.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, stores []store.Store)
	}{
		{"no_oversell", testNoOversell},
		{"same_reservation_id", testSameReservationID},
		{"commit_release_race", testCommitReleaseRace},
		{"mixed_operations_keep_identity", testMixedOperations},
		{"load_catalog_once", testLoadCatalogOnce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, open(t))
		})
	}
}

// product returns a valid product priced in USD.
func product(sku, name, description, category string, cents int64) store.Product {
	return store.Product{
		SKU:         sku,
		Name:        name,
		Description: description,
		Category:    category,
		Price:       store.Money{CurrencyCode: "USD", Amount: cents},
	}
}

// line returns a reservation line.
func line(sku string, quantity int64) store.Line {
	return store.Line{SKU: sku, Quantity: quantity}
}

// hold reserves lines for a minute from t0, and fails tb if it cannot.
func hold(tb testing.TB, s store.Store, id string, lines ...store.Line) store.Reservation {
	tb.Helper()
	r, err := s.Reserve(tb.Context(), id, lines, t0, t0.Add(time.Minute))
	if err != nil {
		tb.Fatalf("Reserve(%s, %v) = %v", id, lines, err)
	}
	return r
}

// addProduct creates a product with the given stock.
func addProduct(tb testing.TB, s store.Store, p store.Product, stock int64) store.Product {
	tb.Helper()
	got, err := s.UpsertProduct(tb.Context(), p, t0)
	if err != nil {
		tb.Fatalf("UpsertProduct(%s) = %v", p.SKU, err)
	}
	if stock != 0 {
		if got, err = s.AdjustStock(tb.Context(), p.SKU, stock, "initial stock", t0); err != nil {
			tb.Fatalf("AdjustStock(%s, %d) = %v", p.SKU, stock, err)
		}
	}
	return got
}

// stock is the four stock buckets of a product.
type stock struct {
	Available, Reserved, Sold, Adjusted int64
}

func stockOf(p store.Product) stock {
	return stock{p.Available, p.Reserved, p.Sold, p.Adjusted}
}

// checkStock fails tb unless the product's stock is want.
func checkStock(tb testing.TB, s store.Store, sku string, want stock) {
	tb.Helper()
	p, err := s.GetProduct(tb.Context(), sku)
	if err != nil {
		tb.Fatalf("GetProduct(%s) = %v", sku, err)
	}
	if diff := cmp.Diff(want, stockOf(p)); diff != "" {
		tb.Errorf("stock of %s mismatch (-want +got):\n%s", sku, diff)
	}
}

// checkIdentity fails tb unless the stock of p is consistent.
func checkIdentity(tb testing.TB, p store.Product) {
	tb.Helper()
	if p.Available < 0 || p.Reserved < 0 || p.Sold < 0 ||
		p.Available+p.Reserved+p.Sold != p.Adjusted {
		tb.Errorf("stock of %s breaks available + reserved + sold == adjusted: %+v",
			p.SKU, stockOf(p))
	}
}

// ignoreStock compares products by their catalog fields only.
var ignoreStock = cmpopts.IgnoreFields(store.Product{},
	"Available", "Reserved", "Sold", "Adjusted", "StockVersion", "UpdateTime")

func skusOf(products []store.Product) []string {
	skus := make([]string, len(products))
	for i, p := range products {
		skus[i] = p.SKU
	}
	return skus
}

func testUpsertAndGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := product("MUG-ENAMEL-WHT", "Enamel Mug", "A white enamel mug.", "kitchen", 1800)
	want.UpdateTime = t0

	got, err := s.UpsertProduct(ctx, want, t0)
	if err != nil {
		t.Fatalf("UpsertProduct() = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpsertProduct() mismatch (-want +got):\n%s", diff)
	}
	if got, err = s.GetProduct(ctx, want.SKU); err != nil {
		t.Fatalf("GetProduct() = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetProduct() mismatch (-want +got):\n%s", diff)
	}

	// An upsert of an existing SKU updates its catalog fields.
	later := t0.Add(time.Hour)
	want.Name, want.Description, want.Category = "Enamel Camp Mug", "", "outdoor"
	want.Price = store.Money{CurrencyCode: "EUR", Amount: 1500}
	want.UpdateTime = later
	if _, err := s.UpsertProduct(ctx, want, later); err != nil {
		t.Fatalf("UpsertProduct() again = %v", err)
	}
	if got, err = s.GetProduct(ctx, want.SKU); err != nil {
		t.Fatalf("GetProduct() = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetProduct() after update mismatch (-want +got):\n%s", diff)
	}

	if _, err := s.GetProduct(ctx, "NO-SUCH-SKU"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetProduct(unknown) = %v, want ErrNotFound", err)
	}
}

func testUpsertKeepsStock(t *testing.T, s store.Store) {
	p := addProduct(t, s, product("TENT-2P", "Tent", "Two people.", "outdoor", 19900), 7)
	hold(t, s, "r1", line(p.SKU, 2))

	p.Name = "Two-Person Tent"
	p.Available, p.Reserved, p.Sold, p.Adjusted = 100, 100, 100, 300 // must be ignored
	got, err := s.UpsertProduct(t.Context(), p, t0)
	if err != nil {
		t.Fatalf("UpsertProduct() = %v", err)
	}
	if diff := cmp.Diff(stock{Available: 5, Reserved: 2, Adjusted: 7}, stockOf(got)); diff != "" {
		t.Errorf("UpsertProduct() changed stock (-want +got):\n%s", diff)
	}
}

func testUpsertRejectsInvalid(t *testing.T, s store.Store) {
	valid := product("OK-1", "Name", "", "misc", 100)
	tests := []struct {
		name   string
		change func(p *store.Product)
	}{
		{"empty_sku", func(p *store.Product) { p.SKU = "" }},
		{"sku_with_space", func(p *store.Product) { p.SKU = "A B" }},
		{"sku_too_long", func(p *store.Product) { p.SKU = strings.Repeat("A", 65) }},
		{"empty_name", func(p *store.Product) { p.Name = " " }},
		{"empty_category", func(p *store.Product) { p.Category = "" }},
		{"negative_price", func(p *store.Product) { p.Price.Amount = -1 }},
		{"bad_currency", func(p *store.Product) { p.Price.CurrencyCode = "usd" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := valid
			tc.change(&p)
			_, err := s.UpsertProduct(t.Context(), p, t0)
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Errorf("UpsertProduct(%+v) = %v, want ErrInvalidArgument", p, err)
			}
		})
	}
	page, err := s.ListProducts(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatalf("ListProducts() = %v", err)
	}
	if len(page.Products) != 0 {
		t.Errorf("ListProducts() = %v, want nothing after invalid upserts", skusOf(page.Products))
	}
}

// listAll pages through the store and returns the SKUs of every page.
func listAll(tb testing.TB, s store.Store, opts store.ListOptions) [][]string {
	tb.Helper()
	var pages [][]string
	for {
		page, err := s.ListProducts(tb.Context(), opts)
		if err != nil {
			tb.Fatalf("ListProducts(%+v) = %v", opts, err)
		}
		pages = append(pages, skusOf(page.Products))
		if page.NextPageToken == "" {
			return pages
		}
		if len(pages) > 100 {
			tb.Fatalf("ListProducts(%+v) never ends", opts)
		}
		opts.PageToken = page.NextPageToken
	}
}

func testListPages(t *testing.T, s store.Store) {
	// Insert in a shuffled order: pages must come in SKU order anyway.
	r := rand.New(rand.NewPCG(1, 2))
	for _, i := range r.Perm(25) {
		category := "odd"
		if i%2 == 0 {
			category = "even"
		}
		addProduct(t, s, product(fmt.Sprintf("SKU-%02d", i), "Thing", "", category, 100), 0)
	}
	skus := func(from, to, step int) []string {
		var out []string
		for i := from; i < to; i += step {
			out = append(out, fmt.Sprintf("SKU-%02d", i))
		}
		return out
	}

	tests := []struct {
		name string
		opts store.ListOptions
		want [][]string
	}{
		{
			name: "three_pages",
			opts: store.ListOptions{PageSize: 10},
			want: [][]string{skus(0, 10, 1), skus(10, 20, 1), skus(20, 25, 1)},
		},
		{
			name: "exact_fit",
			opts: store.ListOptions{PageSize: 25},
			want: [][]string{skus(0, 25, 1)},
		},
		{
			name: "filtered_by_category",
			opts: store.ListOptions{PageSize: 5, Category: "even"},
			want: [][]string{skus(0, 10, 2), skus(10, 20, 2), skus(20, 25, 2)},
		},
		{
			name: "filtered_by_query",
			opts: store.ListOptions{PageSize: 2, Query: "sku-1"},
			want: [][]string{skus(10, 12, 1), skus(12, 14, 1), skus(14, 16, 1), skus(16, 18, 1),
				skus(18, 20, 1)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := listAll(t, s, tc.opts)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pages of ListProducts(%+v) mismatch (-want +got):\n%s", tc.opts, diff)
			}
		})
	}
}

func testListFilters(t *testing.T, s store.Store) {
	for _, p := range []store.Product{
		product("MUG-ENAMEL-WHT", "Enamel Mug", "A white enamel camping mug.", "kitchen", 1800),
		product("MUG-CERAMIC-BLU", "Ceramic Mug", "Blue glazed stoneware.", "kitchen", 2200),
		product("PAN-CAST-IRON", "Cast Iron Skillet", "Pre-seasoned pan.", "kitchen", 4500),
		product("BOWL-CAFE", "Café au Lait Bowl", "Wide and deep.", "kitchen", 1600),
		product("TENT-2P", "Two-Person Tent", "Light enough for long hikes.", "outdoor", 19900),
		product("BOOK-GOPL", "The Go Language", "Learn Go, 100% hands-on.", "books", 3999),
	} {
		addProduct(t, s, p, 1)
	}

	tests := []struct {
		name     string
		query    string
		category string
		want     []string
	}{
		{"everything", "", "", []string{"BOOK-GOPL", "BOWL-CAFE", "MUG-CERAMIC-BLU",
			"MUG-ENAMEL-WHT", "PAN-CAST-IRON", "TENT-2P"}},
		{"one_word", "mug", "", []string{"MUG-CERAMIC-BLU", "MUG-ENAMEL-WHT"}},
		{"every_word_must_match", "MUG blue", "", []string{"MUG-CERAMIC-BLU"}},
		{"words_in_any_order", "white enamel", "", []string{"MUG-ENAMEL-WHT"}},
		{"words_across_fields", "kitchen iron", "", []string{"PAN-CAST-IRON"}},
		{"sku_match", "mug-enamel", "", []string{"MUG-ENAMEL-WHT"}},
		{"substring", "person", "", []string{"TENT-2P"}},
		{"non_ascii_case", "CAFÉ", "", []string{"BOWL-CAFE"}},
		{"extra_spaces", "  ceramic   mug ", "", []string{"MUG-CERAMIC-BLU"}},
		{"no_match", "teapot", "", nil},
		{"percent_is_literal", "100%", "", []string{"BOOK-GOPL"}},
		{"wildcard_is_literal", "%", "", []string{"BOOK-GOPL"}},
		{"underscore_is_literal", "_", "", nil},
		{"category", "", "kitchen", []string{"BOWL-CAFE", "MUG-CERAMIC-BLU",
			"MUG-ENAMEL-WHT", "PAN-CAST-IRON"}},
		{"category_and_query", "mug", "kitchen", []string{"MUG-CERAMIC-BLU", "MUG-ENAMEL-WHT"}},
		{"category_is_exact", "", "Kitchen", nil},
		{"unknown_category", "", "garden", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := store.ListOptions{Query: tc.query, Category: tc.category}
			page, err := s.ListProducts(t.Context(), opts)
			if err != nil {
				t.Fatalf("ListProducts(%+v) = %v", opts, err)
			}
			if diff := cmp.Diff(tc.want, skusOf(page.Products), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListProducts(%+v) mismatch (-want +got):\n%s", opts, diff)
			}
			if page.NextPageToken != "" {
				t.Errorf("ListProducts(%+v) token = %q, want none", opts, page.NextPageToken)
			}
		})
	}
}

func testListPageSize(t *testing.T, s store.Store) {
	for i := range 120 {
		addProduct(t, s, product(fmt.Sprintf("P-%03d", i), "Thing", "", "misc", 1), 0)
	}
	tests := []struct {
		name     string
		pageSize int
		want     int
	}{
		{"zero_means_default", 0, store.DefaultPageSize},
		{"negative_means_default", -5, store.DefaultPageSize},
		{"one", 1, 1},
		{"largest", store.MaxPageSize, store.MaxPageSize},
		{"capped", 1000, store.MaxPageSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListProducts(t.Context(), store.ListOptions{PageSize: tc.pageSize})
			if err != nil {
				t.Fatalf("ListProducts(PageSize: %d) = %v", tc.pageSize, err)
			}
			if len(page.Products) != tc.want {
				t.Errorf("ListProducts(PageSize: %d) returned %d products, want %d",
					tc.pageSize, len(page.Products), tc.want)
			}
		})
	}
}

func testListPageTokenErrors(t *testing.T, s store.Store) {
	for _, sku := range []string{"MUG-A", "MUG-B", "MUG-C"} {
		addProduct(t, s, product(sku, "Mug", "", "kitchen", 1), 0)
	}
	first, err := s.ListProducts(t.Context(), store.ListOptions{Query: "mug", PageSize: 1})
	if err != nil {
		t.Fatalf("ListProducts() = %v", err)
	}
	token := first.NextPageToken
	if token == "" {
		t.Fatal("ListProducts() returned no next page token")
	}

	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name    string
		opts    store.ListOptions
		wantErr bool
	}{
		{"same_filters", store.ListOptions{Query: "mug", PageToken: token}, false},
		{"same_words_other_case", store.ListOptions{Query: " MUG ", PageToken: token}, false},
		{"other_page_size", store.ListOptions{Query: "mug", PageSize: 50, PageToken: token}, false},
		{"other_query", store.ListOptions{Query: "cup", PageToken: token}, true},
		{"no_query", store.ListOptions{PageToken: token}, true},
		{"other_category", store.ListOptions{Query: "mug", Category: "x", PageToken: token}, true},
		{"garbage", store.ListOptions{PageToken: "not a token!"}, true},
		{"truncated", store.ListOptions{Query: "mug", PageToken: token[:len(token)/2]}, true},
		{"empty_json", store.ListOptions{PageToken: b64([]byte("{}"))}, true},
		{"not_json", store.ListOptions{PageToken: b64([]byte("MUG-A"))}, true},
		{"future_version", store.ListOptions{PageToken: b64([]byte(`{"v":2,"a":"MUG-A"}`))}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListProducts(t.Context(), tc.opts)
			if tc.wantErr {
				if !errors.Is(err, store.ErrInvalidPageToken) {
					t.Errorf("ListProducts(%+v) = %v, want ErrInvalidPageToken", tc.opts, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ListProducts(%+v) = %v", tc.opts, err)
			}
			if got := skusOf(page.Products); len(got) == 0 || got[0] != "MUG-B" {
				t.Errorf("ListProducts(%+v) = %v, want a page starting at MUG-B", tc.opts, got)
			}
		})
	}
}

func testBatchGet(t *testing.T, s store.Store) {
	a := addProduct(t, s, product("A-1", "A", "", "misc", 1), 3)
	b := addProduct(t, s, product("B-1", "B", "", "misc", 2), 0)

	tests := []struct {
		name        string
		skus        []string
		wantFound   []store.Product
		wantMissing []string
	}{
		{"none", nil, nil, nil},
		{"request_order", []string{"B-1", "A-1"}, []store.Product{b, a}, nil},
		{"duplicates_once", []string{"A-1", "B-1", "A-1"}, []store.Product{a, b}, nil},
		{"missing", []string{"X-1", "A-1", "Y-1", "X-1"}, []store.Product{a},
			[]string{"X-1", "Y-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			found, missing, err := s.BatchGetProducts(t.Context(), tc.skus)
			if err != nil {
				t.Fatalf("BatchGetProducts(%v) = %v", tc.skus, err)
			}
			if diff := cmp.Diff(tc.wantFound, found, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("BatchGetProducts(%v) found mismatch (-want +got):\n%s", tc.skus, diff)
			}
			if diff := cmp.Diff(tc.wantMissing, missing, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("BatchGetProducts(%v) missing mismatch (-want +got):\n%s", tc.skus, diff)
			}
		})
	}
}

func testStockLevels(t *testing.T, s store.Store) {
	ctx := t.Context()
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 3)
	addProduct(t, s, product("B-1", "B", "", "misc", 1), 0)

	levels := func() map[string]store.StockLevel {
		t.Helper()
		got, err := s.StockLevels(ctx, []string{"A-1", "B-1", "NOPE", "A-1"})
		if err != nil {
			t.Fatalf("StockLevels() = %v", err)
		}
		m := make(map[string]store.StockLevel)
		for _, l := range got {
			if _, dup := m[l.SKU]; dup {
				t.Errorf("StockLevels() returned %s twice", l.SKU)
			}
			m[l.SKU] = l
		}
		return m
	}
	before := levels()
	if len(before) != 2 || before["A-1"].Available != 3 || before["B-1"].Available != 0 {
		t.Fatalf("StockLevels() = %v, want A-1 with 3 and B-1 with 0", before)
	}

	// Every stock change raises the version; catalog changes do not.
	hold(t, s, "r1", line("A-1", 1))
	if _, err := s.UpsertProduct(ctx, product("B-1", "B2", "", "misc", 1), t0); err != nil {
		t.Fatalf("UpsertProduct() = %v", err)
	}
	after := levels()
	if a := after["A-1"]; a.Available != 2 || a.Version <= before["A-1"].Version {
		t.Errorf("StockLevels(A-1) after Reserve = %+v, want 2 available and a version above %d",
			a, before["A-1"].Version)
	}
	if diff := cmp.Diff(before["B-1"], after["B-1"]); diff != "" {
		t.Errorf("UpsertProduct() changed the stock level (-want +got):\n%s", diff)
	}
}

func testAdjustStock(t *testing.T, s store.Store) {
	ctx := t.Context()
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 0)

	steps := []struct {
		name    string
		delta   int64
		want    stock
		wantErr error
	}{
		{"restock", 10, stock{Available: 10, Adjusted: 10}, nil},
		{"write_off", -3, stock{Available: 7, Adjusted: 7}, nil},
		{"write_off_too_much", -8, stock{Available: 7, Adjusted: 7}, store.ErrInsufficientStock},
		{"write_off_all", -7, stock{Available: 0, Adjusted: 0}, nil},
		{"restock_again", 2, stock{Available: 2, Adjusted: 2}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			p, err := s.AdjustStock(ctx, "A-1", st.delta, st.name, t0)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("AdjustStock(%d) = %v, want %v", st.delta, err, st.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(st.want, stockOf(p)); diff != "" {
					t.Errorf("AdjustStock(%d) mismatch (-want +got):\n%s", st.delta, diff)
				}
			}
			checkStock(t, s, "A-1", st.want)
		})
	}

	// Units held by a reservation cannot be written off.
	hold(t, s, "r1", line("A-1", 2))
	_, err := s.AdjustStock(ctx, "A-1", -1, "damaged", t0)
	var short *store.ShortageError
	if !errors.As(err, &short) {
		t.Fatalf("AdjustStock(-1) with everything reserved = %v, want a *ShortageError", err)
	}
	want := []store.Shortage{{SKU: "A-1", Requested: 1, Available: 0}}
	if diff := cmp.Diff(want, short.Shortages); diff != "" {
		t.Errorf("AdjustStock(-1) shortages mismatch (-want +got):\n%s", diff)
	}

	if _, err := s.AdjustStock(ctx, "NOPE", 1, "", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AdjustStock(unknown) = %v, want ErrNotFound", err)
	}
}

func testReserveCommitRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 10)
	addProduct(t, s, product("B-1", "B", "", "misc", 1), 5)
	expire := t0.Add(2 * time.Minute)

	// Lines come back in SKU order whatever the order of the request.
	r, err := s.Reserve(ctx, "order-1", []store.Line{line("B-1", 2), line("A-1", 3)}, t0, expire)
	if err != nil {
		t.Fatalf("Reserve(order-1) = %v", err)
	}
	want := store.Reservation{
		ID:         "order-1",
		Lines:      []store.Line{line("A-1", 3), line("B-1", 2)},
		State:      store.StateHeld,
		ExpireTime: expire,
		CreateTime: t0,
		UpdateTime: t0,
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("Reserve(order-1) mismatch (-want +got):\n%s", diff)
	}
	if got, err := s.GetReservation(ctx, "order-1"); err != nil {
		t.Errorf("GetReservation(order-1) = %v", err)
	} else if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetReservation(order-1) mismatch (-want +got):\n%s", diff)
	}
	checkStock(t, s, "A-1", stock{Available: 7, Reserved: 3, Adjusted: 10})
	checkStock(t, s, "B-1", stock{Available: 3, Reserved: 2, Adjusted: 5})

	// Commit sells the held stock.
	later := t0.Add(time.Minute)
	if r, err = s.Commit(ctx, "order-1", later); err != nil {
		t.Fatalf("Commit(order-1) = %v", err)
	}
	want.State, want.UpdateTime = store.StateCommitted, later
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("Commit(order-1) mismatch (-want +got):\n%s", diff)
	}
	checkStock(t, s, "A-1", stock{Available: 7, Sold: 3, Adjusted: 10})
	checkStock(t, s, "B-1", stock{Available: 3, Sold: 2, Adjusted: 5})

	// Release returns the held stock.
	if _, err := s.Reserve(ctx, "order-2", []store.Line{line("A-1", 7)}, t0, expire); err != nil {
		t.Fatalf("Reserve(order-2) = %v", err)
	}
	checkStock(t, s, "A-1", stock{Available: 0, Reserved: 7, Sold: 3, Adjusted: 10})
	released, err := s.Release(ctx, "order-2", later)
	if err != nil || released == nil {
		t.Fatalf("Release(order-2) = %v, %v", released, err)
	}
	if released.State != store.StateReleased {
		t.Errorf("Release(order-2) state = %v, want released", released.State)
	}
	checkStock(t, s, "A-1", stock{Available: 7, Sold: 3, Adjusted: 10})

	if _, err := s.Commit(ctx, "order-3", later); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Commit(unknown) = %v, want ErrNotFound", err)
	}
	if r, err := s.Release(ctx, "order-3", later); r != nil || err != nil {
		t.Errorf("Release(unknown) = %v, %v, want nil, nil", r, err)
	}
	if _, err := s.GetReservation(ctx, "order-3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetReservation(unknown) = %v, want ErrNotFound", err)
	}
}

func testReserveAllOrNothing(t *testing.T, s store.Store) {
	ctx := t.Context()
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 10)
	addProduct(t, s, product("B-1", "B", "", "misc", 1), 2)
	addProduct(t, s, product("C-1", "C", "", "misc", 1), 0)

	_, err := s.Reserve(ctx, "r1", []store.Line{line("C-1", 1), line("A-1", 5), line("B-1", 3)},
		t0, t0.Add(time.Minute))
	var short *store.ShortageError
	if !errors.As(err, &short) || !errors.Is(err, store.ErrInsufficientStock) {
		t.Fatalf("Reserve() = %v, want a *ShortageError", err)
	}
	want := []store.Shortage{
		{SKU: "B-1", Requested: 3, Available: 2},
		{SKU: "C-1", Requested: 1, Available: 0},
	}
	if diff := cmp.Diff(want, short.Shortages); diff != "" {
		t.Errorf("Reserve() shortages mismatch (-want +got):\n%s", diff)
	}
	wantMsg := "not enough stock: B-1 has 2 left, 3 requested; C-1 has 0 left, 1 requested"
	if got := short.Error(); got != wantMsg {
		t.Errorf("Reserve() error = %q, want %q", got, wantMsg)
	}

	// Nothing was held, and the id stays free.
	checkStock(t, s, "A-1", stock{Available: 10, Adjusted: 10})
	checkStock(t, s, "B-1", stock{Available: 2, Adjusted: 2})
	if _, err := s.GetReservation(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetReservation(r1) after a failed Reserve = %v, want ErrNotFound", err)
	}
	if _, err := s.Reserve(ctx, "r1", []store.Line{line("B-1", 2)}, t0, t0); err != nil {
		t.Errorf("Reserve(r1) with enough stock = %v", err)
	}

	_, err = s.Reserve(ctx, "r2", []store.Line{line("A-1", 1), line("NOPE", 1)}, t0, t0)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Reserve() of an unknown SKU = %v, want ErrNotFound", err)
	}
	checkStock(t, s, "A-1", stock{Available: 10, Adjusted: 10})
}

func testReserveRejectsInvalid(t *testing.T, s store.Store) {
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 10)
	tests := []struct {
		name  string
		id    string
		lines []store.Line
	}{
		{"no_lines", "r1", nil},
		{"zero_quantity", "r1", []store.Line{line("A-1", 0)}},
		{"negative_quantity", "r1", []store.Line{line("A-1", -1)}},
		{"duplicate_sku", "r1", []store.Line{line("A-1", 1), line("A-1", 2)}},
		{"empty_sku", "r1", []store.Line{line("", 1)}},
		{"empty_id", "", []store.Line{line("A-1", 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Reserve(t.Context(), tc.id, tc.lines, t0, t0.Add(time.Minute))
			if !errors.Is(err, store.ErrInvalidArgument) {
				t.Errorf("Reserve(%q, %v) = %v, want ErrInvalidArgument", tc.id, tc.lines, err)
			}
		})
	}
	checkStock(t, s, "A-1", stock{Available: 10, Adjusted: 10})
}

func testReserveIdempotent(t *testing.T, s store.Store) {
	ctx := t.Context()
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 10)
	addProduct(t, s, product("B-1", "B", "", "misc", 1), 10)
	lines := []store.Line{line("A-1", 2), line("B-1", 1)}

	first, err := s.Reserve(ctx, "order-1", lines, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("Reserve() = %v", err)
	}
	// A retry, later and with the lines in another order, returns the
	// original reservation and holds nothing more.
	later := t0.Add(30 * time.Second)
	again, err := s.Reserve(ctx, "order-1", []store.Line{line("B-1", 1), line("A-1", 2)},
		later, later.Add(time.Minute))
	if err != nil {
		t.Fatalf("Reserve() retry = %v", err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("Reserve() retry mismatch (-want +got):\n%s", diff)
	}
	checkStock(t, s, "A-1", stock{Available: 8, Reserved: 2, Adjusted: 10})

	conflicts := []struct {
		name  string
		lines []store.Line
	}{
		{"other_quantity", []store.Line{line("A-1", 3), line("B-1", 1)}},
		{"fewer_lines", []store.Line{line("A-1", 2)}},
		{"more_lines", []store.Line{line("A-1", 2), line("B-1", 1), line("C-1", 1)}},
	}
	for _, tc := range conflicts {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Reserve(ctx, "order-1", tc.lines, later, later.Add(time.Minute))
			if !errors.Is(err, store.ErrReservationConflict) {
				t.Errorf("Reserve(order-1, %v) = %v, want ErrReservationConflict", tc.lines, err)
			}
		})
	}
	checkStock(t, s, "A-1", stock{Available: 8, Reserved: 2, Adjusted: 10})

	// A released id bought nothing, so a retry holds stock again, for the
	// lines it asks for now.
	if _, err := s.Release(ctx, "order-1", later); err != nil {
		t.Fatalf("Release() = %v", err)
	}
	checkStock(t, s, "A-1", stock{Available: 10, Adjusted: 10})
	again, err = s.Reserve(ctx, "order-1", []store.Line{line("A-1", 3)}, later, later.Add(time.Minute))
	if err != nil || again.State != store.StateHeld || len(again.Lines) != 1 {
		t.Errorf("Reserve() of a released id = %+v, %v, want it held for 3 of A-1", again, err)
	}
	checkStock(t, s, "A-1", stock{Available: 7, Reserved: 3, Adjusted: 10})
	checkStock(t, s, "B-1", stock{Available: 10, Adjusted: 10})
}

func testClosedReservations(t *testing.T, s store.Store) {
	// Each case reserves 2 of 10 units, runs the operations in order and
	// checks the error of each and the stock at the end.
	type op struct {
		name    string // commit or release
		wantErr error
	}
	tests := []struct {
		name      string
		ops       []op
		wantState store.State
		want      stock
	}{
		{
			name:      "commit_twice",
			ops:       []op{{"commit", nil}, {"commit", nil}},
			wantState: store.StateCommitted,
			want:      stock{Available: 8, Sold: 2, Adjusted: 10},
		},
		{
			name:      "release_twice",
			ops:       []op{{"release", nil}, {"release", nil}},
			wantState: store.StateReleased,
			want:      stock{Available: 10, Adjusted: 10},
		},
		{
			name:      "release_after_commit",
			ops:       []op{{"commit", nil}, {"release", store.ErrReservationClosed}},
			wantState: store.StateCommitted,
			want:      stock{Available: 8, Sold: 2, Adjusted: 10},
		},
		{
			// The order the hold was for exists after all: the stock is
			// taken again while it is there.
			name:      "commit_after_release",
			ops:       []op{{"release", nil}, {"commit", nil}},
			wantState: store.StateCommitted,
			want:      stock{Available: 8, Sold: 2, Adjusted: 10},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			sku := "SKU-" + tc.name
			addProduct(t, s, product(sku, "Thing", "", "misc", 1), 10)
			hold(t, s, tc.name, line(sku, 2))
			for _, o := range tc.ops {
				var err error
				if o.name == "commit" {
					_, err = s.Commit(ctx, tc.name, t0)
				} else {
					_, err = s.Release(ctx, tc.name, t0)
				}
				if !errors.Is(err, o.wantErr) {
					t.Errorf("%s = %v, want %v", o.name, err, o.wantErr)
				}
			}
			r, err := s.GetReservation(ctx, tc.name)
			if err != nil {
				t.Fatalf("GetReservation() = %v", err)
			}
			if r.State != tc.wantState {
				t.Errorf("state = %v, want %v", r.State, tc.wantState)
			}
			checkStock(t, s, sku, tc.want)
		})
	}
}

func testReleaseExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 10)
	reserve := func(id string, qty int64, ttl time.Duration) {
		t.Helper()
		_, err := s.Reserve(ctx, id, []store.Line{line("A-1", qty)}, t0, t0.Add(ttl))
		if err != nil {
			t.Fatalf("Reserve(%s) = %v", id, err)
		}
	}
	reserve("short", 1, time.Minute)
	reserve("long", 2, time.Hour)
	reserve("committed-late", 3, time.Minute)
	reserve("batch-1", 1, 2*time.Minute)
	reserve("batch-2", 1, 2*time.Minute)

	releaseExpired := func(now time.Time, limit int) []string {
		t.Helper()
		released, err := s.ReleaseExpired(ctx, now, limit)
		if err != nil {
			t.Fatalf("ReleaseExpired(%v) = %v", now, err)
		}
		var ids []string
		for _, r := range released {
			if r.State != store.StateReleased {
				t.Errorf("ReleaseExpired() returned %s in state %v", r.ID, r.State)
			}
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		return ids
	}

	if got := releaseExpired(t0.Add(59*time.Second), 100); len(got) != 0 {
		t.Errorf("ReleaseExpired() before any expiry released %v", got)
	}

	// A held reservation past its expire time can still be committed until
	// the sweeper gets to it: its stock is still held.
	if _, err := s.Commit(ctx, "committed-late", t0.Add(90*time.Second)); err != nil {
		t.Errorf("Commit() after expiry, before the sweep = %v", err)
	}
	got, want := releaseExpired(t0.Add(90*time.Second), 100), []string{"short"}
	if !slices.Equal(got, want) {
		t.Errorf("ReleaseExpired(+90s) = %v, want %v", got, want)
	}
	checkStock(t, s, "A-1", stock{Available: 3, Reserved: 4, Sold: 3, Adjusted: 10})
	// Committing a released reservation takes its stock again, and fails
	// with the shortage when the stock is gone.
	if _, err := s.AdjustStock(ctx, "A-1", -3, "sold elsewhere", t0); err != nil {
		t.Fatalf("AdjustStock(-3) = %v", err)
	}
	_, err := s.Commit(ctx, "short", t0.Add(91*time.Second))
	var shortage *store.ShortageError
	if !errors.As(err, &shortage) {
		t.Errorf("Commit() of a released reservation without stock = %v, want a shortage", err)
	}
	if _, err := s.AdjustStock(ctx, "A-1", 3, "found again", t0); err != nil {
		t.Fatalf("AdjustStock(+3) = %v", err)
	}

	// The limit bounds one call; the next call gets the rest.
	if got := releaseExpired(t0.Add(3*time.Minute), 1); len(got) != 1 {
		t.Errorf("ReleaseExpired(limit 1) = %v, want one reservation", got)
	}
	if got := releaseExpired(t0.Add(3*time.Minute), 1); len(got) != 1 {
		t.Errorf("ReleaseExpired(limit 1) again = %v, want one reservation", got)
	}
	if got := releaseExpired(t0.Add(3*time.Minute), 100); len(got) != 0 {
		t.Errorf("ReleaseExpired() with nothing left = %v", got)
	}
	checkStock(t, s, "A-1", stock{Available: 5, Reserved: 2, Sold: 3, Adjusted: 10})
}

func testLoadCatalog(t *testing.T, s store.Store) {
	ctx := t.Context()
	items := []store.CatalogItem{
		{Product: product("A-1", "A", "About A.", "misc", 100), InitialStock: 5},
		{Product: product("B-1", "B", "About B.", "misc", 200), InitialStock: 0},
	}
	n, err := s.LoadCatalog(ctx, items, t0)
	if err != nil || n != 2 {
		t.Fatalf("LoadCatalog() = %d, %v, want 2", n, err)
	}
	checkStock(t, s, "A-1", stock{Available: 5, Adjusted: 5})
	checkStock(t, s, "B-1", stock{})
	got, err := s.GetProduct(ctx, "A-1")
	if err != nil {
		t.Fatalf("GetProduct() = %v", err)
	}
	if diff := cmp.Diff(items[0].Product, got, ignoreStock); diff != "" {
		t.Errorf("GetProduct() after LoadCatalog() mismatch (-want +got):\n%s", diff)
	}

	// A store with products is left alone.
	if n, err := s.LoadCatalog(ctx, items, t0); err != nil || n != 0 {
		t.Errorf("LoadCatalog() again = %d, %v, want 0", n, err)
	}
	checkStock(t, s, "A-1", stock{Available: 5, Adjusted: 5})

	invalid := []store.CatalogItem{{Product: product("C-1", "C", "", "misc", 1), InitialStock: -1}}
	if _, err := s.LoadCatalog(ctx, invalid, t0); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("LoadCatalog(negative stock) = %v, want ErrInvalidArgument", err)
	}
}

func testContextCanceled(t *testing.T, s store.Store) {
	addProduct(t, s, product("A-1", "A", "", "misc", 1), 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	calls := []struct {
		name string
		call func() error
	}{
		{"get_product", func() error { _, err := s.GetProduct(ctx, "A-1"); return err }},
		{"list_products", func() error {
			_, err := s.ListProducts(ctx, store.ListOptions{})
			return err
		}},
		{"adjust_stock", func() error {
			_, err := s.AdjustStock(ctx, "A-1", 1, "", t0)
			return err
		}},
		{"reserve", func() error {
			_, err := s.Reserve(ctx, "r1", []store.Line{line("A-1", 1)}, t0, t0.Add(time.Minute))
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context = %v, want context.Canceled", tc.name, err)
			}
		})
	}
	checkStock(t, s, "A-1", stock{Available: 10, Adjusted: 10})
}

// pick returns the store that worker i uses.
func pick(stores []store.Store, i int) store.Store {
	return stores[i%len(stores)]
}

func testNoOversell(t *testing.T, stores []store.Store) {
	const units, buyers = 10, 50
	addProduct(t, stores[0], product("SCARCE-1", "Scarce", "", "misc", 1), units)

	var wg sync.WaitGroup
	var won, lost atomic.Int64
	for i := range buyers {
		wg.Go(func() {
			s := pick(stores, i)
			id := fmt.Sprintf("buyer-%d", i)
			_, err := s.Reserve(t.Context(), id, []store.Line{line("SCARCE-1", 1)}, t0, t0)
			var short *store.ShortageError
			switch {
			case err == nil:
				won.Add(1)
			case errors.As(err, &short):
				lost.Add(1)
				if got := short.Shortages[0]; got.Available != 0 || got.Requested != 1 {
					t.Errorf("Reserve(%s) shortage = %+v, want 1 requested, 0 available", id, got)
				}
			default:
				t.Errorf("Reserve(%s) = %v", id, err)
			}
		})
	}
	wg.Wait()

	if won.Load() != units || lost.Load() != buyers-units {
		t.Errorf("%d buyers of %d units: %d reserved and %d were refused, want %d and %d",
			buyers, units, won.Load(), lost.Load(), units, buyers-units)
	}
	checkStock(t, stores[0], "SCARCE-1", stock{Available: 0, Reserved: units, Adjusted: units})
}

func testSameReservationID(t *testing.T, stores []store.Store) {
	addProduct(t, stores[0], product("A-1", "A", "", "misc", 1), 100)
	addProduct(t, stores[0], product("B-1", "B", "", "misc", 1), 100)
	lines := []store.Line{line("A-1", 3), line("B-1", 2)}

	const retries = 20
	results := make([]store.Reservation, retries)
	var wg sync.WaitGroup
	for i := range retries {
		wg.Go(func() {
			r, err := pick(stores, i).Reserve(t.Context(), "order-1", lines, t0, t0)
			if err != nil {
				t.Errorf("Reserve(order-1) #%d = %v", i, err)
			}
			results[i] = r
		})
	}
	wg.Wait()

	for i, r := range results[1:] {
		if diff := cmp.Diff(results[0], r); diff != "" {
			t.Errorf("Reserve(order-1) #%d differs from #0 (-#0 +#%d):\n%s", i+1, i+1, diff)
		}
	}
	checkStock(t, stores[0], "A-1", stock{Available: 97, Reserved: 3, Adjusted: 100})
	checkStock(t, stores[0], "B-1", stock{Available: 98, Reserved: 2, Adjusted: 100})
}

func testCommitReleaseRace(t *testing.T, stores []store.Store) {
	const orders = 20
	addProduct(t, stores[0], product("A-1", "A", "", "misc", 1), 2*orders)
	for i := range orders {
		id := fmt.Sprintf("order-%d", i)
		hold(t, stores[0], id, line("A-1", 2))
	}

	// For every order a committer, a releaser and a sweeper race; exactly
	// one of commit and release wins, and the stock follows the winner.
	after := t0.Add(2 * time.Minute)
	var wg sync.WaitGroup
	var committed atomic.Int64
	for i := range orders {
		id := fmt.Sprintf("order-%d", i)
		wg.Go(func() {
			_, err := pick(stores, i).Commit(t.Context(), id, after)
			switch {
			case err == nil:
				committed.Add(1)
			case !errors.Is(err, store.ErrReservationClosed):
				t.Errorf("Commit(%s) = %v", id, err)
			}
		})
		wg.Go(func() {
			_, err := pick(stores, i+1).Release(t.Context(), id, after)
			if err != nil && !errors.Is(err, store.ErrReservationClosed) {
				t.Errorf("Release(%s) = %v", id, err)
			}
		})
		wg.Go(func() {
			if _, err := pick(stores, i+2).ReleaseExpired(t.Context(), after, 3); err != nil {
				t.Errorf("ReleaseExpired() = %v", err)
			}
		})
	}
	wg.Wait()

	var states [4]int64
	for i := range orders {
		r, err := stores[0].GetReservation(t.Context(), fmt.Sprintf("order-%d", i))
		if err != nil {
			t.Fatalf("GetReservation() = %v", err)
		}
		states[r.State]++
	}
	if states[store.StateHeld] != 0 || states[store.StateCommitted] != committed.Load() {
		t.Errorf("states held/committed/released = %d/%d/%d, want 0/%d/%d",
			states[store.StateHeld], states[store.StateCommitted], states[store.StateReleased],
			committed.Load(), orders-committed.Load())
	}
	sold := 2 * committed.Load()
	want := stock{Available: 2*orders - sold, Sold: sold, Adjusted: 2 * orders}
	checkStock(t, stores[0], "A-1", want)
}

func testMixedOperations(t *testing.T, stores []store.Store) {
	const (
		products   = 5
		initial    = 20
		workers    = 16
		iterations = 40
	)
	skus := make([]string, products)
	for i := range skus {
		skus[i] = fmt.Sprintf("MIX-%d", i)
		addProduct(t, stores[0], product(skus[i], "Mixed", "", "misc", 1), initial)
	}

	// The books the workers keep of what they did, to compare with the
	// store's at the end.
	var mu sync.Mutex
	sold := make(map[string]int64)
	adjusted := make(map[string]int64)

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := t.Context()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range iterations {
				s := pick(stores, r.IntN(len(stores)))
				switch op := r.IntN(10); {
				case op < 6:
					id := fmt.Sprintf("w%d-%d", w, i)
					var lines []store.Line
					for _, k := range r.Perm(products)[:1+r.IntN(3)] {
						lines = append(lines, store.Line{SKU: skus[k], Quantity: 1 + r.Int64N(3)})
					}
					now := t0.Add(time.Duration(i) * time.Minute)
					expire := now.Add(time.Duration(1+r.IntN(5)) * time.Minute)
					res, err := s.Reserve(ctx, id, lines, now, expire)
					if errors.Is(err, store.ErrInsufficientStock) {
						continue
					}
					if err != nil {
						t.Errorf("Reserve(%s) = %v", id, err)
						continue
					}
					switch r.IntN(3) {
					case 0:
						_, err = s.Commit(ctx, id, now)
						if err == nil {
							mu.Lock()
							for _, l := range res.Lines {
								sold[l.SKU] += l.Quantity
							}
							mu.Unlock()
						}
					case 1:
						_, err = s.Release(ctx, id, now)
					}
					// A commit after a concurrent release takes the
					// stock again, or finds it gone.
					var shortage *store.ShortageError
					if err != nil && !errors.Is(err, store.ErrReservationClosed) &&
						!errors.As(err, &shortage) {
						t.Errorf("closing %s = %v", id, err)
					}
				case op < 8:
					sku := skus[r.IntN(products)]
					delta := r.Int64N(11) - 5
					if delta == 0 {
						delta = 1
					}
					_, err := s.AdjustStock(ctx, sku, delta, "mixed", t0)
					if err == nil {
						mu.Lock()
						adjusted[sku] += delta
						mu.Unlock()
					} else if !errors.Is(err, store.ErrInsufficientStock) {
						t.Errorf("AdjustStock(%s, %d) = %v", sku, delta, err)
					}
				default:
					now := t0.Add(time.Duration(i) * time.Minute)
					if _, err := s.ReleaseExpired(ctx, now, 1+r.IntN(5)); err != nil {
						t.Errorf("ReleaseExpired() = %v", err)
					}
				}
			}
		})
	}
	wg.Wait()

	// Release whatever is still held, then compare the books.
	for {
		released, err := stores[0].ReleaseExpired(t.Context(), t0.Add(24*time.Hour), 100)
		if err != nil {
			t.Fatalf("ReleaseExpired() = %v", err)
		}
		if len(released) == 0 {
			break
		}
	}
	found, _, err := stores[0].BatchGetProducts(t.Context(), skus)
	if err != nil {
		t.Fatalf("BatchGetProducts() = %v", err)
	}
	for _, p := range found {
		checkIdentity(t, p)
		want := stock{
			Available: initial + adjusted[p.SKU] - sold[p.SKU],
			Sold:      sold[p.SKU],
			Adjusted:  initial + adjusted[p.SKU],
		}
		if diff := cmp.Diff(want, stockOf(p)); diff != "" {
			t.Errorf("stock of %s after mixed operations mismatch (-want +got):\n%s", p.SKU, diff)
		}
	}
}

func testLoadCatalogOnce(t *testing.T, stores []store.Store) {
	var items []store.CatalogItem
	for i := range 30 {
		items = append(items, store.CatalogItem{
			Product:      product(fmt.Sprintf("CAT-%02d", i), "Catalog item", "", "misc", 1),
			InitialStock: 10,
		})
	}

	const starts = 8
	var wg sync.WaitGroup
	var loaded atomic.Int64
	for i := range starts {
		wg.Go(func() {
			n, err := pick(stores, i).LoadCatalog(t.Context(), items, t0)
			if err != nil {
				t.Errorf("LoadCatalog() = %v", err)
			}
			loaded.Add(int64(n))
		})
	}
	wg.Wait()

	if loaded.Load() != int64(len(items)) {
		t.Errorf("%d concurrent LoadCatalog() loaded %d products in all, want %d",
			starts, loaded.Load(), len(items))
	}
	for _, it := range items {
		checkStock(t, stores[0], it.Product.SKU, stock{Available: 10, Adjusted: 10})
	}
}
