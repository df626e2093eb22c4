// Package inventory is the inventory service, tienda.inventory.v1. It owns
// the catalog, the stock of every product and the reservations that hold
// stock for checkouts in progress, and it is their only writer.
//
// Stock moves between three buckets: available (on hand, free to reserve),
// reserved and sold. The service keeps, for every product, on every store
// and across replicas,
//
//   - available + reserved + sold == adjusted, the net of all stock
//     adjustments including the initial stock, with no bucket below zero;
//   - no oversell: a reservation holds all of its lines or none, and
//     concurrent reservations never take more than is available;
//   - one reservation per id: retries with the same id and lines return the
//     held or committed reservation, and commit and release are idempotent;
//     a released id held nothing and may hold stock anew, and committing an
//     expired hold takes its stock again while there is some;
//   - every held reservation ends: it is committed, released, or released
//     by the sweeper once its expire time has passed, also when it was
//     stranded by a crash.
//
// The storage engine is SQLite in a data directory by default, or
// PostgreSQL when a DSN is configured. Handlers only convert between proto
// messages and the domain of package store, and map domain errors to
// Connect codes in one place; anything else is returned as it is, for the
// server's interceptors to log and to hide from clients.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	"github.com/tienda/tienda/services/inventory/internal/store"
	"github.com/tienda/tienda/services/inventory/internal/store/postgres"
	"github.com/tienda/tienda/services/inventory/internal/store/sqlite"
	"github.com/tienda/tienda/services/inventory/internal/watch"
)

// Defaults of [Config].
const (
	DefaultReservationTTL = 2 * time.Minute
	DefaultSweepInterval  = 5 * time.Second
	// DefaultWatchPollInterval is how often WatchStock streams look for
	// changes made by other replicas when the store is PostgreSQL.
	DefaultWatchPollInterval = time.Second
)

// DatabaseFile is the name of the SQLite database in [Config.DataDir].
const DatabaseFile = "inventory.db"

// sweepBatch is how many expired reservations one store call releases.
const sweepBatch = 100

// Config configures [Open].
type Config struct {
	// DataDir holds the SQLite database, DataDir/inventory.db, when DSN is
	// empty. It is created if missing.
	DataDir string
	// DSN, such as postgres://user@host:5432/db, selects PostgreSQL.
	DSN string
	// Logger receives lifecycle events and stock adjustments; nil discards
	// them.
	Logger *slog.Logger
	// Now tells the time; nil means time.Now. Tests set it to control when
	// reservations expire.
	Now func() time.Time
	// ReservationTTL is how long a reservation holds stock when the request
	// names no time; zero means DefaultReservationTTL.
	ReservationTTL time.Duration
	// SweepInterval is how often expired reservations are released; zero
	// means DefaultSweepInterval and a negative value turns the sweeper off.
	SweepInterval time.Duration
	// WatchPollInterval is how often watched products are read again to see
	// changes made by other replicas. Zero means DefaultWatchPollInterval
	// with PostgreSQL and never with SQLite; a negative value means never.
	WatchPollInterval time.Duration
	// LoadCatalog loads the bundled catalog, with its initial stock, into a
	// store that has no products yet.
	LoadCatalog bool
}

