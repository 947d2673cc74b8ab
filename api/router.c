/*
 * Endpoint table and Content-Type parsing (see router.h). Works on the
 * strings MHD hands over and must stay free of MHD, libpq and allocation so
 * the unit tests can cover every status the API answers before it does I/O.
 */
#include "router.h"

#include <string.h>
#include <strings.h>

#include "orders.h"

#define ORDERS_PREFIX "/orders/"

static bool is_get(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

enum router_status router_match(const char *method, const char *path, struct router_match *out)
{
    memset(out, 0, sizeof(*out));
    if (method == NULL || path == NULL)
        return ROUTER_ENOTFOUND;

    if (strcmp(path, "/orders") == 0) {
        out->endpoint = ROUTER_ROUTE_ORDER_CREATE;
        out->allow = "POST";
        if (strcmp(method, "POST") != 0)
            return ROUTER_EMETHOD;
        out->route = ROUTER_ROUTE_ORDER_CREATE;
        return ROUTER_OK;
    }
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
        strcmp(path, "/metrics") == 0) {
        out->endpoint = path[1] == 'h'   ? ROUTER_ROUTE_HEALTHZ
                        : path[1] == 'r' ? ROUTER_ROUTE_READYZ
                                         : ROUTER_ROUTE_METRICS;
        out->allow = "GET, HEAD";
        if (!is_get(method))
            return ROUTER_EMETHOD;
        out->route = out->endpoint;
        return ROUTER_OK;
    }
    if (strncmp(path, ORDERS_PREFIX, strlen(ORDERS_PREFIX)) == 0) {
        const char *id = path + strlen(ORDERS_PREFIX);

        /* An empty or multi-segment tail is a different (unknown) resource. */
        if (*id == '\0' || strchr(id, '/') != NULL)
            return ROUTER_ENOTFOUND;
        out->endpoint = ROUTER_ROUTE_ORDER_GET;
        out->allow = "GET, HEAD";
        out->id = id;
        out->id_len = strlen(id);
        if (!is_get(method))
            return ROUTER_EMETHOD;
        if (!orders_id_valid(out->id, out->id_len))
            return ROUTER_EBADID;
        out->route = ROUTER_ROUTE_ORDER_GET;
        return ROUTER_OK;
    }
    return ROUTER_ENOTFOUND;
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Length of an RFC 9110 token (parameter name or unquoted value) at s. */
static size_t token_len(const char *s)
{
    size_t n = 0;

    while (s[n] != '\0' && strchr(" \t;,=\"()<>@:\\/[]?{}", s[n]) == NULL &&
           (unsigned char)s[n] > 0x20 && (unsigned char)s[n] < 0x7f)
        n++;
    return n;
}

/*
 * Checks one ";name=value" parameter at *sp and advances past it.
 * Returns false on malformed syntax or a charset that is not utf-8.
 */
static bool param_ok(const char **sp)
{
    const char *s = skip_ows(*sp);
    const char *name = s, *val;
    size_t nlen = token_len(s), vlen;

    if (nlen == 0)
        return false;
    s += nlen;
    if (*s != '=')
        return false;
    s++;
    if (*s == '"') {
        val = ++s;
        while (*s != '\0' && *s != '"') {
            if (*s == '\\' && s[1] != '\0')
                s++;
            s++;
        }
        if (*s != '"')
            return false;
        vlen = (size_t)(s - val);
        s++;
    } else {
        val = s;
        vlen = token_len(s);
        if (vlen == 0)
            return false;
        s += vlen;
    }
    if (nlen == 7 && strncasecmp(name, "charset", 7) == 0 &&
        !(vlen == 5 && strncasecmp(val, "utf-8", 5) == 0))
        return false;
    *sp = skip_ows(s);
    return true;
}

enum router_ctype router_content_type(const char *value)
{
    static const char json[] = "application/json";
    const char *s;

    if (value == NULL)
        return ROUTER_CTYPE_MISSING;
    s = skip_ows(value);
    if (*s == '\0')
        return ROUTER_CTYPE_MISSING;
    if (strncasecmp(s, json, sizeof(json) - 1) != 0)
        return ROUTER_CTYPE_OTHER;
    s = skip_ows(s + sizeof(json) - 1);
    while (*s == ';') {
        s = skip_ows(s + 1);
        /* RFC 9110 5.6.6 allows empty parameters ("a/b;;c=d", "a/b;"). */
        if (*s == ';' || *s == '\0')
            continue;
        if (!param_ok(&s))
            return ROUTER_CTYPE_OTHER;
    }
    return *s == '\0' ? ROUTER_CTYPE_JSON : ROUTER_CTYPE_OTHER;
}
