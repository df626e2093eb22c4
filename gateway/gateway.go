// Package gateway serves tienda's public API, tienda.shop.v1.ShopService.
//
// The gateway owns nothing durable. It identifies shoppers by signed bearer
// tokens, composes the inventory and cart services, which it reaches only
// through their generated Connect clients, and relays their errors with the
// codes a shopper can act on. Checkout is the one multi-step operation: it
// reserves stock, places the order and commits the reservation, keyed by an
// order id derived from the shopper and the client's request id, so that a
// retry never buys twice.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	shopv1 "github.com/tienda/tienda/gen/tienda/shop/v1"
	"github.com/tienda/tienda/gen/tienda/shop/v1/shopv1connect"
)

// Defaults and limits of a [Config].
const (
	// DefaultSessionTTL is how long a session token is accepted when
	// Config.SessionTTL is zero.
	DefaultSessionTTL = 30 * 24 * time.Hour
	// MinSecretBytes is the shortest Config.Secret that [New] accepts.
	MinSecretBytes = 32
	// EmptyCartCurrency is the currency of an empty cart's zero total. A
	// cart with lines takes its currency from their prices.
	EmptyCartCurrency = "USD"
)

// Config holds what a [Gateway] needs. Inventory, Cart, Secret and Logger
// are required.
type Config struct {
	// Inventory is a client of the inventory service, usually from
	// [NewInventoryClient].
	Inventory inventoryv1connect.InventoryServiceClient
	// Cart is a client of the cart service, usually from [NewCartClient].
	Cart cartv1connect.CartServiceClient
	// Secret is the HMAC key that signs session tokens and derives order
	// ids, at least [MinSecretBytes] long; see [LoadOrCreateSecret]. Every
	// replica of the gateway needs the same secret, and changing it ends
	// every session.
	Secret []byte
	// Logger receives what operators must act on, such as an order whose
	// stock could not be committed.
	Logger *slog.Logger
	// Now tells the time; nil means time.Now. Tests set it to move time.
	Now func() time.Time
	// SessionTTL is how long a session token is accepted; zero means
	// [DefaultSessionTTL].
	SessionTTL time.Duration
	// ReservationTTL is how long Checkout holds stock before the inventory
	// service releases it by itself; zero means the service's default.
	ReservationTTL time.Duration
}

// Gateway implements ShopService on top of the inventory and cart services.
// Create it with [New] and serve it with [Gateway.Handler]. It is safe for
// concurrent use.
type Gateway struct {
	inv            inventoryv1connect.InventoryServiceClient
	cart           cartv1connect.CartServiceClient
	secret         []byte
	logger         *slog.Logger
	now            func() time.Time
	sessionTTL     time.Duration
	reservationTTL time.Duration

	// commitBackoff is the pause before the first retry of a failed
	// CommitReservation; each retry doubles it.
	commitBackoff time.Duration

	mu       sync.Mutex
	watching map[string]int // open WatchAvailability streams per shopper
}

// quantityLimit reports whether the cart service refused a change because
// a line would pass its limit, as opposed to, say, the cart being full. The
// cart service says which in a PreconditionFailure detail.
func quantityLimit(cerr *connect.Error) bool {
	for _, d := range cerr.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if pf, ok := v.(*errdetails.PreconditionFailure); ok {
			for _, violation := range pf.GetViolations() {
				if violation.GetType() == "QUANTITY_LIMIT" {
					return true
				}
			}
		}
	}
	return false
}

// maxLineQuantity is the most units one cart line may hold: the cart
// service's limit, also stated by the quantity rules of the protos.
const maxLineQuantity = 1000

// MaxWatchesPerShopper is how many WatchAvailability streams one shopper
// may have open at once: enough for a few browser tabs, too few for one
// session to tie up the gateway's and the inventory's memory.
const MaxWatchesPerShopper = 8

var _ shopv1connect.ShopServiceHandler = (*Gateway)(nil)