// Service implements tienda.inventory.v1.InventoryService. Its methods are
// safe for concurrent use.
type Service struct {
	store  store.Store
	hub    *watch.Hub
	logger *slog.Logger
	now    func() time.Time
	ttl    time.Duration

	stop      context.CancelFunc // stops the background goroutines
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ inventoryv1connect.InventoryServiceHandler = (*Service)(nil)

// Open opens the store that cfg selects, migrating its schema, loads the
// catalog if asked to, and starts the goroutines that release expired
// reservations and poll for changes by other replicas. The caller must
// Close the service.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.ReservationTTL < 0:
		return nil, fmt.Errorf("inventory: negative reservation ttl %v", cfg.ReservationTTL)
	case cfg.ReservationTTL == 0:
		cfg.ReservationTTL = DefaultReservationTTL
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.WatchPollInterval == 0 && cfg.DSN != "" {
		cfg.WatchPollInterval = DefaultWatchPollInterval
	}

	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.LoadCatalog {
		if err := loadCatalog(ctx, st, cfg); err != nil {
			st.Close()
			return nil, err
		}
	}

	bg, stop := context.WithCancel(context.Background())
	s := &Service{
		store:  st,
		hub:    watch.NewHub(),
		logger: cfg.Logger,
		now:    cfg.Now,
		ttl:    cfg.ReservationTTL,
		stop:   stop,
	}
	if cfg.SweepInterval > 0 {
		s.wg.Go(func() { s.sweep(bg, cfg.SweepInterval) })
	}
	if cfg.WatchPollInterval > 0 {
		s.wg.Go(func() { s.poll(bg, cfg.WatchPollInterval) })
	}
	return s, nil
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.DSN != "" {
		st, err := postgres.Open(ctx, cfg.DSN, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
		cfg.Logger.Info("inventory store opened", "store", "postgres")
		return st, nil
	}

	if cfg.DataDir == "" {
		return nil, errors.New("inventory: neither a data directory nor a dsn is configured")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("inventory: create data directory: %w", err)
	}
	path := filepath.Join(cfg.DataDir, DatabaseFile)
	st, err := sqlite.Open(ctx, path, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	cfg.Logger.Info("inventory store opened", "store", "sqlite", "path", path)
	return st, nil
}

func loadCatalog(ctx context.Context, st store.Store, cfg Config) error {
	items, err := bundledCatalog()
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	n, err := st.LoadCatalog(ctx, items, cfg.Now())
	if err != nil {
		return fmt.Errorf("inventory: load catalog: %w", err)
	}
	if n > 0 {
		cfg.Logger.Info("catalog loaded into empty store", "products", n)
	}
	return nil
}

// Handler returns the path under which to mount the service and its HTTP
// handler, which speaks Connect, gRPC and gRPC-Web.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return inventoryv1connect.NewInventoryServiceHandler(s, opts...)
}

// ReleaseExpired releases every held reservation whose expire time has
// passed, returns their stock to available and tells watchers. It returns
// how many it released. The sweeper calls it every SweepInterval; tests
// call it after moving their clock.
func (s *Service) ReleaseExpired(ctx context.Context) (int, error) {
	now := s.now()
	total := 0
	for {
		released, err := s.store.ReleaseExpired(ctx, now, sweepBatch)
		if err != nil {
			return total, fmt.Errorf("release expired reservations: %w", err)
		}
		total += len(released)
		for _, r := range released {
			s.publish(ctx, r.SKUs())
		}
		if len(released) < sweepBatch {
			break
		}
	}
	if total > 0 {
		s.logger.Info("expired reservations released", "count", total)
	}
	return total, nil
}

// sweep calls ReleaseExpired at once, for reservations stranded by a
// previous run, and then every interval until ctx ends.
func (s *Service) sweep(ctx context.Context, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		if _, err := s.ReleaseExpired(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("sweep of expired reservations failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// poll reads the levels of the watched products every interval until ctx
// ends, so that watchers see the changes of other replicas; the hub drops
// levels they have seen.
//
// TODO(inventory): with many replicas and watchers, LISTEN/NOTIFY on
// PostgreSQL would replace this polling with one notification per change.
func (s *Service) poll(ctx context.Context, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		skus := s.hub.Watched()
		if len(skus) == 0 {
			continue
		}
		levels, err := s.store.StockLevels(ctx, skus)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("poll of watched stock levels failed", "err", err)
			}
			continue
		}
		s.hub.Publish(levels...)
	}
}

// publishTimeout bounds the read of new stock levels after a write.
const publishTimeout = 5 * time.Second

// publish tells watchers the new availability of skus after a write. It
// reads the levels even if ctx has ended, since the write went through.
func (s *Service) publish(ctx context.Context, skus []string) {
	if !s.hub.Watching(skus) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	levels, err := s.store.StockLevels(ctx, skus)
	if err != nil {
		// Watchers miss this change, and see the next one.
		s.logger.Warn("read of stock levels for watchers failed", "err", err)
		return
	}
	s.hub.Publish(levels...)
}

// Drain ends every WatchStock stream and refuses new ones with
// Unavailable, so that an http.Server's Shutdown need not wait for streams
// that never end on their own. Register it with
// http.Server.RegisterOnShutdown. Close calls it too.
func (s *Service) Drain() {
	s.hub.Close()
}

// Close ends the streams, stops the background goroutines and closes the
// store. Calls after the first return the first one's result.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.Drain()
		s.stop()
		s.wg.Wait()
		if err := s.store.Close(); err != nil {
			s.closeErr = fmt.Errorf("close inventory store: %w", err)
		}
	})
	return s.closeErr
}
