/*
 * orders-api pure modules: request-body validation (orders.c), order ids,
 * routing and Content-Type classification (router.c), and configuration
 * precedence and errors (config.c). No servers, no network.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "api/config.h"
#include "api/orders.h"
#include "api/router.h"
#include "unit/check.h"

/* ---- request validation ---- */

static enum orders_status parse_n(const char *body, size_t len, struct order_request *req,
                                  char *err)
{
    memset(req, 0x5a, sizeof(*req));
    return orders_parse_request(body, len, req, err, ORDERS_ERR_MAX);
}

static enum orders_status parse(const char *body, struct order_request *req, char *err)
{
    return parse_n(body, strlen(body), req, err);
}

static bool printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    }
    return true;
}

/* Expects status st and an error message containing needle (printable ASCII). */
static void expect_error(const char *body, size_t len, enum orders_status st, const char *needle)
{
    struct order_request req;
    char err[ORDERS_ERR_MAX];
    enum orders_status got = parse_n(body, len, &req, err);

    CHECK_EQ_INT(got, st);
    CHECK(err[0] != '\0');
    CHECK(printable(err));
    if (strstr(err, needle) == NULL) {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: body %.60s: \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, body,
                err, needle);
    } else {
        check_passed++;
    }
}

#define EXPECT_ERROR(body, st, needle) expect_error((body), strlen(body), (st), (needle))

static void test_valid(void)
{
    struct order_request req;
    char err[ORDERS_ERR_MAX];

    CHECK_EQ_INT(parse("{\"item\": \"book\", \"quantity\": 2}", &req, err), ORDERS_OK);
    CHECK_STR(req.item, "book");
    CHECK_EQ_INT(req.item_len, 4);
    CHECK_EQ_INT(req.quantity, 2);
    CHECK_STR(err, "");

    /* Member order does not matter; whitespace around tokens is fine. */
    CHECK_EQ_INT(parse(" \n{ \"quantity\" : 7 , \"item\" : \"pen\" }\n", &req, err), ORDERS_OK);
    CHECK_STR(req.item, "pen");
    CHECK_EQ_INT(req.quantity, 7);

    /* Surrounding whitespace is allowed and kept as sent. */
    CHECK_EQ_INT(parse("{\"item\": \"  mug \", \"quantity\": 1}", &req, err), ORDERS_OK);
    CHECK_STR(req.item, "  mug ");

    /* UTF-8, as raw bytes and as \u escapes (surrogate pair included). */
    CHECK_EQ_INT(
        parse("{\"item\": \"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\", \"quantity\": 1}", &req, err),
        ORDERS_OK);
    CHECK_STR(req.item, "caf\xc3\xa9 \xc3\xa9 \xf0\x9f\x98\x80");

    CHECK_EQ_INT(parse("{\"item\": \"a\", \"quantity\": 1}", &req, err), ORDERS_OK);
    CHECK_EQ_INT(req.quantity, 1);
    CHECK_EQ_INT(parse("{\"item\": \"a\", \"quantity\": 10000}", &req, err), ORDERS_OK);
    CHECK_EQ_INT(req.quantity, 10000);

    /* Not NUL-terminated input: only len bytes are read. */
    {
        const char buf[] = "{\"item\":\"x\",\"quantity\":3}GARBAGE";

        CHECK_EQ_INT(parse_n(buf, sizeof(buf) - 1 - 7, &req, err), ORDERS_OK);
        CHECK_EQ_INT(req.quantity, 3);
    }
}

