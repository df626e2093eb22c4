package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
)

// inventoryAdmin returns a client of the inventory service itself, which
// tests use to stock products and read the stock ledger.
func inventoryAdmin(a *app) inventoryv1connect.InventoryServiceClient {
	return inventoryv1connect.NewInventoryServiceClient(h2cClient(), a.inventoryURL)
}

// stockProduct creates a product with the given stock.
func stockProduct(tb testing.TB, inv inventoryv1connect.InventoryServiceClient, sku string, stock int64) {
	tb.Helper()
	ctx := context.Background()
	_, err := inv.UpsertProduct(ctx, connect.NewRequest(&inventoryv1.UpsertProductRequest{
		Sku:         sku,
		Name:        "Test " + sku,
		Description: "A product made by a test.",
		Category:    "test",
		Price:       &commonv1.Money{CurrencyCode: "USD", Amount: 1000},
	}))
	if err != nil {
		tb.Fatalf("UpsertProduct(%s): %v", sku, err)
	}
	_, err = inv.AdjustStock(ctx, connect.NewRequest(&inventoryv1.AdjustStockRequest{
		Sku: sku, Delta: stock, Reason: "test stock",
	}))
	if err != nil {
		tb.Fatalf("AdjustStock(%s, %d): %v", sku, stock, err)
	}
}

// ledger returns a product's stock as the inventory service keeps it, and
// fails tb if the stock identity does not hold.
func ledger(tb testing.TB, inv inventoryv1connect.InventoryServiceClient, sku string) *inventoryv1.Product {
	tb.Helper()
	res, err := inv.GetProduct(context.Background(),
		connect.NewRequest(&inventoryv1.GetProductRequest{Sku: sku}))
	if err != nil {
		tb.Fatalf("GetProduct(%s): %v", sku, err)
	}
	p := res.Msg.GetProduct()
	if p.GetAvailable() < 0 || p.GetReserved() < 0 || p.GetSold() < 0 ||
		p.GetAvailable()+p.GetReserved()+p.GetSold() != p.GetAdjusted() {
		tb.Errorf("%s: available %d + reserved %d + sold %d != adjusted %d",
			sku, p.GetAvailable(), p.GetReserved(), p.GetSold(), p.GetAdjusted())
	}
	return p
}

// TestNoOversellUnderContention has hundreds of shoppers race to check out
// carts that overlap on a few scarce products. Each scarce product sells
// exactly its stock, never more, and every loser is told what ran short.
func TestNoOversellUnderContention(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")
	inv := inventoryAdmin(a)

	const shoppers = 240
	scarce := map[string]int64{"SCARCE-LAMP": 7, "SCARCE-KETTLE": 3, "SCARCE-CLOCK": 12}
	skus := slices.Sorted(func(yield func(string) bool) {
		for sku := range scarce {
			if !yield(sku) {
				return
			}
		}
	})
	const plentiful = "PLENTY-SOCKS"
	for sku, stock := range scarce {
		stockProduct(t, inv, sku, stock)
	}
	stockProduct(t, inv, plentiful, 100_000)

	// Every shopper fills a cart first: one scarce product and a share of
	// the plentiful one that all carts overlap on. A few at a time: this is
	// the set-up, not the race.
	carts := make([]*shopper, shoppers)
	var fill sync.WaitGroup
	busy := make(chan struct{}, 8)
	for i := range carts {
		busy <- struct{}{}
		fill.Go(func() {
			defer func() { <-busy }()
			s := newShopper(t, a)
			ctx := context.Background()
			for _, line := range []struct {
				sku string
				qty int64
			}{{skus[i%len(skus)], 1}, {plentiful, 2}} {
				_, err := s.add(ctx, line.sku, line.qty)
				if err != nil {
					t.Errorf("shopper %d: AddToCart(%s): %v", i, line.sku, err)
				}
			}
			carts[i] = s
		})
	}
	fill.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Then they all check out at once.
	start := time.Now()
	var (
		mu     sync.Mutex
		orders = map[string]int{} // scarce SKU -> orders that got it
		losers int
		race   sync.WaitGroup
		gate   = make(chan struct{})
	)
	for i, s := range carts {
		race.Go(func() {
			<-gate
			res, err := s.client.Checkout(context.Background(),
				authed(s, &shopv1.CheckoutRequest{RequestId: fmt.Sprintf("race-%d", i)}))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				for _, l := range res.Msg.GetOrder().GetLines() {
					if l.GetSku() != plentiful {
						orders[l.GetSku()]++
					}
				}
				return
			}
			losers++
			var cerr *connect.Error
			sku := skus[i%len(skus)]
			if !errors.As(err, &cerr) || cerr.Code() != connect.CodeFailedPrecondition ||
				!strings.Contains(cerr.Message(), sku) || len(cerr.Details()) == 0 {
				t.Errorf("shopper %d lost with %v, want FailedPrecondition naming %s with details", i, err, sku)
			}
		})
	}
	close(gate)
	race.Wait()
	elapsed := time.Since(start)

	var sold int64
	for sku, stock := range scarce {
		if got := int64(orders[sku]); got != stock {
			t.Errorf("%s: %d orders, want exactly its stock of %d", sku, got, stock)
		}
		p := ledger(t, inv, sku)
		if p.GetSold() != stock || p.GetAvailable() != 0 || p.GetReserved() != 0 {
			t.Errorf("%s after the race: %v, want all %d sold and nothing held", sku, p, stock)
		}
		sold += p.GetSold()
	}
	socks := ledger(t, inv, plentiful)
	if want := 2 * sold; socks.GetSold() != want || socks.GetReserved() != 0 {
		t.Errorf("%s: sold %d reserved %d, want %d sold with the winning orders",
			plentiful, socks.GetSold(), socks.GetReserved(), want)
	}
	t.Logf("contention: %d shoppers, %d scarce units, %d orders, %d refused, checkout race took %v",
		shoppers, sold, sold, losers, elapsed.Round(time.Millisecond))
}

