// Package sqlite implements the cart store on an SQLite database file, the
// embedded default that needs nothing installed.
//
// Writes go through a pool of one connection whose transactions begin
// IMMEDIATE, so a read-modify-write transaction holds the database's write
// lock from its first statement: writes take turns, within this process and
// with any other process that opens the same file. Reads use a separate
// pool and see the last committed state. The database runs in WAL mode with
// synchronous=FULL, so a write is on disk before its commit returns and
// survives a crash of the process or the machine.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/tienda/tienda/internal/storedb"
	"github.com/tienda/tienda/services/cart/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for another connection's write
// lock before it fails with SQLITE_BUSY. Within one process writes queue in
// the one-connection pool instead, where the caller's context bounds the
// wait; this only matters when several processes share the file.
const busyTimeout = 10 * time.Second

// Store is a [store.Store] on an SQLite database file. It is safe for
// concurrent use.
type Store struct {
	write *sql.DB // one connection; every transaction begins IMMEDIATE
	read  *sql.DB // read-only connections
}

var _ store.Store = (*Store)(nil)

// Open opens the database file at path, creating it if needed, and applies
// the pending migrations, logging each one to logger (nil for none).
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	db, err := storedb.OpenSQLite(ctx, path, fsys, logger)
	if err != nil {
		return nil, err
	}
	return &Store{write: db.Writer, read: db.Reader}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inWriteTx runs fn in a write transaction and commits it if fn returns nil.
func (s *Store) inWriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed

	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inReadTx runs fn in a read transaction, so that all its queries see the
// same snapshot.
func (s *Store) inReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // reads have nothing to commit

	return fn(tx)
}

