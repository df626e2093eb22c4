package watch_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tienda/tienda/services/inventory/internal/store"
	"github.com/tienda/tienda/services/inventory/internal/watch"
)

func level(sku string, available, version int64) store.StockLevel {
	return store.StockLevel{SKU: sku, Available: available, Version: version}
}

// subscribe subscribes to skus and unsubscribes when tb ends.
func subscribe(tb testing.TB, h *watch.Hub, skus ...string) *watch.Subscription {
	tb.Helper()
	s, err := h.Subscribe(skus)
	if err != nil {
		tb.Fatalf("Subscribe(%v) = %v", skus, err)
	}
	tb.Cleanup(s.Close)
	return s
}

// isReady reports whether s has signalled levels to take.
func isReady(s *watch.Subscription) bool {
	select {
	case <-s.Ready():
		return true
	default:
		return false
	}
}

func TestPublish(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		baseline []store.StockLevel
		publish  []store.StockLevel
		want     []store.StockLevel
	}{
		{
			name:    "newest_per_sku_in_sku_order",
			publish: []store.StockLevel{level("B", 5, 1), level("A", 3, 1), level("B", 4, 2)},
			want:    []store.StockLevel{level("A", 3, 1), level("B", 4, 2)},
		},
		{
			name:    "older_versions_dropped",
			publish: []store.StockLevel{level("A", 3, 5), level("A", 9, 4), level("A", 3, 5)},
			want:    []store.StockLevel{level("A", 3, 5)},
		},
		{
			name:    "unwatched_skus_ignored",
			publish: []store.StockLevel{level("Z", 1, 1)},
			want:    nil,
		},
		{
			name:     "baseline_drops_older",
			baseline: []store.StockLevel{level("A", 7, 10)},
			publish:  []store.StockLevel{level("A", 8, 9), level("A", 7, 10), level("B", 1, 1)},
			want:     []store.StockLevel{level("B", 1, 1)},
		},
		{
			name:     "baseline_keeps_newer",
			baseline: []store.StockLevel{level("A", 7, 10)},
			publish:  []store.StockLevel{level("A", 6, 11)},
			want:     []store.StockLevel{level("A", 6, 11)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := watch.NewHub()
			s := subscribe(t, h, "A", "B")
			s.Baseline(tc.baseline)
			h.Publish(tc.publish...)

			if got, want := isReady(s), len(tc.want) > 0; got != want {
				t.Errorf("ready = %t, want %t", got, want)
			}
			if diff := cmp.Diff(tc.want, s.Take(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Take() mismatch (-want +got):\n%s", diff)
			}
			if got := s.Take(); len(got) != 0 {
				t.Errorf("second Take() = %v, want nothing", got)
			}
		})
	}
}

func TestBaselineDropsPending(t *testing.T) {
	t.Parallel()
	h := watch.NewHub()
	s := subscribe(t, h, "A")
	h.Publish(level("A", 5, 3))
	s.Baseline([]store.StockLevel{level("A", 4, 4)})
	if got := s.Take(); len(got) != 0 {
		t.Errorf("Take() after a newer baseline = %v, want nothing", got)
	}
}

// TestSlowSubscriber checks that publishing never waits for a subscriber
// that does not take its levels, which then gets the latest one.
func TestSlowSubscriber(t *testing.T) {
	t.Parallel()
	h := watch.NewHub()
	s := subscribe(t, h, "A")
	for v := range int64(10_000) {
		h.Publish(level("A", v, v+1))
	}
	want := []store.StockLevel{level("A", 9_999, 10_000)}
	if diff := cmp.Diff(want, s.Take()); diff != "" {
		t.Errorf("Take() mismatch (-want +got):\n%s", diff)
	}
}

func TestWatched(t *testing.T) {
	t.Parallel()
	h := watch.NewHub()
	a := subscribe(t, h, "B", "A")
	subscribe(t, h, "B", "C", "B")
	if diff := cmp.Diff([]string{"A", "B", "C"}, h.Watched()); diff != "" {
		t.Errorf("Watched() mismatch (-want +got):\n%s", diff)
	}
	if !h.Watching([]string{"X", "A"}) || h.Watching([]string{"X"}) {
		t.Errorf("Watching() disagrees with Watched() = %v", h.Watched())
	}

	a.Close()
	a.Close()
	if diff := cmp.Diff([]string{"B", "C"}, h.Watched()); diff != "" {
		t.Errorf("Watched() after Close mismatch (-want +got):\n%s", diff)
	}
	h.Publish(level("A", 1, 1))
	if isReady(a) {
		t.Error("a closed subscription received a level")
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	h := watch.NewHub()
	s := subscribe(t, h, "A")
	h.Close()
	h.Close()

	select {
	case <-s.Done():
	default:
		t.Error("Done() is open after the hub closed")
	}
	if _, err := h.Subscribe([]string{"A"}); !errors.Is(err, watch.ErrClosed) {
		t.Errorf("Subscribe() after Close() = %v, want ErrClosed", err)
	}
}
