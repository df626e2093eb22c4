// Package postgres implements [store.Store] on PostgreSQL with pgx, for
// deployments that run several replicas of the inventory service on one
// database.
//
// # Concurrency
//
// Transactions run at READ COMMITTED and lock what they change, always in
// the same order, so that replicas writing at once neither oversell nor
// deadlock:
//
//  1. at most one reservation row, first (INSERT … ON CONFLICT DO NOTHING
//     for a new id, SELECT … FOR UPDATE for an existing one), except the
//     sweeper, which takes many but skips those that are locked;
//  2. then product rows, in SKU order (SELECT … ORDER BY sku FOR UPDATE),
//     before any of them is updated.
//
// A transaction that fails with a serialization failure or a detected
// deadlock, which engines that speak the PostgreSQL protocol at stricter
// isolation may report, is retried a few times. Every statement honours the
// context's deadline.
//
// # Migrations
//
// The schema is migrated at [Open] under a session-level advisory lock, so
// that replicas starting together apply each migration once.
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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tienda/tienda/internal/storedb"
	"github.com/tienda/tienda/services/inventory/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a [store.Store] on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database that dsn names, brings its schema up to
// date and returns the store. Migrations are logged to logger, which may be
// nil; replicas that open the database at the same time take turns.
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
		Application: "tienda-inventory",
	}, logger)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection of the pool, waiting for those in use to be
// released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// maxAttempts bounds how often a transaction runs when the database asks
// for a retry.
const maxAttempts = 5

// inTx runs fn in a transaction, again if the database reports a
// serialization failure or a deadlock. Errors of fn are returned as they
// are; fn must not keep state from an attempt that failed.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		// Codes 40001 and 40P01 are serialization_failure and
		// deadlock_detected.
		var pgErr *pgconn.PgError
		retry := errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
		if !retry || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
	}
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const productColumns = `sku, name, description, category, price_currency, price_amount,
	available, reserved, sold, adjusted, stock_version, update_time`

func scanProduct(row pgx.Row) (store.Product, error) {
	var p store.Product
	err := row.Scan(&p.SKU, &p.Name, &p.Description, &p.Category,
		&p.Price.CurrencyCode, &p.Price.Amount,
		&p.Available, &p.Reserved, &p.Sold, &p.Adjusted, &p.StockVersion, &p.UpdateTime)
	p.UpdateTime = p.UpdateTime.UTC()
	return p, err
}

func queryProducts(
	ctx context.Context, q querier, sql string, args ...any,
) ([]store.Product, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Product, error) {
		return scanProduct(row)
	})
}

func getProduct(ctx context.Context, q querier, sku string) (store.Product, error) {
	row := q.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE sku = $1`, sku)
	p, err := scanProduct(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Product{}, store.ProductNotFound(sku)
	}
	if err != nil {
		return store.Product{}, fmt.Errorf("read product %s: %w", sku, err)
	}
	return p, nil
}

// GetProduct implements [store.Store].
func (s *Store) GetProduct(ctx context.Context, sku string) (store.Product, error) {
	return getProduct(ctx, s.pool, sku)
}

// ListProducts implements [store.Store].
func (s *Store) ListProducts(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	q, err := store.PrepareList(opts)
	if err != nil {
		return store.Page{}, err
	}
	// Empty filters match everything, so one statement serves every
	// combination; each word must occur in the search text.
	products, err := queryProducts(ctx, s.pool, `
		SELECT `+productColumns+` FROM products
		WHERE sku > $1
			AND ($2 = '' OR category = $2)
			AND NOT EXISTS (
				SELECT 1 FROM unnest($3::text[]) AS w (word)
				WHERE strpos(search_text, w.word) = 0)
		ORDER BY sku
		LIMIT $4`,
		q.After, q.Category, q.Words, q.Limit+1)
	if err != nil {
		return store.Page{}, fmt.Errorf("list products: %w", err)
	}
	return q.Page(products), nil
}

// BatchGetProducts implements [store.Store].
func (s *Store) BatchGetProducts(
	ctx context.Context, skus []string,
) ([]store.Product, []string, error) {
	skus = store.UniqueSKUs(skus)
	products, err := queryProducts(ctx, s.pool,
		`SELECT `+productColumns+` FROM products WHERE sku = ANY ($1)`, skus)
	if err != nil {
		return nil, nil, fmt.Errorf("read products: %w", err)
	}
	bySKU := make(map[string]store.Product, len(products))
	for _, p := range products {
		bySKU[p.SKU] = p
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
	rows, err := s.pool.Query(ctx, `
		SELECT sku, available, stock_version FROM products WHERE sku = ANY ($1)`,
		store.UniqueSKUs(skus))
	if err != nil {
		return nil, fmt.Errorf("read stock levels: %w", err)
	}
	levels, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.StockLevel])
	if err != nil {
		return nil, fmt.Errorf("read stock levels: %w", err)
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
	// One statement is atomic on its own.
	return upsertProduct(ctx, s.pool, p, now)
}

func upsertProduct(
	ctx context.Context, q querier, p store.Product, now time.Time,
) (store.Product, error) {
	out, err := scanProduct(q.QueryRow(ctx, `
		INSERT INTO products (sku, name, description, category, price_currency, price_amount,
			search_text, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
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
		store.SearchText(p), store.Truncate(now)))
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = adjustStock(ctx, tx, sku, delta, reason, now)
		return err
	})
	return out, err
}

