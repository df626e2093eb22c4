package inventory

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tienda/tienda/gen/tienda/common/v1"
	inventoryv1 "github.com/tienda/tienda/gen/tienda/inventory/v1"
	"github.com/tienda/tienda/internal/storedb"
	"github.com/tienda/tienda/services/inventory/internal/store"
	"github.com/tienda/tienda/services/inventory/internal/watch"
)

// The handlers rely on the server's protovalidate interceptor for the rules
// written in the proto file, and check only what those rules cannot say.

// GetProduct returns one product with its stock.
func (s *Service) GetProduct(
	ctx context.Context, req *connect.Request[inventoryv1.GetProductRequest],
) (*connect.Response[inventoryv1.GetProductResponse], error) {
	p, err := s.store.GetProduct(ctx, req.Msg.GetSku())
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(&inventoryv1.GetProductResponse{Product: productToProto(p)}), nil
}

// ListProducts returns one page of the catalog in SKU order.
func (s *Service) ListProducts(
	ctx context.Context, req *connect.Request[inventoryv1.ListProductsRequest],
) (*connect.Response[inventoryv1.ListProductsResponse], error) {
	page, err := s.store.ListProducts(ctx, store.ListOptions{
		Query:     req.Msg.GetQuery(),
		Category:  req.Msg.GetCategory(),
		PageSize:  int(req.Msg.GetPageSize()),
		PageToken: req.Msg.GetPageToken(),
	})
	if err != nil {
		return nil, connectError(err)
	}
	res := &inventoryv1.ListProductsResponse{NextPageToken: page.NextPageToken}
	for _, p := range page.Products {
		res.Products = append(res.Products, productToProto(p))
	}
	return connect.NewResponse(res), nil
}

// BatchGetProducts returns the products found among the requested SKUs and
// names the others.
func (s *Service) BatchGetProducts(
	ctx context.Context, req *connect.Request[inventoryv1.BatchGetProductsRequest],
) (*connect.Response[inventoryv1.BatchGetProductsResponse], error) {
	found, missing, err := s.store.BatchGetProducts(ctx, req.Msg.GetSkus())
	if err != nil {
		return nil, connectError(err)
	}
	res := &inventoryv1.BatchGetProductsResponse{MissingSkus: missing}
	for _, p := range found {
		res.Products = append(res.Products, productToProto(p))
	}
	return connect.NewResponse(res), nil
}

// UpsertProduct creates a product or updates its catalog fields, never its
// stock.
func (s *Service) UpsertProduct(
	ctx context.Context, req *connect.Request[inventoryv1.UpsertProductRequest],
) (*connect.Response[inventoryv1.UpsertProductResponse], error) {
	m := req.Msg
	if m.GetPrice() == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("price is required"))
	}
	p, err := s.store.UpsertProduct(ctx, store.Product{
		SKU:         m.GetSku(),
		Name:        m.GetName(),
		Description: m.GetDescription(),
		Category:    m.GetCategory(),
		Price: store.Money{
			CurrencyCode: m.GetPrice().GetCurrencyCode(),
			Amount:       m.GetPrice().GetAmount(),
		},
	}, s.now())
	if err != nil {
		return nil, connectError(err)
	}
	s.logger.Info("product upserted", "sku", p.SKU)
	return connect.NewResponse(&inventoryv1.UpsertProductResponse{Product: productToProto(p)}), nil
}

// AdjustStock adds units to, or removes units from, the stock on hand.
func (s *Service) AdjustStock(
	ctx context.Context, req *connect.Request[inventoryv1.AdjustStockRequest],
) (*connect.Response[inventoryv1.AdjustStockResponse], error) {
	m := req.Msg
	p, err := s.store.AdjustStock(ctx, m.GetSku(), m.GetDelta(), m.GetReason(), s.now())
	if err != nil {
		return nil, connectError(err)
	}
	s.logger.Info("stock adjusted",
		"sku", p.SKU, "delta", m.GetDelta(), "reason", m.GetReason(), "available", p.Available)
	s.hub.Publish(store.StockLevel{SKU: p.SKU, Available: p.Available, Version: p.StockVersion})
	return connect.NewResponse(&inventoryv1.AdjustStockResponse{Product: productToProto(p)}), nil
}

// ReserveStock holds stock for every line of a checkout, or for none.
func (s *Service) ReserveStock(
	ctx context.Context, req *connect.Request[inventoryv1.ReserveStockRequest],
) (*connect.Response[inventoryv1.ReserveStockResponse], error) {
	m := req.Msg
	ttl := s.ttl
	if d := m.GetTtl().AsDuration(); m.GetTtl() != nil && d > 0 {
		ttl = d
	}
	lines := make([]store.Line, len(m.GetLines()))
	for i, l := range m.GetLines() {
		lines[i] = store.Line{SKU: l.GetSku(), Quantity: l.GetQuantity()}
	}

	now := s.now()
	r, err := s.store.Reserve(ctx, m.GetReservationId(), lines, now, now.Add(ttl))
	if err != nil {
		return nil, connectError(err)
	}
	s.publish(ctx, r.SKUs())
	return connect.NewResponse(&inventoryv1.ReserveStockResponse{
		Reservation: reservationToProto(r),
	}), nil
}

// CommitReservation turns held stock into sold stock.
func (s *Service) CommitReservation(
	ctx context.Context, req *connect.Request[inventoryv1.CommitReservationRequest],
) (*connect.Response[inventoryv1.CommitReservationResponse], error) {
	r, err := s.store.Commit(ctx, req.Msg.GetReservationId(), s.now())
	if err != nil {
		return nil, connectError(err)
	}
	// Committing changes no availability, so watchers hear nothing.
	return connect.NewResponse(&inventoryv1.CommitReservationResponse{
		Reservation: reservationToProto(r),
	}), nil
}

