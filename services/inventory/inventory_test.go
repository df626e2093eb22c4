package inventory_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	"github.com/tienda/tienda/internal/pgtest"
	"github.com/tienda/tienda/services/inventory"
)

// clock is a time source that moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one service on a fresh SQLite store, served over HTTP/1.1 and
// cleartext HTTP/2, with a client for one protocol.
type env struct {
	svc    *inventory.Service
	client inventoryv1connect.InventoryServiceClient
	clock  *clock
}

func newEnv(tb testing.TB, cfg inventory.Config, opts ...connect.ClientOption) *env {
	tb.Helper()
	clk := newClock()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(tb.Output(), nil))
	cfg.Now = clk.Now
	cfg.SweepInterval = -1 // tests sweep by calling ReleaseExpired
	svc, err := inventory.Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open() = %v", err)
	}
	tb.Cleanup(func() {
		if err := svc.Close(); err != nil {
			tb.Errorf("Close() = %v", err)
		}
	})

	mux := http.NewServeMux()
	mux.Handle(svc.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	// Cleanups run last first: end streams, stop the server, close the
	// service.
	tb.Cleanup(svc.Drain)

	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	transport := &http.Transport{Protocols: p}
	tb.Cleanup(transport.CloseIdleConnections)
	client := inventoryv1connect.NewInventoryServiceClient(
		&http.Client{Transport: transport}, srv.URL, opts...)
	return &env{svc: svc, client: client, clock: clk}
}

// protocols are the ways a client may talk to the service.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"connect_json_get", []connect.ClientOption{connect.WithProtoJSON(), connect.WithHTTPGet()}},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpc_web", []connect.ClientOption{connect.WithGRPCWeb()}},
}

func TestService(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		test func(t *testing.T, e *env)
	}{
		{"catalog_pages", testCatalogPages},
		{"search_and_category", testSearchAndCategory},
		{"get_and_batch_get", testGetAndBatchGet},
		{"upsert_and_adjust", testUpsertAndAdjust},
		{"reservation_round_trips", testReservationRoundTrips},
		{"shortage_details", testShortageDetails},
		{"expiry", testExpiry},
		{"watch_stock", testWatchStock},
		{"watch_ends_on_drain", testWatchEndsOnDrain},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.test(t, newEnv(t, inventory.Config{LoadCatalog: true}, p.opts...))
				})
			}
		})
	}
}

// wantCode fails tb unless err is a Connect error with the code.
func wantCode(tb testing.TB, call string, err error, want connect.Code) {
	tb.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		tb.Errorf("%s = %v, want code %v", call, err, want)
	}
}

func listAll(tb testing.TB, e *env, req *inventoryv1.ListProductsRequest) []*inventoryv1.Product {
	tb.Helper()
	var all []*inventoryv1.Product
	for {
		res, err := e.client.ListProducts(tb.Context(), connect.NewRequest(req))
		if err != nil {
			tb.Fatalf("ListProducts(%v) = %v", req, err)
		}
		all = append(all, res.Msg.GetProducts()...)
		if res.Msg.GetNextPageToken() == "" {
			return all
		}
		req.PageToken = res.Msg.GetNextPageToken()
	}
}

func skus(products []*inventoryv1.Product) []string {
	out := make([]string, len(products))
	for i, p := range products {
		out[i] = p.GetSku()
	}
	return out
}

