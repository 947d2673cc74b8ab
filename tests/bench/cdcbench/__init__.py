"""make bench, as a package: servers (the run's Postgres, Kafka and
processes, /proc accounting, topics read with kcat), loads (pgbench and wrk,
and reading their output), systems (pg_recvlogical, cdc-relay, Debezium and
the polling relay: how each is started and measured) and report (tables,
plots and docs/benchmarks.md). tests/bench/bench.py is the command line."""
