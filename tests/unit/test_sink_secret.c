/* Which librdkafka properties the relay treats as secrets (never printed,
 * scrubbed from logs): docs/security.md "Secrets in logs". */
#include <stdbool.h>

#include "cdc/sink_kafka.h"
#include "unit/check.h"

static void test_secret_property_names(void)
{
    static const char *const secret[] = {
        "sasl.password",
        "ssl.key.password",
        "ssl.keystore.password",
        "ssl.key.pem",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "sasl.pasword",
        "sasl.passwd",
    };
    static const char *const plain[] = {
        "bootstrap.servers", "security.protocol", "ssl.ca.location",
        "sasl.username",     "sasl.mechanism",    "acks",
        "linger.ms",         "ssl.key.location",
    };

    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        CHECK(sink_prop_is_secret(secret[i]));
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        CHECK(!sink_prop_is_secret(plain[i]));
}

int main(void)
{
    RUN(test_secret_property_names);
    return check_summary();
}