// GetCart implements [store.Store].
func (s *Store) GetCart(ctx context.Context, shopperID string) (store.Cart, error) {
	var cart store.Cart
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
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
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
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
		version, err := bumpVersion(ctx, tx, shopperID, now)
		if err != nil {
			return err
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
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
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
				err = deleteLine(ctx, tx, shopperID, sku)
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
	var cart store.Cart
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM cart_lines WHERE shopper_id = ? AND sku = ?`, shopperID, sku)
		if err != nil {
			return fmt.Errorf("delete line: %w", err)
		}
		if err := bumpIfChanged(ctx, tx, res, shopperID, now); err != nil {
			return err
		}
		cart, err = loadCart(ctx, tx, shopperID)
		return err
	})
	if err != nil {
		return store.Cart{}, fmt.Errorf("remove item: %w", err)
	}
	return cart, nil
}

// ClearCart implements [store.Store].
func (s *Store) ClearCart(ctx context.Context, shopperID string,
	now time.Time) (store.Cart, error) {
	var cart store.Cart
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM cart_lines WHERE shopper_id = ?`, shopperID)
		if err != nil {
			return fmt.Errorf("delete lines: %w", err)
		}
		if err := bumpIfChanged(ctx, tx, res, shopperID, now); err != nil {
			return err
		}
		cart, err = loadCart(ctx, tx, shopperID)
		return err
	})
	if err != nil {
		return store.Cart{}, fmt.Errorf("clear cart: %w", err)
	}
	return cart, nil
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

	err = s.inWriteTx(ctx, func(tx *sql.Tx) error {
		// A retry finds the order it placed before.
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
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM cart_lines WHERE shopper_id = ?`, shopperID); err != nil {
			return fmt.Errorf("empty cart: %w", err)
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
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
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
	query := selectOrders + ` WHERE shopper_id = ?`
	args := []any{shopperID}
	if pageToken != "" {
		after, err := store.DecodePageToken(pageToken)
		if err != nil {
			return store.OrderPage{}, fmt.Errorf("list orders: %w", err)
		}
		query += ` AND (create_time, order_id) < (?, ?)`
		args = append(args, after.CreateTime.UnixMicro(), after.OrderID)
	}
	query += ` ORDER BY create_time DESC, order_id DESC LIMIT ?`
	args = append(args, size+1) // one more tells whether there is a next page

	var page store.OrderPage
	err = s.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		if page.Orders, err = queryOrders(ctx, tx, query, args...); err != nil {
			return err
		}
		if len(page.Orders) > size {
			page.Orders = page.Orders[:size]
			last := page.Orders[size-1]
			page.NextPageToken = store.EncodePageToken(store.Cursor{
				CreateTime: last.CreateTime,
				OrderID:    last.ID,
			})
		}
		// One query per order is cheap for an in-process database, and a
		// page holds at most store.MaxPageSize orders.
		for i := range page.Orders {
			lines, err := loadOrderLines(ctx, tx, page.Orders[i].ID, page.Orders[i].Total.Currency)
			if err != nil {
				return err
			}
			page.Orders[i].Lines = lines
		}
		return nil
	})
	if err != nil {
		return store.OrderPage{}, fmt.Errorf("list orders: %w", err)
	}
	return page, nil
}

// loadCart reads a cart; a cart without a row is empty at version 0.
func loadCart(ctx context.Context, q querier, shopperID string) (store.Cart, error) {
	cart := store.Cart{ShopperID: shopperID}
	var micros int64
	err := q.QueryRowContext(ctx,
		`SELECT version, update_time FROM carts WHERE shopper_id = ?`, shopperID,
	).Scan(&cart.Version, &micros)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return cart, nil
	case err != nil:
		return store.Cart{}, fmt.Errorf("select cart: %w", err)
	}
	cart.UpdateTime = time.UnixMicro(micros).UTC()

	rows, err := q.QueryContext(ctx,
		`SELECT sku, quantity FROM cart_lines WHERE shopper_id = ? ORDER BY position`,
		shopperID)
	if err != nil {
		return store.Cart{}, fmt.Errorf("select cart lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l store.Line
		if err := rows.Scan(&l.SKU, &l.Quantity); err != nil {
			return store.Cart{}, fmt.Errorf("scan cart line: %w", err)
		}
		cart.Lines = append(cart.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return store.Cart{}, fmt.Errorf("select cart lines: %w", err)
	}
	return cart, nil
}

// lineQuantity returns how many units of sku the cart holds.
func lineQuantity(ctx context.Context, q querier, shopperID, sku string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx,
		`SELECT quantity FROM cart_lines WHERE shopper_id = ? AND sku = ?`, shopperID, sku,
	).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("select cart line: %w", err)
	}
	return n, nil
}

// bumpVersion creates the cart at version 1 or adds one to its version, and
// returns the new version.
func bumpVersion(ctx context.Context, q querier, shopperID string, now time.Time) (int64, error) {
	var version int64
	err := q.QueryRowContext(ctx, `
		INSERT INTO carts (shopper_id, version, update_time) VALUES (?, 1, ?)
		ON CONFLICT (shopper_id) DO UPDATE
		SET version = carts.version + 1, update_time = excluded.update_time
		RETURNING version`,
		shopperID, store.StoredTime(now).UnixMicro(),
	).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("bump cart version: %w", err)
	}
	return version, nil
}

// bumpIfChanged bumps the cart's version if res changed any rows.
func bumpIfChanged(ctx context.Context, q querier, res sql.Result, shopperID string,
	now time.Time) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("count changed lines: %w", err)
	}
	if n == 0 {
		return nil
	}
	_, err = bumpVersion(ctx, q, shopperID, now)
	return err
}

// setLine sets the quantity of a line. A new line gets position, which sorts
// it after every line added before.
func setLine(ctx context.Context, q querier, shopperID, sku string, quantity,
	position int64) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO cart_lines (shopper_id, sku, quantity, position) VALUES (?, ?, ?, ?)
		ON CONFLICT (shopper_id, sku) DO UPDATE SET quantity = excluded.quantity`,
		shopperID, sku, quantity, position)
	if err != nil {
		return fmt.Errorf("upsert cart line: %w", err)
	}
	return nil
}

