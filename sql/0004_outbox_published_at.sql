-- For cdc-relay --mode poll (docs/relay.md, "Polling mode"): the polling relay
-- marks the rows it delivered. Stream mode never reads or writes the column,
-- and the publication publishes inserts only, so the relay's UPDATEs are not
-- streamed. A nullable column without a default is a catalog change: no table
-- rewrite. The partial index holds only the rows still to publish, in the
-- order the polling relay reads them, so it stays small whatever the table's size.
ALTER TABLE outbox ADD COLUMN published_at timestamptz NULL;
CREATE INDEX outbox_unpublished_idx ON outbox (created_at, id) WHERE published_at IS NULL;
