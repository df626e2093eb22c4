-- Carts and the orders placed from them. Money is in minor units of the
-- order's currency. Order ids sort bytewise (COLLATE "C"), so that paging
-- through orders does not depend on the database's locale.

-- +goose Up
CREATE TABLE carts (
    shopper_id  TEXT        NOT NULL PRIMARY KEY,
    version     BIGINT      NOT NULL CHECK (version > 0),
    update_time TIMESTAMPTZ NOT NULL
);

-- position is the cart version at which the line was first added, so that
-- ordering by it keeps lines in the order they were added.
CREATE TABLE cart_lines (
    shopper_id TEXT   NOT NULL REFERENCES carts (shopper_id),
    sku        TEXT   NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    position   BIGINT NOT NULL,
    PRIMARY KEY (shopper_id, sku)
);

CREATE TABLE orders (
    order_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    shopper_id   TEXT             NOT NULL,
    status       TEXT             NOT NULL,
    currency     TEXT             NOT NULL,
    total        BIGINT           NOT NULL,
    cart_version BIGINT           NOT NULL,
    create_time  TIMESTAMPTZ      NOT NULL
);

CREATE INDEX orders_by_shopper ON orders (shopper_id, create_time DESC, order_id DESC);

CREATE TABLE order_lines (
    order_id   TEXT COLLATE "C" NOT NULL REFERENCES orders (order_id),
    position   INTEGER          NOT NULL,
    sku        TEXT             NOT NULL,
    name       TEXT             NOT NULL,
    unit_price BIGINT           NOT NULL,
    quantity   BIGINT           NOT NULL,
    line_total BIGINT           NOT NULL,
    PRIMARY KEY (order_id, position)
);

-- +goose Down
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE cart_lines;
DROP TABLE carts;
