package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/internal/rpcserver"
)

// Bounds of the steps that Checkout finishes even when its caller has gone.
const (
	// checkoutTimeout bounds reserving, placing and committing together.
	checkoutTimeout = 20 * time.Second
	// cleanupTimeout bounds the calls that undo or inspect a failed
	// PlaceOrder.
	cleanupTimeout = 5 * time.Second
	// commitAttempts, commitAttemptTimeout and commitTimeout bound the
	// commit of a placed order's reservation.
	commitAttempts       = 4
	commitAttemptTimeout = 3 * time.Second
	commitTimeout        = 15 * time.Second
)

// Checkout turns the caller's cart into an order, as DESIGN.md describes:
// reserve the stock of every line, place the order from the cart version
// that was priced, then commit the reservation.
//
// The order id, which is also the reservation id, is derived from the
// shopper and the request id, so a retry finds the order or the
// reservation of the first attempt and never holds or sells stock twice.
// Once the order is placed, Checkout returns it even if the commit failed:
// the failure is logged at error level for an operator, and a retry with
// the same request id commits again.
func (g *Gateway) Checkout(
	ctx context.Context, req *connect.Request[shopv1.CheckoutRequest],
) (*connect.Response[shopv1.CheckoutResponse], error) {
	shopperID, requestID := shopperFrom(ctx), req.Msg.GetRequestId()
	if requestID == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument,
			errors.New("request_id is required"))
	}
	orderID := g.orderID(shopperID, requestID)

	// A request that placed its order already only needs its answer again.
	prev, err := g.cart.GetOrder(ctx, connect.NewRequest(&cartv1.GetOrderRequest{
		ShopperId: shopperID,
		OrderId:   orderID,
	}))
	if err == nil {
		return g.repeatCheckout(ctx, shopperID, requestID, prev.Msg.GetOrder())
	}
	if _, ok := wireError(err, connect.CodeNotFound); !ok {
		return nil, downstream("cart", err)
	}

	// Price the cart as it is now; PlaceOrder refuses it if it changes.
	cartRes, err := g.cart.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{
		ShopperId: shopperID,
	}))
	if err != nil {
		return nil, downstream("cart", err)
	}
	c := cartRes.Msg.GetCart()
	if len(c.GetLines()) == 0 {
		// A concurrent retry of this request may have just placed the
		// order and emptied the cart.
		prev, err := g.cart.GetOrder(ctx, connect.NewRequest(&cartv1.GetOrderRequest{
			ShopperId: shopperID,
			OrderId:   orderID,
		}))
		if err == nil {
			return g.repeatCheckout(ctx, shopperID, requestID, prev.Msg.GetOrder())
		}
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("cart is empty"))
	}
	products, err := g.products(ctx, c.GetLines())
	if err != nil {
		return nil, err
	}
	orderLines, holdLines, err := orderLines(c.GetLines(), products)
	if err != nil {
		return nil, err
	}

	// From the first hold on, the checkout runs to its end on a clock of
	// its own: a client that goes away, or whose deadline passes, must
	// leave neither a hold that buys nothing nor an order without its
	// stock. It learns the outcome by retrying with the same request id.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkoutTimeout)
	defer cancel()
	if err := g.reserve(work, requestID, orderID, holdLines, products); err != nil {
		return nil, err
	}
	order, err := g.placeOrder(work, shopperID, requestID, orderID, c.GetVersion(), orderLines)
	if err != nil {
		return nil, err
	}
	if err := g.commit(work, orderID); err != nil {
		return nil, err
	}
	return connect.NewResponse(&shopv1.CheckoutResponse{Order: shopOrder(order)}), nil
}

// repeatCheckout answers a Checkout whose request id already placed order.
// The shopper's cart tells a retry from a reuse: a retry finds the cart
// emptied by the order (or filled again with the same lines), while a reused
// request id meant for a new cart must not silently return the old order.
func (g *Gateway) repeatCheckout(
	ctx context.Context, shopperID, requestID string, order *cartv1.Order,
) (*connect.Response[shopv1.CheckoutResponse], error) {
	res, err := g.cart.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{
		ShopperId: shopperID,
	}))
	if err != nil {
		return nil, downstream("cart", err)
	}
	lines := res.Msg.GetCart().GetLines()
	if len(lines) > 0 && !sameLines(lines, order.GetLines()) {
		return nil, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf(
			"request_id %q was already used for order %s; use a new request_id",
			requestID, order.GetOrderId()))
	}

	// The first attempt may have placed the order and failed to commit it.
	if err := g.commit(ctx, order.GetOrderId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&shopv1.CheckoutResponse{Order: shopOrder(order)}), nil
}

