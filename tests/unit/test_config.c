/*
 * Configuration: the config-file parser (common/cfg.c, pure over a buffer),
 * the one precedence rule flag > environment > file > default for both
 * binaries (cdc/options.c, api/config.c), errors that name the option and
 * file:line, and --print-config's sources and masking. Config files are
 * written to $TMPDIR; no servers, no network.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit/check.h"

#include "api/config.h"
#include "cfg.h"
#include "cdc/options.h"

static const char *const *fake_env;

static char *env_lookup(const char *name)
{
    for (int i = 0; fake_env != NULL && fake_env[i] != NULL; i += 2) {
        if (strcmp(fake_env[i], name) == 0)
            return (char *)fake_env[i + 1];
    }
    return NULL;
}

static char tmp_paths[32][256];
static int ntmp;

/* Writes text to a new temporary file; returns its path (removed at exit). */
static const char *write_tmp(const char *text)
{
    const char *dir = getenv("TMPDIR");
    char *path;
    int fd;

    if (ntmp == (int)(sizeof(tmp_paths) / sizeof(tmp_paths[0]))) {
        fprintf(stderr, "write_tmp: more than %d files\n", ntmp);
        exit(1);
    }
    path = tmp_paths[ntmp++];

    snprintf(path, sizeof(tmp_paths[0]), "%s/test_config.XXXXXX", dir != NULL ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    close(fd);
    return path;
}

static void build_argv(char **argv, int *argc, const char *prog, const char *const *args)
{
    *argc = 0;
    argv[(*argc)++] = (char *)prog;
    for (int i = 0; args != NULL && args[i] != NULL; i++)
        argv[(*argc)++] = (char *)args[i];
    argv[*argc] = NULL;
}

static int relay_run_opts(struct options *o, const char *const *env, const char *const *args,
                          char *err)
{
    char *argv[64];
    int argc;

    static char pairs[32][512];
    char *envp[33];
    int n = 0;

    build_argv(argv, &argc, "cdc-relay", args);
    fake_env = env;
    /* the same variables as an environment block, for CDC_KAFKA_* */
    for (int i = 0; env != NULL && env[i] != NULL && n < 32; i += 2, n++) {
        snprintf(pairs[n], sizeof(pairs[n]), "%s=%s", env[i], env[i + 1]);
        envp[n] = pairs[n];
    }
    envp[n] = NULL;
    err[0] = '\0';
    return options_parse(o, argc, argv, env_lookup, envp, err, OPTIONS_ERR_MAX);
}

static void expect_contains(const char *text, const char *needle, int line)
{
    if (text != NULL && strstr(text, needle) != NULL) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: \"%s\" lacks \"%s\"\n", __FILE__, line,
                text != NULL ? text : "(null)", needle);
    }
}
#define CHECK_CONTAINS(text, needle) expect_contains((text), (needle), __LINE__)

static void expect_relay_error(const char *const *env, const char *const *args, const char *needle,
                               int line)
{
    static struct options o;
    char err[OPTIONS_ERR_MAX];
    int rc = relay_run_opts(&o, env, args, err);

    if (rc != -1) {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: expected an error containing \"%s\"\n", __FILE__, line,
                needle);
    } else {
        check_passed++;
        expect_contains(err, needle, line);
    }
    options_fini(&o);
}
#define EXPECT_RELAY_ERROR(env, args, needle) expect_relay_error((env), (args), (needle), __LINE__)

/* ---- the file parser alone ---- */

static const struct cfg_opt mini[] = {
    {"config", 0, "MINI_CONFIG", "FILE", NULL, CFG_CONFIG, 0, 0, 0, 0, "file"},
    {"name", 0, "MINI_NAME", "N", "dflt", 0, 0, 0, 0, 0, "a value"},
    {"flag", 0, "MINI_FLAG", NULL, "false", 0, 0, 0, 0, 0, "a switch"},
    {"once", 0, NULL, "X/Y", NULL, CFG_CLI_ONLY, 0, 0, 0, 0, "command line only"},
    {"kafka", 'X', NULL, "NAME=VALUE", NULL, CFG_KAFKA, 0, 0, 0, 0, "properties"},
    {"help", 'h', NULL, NULL, NULL, CFG_ACTION, 0, 0, 0, 0, "help"},
};
#define NMINI (sizeof(mini) / sizeof(mini[0]))

static int mini_text(struct cfg_set *set, const char *text, char *err)
{
    memset(set, 0, sizeof(*set));
    set->opts = mini;
    set->nopts = NMINI;
    err[0] = '\0';
    return cfg_parse_text(set, "m.conf", strdup(text), err, CFG_ERR_MAX);
}

