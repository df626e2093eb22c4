package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
	"github.com/tienda/tienda/internal/pgtest"
)

// node is one tienda process of a deployment and the address it serves.
type node struct {
	*proc
	addr string
}

func (n *node) url() string { return "http://" + n.addr }

// deployment is tienda as a deployment runs it: every part in processes
// of its own, possibly several replicas of each.
type deployment struct {
	inventory []*node
	cart      []*node
	gateways  []*node
}

// deploymentConfig says what [startDeployment] runs.
type deploymentConfig struct {
	// replicas is how many processes run each part, the gateway included.
	// More than one needs PostgreSQL DSNs, since SQLite is one process's.
	replicas int
	// inventoryDSN and cartDSN name the services' PostgreSQL databases;
	// empty means SQLite in each process's data directory.
	inventoryDSN, cartDSN string
	reservationTTL        time.Duration
	logLevel              string
}

// deploymentSecret signs the tokens of every gateway of a deployment, so
// that a session made by one gateway is good on the others.
const deploymentSecret = "tienda-test-deployment-secret-0123456789"

// startDeployment starts the parts of cfg as processes on free loopback
// ports, each with a data directory of its own, and returns once every
// gateway serves and uses every replica. The processes are killed when tb
// ends, and their logs shown if it failed.
func startDeployment(tb testing.TB, cfg deploymentConfig) *deployment {
	tb.Helper()
	if testing.Short() {
		tb.Skip("process tests skipped in -short mode")
	}
	if cfg.replicas > 1 && (cfg.inventoryDSN == "" || cfg.cartDSN == "") {
		tb.Fatal("several replicas need PostgreSQL for both services")
	}
	addrs := freeAddrs(tb, 3*cfg.replicas)
	common := []string{"-log-format", "json", "-log-level", cfg.logLevel,
		"-reservation-ttl", cfg.reservationTTL.String()}
	start := func(part string, args ...string) *node {
		dir := tb.TempDir() // data and log of this process alone
		n := &node{addr: addrs[0]}
		addrs = addrs[1:]
		args = append([]string{part, "-" + part + "-addr", n.addr, "-data-dir", dir}, args...)
		n.proc = startProc(tb, dir, append(args, common...)...)
		return n
	}

	// The services first, so that the gateways find every replica up.
	d := &deployment{}
	for range cfg.replicas {
		var invArgs, cartArgs []string
		if cfg.inventoryDSN != "" {
			invArgs = []string{"-inventory-dsn", cfg.inventoryDSN}
		}
		if cfg.cartDSN != "" {
			cartArgs = []string{"-cart-dsn", cfg.cartDSN}
		}
		d.inventory = append(d.inventory, start(modeInventory, invArgs...))
		d.cart = append(d.cart, start(modeCart, cartArgs...))
	}
	for _, n := range slices.Concat(d.inventory, d.cart) {
		waitServing(tb, n.addr)
	}
	invURLs, cartURLs := urls(d.inventory), urls(d.cart)
	for range cfg.replicas {
		d.gateways = append(d.gateways, start(modeGateway,
			"-inventory-url", strings.Join(invURLs, ","),
			"-cart-url", strings.Join(cartURLs, ","),
			"-session-secret", deploymentSecret))
	}
	for _, gw := range d.gateways {
		waitServing(tb, gw.addr)
		for _, n := range d.inventory {
			waitReplica(tb, gw, inventoryv1connect.InventoryServiceName, n, grpchealth.StatusServing)
		}
		for _, n := range d.cart {
			waitReplica(tb, gw, cartv1connect.CartServiceName, n, grpchealth.StatusServing)
		}
	}
	return d
}

func urls(nodes []*node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.url()
	}
	return out
}

// shopClients returns a ShopService client of each gateway.
func (d *deployment) shopClients() []shopv1connect.ShopServiceClient {
	out := make([]shopv1connect.ShopServiceClient, len(d.gateways))
	for i, gw := range d.gateways {
		out[i] = shopv1connect.NewShopServiceClient(h2cClient(), gw.url())
	}
	return out
}

