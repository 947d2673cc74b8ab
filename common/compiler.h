/*
 * Compiler attributes shared by every module. Header-only; no code.
 */
#ifndef ORDERS_COMMON_COMPILER_H
#define ORDERS_COMMON_COMPILER_H

#define MUSTCHECK           __attribute__((warn_unused_result))
#define PRINTF_FMT(fmt, va) __attribute__((format(printf, fmt, va)))
#define UNUSED(x)           ((void)(x))

#endif