static void test_file_parser(void)
{
    struct cfg_set set;
    char err[CFG_ERR_MAX];
    const struct cfg_item *it;

    /* Comments, blank lines, spaces and tabs around both sides, CRLF. */
    CHECK_EQ_INT(mini_text(&set,
                           "# a comment\n\n   \t\n  name\t=  a b = c  \r\n"
                           "flag=on\n  # indented comment\nkafka.sasl.password = p#w\n"
                           "kafka.linger.ms=7",
                           err),
                 0);
    CHECK_EQ_INT(set.nitems, 4);
    it = cfg_get(&set, &mini[1]);
    CHECK(it != NULL);
    if (it != NULL) {
        CHECK_STR(it->value, "a b = c"); /* the first '=' splits; the rest is the value */
        CHECK_EQ_INT(it->line, 4);
        CHECK_EQ_INT(it->source, CFG_SOURCE_FILE);
    }
    CHECK_STR(cfg_value(&set, &mini[2]), "true"); /* switches normalised */
    CHECK_VIEW(set.items[2].key, set.items[2].key_len, "sasl.password");
    CHECK_STR(set.items[2].value, "p#w"); /* '#' only starts a comment line */
    CHECK_EQ_INT(set.items[2].line, 7);
    CHECK_VIEW(set.items[3].key, set.items[3].key_len, "linger.ms");
    CHECK_STR(set.items[3].value, "7");
    cfg_fini(&set);

    /* An empty file and a file of comments set nothing. */
    CHECK_EQ_INT(mini_text(&set, "", err), 0);
    CHECK_EQ_INT(set.nitems, 0);
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "#x\n#y", err), 0);
    CHECK_EQ_INT(set.nitems, 0);
    CHECK_STR(cfg_value(&set, &mini[1]), "dflt");
    cfg_fini(&set);

    /* Errors name file:line and the option, and say why. */
    CHECK_EQ_INT(mini_text(&set, "name = a\nbogus = 1\n", err), -1);
    CHECK_STR(err, "m.conf:2: unknown option \"bogus\"");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "\nname\n", err), -1);
    CHECK_STR(err, "m.conf:2: expected \"name = value\"");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, " = v\n", err), -1);
    CHECK_STR(err, "m.conf:1: expected \"name = value\"");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "name =   \n", err), -1);
    CHECK_CONTAINS(err, "m.conf:1: name: empty value");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "name = a\n# x\nname = b\n", err), -1);
    CHECK_STR(err, "m.conf:3: name: already set on line 1");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "kafka.acks = 1\nkafka.acks = all\n", err), -1);
    CHECK_CONTAINS(err, "m.conf:2: kafka.acks: already set on line 1");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "kafka.a = 1\nkafka.b = 2\n", err), 0); /* different keys */
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "flag = maybe\n", err), -1);
    CHECK_STR(err, "m.conf:1: flag: \"maybe\" is not true or false");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "once = 0/1\n", err), -1);
    CHECK_CONTAINS(err, "m.conf:1: \"once\" cannot be set in a config file");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "config = other.conf\n", err), -1);
    CHECK_CONTAINS(err, "m.conf:1: \"config\" cannot be set in a config file");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "help = true\n", err), -1);
    CHECK_CONTAINS(err, "\"help\" cannot be set");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "kafka. = 1\n", err), -1); /* no property name */
    CHECK_CONTAINS(err, "m.conf:1: unknown option \"kafka.\"");
    cfg_fini(&set);
    CHECK_EQ_INT(mini_text(&set, "X = a=b\n", err), -1); /* -X is kafka.NAME in files */
    CHECK_CONTAINS(err, "unknown option \"X\"");
    cfg_fini(&set);
}

static void test_helpers(void)
{
    bool b = false;

    CHECK(cfg_parse_bool("yes", &b) && b);
    CHECK(cfg_parse_bool("0", &b) && !b);
    CHECK(!cfg_parse_bool("True", &b));
    CHECK(!cfg_parse_bool("", &b));
    CHECK(cfg_kafka_secret("sasl.password", 13));
    CHECK(cfg_kafka_secret("ssl.key.password", 16));
    CHECK(cfg_kafka_secret("ssl.keystore.password", 21));
    CHECK(cfg_kafka_secret("ssl.key.pem", 11));
    CHECK(cfg_kafka_secret("sasl.oauthbearer.client.secret", 30));
    CHECK(cfg_kafka_secret("sasl.oauthbearer.config", 23));
    CHECK(cfg_kafka_secret("sasl.jaas.config", 16));
    CHECK(!cfg_kafka_secret("sasl.username", 13));
    CHECK(!cfg_kafka_secret("compression.type", 16));
    CHECK(!cfg_kafka_secret("ssl.key.location", 16));
    /* Only the first len bytes count: "sasl.password" cut to "sasl.pas". */
    CHECK(!cfg_kafka_secret("sasl.password", 8));
}

/* kcat's properties file format, pure over a buffer. */
static void test_properties_parser(void)
{
    struct cfg_set set;
    char err[CFG_ERR_MAX];

    memset(&set, 0, sizeof(set));
    set.opts = mini;
    set.nopts = NMINI;
    CHECK_EQ_INT(
        cfg_parse_properties(&set, "k.properties",
                             strdup("# comment\n\n  bootstrap.servers = b1:9092,b2:9092  \n"
                                    "sasl.password=p=w#1\r\nssl.ca.location=C\\:\\x\n"
                                    "client.id\\=x=y\nlinger.ms=5\nlinger.ms=6\nempty.ok="),
                             err, sizeof(err)),
        0);
    CHECK_EQ_INT(set.nitems, 7);
    if (set.nitems == 7) {
        CHECK_VIEW(set.items[0].key, set.items[0].key_len, "bootstrap.servers");
        CHECK_STR(set.items[0].value, "b1:9092,b2:9092");
        CHECK_EQ_INT(set.items[0].line, 3);
        CHECK_EQ_INT(set.items[0].source, CFG_SOURCE_FILE);
        CHECK(set.items[0].opt == &mini[4]);
        CHECK_VIEW(set.items[1].key, set.items[1].key_len, "sasl.password");
        CHECK_STR(set.items[1].value, "p=w#1"); /* first '=' splits; '#' only on comment lines */
        CHECK_STR(set.items[2].value, "C:\\x"); /* "\:" is ':', other backslashes stay */
        CHECK_VIEW(set.items[3].key, set.items[3].key_len, "client.id"); /* "\=" is '=' ... */
        CHECK_STR(set.items[3].value, "x=y"); /* ... and the name ends at the first '=' */
        CHECK_STR(set.items[4].value, "5");   /* repeated: both kept, applied in order */
        CHECK_STR(set.items[5].value, "6");
        CHECK_VIEW(set.items[6].key, set.items[6].key_len, "empty.ok");
        CHECK_STR(set.items[6].value, "");
    }
    CHECK_EQ_INT(cfg_parse_properties(&set, "k.properties", strdup("a=1\nnot a property\n"), err,
                                      sizeof(err)),
                 -1);
    CHECK_STR(err, "k.properties:2: expected property=value");
    CHECK_EQ_INT(cfg_parse_properties(&set, "k.properties", strdup("=1\n"), err, sizeof(err)), -1);
    CHECK_STR(err, "k.properties:1: expected property=value");
    CHECK_EQ_INT(cfg_parse_properties(&set, "k.properties", strdup("  = 1\n"), err, sizeof(err)),
                 -1);
    cfg_fini(&set);
}

