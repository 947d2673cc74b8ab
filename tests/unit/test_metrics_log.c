/* Logs for machines and humans: JSON lines that parse (whatever the message
 * holds), lsn and event_id fields, text-format fields, and DSN redaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "unit/check.h"

/* Runs fn with stderr sent to a temporary file; returns what it wrote (new). */
static char *capture(void (*fn)(void))
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    off_t size;
    char *out = NULL;

    if (tmp == NULL || saved < 0)
        goto out;
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    /* log.c writes with write(2): read the file back the same way */
    size = lseek(fileno(tmp), 0, SEEK_END);
    if (size < 0 || lseek(fileno(tmp), 0, SEEK_SET) != 0)
        goto out;
    out = calloc(1, (size_t)size + 1);
    if (out != NULL && read(fileno(tmp), out, (size_t)size) != (ssize_t)size)
        out[0] = '\0';
out:
    if (saved >= 0)
        close(saved);
    if (tmp != NULL)
        fclose(tmp);
    return out;
}

/* The n-th line of text as a JSON object (new reference), or NULL. */
static json_t *json_line(const char *text, int n)
{
    const char *p = text;
    const char *eol;

    for (; n > 0 && p != NULL; n--) {
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    if (p == NULL || (eol = strchr(p, '\n')) == NULL)
        return NULL;
    return json_loadb(p, (size_t)(eol - p), 0, NULL);
}

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void emit_json_lines(void)
{
    static const char id[] = "0b5c1e1e-7a3d-4c3e-9f1b-2d6c7a1f0e11-and-more";

    log_info("plain message n=%d", 3);
    /* event id given as a view: only the first 36 bytes are the id */
    log_event(LOG_LEVEL_WARN, UINT64_C(0x16B3F80), id, 36, "event failed: %s", "timeout");
    log_event(LOG_LEVEL_ERROR, 0, NULL, -1, "quote \" backslash \\ newline \n tab \t bell \a");
    log_info("bad utf-8 \xff\xfe ok \xc3\xa9 cut \xe2\x82");
    log_debug("not shown at info");
}

static void test_json_format(void)
{
    char *out;
    json_t *j;

    log_output = LOG_FORMAT_JSON;
    log_threshold = LOG_LEVEL_INFO;
    out = capture(emit_json_lines);
    log_output = LOG_FORMAT_TEXT;
    CHECK(out != NULL);
    if (out == NULL)
        return;

    j = json_line(out, 0);
    CHECK(j != NULL);
    CHECK_STR(str(j, "level"), "info");
    CHECK_STR(str(j, "msg"), "plain message n=3");
    CHECK(str(j, "ts") != NULL && strlen(str(j, "ts")) == 24 && str(j, "ts")[23] == 'Z');
    CHECK(json_object_get(j, "lsn") == NULL);
    json_decref(j);

    j = json_line(out, 1);
    CHECK(j != NULL);
    CHECK_STR(str(j, "level"), "warn");
    CHECK_STR(str(j, "msg"), "event failed: timeout");
    CHECK_STR(str(j, "lsn"), "0/16B3F80");
    CHECK_STR(str(j, "event_id"), "0b5c1e1e-7a3d-4c3e-9f1b-2d6c7a1f0e11");
    json_decref(j);

    j = json_line(out, 2);
    CHECK(j != NULL);
    CHECK_STR(str(j, "msg"), "quote \" backslash \\ newline \n tab \t bell \a");
    CHECK(json_object_get(j, "lsn") == NULL);      /* 0: left out */
    CHECK(json_object_get(j, "event_id") == NULL); /* NULL: left out */
    json_decref(j);

    j = json_line(out, 3);
    CHECK(j != NULL); /* invalid UTF-8 replaced, so jansson accepts the line */
    CHECK_STR(str(j, "msg"), "bad utf-8 \xef\xbf\xbd\xef\xbf\xbd ok \xc3\xa9 cut "
                             "\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);

    CHECK(json_line(out, 4) == NULL); /* the debug line was not written */
    free(out);
}

static void emit_long(void)
{
    static char big[6000];
    struct log_field fields[] = {{"lsn", "1/2", -1}, {"big", big, -1}};

    memset(big, '"', sizeof(big) - 1);
    log_write_fields(LOG_LEVEL_ERROR, fields, 2, "%s", big);
}

static void test_json_long_line_stays_valid(void)
{
    char *out;
    json_t *j;

    log_output = LOG_FORMAT_JSON;
    out = capture(emit_long);
    log_output = LOG_FORMAT_TEXT;
    CHECK(out != NULL);
    if (out == NULL)
        return;
    CHECK(strchr(out, '\n') == out + strlen(out) - 1); /* one line */
    j = json_line(out, 0);
    CHECK(j != NULL); /* cut, escapes kept whole, still closed */
    CHECK(str(j, "msg") != NULL && strlen(str(j, "msg")) > 1000);
    CHECK(json_object_get(j, "big") == NULL); /* a field that does not fit is left out */
    json_decref(j);
    free(out);
}

static void emit_text_fields(void)
{
    struct log_field fields[] = {{"lsn", "0/10", -1},         {"event_id", "abc", -1},
                                 {"reason", "two words", -1}, {"empty", "", -1},
                                 {"skipped", NULL, -1},       {"q", "a\"b", -1}};

    log_write_fields(LOG_LEVEL_INFO, fields, 6, "message");
    log_event(LOG_LEVEL_ERROR, UINT64_C(0x100000010), "id-1", -1, "bad outbox row");
}

static void test_text_fields(void)
{
    char *out = capture(emit_text_fields);
    char *line2;

    CHECK(out != NULL);
    if (out == NULL)
        return;
    CHECK(strstr(out, " info message lsn=0/10 event_id=abc reason=\"two words\" empty=\"\" "
                      "q=\"a\\\"b\"\n") != NULL);
    CHECK(strstr(out, "skipped") == NULL);
    line2 = strchr(out, '\n') + 1;
    CHECK(strstr(line2, " error bad outbox row lsn=1/10 event_id=id-1\n") != NULL);
    free(out);
}

static void emit_journal_levels(void)
{
    log_threshold = LOG_LEVEL_DEBUG;
    log_error("e");
    log_warn("w");
    log_info("i");
    log_debug("d");
    log_fields(LOG_LEVEL_INFO, "with fields", LOG_STR("addr", "127.0.0.1:1"), LOG_INT("n", -42));
    log_threshold = LOG_LEVEL_INFO;
}

/* Under journald each line starts with its syslog priority; detection
 * compares JOURNAL_STREAM with stderr's own device and inode. */
static void test_journal(void)
{
    char *out;
    json_t *j;

    CHECK(log_journal_stream_is("2049:131", 2049, 131));
    CHECK(log_journal_stream_is("0:0", 0, 0));
    CHECK(log_journal_stream_is("18446744073709551615:1", 18446744073709551615ULL, 1));
    CHECK(!log_journal_stream_is("2049:131", 2049, 132));
    CHECK(!log_journal_stream_is("2049:131", 2048, 131));
    CHECK(!log_journal_stream_is(NULL, 0, 0));
    CHECK(!log_journal_stream_is("", 0, 0));
    CHECK(!log_journal_stream_is("2049", 2049, 0));
    CHECK(!log_journal_stream_is("2049:", 2049, 0));
    CHECK(!log_journal_stream_is(":131", 0, 131));
    CHECK(!log_journal_stream_is("2049:131x", 2049, 131));
    CHECK(!log_journal_stream_is(" 2049:131", 2049, 131));
    CHECK(!log_journal_stream_is("-1:131", 0, 131));
    CHECK(!log_journal_stream_is("18446744073709551616:1", 0, 1)); /* overflow */

    /* Not the journal: JOURNAL_STREAM unset, or naming another file. */
    unsetenv("JOURNAL_STREAM");
    log_detect_journal();
    CHECK(!log_journal);
    setenv("JOURNAL_STREAM", "1:1", 1);
    log_detect_journal();
    CHECK(!log_journal);
    unsetenv("JOURNAL_STREAM");

    log_journal = true;
    log_output = LOG_FORMAT_TEXT;
    out = capture(emit_journal_levels);
    CHECK(out != NULL);
    if (out != NULL) {
        CHECK(strncmp(out, "<3>", 3) == 0 && strstr(out, " error e\n") != NULL);
        CHECK(strstr(out, "\n<4>") != NULL && strstr(out, " warn w\n") != NULL);
        CHECK(strstr(out, "\n<6>") != NULL && strstr(out, " info i\n") != NULL);
        CHECK(strstr(out, "\n<7>") != NULL && strstr(out, " debug d\n") != NULL);
        CHECK(strstr(out, " info with fields addr=127.0.0.1:1 n=-42\n") != NULL);
        free(out);
    }
    /* JSON after the prefix: journald strips "<N>", the rest must parse. */
    log_output = LOG_FORMAT_JSON;
    out = capture(emit_journal_levels);
    CHECK(out != NULL && strncmp(out, "<3>{", 4) == 0);
    if (out != NULL) {
        j = json_line(out + 3, 0);
        CHECK(j != NULL && strcmp(str(j, "msg"), "e") == 0);
        json_decref(j);
        j = json_line(strstr(out, "<6>{\"ts\"") + 3, 0);
        CHECK(j != NULL);
        json_decref(j);
        free(out);
    }
    log_journal = false;
    log_output = LOG_FORMAT_TEXT;
}

static void test_format_parse(void)
{
    enum log_format f = LOG_FORMAT_TEXT;

    CHECK(log_format_parse("json", &f));
    CHECK_EQ_INT(f, LOG_FORMAT_JSON);
    CHECK(log_format_parse("text", &f));
    CHECK_EQ_INT(f, LOG_FORMAT_TEXT);
    CHECK(!log_format_parse("JSON", &f));
    CHECK(!log_format_parse("", &f));
}

static void test_redact_dsn(void)
{
    char buf[256];
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"postgresql://relay:s3cret@db:5432/orders", "postgresql://relay:***@db:5432/orders"},
        {"postgres://relay:p%40ss@db/orders?sslmode=require",
         "postgres://relay:***@db/orders?sslmode=require"},
        {"postgresql://relay@db/orders", "postgresql://relay@db/orders"},
        {"postgresql://db/orders", "postgresql://db/orders"},
        {"postgresql:///orders?host=/tmp&password=hunter2&user=x",
         "postgresql:///orders?host=/tmp&password=***&user=x"},
        {"postgresql://u:a@b@db/orders", "postgresql://u:***@b@db/orders"},
        {"postgresql://db/orders?sslpassword=k#frag",
         "postgresql://db/orders?sslpassword=***#frag"},
        {"host=db user=relay password=s3cret dbname=orders",
         "host=db user=relay password=*** dbname=orders"},
        {"host=db password = 'two words \\' quote' dbname=orders",
         "host=db password = '***' dbname=orders"},
        {"password=x", "password=***"},
        {"sslpassword=k host=h", "sslpassword=*** host=h"},
        {"host=db mypassword=visible", "host=db mypassword=visible"},
        {"host=db dbname='password=not a key'", "host=db dbname='password=not a key'"},
        {"", ""},
        {"garbage without equals", "garbage without equals"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_STR(log_redact_dsn(cases[i].in, buf, sizeof(buf)), cases[i].out);
    CHECK_STR(log_redact_dsn(NULL, buf, sizeof(buf)), "");
    /* a small buffer cuts, always terminated, never past the password */
    CHECK_STR(log_redact_dsn("password=s3cret", buf, 12), "password=**");
    CHECK_STR(log_redact_dsn("postgresql://u:secret@h", buf, 17), "postgresql://u:*");
}

static void emit_secret_lines(void)
{
    struct log_field fields[] = {{"conn", "user=u password=Quoted Pass", -1}};

    log_output = LOG_FORMAT_TEXT;
    log_error("libpq says: invalid token \"p%%41ssWord9\" in \"postgresql://u:p%%41ssWord9@h/db\"");
    log_error("decoded pAssWord9 and query qs3cr3t and kv kvs3cret and sasl KAFKApw");
    log_write_fields(LOG_LEVEL_ERROR, fields, 1, "quoted 'Quoted Pass' and short abc");
}

/* Registered secrets never reach the output, in the message or a field,
 * however libpq or librdkafka quote them; short ones are not registered. */
static void test_secrets_scrubbed(void)
{
    char *out;

    log_add_dsn_secrets("postgresql://u:p%41ssWord9@h/db?sslpassword=qs3cr3t");
    log_add_dsn_secrets("host=h password=kvs3cret");
    log_add_dsn_secrets("host=h password='Quoted Pass'");
    log_add_dsn_secrets("host=h password=abc");
    log_add_secret("KAFKApw", 7);
    out = capture(emit_secret_lines);
    CHECK(out != NULL);
    if (out == NULL)
        return;
    CHECK(strstr(out, "p%41ssWord9") == NULL);
    CHECK(strstr(out, "pAssWord9") == NULL);
    CHECK(strstr(out, "qs3cr3t") == NULL);
    CHECK(strstr(out, "kvs3cret") == NULL);
    CHECK(strstr(out, "KAFKApw") == NULL);
    CHECK(strstr(out, "Quoted Pass") == NULL);
    CHECK(strstr(out, "postgresql://u:***@h/db") != NULL);
    CHECK(strstr(out, "decoded *** and query *** and kv *** and sasl ***") != NULL);
    CHECK(strstr(out, "short abc") != NULL); /* below LOG_SECRET_MIN */
    free(out);
}

int main(void)
{
    RUN(test_json_format);
    RUN(test_json_long_line_stays_valid);
    RUN(test_text_fields);
    RUN(test_format_parse);
    RUN(test_journal);
    RUN(test_redact_dsn);
    RUN(test_secrets_scrubbed); /* last: registered secrets stay for the process */
    return check_summary();
}