// TestNoLostCartUpdates fires many cart writes for one shopper at once.
func TestNoLostCartUpdates(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")
	inv := inventoryAdmin(a)
	stockProduct(t, inv, "LOTS-OF-PENS", 10_000)
	s := newShopper(t, a, connect.WithGRPC())

	const adds = 60
	var wg sync.WaitGroup
	for range adds {
		wg.Go(func() {
			_, err := s.client.AddToCart(context.Background(),
				authed(s, &shopv1.AddToCartRequest{Sku: "LOTS-OF-PENS", Quantity: 1}))
			if err != nil {
				t.Errorf("AddToCart: %v", err)
			}
		})
	}
	wg.Wait()
	cart, err := s.client.GetCart(t.Context(), authed(s, &shopv1.GetCartRequest{}))
	if err != nil {
		t.Fatalf("GetCart: %v", err)
	}
	if got := cart.Msg.GetCart().GetLines()[0].GetQuantity(); got != adds {
		t.Errorf("after %d concurrent adds of 1 the line holds %d", adds, got)
	}

	written := make([]int64, 0, 30)
	for q := int64(1); q <= 30; q++ {
		written = append(written, q)
		wg.Go(func() {
			_, err := s.client.UpdateCartItem(context.Background(),
				authed(s, &shopv1.UpdateCartItemRequest{Sku: "LOTS-OF-PENS", Quantity: q}))
			if err != nil {
				t.Errorf("UpdateCartItem(%d): %v", q, err)
			}
		})
	}
	wg.Wait()
	cart, err = s.client.GetCart(t.Context(), authed(s, &shopv1.GetCartRequest{}))
	if err != nil {
		t.Fatalf("GetCart: %v", err)
	}
	if lines := cart.Msg.GetCart().GetLines(); len(lines) != 1 || !slices.Contains(written, lines[0].GetQuantity()) {
		t.Errorf("after concurrent updates the cart is %v, want one line with one of the written quantities", lines)
	}
}