/* ---- precedence and errors through the relay's table ---- */

static void test_relay_precedence(void)
{
    static struct options o;
    char err[OPTIONS_ERR_MAX];
    const char *file =
        write_tmp("# relay\nslot = s_file\npublication = p_file\nbrokers = b_file:9092\n"
                  "status-interval = 3\nno-create-slot = true\nkafka.linger.ms = 50\n"
                  "kafka.acks = 1\n");
    const char *env[] = {"CDC_CONFIG", file,        "CDC_SLOT", "s_env", "CDC_PUBLICATION",
                         "p_env",      "LOG_LEVEL", "",         NULL};
    const char *args[] = {"--slot", "s_flag", "-X", "acks=all", NULL};

    /* Defaults alone. */
    CHECK_EQ_INT(relay_run_opts(&o, NULL, NULL, err), 0);
    CHECK(o.relay.common.database_url == NULL);
    CHECK_STR(o.relay.common.brokers, "127.0.0.1:9092");
    CHECK_STR(o.relay.stream.slot, "cdc_outbox_slot");
    CHECK_STR(o.relay.common.table_schema, "public");
    CHECK_STR(o.relay.common.table_name, "outbox");
    CHECK_EQ_INT(o.relay.stream.status_interval_ms, 10000);
    CHECK_EQ_INT(o.relay.common.server_timeout_ms, 60000);
    CHECK_EQ_INT(o.relay.common.shutdown_timeout_ms, 30000);
    CHECK_EQ_INT(o.relay.common.reconnect_max_ms, 30000);
    CHECK_EQ_INT(o.relay.stream.heartbeat_interval_ms, 0);
    CHECK(o.relay.stream.create_slot && o.relay.stream.create_publication);
    CHECK_STR(o.relay.stream.state_file, "cdc-relay.cdc_outbox_slot.state");
    CHECK_EQ_INT(o.relay.common.nkafka_props, 0);
    CHECK_EQ_INT(o.log_level, LOG_LEVEL_INFO);
    CHECK_STR(o.metrics_listen, "127.0.0.1:8491"); /* on by default, loopback only */
    options_fini(&o);
    {
        const char *off[] = {"--metrics-listen", "none", NULL};
        const char *env_off[] = {"CDC_METRICS_LISTEN", "none", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, off, err), 0);
        CHECK(o.metrics_listen == NULL);
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, env_off, NULL, err), 0);
        CHECK(o.metrics_listen == NULL);
        options_fini(&o);
    }

    /* flag > env > file > default, per option. */
    CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
    CHECK_STR(o.relay.stream.slot, "s_flag");         /* flag beats env and file */
    CHECK_STR(o.relay.stream.publication, "p_env");   /* env beats file */
    CHECK_STR(o.relay.common.brokers, "b_file:9092"); /* file beats default */
    CHECK_EQ_INT(o.relay.stream.status_interval_ms, 3000);
    CHECK(!o.relay.stream.create_slot);
    CHECK_EQ_INT(o.log_level, LOG_LEVEL_INFO); /* empty variable: unset */
    CHECK_STR(o.relay.stream.state_file, "cdc-relay.s_flag.state");
    /* Kafka properties: file lines first, then -X, so the flag's acks wins in librdkafka. */
    CHECK_EQ_INT(o.relay.common.nkafka_props, 3);
    if (o.relay.common.nkafka_props == 3) {
        CHECK_STR(o.props[0].name, "linger.ms");
        CHECK_STR(o.props[0].value, "50");
        CHECK_STR(o.props[1].name, "acks");
        CHECK_STR(o.props[1].value, "1");
        CHECK_STR(o.props[2].name, "acks");
        CHECK_STR(o.props[2].value, "all");
    }
    options_fini(&o);

    /* --config beats CDC_CONFIG; a switch in the environment beats the file. */
    {
        const char *other = write_tmp("slot = s_other\n");
        const char *env2[] = {"CDC_CONFIG", file, "CDC_NO_CREATE_SLOT", "false", NULL};
        const char *args2[] = {"--config", other, NULL};

        CHECK_EQ_INT(relay_run_opts(&o, env2, args2, err), 0);
        CHECK_STR(o.relay.stream.slot, "s_other");
        CHECK(o.relay.stream.create_slot);
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, env2, NULL, err), 0);
        CHECK_STR(o.relay.stream.slot, "s_file");
        CHECK(o.relay.stream.create_slot); /* env false beats file true */
        options_fini(&o);
    }

    /* Every kind of value through the flag spelling with '='. */
    {
        const char *a[] = {"--table=sch.tbl",
                           "--heartbeat-interval=2.5",
                           "--replay-window",
                           "15m",
                           "--start-lsn",
                           "0/10",
                           "--end-lsn",
                           "1/0",
                           "--no-state-file",
                           "--source",
                           "messages",
                           "--log-format",
                           "json",
                           "--metrics-listen",
                           "127.0.0.1:0",
                           "--no-create-publication",
                           NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, a, err), 0);
        CHECK_STR(o.relay.common.table_schema, "sch");
        CHECK_STR(o.relay.common.table_name, "tbl");
        CHECK_EQ_INT(o.relay.stream.heartbeat_interval_ms, 2500);
        CHECK_EQ_INT(o.relay.stream.replay_window_s, 900);
        CHECK_EQ_U64(o.relay.stream.start_lsn, 0x10);
        CHECK_EQ_U64(o.relay.stream.end_lsn, UINT64_C(1) << 32);
        CHECK(o.relay.stream.state_file == NULL);
        CHECK(o.relay.stream.source_messages);
        CHECK_EQ_INT(o.log_format, LOG_FORMAT_JSON);
        CHECK_STR(o.metrics_listen, "127.0.0.1:0");
        CHECK(!o.relay.stream.create_publication);
        options_fini(&o);
    }
}

