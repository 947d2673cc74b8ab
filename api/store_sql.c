/*
 * The SQL orders-api prepares on every pooled session (api/store_pg.c):
 * text only, nothing here runs.
 */
#include "store_sql.h"

/*
 * One statement, so one implicit transaction: the order and its event commit
 * together or not at all. The payload is built by the server so the response
 * body and the Kafka value (pgoutput sends jsonb's text form) are the same bytes.
 */
const char store_sql_create_table[] =
    "WITH o AS ("
    " INSERT INTO public.orders (id, item, quantity, status, created_at)"
    " VALUES (pg_catalog.gen_random_uuid(), $1::text, $2::int, 'created', pg_catalog.now())"
    " RETURNING id, item, quantity, status, created_at"
    "), e AS ("
    " INSERT INTO public.outbox (id, aggregate_type, aggregate_id, event_type, payload,"
    "  traceparent)"
    " SELECT pg_catalog.gen_random_uuid(), 'orders', o.id::text, 'OrderCreated',"
    "  pg_catalog.jsonb_build_object('id', o.id, 'item', o.item, 'quantity', o.quantity,"
    "   'status', o.status, 'created_at', o.created_at), $3::text"
    " FROM o"
    " RETURNING aggregate_id, payload"
    ") SELECT aggregate_id, payload::text FROM e";

/*
 * --outbox-mode message: the event is a transactional logical decoding message
 * (prefix "outbox") whose content is the outbox row as a JSON object, rendered
 * by jsonb: {"id": ..., "payload": {...}, "event_type": ..., "aggregate_id":
 * ..., "aggregate_type": ...}. Transactional, so it is decoded at the commit of
 * the order's transaction, in commit order, and never if it rolls back.
 */
#define STORE_SQL_EMIT                                                                             \
    "pg_catalog.pg_logical_emit_message(true, 'outbox', pg_catalog.jsonb_build_object("            \
    " 'id', pg_catalog.gen_random_uuid(),"                                                         \
    " 'aggregate_type', 'orders', 'aggregate_id', p.id::text, 'event_type', 'OrderCreated',"       \
    " 'payload', p.payload, 'traceparent', p.traceparent)::text)"

/* MATERIALIZED and the lsn filter make sure the message is emitted before the row is returned. */
const char store_sql_create_message[] =
    "WITH o AS ("
    " INSERT INTO public.orders (id, item, quantity, status, created_at)"
    " VALUES (pg_catalog.gen_random_uuid(), $1::text, $2::int, 'created', pg_catalog.now())"
    " RETURNING id, pg_catalog.jsonb_build_object('id', id, 'item', item, 'quantity', quantity,"
    "  'status', status, 'created_at', created_at) AS payload, $3::text AS traceparent"
    "), m AS MATERIALIZED ("
    " SELECT p.id, p.payload, " STORE_SQL_EMIT " AS lsn FROM o AS p"
    ") SELECT id::text, payload::text FROM m WHERE lsn IS NOT NULL";

/*
 * With an Idempotency-Key ($3, request hash $4; traceparent $5). The order values and the
 * response body are computed first (r, p), so the key row (k) can be inserted
 * BEFORE the order, with the answer it stands for; the order (o) is inserted
 * only for a row k returned. If another transaction holds the same key
 * uncommitted, k's insert waits on the primary key until that one ends: commit
 * means a conflict (DO NOTHING, zero rows, nothing written), rollback means we
 * go ahead. Zero rows therefore always means "the key exists": the caller then
 * reads it with STMT_KEY_GET (a new statement, so a new snapshot that sees the
 * winner's commit). The first answer is k's RETURNING, the very row a replay
 * reads, so both are the same bytes.
 */
#define STORE_SQL_KEYED_HEAD                                                                       \
    "WITH r AS MATERIALIZED ("                                                                     \
    " SELECT pg_catalog.gen_random_uuid() AS id, $1::text AS item, $2::int AS quantity,"           \
    "  'created'::text AS status, pg_catalog.now() AS created_at, $5::text AS traceparent"         \
    "), p AS MATERIALIZED ("                                                                       \
    " SELECT r.id, r.item, r.quantity, r.status, r.created_at, r.traceparent,"                     \
    "  pg_catalog.jsonb_build_object('id', r.id, 'item', r.item, 'quantity', r.quantity,"          \
    "   'status', r.status, 'created_at', r.created_at) AS payload"                                \
    " FROM r"                                                                                      \
    "), k AS ("                                                                                    \
    " INSERT INTO public.idempotency_keys (key, request_hash, status, body, location)"             \
    " SELECT $3::text, $4::text, 201, p.payload::text, '/orders/' || p.id::text FROM p"            \
    " ON CONFLICT (key) DO NOTHING"                                                                \
    " RETURNING status, body, location"                                                            \
    "), o AS ("                                                                                    \
    " INSERT INTO public.orders (id, item, quantity, status, created_at)"                          \
    " SELECT p.id, p.item, p.quantity, p.status, p.created_at FROM p, k"                           \
    " RETURNING id"                                                                                \
    ")"

const char store_sql_create_keyed_table[] = STORE_SQL_KEYED_HEAD
    ", e AS ("
    " INSERT INTO public.outbox (id, aggregate_type, aggregate_id, event_type,"
    "  payload, traceparent)"
    " SELECT pg_catalog.gen_random_uuid(), 'orders', o.id::text, 'OrderCreated',"
    "  p.payload, p.traceparent"
    " FROM o, p"
    " RETURNING id"
    ") SELECT k.status, k.body, k.location FROM k, e";

/* FROM o, p: one row only if the order was inserted; o.id = p.id. */
const char store_sql_create_keyed_message[] =
    STORE_SQL_KEYED_HEAD ", m AS MATERIALIZED ("
                         " SELECT " STORE_SQL_EMIT " AS lsn FROM o, p"
                         ") SELECT k.status, k.body, k.location FROM k, m WHERE m.lsn IS NOT NULL";

const char store_sql_key_get[] =
    "SELECT request_hash, status, body, location FROM public.idempotency_keys"
    " WHERE key = $1::text";

const char store_sql_get[] =
    "SELECT id::text, pg_catalog.jsonb_build_object('id', id, 'item', item, 'quantity', quantity,"
    " 'status', status, 'created_at', created_at)::text"
    " FROM public.orders WHERE id = $1::uuid";
