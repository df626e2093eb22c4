// Package sqlite implements [store.Store] on one SQLite database file, with
// the pure-Go driver modernc.org/sqlite.
//
// Writes go through a pool of exactly one connection whose transactions
// begin with BEGIN IMMEDIATE, so every read-modify-write transaction holds
// the database's write lock from its first statement: two of them can never
// interleave, not even from two processes sharing the file (they wait for
// each other up to the busy timeout). Reads use a separate pool and see the
// last committed state through the write-ahead log without blocking writes.
// With synchronous=FULL every acknowledged commit is on disk, so it survives
// a crash of the process or of the machine.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/tienda/tienda/internal/storedb"
	"github.com/tienda/tienda/services/inventory/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a [store.Store] on an SQLite file. It is safe for concurrent use.
type Store struct {
	writer *sql.DB
	reader *sql.DB
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the database file at path, brings its schema up to
// date and returns the store. Migrations are logged to logger, which may be
// nil.
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
	return &Store{writer: db.Writer, reader: db.Reader}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.reader.Close(), s.writer.Close())
}

// write runs fn in a transaction that holds the write lock from its start.
// Errors of fn are returned as they are.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()

	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const productColumns = `sku, name, description, category, price_currency, price_amount,
	available, reserved, sold, adjusted, stock_version, update_time`

func scanProduct(scan func(dest ...any) error) (store.Product, error) {
	var p store.Product
	var updated int64
	err := scan(&p.SKU, &p.Name, &p.Description, &p.Category,
		&p.Price.CurrencyCode, &p.Price.Amount,
		&p.Available, &p.Reserved, &p.Sold, &p.Adjusted, &p.StockVersion, &updated)
	p.UpdateTime = fromMicros(updated)
	return p, err
}

func queryProducts(
	ctx context.Context, q querier, query string, args ...any,
) ([]store.Product, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var products []store.Product
	for rows.Next() {
		p, err := scanProduct(rows.Scan)
		if err != nil {
			return nil, err
		}
		products = append(products, p)
	}
	return products, rows.Err()
}

func getProduct(ctx context.Context, q querier, sku string) (store.Product, error) {
	row := q.QueryRowContext(ctx, `SELECT `+productColumns+` FROM products WHERE sku = ?`, sku)
	p, err := scanProduct(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Product{}, store.ProductNotFound(sku)
	}
	if err != nil {
		return store.Product{}, fmt.Errorf("read product %s: %w", sku, err)
	}
	return p, nil
}

// GetProduct implements [store.Store].
func (s *Store) GetProduct(ctx context.Context, sku string) (store.Product, error) {
	return getProduct(ctx, s.reader, sku)
}

