// Package cart is the cart service. It owns every shopper's cart and the
// orders placed from it, stores them in SQLite or PostgreSQL, and serves
// them as tienda.cart.v1.CartService to the gateway, its only client.
//
// The service keeps these invariants on every store, also with several
// replicas sharing a PostgreSQL database:
//
//   - A cart's version grows by exactly one on every change, and never on a
//     call that changes nothing, so an order priced from a cart is refused
//     with FailedPrecondition once the cart changed.
//   - A line holds 1 to 1000 units, and never more than the max_quantity of
//     the AddItem call that grew it; concurrent additions never lose units.
//   - PlaceOrder records the order and empties the cart in one transaction;
//     one order id gives at most one order, and retrying it returns that
//     order.
//   - A shopper never sees another shopper's orders: they are NotFound.
//
// Handlers only convert between proto messages and the store's domain types
// and map domain errors to Connect codes. Request fields are validated by a
// protovalidate interceptor that the server installs, and unexpected errors
// are returned as they are, for the server's error boundary to log and hide.
package cart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	"github.com/tienda/tienda/internal/storedb"
	"github.com/tienda/tienda/services/cart/internal/store"
	"github.com/tienda/tienda/services/cart/internal/store/postgres"
	"github.com/tienda/tienda/services/cart/internal/store/sqlite"
)

// Config says where the service keeps its data.
type Config struct {
	// DataDir holds the SQLite database, cart.db, when DSN is empty. It is
	// created if missing.
	DataDir string

	// DSN, a postgres:// URL, selects PostgreSQL instead of SQLite.
	DSN string

	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger

	// Now returns the time to record for changes; nil means time.Now.
	Now func() time.Time
}

// Service implements [cartv1connect.CartServiceHandler]. It is safe for
// concurrent use.
type Service struct {
	store store.Store
	now   func() time.Time
}

var _ cartv1connect.CartServiceHandler = (*Service)(nil)

// Open opens the store that cfg selects, migrating its schema to the current
// version, and returns the service on it. Close releases the store.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	var (
		st  store.Store
		err error
	)
	switch {
	case cfg.DSN != "":
		st, err = postgres.Open(ctx, cfg.DSN, logger)
		if err != nil {
			return nil, fmt.Errorf("open cart store: %w", err)
		}
		logger.InfoContext(ctx, "opened cart store", "store", "postgres")
	case cfg.DataDir != "":
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("open cart store: %w", err)
		}
		path := filepath.Join(cfg.DataDir, "cart.db")
		st, err = sqlite.Open(ctx, path, logger)
		if err != nil {
			return nil, fmt.Errorf("open cart store: %w", err)
		}
		logger.InfoContext(ctx, "opened cart store", "store", "sqlite", "path", path)
	default:
		return nil, errors.New("open cart store: need a data directory or a dsn")
	}
	return &Service{store: st, now: now}, nil
}

// Handler returns the path under which to mount the service and its HTTP
// handler, which speaks Connect, gRPC and gRPC-Web.
func (s *Service) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return cartv1connect.NewCartServiceHandler(s, opts...)
}

// Close closes the store. Calls still in flight may fail.
func (s *Service) Close() error {
	return s.store.Close()
}

// GetCart returns the shopper's cart, empty at version 0 if there is none.
func (s *Service) GetCart(
	ctx context.Context, req *connect.Request[cartv1.GetCartRequest],
) (*connect.Response[cartv1.GetCartResponse], error) {
	cart, err := s.store.GetCart(ctx, req.Msg.GetShopperId())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&cartv1.GetCartResponse{Cart: cartToProto(cart)}), nil
}

// AddItem adds units to a line, failing with FailedPrecondition past the
// line's limit.
func (s *Service) AddItem(
	ctx context.Context, req *connect.Request[cartv1.AddItemRequest],
) (*connect.Response[cartv1.AddItemResponse], error) {
	m := req.Msg
	cart, err := s.store.AddItem(ctx, m.GetShopperId(), m.GetSku(), m.GetQuantity(),
		m.GetMaxQuantity(), s.now())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&cartv1.AddItemResponse{Cart: cartToProto(cart)}), nil
}