// TestCheckoutIsSafeToRetry sends one request id many times at once, then
// again after success and after a timeout.
func TestCheckoutIsSafeToRetry(t *testing.T) {
	t.Parallel()
	a := startTestApp(t, "")
	inv := inventoryAdmin(a)
	stockProduct(t, inv, "RETRY-BOWL", 50)
	s := newShopper(t, a)
	ctx := t.Context()
	if _, err := s.add(ctx, "RETRY-BOWL", 3); err != nil {
		t.Fatalf("AddToCart: %v", err)
	}

	const attempts = 25
	ids := make(chan string, attempts)
	var wg sync.WaitGroup
	for range attempts {
		wg.Go(func() {
			res, err := s.client.Checkout(context.Background(),
				authed(s, &shopv1.CheckoutRequest{RequestId: "same-id"}))
			if err != nil {
				t.Errorf("concurrent Checkout(same-id): %v", err)
				return
			}
			ids <- res.Msg.GetOrder().GetOrderId()
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("one request id gave orders %v, want exactly one", seen)
	}

	// A retry after success returns the same order, even with a short
	// deadline that may expire first; then a calm retry does.
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	_, _ = s.client.Checkout(short, authed(s, &shopv1.CheckoutRequest{RequestId: "same-id"}))
	cancel()
	res, err := s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: "same-id"}))
	if err != nil {
		t.Fatalf("Checkout retry after success: %v", err)
	}
	if !seen[res.Msg.GetOrder().GetOrderId()] {
		t.Errorf("retry returned order %s, want one of %v", res.Msg.GetOrder().GetOrderId(), seen)
	}
	if p := ledger(t, inv, "RETRY-BOWL"); p.GetSold() != 3 || p.GetReserved() != 0 {
		t.Errorf("after %d checkouts with one request id: sold %d reserved %d, want 3 and 0",
			attempts+2, p.GetSold(), p.GetReserved())
	}
	orders, err := s.client.ListOrders(ctx, authed(s, &shopv1.ListOrdersRequest{}))
	if err != nil {
		t.Fatalf("ListOrders: %v", err)
	}
	if n := len(orders.Msg.GetOrders()); n != 1 {
		t.Errorf("shopper has %d orders, want 1", n)
	}

	// The same request id for a different cart is refused.
	if _, err := s.add(ctx, "RETRY-BOWL", 1); err != nil {
		t.Fatalf("AddToCart: %v", err)
	}
	_, err = s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: "same-id"}))
	if got := connect.CodeOf(err); got != connect.CodeAlreadyExists {
		t.Errorf("Checkout(same-id) with a different cart: %v, want AlreadyExists", err)
	}
}

// faultProxy sits between the gateway and a service and can fail or hang
// chosen procedures.
type faultProxy struct {
	srv   *httptest.Server
	fail  sync.Map // procedure path -> connect.Code to answer with
	hang  sync.Map // procedure path -> true
	delay sync.Map // procedure path -> time.Duration before forwarding
	calls sync.Map // procedure path -> *atomic.Int64
	seen  sync.Map // procedure path -> last Connect-Timeout-Ms header seen
}

func startFaultProxy(tb testing.TB, target string) *faultProxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &faultProxy{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = h2cClient().Transport
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := p.calls.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		p.seen.Store(r.URL.Path, r.Header.Get("Connect-Timeout-Ms"))
		if d, ok := p.delay.Load(r.URL.Path); ok {
			time.Sleep(d.(time.Duration)) // a slow service, not a test waiting
		}
		if _, ok := p.hang.Load(r.URL.Path); ok {
			<-r.Context().Done()
			return
		}
		if code, ok := p.fail.Load(r.URL.Path); ok {
			cerr := connect.NewError(code.(connect.Code), errors.New("injected fault"))
			_ = connect.NewErrorWriter().Write(w, r, cerr)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	p.srv.Config.Protocols = new(http.Protocols)
	p.srv.Config.Protocols.SetHTTP1(true)
	p.srv.Config.Protocols.SetUnencryptedHTTP2(true)
	p.srv.Start()
	tb.Cleanup(p.srv.Close)
	return p
}

func (p *faultProxy) count(procedure string) int64 {
	n, ok := p.calls.Load(procedure)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// startSplitApp runs inventory and cart in one app and a gateway in
// another, the gateway reaching the services through fault proxies.
func startSplitApp(tb testing.TB) (services *app, gw *app, invProxy, cartProxy *faultProxy) {
	tb.Helper()
	services = startPart(tb, modeAll, nil, nil) // the gateway in it is unused
	invProxy = startFaultProxy(tb, services.inventoryURL)
	cartProxy = startFaultProxy(tb, services.cartURL)
	gw = startPart(tb, modeGateway, []string{invProxy.srv.URL}, []string{cartProxy.srv.URL})
	return services, gw, invProxy, cartProxy
}

// startPart runs one mode of tienda on free ports and a fresh directory.
func startPart(tb testing.TB, mode string, inventoryURLs, cartURLs []string) *app {
	tb.Helper()
	cfg := defaults
	cfg.Mode = mode
	cfg.DataDir = tb.TempDir()
	cfg.GatewayAddr, cfg.InventoryAddr, cfg.CartAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if inventoryURLs != nil {
		cfg.InventoryURLs, cfg.CartURLs = inventoryURLs, cartURLs
	}
	a, err := startApp(context.Background(), cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("startApp(%s): %v", mode, err)
	}
	tb.Cleanup(func() { stopTestApp(tb, a) })
	return a
}

// TestFailedPlaceOrderReleasesStock injects a failure into the cart step of
// checkout, after stock was reserved: the reservation must be released.
func TestFailedPlaceOrderReleasesStock(t *testing.T) {
	t.Parallel()
	services, gw, _, cartProxy := startSplitApp(t)
	inv := inventoryAdmin(services)
	stockProduct(t, inv, "FAULT-VASE", 5)
	s := newShopper(t, gw)
	ctx := t.Context()
	if _, err := s.add(ctx, "FAULT-VASE", 2); err != nil {
		t.Fatalf("AddToCart: %v", err)
	}

	cartProxy.fail.Store("/tienda.cart.v1.CartService/PlaceOrder", connect.CodeInternal)
	_, err := s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: "fault-1"}))
	if err == nil {
		t.Fatal("Checkout succeeded although PlaceOrder failed")
	}
	if p := ledger(t, inv, "FAULT-VASE"); p.GetAvailable() != 5 || p.GetReserved() != 0 || p.GetSold() != 0 {
		t.Errorf("after a failed PlaceOrder: %v, want all 5 back on hand", p)
	}

	// Once the cart recovers, the same request id succeeds.
	cartProxy.fail.Delete("/tienda.cart.v1.CartService/PlaceOrder")
	if _, err := s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: "fault-1"})); err != nil {
		t.Fatalf("Checkout after recovery: %v", err)
	}
	if p := ledger(t, inv, "FAULT-VASE"); p.GetSold() != 2 || p.GetReserved() != 0 {
		t.Errorf("after recovery: %v, want 2 sold", p)
	}
}