// replicaHealth asks gateway gw how it sees one replica of service, by the
// health service name "<service>/<replica URL>" that replicas.Checker
// answers.
func replicaHealth(
	ctx context.Context, gw *node, service string, replica *node,
) (grpchealth.Status, error) {
	return health(ctx, gw, service+"/"+replica.url())
}

// health asks gw's health service about one service name.
func health(ctx context.Context, gw *node, service string) (grpchealth.Status, error) {
	client := grpchealth.NewClient(h2cClient(), gw.url(), connect.WithGRPC())
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := client.Check(ctx, &grpchealth.CheckRequest{Service: service})
	if err != nil {
		return grpchealth.StatusUnknown, err
	}
	return res.Status, nil
}

// waitReplica polls gw's view of a replica until it is want, for at most
// 15 seconds: the gateway checks its replicas every healthCheckInterval.
func waitReplica(tb testing.TB, gw *node, service string, replica *node, want grpchealth.Status) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := replicaHealth(context.Background(), gw, service, replica)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("gateway %s sees %s replica %s as %v (err %v) after 15s, want %v",
				gw.addr, service, replica.addr, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replicaShopper is a guest session with one scarce product in its cart.
type replicaShopper struct {
	*shopper
	index     int // which shopper: the first gateway it calls is index % gateways
	scarce    string
	requestID string

	// Filled in by the checkout.
	orderID  string
	gateway  int // index of the gateway that confirmed the order
	attempts int
	refusal  error // the final FailedPrecondition, if the shopper lost
}

// checkoutTally counts what the clients saw during a load. Safe for
// concurrent use.
type checkoutTally struct {
	mu         sync.Mutex
	failures   map[connect.Code]int // every failed attempt, retried or not
	unexpected []string             // failures no client should see
}

func (t *checkoutTally) fail(code connect.Code) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failures == nil {
		t.failures = map[connect.Code]int{}
	}
	t.failures[code]++
}

func (t *checkoutTally) wrong(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unexpected = append(t.unexpected, fmt.Sprintf(format, args...))
}

// retryable reports whether a client should retry a checkout that failed
// with code, with the same request id: the code says a part was down,
// slow or busy, not that the checkout is refused.
func retryable(code connect.Code) bool {
	switch code {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeAborted:
		return true
	}
	return false
}

