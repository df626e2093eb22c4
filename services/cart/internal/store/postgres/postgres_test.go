package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tienda/tienda/internal/pgtest"
	"github.com/tienda/tienda/services/cart/internal/store"
	"github.com/tienda/tienda/services/cart/internal/store/postgres"
	"github.com/tienda/tienda/services/cart/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.NewDatabase(t))
	})
}

// withSmallPool returns dsn with a small connection pool, so that parallel
// tests do not run out of server connections.
func withSmallPool(tb testing.TB, dsn string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "4")
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens the store at dsn and closes it when tb ends.
func open(tb testing.TB, dsn string) *postgres.Store {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(tb.Output(), nil))
	s, err := postgres.Open(context.Background(), withSmallPool(tb, dsn), logger)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestReplicas opens the database from several replicas at once, so that
// they race to migrate it, and then writes to one cart through all of them.
func TestReplicas(t *testing.T) {
	dsn := withSmallPool(t, pgtest.NewDatabase(t))

	const replicas = 3
	opened := make(chan *postgres.Store, replicas)
	errs := make(chan error, replicas)
	for range replicas {
		go func() {
			s, err := postgres.Open(t.Context(), dsn, nil)
			if err != nil {
				errs <- err
				return
			}
			opened <- s
		}()
	}
	var stores []*postgres.Store
	for range replicas {
		select {
		case s := <-opened:
			t.Cleanup(func() { s.Close() })
			stores = append(stores, s)
		case err := <-errs:
			t.Errorf("Open: %v", err)
		}
	}
	if len(stores) != replicas {
		t.FailNow()
	}

	const n = 60
	done := make(chan error, n)
	for i := range n {
		go func() {
			_, err := stores[i%replicas].AddItem(t.Context(), "alice", "sku", 1, 0, time.Now())
			done <- err
		}()
	}
	for range n {
		if err := <-done; err != nil {
			t.Errorf("AddItem: %v", err)
		}
	}
	cart, err := stores[0].GetCart(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetCart: %v", err)
	}
	if len(cart.Lines) != 1 || cart.Lines[0].Quantity != n || cart.Version != n {
		t.Errorf("GetCart = %+v, want %d units at version %d", cart, n, n)
	}
}

// TestDeadline checks that a write waiting for a locked cart gives up when
// its context's deadline passes.
func TestDeadline(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := open(t, dsn)
	if _, err := s.AddItem(t.Context(), "alice", "sku", 1, 0, time.Now()); err != nil {
		t.Fatalf("AddItem: %v", err)
	}

	// Another session holds the cart's lock until the test ends.
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
	if _, err := tx.Exec(t.Context(),
		`SELECT 1 FROM carts WHERE shopper_id = 'alice' FOR UPDATE`); err != nil {
		t.Fatalf("lock cart: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = s.AddItem(ctx, "alice", "sku", 1, 0, time.Now())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("AddItem on a locked cart: error = %v, want context.DeadlineExceeded", err)
	}
}
