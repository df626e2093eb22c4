package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	cartv1 "github.com/tienda/tienda/gen/tienda/cart/v1"
	"github.com/tienda/tienda/gen/tienda/cart/v1/cartv1connect"
	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/gen/tienda/inventory/v1/inventoryv1connect"
	"github.com/tienda/tienda/internal/rpcserver"
)

// The fakes keep just enough state to behave like the real services as
// the protos describe them. They count calls, record request ids, and can
// be told to fail.

var (
	_ inventoryv1connect.InventoryServiceHandler = (*fakeInventory)(nil)
	_ inventoryv1connect.InventoryServiceHandler = (*hangingInventory)(nil)
	_ cartv1connect.CartServiceHandler           = (*fakeCart)(nil)
)

// Products of the fake catalog.
const (
	skuMug    = "MUG-ENAMEL-WHT"
	skuTee    = "TEE-ORGANIC-M"
	skuPoster = "POSTER-A2"
)

func usd(amount int64) *commonv1.Money {
	return &commonv1.Money{CurrencyCode: "USD", Amount: amount}
}

// callLog counts the calls of a fake by method name and remembers the request
// ids they carried.
type callLog struct {
	mu         sync.Mutex
	counts     map[string]int
	requestIDs []string
	failures   map[string][]error // returned, one per call, before working
}

func (c *callLog) record(method string, header interface{ Get(string) string }) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	c.counts[method]++
	if id := header.Get(rpcserver.RequestIDHeader); id != "" {
		c.requestIDs = append(c.requestIDs, id)
	}
	if errs := c.failures[method]; len(errs) > 0 {
		c.failures[method] = errs[1:]
		return errs[0]
	}
	return nil
}

// failNext makes the next calls of method fail with errs, in turn.
func (c *callLog) failNext(method string, errs ...error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil {
		c.failures = make(map[string][]error)
	}
	c.failures[method] = append(c.failures[method], errs...)
}

func (c *callLog) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[method]
}

func (c *callLog) seenRequestIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requestIDs)
}

// fakeInventory is an in-memory inventory service.
type fakeInventory struct {
	callLog

	mu           sync.Mutex
	products     map[string]*inventoryv1.Product
	reservations map[string]*inventoryv1.Reservation
	watchers     map[chan *inventoryv1.WatchStockResponse]bool
	watchEnded   chan struct{} // receives when a WatchStock call returns
}

func newFakeInventory() *fakeInventory {
	f := &fakeInventory{
		products:     make(map[string]*inventoryv1.Product),
		reservations: make(map[string]*inventoryv1.Reservation),
		watchers:     make(map[chan *inventoryv1.WatchStockResponse]bool),
		watchEnded:   make(chan struct{}, 10),
	}
	for _, p := range []*inventoryv1.Product{
		{Sku: skuMug, Name: "Enamel mug", Category: "kitchen", Price: usd(1200), Available: 5},
		{Sku: skuTee, Name: "Organic tee", Category: "clothing", Price: usd(2500), Available: 2},
		{Sku: skuPoster, Name: "Poster", Category: "prints", Price: usd(900), Available: 0},
	} {
		p.Adjusted = p.Available
		f.products[p.Sku] = p
	}
	return f
}

// product returns a copy of a product of the catalog, or nil.
func (f *fakeInventory) product(sku string) *inventoryv1.Product {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.products[sku]
	if !ok {
		return nil
	}
	return proto.CloneOf(p)
}

// reservation returns a copy of a reservation, or nil.
func (f *fakeInventory) reservation(id string) *inventoryv1.Reservation {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reservations[id]
	if !ok {
		return nil
	}
	return proto.CloneOf(r)
}

// setAvailable changes the stock on hand of sku as an AdjustStock would.
func (f *fakeInventory) setAvailable(sku string, available int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.products[sku]
	p.Adjusted += available - p.Available
	p.Available = available
	f.notifyLocked(p)
}

func (f *fakeInventory) notifyLocked(p *inventoryv1.Product) {
	for ch := range f.watchers {
		select {
		case ch <- &inventoryv1.WatchStockResponse{Sku: p.Sku, Available: p.Available}:
		default: // a test that does not read its stream does not care
		}
	}
}