static void test_item_length(void)
{
    struct order_request req;
    char err[ORDERS_ERR_MAX];
    char body[1024], item[512];

    memset(item, 'a', 200);
    item[200] = '\0';
    snprintf(body, sizeof(body), "{\"item\": \"%s\", \"quantity\": 1}", item);
    CHECK_EQ_INT(parse(body, &req, err), ORDERS_OK);
    CHECK_EQ_INT(req.item_len, 200);
    CHECK_EQ_INT(strlen(req.item), 200);

    memset(item, 'a', 201);
    item[201] = '\0';
    snprintf(body, sizeof(body), "{\"item\": \"%s\", \"quantity\": 1}", item);
    EXPECT_ERROR(body, ORDERS_EITEM, "at most 200 bytes");

    /* The limit is in bytes: 100 x U+00E9 is 200 bytes, 67 x U+20AC is 201. */
    item[0] = '\0';
    for (int i = 0; i < 100; i++)
        strcat(item, "\xc3\xa9");
    snprintf(body, sizeof(body), "{\"item\": \"%s\", \"quantity\": 1}", item);
    CHECK_EQ_INT(parse(body, &req, err), ORDERS_OK);
    CHECK_EQ_INT(req.item_len, 200);
    item[0] = '\0';
    for (int i = 0; i < 67; i++)
        strcat(item, "\xe2\x82\xac");
    snprintf(body, sizeof(body), "{\"item\": \"%s\", \"quantity\": 1}", item);
    EXPECT_ERROR(body, ORDERS_EITEM, "at most 200 bytes");

    /* Escapes count as the bytes they decode to: 200 x "\u0061" is 200 bytes. */
    body[0] = '\0';
    strcat(body, "{\"quantity\": 1, \"item\": \"");
    {
        size_t n = strlen(body);
        char *big = malloc(n + 200 * 6 + 16);

        memcpy(big, body, n);
        for (int i = 0; i < 200; i++)
            memcpy(big + n + (size_t)i * 6, "\\u0061", 6);
        strcpy(big + n + 200 * 6, "\"}");
        CHECK_EQ_INT(parse(big, &req, err), ORDERS_OK);
        CHECK_EQ_INT(req.item_len, 200);
        free(big);
    }
}

static void test_item_invalid(void)
{
    EXPECT_ERROR("{\"quantity\": 1}", ORDERS_EITEM, "item is required");
    EXPECT_ERROR("{\"item\": null, \"quantity\": 1}", ORDERS_EITEM, "item must be a string");
    EXPECT_ERROR("{\"item\": 5, \"quantity\": 1}", ORDERS_EITEM, "item must be a string");
    EXPECT_ERROR("{\"item\": true, \"quantity\": 1}", ORDERS_EITEM, "item must be a string");
    EXPECT_ERROR("{\"item\": [\"book\"], \"quantity\": 1}", ORDERS_EITEM, "must be a string");
    EXPECT_ERROR("{\"item\": {\"name\": \"book\"}, \"quantity\": 1}", ORDERS_EITEM,
                 "must be a string");
    EXPECT_ERROR("{\"item\": \"\", \"quantity\": 1}", ORDERS_EITEM, "empty");
    EXPECT_ERROR("{\"item\": \"   \", \"quantity\": 1}", ORDERS_EITEM, "whitespace");
    EXPECT_ERROR("{\"item\": \" \\t\\r\\n\", \"quantity\": 1}", ORDERS_EITEM, "whitespace");
    /* NUL through an escape: valid JSON, but not storable as text. */
    EXPECT_ERROR("{\"item\": \"bo\\u0000ok\", \"quantity\": 1}", ORDERS_EITEM, "NUL");
    EXPECT_ERROR("{\"item\": \"\\u0000\", \"quantity\": 1}", ORDERS_EITEM, "NUL");
}

static void test_quantity_invalid(void)
{
    EXPECT_ERROR("{\"item\": \"a\"}", ORDERS_EQUANTITY, "quantity is required");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 0}", ORDERS_EQUANTITY, "between 1 and 10000");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 10001}", ORDERS_EQUANTITY, "between 1 and 10000");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": -1}", ORDERS_EQUANTITY, "between");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": -0}", ORDERS_EQUANTITY, "between");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 9223372036854775807}", ORDERS_EQUANTITY,
                 "between");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": -9223372036854775808}", ORDERS_EQUANTITY,
                 "between");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 4294967298}", ORDERS_EQUANTITY, "between");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 2.0}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 2.5}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1e2}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": \"2\"}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": true}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": false}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": null}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": [2]}", ORDERS_EQUANTITY, "integer");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": {\"n\": 2}}", ORDERS_EQUANTITY, "integer");
    /* Numbers jansson cannot hold are a JSON error, not a silent clamp. */
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1e400}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 99999999999999999999}", ORDERS_EJSON,
                 "invalid JSON");
    /* Not JSON numbers at all. */
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 02}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": +2}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 0x10}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": NaN}", ORDERS_EJSON, "invalid JSON");
}

