// Package postgres implements the cart store on PostgreSQL, for deployments
// that run several cart replicas against one database.
//
// Transactions run at READ COMMITTED and serialize on the cart row: every
// write locks it first, either with SELECT ... FOR UPDATE or with the upsert
// that bumps the version, before it reads or changes the cart's lines or
// places an order. Taking that lock first, always, also keeps writers of one
// cart from deadlocking one another. Reads that need several queries run in
// a read-only REPEATABLE READ transaction to see one snapshot.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tienda/tienda/internal/storedb"
	"github.com/tienda/tienda/services/cart/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are recorded in their own table and serialized by their own
// advisory lock, so that the cart service may share a database with other
// services that also use goose.
const (
	migrationTable  = "cart_goose_db_version"
	migrationLockID = 0x7469656e64616361 // "tiendaca"
)

// Store is a [store.Store] on PostgreSQL. It is safe for concurrent use,
// also by several processes sharing the database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and applies the pending migrations, logging each one to logger
// (nil for none). Replicas that open the database at the same time take
// turns migrating it.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	pool, err := storedb.OpenPostgres(ctx, dsn, fsys, storedb.Postgres{
		Table:       migrationTable,
		LockID:      migrationLockID,
		Application: "tienda-cart",
	}, logger)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// Close closes the connection pool, waiting for connections in use.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