// TestSlowAndDeadParts checks that the gateway answers quickly and with
// the right code when a service hangs or is down, and that the caller's
// deadline reaches the service.
func TestSlowAndDeadParts(t *testing.T) {
	t.Parallel()
	services, gw, invProxy, cartProxy := startSplitApp(t)
	stockProduct(t, inventoryAdmin(services), "SLOW-TEAPOT", 5)
	s := newShopper(t, gw, connect.WithGRPC())
	const getProduct = "/tienda.inventory.v1.InventoryService/GetProduct"

	t.Run("hanging_inventory_meets_the_callers_deadline", func(t *testing.T) {
		invProxy.hang.Store(getProduct, true)
		defer invProxy.hang.Delete(getProduct)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := s.client.GetProduct(ctx, authed(s, &shopv1.GetProductRequest{Sku: "SLOW-TEAPOT"}))
		if got := connect.CodeOf(err); got != connect.CodeDeadlineExceeded {
			t.Errorf("GetProduct with inventory hanging: %v, want DeadlineExceeded", err)
		}
		timeout, _ := invProxy.seen.Load(getProduct)
		if ms, _ := timeout.(string); ms == "" || len(ms) > 3 {
			t.Errorf("inventory saw Connect-Timeout-Ms %q, want the caller's 300ms deadline", ms)
		}
	})

	t.Run("unavailable_inventory_is_retried_for_reads", func(t *testing.T) {
		invProxy.fail.Store(getProduct, connect.CodeUnavailable)
		defer invProxy.fail.Delete(getProduct)
		before := invProxy.count(getProduct)
		_, err := s.client.GetProduct(t.Context(), authed(s, &shopv1.GetProductRequest{Sku: "SLOW-TEAPOT"}))
		if got := connect.CodeOf(err); got != connect.CodeUnavailable {
			t.Errorf("GetProduct with inventory unavailable: %v, want Unavailable", err)
		}
		if got := invProxy.count(getProduct) - before; got != 3 {
			t.Errorf("inventory GetProduct was tried %d times, want 3", got)
		}
	})

	t.Run("unavailable_cart_is_not_retried_for_adds", func(t *testing.T) {
		const addItem = "/tienda.cart.v1.CartService/AddItem"
		cartProxy.fail.Store(addItem, connect.CodeUnavailable)
		defer cartProxy.fail.Delete(addItem)
		before := cartProxy.count(addItem)
		_, err := s.add(t.Context(), "SLOW-TEAPOT", 1)
		if got := connect.CodeOf(err); got != connect.CodeUnavailable {
			t.Errorf("AddToCart with cart unavailable: %v, want Unavailable", err)
		}
		if got := cartProxy.count(addItem) - before; got != 1 {
			t.Errorf("cart AddItem was tried %d times, want exactly 1", got)
		}
	})

	t.Run("stopped_inventory_is_unavailable", func(t *testing.T) {
		invProxy.srv.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err := s.client.GetProduct(ctx, authed(s, &shopv1.GetProductRequest{Sku: "SLOW-TEAPOT"}))
		if got := connect.CodeOf(err); got != connect.CodeUnavailable {
			t.Errorf("GetProduct with inventory stopped: %v, want Unavailable", err)
		}
	})
}

