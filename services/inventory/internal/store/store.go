// Package store defines the inventory's domain types, its errors and the
// [Store] interface that every storage engine implements.
//
// Stock of a product moves between three buckets: available (on hand and free
// to reserve), reserved (held by a reservation) and sold (taken by a committed
// reservation). Adjusted is the net of every stock adjustment, the initial
// stock included. Every implementation keeps, for every product and after
// every committed transaction,
//
//	available + reserved + sold == adjusted, and all four >= 0.
//
// Implementations never call time.Now for decisions: callers pass the time
// in, so that tests control expiry. Code in this package and below it never
// imports Connect or generated code.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store keeps products, their stock and reservations. All methods are safe
// for concurrent use, also by several processes sharing one database.
type Store interface {
	// GetProduct returns the product with the given SKU, or an error
	// matching ErrNotFound.
	GetProduct(ctx context.Context, sku string) (Product, error)

	// ListProducts returns one page of products in SKU order. A page token
	// that is malformed or was issued for other filters gives an error
	// matching ErrInvalidPageToken.
	ListProducts(ctx context.Context, opts ListOptions) (Page, error)

	// BatchGetProducts returns the products found, in the order of skus
	// with duplicates removed, and the SKUs that name no product.
	BatchGetProducts(ctx context.Context, skus []string) (
		found []Product, missing []string, err error)

	// UpsertProduct creates a product with no stock, or updates the catalog
	// fields of an existing one. It reads only the catalog fields of p
	// (SKU, Name, Description, Category, Price) and never changes stock.
	UpsertProduct(ctx context.Context, p Product, now time.Time) (Product, error)

	// AdjustStock adds delta units to the available and adjusted stock of a
	// product, or removes them when delta is negative. Removing more than is
	// available fails with a [*ShortageError]. The reason is recorded with
	// the adjustment.
	AdjustStock(ctx context.Context, sku string, delta int64, reason string,
		now time.Time) (Product, error)

	// Reserve moves the quantity of every line from available to reserved,
	// or changes nothing. When a line cannot be held it fails with a
	// [*ShortageError] that names every short line. It is idempotent by id:
	// a held or committed reservation with the same lines (in any order) is
	// returned as it is and holds nothing more; one with other lines gives
	// ErrReservationConflict. A released reservation held nothing, so its
	// id holds the given lines anew.
	Reserve(ctx context.Context, id string, lines []Line,
		now, expireTime time.Time) (Reservation, error)

	// Commit moves a held reservation's stock from reserved to sold. A held
	// reservation can be committed after its expire time as long as it has
	// not been released yet. Committing a committed reservation returns it
	// unchanged and an unknown id gives ErrNotFound. Committing a released
	// one takes its lines from available again, because the order it was
	// for exists after all, or fails with a [*ShortageError].
	Commit(ctx context.Context, id string, now time.Time) (Reservation, error)

	// Release moves a held reservation's stock back to available. Releasing
	// a released reservation returns it unchanged, releasing a committed one
	// gives ErrReservationClosed, and releasing an unknown id returns nil
	// and no error.
	Release(ctx context.Context, id string, now time.Time) (*Reservation, error)

	// ReleaseExpired releases at most limit held reservations whose expire
	// time is not after now, and returns them. Callers loop until fewer
	// than limit come back.
	ReleaseExpired(ctx context.Context, now time.Time, limit int) ([]Reservation, error)

	// GetReservation returns the reservation with the given id, or an error
	// matching ErrNotFound.
	GetReservation(ctx context.Context, id string) (Reservation, error)

	// StockLevels returns the availability of the products found among
	// skus, in no particular order; unknown SKUs are left out.
	StockLevels(ctx context.Context, skus []string) ([]StockLevel, error)

	// LoadCatalog inserts items with their initial stock, recorded as
	// adjustments, in one transaction, but only if the store holds no
	// product at all. It returns how many products it inserted: zero when
	// the store was not empty. Concurrent calls load the catalog once.
	LoadCatalog(ctx context.Context, items []CatalogItem, now time.Time) (int, error)

	// Close releases the store's resources.
	Close() error
}

// Money is an amount in the smallest unit of a currency, such as 1999 with
// "USD" for $19.99.
type Money struct {
	CurrencyCode string
	Amount       int64
}

