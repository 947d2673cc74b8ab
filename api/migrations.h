/*
 * Migrations embedded at build time from sql/NNNN_name.sql by
 * tools/embed_sql.sh, in ascending version order.
 */
#ifndef ORDERS_API_MIGRATIONS_H
#define ORDERS_API_MIGRATIONS_H

struct migration {
    int version;
    const char *name; /* file name without ".sql" */
    const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

#endif