static void test_shape_invalid(void)
{
    struct order_request req;
    char err[ORDERS_ERR_MAX];

    /* Unknown members are rejected by name (a typo must not be silently ignored). */
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1, \"color\": \"red\"}", ORDERS_EUNKNOWNFIELD,
                 "unknown field \"color\"");
    EXPECT_ERROR("{\"Item\": \"a\", \"quantity\": 1}", ORDERS_EUNKNOWNFIELD, "\"Item\"");
    EXPECT_ERROR("{\"item\": \"a\", \"qty\": 1}", ORDERS_EUNKNOWNFIELD, "\"qty\"");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1, \"\": 1}", ORDERS_EUNKNOWNFIELD,
                 "unknown field \"\"");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1, \"nested\": {\"item\": \"b\"}}",
                 ORDERS_EUNKNOWNFIELD, "\"nested\"");
    /* Long or non-ASCII names are cut and made printable. */
    EXPECT_ERROR("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": 1}",
                 ORDERS_EUNKNOWNFIELD, "aaaa...\"");
    EXPECT_ERROR("{\"caf\xc3\xa9\": 1}", ORDERS_EUNKNOWNFIELD, "\"caf??\"");
    EXPECT_ERROR("{\"a\\nb\": 1}", ORDERS_EUNKNOWNFIELD, "\"a?b\"");

    /* Duplicate members are ambiguous. */
    EXPECT_ERROR("{\"item\": \"a\", \"item\": \"b\", \"quantity\": 1}", ORDERS_EJSON, "duplicate");

    /* The body must be one object. */
    EXPECT_ERROR("[]", ORDERS_ENOTOBJECT, "JSON object");
    EXPECT_ERROR("[{\"item\": \"a\", \"quantity\": 1}]", ORDERS_ENOTOBJECT, "JSON object");
    EXPECT_ERROR("\"book\"", ORDERS_ENOTOBJECT, "JSON object");
    EXPECT_ERROR("42", ORDERS_ENOTOBJECT, "JSON object");
    EXPECT_ERROR("null", ORDERS_ENOTOBJECT, "JSON object");
    EXPECT_ERROR("true", ORDERS_ENOTOBJECT, "JSON object");
    EXPECT_ERROR("{}", ORDERS_EITEM, "item is required");

    /* Not well-formed. */
    EXPECT_ERROR("", ORDERS_EEMPTY, "empty");
    EXPECT_ERROR("   ", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1}}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1} {}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\", \"quantity\": 1,}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{'item': 'a', 'quantity': 1}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"a\t\", \"quantity\": 1}", ORDERS_EJSON, "invalid JSON");

    /* Invalid UTF-8: stray byte, overlong '/', lone surrogate, truncated sequence. */
    EXPECT_ERROR("{\"item\": \"\xff\", \"quantity\": 1}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"\xc0\xaf\", \"quantity\": 1}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"\xed\xa0\x80\", \"quantity\": 1}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"\xe2\x82\", \"quantity\": 1}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("{\"item\": \"\\ud800\", \"quantity\": 1}", ORDERS_EJSON, "invalid JSON");
    EXPECT_ERROR("\xef\xbb\xbf{\"item\": \"a\", \"quantity\": 1}", ORDERS_EJSON, "invalid JSON");

    /* A raw NUL byte anywhere in the body. */
    {
        const char buf[] = "{\"item\": \"a\0b\", \"quantity\": 1}";

        expect_error(buf, sizeof(buf) - 1, ORDERS_EJSON, "invalid JSON");
    }
    {
        const char buf[] = "{\"item\": \"a\", \"quantity\": 1}\0";

        expect_error(buf, sizeof(buf) - 1, ORDERS_EJSON, "invalid JSON");
    }

    /* Deep nesting is an error, not a stack overflow. */
    {
        char *deep = malloc(20001);

        memset(deep, '[', 20000);
        deep[20000] = '\0';
        CHECK(parse(deep, &req, err) == ORDERS_EJSON);
        free(deep);
    }
}