static void test_relay_errors(void)
{
    const char *file = write_tmp("slot = s\n\nstatus-interval = soon\n");
    const char *bad_file_env[] = {"CDC_CONFIG", file, NULL};
    const char *a1[] = {"--bogus", NULL}, *a2[] = {"--slot", NULL}, *a3[] = {"-X", "novalue", NULL},
               *a4[] = {"--start-lsn", "nope", NULL}, *a5[] = {"--config", "/nonexistent/x", NULL},
               *a6[] = {"--end-lsn", "0/1", "--start-lsn", "0/2", NULL},
               *a7[] = {"--table", "a.b.c", NULL}, *a8[] = {"--no-state-file=yes", NULL},
               *a9[] = {"stray", NULL}, *a10[] = {"--replay-window", "3w", NULL},
               *a11[] = {"--status-interval", "0", NULL}, *a12[] = {"-X", NULL},
               *a13[] = {"--status-interval", "3", "--status-interval", "4", NULL};
    const char *e1[] = {"CDC_SOURCE", "kafka", NULL}, *e2[] = {"CDC_NO_STATE_FILE", "si", NULL},
               *e3[] = {"LOG_FORMAT", "xml", NULL};

    EXPECT_RELAY_ERROR(NULL, a1, "unknown option \"--bogus\"");
    EXPECT_RELAY_ERROR(NULL, a2, "--slot requires a value (NAME)");
    EXPECT_RELAY_ERROR(NULL, a3, "-X expects NAME=VALUE");
    EXPECT_RELAY_ERROR(NULL, a4, "--start-lsn: \"nope\" is not a non-zero LSN");
    EXPECT_RELAY_ERROR(NULL, a5, "--config: cannot open config file \"/nonexistent/x\"");
    EXPECT_RELAY_ERROR(NULL, a6, "--end-lsn is before --start-lsn");
    EXPECT_RELAY_ERROR(NULL, a7, "--table: \"a.b.c\" is not SCHEMA.NAME");
    EXPECT_RELAY_ERROR(NULL, a8, "--no-state-file takes no value");
    EXPECT_RELAY_ERROR(NULL, a9, "unexpected argument \"stray\"");
    EXPECT_RELAY_ERROR(NULL, a10, "--replay-window: \"3w\" is not a duration");
    EXPECT_RELAY_ERROR(NULL, a11, "--status-interval: \"0\" is not a duration in [1ms, 1d]");
    EXPECT_RELAY_ERROR(NULL, a12, "-X requires a value");
    EXPECT_RELAY_ERROR(bad_file_env, NULL, ":3: status-interval: \"soon\" is not a duration");
    EXPECT_RELAY_ERROR(e1, NULL, "CDC_SOURCE: \"kafka\" is not table or messages");
    EXPECT_RELAY_ERROR(e2, NULL, "CDC_NO_STATE_FILE: \"si\" is not true or false");
    EXPECT_RELAY_ERROR(e3, NULL, "LOG_FORMAT: \"xml\" is not one of text, json");
    {
        /* The env file path is named in the message (":3:" above is after it). */
        static struct options o;
        char err[OPTIONS_ERR_MAX];

        CHECK_EQ_INT(relay_run_opts(&o, bad_file_env, NULL, err), -1);
        CHECK_CONTAINS(err, file);
        options_fini(&o);
        /* A bad file value overridden by a flag is still an error? No: only winners are
         * validated, as with the environment. */
        {
            const char *a[] = {"--status-interval", "4", NULL};

            CHECK_EQ_INT(relay_run_opts(&o, bad_file_env, a, err), 0);
            CHECK_EQ_INT(o.relay.stream.status_interval_ms, 4000);
            options_fini(&o);
        }
        /* Repeated flags: the last one wins. */
        CHECK_EQ_INT(relay_run_opts(&o, NULL, a13, err), 0);
        CHECK_EQ_INT(o.relay.stream.status_interval_ms, 4000);
        options_fini(&o);
    }
    /* Errors never echo the database URL. */
    {
        static struct options o;
        char err[OPTIONS_ERR_MAX];
        const char *a[] = {"--database-url", "postgresql://u:hunter2@h/db", "--slot", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, a, err), -1);
        CHECK(strstr(err, "hunter2") == NULL);
        options_fini(&o);
    }
    /* --help wins wherever it is, before anything is validated or read. */
    {
        static struct options o;
        char err[OPTIONS_ERR_MAX];
        const char *a[] = {"-h", "--config", "/nonexistent/x", NULL};
        const char *v[] = {"-V", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, a, err), 0);
        CHECK_EQ_INT(o.action, OPTIONS_HELP);
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, NULL, v, err), 0);
        CHECK_EQ_INT(o.action, OPTIONS_VERSION);
        options_fini(&o);
    }
}

static int fake_check(const char *name, const char *value, char *why, size_t whylen)
{
    if (strcmp(name, "bogus.prop") == 0)
        return snprintf(why, whylen, "no such property \"%s\"", name), -1;
    if (strcmp(name, "acks") == 0 && strcmp(value, "all") != 0 && strcmp(value, "1") != 0)
        return snprintf(why, whylen, "invalid value for acks"), -1;
    return 0;
}

