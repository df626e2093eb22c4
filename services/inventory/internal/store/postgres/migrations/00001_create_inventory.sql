-- +goose Up

-- SKUs use the "C" collation so that they sort byte by byte, the same on
-- every server whatever its locale: list pages and lock order depend on it.
-- Stock buckets are checked by the database too, so that a bug in the Go code
-- fails a transaction instead of corrupting the books.
CREATE TABLE products (
    sku            text COLLATE "C" PRIMARY KEY,
    name           text        NOT NULL,
    description    text        NOT NULL,
    category       text        NOT NULL,
    price_currency text        NOT NULL,
    price_amount   bigint      NOT NULL CHECK (price_amount >= 0),
    -- Lowercased SKU, name, description and category that list queries search.
    search_text    text        NOT NULL,
    available      bigint      NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved       bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold           bigint      NOT NULL DEFAULT 0 CHECK (sold >= 0),
    adjusted       bigint      NOT NULL DEFAULT 0,
    stock_version  bigint      NOT NULL DEFAULT 0,
    create_time    timestamptz NOT NULL,
    update_time    timestamptz NOT NULL,
    CONSTRAINT products_stock_balances CHECK (available + reserved + sold = adjusted)
);

CREATE INDEX products_by_category ON products (category, sku);

CREATE TABLE reservations (
    id          text        PRIMARY KEY,
    state       text        NOT NULL CHECK (state IN ('held', 'committed', 'released')),
    expire_time timestamptz NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL
);

-- The sweeper looks for held reservations past their expire time.
CREATE INDEX reservations_held_by_expiry ON reservations (expire_time) WHERE state = 'held';

CREATE TABLE reservation_lines (
    reservation_id text             NOT NULL REFERENCES reservations (id),
    sku            text COLLATE "C" NOT NULL REFERENCES products (sku),
    quantity       bigint           NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, sku)
);

CREATE INDEX reservation_lines_by_sku ON reservation_lines (sku);

-- Every change of adjusted stock, with its reason, for audits.
CREATE TABLE stock_adjustments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text COLLATE "C" NOT NULL REFERENCES products (sku),
    delta       bigint           NOT NULL,
    reason      text             NOT NULL,
    create_time timestamptz      NOT NULL
);

CREATE INDEX stock_adjustments_by_sku ON stock_adjustments (sku, id);

-- +goose Down
DROP TABLE stock_adjustments;
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE products;
