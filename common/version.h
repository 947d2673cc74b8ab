/*
 * The project's version, shared by orders-api and cdc-relay: one release
 * ships both, and --version, the start log line and the *_build_info
 * metrics all print this string.
 */
#ifndef ORDERS_COMMON_VERSION_H
#define ORDERS_COMMON_VERSION_H

#define ORDERS_CDC_VERSION "0.1.0"

#endif
