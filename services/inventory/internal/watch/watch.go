// Package watch fans stock levels out to the streams that watch them.
//
// A [Hub] takes levels from any source, such as the service's own writes or
// a poller that sees the writes of other replicas, and hands each
// [Subscription] the newest level of every SKU it watches. Publishing never
// blocks: a subscriber that falls behind skips the levels it had no time to
// send and gets the latest one. Levels carry the product's stock version,
// so that one arriving late or twice is dropped instead of undoing a newer
// one.
package watch

import (
	"cmp"
	"errors"
	"slices"
	"sync"

	"github.com/tienda/tienda/services/inventory/internal/store"
)

// ErrClosed is returned by [Hub.Subscribe] once the hub is closed.
var ErrClosed = errors.New("stock watch hub is closed")

// Hub dispatches stock levels to subscriptions. It is safe for concurrent
// use.
type Hub struct {
	mu     sync.Mutex
	bySKU  map[string]map[*Subscription]struct{}
	closed bool
	done   chan struct{}
}

// NewHub returns an open hub with no subscriptions.
func NewHub() *Hub {
	return &Hub{
		bySKU: make(map[string]map[*Subscription]struct{}),
		done:  make(chan struct{}),
	}
}

// Subscribe returns a subscription to the levels of skus. The caller must
// Close it.
func (h *Hub) Subscribe(skus []string) (*Subscription, error) {
	s := &Subscription{
		hub:     h,
		skus:    store.UniqueSKUs(skus),
		ready:   make(chan struct{}, 1),
		seen:    make(map[string]int64),
		pending: make(map[string]store.StockLevel),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	for _, sku := range s.skus {
		subs := h.bySKU[sku]
		if subs == nil {
			subs = make(map[*Subscription]struct{})
			h.bySKU[sku] = subs
		}
		subs[s] = struct{}{}
	}
	return s, nil
}

// Publish hands every level to the subscriptions that watch its SKU, unless
// they have seen that version or a newer one already. It never blocks.
func (h *Hub) Publish(levels ...store.StockLevel) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range levels {
		for s := range h.bySKU[l.SKU] {
			s.offer(l)
		}
	}
}

// Watched returns, in order, the SKUs that at least one subscription
// watches, for pollers to read.
func (h *Hub) Watched() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	skus := make([]string, 0, len(h.bySKU))
	for sku := range h.bySKU {
		skus = append(skus, sku)
	}
	slices.Sort(skus)
	return skus
}

// Watching reports whether a subscription watches any of skus, so that
// publishers can skip reading levels that nobody waits for.
func (h *Hub) Watching(skus []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sku := range skus {
		if len(h.bySKU[sku]) > 0 {
			return true
		}
	}
	return false
}

// Close ends every subscription: their Done channels are closed, and later
// calls to Subscribe fail with ErrClosed. Closing twice is a no-op.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// Subscription receives the levels of some SKUs. Its methods are safe for
// concurrent use, but one goroutine is expected to consume it.
type Subscription struct {
	hub  *Hub
	skus []string
	// ready holds a token when pending has levels to take.
	ready chan struct{}

	mu sync.Mutex
	// seen is the newest version of each SKU accepted so far.
	seen    map[string]int64
	pending map[string]store.StockLevel
}

func (s *Subscription) offer(l store.StockLevel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.seen[l.SKU]; ok && l.Version <= v {
		return
	}
	s.seen[l.SKU] = l.Version
	s.pending[l.SKU] = l
	select {
	case s.ready <- struct{}{}:
	default: // a token is there already
	}
}

// Baseline records levels that the consumer has sent by other means, such
// as the first message of a stream: pending levels that are not newer are
// dropped, and so are such levels published later.
func (s *Subscription) Baseline(levels []store.StockLevel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range levels {
		if v, ok := s.seen[l.SKU]; !ok || l.Version > v {
			s.seen[l.SKU] = l.Version
		}
		if p, ok := s.pending[l.SKU]; ok && p.Version <= l.Version {
			delete(s.pending, l.SKU)
		}
	}
}

// Ready receives a value when there are levels to Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Done is closed when the hub closes.
func (s *Subscription) Done() <-chan struct{} { return s.hub.done }

// Take returns the pending levels in SKU order, the newest one per SKU, and
// forgets them.
func (s *Subscription) Take() []store.StockLevel {
	s.mu.Lock()
	defer s.mu.Unlock()
	levels := make([]store.StockLevel, 0, len(s.pending))
	for _, l := range s.pending {
		levels = append(levels, l)
	}
	clear(s.pending)
	slices.SortFunc(levels, func(a, b store.StockLevel) int { return cmp.Compare(a.SKU, b.SKU) })
	return levels
}

// Close unsubscribes. Closing twice is a no-op.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sku := range s.skus {
		if subs := h.bySKU[sku]; subs != nil {
			delete(subs, s)
			if len(subs) == 0 {
				delete(h.bySKU, sku)
			}
		}
	}
}
