-- Orders written by orders-api. Column names are a fixed interface
-- (docs/architecture.md#fixed-interfaces).
-- gen_random_uuid() is built in from PostgreSQL 13 (orders-api generates ids in SQL).
CREATE TABLE orders (
    id         uuid PRIMARY KEY,
    item       text NOT NULL,
    quantity   int NOT NULL CHECK (quantity > 0),
    status     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