// TestReplicasOnPostgres runs two replicas of every part on PostgreSQL,
// has a crowd of shoppers race for a few scarce products through both
// gateways, and kills one inventory and one cart replica with SIGKILL in
// the middle of it. Nothing may be oversold or lost, every failure a
// client sees must say whether to retry or what ran short, and the
// gateways must report the dead replicas.
func TestReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("process tests skipped in -short mode")
	}
	inventoryDSN := pgtest.NewDatabase(t)
	cartDSN := pgtest.NewDatabase(t)
	d := startDeployment(t, deploymentConfig{
		replicas:     2,
		inventoryDSN: inventoryDSN,
		cartDSN:      cartDSN,
		// Long enough that no hold of a live checkout expires even under
		// the race detector: every hold must end committed or released.
		reservationTTL: time.Minute,
		logLevel:       "warn",
	})
	gateways := d.shopClients()
	inv := func(i int) inventoryv1connect.InventoryServiceClient {
		return inventoryv1connect.NewInventoryServiceClient(h2cClient(), d.inventory[i].url())
	}

	// Four scarce products, three with less stock than demand and one with
	// more, and a plentiful one that every cart holds too.
	const (
		shoppers  = 200
		workers   = 32
		plentiful = "REPLICA-SOCKS"
	)
	scarce := map[string]int64{
		"REPLICA-KETTLE": 3, "REPLICA-LAMP": 7, "REPLICA-CLOCK": 12, "REPLICA-RUG": 60,
	}
	skus := slices.Sorted(maps.Keys(scarce))
	for sku, stock := range scarce {
		stockProduct(t, inv(0), sku, stock)
	}
	stockProduct(t, inv(0), plentiful, 100_000)

	// Every shopper gets a session from one gateway and fills the cart
	// through both: a token of one gateway is good on the other.
	all := make([]*replicaShopper, shoppers)
	demand := map[string]int64{}
	var fill sync.WaitGroup
	sem := make(chan struct{}, workers)
	for i := range all {
		sku := skus[i%len(skus)]
		demand[sku]++
		fill.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			all[i] = fillReplicaCart(t, gateways, i, sku, plentiful)
		})
	}
	fill.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Workers check the carts out, each shopper retrying on either gateway
	// with the same request id. A quarter of the way in, one inventory
	// replica dies; half-way, one cart replica.
	var (
		tally             checkoutTally
		done              atomic.Int64
		quarter, half     = make(chan struct{}), make(chan struct{})
		queue             = make(chan *replicaShopper)
		load              sync.WaitGroup
		deadInv, deadCart = d.inventory[0], d.cart[1]
	)
	start := time.Now()
	for range workers {
		load.Go(func() {
			for s := range queue {
				checkoutWithRetries(s, gateways, &tally)
				switch done.Add(1) {
				case shoppers / 4:
					close(quarter)
				case shoppers / 2:
					close(half)
				}
			}
		})
	}
	go func() {
		for _, s := range all {
			queue <- s
		}
		close(queue)
	}()
	<-quarter
	deadInv.kill()
	invKilledAt, invKilledDone := time.Since(start), done.Load()
	<-half
	deadCart.kill()
	cartKilledAt, cartKilledDone := time.Since(start), done.Load()
	load.Wait()
	elapsed := time.Since(start)

	// Every failure was one to retry or a real shortage.
	for _, msg := range tally.unexpected {
		t.Error(msg)
	}
	var orders []*replicaShopper
	refused := map[string]int64{}
	for _, s := range all {
		switch {
		case s.orderID != "":
			orders = append(orders, s)
		case s.refusal != nil:
			refused[s.scarce]++
		}
	}

	// The gateways report the dead replicas, and serve on the live ones.
	for _, gw := range d.gateways {
		waitReplica(t, gw, inventoryv1connect.InventoryServiceName, deadInv, grpchealth.StatusNotServing)
		waitReplica(t, gw, cartv1connect.CartServiceName, deadCart, grpchealth.StatusNotServing)
		for _, name := range []string{"", shopv1connect.ShopServiceName,
			inventoryv1connect.InventoryServiceName, cartv1connect.CartServiceName,
			inventoryv1connect.InventoryServiceName + "/" + d.inventory[1].url(),
			cartv1connect.CartServiceName + "/" + d.cart[0].url(),
		} {
			if got, err := health(t.Context(), gw, name); err != nil || got != grpchealth.StatusServing {
				t.Errorf("gateway %s: health of %q = %v (err %v), want SERVING with one replica dead",
					gw.addr, name, got, err)
			}
		}
	}

	// No oversell, nothing held, and the stock sold is the orders'.
	ordered := map[string]int64{}
	for _, s := range orders {
		ordered[s.scarce]++
	}
	live := inv(1)
	ledgers := settledLedgers(t, live, append(slices.Clone(skus), plentiful))
	var unitsSold int64
	for _, sku := range skus {
		p, want := ledgers[sku], min(demand[sku], scarce[sku])
		if p.GetSold() != want || ordered[sku] != want {
			t.Errorf("%s: stock %d, demand %d: sold %d in %d confirmed orders, want exactly %d",
				sku, scarce[sku], demand[sku], p.GetSold(), ordered[sku], want)
		}
		if refused[sku] != demand[sku]-ordered[sku] {
			t.Errorf("%s: %d of %d shoppers refused, want the %d without an order",
				sku, refused[sku], demand[sku], demand[sku]-ordered[sku])
		}
		unitsSold += p.GetSold()
	}
	if p, want := ledgers[plentiful], 2*int64(len(orders)); p.GetSold() != want {
		t.Errorf("%s: sold %d, want 2 for each of the %d orders", plentiful, p.GetSold(), len(orders))
	}

	// Every shopper has exactly the orders its client was told of: one if
	// the checkout succeeded, none if it was refused.
	for _, s := range all {
		gw := gateways[(s.index+1)%len(gateways)]
		res, err := gw.ListOrders(t.Context(), authed(s.shopper, &shopv1.ListOrdersRequest{}))
		if err != nil {
			t.Errorf("shopper %d: ListOrders: %v", s.index, err)
			continue
		}
		var ids []string
		for _, o := range res.Msg.GetOrders() {
			ids = append(ids, o.GetOrderId())
		}
		if want := []string{s.orderID}; s.orderID == "" && len(ids) != 0 ||
			s.orderID != "" && !slices.Equal(ids, want) {
			t.Errorf("shopper %d (checkout %s, confirmed order %q) has orders %v",
				s.index, s.requestID, s.orderID, ids)
		}
	}

	// Every confirmed order exists, seen through either gateway.
	for _, s := range orders {
		for i, gw := range gateways {
			req := authed(s.shopper, &shopv1.GetOrderRequest{OrderId: s.orderID})
			res, err := gw.GetOrder(t.Context(), req)
			if err != nil {
				t.Errorf("order %s confirmed by gateway %d: GetOrder on gateway %d: %v",
					s.orderID, s.gateway, i, err)
				continue
			}
			if got := orderQuantities(res.Msg.GetOrder()); !maps.Equal(got,
				map[string]int64{s.scarce: 1, plentiful: 2}) {
				t.Errorf("order %s holds %v, want 1 %s and 2 %s", s.orderID, got, s.scarce, plentiful)
			}
		}
	}

	// Restarted, the killed replicas come back into use and see the same
	// stock and orders as the ones that lived.
	deadInv.start()
	deadCart.start()
	waitServing(t, deadInv.addr)
	waitServing(t, deadCart.addr)
	for _, gw := range d.gateways {
		waitReplica(t, gw, inventoryv1connect.InventoryServiceName, deadInv, grpchealth.StatusServing)
		waitReplica(t, gw, cartv1connect.CartServiceName, deadCart, grpchealth.StatusServing)
	}
	for sku, want := range ledgers {
		if got := ledger(t, inv(0), sku); got.GetSold() != want.GetSold() ||
			got.GetAvailable() != want.GetAvailable() {
			t.Errorf("%s on the restarted inventory: %v, want %v", sku, got, want)
		}
	}
	restartedCart := cartv1connect.NewCartServiceClient(h2cClient(), deadCart.url())
	for _, s := range orders {
		_, err := restartedCart.GetOrder(t.Context(), connect.NewRequest(&cartv1.GetOrderRequest{
			ShopperId: s.id, OrderId: s.orderID,
		}))
		if err != nil {
			t.Errorf("order %s on the restarted cart replica: %v", s.orderID, err)
		}
	}

	attempts := 0
	for _, s := range all {
		attempts += s.attempts
	}
	t.Logf("replicas: %d shoppers, %d workers, 2 gateways, 2 inventory, 2 cart replicas on PostgreSQL",
		shoppers, workers)
	var refusals int64
	for _, n := range refused {
		refusals += n
	}
	t.Logf("replicas: %d scarce units sold of %d demanded, %d orders, %d refused for shortage, "+
		"%d checkout attempts, failed attempts by code %v",
		unitsSold, shoppers, len(orders), refusals, attempts, tally.failures)
	t.Logf("replicas: inventory %s killed at %v (%d checkouts done), cart %s at %v (%d done); "+
		"both restarted after the load; checkout load took %v",
		deadInv.addr, invKilledAt.Round(time.Millisecond), invKilledDone,
		deadCart.addr, cartKilledAt.Round(time.Millisecond), cartKilledDone,
		elapsed.Round(time.Millisecond))
}