func adjustStock(
	ctx context.Context, tx pgx.Tx, sku string, delta int64, reason string, now time.Time,
) (store.Product, error) {
	// The condition makes the check and the change one atomic step.
	p, err := scanProduct(tx.QueryRow(ctx, `
		UPDATE products SET
			available = available + $2,
			adjusted = adjusted + $2,
			stock_version = stock_version + 1,
			update_time = $3
		WHERE sku = $1 AND available + $2 >= 0
		RETURNING `+productColumns,
		sku, delta, store.Truncate(now)))
	if errors.Is(err, pgx.ErrNoRows) {
		current, err := getProduct(ctx, tx, sku)
		if err != nil {
			return store.Product{}, err
		}
		return store.Product{}, &store.ShortageError{Shortages: []store.Shortage{
			{SKU: sku, Requested: -delta, Available: current.Available},
		}}
	}
	if err != nil {
		return store.Product{}, fmt.Errorf("adjust stock of %s: %w", sku, err)
	}

	_, err = tx.Exec(ctx, `
		INSERT INTO stock_adjustments (sku, delta, reason, create_time) VALUES ($1, $2, $3, $4)`,
		sku, delta, reason, store.Truncate(now))
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
	skus, quantities := splitLines(lines)
	now, expireTime = store.Truncate(now), store.Truncate(expireTime)

	var out store.Reservation
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// Claim the id first. A concurrent transaction with the same id
		// makes this wait until it ends; if it committed, its reservation
		// is the answer.
		tag, err := tx.Exec(ctx, `
			INSERT INTO reservations (id, state, expire_time, create_time, update_time)
			VALUES ($1, 'held', $2, $3, $3)
			ON CONFLICT (id) DO NOTHING`,
			id, expireTime, now)
		if err != nil {
			return fmt.Errorf("insert reservation: %w", err)
		}
		createTime := now
		if tag.RowsAffected() == 0 {
			existing, err := getReservation(ctx, tx, id, true)
			if err != nil {
				return err
			}
			if existing.State != store.StateReleased {
				if !store.SameLines(existing.Lines, lines) {
					return fmt.Errorf("reservation %q: %w", id, store.ErrReservationConflict)
				}
				out = existing
				return nil
			}
			// A released hold bought nothing, so its id may hold stock
			// again, for whatever lines the caller asks for now.
			createTime = existing.CreateTime
			_, err = tx.Exec(ctx, `DELETE FROM reservation_lines WHERE reservation_id = $1`, id)
			if err != nil {
				return fmt.Errorf("drop released reservation lines: %w", err)
			}
			_, err = tx.Exec(ctx, `
				UPDATE reservations SET state = 'held', expire_time = $2, update_time = $3
				WHERE id = $1`, id, expireTime, now)
			if err != nil {
				return fmt.Errorf("renew reservation: %w", err)
			}
		}

		if err := takeStock(ctx, tx, lines, "reserved", now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO reservation_lines (reservation_id, sku, quantity)
			SELECT $1, l.sku, l.quantity
			FROM unnest($2::text[], $3::bigint[]) AS l (sku, quantity)`,
			id, skus, quantities)
		if err != nil {
			return fmt.Errorf("insert reservation lines: %w", err)
		}
		out = store.Reservation{
			ID:         id,
			Lines:      lines,
			State:      store.StateHeld,
			ExpireTime: expireTime,
			CreateTime: createTime,
			UpdateTime: now,
		}
		return nil
	})
	return out, err
}

// takeStock locks the products of lines and moves their quantities from
// available to the bucket to, or changes nothing and returns a
// [store.ShortageError] naming every line that asks for more than is
// available.
func takeStock(ctx context.Context, tx pgx.Tx, lines []store.Line, to string, now time.Time) error {
	skus, quantities := splitLines(lines)
	available, err := lockProducts(ctx, tx, skus)
	if err != nil {
		return err
	}
	var short []store.Shortage
	for _, l := range lines {
		a, ok := available[l.SKU]
		if !ok {
			return store.ProductNotFound(l.SKU)
		}
		if a < l.Quantity {
			short = append(short, store.Shortage{SKU: l.SKU, Requested: l.Quantity, Available: a})
		}
	}
	if len(short) > 0 {
		return &store.ShortageError{Shortages: short}
	}
	return moveStock(ctx, tx, skus, quantities, "available", to, now)
}

// lockProducts locks the products in SKU order and returns what each of
// them has available. Unknown SKUs are left out.
func lockProducts(ctx context.Context, tx pgx.Tx, sortedSKUs []string) (map[string]int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT sku, available FROM products WHERE sku = ANY ($1) ORDER BY sku FOR UPDATE`,
		sortedSKUs)
	if err != nil {
		return nil, fmt.Errorf("lock products: %w", err)
	}
	defer rows.Close()

	available := make(map[string]int64, len(sortedSKUs))
	for rows.Next() {
		var sku string
		var a int64
		if err := rows.Scan(&sku, &a); err != nil {
			return nil, fmt.Errorf("lock products: %w", err)
		}
		available[sku] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock products: %w", err)
	}
	return available, nil
}