var (
	writeTx = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	readTx  = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

// GetCart implements [store.Store].
func (s *Store) GetCart(ctx context.Context, shopperID string) (store.Cart, error) {
	var cart store.Cart
	err := pgx.BeginTxFunc(ctx, s.pool, readTx, func(tx pgx.Tx) error {
		var err error
		cart, err = loadCart(ctx, tx, shopperID)
		return err
	})
	if err != nil {
		return store.Cart{}, fmt.Errorf("get cart: %w", err)
	}
	return cart, nil
}

// AddItem implements [store.Store].
func (s *Store) AddItem(ctx context.Context, shopperID, sku string, quantity, maxQuantity int64,
	now time.Time) (store.Cart, error) {
	var cart store.Cart
	err := pgx.BeginTxFunc(ctx, s.pool, writeTx, func(tx pgx.Tx) error {
		// Bumping the version first locks the cart; if the addition turns
		// out to be over the limit, the rollback undoes the bump.
		version, err := bumpVersion(ctx, tx, shopperID, now)
		if err != nil {
			return err
		}
		inCart, err := lineQuantity(ctx, tx, shopperID, sku)
		if err != nil {
			return err
		}
		total, err := store.CheckAdd(sku, inCart, quantity, maxQuantity)
		if err != nil {
			return err
		}
		if inCart == 0 {
			if err := checkNewLine(ctx, tx, shopperID); err != nil {
				return err
			}
		}
		if err := setLine(ctx, tx, shopperID, sku, total, version); err != nil {
			return err
		}
		cart, err = loadCart(ctx, tx, shopperID)
		return err
	})
	if err != nil {
		return store.Cart{}, fmt.Errorf("add item: %w", err)
	}
	return cart, nil
}

// UpdateItem implements [store.Store].
func (s *Store) UpdateItem(ctx context.Context, shopperID, sku string, quantity int64,
	now time.Time) (store.Cart, error) {
	var cart store.Cart
	err := pgx.BeginTxFunc(ctx, s.pool, writeTx, func(tx pgx.Tx) error {
		// Without a cart row there is nothing to lock yet: then the line is
		// missing, and bumpVersion below creates the row or waits for
		// whoever is creating it.
		if _, err := lockCart(ctx, tx, shopperID); err != nil {
			return err
		}
		inCart, err := lineQuantity(ctx, tx, shopperID, sku)
		if err != nil {
			return err
		}
		if err := store.CheckUpdate(sku, inCart, quantity); err != nil {
			return err
		}
		if inCart == 0 && quantity > 0 {
			if err := checkNewLine(ctx, tx, shopperID); err != nil {
				return err
			}
		}

		if quantity != inCart {
			version, err := bumpVersion(ctx, tx, shopperID, now)
			if err != nil {
				return err
			}
			if quantity == 0 {
				err = deleteLines(ctx, tx, shopperID, sku)
			} else {
				err = setLine(ctx, tx, shopperID, sku, quantity, version)
			}
			if err != nil {
				return err
			}
		}
		cart, err = loadCart(ctx, tx, shopperID)
		return err
	})
	if err != nil {
		return store.Cart{}, fmt.Errorf("update item: %w", err)
	}
	return cart, nil
}

// RemoveItem implements [store.Store].
func (s *Store) RemoveItem(ctx context.Context, shopperID, sku string,
	now time.Time) (store.Cart, error) {
	cart, err := s.removeLines(ctx, shopperID, sku, now)
	if err != nil {
		return store.Cart{}, fmt.Errorf("remove item: %w", err)
	}
	return cart, nil
}

// ClearCart implements [store.Store].
func (s *Store) ClearCart(ctx context.Context, shopperID string,
	now time.Time) (store.Cart, error) {
	cart, err := s.removeLines(ctx, shopperID, "", now)
	if err != nil {
		return store.Cart{}, fmt.Errorf("clear cart: %w", err)
	}
	return cart, nil
}

// removeLines drops the line of sku, or every line if sku is empty, and
// bumps the version if that dropped anything.
func (s *Store) removeLines(ctx context.Context, shopperID, sku string,
	now time.Time) (store.Cart, error) {
	var cart store.Cart
	err := pgx.BeginTxFunc(ctx, s.pool, writeTx, func(tx pgx.Tx) error {
		exists, err := lockCart(ctx, tx, shopperID)
		if err != nil || !exists {
			cart = store.Cart{ShopperID: shopperID}
			return err
		}
		tag, err := tx.Exec(ctx, `
			DELETE FROM cart_lines WHERE shopper_id = $1 AND ($2 = '' OR sku = $2)`,
			shopperID, sku)
		if err != nil {
			return fmt.Errorf("delete cart lines: %w", err)
		}
		if tag.RowsAffected() > 0 {
			if _, err := bumpVersion(ctx, tx, shopperID, now); err != nil {
				return err
			}
		}
		cart, err = loadCart(ctx, tx, shopperID)
		return err
	})
	return cart, err
}

// PlaceOrder implements [store.Store].
func (s *Store) PlaceOrder(ctx context.Context, shopperID, orderID string, cartVersion int64,
	lines []store.OrderLine, now time.Time) (store.Order, error) {
	priced, total, err := store.PriceLines(lines)
	if err != nil {
		return store.Order{}, fmt.Errorf("place order: %w", err)
	}
	order := store.Order{
		ID:          orderID,
		ShopperID:   shopperID,
		Lines:       priced,
		Total:       total,
		Status:      store.OrderPlaced,
		CreateTime:  store.StoredTime(now),
		CartVersion: cartVersion,
	}

	err = pgx.BeginTxFunc(ctx, s.pool, writeTx, func(tx pgx.Tx) error {
		// Holding the cart's lock, a retry of an order that is being placed
		// concurrently waits for it and then finds it below.
		if _, err := lockCart(ctx, tx, shopperID); err != nil {
			return err
		}
		existing, err := loadOrder(ctx, tx, orderID)
		switch {
		case err == nil && store.SameOrder(existing, shopperID, lines):
			order = existing
			return nil
		case err == nil:
			return store.ErrOrderConflict
		case !errors.Is(err, store.ErrNotFound):
			return err
		}

		cart, err := loadCart(ctx, tx, shopperID)
		if err != nil {
			return err
		}
		if cart.Version != cartVersion {
			return store.ErrCartChanged
		}
		if !store.MatchesCart(cart.Lines, priced) {
			return store.ErrLinesMismatch
		}

		if err := insertOrder(ctx, tx, order); err != nil {
			return err
		}
		if err := deleteLines(ctx, tx, shopperID, ""); err != nil {
			return err
		}
		_, err = bumpVersion(ctx, tx, shopperID, now)
		return err
	})
	if err != nil {
		return store.Order{}, fmt.Errorf("place order: %w", err)
	}
	return order, nil
}

// GetOrder implements [store.Store].
func (s *Store) GetOrder(ctx context.Context, shopperID, orderID string) (store.Order, error) {
	var order store.Order
	err := pgx.BeginTxFunc(ctx, s.pool, readTx, func(tx pgx.Tx) error {
		var err error
		order, err = loadOrder(ctx, tx, orderID)
		if err == nil && order.ShopperID != shopperID {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.Order{}, fmt.Errorf("get order: %w", err)
	}
	return order, nil
}

// ListOrders implements [store.Store].
func (s *Store) ListOrders(ctx context.Context, shopperID string, pageSize int,
	pageToken string) (store.OrderPage, error) {
	size, err := store.PageSize(pageSize)
	if err != nil {
		return store.OrderPage{}, fmt.Errorf("list orders: %w", err)
	}
	query := selectOrders + ` WHERE shopper_id = $1`
	args := []any{shopperID, size + 1} // one more tells whether there is a next page
	if pageToken != "" {
		after, err := store.DecodePageToken(pageToken)
		if err != nil {
			return store.OrderPage{}, fmt.Errorf("list orders: %w", err)
		}
		query += ` AND (create_time, order_id) < ($3, $4)`
		args = append(args, after.CreateTime, after.OrderID)
	}
	query += ` ORDER BY create_time DESC, order_id DESC LIMIT $2`

	var page store.OrderPage
	err = pgx.BeginTxFunc(ctx, s.pool, readTx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("select orders: %w", err)
		}
		page.Orders, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Order, error) {
			return scanOrder(row)
		})
		if err != nil {
			return fmt.Errorf("select orders: %w", err)
		}

		if len(page.Orders) > size {
			page.Orders = page.Orders[:size]
			last := page.Orders[size-1]
			page.NextPageToken = store.EncodePageToken(store.Cursor{
				CreateTime: last.CreateTime,
				OrderID:    last.ID,
			})
		}
		return loadLinesOf(ctx, tx, page.Orders)
	})
	if err != nil {
		return store.OrderPage{}, fmt.Errorf("list orders: %w", err)
	}
	return page, nil
}