// fillReplicaCart makes shopper i: a session from one gateway, one unit of
// sku added through it and two of plentiful through the next.
func fillReplicaCart(
	tb testing.TB, gateways []shopv1connect.ShopServiceClient, i int, sku, plentiful string,
) *replicaShopper {
	ctx := context.Background()
	first := gateways[i%len(gateways)]
	sess, err := first.CreateSession(ctx, connect.NewRequest(&shopv1.CreateSessionRequest{}))
	if err != nil {
		tb.Errorf("shopper %d: CreateSession: %v", i, err)
		return nil
	}
	s := &replicaShopper{
		shopper:   &shopper{tb: tb, token: sess.Msg.GetToken(), id: sess.Msg.GetShopperId()},
		index:     i,
		scarce:    sku,
		requestID: fmt.Sprintf("replicas-%d", i),
	}
	for k, line := range []struct {
		sku string
		qty int64
	}{{sku, 1}, {plentiful, 2}} {
		gw := gateways[(i+k)%len(gateways)]
		req := authed(s.shopper, &shopv1.AddToCartRequest{Sku: line.sku, Quantity: line.qty})
		_, err := gw.AddToCart(ctx, req)
		if err != nil {
			tb.Errorf("shopper %d: AddToCart(%s, %d) on gateway %d: %v",
				i, line.sku, line.qty, (i+k)%len(gateways), err)
		}
	}
	return s
}