// New returns a gateway for cfg, or an error if cfg lacks something.
func New(cfg Config) (*Gateway, error) {
	switch {
	case cfg.Inventory == nil:
		return nil, errors.New("gateway: no inventory client")
	case cfg.Cart == nil:
		return nil, errors.New("gateway: no cart client")
	case len(cfg.Secret) < MinSecretBytes:
		return nil, fmt.Errorf("gateway: secret is %d bytes, want at least %d",
			len(cfg.Secret), MinSecretBytes)
	case cfg.Logger == nil:
		return nil, errors.New("gateway: no logger")
	case cfg.SessionTTL < 0 || cfg.ReservationTTL < 0:
		return nil, errors.New("gateway: negative ttl")
	}
	g := &Gateway{
		inv:            cfg.Inventory,
		cart:           cfg.Cart,
		secret:         append([]byte(nil), cfg.Secret...),
		logger:         cfg.Logger,
		now:            cfg.Now,
		sessionTTL:     cfg.SessionTTL,
		reservationTTL: cfg.ReservationTTL,
		commitBackoff:  100 * time.Millisecond,
		watching:       make(map[string]int),
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.sessionTTL == 0 {
		g.sessionTTL = DefaultSessionTTL
	}
	return g, nil
}

// Handler returns the path and the handler that serve ShopService, built
// with opts and with the gateway's bearer-token check as the innermost
// interceptor. Every method but CreateSession answers Unauthenticated
// without a valid token.
func (g *Gateway) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	opts = append(opts[:len(opts):len(opts)],
		connect.WithInterceptors(&authInterceptor{g: g}))
	return shopv1connect.NewShopServiceHandler(g, opts...)
}

// CreateSession starts a guest session for a new shopper.
func (g *Gateway) CreateSession(
	ctx context.Context, req *connect.Request[shopv1.CreateSessionRequest],
) (*connect.Response[shopv1.CreateSessionResponse], error) {
	shopperID := newShopperID()
	expiry := g.now().Add(g.sessionTTL).Truncate(time.Second)
	return connect.NewResponse(&shopv1.CreateSessionResponse{
		Token:      g.signToken(shopperID, expiry),
		ShopperId:  shopperID,
		ExpireTime: timestamppb.New(expiry),
	}), nil
}

// ListProducts returns one page of the catalog.
func (g *Gateway) ListProducts(
	ctx context.Context, req *connect.Request[shopv1.ListProductsRequest],
) (*connect.Response[shopv1.ListProductsResponse], error) {
	res, err := g.inv.ListProducts(ctx, connect.NewRequest(&inventoryv1.ListProductsRequest{
		PageSize:  req.Msg.GetPageSize(),
		PageToken: req.Msg.GetPageToken(),
		Query:     req.Msg.GetQuery(),
		Category:  req.Msg.GetCategory(),
	}))
	if err != nil {
		return nil, downstream("inventory", err)
	}
	out := &shopv1.ListProductsResponse{NextPageToken: res.Msg.GetNextPageToken()}
	for _, p := range res.Msg.GetProducts() {
		out.Products = append(out.Products, shopProduct(p))
	}
	return connect.NewResponse(out), nil
}

// GetProduct returns one product.
func (g *Gateway) GetProduct(
	ctx context.Context, req *connect.Request[shopv1.GetProductRequest],
) (*connect.Response[shopv1.GetProductResponse], error) {
	p, err := g.product(ctx, req.Msg.GetSku())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shopv1.GetProductResponse{Product: shopProduct(p)}), nil
}

// GetCart returns the caller's cart, priced.
func (g *Gateway) GetCart(
	ctx context.Context, req *connect.Request[shopv1.GetCartRequest],
) (*connect.Response[shopv1.GetCartResponse], error) {
	res, err := g.cart.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{
		ShopperId: shopperFrom(ctx),
	}))
	if err != nil {
		return nil, downstream("cart", err)
	}
	c, err := g.priceCart(ctx, res.Msg.GetCart())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shopv1.GetCartResponse{Cart: c}), nil
}