func deleteLine(ctx context.Context, q querier, shopperID, sku string) error {
	_, err := q.ExecContext(ctx,
		`DELETE FROM cart_lines WHERE shopper_id = ? AND sku = ?`, shopperID, sku)
	if err != nil {
		return fmt.Errorf("delete cart line: %w", err)
	}
	return nil
}

func insertOrder(ctx context.Context, q querier, o store.Order) error {
	res, err := q.ExecContext(ctx, `
		INSERT INTO orders
			(order_id, shopper_id, status, currency, total, cart_version, create_time)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (order_id) DO NOTHING`,
		o.ID, o.ShopperID, string(o.Status), o.Total.Currency, o.Total.Amount,
		o.CartVersion, o.CreateTime.UnixMicro())
	if err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("insert order: %w", err)
	} else if n == 0 {
		return store.ErrOrderConflict
	}

	for i, l := range o.Lines {
		_, err := q.ExecContext(ctx, `
			INSERT INTO order_lines
				(order_id, position, sku, name, unit_price, quantity, line_total)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			o.ID, i, l.SKU, l.Name, l.UnitPrice.Amount, l.Quantity, l.LineTotal.Amount)
		if err != nil {
			return fmt.Errorf("insert order line: %w", err)
		}
	}
	return nil
}

const selectOrders = `
	SELECT order_id, shopper_id, status, currency, total, cart_version, create_time
	FROM orders`

// queryOrders runs a query of selectOrders and returns the orders without
// their lines.
func queryOrders(ctx context.Context, q querier, query string, args ...any) ([]store.Order, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("select orders: %w", err)
	}
	defer rows.Close()

	var orders []store.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		orders = append(orders, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select orders: %w", err)
	}
	return orders, nil
}

// loadOrder reads an order of any shopper, or fails with
// [store.ErrNotFound].
func loadOrder(ctx context.Context, q querier, orderID string) (store.Order, error) {
	o, err := scanOrder(q.QueryRowContext(ctx, selectOrders+` WHERE order_id = ?`, orderID))
	if err != nil {
		return store.Order{}, err
	}
	o.Lines, err = loadOrderLines(ctx, q, o.ID, o.Total.Currency)
	if err != nil {
		return store.Order{}, err
	}
	return o, nil
}

// scanOrder scans an order without its lines from a row of selectOrders.
func scanOrder(row interface{ Scan(...any) error }) (store.Order, error) {
	var (
		o      store.Order
		status string
		micros int64
	)
	err := row.Scan(&o.ID, &o.ShopperID, &status, &o.Total.Currency, &o.Total.Amount,
		&o.CartVersion, &micros)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Order{}, store.ErrNotFound
	case err != nil:
		return store.Order{}, fmt.Errorf("scan order: %w", err)
	}
	o.Status = store.OrderStatus(status)
	o.CreateTime = time.UnixMicro(micros).UTC()
	return o, nil
}

func loadOrderLines(ctx context.Context, q querier, orderID,
	currency string) ([]store.OrderLine, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT sku, name, unit_price, quantity, line_total
		FROM order_lines WHERE order_id = ? ORDER BY position`, orderID)
	if err != nil {
		return nil, fmt.Errorf("select order lines: %w", err)
	}
	defer rows.Close()

	var lines []store.OrderLine
	for rows.Next() {
		l := store.OrderLine{
			UnitPrice: store.Money{Currency: currency},
			LineTotal: store.Money{Currency: currency},
		}
		err := rows.Scan(&l.SKU, &l.Name, &l.UnitPrice.Amount, &l.Quantity, &l.LineTotal.Amount)
		if err != nil {
			return nil, fmt.Errorf("scan order line: %w", err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select order lines: %w", err)
	}
	return lines, nil
}

// checkNewLine checks that the cart may take one more line.
func checkNewLine(ctx context.Context, tx *sql.Tx, shopperID string) error {
	var n int
	err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM cart_lines WHERE shopper_id = ?`, shopperID).Scan(&n)
	if err != nil {
		return fmt.Errorf("count cart lines: %w", err)
	}
	return store.CheckNewLine(n)
}
