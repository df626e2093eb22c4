package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tienda/tienda/internal/pgtest"
	"github.com/tienda/tienda/services/inventory/internal/store"
	"github.com/tienda/tienda/services/inventory/internal/store/postgres"
	"github.com/tienda/tienda/services/inventory/internal/store/storetest"
)

// openStore opens the database at dsn and closes it when tb ends.
func openStore(tb testing.TB, dsn string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), dsn, nil)
	if err != nil {
		tb.Fatalf("Open() = %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, pgtest.NewDatabase(t))
	})
}

// TestReplicas runs the concurrency tests with three stores, each with its
// own connection pool, on one database, as three replicas of the service.
func TestReplicas(t *testing.T) {
	t.Parallel()
	pgtest.DSN(t)
	storetest.RunReplicas(t, func(t *testing.T) []store.Store {
		dsn := pgtest.NewDatabase(t)
		return []store.Store{openStore(t, dsn), openStore(t, dsn), openStore(t, dsn)}
	})
}

// TestConcurrentOpen starts replicas at the same time on an empty database:
// the migration lock lets each of them open it.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)

	const replicas = 4
	var wg sync.WaitGroup
	for range replicas {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn, nil)
			if err != nil {
				t.Errorf("Open() = %v", err)
				return
			}
			defer s.Close()
			if _, err := s.ListProducts(t.Context(), store.ListOptions{}); err != nil {
				t.Errorf("ListProducts() = %v", err)
			}
		})
	}
	wg.Wait()
}

// TestDeadline checks that a call waiting for a lock gives up when its
// context's deadline passes.
func TestDeadline(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	s := openStore(t, dsn)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p := store.Product{SKU: "A-1", Name: "A", Category: "misc",
		Price: store.Money{CurrencyCode: "USD", Amount: 1}}
	if _, err := s.UpsertProduct(t.Context(), p, now); err != nil {
		t.Fatalf("UpsertProduct() = %v", err)
	}

	// Another session holds the product's row lock until the test ends.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	_, err = tx.Exec(t.Context(), `SELECT 1 FROM products WHERE sku = 'A-1' FOR UPDATE`)
	if err != nil {
		t.Fatalf("lock product: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = s.AdjustStock(ctx, "A-1", 1, "restock", now)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AdjustStock() on a locked row = %v, want context.DeadlineExceeded", err)
	}
}

func TestOpenHidesPassword(t *testing.T) {
	t.Parallel()
	dsn := "postgres://u:secret@127.0.0.1:5432/x?sslmode=nonsense"
	_, err := postgres.Open(t.Context(), dsn, nil)
	if err == nil {
		t.Fatal("Open() with a bad DSN succeeded")
	}
	if got := err.Error(); got != "open postgres: invalid dsn" {
		t.Errorf("Open() error = %q, want it to leave the DSN out", got)
	}
}
