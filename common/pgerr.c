/* See pgerr.h. SQLSTATEs: PostgreSQL's errcodes.txt (Appendix A of its manual). */
#include "pgerr.h"

#include <string.h>

/* Exact codes first, then whole classes (two characters); first match wins. */
static const struct {
    const char *code;
    enum pgerr_kind kind;
} table[] = {
    {"57014", PGERR_TRANSIENT}, /* query_canceled (statement_timeout, cancel) */
    {"57P01", PGERR_TRANSIENT}, /* admin_shutdown (fast shutdown, pg_terminate_backend) */
    {"57P02", PGERR_TRANSIENT}, /* crash_shutdown */
    {"57P03", PGERR_TRANSIENT}, /* cannot_connect_now (starting up, shutting down) */
    {"57P05", PGERR_TRANSIENT}, /* idle_session_timeout */
    {"55P03", PGERR_TRANSIENT}, /* lock_not_available (lock_timeout) */
    {"55006", PGERR_IN_USE},    /* object_in_use */
    {"25006", PGERR_SESSION},   /* read_only_sql_transaction */
    {"25P02", PGERR_SESSION},   /* in_failed_sql_transaction */
    {"26000", PGERR_SESSION},   /* invalid_sql_statement_name: prepared statement gone */
    {"3D000", PGERR_LOGIN},     /* invalid_catalog_name: no such database */
    {"42501", PGERR_LOGIN},     /* insufficient_privilege */
    {"42P01", PGERR_SCHEMA},    /* undefined_table */
    {"3F000", PGERR_SCHEMA},    /* invalid_schema_name */
    {"42703", PGERR_SCHEMA},    /* undefined_column: a later migration's (outbox.traceparent) */
    {"08", PGERR_CONNECTION},   /* connection_exception */
    {"53", PGERR_TRANSIENT},    /* insufficient_resources (too many connections, disk full) */
    {"40", PGERR_TRANSIENT},    /* transaction_rollback (serialization, deadlock) */
    {"28", PGERR_LOGIN},        /* invalid_authorization_specification, invalid_password */
};

static bool sqlstate_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

enum pgerr_kind pgerr_classify(const char *sqlstate)
{
    if (sqlstate == NULL || sqlstate[0] == '\0')
        return PGERR_CONNECTION;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t n = strlen(table[i].code);

        if (strncmp(sqlstate, table[i].code, n) == 0 &&
            (n < PGERR_SQLSTATE_LEN || sqlstate[PGERR_SQLSTATE_LEN] == '\0'))
            return table[i].kind;
    }
    return PGERR_PERMANENT;
}

const char *pgerr_kind_name(enum pgerr_kind kind)
{
    switch (kind) {
    case PGERR_PERMANENT:
        return "permanent";
    case PGERR_CONNECTION:
        return "connection";
    case PGERR_TRANSIENT:
        return "transient";
    case PGERR_SESSION:
        return "session";
    case PGERR_IN_USE:
        return "in use";
    case PGERR_LOGIN:
        return "login";
    case PGERR_SCHEMA:
        return "schema";
    }
    return "?";
}

bool pgerr_sqlstate_in_message(const char *msg, char out[PGERR_SQLSTATE_LEN + 1])
{
    bool found = false;

    if (msg == NULL)
        return false;
    /* libpq writes "%s:  " (severity, two spaces), then at PQERRORS_VERBOSE
     * "%s: " (the SQLSTATE, one space), then the message. */
    for (const char *p = strstr(msg, ":  "); p != NULL; p = strstr(p + 1, ":  ")) {
        const char *c = p + 3;
        size_t i = 0;

        while (i < PGERR_SQLSTATE_LEN && sqlstate_char(c[i]))
            i++;
        if (i == PGERR_SQLSTATE_LEN && c[i] == ':' && c[i + 1] == ' ' && p > msg && p[-1] != ' ') {
            memcpy(out, c, PGERR_SQLSTATE_LEN);
            out[PGERR_SQLSTATE_LEN] = '\0';
            found = true;
        }
    }
    return found;
}

void pgerr_drop_location(char *msg)
{
    static const char tag[] = "LOCATION:  ";
    char *line = msg;

    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');

        if (strncmp(line, tag, sizeof(tag) - 1) == 0) {
            if (nl == NULL) {
                *line = '\0';
                break;
            }
            memmove(line, nl + 1, strlen(nl + 1) + 1);
            continue;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
}