func testCatalogPages(t *testing.T, e *env) {
	all := listAll(t, e, &inventoryv1.ListProductsRequest{PageSize: 100})
	if len(all) < 50 {
		t.Fatalf("the catalog has %d products, want at least 50", len(all))
	}
	if !slices.IsSorted(skus(all)) {
		t.Errorf("ListProducts() is not in SKU order: %v", skus(all))
	}
	categories := make(map[string]bool)
	for _, p := range all {
		categories[p.GetCategory()] = true
		if p.GetAvailable() <= 0 || p.GetAvailable() != p.GetAdjusted() || p.GetReserved() != 0 {
			t.Errorf("fresh product %s has stock %d/%d/%d/%d, want all of it available",
				p.GetSku(), p.GetAvailable(), p.GetReserved(), p.GetSold(), p.GetAdjusted())
		}
		if p.GetPrice().GetCurrencyCode() != "USD" || p.GetPrice().GetAmount() <= 0 {
			t.Errorf("product %s costs %v, want a USD price", p.GetSku(), p.GetPrice())
		}
	}
	if len(categories) < 6 {
		t.Errorf("the catalog has categories %v, want at least 6", categories)
	}

	// Small pages add up to the same list.
	paged := listAll(t, e, &inventoryv1.ListProductsRequest{PageSize: 7})
	if diff := cmp.Diff(all, paged, protocmp.Transform()); diff != "" {
		t.Errorf("pages of 7 mismatch one page of 100 (-want +got):\n%s", diff)
	}

	// The default page size is 20.
	res, err := e.client.ListProducts(t.Context(),
		connect.NewRequest(&inventoryv1.ListProductsRequest{}))
	if err != nil {
		t.Fatalf("ListProducts() = %v", err)
	}
	if n := len(res.Msg.GetProducts()); n != 20 || res.Msg.GetNextPageToken() == "" {
		t.Errorf("ListProducts() with no page size returned %d products, want 20 and a token", n)
	}
}

func testSearchAndCategory(t *testing.T, e *env) {
	tests := []struct {
		name     string
		query    string
		category string
	}{
		{"one_word", "mug", ""},
		{"two_words", "ENAMEL mug", ""},
		{"category", "", "books"},
		{"category_and_word", "notebook", "stationery"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := listAll(t, e, &inventoryv1.ListProductsRequest{
				Query: tc.query, Category: tc.category, PageSize: 3})
			if len(got) == 0 {
				t.Fatalf("ListProducts(%q, %q) found nothing", tc.query, tc.category)
			}
			for _, p := range got {
				text := strings.ToLower(strings.Join(
					[]string{p.GetSku(), p.GetName(), p.GetDescription(), p.GetCategory()}, " "))
				for _, w := range strings.Fields(strings.ToLower(tc.query)) {
					if !strings.Contains(text, w) {
						t.Errorf("ListProducts(%q) returned %s, which lacks %q",
							tc.query, p.GetSku(), w)
					}
				}
				if tc.category != "" && p.GetCategory() != tc.category {
					t.Errorf("ListProducts(category %q) returned %s of %q",
						tc.category, p.GetSku(), p.GetCategory())
				}
			}
		})
	}

	first, err := e.client.ListProducts(t.Context(), connect.NewRequest(
		&inventoryv1.ListProductsRequest{Category: "books", PageSize: 2}))
	if err != nil {
		t.Fatalf("ListProducts() = %v", err)
	}
	badTokens := []struct {
		name string
		req  *inventoryv1.ListProductsRequest
	}{
		{"garbage", &inventoryv1.ListProductsRequest{PageToken: "garbage"}},
		{"other_filters", &inventoryv1.ListProductsRequest{
			Category: "garden", PageToken: first.Msg.GetNextPageToken()}},
	}
	for _, tc := range badTokens {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.ListProducts(t.Context(), connect.NewRequest(tc.req))
			wantCode(t, "ListProducts("+tc.name+")", err, connect.CodeInvalidArgument)
		})
	}
}