/* kcat's -X forms, properties files, and every property checked with labels. */
static void test_relay_kafka_properties(void)
{
    static struct options o;
    char err[OPTIONS_ERR_MAX];
    const char *props = write_tmp("# kcat format\nlinger.ms = 11\nacks=1\n");
    const char *props2 = write_tmp("compression.type=lz4\nacks=all\n");
    const char *conf = write_tmp("kafka.client.id = from-conf\nkafka-config = /nonexistent/x\n");

    /* -Xname=value, -X name=value, -X file=PATH, --kafka-config; files before flags. */
    {
        const char *env[] = {"CDC_KAFKA_CONFIG", props, NULL};
        char file_arg[300];
        const char *args[] = {"-Xlinger.ms=20", "-X", file_arg, "-X", "acks=all", NULL};

        snprintf(file_arg, sizeof(file_arg), "file=%s", props2);
        CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
        CHECK_EQ_INT(o.relay.common.nkafka_props, 6);
        if (o.relay.common.nkafka_props == 6) {
            /* CDC_KAFKA_CONFIG's file, then -X file=, then the -X flags in order */
            CHECK_STR(o.props[0].name, "linger.ms");
            CHECK_STR(o.props[0].value, "11");
            CHECK_STR(o.props[1].name, "acks");
            CHECK_STR(o.props[2].name, "compression.type");
            CHECK_STR(o.props[3].name, "acks");
            CHECK_STR(o.props[3].value, "all");
            CHECK_STR(o.props[4].name, "linger.ms");
            CHECK_STR(o.props[4].value, "20"); /* the flag wins in librdkafka: applied last */
            CHECK_STR(o.props[5].value, "all");
        }
        CHECK_EQ_INT(options_check_kafka(&o, fake_check, err, sizeof(err)), 0);
        options_fini(&o);
    }
    /* The config file's kafka-config names a file that is missing; a flag overrides it. */
    {
        const char *env[] = {"CDC_CONFIG", conf, NULL};
        const char *args[] = {"--kafka-config", props2, NULL};

        CHECK_EQ_INT(relay_run_opts(&o, env, NULL, err), -1);
        CHECK_CONTAINS(err,
                       ":2: kafka-config: cannot open Kafka properties file \"/nonexistent/x\"");
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
        CHECK_EQ_INT(o.relay.common.nkafka_props, 3);
        if (o.relay.common.nkafka_props == 3)
            CHECK_STR(o.props[0].value, "from-conf"); /* config file lines come first */
        options_fini(&o);
    }
    /* Every property is checked, and the error names where it came from. */
    {
        const char *a1[] = {"-Xbogus.prop=1", NULL}, *a2[] = {"-X", "acks=maybe", NULL};
        const char *bad = write_tmp("linger.ms=1\n\nacks=2\n");
        const char *e3[] = {"CDC_KAFKA_CONFIG", bad, NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, a1, err), 0);
        CHECK_EQ_INT(options_check_kafka(&o, fake_check, err, sizeof(err)), -1);
        CHECK_STR(err, "-X: no such property \"bogus.prop\"");
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, NULL, a2, err), 0);
        CHECK_EQ_INT(options_check_kafka(&o, fake_check, err, sizeof(err)), -1);
        CHECK_STR(err, "-X: invalid value for acks");
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, e3, NULL, err), 0);
        CHECK_EQ_INT(options_check_kafka(&o, fake_check, err, sizeof(err)), -1);
        CHECK_CONTAINS(err, ":3: invalid value for acks");
        CHECK_CONTAINS(err, bad);
        options_fini(&o);
    }
    {
        const char *a1[] = {"-X", "file=", NULL}, *a2[] = {"-Xfile=/nonexistent/p", NULL},
                   *a3[] = {"-Vx", NULL}, *a4[] = {"-X", "=1", NULL};

        EXPECT_RELAY_ERROR(NULL, a1, "-X file= needs a PATH");
        EXPECT_RELAY_ERROR(NULL, a2,
                           "-X file=: cannot open Kafka properties file \"/nonexistent/p\"");
        EXPECT_RELAY_ERROR(NULL, a3, "unexpected argument \"-Vx\"");
        EXPECT_RELAY_ERROR(NULL, a4, "-X expects NAME=VALUE");
    }
}