// ListProducts implements [store.Store].
func (s *Store) ListProducts(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	q, err := store.PrepareList(opts)
	if err != nil {
		return store.Page{}, err
	}

	var where []string
	var args []any
	if q.After != "" {
		where = append(where, "sku > ?")
		args = append(args, q.After)
	}
	if q.Category != "" {
		where = append(where, "category = ?")
		args = append(args, q.Category)
	}
	for _, w := range q.Words {
		where = append(where, "instr(search_text, ?) > 0")
		args = append(args, w)
	}
	query := `SELECT ` + productColumns + ` FROM products`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY sku LIMIT ?`
	args = append(args, q.Limit+1)

	products, err := queryProducts(ctx, s.reader, query, args...)
	if err != nil {
		return store.Page{}, fmt.Errorf("list products: %w", err)
	}
	return q.Page(products), nil
}

// batchSize bounds the number of parameters of one IN list.
const batchSize = 500

// productsBySKU reads the products among skus, keyed by SKU.
func productsBySKU(
	ctx context.Context, q querier, skus []string,
) (map[string]store.Product, error) {
	found := make(map[string]store.Product, len(skus))
	for chunk := range slices.Chunk(skus, batchSize) {
		query := `SELECT ` + productColumns + ` FROM products WHERE sku IN (` +
			placeholders(len(chunk)) + `)`
		products, err := queryProducts(ctx, q, query, anys(chunk)...)
		if err != nil {
			return nil, err
		}
		for _, p := range products {
			found[p.SKU] = p
		}
	}
	return found, nil
}

// BatchGetProducts implements [store.Store].
func (s *Store) BatchGetProducts(
	ctx context.Context, skus []string,
) ([]store.Product, []string, error) {
	skus = store.UniqueSKUs(skus)
	bySKU, err := productsBySKU(ctx, s.reader, skus)
	if err != nil {
		return nil, nil, fmt.Errorf("read products: %w", err)
	}
	var found []store.Product
	var missing []string
	for _, sku := range skus {
		if p, ok := bySKU[sku]; ok {
			found = append(found, p)
		} else {
			missing = append(missing, sku)
		}
	}
	return found, missing, nil
}

// StockLevels implements [store.Store].
func (s *Store) StockLevels(ctx context.Context, skus []string) ([]store.StockLevel, error) {
	bySKU, err := productsBySKU(ctx, s.reader, store.UniqueSKUs(skus))
	if err != nil {
		return nil, fmt.Errorf("read stock levels: %w", err)
	}
	levels := make([]store.StockLevel, 0, len(bySKU))
	for _, p := range bySKU {
		levels = append(levels, store.StockLevel{
			SKU: p.SKU, Available: p.Available, Version: p.StockVersion,
		})
	}
	return levels, nil
}

// UpsertProduct implements [store.Store].
func (s *Store) UpsertProduct(
	ctx context.Context, p store.Product, now time.Time,
) (store.Product, error) {
	if err := store.ValidateProduct(p); err != nil {
		return store.Product{}, err
	}
	var out store.Product
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = upsertProduct(ctx, tx, p, now)
		return err
	})
	return out, err
}

func upsertProduct(
	ctx context.Context, tx *sql.Tx, p store.Product, now time.Time,
) (store.Product, error) {
	row := tx.QueryRowContext(ctx, `
		INSERT INTO products (sku, name, description, category, price_currency, price_amount,
			search_text, create_time, update_time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sku) DO UPDATE SET
			name = excluded.name,
			description = excluded.description,
			category = excluded.category,
			price_currency = excluded.price_currency,
			price_amount = excluded.price_amount,
			search_text = excluded.search_text,
			update_time = excluded.update_time
		RETURNING `+productColumns,
		p.SKU, p.Name, p.Description, p.Category, p.Price.CurrencyCode, p.Price.Amount,
		store.SearchText(p), micros(now), micros(now))
	out, err := scanProduct(row.Scan)
	if err != nil {
		return store.Product{}, fmt.Errorf("upsert product %s: %w", p.SKU, err)
	}
	return out, nil
}

// AdjustStock implements [store.Store].
func (s *Store) AdjustStock(
	ctx context.Context, sku string, delta int64, reason string, now time.Time,
) (store.Product, error) {
	var out store.Product
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = adjustStock(ctx, tx, sku, delta, reason, now)
		return err
	})
	return out, err
}

func adjustStock(
	ctx context.Context, tx *sql.Tx, sku string, delta int64, reason string, now time.Time,
) (store.Product, error) {
	p, err := getProduct(ctx, tx, sku)
	if err != nil {
		return store.Product{}, err
	}
	if p.Available+delta < 0 {
		return store.Product{}, &store.ShortageError{Shortages: []store.Shortage{
			{SKU: sku, Requested: -delta, Available: p.Available},
		}}
	}

	row := tx.QueryRowContext(ctx, `
		UPDATE products SET
			available = available + ?1,
			adjusted = adjusted + ?1,
			stock_version = stock_version + 1,
			update_time = ?2
		WHERE sku = ?3
		RETURNING `+productColumns,
		delta, micros(now), sku)
	if p, err = scanProduct(row.Scan); err != nil {
		return store.Product{}, fmt.Errorf("adjust stock of %s: %w", sku, err)
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO stock_adjustments (sku, delta, reason, create_time) VALUES (?, ?, ?, ?)`,
		sku, delta, reason, micros(now))
	if err != nil {
		return store.Product{}, fmt.Errorf("record stock adjustment of %s: %w", sku, err)
	}
	return p, nil
}