// moveStock moves quantities[i] units of skus[i] from one stock bucket to
// another. The products must be locked already. The bucket names are
// constants of this package, never input.
func moveStock(
	ctx context.Context, tx pgx.Tx, skus []string, quantities []int64,
	from, to string, now time.Time,
) error {
	tag, err := tx.Exec(ctx, `
		UPDATE products AS p SET
			`+from+` = p.`+from+` - l.quantity,
			`+to+` = p.`+to+` + l.quantity,
			stock_version = p.stock_version + 1,
			update_time = $3
		FROM unnest($1::text[], $2::bigint[]) AS l (sku, quantity)
		WHERE p.sku = l.sku`,
		skus, quantities, now)
	if err != nil {
		return fmt.Errorf("move stock from %s to %s: %w", from, to, err)
	}
	if tag.RowsAffected() != int64(len(skus)) {
		return fmt.Errorf("move stock from %s to %s: updated %d of %d products",
			from, to, tag.RowsAffected(), len(skus))
	}
	return nil
}

func splitLines(lines []store.Line) ([]string, []int64) {
	skus := make([]string, len(lines))
	quantities := make([]int64, len(lines))
	for i, l := range lines {
		skus[i], quantities[i] = l.SKU, l.Quantity
	}
	return skus, quantities
}

