-- Idempotency-Key records for POST /orders. orders-api inserts the key row in
-- the same statement (so the same transaction) as the order it answers for,
-- before the order: a second request with the same key blocks on the primary
-- key until the first commits, then finds its row and replays the stored
-- response. request_hash is the hex SHA-256 of the normalized request (item and
-- quantity), so a key reused for a different order can be refused. Rows are
-- kept until an operator prunes them (docs/api.md, "Idempotency-Key").
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    status       int NOT NULL,
    body         text NOT NULL,
    location     text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