static void test_errbuf(void)
{
    struct order_request req;
    char small[8];

    /* Messages are truncated to the buffer, always terminated. */
    memset(small, 'x', sizeof(small));
    CHECK_EQ_INT(orders_parse_request("{\"q\": 1}", 8, &req, small, sizeof(small)),
                 ORDERS_EUNKNOWNFIELD);
    CHECK_EQ_INT(strlen(small), sizeof(small) - 1);
    /* errlen 0 is allowed. */
    CHECK_EQ_INT(orders_parse_request("[]", 2, &req, small, 0), ORDERS_ENOTOBJECT);

    for (int s = ORDERS_OK; s <= ORDERS_EQUANTITY; s++)
        CHECK(strcmp(orders_strerror((enum orders_status)s), "unknown error") != 0);
    CHECK_STR(orders_strerror((enum orders_status)99), "unknown error");
    CHECK_STR(orders_strerror(ORDERS_EUNKNOWNFIELD), "unknown field");
}

/* ---- order ids ---- */

static void test_id(void)
{
    const char *good[] = {
        "123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000",
        "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "aBcDeF01-2345-6789-abcd-EF0123456789", NULL};
    const char *bad[] = {"",
                         "nope",
                         "123e4567e89b12d3a456426614174000",
                         "{123e4567-e89b-12d3-a456-426614174000}",
                         "123e4567-e89b-12d3-a456-42661417400",
                         "123e4567-e89b-12d3-a456-4266141740000",
                         "123e4567-e89b-12d3-a456-42661417400g",
                         "123e4567-e89b-12d3-a456_426614174000",
                         "123e4567-e89b-12d3a-456-426614174000",
                         " 23e4567-e89b-12d3-a456-426614174000",
                         "123e4567-e89b-12d3-a456-42661417400 ",
                         "123e4567-e89b-12d3-a456-426614174000;",
                         "'; DROP TABLE orders; --000000000000",
                         NULL};

    for (int i = 0; good[i] != NULL; i++)
        CHECK(orders_id_valid(good[i], strlen(good[i])));
    for (int i = 0; bad[i] != NULL; i++)
        CHECK(!orders_id_valid(bad[i], strlen(bad[i])));
    CHECK(!orders_id_valid(NULL, 36));
    /* An embedded NUL counts against the length rule. */
    CHECK(!orders_id_valid("123e4567-e89b-12d3-a456-42661417400\0", 36));
}

/* ---- routing ---- */

static void test_router(void)
{
    static const struct {
        const char *method, *path;
        enum router_status st;
        enum router_route route;
        const char *allow;
    } cases[] = {
        {"POST", "/orders", ROUTER_OK, ROUTER_ROUTE_ORDER_CREATE, "POST"},
        {"GET", "/orders", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, "POST"},
        {"PUT", "/orders", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, "POST"},
        {"post", "/orders", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, "POST"},
        {"GET", "/orders/123e4567-e89b-12d3-a456-426614174000", ROUTER_OK, ROUTER_ROUTE_ORDER_GET,
         "GET, HEAD"},
        {"HEAD", "/orders/123e4567-e89b-12d3-a456-426614174000", ROUTER_OK, ROUTER_ROUTE_ORDER_GET,
         "GET, HEAD"},
        {"DELETE", "/orders/123e4567-e89b-12d3-a456-426614174000", ROUTER_EMETHOD,
         ROUTER_ROUTE_NONE, "GET, HEAD"},
        {"POST", "/orders/123e4567-e89b-12d3-a456-426614174000", ROUTER_EMETHOD, ROUTER_ROUTE_NONE,
         "GET, HEAD"},
        /* Method is checked before the id. */
        {"DELETE", "/orders/nope", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, "GET, HEAD"},
        {"GET", "/orders/nope", ROUTER_EBADID, ROUTER_ROUTE_NONE, "GET, HEAD"},
        {"GET", "/orders/123E4567E89B12D3A456426614174000", ROUTER_EBADID, ROUTER_ROUTE_NONE,
         "GET, HEAD"},
        {"GET", "/orders/", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
        {"GET", "/orders/123e4567-e89b-12d3-a456-426614174000/items", ROUTER_ENOTFOUND,
         ROUTER_ROUTE_NONE, NULL},
        {"GET", "/orders//x", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
        {"GET", "/healthz", ROUTER_OK, ROUTER_ROUTE_HEALTHZ, "GET, HEAD"},
        {"HEAD", "/healthz", ROUTER_OK, ROUTER_ROUTE_HEALTHZ, "GET, HEAD"},
        {"POST", "/healthz", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, "GET, HEAD"},
        {"GET", "/readyz", ROUTER_OK, ROUTER_ROUTE_READYZ, "GET, HEAD"},
        {"OPTIONS", "/readyz", ROUTER_EMETHOD, ROUTER_ROUTE_NONE, "GET, HEAD"},
        {"GET", "/", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
        {"GET", "", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
        {"GET", "/healthz/", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
        {"GET", "/Orders", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
        {"POST", "/orders/", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
        {"POST", "/ordersx", ROUTER_ENOTFOUND, ROUTER_ROUTE_NONE, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct router_match m;
        enum router_status st = router_match(cases[i].method, cases[i].path, &m);

        if (st != cases[i].st || m.route != cases[i].route ||
            (cases[i].allow == NULL) != (m.allow == NULL) ||
            (m.allow != NULL && strcmp(m.allow, cases[i].allow) != 0)) {
            check_failed++;
            fprintf(stderr, "FAIL %s:%d: router %s %s: status %d route %d allow %s\n", __FILE__,
                    __LINE__, cases[i].method, cases[i].path, st, m.route,
                    m.allow ? m.allow : "(null)");
        } else {
            check_passed++;
        }
    }
    {
        struct router_match m;

        CHECK_EQ_INT(router_match("GET", "/orders/123e4567-e89b-12d3-a456-426614174000", &m),
                     ROUTER_OK);
        CHECK_VIEW(m.id, m.id_len, "123e4567-e89b-12d3-a456-426614174000");
        CHECK_EQ_INT(router_match(NULL, "/orders", &m), ROUTER_ENOTFOUND);
        CHECK_EQ_INT(router_match("GET", NULL, &m), ROUTER_ENOTFOUND);
    }
}

static void test_content_type(void)
{
    const char *json[] = {"application/json",
                          "Application/JSON",
                          "application/json; charset=utf-8",
                          "application/json;charset=UTF-8",
                          "application/json; charset=\"utf-8\"",
                          "application/json ; charset=utf-8",
                          "  application/json  ",
                          "application/json;",
                          "application/json; ;charset=utf-8",
                          "application/json; foo=bar; charset=utf-8",
                          "application/json; foo=\"a;b\"",
                          NULL};
    const char *other[] = {"text/plain",
                           "application/jsonx",
                           "application/json-patch+json",
                           "application/x-www-form-urlencoded",
                           "application/json; charset=latin1",
                           "application/json; charset=utf-16",
                           "application/json; charset=\"utf-8",
                           "application/json; charset=",
                           "application/json; foo",
                           "application/json, text/plain",
                           "application/json x",
                           "application",
                           "*/*",
                           NULL};

    for (int i = 0; json[i] != NULL; i++) {
        if (router_content_type(json[i]) != ROUTER_CTYPE_JSON) {
            check_failed++;
            fprintf(stderr, "FAIL %s:%d: \"%s\" should be JSON\n", __FILE__, __LINE__, json[i]);
        } else {
            check_passed++;
        }
    }
    for (int i = 0; other[i] != NULL; i++) {
        if (router_content_type(other[i]) != ROUTER_CTYPE_OTHER) {
            check_failed++;
            fprintf(stderr, "FAIL %s:%d: \"%s\" should be OTHER\n", __FILE__, __LINE__, other[i]);
        } else {
            check_passed++;
        }
    }
    CHECK_EQ_INT(router_content_type(NULL), ROUTER_CTYPE_MISSING);
    CHECK_EQ_INT(router_content_type(""), ROUTER_CTYPE_MISSING);
    CHECK_EQ_INT(router_content_type("  "), ROUTER_CTYPE_MISSING);
}

/* ---- configuration ---- */

static const char *const *fake_env;

static char *env_lookup(const char *name)
{
    for (int i = 0; fake_env != NULL && fake_env[i] != NULL; i += 2) {
        if (strcmp(fake_env[i], name) == 0)
            return (char *)fake_env[i + 1];
    }
    return NULL;
}

/* argv is NULL-terminated; argv[0] is added here. */
static int cfg_run(struct config *cfg, const char *const *env, const char *const *args, char *err)
{
    char *argv[32] = {"orders-api"};
    int argc = 1;

    for (int i = 0; args != NULL && args[i] != NULL; i++)
        argv[argc++] = (char *)args[i];
    fake_env = env;
    err[0] = '\0';
    return config_parse(cfg, argc, argv, env_lookup, err, CONFIG_ERR_MAX);
}

static unsigned port_of(const struct config *cfg)
{
    if (cfg->listen_addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&cfg->listen_addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&cfg->listen_addr)->sin_port);
}

static void expect_cfg_error(const char *const *env, const char *const *args, const char *needle)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];

    CHECK_EQ_INT(cfg_run(&cfg, env, args, err), -1);
    if (strstr(err, needle) == NULL) {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: config error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, err,
                needle);
    } else {
        check_passed++;
    }
}

static void test_config(void)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];

    /* Defaults. */
    CHECK_EQ_INT(cfg_run(&cfg, NULL, NULL, err), 0);
    CHECK_EQ_INT(cfg.action, CONFIG_ACTION_SERVE);
    CHECK(cfg.database_url == NULL);
    CHECK_STR(cfg.listen, "127.0.0.1:8080");
    CHECK_EQ_INT(cfg.listen_addr.ss_family, AF_INET);
    CHECK_EQ_INT(port_of(&cfg), 8080);
    CHECK_EQ_INT(cfg.pool_size, 8);
    CHECK_EQ_INT(cfg.db_timeout_ms, 5000);
    CHECK_EQ_INT(cfg.log_level, LOG_LEVEL_INFO);
    CHECK_EQ_INT(cfg.outbox_mode, STORE_OUTBOX_TABLE);

    /* --outbox-mode / OUTBOX_MODE: table or message, flag beats env, anything else is an error. */
    {
        const char *env[] = {"OUTBOX_MODE", "message", NULL};
        const char *empty_env[] = {"OUTBOX_MODE", "", NULL};
        const char *a1[] = {"--outbox-mode", "table", NULL};
        const char *a2[] = {"--outbox-mode=message", NULL};
        const char *bad1[] = {"--outbox-mode", "Message", NULL};
        const char *bad2[] = {"--outbox-mode", NULL};
        const char *bad_env[] = {"OUTBOX_MODE", "kafka", NULL};

        CHECK_EQ_INT(cfg_run(&cfg, env, NULL, err), 0);
        CHECK_EQ_INT(cfg.outbox_mode, STORE_OUTBOX_MESSAGE);
        CHECK_EQ_INT(cfg_run(&cfg, env, a1, err), 0);
        CHECK_EQ_INT(cfg.outbox_mode, STORE_OUTBOX_TABLE);
        CHECK_EQ_INT(cfg_run(&cfg, NULL, a2, err), 0);
        CHECK_EQ_INT(cfg.outbox_mode, STORE_OUTBOX_MESSAGE);
        CHECK_EQ_INT(cfg_run(&cfg, empty_env, NULL, err), 0);
        CHECK_EQ_INT(cfg.outbox_mode, STORE_OUTBOX_TABLE);
        expect_cfg_error(NULL, bad1,
                         "--outbox-mode: \"Message\" is not an outbox mode (table, message)");
        expect_cfg_error(NULL, bad2, "--outbox-mode requires a value");
        expect_cfg_error(bad_env, NULL, "OUTBOX_MODE: \"kafka\" is not an outbox mode");
    }

    /* Environment beats defaults; empty variables count as unset. */
    {
        const char *env[] = {"DATABASE_URL",
                             "postgresql://u@h/db",
                             "LISTEN_ADDR",
                             "[::1]:0",
                             "DB_POOL_SIZE",
                             "3",
                             "LOG_LEVEL",
                             "debug",
                             "DB_TIMEOUT_MS",
                             "",
                             NULL};

        CHECK_EQ_INT(cfg_run(&cfg, env, NULL, err), 0);
        CHECK_STR(cfg.database_url, "postgresql://u@h/db");
        CHECK_EQ_INT(cfg.listen_addr.ss_family, AF_INET6);
        CHECK_EQ_INT(port_of(&cfg), 0);
        CHECK_EQ_INT(cfg.pool_size, 3);
        CHECK_EQ_INT(cfg.log_level, LOG_LEVEL_DEBUG);
        CHECK_EQ_INT(cfg.db_timeout_ms, 5000);

        /* Flags beat the environment, in both spellings. */
        {
            const char *args[] = {
                "--database-url",   "host=x", "--listen=0.0.0.0:9000", "--pool-size", "5",
                "--log-level=warn", NULL};

            CHECK_EQ_INT(cfg_run(&cfg, env, args, err), 0);
            CHECK_STR(cfg.database_url, "host=x");
            CHECK_STR(cfg.listen, "0.0.0.0:9000");
            CHECK_EQ_INT(port_of(&cfg), 9000);
            CHECK_EQ_INT(cfg.pool_size, 5);
            CHECK_EQ_INT(cfg.log_level, LOG_LEVEL_WARN);
        }
        /* A bad env value overridden by a flag is not an error. */
        {
            const char *bad_env[] = {"DB_POOL_SIZE", "lots", NULL};
            const char *args[] = {"--pool-size", "2", NULL};

            CHECK_EQ_INT(cfg_run(&cfg, bad_env, args, err), 0);
            CHECK_EQ_INT(cfg.pool_size, 2);
        }
    }

    /* Actions. */
    {
        const char *a1[] = {"--migrate", NULL}, *a2[] = {"--help", NULL}, *a3[] = {"-h", NULL},
                   *a4[] = {"--version", NULL}, *a5[] = {"--help", "--bogus", NULL};

        CHECK_EQ_INT(cfg_run(&cfg, NULL, a1, err), 0);
        CHECK_EQ_INT(cfg.action, CONFIG_ACTION_MIGRATE);
        CHECK_EQ_INT(cfg_run(&cfg, NULL, a2, err), 0);
        CHECK_EQ_INT(cfg.action, CONFIG_ACTION_HELP);
        CHECK_EQ_INT(cfg_run(&cfg, NULL, a3, err), 0);
        CHECK_EQ_INT(cfg.action, CONFIG_ACTION_HELP);
        CHECK_EQ_INT(cfg_run(&cfg, NULL, a4, err), 0);
        CHECK_EQ_INT(cfg.action, CONFIG_ACTION_VERSION);
        CHECK_EQ_INT(cfg_run(&cfg, NULL, a5, err), 0);
        CHECK_EQ_INT(cfg.action, CONFIG_ACTION_HELP);
    }

    /* Errors name the option (or variable) and the reason. */
    {
        const char *a1[] = {"--bogus", NULL}, *a2[] = {"--bogus=1", NULL},
                   *a3[] = {"--listen", NULL}, *a4[] = {"--pool-size", "0", NULL},
                   *a5[] = {"--pool-size", "129", NULL}, *a6[] = {"--pool-size", "8x", NULL},
                   *a7[] = {"--log-level", "loud", NULL}, *a8[] = {"--migrate=yes", NULL},
                   *a9[] = {"serve", NULL}, *a10[] = {"--listen", "localhost:80", NULL},
                   *a11[] = {"--listen", "127.0.0.1:65536", NULL},
                   *a12[] = {"--listen", "127.0.0.1", NULL}, *a13[] = {"--listen", "::1:80", NULL},
                   *a14[] = {"--listen", "[::1]80", NULL}, *a15[] = {"--listen", ":8080", NULL},
                   *a16[] = {"--db-timeout-ms", "10", NULL}, *a17[] = {"-x", NULL},
                   *a18[] = {"--pool-size", " 4", NULL}, *a19[] = {"--listen", "1.2.3.4:", NULL};
        const char *e1[] = {"DB_POOL_SIZE", "many", NULL};
        const char *e2[] = {"LISTEN_ADDR", "nowhere", NULL};

        expect_cfg_error(NULL, a1, "unknown option \"--bogus\"");
        expect_cfg_error(NULL, a2, "unknown option \"--bogus\"");
        expect_cfg_error(NULL, a3, "--listen requires a value");
        expect_cfg_error(NULL, a4, "--pool-size: \"0\" is not an integer between 1 and 128");
        expect_cfg_error(NULL, a5, "--pool-size");
        expect_cfg_error(NULL, a6, "--pool-size");
        expect_cfg_error(NULL, a7, "--log-level: \"loud\" is not a log level");
        expect_cfg_error(NULL, a8, "--migrate takes no value");
        expect_cfg_error(NULL, a9, "unexpected argument \"serve\"");
        expect_cfg_error(NULL, a10, "not a numeric IPv4 address");
        expect_cfg_error(NULL, a11, "port must be a number 0..65535");
        expect_cfg_error(NULL, a12, "expected host:port");
        expect_cfg_error(NULL, a13, "need brackets");
        expect_cfg_error(NULL, a14, "expected [IPv6]:port");
        expect_cfg_error(NULL, a15, "expected host:port");
        expect_cfg_error(NULL, a16, "--db-timeout-ms");
        expect_cfg_error(NULL, a17, "unexpected argument \"-x\"");
        expect_cfg_error(NULL, a18, "--pool-size");
        expect_cfg_error(NULL, a19, "port must be");
        expect_cfg_error(e1, NULL, "DB_POOL_SIZE: \"many\"");
        expect_cfg_error(e2, NULL, "LISTEN_ADDR: invalid address \"nowhere\"");
    }

    /* The database URL is never echoed in errors (it may hold a password). */
    {
        const char *args[] = {"--database-url", "postgresql://u:hunter2@h/db", "--pool-size",
                              "zero", NULL};

        CHECK_EQ_INT(cfg_run(&cfg, NULL, args, err), -1);
        CHECK(strstr(err, "hunter2") == NULL);
    }

    /* Listen address parsing on its own. */
    {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char buf[64];

        CHECK_EQ_INT(config_parse_listen("[::]:443", &ss, &len, err, CONFIG_ERR_MAX), 0);
        CHECK_EQ_INT(len, sizeof(struct sockaddr_in6));
        CHECK_EQ_INT(config_parse_listen("10.1.2.3:0", &ss, &len, err, CONFIG_ERR_MAX), 0);
        CHECK_EQ_INT(len, sizeof(struct sockaddr_in));
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, sizeof(buf));
        CHECK_STR(buf, "10.1.2.3");
        CHECK_EQ_INT(config_parse_listen("10.1.2.3:+80", &ss, &len, err, CONFIG_ERR_MAX), -1);
        CHECK_EQ_INT(config_parse_listen("10.1.2.3:080000", &ss, &len, err, CONFIG_ERR_MAX), -1);
        CHECK_EQ_INT(config_parse_listen("[fe80::1%eth0]:80", &ss, &len, err, CONFIG_ERR_MAX), -1);
        CHECK_EQ_INT(config_parse_listen("[]:80", &ss, &len, err, CONFIG_ERR_MAX), -1);
        CHECK_EQ_INT(config_parse_listen("999.1.1.1:80", &ss, &len, err, CONFIG_ERR_MAX), -1);
    }

    /* --help lists every option with its variable and default. */
    {
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);

        config_usage(f, "orders-api");
        fclose(f);
        CHECK(strstr(text, "--database-url URL") != NULL);
        CHECK(strstr(text, "env DATABASE_URL, default none") != NULL);
        CHECK(strstr(text, "env LISTEN_ADDR, default 127.0.0.1:8080") != NULL);
        CHECK(strstr(text, "env DB_POOL_SIZE, default 8") != NULL);
        CHECK(strstr(text, "env DB_TIMEOUT_MS, default 5s") != NULL);
        CHECK(strstr(text, "env LOG_LEVEL, default info") != NULL);
        CHECK(strstr(text, "--outbox-mode MODE") != NULL);
        CHECK(strstr(text, "env OUTBOX_MODE, default table") != NULL);
        CHECK(strstr(text, "Idempotency-Key") != NULL);
        CHECK(strstr(text, "--migrate") != NULL);
        CHECK(strstr(text, "--version") != NULL);
        free(text);
    }
}

int main(void)
{
    RUN(test_valid);
    RUN(test_item_length);
    RUN(test_item_invalid);
    RUN(test_quantity_invalid);
    RUN(test_shape_invalid);
    RUN(test_errbuf);
    RUN(test_id);
    RUN(test_router);
    RUN(test_content_type);
    RUN(test_config);
    return check_summary();
}