/* Secrets off the command line: *_FILE forms, CDC_KAFKA_* variables. */
static void test_relay_secrets_from_files_and_env(void)
{
    static struct options o;
    char err[OPTIONS_ERR_MAX];
    const char *url = write_tmp("postgresql://relay:pw@db/orders\r\n\n");
    const char *pw = write_tmp("s3cret\n");
    const char *blank = write_tmp("\n");
    const char *pem = write_tmp("-----BEGIN-----\nAAA\n-----END-----\n");
    char conf_text[512];
    const char *conf;

    {
        const char *env[] = {"DATABASE_URL_FILE",
                             url,
                             "CDC_KAFKA_SASL_PASSWORD_FILE",
                             pw,
                             "CDC_KAFKA_SASL_USERNAME",
                             "relay",
                             "CDC_KAFKA_SSL_KEY_PEM_FILE",
                             pem,
                             "CDC_KAFKA_ENABLE_SSL__CERTIFICATE_VERIFICATION",
                             "true",
                             "CDC_KAFKA_CONFIG",
                             pw, /* a row's own variable, not a property */
                             NULL};

        /* CDC_KAFKA_CONFIG names a properties file: s3cret is no property line */
        CHECK_EQ_INT(relay_run_opts(&o, env, NULL, err), -1);
        CHECK_CONTAINS(err, "expected property=value");
        options_fini(&o);
        env[10] = NULL;
        CHECK_EQ_INT(relay_run_opts(&o, env, NULL, err), 0);
        /* trailing CR/LF dropped, the rest kept byte for byte */
        CHECK_STR(o.relay.common.database_url, "postgresql://relay:pw@db/orders");
        CHECK_EQ_INT(o.relay.common.nkafka_props, 4);
        for (size_t i = 0; i < o.relay.common.nkafka_props; i++) {
            const char *n = o.props[i].name, *v = o.props[i].value;

            if (strcmp(n, "sasl.password") == 0)
                CHECK_STR(v, "s3cret");
            else if (strcmp(n, "sasl.username") == 0)
                CHECK_STR(v, "relay");
            else if (strcmp(n, "ssl.key.pem") == 0)
                CHECK_STR(v, "-----BEGIN-----\nAAA\n-----END-----");
            else if (strcmp(n, "enable.ssl_certificate.verification") == 0)
                CHECK_STR(v, "true");
            else
                CHECK_FAIL_AT(__FILE__, __LINE__, "unexpected property %s", n);
        }
        options_fini(&o);
    }
    /* A file of newlines counts as unset (systemd's SetCredential default). */
    {
        const char *env[] = {"DATABASE_URL", "postgresql://from-env/db", "DATABASE_URL_FILE", blank,
                             NULL};

        CHECK_EQ_INT(relay_run_opts(&o, env, NULL, err), 0);
        CHECK_STR(o.relay.common.database_url, "postgresql://from-env/db");
        options_fini(&o);
    }
    /* Precedence: the config file < its file form's own level rules; env < flag. */
    snprintf(conf_text, sizeof(conf_text),
             "database-url-file = %s\nkafka.sasl.password = from-conf\n", url);
    conf = write_tmp(conf_text);
    {
        const char *env[] = {"CDC_CONFIG", conf, "CDC_KAFKA_SASL_PASSWORD", "from-env", NULL};
        const char *args[] = {"-X", "sasl.password=from-flag", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, env, NULL, err), 0);
        CHECK_STR(o.relay.common.database_url, "postgresql://relay:pw@db/orders");
        CHECK_EQ_INT(o.relay.common.nkafka_props, 2);
        if (o.relay.common.nkafka_props == 2) /* file line, then the variable: the variable wins */
            CHECK_STR(o.props[1].value, "from-env");
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
        CHECK_EQ_INT(o.relay.common.nkafka_props, 3);
        if (o.relay.common.nkafka_props == 3)
            CHECK_STR(o.props[2].value, "from-flag");
        options_fini(&o);
    }
    /* flags: --database-url-file, and the last of the two forms wins */
    {
        const char *args[] = {"--database-url", "postgresql://flag/db", "--database-url-file", url,
                              NULL};
        const char *args2[] = {"--database-url-file", url, "--database-url=postgresql://last/db",
                               NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, args, err), 0);
        CHECK_STR(o.relay.common.database_url, "postgresql://relay:pw@db/orders");
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, NULL, args2, err), 0);
        CHECK_STR(o.relay.common.database_url, "postgresql://last/db");
        options_fini(&o);
    }
    /* Errors: both forms in the environment, a missing file, a bad name. */
    {
        const char *e1[] = {"DATABASE_URL", "postgresql://x/db", "DATABASE_URL_FILE", url, NULL};
        const char *e2[] = {"CDC_KAFKA_SASL_PASSWORD", "a", "CDC_KAFKA_SASL_PASSWORD_FILE", pw,
                            NULL};
        const char *e3[] = {"CDC_KAFKA_SASL_PASSWORD_FILE", "/nonexistent/pw", NULL};
        const char *e4[] = {"CDC_KAFKA_SASL____X", "1", NULL};
        const char *e5[] = {"CDC_KAFKA_SASL.PASSWORD", "1", NULL};
        const char *a6[] = {"--database-url-file", "/nonexistent/url", NULL};

        EXPECT_RELAY_ERROR(e1, NULL, "are both set");
        EXPECT_RELAY_ERROR(e2, NULL, "are both set");
        EXPECT_RELAY_ERROR(
            e3, NULL, "CDC_KAFKA_SASL_PASSWORD_FILE: cannot open value file \"/nonexistent/pw\"");
        EXPECT_RELAY_ERROR(e4, NULL, "CDC_KAFKA_SASL____X: not a librdkafka property name");
        EXPECT_RELAY_ERROR(e5, NULL, "not a librdkafka property name");
        EXPECT_RELAY_ERROR(NULL, a6, "--database-url-file: cannot open value file");
    }
}

static void test_kafka_env_names(void)
{
    char out[64];

    CHECK(cfg_kafka_env_name("SASL_PASSWORD", 13, out, sizeof(out)));
    CHECK_STR(out, "sasl.password");
    CHECK(cfg_kafka_env_name("ENABLE_SSL__CERTIFICATE_VERIFICATION", 36, out, sizeof(out)));
    CHECK_STR(out, "enable.ssl_certificate.verification");
    CHECK(cfg_kafka_env_name("A___B", 5, out, sizeof(out)));
    CHECK_STR(out, "a-b");
    CHECK(cfg_kafka_env_name("linger_ms", 9, out, sizeof(out)));
    CHECK_STR(out, "linger.ms");
    CHECK(!cfg_kafka_env_name("", 0, out, sizeof(out)));
    CHECK(!cfg_kafka_env_name("A____B", 6, out, sizeof(out)));
    CHECK(!cfg_kafka_env_name("A-B", 3, out, sizeof(out)));
    CHECK(!cfg_kafka_env_name("ABCDEFGH", 8, out, 8)); /* does not fit */
}

