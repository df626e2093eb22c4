package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tienda/tienda/services/cart/internal/store"
	"github.com/tienda/tienda/services/cart/internal/store/sqlite"
	"github.com/tienda/tienda/services/cart/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "cart.db"))
	})
}

// open opens the store at path and closes it when tb ends.
func open(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(tb.Output(), nil))
	s, err := sqlite.Open(context.Background(), path, logger)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, path := range []string{"", "cart.db?mode=ro"} {
		if s, err := sqlite.Open(t.Context(), path, nil); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cart.db")
	s := open(t, path)
	if _, err := s.AddItem(t.Context(), "alice", "sku", 3, 0, time.Now()); err != nil {
		t.Fatalf("AddItem: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Opening again finds the migrations applied and the cart in place.
	cart, err := open(t, path).GetCart(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetCart after reopening: %v", err)
	}
	if len(cart.Lines) != 1 || cart.Lines[0].Quantity != 3 || cart.Version != 1 {
		t.Errorf("GetCart after reopening = %+v, want 3 units of sku at version 1", cart)
	}
}

// TestSharedFile checks that two stores on one file, as two processes would
// open it, do not lose each other's writes.
func TestSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cart.db")
	stores := []*sqlite.Store{open(t, path), open(t, path)}

	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := stores[i%2].AddItem(t.Context(), "alice", "sku", 1, 0, time.Now())
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
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

// crashDBEnv names the database that TestCrashWriter writes to when this
// test binary runs as TestCrash's child.
const crashDBEnv = "TIENDA_CART_CRASH_DB"

// TestCrash kills a process that is adding items, with SIGKILL, and checks
// that every addition it acknowledged is in the database.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "cart.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashWriter$")
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start writer: %v", err)
	}

	const kill = 25 // acknowledgements to wait for before killing the writer
	acked := 0
	lines := bufio.NewScanner(stdout)
	for acked < kill && lines.Scan() {
		if n, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	if acked < kill {
		cmd.Wait()
		t.Fatalf("writer stopped after %d acknowledgements; stderr:\n%s", acked, stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill writer: %v", err)
	}
	var exitErr *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exitErr) {
		t.Fatalf("writer exited with %v, want it killed", err)
	}

	cart, err := open(t, path).GetCart(t.Context(), "shopper")
	if err != nil {
		t.Fatalf("GetCart after crash: %v", err)
	}
	var units int64
	for _, l := range cart.Lines {
		units += l.Quantity
	}
	// The writer may have committed one more addition than it reported.
	if units < int64(acked) || units != cart.Version {
		t.Errorf("after crash: %d units at version %d, want at least %d acknowledged units"+
			" and the version equal to the units", units, cart.Version, acked)
	}
}

// TestCrashWriter is TestCrash's child: it adds one unit at a time and
// reports each addition once it returned, until it is killed.
func TestCrashWriter(t *testing.T) {
	path := os.Getenv(crashDBEnv)
	if path == "" {
		t.Skip("runs only as TestCrash's child")
	}
	s, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; ; i++ {
		sku := fmt.Sprintf("sku-%d", i/store.MaxLineQuantity)
		if _, err := s.AddItem(t.Context(), "shopper", sku, 1, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %d\n", i)
	}
}
