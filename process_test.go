package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
)

// These tests run tienda as separate processes, the way a deployment does,
// and kill them: no in-process test can show what a SIGKILL leaves behind.

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tienda-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tienda")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is one tienda process.
type proc struct {
	tb   testing.TB
	args []string
	log  string
	cmd  *exec.Cmd
	done chan error
}

func startProc(tb testing.TB, dir string, args ...string) *proc {
	tb.Helper()
	if _, err := buildOnce(); err != nil {
		tb.Fatal(err)
	}
	p := &proc{tb: tb, args: args, log: filepath.Join(dir, args[0]+".log")}
	p.start()
	tb.Cleanup(func() {
		p.kill()
		if tb.Failed() {
			out, _ := os.ReadFile(p.log)
			tb.Logf("log of tienda %v:\n%s", p.args, out)
		}
	})
	return p
}

func (p *proc) start() {
	p.tb.Helper()
	bin, _ := buildOnce()
	logFile, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatalf("start tienda %v: %v", p.args, err)
	}
	p.done = make(chan error, 1)
	go func() {
		p.done <- p.cmd.Wait()
		logFile.Close()
	}()
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// terminate sends SIGTERM and returns the process's exit error.
func (p *proc) terminate(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(timeout):
		return errors.New("did not exit after SIGTERM")
	}
}

// freeAddrs returns n loopback addresses that were free a moment ago.
func freeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		defer l.Close()
	}
	return addrs
}

// waitServing polls a part's health until it serves, for at most a minute:
// a process that has just started has no other way to say it is ready.
func waitServing(tb testing.TB, addr string) {
	tb.Helper()
	health := grpchealth.NewClient(h2cClient(), "http://"+addr, connect.WithGRPC())
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, err := health.Check(ctx, &grpchealth.CheckRequest{})
		cancel()
		if err == nil && res.Status == grpchealth.StatusServing {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s did not become healthy within a minute", addr)
}

// cluster is inventory, cart and gateway as three processes.
type cluster struct {
	dir                       string
	gateway, inventory, cart  *proc
	gwAddr, invAddr, cartAddr string
}

func startCluster(tb testing.TB, ttl time.Duration) *cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("process tests skipped in -short mode")
	}
	addrs := freeAddrs(tb, 3)
	c := &cluster{dir: tb.TempDir(), gwAddr: addrs[0], invAddr: addrs[1], cartAddr: addrs[2]}
	common := []string{"-data-dir", c.dir, "-reservation-ttl", ttl.String(), "-log-format", "json"}
	c.inventory = startProc(tb, c.dir, append([]string{"inventory", "-inventory-addr", c.invAddr}, common...)...)
	c.cart = startProc(tb, c.dir, append([]string{"cart", "-cart-addr", c.cartAddr}, common...)...)
	c.gateway = startProc(tb, c.dir, append([]string{"gateway", "-gateway-addr", c.gwAddr,
		"-inventory-url", "http://" + c.invAddr, "-cart-url", "http://" + c.cartAddr}, common...)...)
	for _, addr := range addrs {
		waitServing(tb, addr)
	}
	return c
}

// restart starts a killed process again with the same arguments.
func (c *cluster) restart(tb testing.TB, p *proc, addr string) {
	tb.Helper()
	p.start()
	waitServing(tb, addr)
}

// confirmed is an order a client saw succeed.
type confirmed struct {
	shopper *shopper
	orderID string
	units   int64
}

// loadResult is what a checkout load saw.
type loadResult struct {
	confirmed []confirmed // orders whose checkout answered success
	shoppers  []*shopper  // every shopper that tried to check out
}

