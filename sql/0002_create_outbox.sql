-- Transactional outbox. The names are this project's (with underscores);
-- Debezium's default outbox table says aggregatetype, aggregateid and type,
-- and cdc-relay reads either through its column mapping (docs/relay.md,
-- "The outbox table and its columns"). orders-api inserts one row per
-- event in the same transaction as the order; cdc-relay reads the inserts from
-- the WAL (publication created by the relay), so no index or status column is
-- needed, and rows may be deleted in the writing transaction to avoid bloat.
CREATE TABLE outbox (
    id             uuid PRIMARY KEY,
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    event_type     text NOT NULL,
    payload        jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