func (f *fakeInventory) GetProduct(
	ctx context.Context, req *connect.Request[inventoryv1.GetProductRequest],
) (*connect.Response[inventoryv1.GetProductResponse], error) {
	if err := f.record("GetProduct", req.Header()); err != nil {
		return nil, err
	}
	p := f.product(req.Msg.GetSku())
	if p == nil {
		return nil, connect.NewError(connect.CodeNotFound,
			fmt.Errorf("product %q not found", req.Msg.GetSku()))
	}
	return connect.NewResponse(&inventoryv1.GetProductResponse{Product: p}), nil
}

func (f *fakeInventory) ListProducts(
	ctx context.Context, req *connect.Request[inventoryv1.ListProductsRequest],
) (*connect.Response[inventoryv1.ListProductsResponse], error) {
	if err := f.record("ListProducts", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := &inventoryv1.ListProductsResponse{}
	for _, sku := range slices.Sorted(maps.Keys(f.products)) {
		p := f.products[sku]
		if c := req.Msg.GetCategory(); c != "" && c != p.GetCategory() {
			continue
		}
		res.Products = append(res.Products, proto.CloneOf(p))
	}
	return connect.NewResponse(res), nil
}

func (f *fakeInventory) BatchGetProducts(
	ctx context.Context, req *connect.Request[inventoryv1.BatchGetProductsRequest],
) (*connect.Response[inventoryv1.BatchGetProductsResponse], error) {
	if err := f.record("BatchGetProducts", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := &inventoryv1.BatchGetProductsResponse{}
	for _, sku := range req.Msg.GetSkus() {
		if p, ok := f.products[sku]; ok {
			res.Products = append(res.Products, proto.CloneOf(p))
		} else {
			res.MissingSkus = append(res.MissingSkus, sku)
		}
	}
	return connect.NewResponse(res), nil
}

func (f *fakeInventory) UpsertProduct(
	ctx context.Context, req *connect.Request[inventoryv1.UpsertProductRequest],
) (*connect.Response[inventoryv1.UpsertProductResponse], error) {
	if err := f.record("UpsertProduct", req.Header()); err != nil {
		return nil, err
	}
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("not in the fake"))
}

func (f *fakeInventory) AdjustStock(
	ctx context.Context, req *connect.Request[inventoryv1.AdjustStockRequest],
) (*connect.Response[inventoryv1.AdjustStockResponse], error) {
	if err := f.record("AdjustStock", req.Header()); err != nil {
		return nil, err
	}
	p := f.product(req.Msg.GetSku())
	if p == nil {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such product"))
	}
	f.setAvailable(p.Sku, p.Available+req.Msg.GetDelta())
	return connect.NewResponse(&inventoryv1.AdjustStockResponse{Product: f.product(p.Sku)}), nil
}

func (f *fakeInventory) ReserveStock(
	ctx context.Context, req *connect.Request[inventoryv1.ReserveStockRequest],
) (*connect.Response[inventoryv1.ReserveStockResponse], error) {
	if err := f.record("ReserveStock", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := req.Msg.GetReservationId()
	// Like the real service: a held or committed reservation is returned as
	// it is; a released one may hold stock again.
	if r, ok := f.reservations[id]; ok && r.State != inventoryv1.ReservationState_RESERVATION_STATE_RELEASED {
		res := &inventoryv1.ReserveStockResponse{Reservation: proto.CloneOf(r)}
		return connect.NewResponse(res), nil
	}

	var shortages []*inventoryv1.StockShortage
	for _, l := range req.Msg.GetLines() {
		p, ok := f.products[l.GetSku()]
		if !ok || p.Available < l.GetQuantity() {
			shortages = append(shortages, &inventoryv1.StockShortage{
				Sku:       l.GetSku(),
				Requested: l.GetQuantity(),
				Available: p.GetAvailable(),
			})
		}
	}
	if len(shortages) > 0 {
		cerr := connect.NewError(connect.CodeFailedPrecondition, errors.New("not enough stock"))
		for _, s := range shortages {
			d, err := connect.NewErrorDetail(s)
			if err != nil {
				return nil, err
			}
			cerr.AddDetail(d)
		}
		return nil, cerr
	}

	for _, l := range req.Msg.GetLines() {
		p := f.products[l.GetSku()]
		p.Available -= l.GetQuantity()
		p.Reserved += l.GetQuantity()
		f.notifyLocked(p)
	}
	r := &inventoryv1.Reservation{
		ReservationId: id,
		Lines:         req.Msg.GetLines(),
		State:         inventoryv1.ReservationState_RESERVATION_STATE_HELD,
	}
	f.reservations[id] = r
	res := &inventoryv1.ReserveStockResponse{Reservation: proto.CloneOf(r)}
	return connect.NewResponse(res), nil
}

func (f *fakeInventory) CommitReservation(
	ctx context.Context, req *connect.Request[inventoryv1.CommitReservationRequest],
) (*connect.Response[inventoryv1.CommitReservationResponse], error) {
	if err := f.record("CommitReservation", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reservations[req.Msg.GetReservationId()]
	switch {
	case !ok:
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such reservation"))
	case r.State == inventoryv1.ReservationState_RESERVATION_STATE_RELEASED:
		// Like the real service: take the stock again if it is there.
		for _, l := range r.Lines {
			if f.products[l.GetSku()].Available < l.GetQuantity() {
				return nil, connect.NewError(connect.CodeFailedPrecondition,
					errors.New("reservation was released and its stock is gone"))
			}
		}
		for _, l := range r.Lines {
			p := f.products[l.GetSku()]
			p.Available -= l.GetQuantity()
			p.Sold += l.GetQuantity()
			f.notifyLocked(p)
		}
		r.State = inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED
	case r.State == inventoryv1.ReservationState_RESERVATION_STATE_HELD:
		for _, l := range r.Lines {
			p := f.products[l.GetSku()]
			p.Reserved -= l.GetQuantity()
			p.Sold += l.GetQuantity()
		}
		r.State = inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED
	}
	return connect.NewResponse(&inventoryv1.CommitReservationResponse{
		Reservation: proto.CloneOf(r),
	}), nil
}

func (f *fakeInventory) ReleaseReservation(
	ctx context.Context, req *connect.Request[inventoryv1.ReleaseReservationRequest],
) (*connect.Response[inventoryv1.ReleaseReservationResponse], error) {
	if err := f.record("ReleaseReservation", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reservations[req.Msg.GetReservationId()]
	switch {
	case !ok:
		return connect.NewResponse(&inventoryv1.ReleaseReservationResponse{}), nil
	case r.State == inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED:
		return nil, connect.NewError(connect.CodeFailedPrecondition,
			errors.New("reservation was committed"))
	case r.State == inventoryv1.ReservationState_RESERVATION_STATE_HELD:
		for _, l := range r.Lines {
			p := f.products[l.GetSku()]
			p.Reserved -= l.GetQuantity()
			p.Available += l.GetQuantity()
			f.notifyLocked(p)
		}
		r.State = inventoryv1.ReservationState_RESERVATION_STATE_RELEASED
	}
	return connect.NewResponse(&inventoryv1.ReleaseReservationResponse{
		Reservation: proto.CloneOf(r),
	}), nil
}

func (f *fakeInventory) WatchStock(
	ctx context.Context,
	req *connect.Request[inventoryv1.WatchStockRequest],
	stream *connect.ServerStream[inventoryv1.WatchStockResponse],
) error {
	defer func() { f.watchEnded <- struct{}{} }()
	if err := f.record("WatchStock", req.Header()); err != nil {
		return err
	}
	watched := make(map[string]bool)
	for _, sku := range req.Msg.GetSkus() {
		watched[sku] = true
	}

	// Subscribe before taking the snapshot, so that no change falls between.
	ch := make(chan *inventoryv1.WatchStockResponse, 16)
	f.mu.Lock()
	f.watchers[ch] = true
	var now []*inventoryv1.WatchStockResponse
	for _, sku := range req.Msg.GetSkus() {
		now = append(now, &inventoryv1.WatchStockResponse{
			Sku:       sku,
			Available: f.products[sku].GetAvailable(),
		})
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()

	for _, msg := range now {
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case msg := <-ch:
			if !watched[msg.GetSku()] {
				continue
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
	}
}

// hangingInventory answers nothing until its caller gives up.
type hangingInventory struct {
	inventoryv1connect.UnimplementedInventoryServiceHandler
}

func (hangingInventory) GetProduct(
	ctx context.Context, req *connect.Request[inventoryv1.GetProductRequest],
) (*connect.Response[inventoryv1.GetProductResponse], error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (hangingInventory) BatchGetProducts(
	ctx context.Context, req *connect.Request[inventoryv1.BatchGetProductsRequest],
) (*connect.Response[inventoryv1.BatchGetProductsResponse], error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// fakeCart is an in-memory cart service.
type fakeCart struct {
	callLog

	mu     sync.Mutex
	carts  map[string]*cartv1.Cart
	orders []*cartv1.Order // in the order they were placed

	// placeGate, if set, holds PlaceOrder calls until it opens.
	placeGate *barrier
	// versionFirst makes PlaceOrder check the cart version before it looks
	// for an existing order, so that a retry racing the first attempt fails
	// with FailedPrecondition instead of finding the order.
	versionFirst bool
}

func newFakeCart() *fakeCart {
	return &fakeCart{carts: make(map[string]*cartv1.Cart)}
}

// cart returns a copy of a shopper's cart.
func (f *fakeCart) cart(shopperID string) *cartv1.Cart {
	f.mu.Lock()
	defer f.mu.Unlock()
	return proto.CloneOf(f.cartLocked(shopperID))
}

func (f *fakeCart) cartLocked(shopperID string) *cartv1.Cart {
	c, ok := f.carts[shopperID]
	if !ok {
		c = &cartv1.Cart{ShopperId: shopperID}
		f.carts[shopperID] = c
	}
	return c
}

// setLines replaces the lines of a shopper's cart.
func (f *fakeCart) setLines(shopperID string, lines ...*cartv1.CartLine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cartLocked(shopperID)
	c.Lines = nil
	for _, l := range lines {
		c.Lines = append(c.Lines, proto.CloneOf(l))
	}
	c.Version++
}

// placedOrders returns copies of every order placed, by anyone.
func (f *fakeCart) placedOrders() []*cartv1.Order {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*cartv1.Order, len(f.orders))
	for i, o := range f.orders {
		out[i] = proto.CloneOf(o)
	}
	return out
}

func (f *fakeCart) GetCart(
	ctx context.Context, req *connect.Request[cartv1.GetCartRequest],
) (*connect.Response[cartv1.GetCartResponse], error) {
	if err := f.record("GetCart", req.Header()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&cartv1.GetCartResponse{Cart: f.cart(req.Msg.GetShopperId())}), nil
}

func (f *fakeCart) AddItem(
	ctx context.Context, req *connect.Request[cartv1.AddItemRequest],
) (*connect.Response[cartv1.AddItemResponse], error) {
	if err := f.record("AddItem", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cartLocked(req.Msg.GetShopperId())
	i := slices.IndexFunc(c.Lines, func(l *cartv1.CartLine) bool {
		return l.GetSku() == req.Msg.GetSku()
	})
	if i < 0 {
		c.Lines = append(c.Lines, &cartv1.CartLine{Sku: req.Msg.GetSku()})
		i = len(c.Lines) - 1
	}
	sum := c.Lines[i].Quantity + req.Msg.GetQuantity()
	if max := req.Msg.GetMaxQuantity(); max > 0 && sum > max {
		if c.Lines[i].Quantity == 0 {
			c.Lines = c.Lines[:i]
		}
		// Like the real service, say which precondition failed.
		cerr := connect.NewError(connect.CodeFailedPrecondition,
			fmt.Errorf("line would hold %d, more than %d", sum, max))
		detail, err := connect.NewErrorDetail(&errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{
				{Type: "QUANTITY_LIMIT", Subject: req.Msg.GetSku()},
			},
		})
		if err != nil {
			return nil, err
		}
		cerr.AddDetail(detail)
		return nil, cerr
	}
	c.Lines[i].Quantity = sum
	c.Version++
	return connect.NewResponse(&cartv1.AddItemResponse{Cart: proto.CloneOf(c)}), nil
}

func (f *fakeCart) UpdateItem(
	ctx context.Context, req *connect.Request[cartv1.UpdateItemRequest],
) (*connect.Response[cartv1.UpdateItemResponse], error) {
	if err := f.record("UpdateItem", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cartLocked(req.Msg.GetShopperId())
	i := slices.IndexFunc(c.Lines, func(l *cartv1.CartLine) bool {
		return l.GetSku() == req.Msg.GetSku()
	})
	switch {
	case req.Msg.GetQuantity() == 0 && i >= 0:
		c.Lines = slices.Delete(c.Lines, i, i+1)
	case req.Msg.GetQuantity() == 0:
	case i >= 0:
		c.Lines[i].Quantity = req.Msg.GetQuantity()
	default:
		c.Lines = append(c.Lines, &cartv1.CartLine{
			Sku:      req.Msg.GetSku(),
			Quantity: req.Msg.GetQuantity(),
		})
	}
	c.Version++
	return connect.NewResponse(&cartv1.UpdateItemResponse{Cart: proto.CloneOf(c)}), nil
}

func (f *fakeCart) RemoveItem(
	ctx context.Context, req *connect.Request[cartv1.RemoveItemRequest],
) (*connect.Response[cartv1.RemoveItemResponse], error) {
	if err := f.record("RemoveItem", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cartLocked(req.Msg.GetShopperId())
	n := len(c.Lines)
	c.Lines = slices.DeleteFunc(c.Lines, func(l *cartv1.CartLine) bool {
		return l.GetSku() == req.Msg.GetSku()
	})
	if len(c.Lines) != n {
		c.Version++
	}
	return connect.NewResponse(&cartv1.RemoveItemResponse{Cart: proto.CloneOf(c)}), nil
}

func (f *fakeCart) ClearCart(
	ctx context.Context, req *connect.Request[cartv1.ClearCartRequest],
) (*connect.Response[cartv1.ClearCartResponse], error) {
	if err := f.record("ClearCart", req.Header()); err != nil {
		return nil, err
	}
	f.setLines(req.Msg.GetShopperId())
	return connect.NewResponse(&cartv1.ClearCartResponse{Cart: f.cart(req.Msg.GetShopperId())}), nil
}

func (f *fakeCart) PlaceOrder(
	ctx context.Context, req *connect.Request[cartv1.PlaceOrderRequest],
) (*connect.Response[cartv1.PlaceOrderResponse], error) {
	if err := f.record("PlaceOrder", req.Header()); err != nil {
		return nil, err
	}
	if err := f.placeGate.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := req.Msg
	c := f.cartLocked(m.GetShopperId())
	if f.versionFirst && c.GetVersion() != m.GetCartVersion() {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("cart changed"))
	}
	for _, o := range f.orders {
		if o.GetOrderId() != m.GetOrderId() {
			continue
		}
		if o.GetShopperId() != m.GetShopperId() || !proto.Equal(
			&cartv1.PlaceOrderRequest{Lines: o.Lines}, &cartv1.PlaceOrderRequest{Lines: m.Lines}) {
			return nil, connect.NewError(connect.CodeAlreadyExists, errors.New("order id in use"))
		}
		return connect.NewResponse(&cartv1.PlaceOrderResponse{Order: proto.CloneOf(o)}), nil
	}

	if c.GetVersion() != m.GetCartVersion() {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("cart changed"))
	}
	o := &cartv1.Order{
		OrderId:     m.GetOrderId(),
		ShopperId:   m.GetShopperId(),
		Lines:       m.GetLines(),
		Total:       usd(0),
		Status:      cartv1.OrderStatus_ORDER_STATUS_PLACED,
		CartVersion: m.GetCartVersion(),
	}
	for _, l := range o.Lines {
		o.Total.Amount += l.GetLineTotal().GetAmount()
	}
	f.orders = append(f.orders, o)
	c.Lines = nil
	c.Version++
	return connect.NewResponse(&cartv1.PlaceOrderResponse{Order: proto.CloneOf(o)}), nil
}

func (f *fakeCart) GetOrder(
	ctx context.Context, req *connect.Request[cartv1.GetOrderRequest],
) (*connect.Response[cartv1.GetOrderResponse], error) {
	if err := f.record("GetOrder", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.orders {
		if o.GetOrderId() == req.Msg.GetOrderId() && o.GetShopperId() == req.Msg.GetShopperId() {
			return connect.NewResponse(&cartv1.GetOrderResponse{Order: proto.CloneOf(o)}), nil
		}
	}
	return nil, connect.NewError(connect.CodeNotFound,
		fmt.Errorf("shopper %s has no order %s", req.Msg.GetShopperId(), req.Msg.GetOrderId()))
}

func (f *fakeCart) ListOrders(
	ctx context.Context, req *connect.Request[cartv1.ListOrdersRequest],
) (*connect.Response[cartv1.ListOrdersResponse], error) {
	if err := f.record("ListOrders", req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := &cartv1.ListOrdersResponse{}
	for _, o := range slices.Backward(f.orders) {
		if o.GetShopperId() == req.Msg.GetShopperId() {
			res.Orders = append(res.Orders, proto.CloneOf(o))
		}
	}
	return connect.NewResponse(res), nil
}

// barrier holds callers of wait until n of them are waiting. A nil barrier
// holds nobody.
type barrier struct {
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func newBarrier(n int) *barrier {
	return &barrier{waiting: n, open: make(chan struct{})}
}

func (b *barrier) wait(ctx context.Context) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	b.waiting--
	if b.waiting == 0 {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