// Reserve implements [store.Store].
func (s *Store) Reserve(
	ctx context.Context, id string, lines []store.Line, now, expireTime time.Time,
) (store.Reservation, error) {
	if err := store.ValidateReservationID(id); err != nil {
		return store.Reservation{}, err
	}
	lines, err := store.NormalizeLines(lines)
	if err != nil {
		return store.Reservation{}, err
	}

	var out store.Reservation
	err = s.write(ctx, func(tx *sql.Tx) error {
		existing, err := getReservation(ctx, tx, id)
		renew := false
		switch {
		case err == nil && existing.State == store.StateReleased:
			// A released hold bought nothing, so its id may hold stock
			// again, for whatever lines the caller asks for now.
			renew = true
		case err == nil && store.SameLines(existing.Lines, lines):
			out = existing
			return nil
		case err == nil:
			return fmt.Errorf("reservation %q: %w", id, store.ErrReservationConflict)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := checkAvailable(ctx, tx, lines); err != nil {
			return err
		}

		out = store.Reservation{
			ID:         id,
			Lines:      lines,
			State:      store.StateHeld,
			ExpireTime: store.Truncate(expireTime),
			CreateTime: store.Truncate(now),
			UpdateTime: store.Truncate(now),
		}
		if renew {
			out.CreateTime = existing.CreateTime
			_, err = tx.ExecContext(ctx, `DELETE FROM reservation_lines WHERE reservation_id = ?`, id)
			if err != nil {
				return fmt.Errorf("drop released reservation lines: %w", err)
			}
			_, err = tx.ExecContext(ctx, `
				UPDATE reservations SET state = ?, expire_time = ?, update_time = ? WHERE id = ?`,
				store.StateHeld.String(), micros(expireTime), micros(now), id)
		} else {
			_, err = tx.ExecContext(ctx, `
				INSERT INTO reservations (id, state, expire_time, create_time, update_time)
				VALUES (?, ?, ?, ?, ?)`,
				id, store.StateHeld.String(), micros(expireTime), micros(now), micros(now))
		}
		if err != nil {
			return fmt.Errorf("write reservation: %w", err)
		}
		for _, l := range lines {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO reservation_lines (reservation_id, sku, quantity) VALUES (?, ?, ?)`,
				id, l.SKU, l.Quantity)
			if err != nil {
				return fmt.Errorf("insert reservation line %s: %w", l.SKU, err)
			}
			if err := moveStock(ctx, tx, l, "available", "reserved", now); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// checkAvailable returns a [store.ShortageError] naming every line that
// asks for more than its product has available. It checks every line before
// the caller changes anything, so that the error is complete.
func checkAvailable(ctx context.Context, tx *sql.Tx, lines []store.Line) error {
	var short []store.Shortage
	for _, l := range lines {
		var available int64
		err := tx.QueryRowContext(ctx,
			`SELECT available FROM products WHERE sku = ?`, l.SKU).Scan(&available)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ProductNotFound(l.SKU)
		}
		if err != nil {
			return fmt.Errorf("read stock of %s: %w", l.SKU, err)
		}
		if available < l.Quantity {
			short = append(short, store.Shortage{
				SKU: l.SKU, Requested: l.Quantity, Available: available,
			})
		}
	}
	if len(short) > 0 {
		return &store.ShortageError{Shortages: short}
	}
	return nil
}

// moveStock moves a line's quantity from one stock bucket to another. The
// bucket names are constants of this package, never input.
func moveStock(
	ctx context.Context, tx *sql.Tx, l store.Line, from, to string, now time.Time,
) error {
	_, err := tx.ExecContext(ctx, `
		UPDATE products SET
			`+from+` = `+from+` - ?1,
			`+to+` = `+to+` + ?1,
			stock_version = stock_version + 1,
			update_time = ?2
		WHERE sku = ?3`,
		l.Quantity, micros(now), l.SKU)
	if err != nil {
		return fmt.Errorf("move %d units of %s from %s to %s: %w", l.Quantity, l.SKU, from, to, err)
	}
	return nil
}

// Commit implements [store.Store].
func (s *Store) Commit(ctx context.Context, id string, now time.Time) (store.Reservation, error) {
	var out store.Reservation
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := getReservation(ctx, tx, id)
		if err != nil {
			return err
		}
		switch r.State {
		case store.StateCommitted:
			out = r
			return nil
		case store.StateReleased:
			// The hold expired or was released, yet the caller's order
			// exists: take the stock again while it is there.
			if err := checkAvailable(ctx, tx, r.Lines); err != nil {
				return err
			}
			for _, l := range r.Lines {
				if err := moveStock(ctx, tx, l, "available", "reserved", now); err != nil {
					return err
				}
			}
		}
		out, err = closeReservation(ctx, tx, r, store.StateCommitted, now)
		return err
	})
	return out, err
}

// Release implements [store.Store].
func (s *Store) Release(ctx context.Context, id string, now time.Time) (*store.Reservation, error) {
	var out *store.Reservation
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := getReservation(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		switch r.State {
		case store.StateReleased:
			out = &r
			return nil
		case store.StateCommitted:
			return fmt.Errorf("reservation %q was committed: %w", id, store.ErrReservationClosed)
		}
		r, err = closeReservation(ctx, tx, r, store.StateReleased, now)
		out = &r
		return err
	})
	return out, err
}

// closeReservation moves the stock of a held reservation to sold or back to
// available, and records its new state.
func closeReservation(
	ctx context.Context, tx *sql.Tx, r store.Reservation, state store.State, now time.Time,
) (store.Reservation, error) {
	to := "sold"
	if state == store.StateReleased {
		to = "available"
	}
	for _, l := range r.Lines {
		if err := moveStock(ctx, tx, l, "reserved", to, now); err != nil {
			return store.Reservation{}, err
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE reservations SET state = ?, update_time = ? WHERE id = ?`,
		state.String(), micros(now), r.ID)
	if err != nil {
		return store.Reservation{}, fmt.Errorf("update reservation: %w", err)
	}
	r.State = state
	r.UpdateTime = store.Truncate(now)
	return r, nil
}

// ReleaseExpired implements [store.Store].
func (s *Store) ReleaseExpired(
	ctx context.Context, now time.Time, limit int,
) ([]store.Reservation, error) {
	var released []store.Reservation
	err := s.write(ctx, func(tx *sql.Tx) error {
		ids, err := expiredIDs(ctx, tx, now, limit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			r, err := getReservation(ctx, tx, id)
			if err != nil {
				return err
			}
			if r, err = closeReservation(ctx, tx, r, store.StateReleased, now); err != nil {
				return err
			}
			released = append(released, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return released, nil
}

func expiredIDs(ctx context.Context, tx *sql.Tx, now time.Time, limit int) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT id FROM reservations
		WHERE state = 'held' AND expire_time <= ?
		ORDER BY expire_time, id
		LIMIT ?`,
		micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("find expired reservations: %w", err)
	}
	defer rows.Close()

	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find expired reservations: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find expired reservations: %w", err)
	}
	return ids, nil
}

// GetReservation implements [store.Store].
func (s *Store) GetReservation(ctx context.Context, id string) (store.Reservation, error) {
	return getReservation(ctx, s.reader, id)
}

func getReservation(ctx context.Context, q querier, id string) (store.Reservation, error) {
	r := store.Reservation{ID: id}
	var state string
	var expire, created, updated int64
	err := q.QueryRowContext(ctx, `
		SELECT state, expire_time, create_time, update_time FROM reservations WHERE id = ?`,
		id).Scan(&state, &expire, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Reservation{}, store.ReservationNotFound(id)
	}
	if err != nil {
		return store.Reservation{}, fmt.Errorf("read reservation: %w", err)
	}
	if r.State, err = store.ParseState(state); err != nil {
		return store.Reservation{}, fmt.Errorf("read reservation: %w", err)
	}
	r.ExpireTime = fromMicros(expire)
	r.CreateTime = fromMicros(created)
	r.UpdateTime = fromMicros(updated)

	rows, err := q.QueryContext(ctx, `
		SELECT sku, quantity FROM reservation_lines WHERE reservation_id = ? ORDER BY sku`, id)
	if err != nil {
		return store.Reservation{}, fmt.Errorf("read reservation lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l store.Line
		if err := rows.Scan(&l.SKU, &l.Quantity); err != nil {
			return store.Reservation{}, fmt.Errorf("read reservation lines: %w", err)
		}
		r.Lines = append(r.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return store.Reservation{}, fmt.Errorf("read reservation lines: %w", err)
	}
	return r, nil
}

// LoadCatalog implements [store.Store].
func (s *Store) LoadCatalog(
	ctx context.Context, items []store.CatalogItem, now time.Time,
) (int, error) {
	for _, it := range items {
		if err := store.ValidateProduct(it.Product); err != nil {
			return 0, err
		}
		if it.InitialStock < 0 {
			return 0, fmt.Errorf("%w: product %s has negative initial stock",
				store.ErrInvalidArgument, it.Product.SKU)
		}
	}

	loaded := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		var exists bool
		row := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM products)`)
		if err := row.Scan(&exists); err != nil {
			return fmt.Errorf("count products: %w", err)
		}
		if exists {
			return nil
		}
		for _, it := range items {
			if _, err := upsertProduct(ctx, tx, it.Product, now); err != nil {
				return err
			}
			if it.InitialStock > 0 {
				sku, n := it.Product.SKU, it.InitialStock
				if _, err := adjustStock(ctx, tx, sku, n, "initial stock", now); err != nil {
					return err
				}
			}
		}
		loaded = len(items)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return loaded, nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
