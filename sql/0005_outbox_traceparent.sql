-- W3C trace context of the request that wrote the event (docs/api.md, "Trace
-- context"): orders-api stores the request's traceparent, or a new one, and
-- cdc-relay sends it as the traceparent header (--traceparent-column). NULL
-- for rows written before this migration or by writers without one. A
-- nullable column without a default is a catalog change: no table rewrite,
-- and no cost per insert beyond the 55 bytes.
ALTER TABLE outbox ADD COLUMN traceparent text NULL;