// orderLines prices the lines of a cart for an order and the reservation
// that holds their stock. A product that is no longer sold fails the
// checkout, since the shopper cannot buy it.
func orderLines(
	lines []*cartv1.CartLine, products map[string]*inventoryv1.Product,
) ([]*cartv1.OrderLine, []*inventoryv1.ReservationLine, error) {
	orders := make([]*cartv1.OrderLine, 0, len(lines))
	holds := make([]*inventoryv1.ReservationLine, 0, len(lines))
	for _, l := range lines {
		p, ok := products[l.GetSku()]
		if !ok {
			return nil, nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
				"%s is no longer sold; remove it from your cart", l.GetSku()))
		}
		orders = append(orders, &cartv1.OrderLine{
			Sku:       l.GetSku(),
			Name:      p.GetName(),
			UnitPrice: p.GetPrice(),
			Quantity:  l.GetQuantity(),
			LineTotal: times(p.GetPrice(), l.GetQuantity()),
		})
		holds = append(holds, &inventoryv1.ReservationLine{
			Sku:      l.GetSku(),
			Quantity: l.GetQuantity(),
		})
	}
	return orders, holds, nil
}

// reserve holds the stock of every line for the order orderID, or fails
// with an error that tells the shopper what ran short.
func (g *Gateway) reserve(
	ctx context.Context,
	requestID, orderID string,
	lines []*inventoryv1.ReservationLine,
	products map[string]*inventoryv1.Product,
) error {
	req := &inventoryv1.ReserveStockRequest{ReservationId: orderID, Lines: lines}
	if g.reservationTTL > 0 {
		req.Ttl = durationpb.New(g.reservationTTL)
	}
	res, err := g.inv.ReserveStock(ctx, connect.NewRequest(req))
	if cerr, ok := wireError(err, connect.CodeFailedPrecondition); ok {
		return shortageError(cerr, products)
	}
	if cerr, ok := wireError(err, connect.CodeAlreadyExists); ok {
		return relay(connect.CodeAlreadyExists, fmt.Sprintf(
			"request_id %q was already used for another cart; use a new request_id",
			requestID), cerr)
	}
	if err != nil {
		return downstream("inventory", err)
	}

	// A retry gets the first attempt's reservation back (or, if that hold
	// was released, a new hold under the same id). If the first attempt
	// held other lines, the cart changed in between and this request id
	// belongs to the old cart.
	held := res.Msg.GetReservation().GetLines()
	if len(held) > 0 && !maps.Equal(quantities(held), quantities(lines)) {
		return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf(
			"request_id %q was already used for another cart; use a new request_id", requestID))
	}
	return nil
}

// shortageError rewrites the inventory's refusal to reserve into a message
// that names each product that ran short and how many are left. It keeps
// the StockShortage details, for programs.
func shortageError(cerr *connect.Error, products map[string]*inventoryv1.Product) error {
	var parts []string
	for _, d := range cerr.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		s, ok := v.(*inventoryv1.StockShortage)
		if !ok {
			continue
		}
		label := s.GetSku()
		if name := products[s.GetSku()].GetName(); name != "" {
			label = fmt.Sprintf("%s (%s)", name, s.GetSku())
		}
		if s.GetAvailable() <= 0 {
			parts = append(parts, label+" is out of stock")
		} else {
			parts = append(parts, fmt.Sprintf("only %d left of %s, %d in your cart",
				s.GetAvailable(), label, s.GetRequested()))
		}
	}
	if len(parts) == 0 {
		return relay(cerr.Code(), cerr.Message(), cerr)
	}
	msg := "not enough stock: " + strings.Join(parts, "; ")
	return relay(connect.CodeFailedPrecondition, msg, cerr)
}