// resettingListener remembers the connections it accepted, so that a test
// can reset them all at once, as the death of a process does.
type resettingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func (l *resettingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c.(*net.TCPConn))
		l.mu.Unlock()
	}
	return c, err
}

func (l *resettingListener) resetAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.SetLinger(0) // close with RST, not FIN
		c.Close()
	}
}

// TestCartDyingMidAnswerIsRetryable puts a proxy in front of the cart that
// answers the first GetOrder the way a replica killed mid-answer does: the
// headers of a 404 and half its body, then a reset connection. The shopper
// must get a code that invites a retry, never Internal; found by the
// multi-replica test.
func TestCartDyingMidAnswerIsRetryable(t *testing.T) {
	t.Parallel()
	services := startPart(t, modeAll, nil, nil)
	stockProduct(t, inventoryAdmin(services), "TRUNC-MUG", 5)

	target, err := url.Parse(services.cartURL)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	forward.Transport = h2cClient().Transport
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listener := &resettingListener{Listener: l}
	var once sync.Once
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		died := false
		if r.URL.Path == "/tienda.cart.v1.CartService/GetOrder" {
			once.Do(func() {
				died = true
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(`{"code":"not_fo`))
				w.(http.Flusher).Flush()
				listener.resetAll()
			})
		}
		if !died {
			forward.ServeHTTP(w, r)
		}
	})}
	proxy.Protocols = new(http.Protocols)
	proxy.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = proxy.Serve(listener) }()
	t.Cleanup(func() { proxy.Close() })

	gw := startPart(t, modeGateway, []string{services.inventoryURL}, []string{"http://" + l.Addr().String()})
	s := newShopper(t, gw)
	if _, err := s.add(t.Context(), "TRUNC-MUG", 1); err != nil {
		t.Fatalf("AddToCart: %v", err)
	}
	_, err = s.client.Checkout(t.Context(), authed(s, &shopv1.CheckoutRequest{RequestId: "r1"}))
	if code := connect.CodeOf(err); code != connect.CodeUnavailable {
		t.Fatalf("Checkout while the cart dies answering: %v, want Unavailable", err)
	}
	if _, err := s.client.Checkout(t.Context(), authed(s, &shopv1.CheckoutRequest{RequestId: "r1"})); err != nil {
		t.Errorf("retried Checkout: %v", err)
	}
}

// TestCheckoutOutlivesItsCaller gives up on a checkout while a service is
// slow, once during the reservation and once while the order is placed. The
// checkout must still run to its end without any retry: the stock is sold
// and the order exists, so that no hold is stranded and no order is left
// without its stock. Found by the newcomer attack.
func TestCheckoutOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		slow string
	}{
		{name: "slow_reserve", slow: "/tienda.inventory.v1.InventoryService/ReserveStock"},
		{name: "slow_place_order", slow: "/tienda.cart.v1.CartService/PlaceOrder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			services, gw, invProxy, cartProxy := startSplitApp(t)
			inv := inventoryAdmin(services)
			stockProduct(t, inv, "PATIENT-JUG", 5)
			s := newShopper(t, gw)
			if _, err := s.add(t.Context(), "PATIENT-JUG", 2); err != nil {
				t.Fatalf("AddToCart: %v", err)
			}
			invProxy.delay.Store(tc.slow, 400*time.Millisecond)
			cartProxy.delay.Store(tc.slow, 400*time.Millisecond)

			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			_, err := s.client.Checkout(ctx, authed(s, &shopv1.CheckoutRequest{RequestId: "impatient"}))
			if got := connect.CodeOf(err); got != connect.CodeDeadlineExceeded {
				t.Fatalf("Checkout with a 100ms deadline: %v, want DeadlineExceeded", err)
			}

			// Nobody retries; the gateway finishes by itself.
			deadline := time.Now().Add(10 * time.Second)
			p := ledger(t, inv, "PATIENT-JUG")
			for (p.GetSold() != 2 || p.GetReserved() != 0) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				p = ledger(t, inv, "PATIENT-JUG")
			}
			if p.GetSold() != 2 || p.GetReserved() != 0 {
				t.Errorf("after the caller gave up: %v, want 2 sold and nothing held", p)
			}
			orders, err := s.client.ListOrders(t.Context(), authed(s, &shopv1.ListOrdersRequest{}))
			if err != nil {
				t.Fatalf("ListOrders: %v", err)
			}
			if n := len(orders.Msg.GetOrders()); n != 1 {
				t.Errorf("shopper has %d orders, want the 1 the checkout placed", n)
			}
		})
	}
}