func testGetAndBatchGet(t *testing.T, e *env) {
	ctx := t.Context()
	res, err := e.client.GetProduct(ctx, connect.NewRequest(
		&inventoryv1.GetProductRequest{Sku: "MUG-ENAMEL-WHT"}))
	if err != nil {
		t.Fatalf("GetProduct() = %v", err)
	}
	mug := res.Msg.GetProduct()
	if mug.GetName() == "" || mug.GetPrice().GetAmount() <= 0 || mug.GetAvailable() <= 0 {
		t.Errorf("GetProduct(MUG-ENAMEL-WHT) = %v, want a product in stock", mug)
	}

	_, err = e.client.GetProduct(ctx,
		connect.NewRequest(&inventoryv1.GetProductRequest{Sku: "NOPE"}))
	wantCode(t, "GetProduct(NOPE)", err, connect.CodeNotFound)

	batch, err := e.client.BatchGetProducts(ctx,
		connect.NewRequest(&inventoryv1.BatchGetProductsRequest{
			Skus: []string{
				"KETTLE-GOOSE-BLK", "NOPE", "MUG-ENAMEL-WHT", "NOPE", "KETTLE-GOOSE-BLK",
			},
		}))
	if err != nil {
		t.Fatalf("BatchGetProducts() = %v", err)
	}
	wantSKUs := []string{"KETTLE-GOOSE-BLK", "MUG-ENAMEL-WHT"}
	if diff := cmp.Diff(wantSKUs, skus(batch.Msg.GetProducts())); diff != "" {
		t.Errorf("BatchGetProducts() products mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"NOPE"}, batch.Msg.GetMissingSkus()); diff != "" {
		t.Errorf("BatchGetProducts() missing mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(mug, batch.Msg.GetProducts()[1], protocmp.Transform()); diff != "" {
		t.Errorf("BatchGetProducts() and GetProduct() disagree (-get +batch):\n%s", diff)
	}
}

// addProduct creates a product with stock through the API.
func addProduct(tb testing.TB, e *env, sku string, stock int64) {
	tb.Helper()
	req := &inventoryv1.UpsertProductRequest{
		Sku:      sku,
		Name:     "Test product " + sku,
		Category: "testing",
		Price:    &commonv1.Money{CurrencyCode: "USD", Amount: 999},
	}
	_, err := e.client.UpsertProduct(tb.Context(), connect.NewRequest(req))
	if err != nil {
		tb.Fatalf("UpsertProduct(%s) = %v", sku, err)
	}
	if stock > 0 {
		req := &inventoryv1.AdjustStockRequest{Sku: sku, Delta: stock, Reason: "test stock"}
		_, err := e.client.AdjustStock(tb.Context(), connect.NewRequest(req))
		if err != nil {
			tb.Fatalf("AdjustStock(%s, %d) = %v", sku, stock, err)
		}
	}
}

// stock is the stock buckets of a product: available, reserved, sold and
// adjusted.
type stock [4]int64

func getStock(tb testing.TB, e *env, sku string) stock {
	tb.Helper()
	res, err := e.client.GetProduct(tb.Context(),
		connect.NewRequest(&inventoryv1.GetProductRequest{Sku: sku}))
	if err != nil {
		tb.Fatalf("GetProduct(%s) = %v", sku, err)
	}
	p := res.Msg.GetProduct()
	return stock{p.GetAvailable(), p.GetReserved(), p.GetSold(), p.GetAdjusted()}
}

func checkStock(tb testing.TB, e *env, sku string, want stock) {
	tb.Helper()
	if got := getStock(tb, e, sku); got != want {
		tb.Errorf("stock of %s (available, reserved, sold, adjusted) = %v, want %v", sku, got, want)
	}
}

func testUpsertAndAdjust(t *testing.T, e *env) {
	ctx := t.Context()
	req := &inventoryv1.UpsertProductRequest{
		Sku:         "TEST-WIDGET",
		Name:        "Widget",
		Description: "It does things.",
		Category:    "testing",
		Price:       &commonv1.Money{CurrencyCode: "USD", Amount: 1250},
	}
	res, err := e.client.UpsertProduct(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("UpsertProduct() = %v", err)
	}
	want := &inventoryv1.Product{
		Sku:         "TEST-WIDGET",
		Name:        "Widget",
		Description: "It does things.",
		Category:    "testing",
		Price:       &commonv1.Money{CurrencyCode: "USD", Amount: 1250},
		UpdateTime:  timestamppb.New(e.clock.Now()),
	}
	if diff := cmp.Diff(want, res.Msg.GetProduct(), protocmp.Transform()); diff != "" {
		t.Errorf("UpsertProduct() mismatch (-want +got):\n%s", diff)
	}

	adjust := func(delta int64) error {
		_, err := e.client.AdjustStock(ctx, connect.NewRequest(&inventoryv1.AdjustStockRequest{
			Sku: "TEST-WIDGET", Delta: delta, Reason: "test"}))
		return err
	}
	if err := adjust(5); err != nil {
		t.Fatalf("AdjustStock(+5) = %v", err)
	}
	checkStock(t, e, "TEST-WIDGET", stock{5, 0, 0, 5})
	err = adjust(-6)
	wantCode(t, "AdjustStock(-6)", err, connect.CodeFailedPrecondition)
	wantShortages := []*inventoryv1.StockShortage{{Sku: "TEST-WIDGET", Requested: 6, Available: 5}}
	if diff := cmp.Diff(wantShortages, shortages(t, err), protocmp.Transform()); diff != "" {
		t.Errorf("AdjustStock(-6) details mismatch (-want +got):\n%s", diff)
	}
	checkStock(t, e, "TEST-WIDGET", stock{5, 0, 0, 5})

	// An upsert changes the catalog fields and leaves the stock alone.
	req.Name = "Better Widget"
	if _, err := e.client.UpsertProduct(ctx, connect.NewRequest(req)); err != nil {
		t.Fatalf("UpsertProduct() again = %v", err)
	}
	checkStock(t, e, "TEST-WIDGET", stock{5, 0, 0, 5})

	_, err = e.client.AdjustStock(ctx,
		connect.NewRequest(&inventoryv1.AdjustStockRequest{Sku: "NOPE", Delta: 1}))
	wantCode(t, "AdjustStock(NOPE)", err, connect.CodeNotFound)

	invalid := []struct {
		name  string
		price *commonv1.Money
	}{
		{"negative_price", &commonv1.Money{CurrencyCode: "USD", Amount: -1}},
		{"no_price", nil},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			req := &inventoryv1.UpsertProductRequest{
				Sku: "BAD-1", Name: "Bad", Category: "x", Price: tc.price,
			}
			_, err := e.client.UpsertProduct(t.Context(), connect.NewRequest(req))
			wantCode(t, "UpsertProduct("+tc.name+")", err, connect.CodeInvalidArgument)
		})
	}
}