// AddToCart adds units of a product to the caller's cart, never more than
// are available.
func (g *Gateway) AddToCart(
	ctx context.Context, req *connect.Request[shopv1.AddToCartRequest],
) (*connect.Response[shopv1.AddToCartResponse], error) {
	sku := req.Msg.GetSku()
	p, err := g.product(ctx, sku)
	if err != nil {
		return nil, err
	}
	// max_quantity 0 means "no limit" to the cart service, so an item that
	// is out of stock is refused here.
	if p.GetAvailable() <= 0 {
		return nil, outOfStock(sku, 0)
	}

	// The cart service checks the line against the limit in the same
	// transaction that changes it, so two concurrent adds cannot pass it.
	res, err := g.cart.AddItem(ctx, connect.NewRequest(&cartv1.AddItemRequest{
		ShopperId:   shopperFrom(ctx),
		Sku:         sku,
		Quantity:    req.Msg.GetQuantity(),
		MaxQuantity: p.GetAvailable(),
	}))
	if cerr, ok := wireError(err, connect.CodeFailedPrecondition); ok && !quantityLimit(cerr) {
		return nil, relay(cerr.Code(), cerr.Message(), cerr) // such as a full cart
	}
	if cerr, ok := wireError(err, connect.CodeFailedPrecondition); ok {
		msg := fmt.Sprintf("only %d left of %s; your cart cannot hold more than that",
			p.GetAvailable(), sku)
		if p.GetAvailable() > maxLineQuantity {
			msg = fmt.Sprintf("a cart line holds at most %d units of %s", maxLineQuantity, sku)
		}
		return nil, relay(connect.CodeFailedPrecondition, msg, cerr)
	}
	if err != nil {
		return nil, downstream("cart", err)
	}
	c, err := g.priceCart(ctx, res.Msg.GetCart())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shopv1.AddToCartResponse{Cart: c}), nil
}

// UpdateCartItem sets the quantity of a line of the caller's cart, never
// above what is available; 0 removes the line.
func (g *Gateway) UpdateCartItem(
	ctx context.Context, req *connect.Request[shopv1.UpdateCartItemRequest],
) (*connect.Response[shopv1.UpdateCartItemResponse], error) {
	sku, quantity := req.Msg.GetSku(), req.Msg.GetQuantity()
	// Removing a line needs no product: it may be one that is no longer sold.
	if quantity > 0 {
		p, err := g.product(ctx, sku)
		if err != nil {
			return nil, err
		}
		if quantity > p.GetAvailable() {
			return nil, outOfStock(sku, p.GetAvailable())
		}
	}

	// TODO(gateway): the availability check and the update are two calls,
	// so stock sold in between can leave the line larger than what is
	// available; UpdateItem has no max_quantity like AddItem has. Checkout
	// still refuses such a cart, so nothing is oversold.
	res, err := g.cart.UpdateItem(ctx, connect.NewRequest(&cartv1.UpdateItemRequest{
		ShopperId: shopperFrom(ctx),
		Sku:       sku,
		Quantity:  quantity,
	}))
	if err != nil {
		return nil, downstream("cart", err)
	}
	c, err := g.priceCart(ctx, res.Msg.GetCart())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shopv1.UpdateCartItemResponse{Cart: c}), nil
}

// RemoveFromCart drops a line from the caller's cart.
func (g *Gateway) RemoveFromCart(
	ctx context.Context, req *connect.Request[shopv1.RemoveFromCartRequest],
) (*connect.Response[shopv1.RemoveFromCartResponse], error) {
	res, err := g.cart.RemoveItem(ctx, connect.NewRequest(&cartv1.RemoveItemRequest{
		ShopperId: shopperFrom(ctx),
		Sku:       req.Msg.GetSku(),
	}))
	if err != nil {
		return nil, downstream("cart", err)
	}
	c, err := g.priceCart(ctx, res.Msg.GetCart())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shopv1.RemoveFromCartResponse{Cart: c}), nil
}

// GetOrder returns one of the caller's orders.
func (g *Gateway) GetOrder(
	ctx context.Context, req *connect.Request[shopv1.GetOrderRequest],
) (*connect.Response[shopv1.GetOrderResponse], error) {
	res, err := g.cart.GetOrder(ctx, connect.NewRequest(&cartv1.GetOrderRequest{
		ShopperId: shopperFrom(ctx),
		OrderId:   req.Msg.GetOrderId(),
	}))
	if _, ok := wireError(err, connect.CodeNotFound); ok {
		// The cart service's message may name the shopper; say it plainly.
		return nil, connect.NewError(connect.CodeNotFound,
			fmt.Errorf("no order %q", req.Msg.GetOrderId()))
	}
	if err != nil {
		return nil, downstream("cart", err)
	}
	return connect.NewResponse(&shopv1.GetOrderResponse{Order: shopOrder(res.Msg.GetOrder())}), nil
}

