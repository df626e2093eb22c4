package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
	"github.com/tienda/tienda/internal/pgtest"
)

// benchDrivers is how many clients check out at once in [BenchmarkCheckout],
// each on a connection of its own.
const benchDrivers = 16

// BenchmarkCheckout measures Checkout through a gateway, the way shoppers
// call it, with every part in processes of its own on loopback:
//
//   - sqlite: one inventory, one cart and one gateway on SQLite;
//   - postgres_1: the same on PostgreSQL;
//   - postgres_2: two replicas of each part on PostgreSQL, the clients
//     spread over both gateways.
//
// Each runs two loads. In "contended" every checkout buys one unit of the
// same product, whose stock is exactly b.N, so that all of them lock the
// same row and the last one takes the last unit. In "uncontended" each
// checkout buys a product of its own, with plenty of stock.
//
// One iteration is one Checkout call. The sessions, carts and products are
// made before the timer starts; only the Checkout calls of benchDrivers
// concurrent clients are timed. The metrics are the throughput and the
// median and 99th-percentile latency of one Checkout; ns/op is dropped,
// since with concurrent clients it is only the inverse of the throughput.
// The PostgreSQL configurations need TIENDA_TEST_POSTGRES_DSN.
func BenchmarkCheckout(b *testing.B) {
	configs := []struct {
		name     string
		replicas int
		postgres bool
	}{
		{name: "sqlite", replicas: 1},
		{name: "postgres_1", replicas: 1, postgres: true},
		{name: "postgres_2", replicas: 2, postgres: true},
	}
	for _, c := range configs {
		b.Run(c.name, func(b *testing.B) {
			cfg := deploymentConfig{
				replicas:       c.replicas,
				reservationTTL: time.Minute,
				// Every call logs a line at info; measure checkout, not logs.
				logLevel: "warn",
			}
			if c.postgres {
				cfg.inventoryDSN = pgtest.NewDatabase(b)
				cfg.cartDSN = pgtest.NewDatabase(b)
			}
			cb := newCheckoutBench(b, startDeployment(b, cfg))
			b.Run("contended", func(b *testing.B) { cb.run(b, true) })
			b.Run("uncontended", func(b *testing.B) { cb.run(b, false) })
		})
	}
}

// checkoutBench drives checkouts against one deployment.
type checkoutBench struct {
	inv     inventoryv1connect.InventoryServiceClient
	setup   []shopv1connect.ShopServiceClient // for sessions and carts
	drivers []shopv1connect.ShopServiceClient // one per driver
	runs    int                               // a prefix for SKUs and request ids, fresh for every run
}

func newCheckoutBench(tb testing.TB, d *deployment) *checkoutBench {
	cb := &checkoutBench{
		inv:   inventoryv1connect.NewInventoryServiceClient(h2cClient(), d.inventory[0].url()),
		setup: d.shopClients(),
	}
	for i := range benchDrivers {
		gw := d.gateways[i%len(d.gateways)]
		cb.drivers = append(cb.drivers, shopv1connect.NewShopServiceClient(h2cClient(), gw.url()))
	}
	return cb
}

// run prepares b.N carts, then times their checkouts.
func (cb *checkoutBench) run(b *testing.B, contended bool) {
	cb.runs++
	n := b.N
	skus := make([]string, n)
	if contended {
		hot := fmt.Sprintf("BENCH-HOT-%d", cb.runs)
		stockProduct(b, cb.inv, hot, int64(n))
		for i := range skus {
			skus[i] = hot
		}
	} else {
		for i := range skus {
			skus[i] = fmt.Sprintf("BENCH-OWN-%d-%d", cb.runs, i)
		}
		parallel(b, n, func(i int) error { return upsertStocked(cb.inv, skus[i], 1000) })
	}
	shoppers := make([]*shopper, n)
	parallel(b, n, func(i int) error {
		var err error
		shoppers[i], err = fillCart(b, cb.setup[i%len(cb.setup)], skus[i])
		return err
	})

	latencies := make([]time.Duration, n)
	var (
		next     atomic.Int64
		failed   atomic.Int64
		firstErr sync.Once
		wg       sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for _, client := range cb.drivers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				req := authed(shoppers[i], &shopv1.CheckoutRequest{
					RequestId: fmt.Sprintf("bench-%d-%d", cb.runs, i),
				})
				callStart := time.Now()
				_, err := client.Checkout(context.Background(), req)
				latencies[i] = time.Since(callStart)
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { b.Errorf("Checkout of %s: %v", skus[i], err) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "checkouts/s")
	b.ReportMetric(ms(latencies[n/2]), "p50-ms")
	b.ReportMetric(ms(latencies[min(n-1, n*99/100)]), "p99-ms")
	if f := failed.Load(); f > 0 {
		b.Errorf("%d of %d checkouts failed", f, n)
	}

	// Contended or not, every unit was sold once.
	if contended {
		p := ledger(b, cb.inv, skus[0])
		if p.GetSold() != int64(n) || p.GetAvailable() != 0 || p.GetReserved() != 0 {
			b.Errorf("%s after %d checkouts of its %d units: %v", skus[0], n, n, p)
		}
	}
}

// parallel calls fn for 0..n-1 from 8 goroutines and fails tb with the
// first error.
func parallel(tb testing.TB, n int, fn func(i int) error) {
	tb.Helper()
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		tb.Fatalf("%d of %d setup calls failed, first: %v", len(errs), n, errs[0])
	}
}

// upsertStocked creates a product with stock units, as stockProduct does,
// but returns its error: it runs on goroutines that may not stop a test.
func upsertStocked(inv inventoryv1connect.InventoryServiceClient, sku string, stock int64) error {
	ctx := context.Background()
	_, err := inv.UpsertProduct(ctx, connect.NewRequest(&inventoryv1.UpsertProductRequest{
		Sku:         sku,
		Name:        "Bench " + sku,
		Description: "A product made by a benchmark.",
		Category:    "bench",
		Price:       &commonv1.Money{CurrencyCode: "USD", Amount: 1000},
	}))
	if err != nil {
		return fmt.Errorf("UpsertProduct(%s): %w", sku, err)
	}
	_, err = inv.AdjustStock(ctx, connect.NewRequest(&inventoryv1.AdjustStockRequest{
		Sku: sku, Delta: stock, Reason: "bench stock",
	}))
	if err != nil {
		return fmt.Errorf("AdjustStock(%s, %d): %w", sku, stock, err)
	}
	return nil
}

// fillCart makes a guest session through client and puts one unit of sku
// in its cart.
func fillCart(tb testing.TB, client shopv1connect.ShopServiceClient, sku string) (*shopper, error) {
	ctx := context.Background()
	sess, err := client.CreateSession(ctx, connect.NewRequest(&shopv1.CreateSessionRequest{}))
	if err != nil {
		return nil, fmt.Errorf("CreateSession: %w", err)
	}
	s := &shopper{tb: tb, client: client, token: sess.Msg.GetToken(), id: sess.Msg.GetShopperId()}
	_, err = client.AddToCart(ctx, authed(s, &shopv1.AddToCartRequest{Sku: sku, Quantity: 1}))
	if err != nil {
		return nil, fmt.Errorf("AddToCart(%s): %w", sku, err)
	}
	return s, nil
}
