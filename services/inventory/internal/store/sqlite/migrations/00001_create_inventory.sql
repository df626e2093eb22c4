-- +goose Up

-- Stock buckets are checked by the database too, so that a bug in the Go code
-- fails a transaction instead of corrupting the books. Times are Unix
-- microseconds in UTC.
CREATE TABLE products (
    sku            TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    price_currency TEXT    NOT NULL,
    price_amount   INTEGER NOT NULL CHECK (price_amount >= 0),
    -- Lowercased SKU, name, description and category that list queries search.
    search_text    TEXT    NOT NULL,
    available      INTEGER NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved       INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold           INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    adjusted       INTEGER NOT NULL DEFAULT 0,
    stock_version  INTEGER NOT NULL DEFAULT 0,
    create_time    INTEGER NOT NULL,
    update_time    INTEGER NOT NULL,
    CHECK (available + reserved + sold = adjusted)
) STRICT;

CREATE INDEX products_by_category ON products (category, sku);

CREATE TABLE reservations (
    id          TEXT    PRIMARY KEY,
    state       TEXT    NOT NULL CHECK (state IN ('held', 'committed', 'released')),
    expire_time INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
) STRICT;

-- The sweeper looks for held reservations past their expire time.
CREATE INDEX reservations_held_by_expiry ON reservations (expire_time) WHERE state = 'held';

CREATE TABLE reservation_lines (
    reservation_id TEXT    NOT NULL REFERENCES reservations (id),
    sku            TEXT    NOT NULL REFERENCES products (sku),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, sku)
) STRICT;

CREATE INDEX reservation_lines_by_sku ON reservation_lines (sku);

-- Every change of adjusted stock, with its reason, for audits.
CREATE TABLE stock_adjustments (
    id          INTEGER PRIMARY KEY,
    sku         TEXT    NOT NULL REFERENCES products (sku),
    delta       INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    create_time INTEGER NOT NULL
) STRICT;

CREATE INDEX stock_adjustments_by_sku ON stock_adjustments (sku, id);

-- +goose Down
DROP TABLE stock_adjustments;
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE products;
