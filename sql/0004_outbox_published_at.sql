-- For cdc-relay --mode poll (docs/relay.md, "Polling mode"): the polling relay
-- marks the rows it delivered. Stream mode never reads or writes the column,
-- and the publication publishes inserts only, so the relay's UPDATEs are not
-- streamed. A nullable column without a default is a catalog change: no table
-- rewrite, and no cost per insert. The partial index the polling query wants
-- is not created here: in the default (stream) deployment nothing ever marks
-- a row, so it would hold every row and tax every order's insert. Poll-mode
-- deployments create it (docs/relay.md).
ALTER TABLE outbox ADD COLUMN published_at timestamptz NULL;
