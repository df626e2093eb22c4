package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tienda/tienda/services/inventory/internal/store"
	"github.com/tienda/tienda/services/inventory/internal/store/sqlite"
	"github.com/tienda/tienda/services/inventory/internal/store/storetest"
)

// openStore opens the database at path and closes it when tb ends.
func openStore(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), path, nil)
	if err != nil {
		tb.Fatalf("Open(%s) = %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close() = %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, filepath.Join(t.TempDir(), "inventory.db"))
	})
}

// TestReplicas runs the concurrency tests with two stores on one file, as
// two processes would share it.
func TestReplicas(t *testing.T) {
	t.Parallel()
	storetest.RunReplicas(t, func(t *testing.T) []store.Store {
		path := filepath.Join(t.TempDir(), "inventory.db")
		return []store.Store{openStore(t, path), openStore(t, path)}
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "inventory.db")
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	s, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	p := store.Product{
		SKU: "A-1", Name: "A", Category: "misc",
		Price: store.Money{CurrencyCode: "USD", Amount: 100},
	}
	if _, err := s.UpsertProduct(t.Context(), p, now); err != nil {
		t.Fatalf("UpsertProduct() = %v", err)
	}
	if _, err := s.AdjustStock(t.Context(), "A-1", 5, "restock", now); err != nil {
		t.Fatalf("AdjustStock() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	// Opening again finds the data and applies no migration twice.
	s = openStore(t, path)
	got, err := s.GetProduct(t.Context(), "A-1")
	if err != nil {
		t.Fatalf("GetProduct() after reopening = %v", err)
	}
	if got.Available != 5 || got.Adjusted != 5 {
		t.Errorf("GetProduct() after reopening = %+v, want 5 available", got)
	}
}

func TestOpenRejectsBadPath(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "inventory.db?mode=memory"} {
		if _, err := sqlite.Open(t.Context(), path, nil); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

// Environment of the child process of TestCrash.
const (
	envCrashChild = "TIENDA_INVENTORY_CRASH_CHILD_DB"
	crashSKU      = "CRASH-1"
)

// TestCrash kills a process with SIGKILL while it reserves stock, then checks
// that every reservation it acknowledged survived, that the books balance,
// and that the stranded reservations expire and give their stock back.
func TestCrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "inventory.db")
	const stock = 1_000_000

	s, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	p := store.Product{
		SKU: crashSKU, Name: "Crash", Category: "misc",
		Price: store.Money{CurrencyCode: "USD", Amount: 1},
	}
	items := []store.CatalogItem{{Product: p, InitialStock: stock}}
	if _, err := s.LoadCatalog(t.Context(), items, time.Now()); err != nil {
		t.Fatalf("LoadCatalog() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), envCrashChild+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("StdoutPipe() = %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}

	// Kill the child in the middle of its work, after 200 acknowledgements.
	var acked []string
	lines := bufio.NewScanner(out)
	for len(acked) < 200 && lines.Scan() {
		if id, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
			acked = append(acked, id)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("child acknowledged %d reservations before it ended, want 200", len(acked))
	}

	s = openStore(t, path)
	for _, id := range acked {
		r, err := s.GetReservation(t.Context(), id)
		if err != nil {
			t.Fatalf("GetReservation(%s) of an acknowledged reservation = %v", id, err)
		}
		if r.State != store.StateHeld {
			t.Errorf("reservation %s is %v, want held", id, r.State)
		}
	}
	got, err := s.GetProduct(t.Context(), crashSKU)
	if err != nil {
		t.Fatalf("GetProduct() = %v", err)
	}
	if got.Available+got.Reserved+got.Sold != got.Adjusted || got.Reserved < int64(len(acked)) {
		t.Errorf("after the crash stock = %+v, want the books to balance with at least %d reserved",
			got, len(acked))
	}

	// Stranded reservations expire and their stock comes back.
	for {
		released, err := s.ReleaseExpired(t.Context(), time.Now().Add(time.Hour), 500)
		if err != nil {
			t.Fatalf("ReleaseExpired() = %v", err)
		}
		if len(released) == 0 {
			break
		}
	}
	if got, err = s.GetProduct(t.Context(), crashSKU); err != nil {
		t.Fatalf("GetProduct() = %v", err)
	}
	if got.Available != stock || got.Reserved != 0 {
		t.Errorf("after the sweep stock = %+v, want all %d units available", got, stock)
	}
}

// TestCrashChild is the process that TestCrash kills. It reserves one unit
// at a time, forever, and prints the id of every acknowledged reservation.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashChild)
	if path == "" {
		t.Skip("run by TestCrash")
	}
	s, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	now := time.Now()
	for i := 0; ; i++ {
		id := fmt.Sprintf("crash-%d", i)
		_, err := s.Reserve(context.Background(), id, []store.Line{{SKU: crashSKU, Quantity: 1}},
			now, now.Add(time.Minute))
		if errors.Is(err, store.ErrInsufficientStock) {
			return
		}
		if err != nil {
			t.Fatalf("Reserve(%s) = %v", id, err)
		}
		fmt.Printf("acked %s\n", id)
	}
}