// checkoutWithRetries checks s's cart out the way a careful client does:
// on a retryable code it tries again with the same request id, on the next
// gateway, for at most a minute. Every failed attempt goes into tally, and
// so does anything a shopper should never see.
func checkoutWithRetries(
	s *replicaShopper, gateways []shopv1connect.ShopServiceClient, tally *checkoutTally,
) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		gw := (s.index + s.attempts) % len(gateways)
		s.attempts++
		callCtx, cancelCall := context.WithTimeout(ctx, 10*time.Second)
		req := authed(s.shopper, &shopv1.CheckoutRequest{RequestId: s.requestID})
		res, err := gateways[gw].Checkout(callCtx, req)
		cancelCall()
		if err == nil {
			s.orderID, s.gateway = res.Msg.GetOrder().GetOrderId(), gw
			return
		}

		code := connect.CodeOf(err)
		tally.fail(code)
		switch {
		case retryable(code):
			pause(ctx, 50*time.Millisecond)
		case code == connect.CodeFailedPrecondition:
			if !isShortage(err, s.scarce) {
				tally.wrong("checkout %s: %v, want a shortage of %s if FailedPrecondition",
					s.requestID, err, s.scarce)
			}
			s.refusal = err
			return
		default:
			tally.wrong("checkout %s attempt %d on gateway %d: %v, want success, a code to "+
				"retry or a shortage", s.requestID, s.attempts, gw, err)
			return
		}
	}
	tally.wrong("checkout %s got no final answer within a minute (%d attempts)", s.requestID, s.attempts)
}

// isShortage reports whether err refuses a checkout because sku ran short,
// with a StockShortage detail that says so.
func isShortage(err error, sku string) bool {
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != connect.CodeFailedPrecondition {
		return false
	}
	for _, d := range cerr.Details() {
		v, derr := d.Value()
		if s, ok := v.(*inventoryv1.StockShortage); derr == nil && ok && s.GetSku() == sku {
			return true
		}
	}
	return false
}

// settledLedgers reads the ledger of every sku once no stock is held any
// more, waiting at most 15 seconds for checkouts that a gateway may still
// be finishing after its client gave up on them. It fails tb if stock is
// still held then, or if a ledger breaks the stock identity.
func settledLedgers(
	tb testing.TB, inv inventoryv1connect.InventoryServiceClient, skus []string,
) map[string]*inventoryv1.Product {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := map[string]*inventoryv1.Product{}
		held := false
		for _, sku := range skus {
			out[sku] = ledger(tb, inv, sku)
			held = held || out[sku].GetReserved() != 0
		}
		if !held {
			return out
		}
		if time.Now().After(deadline) {
			for _, sku := range skus {
				if p := out[sku]; p.GetReserved() != 0 {
					tb.Errorf("%s: %d units still reserved 15s after every checkout ended: %v",
						sku, p.GetReserved(), p)
				}
			}
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// orderQuantities returns the quantity of each SKU in an order.
func orderQuantities(o *shopv1.Order) map[string]int64 {
	m := map[string]int64{}
	for _, l := range o.GetLines() {
		m[l.GetSku()] += l.GetQuantity()
	}
	return m
}

// pause waits for d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
