/*
 * SQLSTATE classification (one table for the api, stream and poll), the
 * SQLSTATE read from libpq's verbose connection messages (captured from
 * libpq 15 against a server in English and in German), and the connection
 * parameters with the pinned session.
 */
#include "pgerr.h"
#include "pgparams.h"
#include "unit/check.h"

static void test_classify_table(void)
{
    static const struct {
        const char *state;
        enum pgerr_kind kind;
    } cases[] = {
        {NULL, PGERR_CONNECTION},
        {"", PGERR_CONNECTION},
        {"08006", PGERR_CONNECTION}, /* connection_failure */
        {"08P01", PGERR_CONNECTION}, /* protocol_violation */
        {"57P01", PGERR_TRANSIENT},  /* admin_shutdown */
        {"57P02", PGERR_TRANSIENT},
        {"57P03", PGERR_TRANSIENT}, /* the database system is starting up / shutting down */
        {"57P05", PGERR_TRANSIENT},
        {"57014", PGERR_TRANSIENT},  /* statement_timeout */
        {"57P04", PGERR_PERMANENT},  /* database_dropped: not passing */
        {"53300", PGERR_TRANSIENT},  /* too_many_connections */
        {"53400", PGERR_TRANSIENT},  /* all replication slots are in use */
        {"53100", PGERR_TRANSIENT},  /* disk_full */
        {"40001", PGERR_TRANSIENT},  /* serialization_failure */
        {"40P01", PGERR_TRANSIENT},  /* deadlock_detected */
        {"55P03", PGERR_TRANSIENT},  /* lock_not_available */
        {"55006", PGERR_IN_USE},     /* replication slot is active */
        {"55000", PGERR_PERMANENT},  /* e.g. an invalidated slot */
        {"25006", PGERR_SESSION},    /* read-only transaction */
        {"25P02", PGERR_SESSION},    /* in failed transaction block */
        {"26000", PGERR_SESSION},    /* prepared statement does not exist */
        {"28P01", PGERR_LOGIN},      /* password authentication failed */
        {"28000", PGERR_LOGIN},      /* no pg_hba.conf entry, role does not exist */
        {"3D000", PGERR_LOGIN},      /* database does not exist */
        {"42501", PGERR_LOGIN},      /* no REPLICATION attribute, no CONNECT, no grant */
        {"42P01", PGERR_SCHEMA},     /* undefined table */
        {"3F000", PGERR_SCHEMA},     /* undefined schema */
        {"42703", PGERR_SCHEMA},     /* undefined column: a migration not run */
        {"42704", PGERR_PERMANENT},  /* publication does not exist */
        {"42601", PGERR_PERMANENT},  /* syntax error */
        {"23505", PGERR_PERMANENT},  /* unique_violation */
        {"22P05", PGERR_PERMANENT},  /* untranslatable_character */
        {"XX000", PGERR_PERMANENT},  /* internal error */
        {"0A000", PGERR_PERMANENT},  /* e.g. logical decoding during recovery */
        {"2500", PGERR_PERMANENT},   /* not a whole code: no exact match */
        {"250061", PGERR_PERMANENT}, /* too long for an exact code */
        {"08", PGERR_CONNECTION},    /* a class alone still says connection */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum pgerr_kind got = pgerr_classify(cases[i].state);

        if (got != cases[i].kind)
            fprintf(stderr, "  sqlstate %s: %s, expected %s\n",
                    cases[i].state ? cases[i].state : "(null)", pgerr_kind_name(got),
                    pgerr_kind_name(cases[i].kind));
        CHECK_EQ_INT(got, cases[i].kind);
    }
    CHECK_STR(pgerr_kind_name(PGERR_SESSION), "session");
    CHECK_STR(pgerr_kind_name(PGERR_LOGIN), "login");
}

