/*
 * The statements orders-api prepares (api/store_sql.c says what each does).
 */
#ifndef ORDERS_API_STORE_SQL_H
#define ORDERS_API_STORE_SQL_H

extern const char store_sql_create_table[];
extern const char store_sql_create_message[];
extern const char store_sql_create_keyed_table[];
extern const char store_sql_create_keyed_message[];
extern const char store_sql_key_get[];
extern const char store_sql_get[];

#endif
