/*
 * orders-api Idempotency-Key pure parts (api/idem.c): key syntax (idem_key_valid),
 * the normalized request hash (idem_request_hash) and the SHA-256 under it
 * (FIPS 180-2 / NIST vectors and padding boundaries). No servers, no network.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/idem.h"
#include "api/orders.h"
#include "api/sha256.h"
#include "unit/check.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static void expect_sha256(const void *data, size_t len, const char *want)
{
    uint8_t digest[SHA256_DIGEST_LEN];
    char got[2 * SHA256_DIGEST_LEN + 1];

    sha256_digest(data, len, digest);
    hex(digest, sizeof(digest), got);
    CHECK_STR(got, want);
}

static void test_sha256(void)
{
    char *a = malloc(1000);

    memset(a, 'a', 1000);
    expect_sha256(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* Padding boundaries: 55 bytes fit one block with the length, 56 need two. */
    expect_sha256(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    expect_sha256(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    expect_sha256(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    expect_sha256(a, 1000, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
    free(a);
}

static void test_key_valid(void)
{
    char key[IDEM_KEY_MAX + 2];

    CHECK(idem_key_valid("a", 1));
    CHECK(idem_key_valid("3f2c1b9e-8d7a-4c6b-9e5f-1a2b3c4d5e6f", 36));
    CHECK(idem_key_valid("order 42 / retry #1 ~!@{}\"\\", 27));
    CHECK(idem_key_valid(" ", 1));
    CHECK(idem_key_valid("~", 1));

    CHECK(!idem_key_valid(NULL, 0));
    CHECK(!idem_key_valid("", 0));
    CHECK(!idem_key_valid("a\tb", 3));
    CHECK(!idem_key_valid("a\nb", 3));
    CHECK(!idem_key_valid("a\x7f", 2));
    CHECK(!idem_key_valid("\x1f", 1));
    CHECK(!idem_key_valid("caf\xc3\xa9", 5)); /* UTF-8 is not ASCII */
    CHECK(!idem_key_valid("a\0b", 3));        /* an embedded NUL counts */

    /* Length boundary: 255 bytes pass, 256 do not. */
    memset(key, 'k', sizeof(key));
    CHECK(idem_key_valid(key, IDEM_KEY_MAX));
    CHECK(!idem_key_valid(key, IDEM_KEY_MAX + 1));
}

static void expect_hash(const char *body, const char *want)
{
    struct order_request req;
    char err[ORDERS_ERR_MAX], got[IDEM_HASH_HEX_LEN + 1];

    CHECK_EQ_INT(orders_parse_request(body, strlen(body), &req, err, sizeof(err)), ORDERS_OK);
    memset(got, 'x', sizeof(got));
    idem_request_hash(&req, got);
    CHECK_EQ_INT(strlen(got), IDEM_HASH_HEX_LEN);
    CHECK_STR(got, want);
}

static void test_request_hash(void)
{
    /* sha256("book\0" "2"): the same value Python's hashlib gives. */
    static const char book2[] = "83664766c0857d050dfd1900f87ec915947900683384ce2c71f2861d5f75b87b";

    expect_hash("{\"item\": \"book\", \"quantity\": 2}", book2);
    /* Normalized: member order, whitespace and escapes do not matter. */
    expect_hash("{\"quantity\":2,\"item\":\"book\"}", book2);
    expect_hash(" {\n\"item\" : \"b\\u006fok\" , \"quantity\" : 2 }\n", book2);
    /* Anything that changes the order changes the hash. */
    expect_hash("{\"item\": \"book\", \"quantity\": 10000}",
                "2b65f6839ae5ba08f2024b49db30b1ddaece06ca5c3d40a1566f6952da903a39");
    expect_hash("{\"item\": \"  mug \", \"quantity\": 1}",
                "4c000089f16ca538326b8ddb9b6c6558ae8b2f8062da01f23a720b9829a47cd4");
    /* 200-byte UTF-8 item (100 x U+00E9). */
    {
        char body[300];
        size_t n = 0;

        n += (size_t)snprintf(body, sizeof(body), "{\"item\": \"");
        for (int i = 0; i < 100; i++) {
            body[n++] = '\xc3';
            body[n++] = '\xa9';
        }
        snprintf(body + n, sizeof(body) - n, "\", \"quantity\": 1}");
        expect_hash(body, "c5c105e4aac1b5f0764b7ca72bd4183ec0250d71adadda0411dfec8eed110b20");
    }
    /* The separator keeps item and quantity apart: ("book1", 2) is not ("book", 12). */
    {
        struct order_request a = {.item = "book1", .item_len = 5, .quantity = 2};
        struct order_request b = {.item = "book", .item_len = 4, .quantity = 12};
        char ha[IDEM_HASH_HEX_LEN + 1], hb[IDEM_HASH_HEX_LEN + 1];

        idem_request_hash(&a, ha);
        idem_request_hash(&b, hb);
        CHECK(strcmp(ha, hb) != 0);
    }
}

int main(void)
{
    RUN(test_sha256);
    RUN(test_key_valid);
    RUN(test_request_hash);
    return check_summary();
}