// lockCart locks the cart row until the transaction ends and reports whether
// there is one.
func lockCart(ctx context.Context, tx pgx.Tx, shopperID string) (bool, error) {
	var version int64
	err := tx.QueryRow(ctx,
		`SELECT version FROM carts WHERE shopper_id = $1 FOR UPDATE`, shopperID,
	).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("lock cart: %w", err)
	}
	return true, nil
}

// loadCart reads a cart; a cart without a row is empty at version 0.
func loadCart(ctx context.Context, tx pgx.Tx, shopperID string) (store.Cart, error) {
	cart := store.Cart{ShopperID: shopperID}
	err := tx.QueryRow(ctx,
		`SELECT version, update_time FROM carts WHERE shopper_id = $1`, shopperID,
	).Scan(&cart.Version, &cart.UpdateTime)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return cart, nil
	case err != nil:
		return store.Cart{}, fmt.Errorf("select cart: %w", err)
	}
	cart.UpdateTime = cart.UpdateTime.UTC()

	rows, err := tx.Query(ctx,
		`SELECT sku, quantity FROM cart_lines WHERE shopper_id = $1 ORDER BY position`,
		shopperID)
	if err != nil {
		return store.Cart{}, fmt.Errorf("select cart lines: %w", err)
	}
	cart.Lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Line, error) {
		var l store.Line
		err := row.Scan(&l.SKU, &l.Quantity)
		return l, err
	})
	if err != nil {
		return store.Cart{}, fmt.Errorf("select cart lines: %w", err)
	}
	return cart, nil
}

// lineQuantity returns how many units of sku the cart holds.
func lineQuantity(ctx context.Context, tx pgx.Tx, shopperID, sku string) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx,
		`SELECT quantity FROM cart_lines WHERE shopper_id = $1 AND sku = $2`, shopperID, sku,
	).Scan(&n)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("select cart line: %w", err)
	}
	return n, nil
}

// bumpVersion creates the cart at version 1 or adds one to its version, and
// returns the new version. Either way it holds the cart row's lock until the
// transaction ends.
func bumpVersion(ctx context.Context, tx pgx.Tx, shopperID string, now time.Time) (int64, error) {
	var version int64
	err := tx.QueryRow(ctx, `
		INSERT INTO carts (shopper_id, version, update_time) VALUES ($1, 1, $2)
		ON CONFLICT (shopper_id) DO UPDATE
		SET version = carts.version + 1, update_time = excluded.update_time
		RETURNING version`,
		shopperID, store.StoredTime(now),
	).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("bump cart version: %w", err)
	}
	return version, nil
}