// placeOrder records the order in the cart service. When that fails it
// decides the fate of the reservation: keep it if the order exists after
// all, release it if the cart service surely refused, and otherwise leave
// it to expire, because the order may yet exist and a retry with the same
// request id can still complete it.
func (g *Gateway) placeOrder(
	ctx context.Context,
	shopperID, requestID, orderID string,
	cartVersion int64,
	lines []*cartv1.OrderLine,
) (*cartv1.Order, error) {
	res, err := g.cart.PlaceOrder(ctx, connect.NewRequest(&cartv1.PlaceOrderRequest{
		ShopperId:   shopperID,
		OrderId:     orderID,
		CartVersion: cartVersion,
		Lines:       lines,
	}))
	if err == nil {
		return res.Msg.GetOrder(), nil
	}

	// The caller's context may be why PlaceOrder failed; the clean-up must
	// not fail for the same reason.
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()

	// A concurrent retry of this checkout may have placed the order, which
	// changed the cart version under this one.
	got, gerr := g.cart.GetOrder(cleanupCtx, connect.NewRequest(&cartv1.GetOrderRequest{
		ShopperId: shopperID,
		OrderId:   orderID,
	}))
	if gerr == nil {
		return got.Msg.GetOrder(), nil
	}

	if refused(err) {
		_, rerr := g.inv.ReleaseReservation(cleanupCtx,
			connect.NewRequest(&inventoryv1.ReleaseReservationRequest{ReservationId: orderID}))
		if rerr != nil {
			g.logger.LogAttrs(ctx, slog.LevelWarn, "release reservation of failed checkout",
				slog.String("order_id", orderID),
				slog.String("request_id", rpcserver.RequestID(ctx)),
				slog.String("err", rerr.Error()))
		}
	} else {
		// The error itself is logged where the call ends.
		g.logger.LogAttrs(ctx, slog.LevelWarn, "checkout outcome unknown; stock stays held",
			slog.String("order_id", orderID),
			slog.String("request_id", rpcserver.RequestID(ctx)))
	}

	if cerr, ok := wireError(err, connect.CodeFailedPrecondition); ok {
		return nil, relay(connect.CodeFailedPrecondition,
			"your cart changed during checkout; review it and check out again", cerr)
	}
	if cerr, ok := wireError(err, connect.CodeAlreadyExists); ok {
		return nil, relay(connect.CodeAlreadyExists, fmt.Sprintf(
			"request_id %q was already used for another order; use a new request_id",
			requestID), cerr)
	}
	return nil, downstream("cart", err)
}

// refused reports whether err is an answer the cart service sent after its
// handler finished, so that its transaction is over and GetOrder tells
// whether the order exists. A timeout or a lost connection leaves the
// outcome unknown: PlaceOrder may still be running.
func refused(err error) bool {
	if !connect.IsWireError(err) {
		return false
	}
	switch connect.CodeOf(err) {
	case connect.CodeDeadlineExceeded, connect.CodeUnavailable, connect.CodeCanceled:
		return false
	}
	return true
}

// commit turns the stock held for a placed order into sold stock. It
// retries while the inventory is unavailable or slow, on a context of its
// own because the caller may have gone.
//
// Checkout reports success only once the stock is committed, so that every
// order a client saw confirmed has its stock sold. When commit still fails,
// the order exists but its hold would expire: the client is told to retry
// with the same request id, which commits again (and the inventory takes
// the stock back for an expired hold while there is some).
func (g *Gateway) commit(ctx context.Context, orderID string) error {
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()

	delay := g.commitBackoff
	for attempt := 1; ; attempt++ {
		err := g.commitOnce(commitCtx, orderID)
		if err == nil {
			return nil
		}
		// An error the inventory did not send (a reset connection, say)
		// leaves the outcome unknown; committing again is safe.
		code := connect.CodeOf(err)
		transient := code == connect.CodeUnavailable || code == connect.CodeDeadlineExceeded ||
			!connect.IsWireError(err)
		if transient && attempt < commitAttempts && pause(commitCtx, delay) {
			delay *= 2
			continue
		}
		g.logger.LogAttrs(ctx, slog.LevelError, "commit reservation of placed order",
			slog.String("order_id", orderID),
			slog.String("request_id", rpcserver.RequestID(ctx)),
			slog.Int("attempts", attempt),
			slog.String("err", err.Error()))
		if transient {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("order %s is placed but "+
				"its stock is not confirmed yet; retry with the same request_id", orderID))
		}
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("order %s is placed "+
			"but its stock could not be confirmed: %s", orderID, connect.CodeOf(err)))
	}
}

func (g *Gateway) commitOnce(ctx context.Context, orderID string) error {
	ctx, cancel := context.WithTimeout(ctx, commitAttemptTimeout)
	defer cancel()
	_, err := g.inv.CommitReservation(ctx, connect.NewRequest(&inventoryv1.CommitReservationRequest{
		ReservationId: orderID,
	}))
	if _, ok := wireError(err, connect.CodeAlreadyExists); ok {
		return nil // committed before: what we want, though the proto promises OK here
	}
	return err
}

// line is any message that has a quantity of a SKU.
type line interface {
	GetSku() string
	GetQuantity() int64
}

// quantities returns the quantity of each SKU in lines.
func quantities[L line](lines []L) map[string]int64 {
	m := make(map[string]int64, len(lines))
	for _, l := range lines {
		m[l.GetSku()] += l.GetQuantity()
	}
	return m
}

// sameLines reports whether a cart holds exactly the lines of an order.
func sameLines(cart []*cartv1.CartLine, order []*cartv1.OrderLine) bool {
	return maps.Equal(quantities(cart), quantities(order))
}