// ReleaseReservation returns held stock to available. Releasing an unknown
// id returns an empty response.
func (s *Service) ReleaseReservation(
	ctx context.Context, req *connect.Request[inventoryv1.ReleaseReservationRequest],
) (*connect.Response[inventoryv1.ReleaseReservationResponse], error) {
	r, err := s.store.Release(ctx, req.Msg.GetReservationId(), s.now())
	if err != nil {
		return nil, connectError(err)
	}
	res := &inventoryv1.ReleaseReservationResponse{}
	if r != nil {
		s.publish(ctx, r.SKUs())
		res.Reservation = reservationToProto(*r)
	}
	return connect.NewResponse(res), nil
}

// WatchStock sends the availability of the requested products, then one
// message per change, until the client goes away or the service drains.
func (s *Service) WatchStock(
	ctx context.Context,
	req *connect.Request[inventoryv1.WatchStockRequest],
	stream *connect.ServerStream[inventoryv1.WatchStockResponse],
) error {
	skus := store.UniqueSKUs(req.Msg.GetSkus())
	// Subscribe before reading, so that no change falls between the two.
	sub, err := s.hub.Subscribe(skus)
	if errors.Is(err, watch.ErrClosed) {
		return connect.NewError(connect.CodeUnavailable, errors.New("inventory is shutting down"))
	}
	if err != nil {
		return fmt.Errorf("subscribe to stock levels: %w", err)
	}
	defer sub.Close()

	levels, err := s.store.StockLevels(ctx, skus)
	if err != nil {
		return connectError(err)
	}
	bySKU := make(map[string]store.StockLevel, len(levels))
	for _, l := range levels {
		bySKU[l.SKU] = l
	}
	var missing []string
	for _, sku := range skus {
		if _, ok := bySKU[sku]; !ok {
			missing = append(missing, sku)
		}
	}
	switch {
	case len(missing) == 1:
		return connectError(store.ProductNotFound(missing[0]))
	case len(missing) > 1:
		err := fmt.Errorf("products %s %w", strings.Join(missing, ", "), store.ErrNotFound)
		return connectError(err)
	}
	sub.Baseline(levels)

	send := func(levels ...store.StockLevel) error {
		for _, l := range levels {
			err := stream.Send(&inventoryv1.WatchStockResponse{Sku: l.SKU, Available: l.Available})
			if err != nil {
				if ctx.Err() != nil {
					return nil // the client went away
				}
				return fmt.Errorf("send stock level: %w", err)
			}
		}
		return nil
	}
	initial := make([]store.StockLevel, len(skus))
	for i, sku := range skus {
		initial[i] = bySKU[sku]
	}
	if err := send(initial...); err != nil || ctx.Err() != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			// The client went away or its deadline passed.
			return ctx.Err()
		case <-sub.Done():
			return nil
		case <-sub.Ready():
			if err := send(sub.Take()...); err != nil {
				return err
			}
		}
	}
}

// connectError turns the domain errors of package store into the Connect
// errors that clients see, with messages that name what went wrong and
// never storage details. Other errors are returned as they are: the
// server's interceptor logs them and sends a generic Internal error.
func connectError(err error) error {
	var short *store.ShortageError
	switch {
	case errors.As(err, &short):
		ce := connect.NewError(connect.CodeFailedPrecondition, short)
		for _, sh := range short.Shortages {
			detail, derr := connect.NewErrorDetail(&inventoryv1.StockShortage{
				Sku:       sh.SKU,
				Requested: sh.Requested,
				Available: sh.Available,
			})
			if derr == nil {
				ce.AddDetail(detail)
			}
		}
		return ce
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, store.ErrReservationConflict):
		return connect.NewError(connect.CodeAlreadyExists, err)
	case errors.Is(err, store.ErrReservationClosed):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, store.ErrInvalidPageToken), errors.Is(err, store.ErrInvalidArgument):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, context.DeadlineExceeded)
	case storedb.Busy(err):
		// Another process holds the database's write lock; nothing changed.
		return connect.NewError(connect.CodeUnavailable, errors.New("the store is busy; try again"))
	}
	return err
}

func productToProto(p store.Product) *inventoryv1.Product {
	return &inventoryv1.Product{
		Sku:         p.SKU,
		Name:        p.Name,
		Description: p.Description,
		Category:    p.Category,
		Price: &commonv1.Money{
			CurrencyCode: p.Price.CurrencyCode,
			Amount:       p.Price.Amount,
		},
		Available:  p.Available,
		Reserved:   p.Reserved,
		Sold:       p.Sold,
		Adjusted:   p.Adjusted,
		UpdateTime: timestamppb.New(p.UpdateTime),
	}
}

func reservationToProto(r store.Reservation) *inventoryv1.Reservation {
	res := &inventoryv1.Reservation{
		ReservationId: r.ID,
		State:         stateToProto(r.State),
		ExpireTime:    timestamppb.New(r.ExpireTime),
	}
	for _, l := range r.Lines {
		res.Lines = append(res.Lines,
			&inventoryv1.ReservationLine{Sku: l.SKU, Quantity: l.Quantity})
	}
	return res
}

func stateToProto(s store.State) inventoryv1.ReservationState {
	switch s {
	case store.StateHeld:
		return inventoryv1.ReservationState_RESERVATION_STATE_HELD
	case store.StateCommitted:
		return inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED
	case store.StateReleased:
		return inventoryv1.ReservationState_RESERVATION_STATE_RELEASED
	}
	return inventoryv1.ReservationState_RESERVATION_STATE_UNSPECIFIED
}