// UpdateItem sets a line's quantity; 0 removes the line.
func (s *Service) UpdateItem(
	ctx context.Context, req *connect.Request[cartv1.UpdateItemRequest],
) (*connect.Response[cartv1.UpdateItemResponse], error) {
	m := req.Msg
	cart, err := s.store.UpdateItem(ctx, m.GetShopperId(), m.GetSku(), m.GetQuantity(), s.now())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&cartv1.UpdateItemResponse{Cart: cartToProto(cart)}), nil
}

// RemoveItem drops a line, if it is there.
func (s *Service) RemoveItem(
	ctx context.Context, req *connect.Request[cartv1.RemoveItemRequest],
) (*connect.Response[cartv1.RemoveItemResponse], error) {
	m := req.Msg
	cart, err := s.store.RemoveItem(ctx, m.GetShopperId(), m.GetSku(), s.now())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&cartv1.RemoveItemResponse{Cart: cartToProto(cart)}), nil
}

// ClearCart drops every line.
func (s *Service) ClearCart(
	ctx context.Context, req *connect.Request[cartv1.ClearCartRequest],
) (*connect.Response[cartv1.ClearCartResponse], error) {
	cart, err := s.store.ClearCart(ctx, req.Msg.GetShopperId(), s.now())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&cartv1.ClearCartResponse{Cart: cartToProto(cart)}), nil
}

// PlaceOrder records an order from the priced lines and empties the cart, in
// one transaction. A retry with the same order id and lines returns the
// first order; the id with other lines, or of another shopper, is
// AlreadyExists. A cart that is no longer at cart_version, or whose lines
// differ from the order's, is FailedPrecondition.
func (s *Service) PlaceOrder(
	ctx context.Context, req *connect.Request[cartv1.PlaceOrderRequest],
) (*connect.Response[cartv1.PlaceOrderResponse], error) {
	m := req.Msg
	lines := make([]store.OrderLine, len(m.GetLines()))
	for i, l := range m.GetLines() {
		lines[i] = store.OrderLine{
			SKU:       l.GetSku(),
			Name:      l.GetName(),
			UnitPrice: moneyFromProto(l.GetUnitPrice()),
			Quantity:  l.GetQuantity(),
		}
	}
	order, err := s.store.PlaceOrder(ctx, m.GetShopperId(), m.GetOrderId(), m.GetCartVersion(),
		lines, s.now())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&cartv1.PlaceOrderResponse{Order: orderToProto(order)}), nil
}

// GetOrder returns one of the shopper's orders.
func (s *Service) GetOrder(
	ctx context.Context, req *connect.Request[cartv1.GetOrderRequest],
) (*connect.Response[cartv1.GetOrderResponse], error) {
	order, err := s.store.GetOrder(ctx, req.Msg.GetShopperId(), req.Msg.GetOrderId())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&cartv1.GetOrderResponse{Order: orderToProto(order)}), nil
}

// ListOrders returns a page of the shopper's orders, newest first.
func (s *Service) ListOrders(
	ctx context.Context, req *connect.Request[cartv1.ListOrdersRequest],
) (*connect.Response[cartv1.ListOrdersResponse], error) {
	m := req.Msg
	page, err := s.store.ListOrders(ctx, m.GetShopperId(), int(m.GetPageSize()), m.GetPageToken())
	if err != nil {
		return nil, connectError(err)
	}
	res := &cartv1.ListOrdersResponse{
		Orders:        make([]*cartv1.Order, len(page.Orders)),
		NextPageToken: page.NextPageToken,
	}
	for i, o := range page.Orders {
		res.Orders[i] = orderToProto(o)
	}
	return connect.NewResponse(res), nil
}

// Types of the PreconditionFailure violations that FailedPrecondition errors
// carry, so that the gateway can tell the cases apart.
const (
	violationQuantityLimit = "QUANTITY_LIMIT"
	violationCartChanged   = "CART_CHANGED"
	violationLinesMismatch = "LINES_MISMATCH"
	violationTooManyLines  = "TOO_MANY_LINES"
)

