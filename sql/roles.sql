-- Least-privilege database roles for orders-api and cdc-relay
-- (docs/security.md). Not a migration: passwords must not live in the
-- repository, so an administrator runs this once per database, after
-- `orders-api --migrate`, with the passwords as psql variables:
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 \
--        -v api_password="$API_PW" -v relay_password="$RELAY_PW" -f sql/roles.sql
--
-- Optional variables (defaults in brackets): api_role [orders_api],
-- relay_role [cdc_relay], publication [cdc_outbox_pub]. Safe to run again:
-- roles and the publication are created when missing, passwords and grants
-- set every time. The cluster's pg_hba.conf decides how the roles may connect
-- (scram-sha-256 over hostssl is what the tests use).

\set ON_ERROR_STOP on
\if :{?api_password}
\else
\echo 'set -v api_password=...'
\quit
\endif
\if :{?relay_password}
\else
\echo 'set -v relay_password=...'
\quit
\endif
\if :{?api_role}
\else
\set api_role orders_api
\endif
\if :{?relay_role}
\else
\set relay_role cdc_relay
\endif
\if :{?publication}
\else
\set publication cdc_outbox_pub
\endif

BEGIN;

SELECT format('CREATE ROLE %I', :'api_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'api_role') \gexec
SELECT format('CREATE ROLE %I', :'relay_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'relay_role') \gexec

-- The api: a plain login, nothing it does not use.
ALTER ROLE :"api_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'api_password';
-- The relay: REPLICATION for the walsender connection (slot creation and
-- START_REPLICATION), nothing else beyond what is granted below.
ALTER ROLE :"relay_role" LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'relay_password';

SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), :'api_role',
              :'relay_role') \gexec
GRANT USAGE ON SCHEMA public TO :"api_role", :"relay_role";
-- PostgreSQL 15 no longer lets PUBLIC create in schema public; say so for
-- older clusters too.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- POST /orders inserts into all three tables; RETURNING needs SELECT, and
-- GET /orders/{id} and the Idempotency-Key replay read orders and
-- idempotency_keys. No UPDATE, DELETE or TRUNCATE anywhere: ON CONFLICT DO
-- NOTHING needs only INSERT.
REVOKE ALL ON orders, outbox, idempotency_keys FROM :"api_role";
GRANT SELECT, INSERT ON orders, outbox, idempotency_keys TO :"api_role";
-- --outbox-mode message and the relay's --heartbeat-interval call
-- pg_logical_emit_message, which PUBLIC may execute by default; granted
-- explicitly so it keeps working where an administrator revoked it. Its text
-- form is (boolean, text, text) up to PostgreSQL 16 and (boolean, text, text,
-- boolean) from 17 on (flush, default false): grant whichever is there.
SELECT format('GRANT EXECUTE ON FUNCTION %s TO %I, %I', p.oid::regprocedure, :'api_role',
              :'relay_role')
  FROM pg_proc p
 WHERE p.proname = 'pg_logical_emit_message'
   AND p.pronamespace = 'pg_catalog'::regnamespace
   AND p.proargtypes[2] = 'text'::regtype \gexec

-- The relay reads the outbox only through the publication; SELECT is what
-- pgoutput's checks and the relay's start-up validation need. No write.
REVOKE ALL ON orders, outbox, idempotency_keys FROM :"relay_role";
GRANT SELECT ON outbox TO :"relay_role";

-- The publication is made here (creating one needs ownership of the table),
-- so the relay runs with --no-create-publication. Created before any slot,
-- as the relay requires (docs/protocol.md#p9).
SELECT format('CREATE PUBLICATION %I FOR TABLE outbox WITH (publish = %L, '
              'publish_via_partition_root = true)', :'publication', 'insert')
WHERE NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = :'publication') \gexec

COMMIT;