/* The column mapping options and --header-columns' checks. */
static void test_relay_columns(void)
{
    static struct options o;
    char err[OPTIONS_ERR_MAX];

    {
        const char *env[] = {"CDC_ROUTE_COLUMN", "aggregatetype", "CDC_HEADER_COLUMNS",
                             "tenant=x-tenant,schema_version", NULL};
        const char *args[] = {
            "--key-column",       "aggregateid", "--type-column", "type", "--traceparent-column",
            "tracingspancontext", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
        CHECK_STR(o.relay.common.columns->role[OUTBOX_COL_ID], "id");
        CHECK_STR(o.relay.common.columns->role[OUTBOX_COL_AGGREGATE_TYPE], "aggregatetype");
        CHECK_STR(o.relay.common.columns->role[OUTBOX_COL_AGGREGATE_ID], "aggregateid");
        CHECK_STR(o.relay.common.columns->role[OUTBOX_COL_EVENT_TYPE], "type");
        CHECK_STR(o.relay.common.columns->traceparent, "tracingspancontext");
        CHECK(o.relay.common.columns->traceparent_required);
        CHECK_EQ_INT(o.relay.common.columns->nheaders, 2);
        CHECK_STR(o.relay.common.columns->headers[0].header, "x-tenant");
        CHECK_STR(o.relay.common.columns->headers[1].column, "schema_version");
        options_fini(&o);
    }
    {
        const char *args[] = {"--traceparent-column", "none", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, NULL, err), 0);
        CHECK_STR(o.relay.common.columns->traceparent, "traceparent");
        CHECK(!o.relay.common.columns->traceparent_required); /* the default is optional */
        options_fini(&o);
        CHECK_EQ_INT(relay_run_opts(&o, NULL, args, err), 0);
        CHECK(o.relay.common.columns->traceparent == NULL);
        options_fini(&o);
    }
    {
        const char *a1[] = {"--header-columns", "a,,b", NULL};
        const char *a2[] = {"--header-columns", "x=lsn", NULL};
        const char *a3[] = {"--id-column", "", NULL};
        const char *e4[] = {"CDC_HEADER_COLUMNS", "a=h,b=h", NULL};

        EXPECT_RELAY_ERROR(NULL, a1, "--header-columns: \"a,,b\": an empty column");
        EXPECT_RELAY_ERROR(NULL, a2, "a header the relay sets itself");
        EXPECT_RELAY_ERROR(NULL, a3, "--id-column: a column name is 1 to 255 bytes");
        EXPECT_RELAY_ERROR(e4, NULL, "CDC_HEADER_COLUMNS: \"a=h,b=h\": the same header name twice");
    }
}

/* Every time option takes a unit; a bare number keeps the option's old unit. */
static void test_durations(void)
{
    static struct options o;
    char err[OPTIONS_ERR_MAX], *argv[8];
    int argc;
    struct config cfg;

    {
        const char *env[] = {"CDC_STATUS_INTERVAL",
                             "10s",
                             "CDC_SERVER_TIMEOUT",
                             "2m",
                             "CDC_TXN_MAX_MS",
                             "250",
                             "CDC_REPLAY_WINDOW",
                             "1500ms",
                             "CDC_POLL_INTERVAL",
                             "500ms",
                             NULL};
        const char *args[] = {"--shutdown-timeout", "1m30s", "--heartbeat-interval", "0.5s", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
        CHECK_EQ_INT(o.relay.stream.status_interval_ms, 10000);
        CHECK_EQ_INT(o.relay.common.server_timeout_ms, 120000);
        CHECK_EQ_INT(o.relay.stream.txn_max_ms, 250); /* bare: milliseconds, as before */
        CHECK_EQ_INT(o.relay.stream.replay_window_s,
                     2); /* rounded up: never less WAL kept than asked */
        CHECK_EQ_INT(o.relay.poll.interval_ms, 500);
        CHECK_EQ_INT(o.relay.common.shutdown_timeout_ms, 90000);
        CHECK_EQ_INT(o.relay.stream.heartbeat_interval_ms, 500);
        options_fini(&o);
    }
    {
        const char *env[] = {"CDC_TXN_MAX_MS", "2s", "CDC_REPLAY_WINDOW", "2h", NULL};
        const char *args[] = {"--reconnect-max", "45", "--status-interval", "0.25", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
        CHECK_EQ_INT(o.relay.stream.txn_max_ms, 2000);
        CHECK_EQ_INT(o.relay.stream.replay_window_s, 7200);
        CHECK_EQ_INT(o.relay.common.reconnect_max_ms, 45000); /* bare: seconds, as before */
        CHECK_EQ_INT(o.relay.stream.status_interval_ms, 250);
        options_fini(&o);
    }
    {
        const char *e1[] = {"CDC_STATUS_INTERVAL", "2d", NULL},
                   *e2[] = {"CDC_TXN_MAX_MS", "0", NULL},
                   *e3[] = {"CDC_HEARTBEAT_INTERVAL", "-1s", NULL},
                   *e4[] = {"CDC_REPLAY_WINDOW", "3651d", NULL};

        EXPECT_RELAY_ERROR(e1, NULL,
                           "CDC_STATUS_INTERVAL: \"2d\" is not a duration in [1ms, 1d] (500ms, "
                           "10s, 15m, 2h, 1d; a bare number is seconds)");
        EXPECT_RELAY_ERROR(e2, NULL, "a bare number is milliseconds");
        EXPECT_RELAY_ERROR(e3, NULL, "CDC_HEARTBEAT_INTERVAL: \"-1s\" is not off or a duration");
        EXPECT_RELAY_ERROR(e4, NULL, "in [0, 3650d]");
    }
    {
        const char *env[] = {"DB_TIMEOUT_MS", "7s", NULL}, *bad[] = {"DB_TIMEOUT_MS", "99", NULL};

        build_argv(argv, &argc, "orders-api", NULL);
        fake_env = env;
        CHECK_EQ_INT(config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err)), 0);
        CHECK_EQ_INT(cfg.db_timeout_ms, 7000);
        config_fini(&cfg);
        fake_env = bad;
        CHECK_EQ_INT(config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err)), -1);
        CHECK_CONTAINS(err, "DB_TIMEOUT_MS: \"99\" is not a duration in [100ms, 10m]");
        config_fini(&cfg);
    }
}

static char *print_to_string(const struct options *o)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);

    options_print(f, o);
    fclose(f);
    return text;
}