// connectError maps a store error to the Connect error the client sees. It
// returns errors that it does not know as they are: the server's error
// boundary logs them and sends a generic internal error, so that no SQL or
// other detail reaches the client.
func connectError(err error) error {
	var (
		limitErr *store.QuantityLimitError
		argErr   *store.ArgumentError
	)
	switch {
	case errors.As(err, &limitErr):
		msg := fmt.Sprintf("the cart holds %d of %q and may hold at most %d;"+
			" the change would make it %d",
			limitErr.InCart, limitErr.SKU, limitErr.Limit, limitErr.Requested)
		return preconditionError(msg, violationQuantityLimit, limitErr.SKU)
	case errors.As(err, &argErr):
		return connect.NewError(connect.CodeInvalidArgument, errors.New(argErr.Reason))
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("order not found"))
	case errors.Is(err, store.ErrTooManyLines):
		return preconditionError(fmt.Sprintf("a cart holds at most %d different products; "+
			"remove one first", store.MaxLines), violationTooManyLines, "lines")
	case errors.Is(err, store.ErrCartChanged):
		return preconditionError("cart changed since it was priced; review it and check out again",
			violationCartChanged, "cart_version")
	case errors.Is(err, store.ErrLinesMismatch):
		return preconditionError("the order's lines do not match the cart; price the cart again",
			violationLinesMismatch, "lines")
	case errors.Is(err, store.ErrOrderConflict):
		return connect.NewError(connect.CodeAlreadyExists,
			errors.New("the order id is already used by another order"))
	case errors.Is(err, store.ErrInvalidPageToken):
		return connect.NewError(connect.CodeInvalidArgument, errors.New("invalid page token"))
	case storedb.Busy(err):
		// Another process holds the database's write lock; nothing changed.
		return connect.NewError(connect.CodeUnavailable, errors.New("the store is busy; try again"))
	default:
		return err
	}
}

// preconditionError returns a FailedPrecondition error with msg and a
// PreconditionFailure detail of one violation.
func preconditionError(msg, violation, subject string) error {
	err := connect.NewError(connect.CodeFailedPrecondition, errors.New(msg))
	detail, detailErr := connect.NewErrorDetail(&errdetails.PreconditionFailure{
		Violations: []*errdetails.PreconditionFailure_Violation{
			{Type: violation, Subject: subject, Description: msg},
		},
	})
	if detailErr == nil { // it cannot fail for a well-formed message
		err.AddDetail(detail)
	}
	return err
}

func cartToProto(c store.Cart) *cartv1.Cart {
	pc := &cartv1.Cart{
		ShopperId: c.ShopperID,
		Lines:     make([]*cartv1.CartLine, len(c.Lines)),
		Version:   c.Version,
	}
	for i, l := range c.Lines {
		pc.Lines[i] = &cartv1.CartLine{Sku: l.SKU, Quantity: l.Quantity}
	}
	if !c.UpdateTime.IsZero() {
		pc.UpdateTime = timestamppb.New(c.UpdateTime)
	}
	return pc
}

func orderToProto(o store.Order) *cartv1.Order {
	po := &cartv1.Order{
		OrderId:     o.ID,
		ShopperId:   o.ShopperID,
		Lines:       make([]*cartv1.OrderLine, len(o.Lines)),
		Total:       moneyToProto(o.Total),
		Status:      statusToProto(o.Status),
		CreateTime:  timestamppb.New(o.CreateTime),
		CartVersion: o.CartVersion,
	}
	for i, l := range o.Lines {
		po.Lines[i] = &cartv1.OrderLine{
			Sku:       l.SKU,
			Name:      l.Name,
			UnitPrice: moneyToProto(l.UnitPrice),
			Quantity:  l.Quantity,
			LineTotal: moneyToProto(l.LineTotal),
		}
	}
	return po
}

func statusToProto(s store.OrderStatus) cartv1.OrderStatus {
	switch s {
	case store.OrderPlaced:
		return cartv1.OrderStatus_ORDER_STATUS_PLACED
	default:
		return cartv1.OrderStatus_ORDER_STATUS_UNSPECIFIED
	}
}

func moneyToProto(m store.Money) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: m.Currency, Amount: m.Amount}
}

// moneyFromProto converts m; a missing amount has no currency, which the
// store refuses.
func moneyFromProto(m *commonv1.Money) store.Money {
	return store.Money{Currency: m.GetCurrencyCode(), Amount: m.GetAmount()}
}
