-- Carts and the orders placed from them. Times are Unix microseconds, money
-- is in minor units of the order's currency.

-- +goose Up
CREATE TABLE carts (
    shopper_id  TEXT    NOT NULL PRIMARY KEY,
    version     INTEGER NOT NULL CHECK (version > 0),
    update_time INTEGER NOT NULL
) STRICT;

-- position is the cart version at which the line was first added, so that
-- ordering by it keeps lines in the order they were added.
CREATE TABLE cart_lines (
    shopper_id TEXT    NOT NULL REFERENCES carts (shopper_id),
    sku        TEXT    NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    position   INTEGER NOT NULL,
    PRIMARY KEY (shopper_id, sku)
) STRICT;

CREATE TABLE orders (
    order_id     TEXT    NOT NULL PRIMARY KEY,
    shopper_id   TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    currency     TEXT    NOT NULL,
    total        INTEGER NOT NULL,
    cart_version INTEGER NOT NULL,
    create_time  INTEGER NOT NULL
) STRICT;

CREATE INDEX orders_by_shopper ON orders (shopper_id, create_time DESC, order_id DESC);

CREATE TABLE order_lines (
    order_id   TEXT    NOT NULL REFERENCES orders (order_id),
    position   INTEGER NOT NULL,
    sku        TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    unit_price INTEGER NOT NULL,
    quantity   INTEGER NOT NULL,
    line_total INTEGER NOT NULL,
    PRIMARY KEY (order_id, position)
) STRICT;

-- +goose Down
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE cart_lines;
DROP TABLE carts;