// setLine sets the quantity of a line. A new line gets position, which sorts
// it after every line added before.
func setLine(ctx context.Context, tx pgx.Tx, shopperID, sku string, quantity,
	position int64) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO cart_lines (shopper_id, sku, quantity, position) VALUES ($1, $2, $3, $4)
		ON CONFLICT (shopper_id, sku) DO UPDATE SET quantity = excluded.quantity`,
		shopperID, sku, quantity, position)
	if err != nil {
		return fmt.Errorf("upsert cart line: %w", err)
	}
	return nil
}

// deleteLines drops the line of sku, or every line if sku is empty.
func deleteLines(ctx context.Context, tx pgx.Tx, shopperID, sku string) error {
	_, err := tx.Exec(ctx,
		`DELETE FROM cart_lines WHERE shopper_id = $1 AND ($2 = '' OR sku = $2)`,
		shopperID, sku)
	if err != nil {
		return fmt.Errorf("delete cart lines: %w", err)
	}
	return nil
}

// insertOrder inserts an order and its lines, or fails with
// [store.ErrOrderConflict] if another transaction took the order id first.
func insertOrder(ctx context.Context, tx pgx.Tx, o store.Order) error {
	tag, err := tx.Exec(ctx, `
		INSERT INTO orders
			(order_id, shopper_id, status, currency, total, cart_version, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (order_id) DO NOTHING`,
		o.ID, o.ShopperID, string(o.Status), o.Total.Currency, o.Total.Amount,
		o.CartVersion, o.CreateTime)
	if err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrOrderConflict
	}

	rows := make([][]any, len(o.Lines))
	for i, l := range o.Lines {
		rows[i] = []any{o.ID, i, l.SKU, l.Name, l.UnitPrice.Amount, l.Quantity, l.LineTotal.Amount}
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"order_lines"},
		[]string{"order_id", "position", "sku", "name", "unit_price", "quantity", "line_total"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("insert order lines: %w", err)
	}
	return nil
}

const selectOrders = `
	SELECT order_id, shopper_id, status, currency, total, cart_version, create_time
	FROM orders`

// loadOrder reads an order of any shopper, or fails with
// [store.ErrNotFound].
func loadOrder(ctx context.Context, tx pgx.Tx, orderID string) (store.Order, error) {
	o, err := scanOrder(tx.QueryRow(ctx, selectOrders+` WHERE order_id = $1`, orderID))
	if err != nil {
		return store.Order{}, err
	}
	orders := []store.Order{o}
	if err := loadLinesOf(ctx, tx, orders); err != nil {
		return store.Order{}, err
	}
	return orders[0], nil
}

// scanOrder scans an order without its lines from a row of selectOrders.
func scanOrder(row pgx.Row) (store.Order, error) {
	var (
		o      store.Order
		status string
	)
	err := row.Scan(&o.ID, &o.ShopperID, &status, &o.Total.Currency, &o.Total.Amount,
		&o.CartVersion, &o.CreateTime)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Order{}, store.ErrNotFound
	case err != nil:
		return store.Order{}, fmt.Errorf("scan order: %w", err)
	}
	o.Status = store.OrderStatus(status)
	o.CreateTime = o.CreateTime.UTC()
	return o, nil
}

// loadLinesOf reads the lines of orders with one query.
func loadLinesOf(ctx context.Context, tx pgx.Tx, orders []store.Order) error {
	if len(orders) == 0 {
		return nil
	}
	index := make(map[string]int, len(orders))
	ids := make([]string, len(orders))
	for i, o := range orders {
		index[o.ID] = i
		ids[i] = o.ID
	}

	rows, err := tx.Query(ctx, `
		SELECT order_id, sku, name, unit_price, quantity, line_total
		FROM order_lines WHERE order_id = ANY($1) ORDER BY order_id, position`, ids)
	if err != nil {
		return fmt.Errorf("select order lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			orderID string
			l       store.OrderLine
		)
		err := rows.Scan(&orderID, &l.SKU, &l.Name, &l.UnitPrice.Amount, &l.Quantity,
			&l.LineTotal.Amount)
		if err != nil {
			return fmt.Errorf("scan order line: %w", err)
		}
		o := &orders[index[orderID]]
		l.UnitPrice.Currency = o.Total.Currency
		l.LineTotal.Currency = o.Total.Currency
		o.Lines = append(o.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("select order lines: %w", err)
	}
	return nil
}

// checkNewLine checks that the cart, locked by the caller, may take one
// more line.
func checkNewLine(ctx context.Context, tx pgx.Tx, shopperID string) error {
	var n int
	err := tx.QueryRow(ctx,
		`SELECT count(*) FROM cart_lines WHERE shopper_id = $1`, shopperID).Scan(&n)
	if err != nil {
		return fmt.Errorf("count cart lines: %w", err)
	}
	return store.CheckNewLine(n)
}