static void test_relay_print_config(void)
{
    static struct options o;
    char err[OPTIONS_ERR_MAX], line[256];
    const char *file = write_tmp("database-url = host=db user=relay password='s3 cr3t'\n"
                                 "kafka.sasl.password = filepw\nkafka.client.id = me\n");
    const char *env[] = {"CDC_CONFIG", file, "KAFKA_BROKERS", "k:9092", NULL};
    const char *args[] = {"--print-config", "-X", "ssl.key.pem=-----BEGIN", "--slot=s1", NULL};
    char *text;

    CHECK_EQ_INT(relay_run_opts(&o, env, args, err), 0);
    CHECK_EQ_INT(o.action, OPTIONS_PRINT_CONFIG);
    text = print_to_string(&o);
    snprintf(line, sizeof(line), "database-url = host=db user=relay password='***'  [file %s:1]\n",
             file);
    CHECK_CONTAINS(text, line);
    CHECK_CONTAINS(text, "brokers = k:9092  [env KAFKA_BROKERS]\n");
    CHECK_CONTAINS(text, "slot = s1  [flag --slot]\n");
    CHECK_CONTAINS(text, "publication = cdc_outbox_pub  [default]\n");
    CHECK_CONTAINS(text, "state-file = cdc-relay.s1.state  [default]\n");
    CHECK_CONTAINS(text, "metrics-listen = 127.0.0.1:8491  [default]\n");
    snprintf(line, sizeof(line), "config = %s  [env CDC_CONFIG]\n", file);
    CHECK_CONTAINS(text, line);
    snprintf(line, sizeof(line), "kafka.sasl.password = ***  [file %s:2]\n", file);
    CHECK_CONTAINS(text, line);
    snprintf(line, sizeof(line), "kafka.client.id = me  [file %s:3]\n", file);
    CHECK_CONTAINS(text, line);
    CHECK_CONTAINS(text, "kafka.ssl.key.pem = ***  [flag -X]\n");
    CHECK(strstr(text, "s3 cr3t") == NULL);
    CHECK(strstr(text, "filepw") == NULL);
    CHECK(strstr(text, "BEGIN") == NULL);
    CHECK(strstr(text, "print-config") == NULL); /* an action, not a setting */
    free(text);
    options_fini(&o);

    /* A URI password given as --name=value is masked, and the flag is shown without it. */
    {
        const char *a[] = {"--print-config", "--database-url=postgresql://u:pw9@h/db", NULL};

        CHECK_EQ_INT(relay_run_opts(&o, NULL, a, err), 0);
        text = print_to_string(&o);
        CHECK_CONTAINS(text, "database-url = postgresql://u:***@h/db  [flag --database-url]\n");
        CHECK(strstr(text, "pw9") == NULL);
        free(text);
        options_fini(&o);
    }
}

/* ---- orders-api: the same rule through its table ---- */

static void test_api(void)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX], *argv[16], *text = NULL;
    size_t n = 0;
    int argc;
    FILE *f;
    const char *file = write_tmp("pool-size = 4\nlisten = 127.0.0.1:9001\noutbox-mode = message\n"
                                 "database-url = postgresql://api:apipw@db/orders\n");
    const char *env[] = {"API_CONFIG", file, "LISTEN_ADDR", "127.0.0.1:9002", NULL};
    const char *args[] = {"--pool-size", "5", "--print-config", NULL};

    build_argv(argv, &argc, "orders-api", args);
    fake_env = env;
    CHECK_EQ_INT(config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err)), 0);
    CHECK_EQ_INT(cfg.pool_size, 5);                      /* flag */
    CHECK_STR(cfg.listen, "127.0.0.1:9002");             /* env beats file */
    CHECK_EQ_INT(cfg.outbox_mode, STORE_OUTBOX_MESSAGE); /* file beats default */
    CHECK_EQ_INT(cfg.db_timeout_ms, 5000);               /* default */
    CHECK(cfg.print_config);
    f = open_memstream(&text, &n);
    config_print(f, &cfg);
    fclose(f);
    CHECK_CONTAINS(text, "pool-size = 5  [flag --pool-size]\n");
    CHECK_CONTAINS(text, "listen = 127.0.0.1:9002  [env LISTEN_ADDR]\n");
    CHECK_CONTAINS(text, "database-url = postgresql://api:***@db/orders  [file ");
    CHECK_CONTAINS(text, "db-timeout-ms = 5s  [default]\n");
    CHECK(strstr(text, "apipw") == NULL);
    CHECK(strstr(text, "migrate") == NULL);
    free(text);
    config_fini(&cfg);

    /* File errors name file:line; migrate is command line only. */
    {
        const char *bad = write_tmp("pool-size = 0\n");
        const char *bad2 = write_tmp("migrate = true\n");
        const char *e1[] = {"API_CONFIG", bad, NULL}, *e2[] = {"API_CONFIG", bad2, NULL};

        build_argv(argv, &argc, "orders-api", NULL);
        fake_env = e1;
        CHECK_EQ_INT(config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err)), -1);
        CHECK_CONTAINS(err, ":1: pool-size: \"0\" is not an integer between 1 and 128");
        config_fini(&cfg);
        fake_env = e2;
        CHECK_EQ_INT(config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err)), -1);
        CHECK_CONTAINS(err, ":1: \"migrate\" cannot be set in a config file");
        config_fini(&cfg);
    }
    /* DATABASE_URL_FILE: the systemd credential path of orders-api.service. */
    {
        const char *url = write_tmp("postgresql://api:filepw@db/orders\n");
        const char *e1[] = {"DATABASE_URL_FILE", url, NULL};

        build_argv(argv, &argc, "orders-api", NULL);
        fake_env = e1;
        CHECK_EQ_INT(config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err)), 0);
        CHECK_STR(cfg.database_url, "postgresql://api:filepw@db/orders");
        text = NULL;
        f = open_memstream(&text, &n);
        config_print(f, &cfg);
        fclose(f);
        CHECK_CONTAINS(text, "database-url = postgresql://api:***@db/orders  [env "
                             "DATABASE_URL_FILE <- ");
        CHECK(strstr(text, "filepw") == NULL);
        free(text);
        config_fini(&cfg);
    }
}

int main(void)
{
    RUN(test_file_parser);
    RUN(test_properties_parser);
    RUN(test_helpers);
    RUN(test_relay_precedence);
    RUN(test_relay_errors);
    RUN(test_durations);
    RUN(test_relay_kafka_properties);
    RUN(test_relay_secrets_from_files_and_env);
    RUN(test_kafka_env_names);
    RUN(test_relay_columns);
    RUN(test_relay_print_config);
    RUN(test_api);
    for (int i = 0; i < ntmp; i++)
        unlink(tmp_paths[i]);
    return check_summary();
}