// Commit implements [store.Store].
func (s *Store) Commit(ctx context.Context, id string, now time.Time) (store.Reservation, error) {
	var out store.Reservation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		r, err := getReservation(ctx, tx, id, true)
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
			if err := takeStock(ctx, tx, r.Lines, "reserved", now); err != nil {
				return err
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = nil
		r, err := getReservation(ctx, tx, id, true)
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

// closeReservation moves the stock of a held reservation, whose row the
// transaction has locked, to sold or back to available, and records its new
// state.
func closeReservation(
	ctx context.Context, tx pgx.Tx, r store.Reservation, state store.State, now time.Time,
) (store.Reservation, error) {
	now = store.Truncate(now)
	to := "sold"
	if state == store.StateReleased {
		to = "available"
	}
	skus, quantities := splitLines(r.Lines)
	if _, err := lockProducts(ctx, tx, skus); err != nil {
		return store.Reservation{}, err
	}
	if err := moveStock(ctx, tx, skus, quantities, "reserved", to, now); err != nil {
		return store.Reservation{}, err
	}
	_, err := tx.Exec(ctx, `UPDATE reservations SET state = $2, update_time = $3 WHERE id = $1`,
		r.ID, state.String(), now)
	if err != nil {
		return store.Reservation{}, fmt.Errorf("update reservation: %w", err)
	}
	r.State, r.UpdateTime = state, now
	return r, nil
}

// ReleaseExpired implements [store.Store]. Replicas may sweep at the same
// time: each skips the reservations another one has locked.
func (s *Store) ReleaseExpired(
	ctx context.Context, now time.Time, limit int,
) ([]store.Reservation, error) {
	now = store.Truncate(now)
	var released []store.Reservation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id FROM reservations
			WHERE state = 'held' AND expire_time <= $1
			ORDER BY expire_time, id
			LIMIT $2
			FOR UPDATE SKIP LOCKED`,
			now, limit)
		if err != nil {
			return fmt.Errorf("find expired reservations: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("find expired reservations: %w", err)
		}
		if len(ids) == 0 {
			released = nil
			return nil
		}

		if released, err = getReservations(ctx, tx, ids); err != nil {
			return err
		}
		// Return the stock of all of them at once, locking each product
		// once and in SKU order.
		total := make(map[string]int64)
		for _, r := range released {
			for _, l := range r.Lines {
				total[l.SKU] += l.Quantity
			}
		}
		var lines []store.Line
		for sku, q := range total {
			lines = append(lines, store.Line{SKU: sku, Quantity: q})
		}
		if lines, err = store.NormalizeLines(lines); err != nil {
			return fmt.Errorf("sum released lines: %w", err)
		}
		skus, quantities := splitLines(lines)
		if _, err := lockProducts(ctx, tx, skus); err != nil {
			return err
		}
		if err := moveStock(ctx, tx, skus, quantities, "reserved", "available", now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE reservations SET state = 'released', update_time = $2 WHERE id = ANY ($1)`,
			ids, now)
		if err != nil {
			return fmt.Errorf("update reservations: %w", err)
		}
		for i := range released {
			released[i].State, released[i].UpdateTime = store.StateReleased, now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return released, nil
}

// GetReservation implements [store.Store].
func (s *Store) GetReservation(ctx context.Context, id string) (store.Reservation, error) {
	return getReservation(ctx, s.pool, id, false)
}

// getReservation reads one reservation, and locks its row if forUpdate.
func getReservation(
	ctx context.Context, q querier, id string, forUpdate bool,
) (store.Reservation, error) {
	query := `
		SELECT id, state, expire_time, create_time, update_time FROM reservations
		WHERE id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	r, err := scanReservation(q.QueryRow(ctx, query, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Reservation{}, store.ReservationNotFound(id)
	}
	if err != nil {
		return store.Reservation{}, fmt.Errorf("read reservation: %w", err)
	}

	rows, err := q.Query(ctx, `
		SELECT sku, quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY sku`, id)
	if err != nil {
		return store.Reservation{}, fmt.Errorf("read reservation lines: %w", err)
	}
	if r.Lines, err = pgx.CollectRows(rows, pgx.RowToStructByPos[store.Line]); err != nil {
		return store.Reservation{}, fmt.Errorf("read reservation lines: %w", err)
	}
	return r, nil
}

// getReservations reads the reservations with the given ids, in that order.
func getReservations(ctx context.Context, tx pgx.Tx, ids []string) ([]store.Reservation, error) {
	rows, err := tx.Query(ctx, `
		SELECT id, state, expire_time, create_time, update_time FROM reservations
		WHERE id = ANY ($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read reservations: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Reservation, error) {
		return scanReservation(row)
	})
	if err != nil {
		return nil, fmt.Errorf("read reservations: %w", err)
	}
	byID := make(map[string]*store.Reservation, len(list))
	for i := range list {
		byID[list[i].ID] = &list[i]
	}

	rows, err = tx.Query(ctx, `
		SELECT reservation_id, sku, quantity FROM reservation_lines
		WHERE reservation_id = ANY ($1)
		ORDER BY reservation_id, sku`, ids)
	if err != nil {
		return nil, fmt.Errorf("read reservation lines: %w", err)
	}
	var id string
	var l store.Line
	_, err = pgx.ForEachRow(rows, []any{&id, &l.SKU, &l.Quantity}, func() error {
		if r := byID[id]; r != nil {
			r.Lines = append(r.Lines, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read reservation lines: %w", err)
	}

	out := make([]store.Reservation, 0, len(ids))
	for _, id := range ids {
		if r := byID[id]; r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

func scanReservation(row pgx.Row) (store.Reservation, error) {
	var r store.Reservation
	var state string
	if err := row.Scan(&r.ID, &state, &r.ExpireTime, &r.CreateTime, &r.UpdateTime); err != nil {
		return store.Reservation{}, err
	}
	var err error
	if r.State, err = store.ParseState(state); err != nil {
		return store.Reservation{}, err
	}
	r.ExpireTime = r.ExpireTime.UTC()
	r.CreateTime = r.CreateTime.UTC()
	r.UpdateTime = r.UpdateTime.UTC()
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
	// Skip the lock in the common case of a store that has products.
	empty, err := isEmpty(ctx, s.pool)
	if err != nil || !empty {
		return 0, err
	}

	loaded := 0
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		loaded = 0
		// The lock conflicts with itself and with every row change, so the
		// table stays empty until this transaction has filled it, and a
		// replica starting at the same time waits, then finds products.
		if _, err := tx.Exec(ctx, `LOCK TABLE products IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock products: %w", err)
		}
		if empty, err := isEmpty(ctx, tx); err != nil || !empty {
			return err
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

func isEmpty(ctx context.Context, q querier) (bool, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM products)`).Scan(&exists); err != nil {
		return false, fmt.Errorf("count products: %w", err)
	}
	return !exists, nil
}
