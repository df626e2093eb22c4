// Package store defines the cart service's domain: carts, the orders placed
// from them, the errors their operations report, and the [Store] interface
// that the SQLite and PostgreSQL implementations satisfy.
//
// The rules that every implementation shares, such as how order lines are
// priced or how page tokens are encoded, live here as plain functions so
// that both stores apply them the same way. Nothing in this package knows
// about Connect, HTTP or generated code.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxLineQuantity is the most units one cart line may hold, whatever limit
// the caller asks for.
const MaxLineQuantity = 1000

// MaxLines is the most lines, distinct products, one cart may hold: well
// below the 200 lines that one order or reservation may carry.
const MaxLines = 100

// Page sizes of [Store.ListOrders].
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Errors that the stores report. Callers check them with [errors.Is].
var (
	// ErrNotFound means that the order does not exist or belongs to another
	// shopper; the two cases are indistinguishable on purpose.
	ErrNotFound = errors.New("not found")

	// ErrCartChanged means that the cart is no longer at the version an
	// order was priced from.
	ErrCartChanged = errors.New("cart changed")

	// ErrTooManyLines means that a cart holds [MaxLines] lines already and
	// cannot take another product.
	ErrTooManyLines = errors.New("cart is full")

	// ErrOrderConflict means that an order id is already taken by another
	// shopper's order or by an order with other lines.
	ErrOrderConflict = errors.New("order id already used for another order")

	// ErrQuantityLimit means that a line would hold more units than allowed.
	// The error is a [*QuantityLimitError] that says how many.
	ErrQuantityLimit = errors.New("quantity limit exceeded")

	// ErrLinesMismatch means that an order's lines are not exactly the
	// cart's lines.
	ErrLinesMismatch = errors.New("order lines do not match the cart")

	// ErrInvalidPageToken means that a page token was not made by
	// [Store.ListOrders].
	ErrInvalidPageToken = errors.New("invalid page token")

	// ErrInvalidArgument means that a request can never succeed as it is,
	// whatever the stored state. The error is an [*ArgumentError].
	ErrInvalidArgument = errors.New("invalid argument")
)

// QuantityLimitError reports an addition that would take a line past its
// limit. It matches [ErrQuantityLimit].
type QuantityLimitError struct {
	SKU       string
	InCart    int64 // units the line holds now
	Requested int64 // units the line would hold after the change
	Limit     int64 // the most units the line may hold
}

// Error implements error.
func (e *QuantityLimitError) Error() string {
	return fmt.Sprintf("quantity limit exceeded: sku %q would hold %d units, limit %d",
		e.SKU, e.Requested, e.Limit)
}

// Is reports whether target is [ErrQuantityLimit].
func (e *QuantityLimitError) Is(target error) bool { return target == ErrQuantityLimit }

// ArgumentError reports a request that no stored state could satisfy. Its
// Reason is safe to show to the caller. It matches [ErrInvalidArgument].
type ArgumentError struct {
	Reason string
}

// Error implements error.
func (e *ArgumentError) Error() string { return "invalid argument: " + e.Reason }

// Is reports whether target is [ErrInvalidArgument].
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func invalidf(format string, args ...any) error {
	return &ArgumentError{Reason: fmt.Sprintf(format, args...)}
}

// Money is an amount in minor units of a currency, such as 1999 "USD" for
// $19.99.
type Money struct {
	Currency string // ISO 4217 code
	Amount   int64
}

// Line is a quantity of one product in a cart.
type Line struct {
	SKU      string
	Quantity int64
}

// Cart is a shopper's cart. A shopper who never wrote to the cart has an
// empty cart at version 0 with a zero UpdateTime.
type Cart struct {
	ShopperID  string
	Lines      []Line // in the order they were first added
	Version    int64  // grows by one on every change
	UpdateTime time.Time
}

// OrderStatus says where an order is in its life.
type OrderStatus string

// OrderPlaced is the status of an order that was placed; it is the only one
// for now.
const OrderPlaced OrderStatus = "placed"

// OrderLine is one priced line of an order.
type OrderLine struct {
	SKU       string
	Name      string
	UnitPrice Money
	Quantity  int64
	LineTotal Money // UnitPrice times Quantity, computed by the store
}

// Order is a cart turned into a purchase.
type Order struct {
	ID          string
	ShopperID   string
	Lines       []OrderLine
	Total       Money
	Status      OrderStatus
	CreateTime  time.Time
	CartVersion int64 // the cart version the order was placed from
}

// OrderPage is one page of a shopper's orders.
type OrderPage struct {
	Orders        []Order // newest first
	NextPageToken string  // empty on the last page
}

// Store keeps carts and orders. Every method is safe for concurrent use, also
// by several processes sharing one database: each write is one transaction,
// and a write that returned without error survives a crash.
//
// Methods that write take the current time as now; stores keep it with
// microsecond precision.
type Store interface {
	// GetCart returns the shopper's cart, or an empty cart at version 0 if
	// the shopper never wrote to it. It writes nothing.
	GetCart(ctx context.Context, shopperID string) (Cart, error)

	// AddItem adds quantity units of sku on top of what the line holds,
	// creating the line at the end of the cart if needed. If maxQuantity is
	// above zero the line may hold at most that many units, and never more
	// than [MaxLineQuantity]; a larger sum fails with a
	// [*QuantityLimitError] and changes nothing.
	AddItem(ctx context.Context, shopperID, sku string, quantity, maxQuantity int64,
		now time.Time) (Cart, error)

	// UpdateItem sets the line's quantity, creating the line at the end of
	// the cart if needed; 0 removes it. Setting the quantity the line
	// already has changes nothing, not even the version.
	UpdateItem(ctx context.Context, shopperID, sku string, quantity int64,
		now time.Time) (Cart, error)

	// RemoveItem drops the line; removing a missing line changes nothing.
	RemoveItem(ctx context.Context, shopperID, sku string, now time.Time) (Cart, error)

	// ClearCart drops every line; clearing an empty cart changes nothing.
	ClearCart(ctx context.Context, shopperID string, now time.Time) (Cart, error)

	// PlaceOrder records an order from lines and empties the cart, in one
	// transaction. The store computes the line totals and the total from
	// the unit prices and quantities; the LineTotal of each given line is
	// ignored.
	//
	// If orderID is taken by an order of the same shopper with the same
	// SKUs and quantities, PlaceOrder returns that order and changes
	// nothing; if it is taken otherwise, it fails with [ErrOrderConflict].
	// Otherwise it fails with [ErrCartChanged] unless the cart is at
	// cartVersion, and with [ErrLinesMismatch] unless lines hold exactly the
	// cart's SKUs and quantities.
	PlaceOrder(ctx context.Context, shopperID, orderID string, cartVersion int64,
		lines []OrderLine, now time.Time) (Order, error)

	// GetOrder returns the shopper's order. It fails with [ErrNotFound] if
	// there is no such order or it belongs to another shopper.
	GetOrder(ctx context.Context, shopperID, orderID string) (Order, error)

	// ListOrders returns one page of the shopper's orders, newest first.
	// A pageSize of 0 means [DefaultPageSize]; larger than [MaxPageSize]
	// means MaxPageSize. pageToken is empty for the first page and the
	// previous page's NextPageToken otherwise; a token that ListOrders did
	// not make fails with [ErrInvalidPageToken].
	ListOrders(ctx context.Context, shopperID string, pageSize int,
		pageToken string) (OrderPage, error)

	// Close releases the store's resources. Calls in flight may fail.
	Close() error
}