static void test_sqlstate_in_message(void)
{
    static const struct {
        const char *msg, *code; /* code NULL: none to find */
    } cases[] = {
        /* libpq 15, PQERRORS_VERBOSE set before the handshake, server in German */
        {"connection to server at \"127.0.0.1\", port 60985 failed: FATAL:  28P01: "
         "Passwort-Authentifizierung f\xc3\xbcr Benutzer \xc2\xbbnorepl\xc2\xab fehlgeschlagen\n"
         "LOCATION:  auth_failed, auth.c:334\n",
         "28P01"},
        {"connection to server at \"127.0.0.1\", port 60985 failed: FATAL:  42501: nur Superuser "
         "und Replikationsrollen k\xc3\xb6nnen WAL-Sender starten\n"
         "LOCATION:  InitPostgres, postinit.c:896\n",
         "42501"},
        {"connection to server at \"127.0.0.1\", port 60985 failed: FATAL:  3D000: Datenbank "
         "\xc2\xbbnodb\xc2\xab existiert nicht\nLOCATION:  InitPostgres, postinit.c:948\n",
         "3D000"},
        /* the same in English; a translated severity word */
        {"connection to server at \"::1\", port 5432 failed: FATAL:  3D000: database \"x\" does "
         "not exist\n",
         "3D000"},
        {"connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: SCHWERWIEGEND:  57P03: "
         "das Datenbanksystem f\xc3\xa4hrt herunter\n",
         "57P03"},
        /* two hosts tried: the last server's code is the one that counts */
        {"connection to server at \"10.0.0.1\", port 5432 failed: FATAL:  57P03: the database "
         "system is starting up\nconnection to server at \"10.0.0.2\", port 5432 failed: FATAL:  "
         "28P01: password authentication failed for user \"u\"\n",
         "28P01"},
        /* libpq's own failures carry no code */
        {"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the "
         "server running on that host and accepting TCP/IP connections?\n",
         NULL},
        {"connection to server at \"127.0.0.1\", port 60985 failed: fe_sendauth: no password "
         "supplied\n",
         NULL},
        {"invalid sslmode value: \"bogus\"\n", NULL},
        /* default verbosity (no code), and look-alikes that are not codes */
        {"connection to server failed: FATAL:  password authentication failed\n", NULL},
        {"FATAL:  28p01: lower case is not a SQLSTATE\n", NULL},
        {"FATAL:  28P0: four characters\n", NULL},
        {"FATAL:  28P012: six characters\n", NULL},
        {":  28P01: no severity before it\n", NULL},
        {"", NULL},
    };
    char code[PGERR_SQLSTATE_LEN + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool found = pgerr_sqlstate_in_message(cases[i].msg, code);

        CHECK_EQ_INT(found, cases[i].code != NULL);
        if (found && cases[i].code != NULL)
            CHECK_STR(code, cases[i].code);
    }
    CHECK(!pgerr_sqlstate_in_message(NULL, code));
}

static void test_drop_location(void)
{
    char a[] = "failed: FATAL:  28P01: bad password\nLOCATION:  auth_failed, auth.c:334\n";
    char b[] = "FATAL:  3D000: x\nLOCATION:  InitPostgres, postinit.c:948";
    char c[] = "no location here\nsecond line\n";
    char d[] = "LOCATION:  first\nFATAL:  57P03: y\nLOCATION:  f, g.c:1\nLOCATION:  h, i.c:2\n";

    pgerr_drop_location(a);
    CHECK_STR(a, "failed: FATAL:  28P01: bad password\n");
    pgerr_drop_location(b);
    CHECK_STR(b, "FATAL:  3D000: x\n");
    pgerr_drop_location(c);
    CHECK_STR(c, "no location here\nsecond line\n");
    pgerr_drop_location(d);
    CHECK_STR(d, "FATAL:  57P03: y\n");
}

static void test_params(void)
{
    struct pgparams p;

    pgparams_init(&p);
    pgparams_set(&p, "host", "db");
    pgparams_set(&p, "options", "-c work_mem=64MB");
    pgparams_set(&p, "client_encoding", "LATIN1"); /* the user's: pinned over */
    pgparams_default(&p, "host", "other");         /* set already: kept */
    pgparams_default(&p, "connect_timeout", "10");
    for (int i = 0; i < 20; i++) { /* grows past the first capacity */
        char key[16];

        snprintf(key, sizeof(key), "k%d", i);
        pgparams_set(&p, key, "v");
    }
    pgparams_pin_session(&p, NULL, "-c statement_timeout=5000", "-c TimeZone=UTC");
    CHECK_STR(pgparams_get(&p, "host"), "db");
    CHECK_STR(pgparams_get(&p, "connect_timeout"), "10");
    CHECK_STR(pgparams_get(&p, "client_encoding"), "UTF8");
    CHECK_STR(pgparams_get(&p, "options"), "-c statement_timeout=5000 -c work_mem=64MB -c "
                                           "search_path=pg_catalog -c TimeZone=UTC");
    CHECK(pgparams_get(&p, "k19") != NULL);
    CHECK(pgparams_get(&p, "nope") == NULL);
    CHECK(p.keys[p.n] == NULL && p.vals[p.n] == NULL);
    CHECK_EQ_INT(p.n, 24);
    pgparams_fini(&p);

    /* no user options, the migrations' search_path */
    pgparams_init(&p);
    pgparams_pin_session(&p, "public", NULL, "-c TimeZone=UTC");
    CHECK_STR(pgparams_get(&p, "options"), "-c search_path=public -c TimeZone=UTC");
    pgparams_fini(&p);
    pgparams_init(&p);
    pgparams_pin_session(&p, NULL, NULL, NULL);
    CHECK_STR(pgparams_get(&p, "options"), "-c search_path=pg_catalog");
    pgparams_fini(&p);
}

int main(void)
{
    RUN(test_classify_table);
    RUN(test_sqlstate_in_message);
    RUN(test_drop_location);
    RUN(test_params);
    return check_summary();
}
