package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tienda/tienda/gateway"
	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
	"github.com/tienda/tienda/internal/replicas"
	"github.com/tienda/tienda/internal/rpcserver"
	"github.com/tienda/tienda/services/cart"
	"github.com/tienda/tienda/services/inventory"
	"github.com/tienda/tienda/web"
)

// app is a running tienda process: the parts its mode asks for, each on its
// own port, and the stores behind them.
type app struct {
	cfg    config
	logger *slog.Logger

	// Base URLs of the parts this process runs; empty for the others.
	inventoryURL string
	cartURL      string
	gatewayURL   string

	servers []*rpcserver.Server // in start order
	closers []func() error      // resources to close after the servers stop
}

// startApp opens the stores and starts the servers that cfg.Mode asks for.
// It returns once every server listens. On error, whatever did start is
// stopped again.
func startApp(ctx context.Context, cfg config, logger *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			a.shutdown(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory: %w", err)
	}

	all := cfg.Mode == modeAll
	if all || cfg.Mode == modeInventory {
		if a.inventoryURL, err = a.startInventory(ctx, dataDir); err != nil {
			return nil, err
		}
	}
	if all || cfg.Mode == modeCart {
		if a.cartURL, err = a.startCart(ctx, dataDir); err != nil {
			return nil, err
		}
	}
	if all || cfg.Mode == modeGateway {
		inventoryURLs, cartURLs := cfg.InventoryURLs, cfg.CartURLs
		if all {
			// The gateway still calls the services over the network, on
			// the ports they really got.
			inventoryURLs, cartURLs = []string{a.inventoryURL}, []string{a.cartURL}
		}
		if a.gatewayURL, err = a.startGateway(dataDir, inventoryURLs, cartURLs); err != nil {
			return nil, err
		}
		logger.Info("ready; try a first call",
			slog.String("cmd", "curl -sS -H 'Content-Type: application/json' -d '{}' "+
				a.gatewayURL+"/tienda.shop.v1.ShopService/CreateSession"))
	}
	return a, nil
}

func (a *app) startInventory(ctx context.Context, dataDir string) (string, error) {
	logger := a.logger.With(slog.String("part", modeInventory))
	svc, err := inventory.Open(ctx, inventory.Config{
		DataDir:        dataDir,
		DSN:            a.cfg.InventoryDSN,
		Logger:         logger,
		ReservationTTL: a.cfg.ReservationTTL,
		LoadCatalog:    a.cfg.LoadCatalog,
	})
	if err != nil {
		return "", fmt.Errorf("open inventory: %w", err)
	}
	a.closers = append(a.closers, svc.Close)

	srv := rpcserver.New(rpcserver.Config{
		Name:           modeInventory,
		Addr:           a.cfg.InventoryAddr,
		Logger:         a.logger,
		AllowedOrigins: a.cfg.CORSOrigins,
	})
	srv.Mount(svc.Handler(srv.HandlerOptions()...))
	return a.serve(srv)
}

func (a *app) startCart(ctx context.Context, dataDir string) (string, error) {
	logger := a.logger.With(slog.String("part", modeCart))
	svc, err := cart.Open(ctx, cart.Config{
		DataDir: dataDir,
		DSN:     a.cfg.CartDSN,
		Logger:  logger,
	})
	if err != nil {
		return "", fmt.Errorf("open cart: %w", err)
	}
	a.closers = append(a.closers, svc.Close)

	srv := rpcserver.New(rpcserver.Config{
		Name:           modeCart,
		Addr:           a.cfg.CartAddr,
		Logger:         a.logger,
		AllowedOrigins: a.cfg.CORSOrigins,
	})
	srv.Mount(svc.Handler(srv.HandlerOptions()...))
	return a.serve(srv)
}

func (a *app) startGateway(dataDir string, inventoryURLs, cartURLs []string) (string, error) {
	logger := a.logger.With(slog.String("part", modeGateway))
	secret := []byte(a.cfg.SessionSecret)
	if len(secret) == 0 {
		var err error
		if secret, err = gateway.LoadOrCreateSecret(dataDir); err != nil {
			return "", fmt.Errorf("session key: %w", err)
		}
	}

	// The gateway addresses each service by one logical URL; the pools
	// spread the calls over the replicas and skip the ones that are down.
	transport := downstreamTransport()
	inventoryPool, err := replicas.New(inventoryv1connect.InventoryServiceName, inventoryURLs, transport, logger)
	if err != nil {
		return "", fmt.Errorf("inventory replicas: %w", err)
	}
	cartPool, err := replicas.New(cartv1connect.CartServiceName, cartURLs, transport, logger)
	if err != nil {
		return "", fmt.Errorf("cart replicas: %w", err)
	}
	watchCtx, stopWatching := context.WithCancel(context.Background())
	a.closers = append(a.closers, func() error { stopWatching(); return nil })
	go inventoryPool.Watch(watchCtx, healthCheckInterval)
	go cartPool.Watch(watchCtx, healthCheckInterval)

	gw, err := gateway.New(gateway.Config{
		Inventory:      gateway.NewInventoryClient(&http.Client{Transport: inventoryPool}, "http://inventory"),
		Cart:           gateway.NewCartClient(&http.Client{Transport: cartPool}, "http://cart"),
		Secret:         secret,
		Logger:         logger,
		ReservationTTL: a.cfg.ReservationTTL,
	})
	if err != nil {
		return "", fmt.Errorf("create gateway: %w", err)
	}
	logger.Info("downstream replicas",
		slog.Any("inventory", inventoryURLs), slog.Any("cart", cartURLs))

	srv := rpcserver.New(rpcserver.Config{
		Name:           modeGateway,
		Addr:           a.cfg.GatewayAddr,
		Logger:         a.logger,
		AllowedOrigins: a.cfg.CORSOrigins,
		Checker:        replicas.NewChecker([]string{shopv1connect.ShopServiceName}, inventoryPool, cartPool),
	})
	srv.Mount(gw.Handler(srv.HandlerOptions()...))
	// The storefront page; Connect's longer patterns take precedence.
	srv.Handle("/", web.Handler())
	return a.serve(srv)
}

func (a *app) serve(srv *rpcserver.Server) (string, error) {
	if err := srv.Start(); err != nil {
		return "", err
	}
	a.servers = append(a.servers, srv)
	return srv.URL(), nil
}

// shutdown stops the servers, the gateway first so that it stops sending
// work to the services, and then closes the stores. Calls in flight may
// finish until ctx is done.
func (a *app) shutdown(ctx context.Context) error {
	var errs []error
	for i := len(a.servers) - 1; i >= 0; i-- {
		errs = append(errs, a.servers[i].Shutdown(ctx))
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.servers, a.closers = nil, nil
	return errors.Join(errs...)
}

// healthCheckInterval is how often the gateway checks each replica.
const healthCheckInterval = 2 * time.Second

// downstreamTransport is how the gateway reaches the services: cleartext
// HTTP/2, so that many calls and streams share a few connections, and a
// short dial timeout, so that a part that is down is reported unavailable
// at once instead of after the caller's deadline.
func downstreamTransport() *http.Transport {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Protocols:       protocols,
		DialContext:     dialer.DialContext,
		IdleConnTimeout: 90 * time.Second,
		HTTP2: &http.HTTP2Config{
			// Notice a dead peer on an idle connection within seconds.
			SendPingTimeout: 10 * time.Second,
			PingTimeout:     5 * time.Second,
		},
	}
}