// ListOrders returns one page of the caller's orders, newest first.
func (g *Gateway) ListOrders(
	ctx context.Context, req *connect.Request[shopv1.ListOrdersRequest],
) (*connect.Response[shopv1.ListOrdersResponse], error) {
	res, err := g.cart.ListOrders(ctx, connect.NewRequest(&cartv1.ListOrdersRequest{
		ShopperId: shopperFrom(ctx),
		PageSize:  req.Msg.GetPageSize(),
		PageToken: req.Msg.GetPageToken(),
	}))
	if err != nil {
		return nil, downstream("cart", err)
	}
	out := &shopv1.ListOrdersResponse{NextPageToken: res.Msg.GetNextPageToken()}
	for _, o := range res.Msg.GetOrders() {
		out.Orders = append(out.Orders, shopOrder(o))
	}
	return connect.NewResponse(out), nil
}

// WatchAvailability relays the inventory's stock stream for the requested
// products until the client goes away or the inventory ends the stream.
func (g *Gateway) WatchAvailability(
	ctx context.Context,
	req *connect.Request[shopv1.WatchAvailabilityRequest],
	stream *connect.ServerStream[shopv1.WatchAvailabilityResponse],
) error {
	release, err := g.startWatch(shopperFrom(ctx))
	if err != nil {
		return err
	}
	defer release()

	// Ending ctx, which happens when the client goes away, ends the
	// inventory stream too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch, err := g.inv.WatchStock(ctx, connect.NewRequest(&inventoryv1.WatchStockRequest{
		Skus: req.Msg.GetSkus(),
	}))
	if err != nil {
		return downstream("inventory", err)
	}
	defer watch.Close()

	for watch.Receive() {
		msg := watch.Msg()
		err := stream.Send(&shopv1.WatchAvailabilityResponse{
			Sku:       msg.GetSku(),
			Available: msg.GetAvailable(),
		})
		if err != nil {
			return fmt.Errorf("send availability: %w", err)
		}
	}
	// The caller leaving or its deadline passing ends the inventory stream
	// too, maybe cleanly; the caller's reason is the one to report.
	if err := ctx.Err(); err != nil {
		return err
	}
	return downstream("inventory", watch.Err())
}

// startWatch counts a new stream of shopperID against
// [MaxWatchesPerShopper], and returns the function that ends it.
func (g *Gateway) startWatch(shopperID string) (release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.watching[shopperID] >= MaxWatchesPerShopper {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"at most %d availability watches may be open at once; close one first",
			MaxWatchesPerShopper))
	}
	g.watching[shopperID]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.watching[shopperID]--; g.watching[shopperID] == 0 {
			delete(g.watching, shopperID)
		}
	}, nil
}

// product returns one product of the inventory; an unknown SKU is NotFound.
func (g *Gateway) product(ctx context.Context, sku string) (*inventoryv1.Product, error) {
	res, err := g.inv.GetProduct(ctx, connect.NewRequest(&inventoryv1.GetProductRequest{Sku: sku}))
	if _, ok := wireError(err, connect.CodeNotFound); ok {
		return nil, connect.NewError(connect.CodeNotFound,
			fmt.Errorf("no product with SKU %q", sku))
	}
	if err != nil {
		return nil, downstream("inventory", err)
	}
	return res.Msg.GetProduct(), nil
}