// shortages decodes the StockShortage details of a Connect error.
func shortages(tb testing.TB, err error) []*inventoryv1.StockShortage {
	tb.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		tb.Fatalf("error %v is not a Connect error", err)
	}
	var out []*inventoryv1.StockShortage
	for _, d := range ce.Details() {
		msg, err := d.Value()
		if err != nil {
			tb.Fatalf("decode error detail %s: %v", d.Type(), err)
		}
		if s, ok := msg.(*inventoryv1.StockShortage); ok {
			out = append(out, s)
		}
	}
	return out
}

func reserve(
	ctx context.Context, e *env, id string, ttl time.Duration,
	lines ...*inventoryv1.ReservationLine,
) (*inventoryv1.Reservation, error) {
	req := &inventoryv1.ReserveStockRequest{ReservationId: id, Lines: lines}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	res, err := e.client.ReserveStock(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetReservation(), nil
}

func line(sku string, quantity int64) *inventoryv1.ReservationLine {
	return &inventoryv1.ReservationLine{Sku: sku, Quantity: quantity}
}

func commit(ctx context.Context, e *env, id string) (*inventoryv1.Reservation, error) {
	res, err := e.client.CommitReservation(ctx, connect.NewRequest(
		&inventoryv1.CommitReservationRequest{ReservationId: id}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetReservation(), nil
}

func release(ctx context.Context, e *env, id string) (*inventoryv1.Reservation, error) {
	res, err := e.client.ReleaseReservation(ctx, connect.NewRequest(
		&inventoryv1.ReleaseReservationRequest{ReservationId: id}))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetReservation(), nil
}

func testReservationRoundTrips(t *testing.T, e *env) {
	ctx := t.Context()
	addProduct(t, e, "A-1", 10)
	addProduct(t, e, "B-1", 5)

	r, err := reserve(ctx, e, "order-1", 0, line("B-1", 2), line("A-1", 3))
	if err != nil {
		t.Fatalf("ReserveStock(order-1) = %v", err)
	}
	want := &inventoryv1.Reservation{
		ReservationId: "order-1",
		Lines:         []*inventoryv1.ReservationLine{line("A-1", 3), line("B-1", 2)},
		State:         inventoryv1.ReservationState_RESERVATION_STATE_HELD,
		ExpireTime:    timestamppb.New(e.clock.Now().Add(inventory.DefaultReservationTTL)),
	}
	if diff := cmp.Diff(want, r, protocmp.Transform()); diff != "" {
		t.Errorf("ReserveStock(order-1) mismatch (-want +got):\n%s", diff)
	}
	checkStock(t, e, "A-1", stock{7, 3, 0, 10})

	// A retry returns the same reservation and holds nothing more.
	e.clock.Advance(time.Second)
	if r, err = reserve(ctx, e, "order-1", 0, line("A-1", 3), line("B-1", 2)); err != nil {
		t.Fatalf("ReserveStock(order-1) retry = %v", err)
	}
	if diff := cmp.Diff(want, r, protocmp.Transform()); diff != "" {
		t.Errorf("ReserveStock(order-1) retry mismatch (-want +got):\n%s", diff)
	}
	checkStock(t, e, "A-1", stock{7, 3, 0, 10})

	_, err = reserve(ctx, e, "order-1", 0, line("A-1", 4))
	wantCode(t, "ReserveStock(order-1, other lines)", err, connect.CodeAlreadyExists)
	_, err = reserve(ctx, e, "order-9", 0, line("A-1", 1), line("A-1", 2))
	wantCode(t, "ReserveStock(duplicate SKU)", err, connect.CodeInvalidArgument)
	_, err = reserve(ctx, e, "order-9", 0, line("NOPE", 1))
	wantCode(t, "ReserveStock(unknown SKU)", err, connect.CodeNotFound)

	// Commit, twice; then release is refused.
	for range 2 {
		if r, err = commit(ctx, e, "order-1"); err != nil {
			t.Fatalf("CommitReservation(order-1) = %v", err)
		}
		if r.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED {
			t.Errorf("CommitReservation(order-1) state = %v, want committed", r.GetState())
		}
	}
	_, err = release(ctx, e, "order-1")
	wantCode(t, "ReleaseReservation(committed)", err, connect.CodeFailedPrecondition)
	checkStock(t, e, "A-1", stock{7, 0, 3, 10})
	checkStock(t, e, "B-1", stock{3, 0, 2, 5})

	// Release, twice; then commit is refused.
	if _, err := reserve(ctx, e, "order-2", 0, line("A-1", 7)); err != nil {
		t.Fatalf("ReserveStock(order-2) = %v", err)
	}
	checkStock(t, e, "A-1", stock{0, 7, 3, 10})
	for range 2 {
		if r, err = release(ctx, e, "order-2"); err != nil {
			t.Fatalf("ReleaseReservation(order-2) = %v", err)
		}
		if r.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_RELEASED {
			t.Errorf("ReleaseReservation(order-2) state = %v, want released", r.GetState())
		}
	}
	// The order a released hold was for may exist after all: committing
	// takes the stock again while it is there.
	if _, err = commit(ctx, e, "order-2"); err != nil {
		t.Errorf("CommitReservation(released) = %v, want the stock taken again", err)
	}
	checkStock(t, e, "A-1", stock{0, 0, 10, 10})

	if r, err := release(ctx, e, "never-reserved"); err != nil || r != nil {
		t.Errorf("ReleaseReservation(never-reserved) = %v, %v, want nothing and no error", r, err)
	}
	_, err = commit(ctx, e, "never-reserved")
	wantCode(t, "CommitReservation(never-reserved)", err, connect.CodeNotFound)
}

func testShortageDetails(t *testing.T, e *env) {
	addProduct(t, e, "A-1", 2)
	addProduct(t, e, "B-1", 0)
	addProduct(t, e, "C-1", 10)

	_, err := reserve(t.Context(), e, "order-1", 0, line("C-1", 1), line("B-1", 1), line("A-1", 5))
	wantCode(t, "ReserveStock()", err, connect.CodeFailedPrecondition)
	var ce *connect.Error
	if errors.As(err, &ce) {
		wantMsg := "not enough stock: A-1 has 2 left, 5 requested; B-1 has 0 left, 1 requested"
		if ce.Message() != wantMsg {
			t.Errorf("ReserveStock() message = %q, want %q", ce.Message(), wantMsg)
		}
	}
	want := []*inventoryv1.StockShortage{
		{Sku: "A-1", Requested: 5, Available: 2},
		{Sku: "B-1", Requested: 1, Available: 0},
	}
	if diff := cmp.Diff(want, shortages(t, err), protocmp.Transform()); diff != "" {
		t.Errorf("ReserveStock() details mismatch (-want +got):\n%s", diff)
	}
	checkStock(t, e, "C-1", stock{10, 0, 0, 10})
}

func testExpiry(t *testing.T, e *env) {
	ctx := t.Context()
	addProduct(t, e, "A-1", 10)
	for _, r := range []struct {
		id  string
		ttl time.Duration
	}{{"short", 30 * time.Second}, {"late-commit", 30 * time.Second}, {"default", 0}} {
		if _, err := reserve(ctx, e, r.id, r.ttl, line("A-1", 2)); err != nil {
			t.Fatalf("ReserveStock(%s) = %v", r.id, err)
		}
	}
	checkStock(t, e, "A-1", stock{4, 6, 0, 10})

	e.clock.Advance(31 * time.Second)
	// Held past its expire time but not yet swept: the stock is still
	// held, so the commit goes through.
	if _, err := commit(ctx, e, "late-commit"); err != nil {
		t.Errorf("CommitReservation(late-commit) before the sweep = %v", err)
	}
	n, err := e.svc.ReleaseExpired(ctx)
	if err != nil || n != 1 {
		t.Errorf("ReleaseExpired() = %d, %v, want 1", n, err)
	}
	checkStock(t, e, "A-1", stock{6, 2, 2, 10})
	// An expired hold is committed from what is on hand, or not at all.
	if _, err := e.svc.AdjustStock(ctx, connect.NewRequest(&inventoryv1.AdjustStockRequest{
		Sku: "A-1", Delta: -6, Reason: "sold elsewhere",
	})); err != nil {
		t.Fatalf("AdjustStock(-6) = %v", err)
	}
	_, err = commit(ctx, e, "short")
	wantCode(t, "CommitReservation(expired, no stock)", err, connect.CodeFailedPrecondition)
	checkStock(t, e, "A-1", stock{0, 2, 2, 4})

	e.clock.Advance(inventory.DefaultReservationTTL)
	if n, err := e.svc.ReleaseExpired(ctx); err != nil || n != 1 {
		t.Errorf("ReleaseExpired() after the default TTL = %d, %v, want 1", n, err)
	}
	checkStock(t, e, "A-1", stock{2, 0, 2, 4})
}

// watch opens a WatchStock stream that ends with the test.
func watch(
	tb testing.TB, e *env, skus ...string,
) *connect.ServerStreamForClient[inventoryv1.WatchStockResponse] {
	tb.Helper()
	// The timeout only keeps a broken test from hanging.
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	tb.Cleanup(cancel)
	stream, err := e.client.WatchStock(ctx,
		connect.NewRequest(&inventoryv1.WatchStockRequest{Skus: skus}))
	if err != nil {
		tb.Fatalf("WatchStock(%v) = %v", skus, err)
	}
	tb.Cleanup(func() { stream.Close() })
	return stream
}

// next receives the next message of the stream and compares it with want.
func next(
	tb testing.TB, stream *connect.ServerStreamForClient[inventoryv1.WatchStockResponse],
	sku string, available int64,
) {
	tb.Helper()
	if !stream.Receive() {
		tb.Fatalf("WatchStock stream ended: %v", stream.Err())
	}
	want := &inventoryv1.WatchStockResponse{Sku: sku, Available: available}
	if diff := cmp.Diff(want, stream.Msg(), protocmp.Transform()); diff != "" {
		tb.Errorf("WatchStock message mismatch (-want +got):\n%s", diff)
	}
}

func testWatchStock(t *testing.T, e *env) {
	ctx := t.Context()
	addProduct(t, e, "A-1", 5)
	addProduct(t, e, "B-1", 1)

	stream := watch(t, e, "A-1", "B-1", "A-1")
	next(t, stream, "A-1", 5)
	next(t, stream, "B-1", 1)

	addProduct(t, e, "A-1", 3)
	next(t, stream, "A-1", 8)
	if _, err := reserve(ctx, e, "order-1", 0, line("B-1", 1)); err != nil {
		t.Fatalf("ReserveStock() = %v", err)
	}
	next(t, stream, "B-1", 0)
	if _, err := release(ctx, e, "order-1"); err != nil {
		t.Fatalf("ReleaseReservation() = %v", err)
	}
	next(t, stream, "B-1", 1)

	unknown := watch(t, e, "A-1", "NOPE")
	if unknown.Receive() {
		t.Errorf("WatchStock(NOPE) sent %v, want an error first", unknown.Msg())
	}
	wantCode(t, "WatchStock(NOPE)", unknown.Err(), connect.CodeNotFound)
}

func testWatchEndsOnDrain(t *testing.T, e *env) {
	addProduct(t, e, "A-1", 5)
	stream := watch(t, e, "A-1")
	next(t, stream, "A-1", 5)

	e.svc.Drain()
	if stream.Receive() {
		t.Errorf("WatchStock sent %v after Drain, want the stream to end", stream.Msg())
	}
	if err := stream.Err(); err != nil {
		t.Errorf("WatchStock ended with %v after Drain, want a clean end", err)
	}

	again := watch(t, e, "A-1")
	if again.Receive() {
		t.Errorf("WatchStock after Drain sent %v, want an error", again.Msg())
	}
	wantCode(t, "WatchStock after Drain", again.Err(), connect.CodeUnavailable)
}

// TestCatalogLoadedOnce restarts the service on the same data directory and
// checks that the catalog's stock is not loaded a second time.
func TestCatalogLoadedOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := inventory.Config{DataDir: dir, LoadCatalog: true}

	first := newEnv(t, cfg)
	before := getStock(t, first, "MUG-ENAMEL-WHT")
	req := &inventoryv1.AdjustStockRequest{Sku: "MUG-ENAMEL-WHT", Delta: -1, Reason: "damaged"}
	if _, err := first.client.AdjustStock(t.Context(), connect.NewRequest(req)); err != nil {
		t.Fatalf("AdjustStock() = %v", err)
	}
	if err := first.svc.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	second := newEnv(t, cfg)
	want := stock{before[0] - 1, 0, 0, before[3] - 1}
	checkStock(t, second, "MUG-ENAMEL-WHT", want)
}

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  inventory.Config
	}{
		{"no_store", inventory.Config{}},
		{"negative_ttl", inventory.Config{DataDir: t.TempDir(), ReservationTTL: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := inventory.Open(t.Context(), tc.cfg)
			if err == nil {
				svc.Close()
				t.Errorf("Open(%+v) succeeded, want an error", tc.cfg)
			}
		})
	}
}