// Product is one item of the catalog with its stock.
type Product struct {
	SKU         string
	Name        string
	Description string
	Category    string
	Price       Money

	// Available is on hand and free to reserve.
	Available int64
	// Reserved is held by reservations that are neither committed nor
	// released.
	Reserved int64
	// Sold was taken by committed reservations.
	Sold int64
	// Adjusted is the net of all adjustments, the initial stock included.
	Adjusted int64
	// StockVersion grows by one with every change of the stock buckets, so
	// that watchers can tell newer availability from older.
	StockVersion int64
	// UpdateTime is when the catalog fields or the stock last changed.
	UpdateTime time.Time
}

// CatalogItem is a product with the stock it starts with.
type CatalogItem struct {
	Product      Product
	InitialStock int64
}

// StockLevel is the availability of one product at one stock version.
type StockLevel struct {
	SKU       string
	Available int64
	Version   int64
}

// Line is a quantity of one product held by a reservation.
type Line struct {
	SKU      string
	Quantity int64
}

// State says where a reservation is in its life.
type State int

// The states of a reservation. A reservation starts held and ends either
// committed or released; it never leaves those two.
const (
	StateHeld State = iota + 1
	StateCommitted
	StateReleased
)

// String returns the state's lowercase name, as stored in databases.
func (s State) String() string {
	switch s {
	case StateHeld:
		return "held"
	case StateCommitted:
		return "committed"
	case StateReleased:
		return "released"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState is the inverse of [State.String].
func ParseState(s string) (State, error) {
	switch s {
	case "held":
		return StateHeld, nil
	case "committed":
		return StateCommitted, nil
	case "released":
		return StateReleased, nil
	}
	return 0, fmt.Errorf("unknown reservation state %q", s)
}

// Reservation is stock held for one checkout.
type Reservation struct {
	ID string
	// Lines are in SKU order, one per SKU.
	Lines      []Line
	State      State
	ExpireTime time.Time
	CreateTime time.Time
	UpdateTime time.Time
}

// SKUs returns the SKUs of the reservation's lines.
func (r Reservation) SKUs() []string {
	skus := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		skus[i] = l.SKU
	}
	return skus
}

// Errors that stores return, wrapped with the subject they are about. Check
// them with errors.Is. Their messages contain no storage detail, so that a
// service may show them to clients.
var (
	// ErrNotFound means that a product or reservation does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInsufficientStock means that there is not enough stock on hand;
	// the error is a [*ShortageError] that says by how much.
	ErrInsufficientStock = errors.New("not enough stock")
	// ErrReservationConflict means that a reservation with the same id but
	// other lines exists.
	ErrReservationConflict = errors.New("reservation exists with other lines")
	// ErrReservationClosed means that a reservation was already committed,
	// so it cannot be released.
	ErrReservationClosed = errors.New("reservation is closed")
	// ErrInvalidPageToken means that a page token is malformed or was issued
	// for other filters.
	ErrInvalidPageToken = errors.New("invalid page token")
	// ErrInvalidArgument means that an argument breaks a domain rule, such
	// as a reservation naming a SKU twice.
	ErrInvalidArgument = errors.New("invalid argument")
)

// ProductNotFound returns an error matching ErrNotFound about the product.
func ProductNotFound(sku string) error {
	return fmt.Errorf("product %q %w", sku, ErrNotFound)
}

// ReservationNotFound returns an error matching ErrNotFound about the
// reservation.
func ReservationNotFound(id string) error {
	return fmt.Errorf("reservation %q %w", id, ErrNotFound)
}

// Shortage says how far one line is from being satisfiable.
type Shortage struct {
	SKU       string
	Requested int64
	Available int64
}

// ShortageError is the error of a reservation or write-off that asked for
// more than is available. It matches ErrInsufficientStock.
type ShortageError struct {
	// Shortages holds one entry per short line, in SKU order.
	Shortages []Shortage
}

// Error names every short SKU with what is left and what was requested.
func (e *ShortageError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInsufficientStock.Error())
	b.WriteString(": ")
	for i, s := range e.Shortages {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s has %d left, %d requested", s.SKU, s.Available, s.Requested)
	}
	return b.String()
}

// Is reports whether target is ErrInsufficientStock.
func (e *ShortageError) Is(target error) bool {
	return target == ErrInsufficientStock
}

// Truncate rounds t down to the microsecond in UTC, the precision every
// store keeps, so that values compare equal after a round trip.
func Truncate(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