// priceCart turns a cart of SKUs and quantities into the priced cart the
// shopper sees, with one BatchGetProducts call for all its lines. A line
// whose product is gone stays, named by its SKU, without price and out of
// stock, so that the shopper can see and remove it.
func (g *Gateway) priceCart(ctx context.Context, c *cartv1.Cart) (*shopv1.Cart, error) {
	out := &shopv1.Cart{Version: c.GetVersion(), Total: &commonv1.Money{}}
	if len(c.GetLines()) == 0 {
		// Nothing to take a currency from; zero is zero in the shop's own.
		out.Total.CurrencyCode = EmptyCartCurrency
		return out, nil
	}
	products, err := g.products(ctx, c.GetLines())
	if err != nil {
		return nil, err
	}
	for _, l := range c.GetLines() {
		p, ok := products[l.GetSku()]
		if !ok {
			out.Lines = append(out.Lines, &shopv1.CartLine{
				Sku:      l.GetSku(),
				Name:     l.GetSku(),
				Quantity: l.GetQuantity(),
			})
			continue
		}
		lineTotal := times(p.GetPrice(), l.GetQuantity())
		out.Lines = append(out.Lines, &shopv1.CartLine{
			Sku:       l.GetSku(),
			Name:      p.GetName(),
			UnitPrice: p.GetPrice(),
			Quantity:  l.GetQuantity(),
			LineTotal: lineTotal,
			InStock:   p.GetAvailable() >= l.GetQuantity(),
			Available: p.GetAvailable(),
		})
		if err := add(out.Total, lineTotal); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// products looks up the products of lines in one call and returns those
// that exist by SKU.
func (g *Gateway) products(
	ctx context.Context, lines []*cartv1.CartLine,
) (map[string]*inventoryv1.Product, error) {
	// TODO(gateway): BatchGetProducts takes at most 200 SKUs; a cart with
	// more lines fails validation there. PlaceOrder has the same limit, so
	// the cart service should refuse the 201st line.
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.GetSku()
	}
	res, err := g.inv.BatchGetProducts(ctx,
		connect.NewRequest(&inventoryv1.BatchGetProductsRequest{Skus: skus}))
	if err != nil {
		return nil, downstream("inventory", err)
	}
	products := make(map[string]*inventoryv1.Product, len(res.Msg.GetProducts()))
	for _, p := range res.Msg.GetProducts() {
		products[p.GetSku()] = p
	}
	return products, nil
}

// outOfStock is the error for asking more units of sku than the available
// ones.
func outOfStock(sku string, available int64) *connect.Error {
	if available <= 0 {
		return connect.NewError(connect.CodeFailedPrecondition,
			fmt.Errorf("%s is out of stock", sku))
	}
	return connect.NewError(connect.CodeFailedPrecondition,
		fmt.Errorf("only %d left of %s", available, sku))
}

func shopProduct(p *inventoryv1.Product) *shopv1.Product {
	return &shopv1.Product{
		Sku:         p.GetSku(),
		Name:        p.GetName(),
		Description: p.GetDescription(),
		Category:    p.GetCategory(),
		Price:       p.GetPrice(),
		Available:   p.GetAvailable(),
	}
}

func shopOrder(o *cartv1.Order) *shopv1.Order {
	out := &shopv1.Order{
		OrderId:   o.GetOrderId(),
		Total:     o.GetTotal(),
		CreatedAt: o.GetCreateTime(),
	}
	switch o.GetStatus() {
	case cartv1.OrderStatus_ORDER_STATUS_PLACED:
		out.Status = shopv1.OrderStatus_ORDER_STATUS_PLACED
	}
	for _, l := range o.GetLines() {
		out.Lines = append(out.Lines, &shopv1.OrderLine{
			Sku:       l.GetSku(),
			Name:      l.GetName(),
			UnitPrice: l.GetUnitPrice(),
			Quantity:  l.GetQuantity(),
			LineTotal: l.GetLineTotal(),
		})
	}
	return out
}

// times returns price multiplied by quantity.
func times(price *commonv1.Money, quantity int64) *commonv1.Money {
	return &commonv1.Money{
		CurrencyCode: price.GetCurrencyCode(),
		Amount:       price.GetAmount() * quantity,
	}
}

// add adds m to total, which takes m's currency if it has none yet.
func add(total, m *commonv1.Money) error {
	if total.CurrencyCode == "" {
		total.CurrencyCode = m.GetCurrencyCode()
	}
	if total.CurrencyCode != m.GetCurrencyCode() {
		return fmt.Errorf("add %s to a total in %s: mixed currencies",
			m.GetCurrencyCode(), total.CurrencyCode)
	}
	total.Amount += m.GetAmount()
	return nil
}
