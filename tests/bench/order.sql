-- pgbench script for `make bench`: orders-api's insert (api/store_sql.c,
-- store_sql_create_table), one order and its OrderCreated outbox row in one
-- statement, so one transaction; random item and quantity as post.lua sends.
\set n random(1, 1000000)
\set q random(1, 5)
WITH o AS ( INSERT INTO orders (id, item, quantity, status, created_at) VALUES (gen_random_uuid(), 'item-' || :n, :q, 'created', now()) RETURNING id, item, quantity, status, created_at), e AS ( INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) SELECT gen_random_uuid(), 'orders', o.id::text, 'OrderCreated', jsonb_build_object('id', o.id, 'item', o.item, 'quantity', o.quantity, 'status', o.status, 'created_at', o.created_at) FROM o RETURNING aggregate_id, payload) SELECT aggregate_id, payload::text FROM e;