// checkoutLoad runs workers that each create a shopper, fill a cart and
// check out, retrying with the same request id while the answer is a
// transient error, until stop is closed.
func checkoutLoad(tb testing.TB, gwURL string, workers int, sku string, stop <-chan struct{}) loadResult {
	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				s, o, ok := buyOnce(tb, gwURL, sku, fmt.Sprintf("w%d-%d", w, n))
				mu.Lock()
				if s != nil {
					res.shoppers = append(res.shoppers, s)
				}
				if ok {
					res.confirmed = append(res.confirmed, o)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res
}

// unitsOrdered returns how many units the shoppers' orders hold, all
// orders counted, whether or not their checkout answered success.
func unitsOrdered(tb testing.TB, gw shopv1connect.ShopServiceClient, shoppers []*shopper) int64 {
	tb.Helper()
	var units int64
	for _, s := range shoppers {
		s.client = gw
		res, err := gw.ListOrders(context.Background(), authed(s, &shopv1.ListOrdersRequest{PageSize: 100}))
		if err != nil {
			tb.Fatalf("ListOrders: %v", err)
		}
		for _, o := range res.Msg.GetOrders() {
			for _, l := range o.GetLines() {
				units += l.GetQuantity()
			}
		}
	}
	return units
}

// buyOnce is one shopper's purchase of one unit, retried the way a careful
// client retries: same request id, for at most 30 seconds. It returns the
// shopper if it got as far as checking out, and whether checkout succeeded.
func buyOnce(tb testing.TB, gwURL, sku, requestID string) (*shopper, confirmed, bool) {
	client := shopv1connect.NewShopServiceClient(h2cClient(), gwURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := client.CreateSession(ctx, connect.NewRequest(&shopv1.CreateSessionRequest{}))
	if err != nil {
		return nil, confirmed{}, false
	}
	s := &shopper{tb: tb, client: client, token: sess.Msg.GetToken(), id: sess.Msg.GetShopperId()}
	if _, err := client.AddToCart(ctx, authed(s, &shopv1.AddToCartRequest{Sku: sku, Quantity: 1})); err != nil {
		return nil, confirmed{}, false
	}
	for ctx.Err() == nil {
		callCtx, cancelCall := context.WithTimeout(ctx, 5*time.Second)
		res, err := client.Checkout(callCtx, authed(s, &shopv1.CheckoutRequest{RequestId: requestID}))
		cancelCall()
		if err == nil {
			return s, confirmed{shopper: s, orderID: res.Msg.GetOrder().GetOrderId(), units: 1}, true
		}
		switch connect.CodeOf(err) {
		case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeInternal, connect.CodeAborted:
			time.Sleep(100 * time.Millisecond) // a part is restarting; retry the same request
			continue
		}
		tb.Logf("checkout %s: %v", requestID, err)
		return s, confirmed{}, false
	}
	tb.Errorf("checkout %s never got a final answer within 30s", requestID)
	return s, confirmed{}, false
}

func TestCrashUnderCheckoutLoad(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 5*time.Second)
	inv := inventoryv1connect.NewInventoryServiceClient(h2cClient(), "http://"+c.invAddr)
	const sku, initial = "CRASH-KETTLE", 5000
	stockProduct(t, inv, sku, initial)

	// A gateway that died right after reserving leaves this behind.
	_, err := inv.ReserveStock(t.Context(), connect.NewRequest(&inventoryv1.ReserveStockRequest{
		ReservationId: "stranded-by-crash",
		Lines:         []*inventoryv1.ReservationLine{{Sku: sku, Quantity: 3}},
	}))
	if err != nil {
		t.Fatalf("ReserveStock: %v", err)
	}

	stop := make(chan struct{})
	result := make(chan loadResult)
	go func() { result <- checkoutLoad(t, "http://"+c.gwAddr, 8, sku, stop) }()

	time.Sleep(700 * time.Millisecond) // let the load run before the first crash
	c.inventory.kill()
	time.Sleep(300 * time.Millisecond)
	c.restart(t, c.inventory, c.invAddr)
	time.Sleep(700 * time.Millisecond)
	c.cart.kill()
	time.Sleep(300 * time.Millisecond)
	c.restart(t, c.cart, c.cartAddr)
	time.Sleep(700 * time.Millisecond)
	close(stop)
	load := <-result
	orders := load.confirmed
	if len(orders) == 0 {
		t.Fatal("no checkout succeeded under load")
	}

	// Every confirmed order exists after the crashes.
	gw := shopv1connect.NewShopServiceClient(h2cClient(), "http://"+c.gwAddr)
	for _, o := range orders {
		o.shopper.client = gw
		if _, err := gw.GetOrder(t.Context(), authed(o.shopper, &shopv1.GetOrderRequest{OrderId: o.orderID})); err != nil {
			t.Errorf("confirmed order %s: %v", o.orderID, err)
		}
	}

	// Stranded reservations expire and their stock returns; what was sold
	// is exactly what the orders hold.
	deadline := time.Now().Add(30 * time.Second)
	var p *inventoryv1.Product
	for {
		p = ledger(t, inv, sku)
		if p.GetReserved() == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if p.GetReserved() != 0 {
		t.Errorf("%d units still reserved 30s after the load", p.GetReserved())
	}
	ordered := unitsOrdered(t, gw, load.shoppers)
	if p.GetAdjusted() != initial || p.GetSold() != ordered || ordered < int64(len(orders)) {
		t.Errorf("ledger %v, want %d sold: the units of all orders, %d of them confirmed",
			p, ordered, len(orders))
	}
	t.Logf("crash test: %d checkouts, %d confirmed, %d units in orders; inventory and cart each "+
		"killed with SIGKILL once", len(load.shoppers), len(orders), ordered)
}

func TestGracefulShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	c := startCluster(t, time.Minute)
	inv := inventoryv1connect.NewInventoryServiceClient(h2cClient(), "http://"+c.invAddr)
	const sku = "CALM-TEAPOT"
	stockProduct(t, inv, sku, 5000)

	stop := make(chan struct{})
	result := make(chan loadResult)
	go func() { result <- checkoutLoad(t, "http://"+c.gwAddr, 8, sku, stop) }()
	time.Sleep(700 * time.Millisecond)

	// SIGTERM the gateway mid-load: it drains and exits cleanly.
	if err := c.gateway.terminate(15 * time.Second); err != nil {
		t.Errorf("gateway after SIGTERM: %v", err)
	}
	// Calls made now are refused cleanly, not hung.
	client := shopv1connect.NewShopServiceClient(h2cClient(), "http://"+c.gwAddr)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	_, err := client.CreateSession(ctx, connect.NewRequest(&shopv1.CreateSessionRequest{}))
	cancel()
	if got := connect.CodeOf(err); got != connect.CodeUnavailable {
		t.Errorf("call to a stopped gateway: %v, want Unavailable", err)
	}
	c.restart(t, c.gateway, c.gwAddr)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	load := <-result
	orders := load.confirmed

	gw := shopv1connect.NewShopServiceClient(h2cClient(), "http://"+c.gwAddr)
	for _, o := range orders {
		o.shopper.client = gw
		if _, err := gw.GetOrder(t.Context(), authed(o.shopper, &shopv1.GetOrderRequest{OrderId: o.orderID})); err != nil {
			t.Errorf("acknowledged order %s lost: %v", o.orderID, err)
		}
	}
	// A graceful stop finishes every call, so every order was confirmed.
	ordered := unitsOrdered(t, gw, load.shoppers)
	if p := ledger(t, inv, sku); p.GetSold() != int64(len(orders)) || ordered != int64(len(orders)) ||
		p.GetReserved() != 0 {
		t.Errorf("ledger %v and %d units in orders, want %d sold and nothing held", p, ordered, len(orders))
	}
	t.Logf("graceful shutdown: %d orders acknowledged across a gateway SIGTERM and restart", len(orders))
}