// TestWatchAcrossReplicas runs two services on one PostgreSQL database and
// checks that a stream on one sees a change made through the other.
func TestWatchAcrossReplicas(t *testing.T) {
	t.Parallel()
	cfg := inventory.Config{
		DSN:               pgtest.NewDatabase(t),
		LoadCatalog:       true,
		WatchPollInterval: 10 * time.Millisecond,
	}
	a := newEnv(t, cfg, connect.WithGRPC())
	b := newEnv(t, cfg)

	before := getStock(t, a, "KETTLE-GOOSE-BLK")
	if got := getStock(t, b, "KETTLE-GOOSE-BLK"); got != before {
		t.Fatalf("replicas disagree on the stock: %v and %v", before, got)
	}
	stream := watch(t, a, "KETTLE-GOOSE-BLK")
	next(t, stream, "KETTLE-GOOSE-BLK", before[0])

	req := &inventoryv1.AdjustStockRequest{Sku: "KETTLE-GOOSE-BLK", Delta: 4, Reason: "restock"}
	if _, err := b.client.AdjustStock(t.Context(), connect.NewRequest(req)); err != nil {
		t.Fatalf("AdjustStock() through b = %v", err)
	}
	next(t, stream, "KETTLE-GOOSE-BLK", before[0]+4)
	if _, err := reserve(t.Context(), b, "order-1", 0, line("KETTLE-GOOSE-BLK", 1)); err != nil {
		t.Fatalf("ReserveStock() through b = %v", err)
	}
	next(t, stream, "KETTLE-GOOSE-BLK", before[0]+3)
}
