/*
 * The real stream loop (cdc/stream.c, stream_run and stream_drain) on the
 * captured pgoutput streams of tests/fixtures/pgoutput/, through a scripted
 * source (CopyData frames built from the fixture, keepalives, turns of the
 * loop on a fake clock) into a recording sink whose delivery reports come in
 * any order, fail, or wait behind a full queue. Every status update the
 * source receives is checked as it is sent: its flush never reaches a
 * transaction with an event Kafka has not acknowledged (R2), nor passes what
 * a publication check covered (R10), it is a position the server sent as one
 * (a Commit's end, a non-transactional message, a keepalive: R3, R5), and it
 * never moves back. Each scenario then checks where it ended.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "be.h"
#include "cdc/pgout.h"
#include "cdc/stream.h"
#include "cdc/tracker.h"
#include "log.h"
#include "lsn.h"
#include "cdc/reemit.h"
#include "support/fixture.h"
#include "support/pgout_build.h"
#include "unit/check.h"

#define PROTO1_FILE   "pgoutput/pg15_proto1.hex"
#define BINARY_FILE   "pgoutput/pg15_proto1_binary.hex"
#define STREAM_FILE   "pgoutput/pg15_proto2_stream.hex"
#define START_LSN     UINT64_C(0x1530000) /* before every fixture message */
#define MAX_STEPS     1024
#define MAX_EVENTS    256
#define MAX_STATUS    4096
#define MAX_POSITIONS 256
#define MS            INT64_C(1000)
#define SEC           INT64_C(1000000)

/* ---- the fixture's oracle ------------------------------------------------ */

struct txn {
    uint64_t commit_lsn; /* Begin's final_lsn = Commit's commit_lsn: the lsn header */
    uint64_t end_lsn;
};

struct oracle {
    char ids[MAX_EVENTS][64]; /* outbox events in commit order */
    uint64_t ends[MAX_EVENTS];
    size_t nevents;
    struct txn txns[MAX_EVENTS];
    size_t ntxns;
    uint64_t last_end; /* the last Commit's end */
};

static struct pgout_msg decoded; /* ~128 KB */

/* Reads the outbox events and the transactions of a proto 1 fixture. */
static void oracle_build(const struct fixture *fx, struct oracle *o)
{
    uint32_t outbox = 0;
    uint64_t final_lsn = 0;
    size_t first_event = 0;

    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < fx->n; i++) {
        if (pgout_decode(fx->msgs[i].data, fx->msgs[i].len, 1, &decoded) != PGOUT_OK)
            continue;
        if (decoded.tag == PGOUT_MSG_RELATION &&
            decoded.u.relation.nspname.len == strlen("public") &&
            memcmp(decoded.u.relation.relname.ptr, "outbox", 6) == 0 &&
            decoded.u.relation.relname.len == 6)
            outbox = decoded.u.relation.relid;
        if (decoded.tag == PGOUT_MSG_BEGIN) {
            final_lsn = decoded.u.begin.final_lsn;
            first_event = o->nevents;
        }
        if (decoded.tag == PGOUT_MSG_INSERT && decoded.u.insert.relid == outbox) {
            const struct pgout_col *id = &decoded.u.insert.newtup.cols[0];

            snprintf(o->ids[o->nevents], sizeof(o->ids[0]), "%.*s", (int)id->len,
                     (const char *)id->data);
            o->nevents++;
        }
        if (decoded.tag == PGOUT_MSG_COMMIT) {
            o->txns[o->ntxns++] = (struct txn){final_lsn, decoded.u.commit.end_lsn};
            for (size_t e = first_event; e < o->nevents; e++)
                o->ends[e] = decoded.u.commit.end_lsn;
            o->last_end = decoded.u.commit.end_lsn;
        }
    }
}

/* ---- the world: fake clock, scripted source, recording sink, watch -------- */

enum step_kind { STEP_MSG, STEP_TURN, STEP_KEEPALIVE, STEP_STOP };

struct step {
    enum step_kind kind;
    size_t msg;      /* STEP_MSG: fixture message */
    uint64_t lsn;    /* STEP_KEEPALIVE: walEnd */
    bool reply;      /* STEP_KEEPALIVE: replyRequested */
    int64_t advance; /* STEP_TURN: µs the clock moves */
};

enum report_policy {
    REPORT_IN_ORDER, /* every outstanding report at each poll, oldest first */
    REPORT_REVERSE,  /* every outstanding report at each poll, newest first */
    REPORT_RANDOM,   /* each outstanding report with probability 1/2 at each poll */
    REPORT_HOLD,     /* none until `hold_until` on the clock, then in order */
};

enum ev_state { EV_OUTSTANDING, EV_DELIVERED, EV_FAILED };

struct event {
    uint64_t seq;
    char id[64];
    char topic[64];
    char replay[32];  /* replay_request header; "" for a live event */
    uint64_t end_lsn; /* its transaction's commit end, from the oracle */
    enum ev_state state;
};

struct status {
    uint64_t write, flush;
    bool reply;
    size_t step;   /* steps the source had handed out */
    int64_t at;    /* on the fake clock */
    unsigned wait; /* which full-queue wait it was sent in; 0: none */
};

static struct world {
    struct stream s;
    struct relay_common_config common;
    struct relay_stream_config cfg;
    struct outbox_columns columns;
    volatile sig_atomic_t stop;
    int64_t now;
    const struct fixture *fx;
    const struct oracle *o;

    /* source */
    struct step steps[MAX_STEPS];
    size_t nsteps, next;
    uint8_t frame[65536];
    int wake[2];                       /* always readable: the loop never sleeps on the fake */
    uint64_t positions[MAX_POSITIONS]; /* what the server sent as positions */
    size_t npositions;
    uint64_t received; /* the newest of them handed out so far */
    struct status status[MAX_STATUS];
    size_t nstatus;
    size_t bad_status; /* invariant violations (each also a failed CHECK) */

    /* sink */
    struct event ev[MAX_EVENTS];
    size_t nev;
    enum report_policy policy;
    unsigned rng;
    int64_t hold_until;
    size_t capacity;   /* QUEUE_FULL at this many outstanding; 0: unlimited */
    int64_t full_wait; /* a full queue drains only after this long */
    int64_t full_since;
    bool queue_full;
    unsigned waits;  /* full-queue waits so far */
    long fail_event; /* index of the event whose report fails; -1: none */
    bool fail_permanent;

    /* watch */
    int check_delay; /* check_result calls before the answer */
    int check_calls;
    long checks_started;
    long gone_at_check; /* the check (1-based) that finds the table gone; 0: never */
    uint64_t check_covers, verified;

    /* re-emit server */
    uint64_t reemit_end; /* the request transaction's commit end */
    int reemit_rows;     /* rows it hands over */
    int reemit_served;
    char reemit_ids[2][REEMIT_ID_MAX];
} w;

static int64_t fake_mono(void)
{
    return w.now;
}

static int64_t fake_wall(void)
{
    return w.now + INT64_C(1700000000000000);
}

static const struct stream_clock fake_clock = {fake_mono, fake_wall};

static void add_position(uint64_t lsn)
{
    if (w.npositions < MAX_POSITIONS)
        w.positions[w.npositions++] = lsn;
}

static bool is_position(uint64_t lsn)
{
    if (lsn == START_LSN)
        return true;
    for (size_t i = 0; i < w.npositions; i++)
        if (w.positions[i] == lsn)
            return true;
    return false;
}

static void add_step(struct step st)
{
    if (w.nsteps < MAX_STEPS)
        w.steps[w.nsteps++] = st;
}

static void turn(int64_t advance)
{
    add_step((struct step){.kind = STEP_TURN, .advance = advance});
}

/* The fixture as the walsender would send it: every message, and a turn of
 * the loop after each Commit and each message outside a transaction. */
static void script_fixture(void)
{
    bool in_txn = false;

    for (size_t i = 0; i < w.fx->n; i++) {
        char tag = (char)w.fx->msgs[i].data[0];

        add_step((struct step){.kind = STEP_MSG, .msg = i});
        if (tag == PGOUT_MSG_BEGIN)
            in_txn = true;
        if (tag == PGOUT_MSG_COMMIT)
            in_txn = false;
        if (!in_txn)
            turn(2 * SEC); /* a publication check passes every 10 s */
    }
}

static int src_recv(void *arg, struct replmsg *msg, char *err, size_t errlen)
{
    const struct step *st;
    size_t len;

    (void)arg;
    if (w.next == w.nsteps) {
        snprintf(err, errlen, "script ended without a stop");
        return REPL_EFATAL;
    }
    st = &w.steps[w.next++];
    switch (st->kind) {
    case STEP_TURN:
        w.now += st->advance;
        return 0;
    case STEP_STOP:
        w.stop = 1;
        return 0;
    case STEP_KEEPALIVE:
        w.frame[0] = 'k';
        be_put64(w.frame + 1, st->lsn);
        be_put64(w.frame + 9, (uint64_t)w.now);
        w.frame[17] = st->reply;
        len = REPLMSG_KEEPALIVE_LEN;
        if (st->lsn > w.received)
            w.received = st->lsn;
        break;
    case STEP_MSG: {
        const struct fixture_msg *m = &w.fx->msgs[st->msg];

        w.frame[0] = 'w';
        be_put64(w.frame + 1, m->lsn);
        be_put64(w.frame + 9, m->lsn);
        be_put64(w.frame + 17, (uint64_t)w.now);
        memcpy(w.frame + REPLMSG_XLOGDATA_HDR_LEN, m->data, m->len);
        len = REPLMSG_XLOGDATA_HDR_LEN + m->len;
        /* what the server sent as a position: Commit ends, messages outside
         * a transaction */
        if (pgout_decode(m->data, m->len, 1, &decoded) == PGOUT_OK) {
            uint64_t pos = decoded.tag == PGOUT_MSG_COMMIT ? decoded.u.commit.end_lsn
                           : decoded.tag == PGOUT_MSG_MESSAGE && !(decoded.u.message.flags & 1)
                               ? decoded.u.message.lsn
                               : 0;
            if (pos > w.received)
                w.received = pos;
        }
        break;
    }
    default:
        return REPL_EFATAL;
    }
    /* the real envelope parser, as repl_recv runs it */
    if (replmsg_parse(w.frame, len, msg) != REPLMSG_OK) {
        snprintf(err, errlen, "test built a bad frame");
        return REPL_EFATAL;
    }
    return 1;
}

static enum repl_status src_consume(void *arg, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    return REPL_OK;
}

static int src_socket(const void *arg)
{
    (void)arg;
    return w.wake[0];
}

static void bad(const char *what, const struct status *st)
{
    w.bad_status++;
    check_failed++;
    fprintf(stderr, "FAIL status %zu (after step %zu): %s: write " LSN_FMT " flush " LSN_FMT "\n",
            w.nstatus, st->step, what, LSN_ARGS(st->write), LSN_ARGS(st->flush));
}

static enum repl_status src_send_status(void *arg, uint64_t write_lsn, uint64_t flush_lsn,
                                        uint64_t apply_lsn, int64_t now_pg_us, bool reply,
                                        char *err, size_t errlen)
{
    struct status st = {write_lsn, flush_lsn, reply, w.next, w.now, w.queue_full ? w.waits : 0};

    (void)arg;
    (void)now_pg_us;
    (void)err;
    (void)errlen;
    for (size_t i = 0; i < w.nev; i++)
        if (w.ev[i].state != EV_DELIVERED && apply_lsn >= w.ev[i].end_lsn) {
            bad(flush_lsn >= w.ev[i].end_lsn
                    ? "confirms a transaction Kafka has not acknowledged"
                    : "reports as applied a transaction Kafka has not acknowledged",
                &st);
            break;
        }
    if (apply_lsn < flush_lsn)
        bad("apply behind flush", &st);
    if (!is_position(apply_lsn))
        bad("reports as applied a position the server never sent as one", &st);
    if (flush_lsn > w.verified && flush_lsn != START_LSN)
        bad("confirms past what a publication check covered", &st);
    if (!is_position(flush_lsn))
        bad("confirms a position the server never sent as one", &st);
    if (w.nstatus > 0 && flush_lsn < w.status[w.nstatus - 1].flush)
        bad("moves back", &st);
    if (write_lsn < flush_lsn)
        bad("write behind flush", &st);
    if (w.nstatus < MAX_STATUS)
        w.status[w.nstatus++] = st;
    check_passed++;
    return REPL_OK;
}

static const struct relay_source_ops fake_source = {src_recv, src_consume, src_socket,
                                                    src_send_status};

static uint64_t lsn_of(const char *text)
{
    uint64_t lsn = 0;

    (void)lsn_parse(text, &lsn);
    return lsn;
}

static uint64_t end_of_commit(uint64_t commit_lsn)
{
    for (size_t i = 0; i < w.o->ntxns; i++)
        if (w.o->txns[i].commit_lsn == commit_lsn)
            return w.o->txns[i].end_lsn;
    return 0;
}

static size_t outstanding(void)
{
    size_t n = 0;

    for (size_t i = 0; i < w.nev; i++)
        n += w.ev[i].state == EV_OUTSTANDING;
    return n;
}

static enum sink_status sink_produce_fake(void *arg, const char *topic,
                                          const struct outbox_event *ev,
                                          const struct sink_meta *meta, uint64_t seq, char *err,
                                          size_t errlen)
{
    struct event *e;

    (void)arg;
    (void)err;
    (void)errlen;
    if (w.capacity > 0 && outstanding() >= w.capacity) {
        if (!w.queue_full) {
            w.full_since = w.now;
            w.waits++;
        }
        w.queue_full = true;
        return SINK_QUEUE_FULL;
    }
    w.queue_full = false;
    if (w.nev == MAX_EVENTS)
        return SINK_EFATAL;
    e = &w.ev[w.nev++];
    e->seq = seq;
    snprintf(e->id, sizeof(e->id), "%.*s", (int)ev->id.len, ev->id.ptr);
    snprintf(e->topic, sizeof(e->topic), "%s", topic);
    snprintf(e->replay, sizeof(e->replay), "%s",
             meta->replay_request != NULL ? meta->replay_request : "");
    /* a re-sent event has no lsn header: its transaction is the request's */
    e->end_lsn = meta->lsn != NULL ? end_of_commit(lsn_of(meta->lsn)) : w.reemit_end;
    e->state = EV_OUTSTANDING;
    return SINK_OK;
}

static enum sink_status sink_dead_letter_fake(void *arg, const struct outbox_event *ev,
                                              const struct sink_meta *meta,
                                              const struct sink_dead_letter *dl, uint64_t seq,
                                              char *err, size_t errlen)
{
    (void)dl;
    return sink_produce_fake(arg, "dead-letter", ev, meta, seq, err, errlen);
}

static void report(size_t i)
{
    bool fail = (long)i == w.fail_event;

    w.ev[i].state = fail ? EV_FAILED : EV_DELIVERED;
    stream_on_delivery(&w.s, w.ev[i].seq, fail ? "Local: Message timed out" : NULL,
                       fail && w.fail_permanent, w.ev[i].id, "0/0");
}

static void sink_poll_fake(void *arg, int timeout_ms)
{
    (void)arg;
    w.now += (int64_t)timeout_ms * MS; /* a wait passes on the clock */
    if (w.queue_full && w.now - w.full_since < w.full_wait)
        return;
    switch (w.policy) {
    case REPORT_HOLD:
        if (w.now < w.hold_until)
            return;
        /* fall through */
    case REPORT_IN_ORDER:
        for (size_t i = 0; i < w.nev; i++)
            if (w.ev[i].state == EV_OUTSTANDING)
                report(i);
        break;
    case REPORT_REVERSE:
        for (size_t i = w.nev; i-- > 0;)
            if (w.ev[i].state == EV_OUTSTANDING)
                report(i);
        break;
    case REPORT_RANDOM:
        for (size_t i = 0; i < w.nev; i++) {
            size_t k = (size_t)rand_r(&w.rng) % w.nev; /* visit in a random order */

            if (w.ev[k].state == EV_OUTSTANDING && rand_r(&w.rng) % 2 == 0)
                report(k);
        }
        break;
    }
}

static int sink_flush_fake(void *arg, int timeout_ms)
{
    (void)arg;
    (void)timeout_ms;
    for (size_t i = 0; i < w.nev; i++)
        if (w.ev[i].state == EV_OUTSTANDING)
            report(i);
    return 0;
}

static bool sink_fatal_fake(void *arg, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    return false;
}

static bool sink_fenced_fake(void *arg)
{
    (void)arg;
    return false;
}

static int sink_wakeup_fake(const void *arg)
{
    (void)arg;
    return w.wake[0];
}

static void sink_stats_fake(const void *arg, struct sink_stats *out)
{
    (void)arg;
    memset(out, 0, sizeof(*out));
}

static const struct relay_sink_ops fake_sink = {
    sink_produce_fake, sink_dead_letter_fake, sink_poll_fake,   sink_flush_fake,
    sink_fatal_fake,   sink_fenced_fake,      sink_wakeup_fake, sink_stats_fake,
};

static void watch_check_start(void *arg)
{
    (void)arg;
    w.checks_started++;
    w.check_calls = 0;
    w.check_covers = w.received; /* what the server had sent when it started */
}

static enum relay_check watch_check_result(void *arg, char *err, size_t errlen)
{
    (void)arg;
    if (w.check_calls++ < w.check_delay)
        return RELAY_CHECK_RUNNING;
    if (w.checks_started == w.gone_at_check) {
        snprintf(err, errlen, "table public.outbox is no longer in publication \"pub\"");
        return RELAY_CHECK_GONE;
    }
    if (w.check_covers > w.verified)
        w.verified = w.check_covers;
    return RELAY_CHECK_PASSED;
}

static int watch_pollfds(void *arg, struct pollfd *pfd, int n)
{
    (void)arg;
    (void)pfd;
    (void)n;
    return 0;
}

static void watch_beat(void *arg)
{
    (void)arg;
}

static enum repl_status watch_beat_progress(void *arg, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    return REPL_OK;
}

static const struct relay_watch_ops fake_watch = {
    watch_pollfds, watch_check_start, watch_check_result, watch_beat, watch_beat_progress};

/* ---- running a scenario ------------------------------------------------- */

static const struct relay_reemit_ops fake_reemit;

static void world_init(const struct fixture *fx, const struct oracle *o)
{
    memset(&w, 0, sizeof(w));
    w.fx = fx;
    w.o = o;
    w.now = 1000 * SEC;
    w.fail_event = -1;
    w.verified = START_LSN;
    outbox_columns_default(&w.columns);
    w.common = (struct relay_common_config){
        .table_schema = "public",
        .table_name = "outbox",
        .topic_template = "${aggregate_type}.events",
        .columns = &w.columns,
        .shutdown_timeout_ms = 1000,
        .server_timeout_ms = 3600 * 1000,
        .stop = {&w.stop, -1},
    };
    w.cfg = (struct relay_stream_config){
        .slot = "s",
        .publication = "pub",
        .status_interval_ms = 10000,
        .message_prefix = "outbox",
    };
    for (size_t i = 0; i < fx->n; i++) {
        if (pgout_decode(fx->msgs[i].data, fx->msgs[i].len, 1, &decoded) != PGOUT_OK)
            continue;
        if (decoded.tag == PGOUT_MSG_COMMIT)
            add_position(decoded.u.commit.end_lsn);
        if (decoded.tag == PGOUT_MSG_MESSAGE && !(decoded.u.message.flags & 1))
            add_position(decoded.u.message.lsn);
    }
}

/* Runs the loop over the script, then the stop path; returns how the
 * stream ended. The loop's log goes to log_file. */
static enum stream_end world_run(FILE *log_file)
{
    enum stream_end end;
    int saved = dup(STDERR_FILENO);

    if (pipe(w.wake) != 0 || saved < 0)
        abort();
    (void)!write(w.wake[1], "x", 1);
    stream_init(&w.s, &w.common, &w.cfg);
    w.s.clock = &fake_clock;
    w.s.src = &w;
    w.s.src_ops = &fake_source;
    w.s.sink = &w;
    w.s.sink_ops = &fake_sink;
    w.s.watch = &w;
    w.s.watch_ops = &fake_watch;
    w.s.reemit = &w;
    w.s.reemit_ops = &fake_reemit;
    tracker_free(w.s.tracker);
    w.s.tracker = tracker_new(START_LSN);
    confirm_start(&w.s.confirm, 0, START_LSN, START_LSN);
    confirm_pub_verified(&w.s.confirm, START_LSN); /* what the connection's own check covered */
    stream_reset(&w.s);
    fflush(stderr);
    dup2(fileno(log_file), STDERR_FILENO);
    end = stream_run(&w.s);
    (void)stream_drain(&w.s);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    stream_fini(&w.s);
    close(w.wake[0]);
    close(w.wake[1]);
    return end;
}

/* Whether the log has a line containing text. */
static bool logged(FILE *log_file, const char *text)
{
    char line[2048];
    bool found = false;

    rewind(log_file);
    while (fgets(line, sizeof(line), log_file) != NULL)
        found |= strstr(line, text) != NULL;
    return found;
}

static uint64_t last_flush(void)
{
    return w.nstatus > 0 ? w.status[w.nstatus - 1].flush : 0;
}

/* The common tail: turns until every report is in and a publication check
 * passed again, a keepalive, more turns, then the stop. */
static void script_tail(uint64_t keepalive)
{
    for (int i = 0; i < 12; i++)
        turn(SEC);
    add_step((struct step){.kind = STEP_KEEPALIVE, .lsn = keepalive});
    add_position(keepalive);
    for (int i = 0; i < 12; i++)
        turn(SEC);
    add_step((struct step){.kind = STEP_STOP});
}

static struct fixture proto1;
static struct oracle proto1_oracle;

static bool load_proto1(void)
{
    if (proto1.n > 0)
        return true;
    CHECK(fixture_load(PROTO1_FILE, &proto1));
    if (proto1.n == 0)
        return false;
    oracle_build(&proto1, &proto1_oracle);
    CHECK_EQ_INT(proto1_oracle.nevents, 6); /* the capture script's outbox inserts */
    return proto1_oracle.nevents > 0;
}

/* Every event exactly once, in commit order, to its topic; all confirmed at
 * the end, with the keepalive that came when nothing was in flight. */
static void check_complete_run(enum stream_end end, uint64_t keepalive)
{
    CHECK_EQ_INT(end, STREAM_STOP);
    CHECK_EQ_INT(w.nev, w.o->nevents);
    for (size_t i = 0; i < w.nev && i < w.o->nevents; i++) {
        CHECK_STR(w.ev[i].id, w.o->ids[i]);
        CHECK_STR(w.ev[i].topic, "order.events");
        CHECK_EQ_INT(w.ev[i].state, EV_DELIVERED);
    }
    CHECK_EQ_U64(last_flush(), keepalive);
    CHECK_EQ_INT(w.bad_status, 0);
}

static void run_policy(enum report_policy policy, unsigned seed)
{
    FILE *log_file = tmpfile();
    uint64_t keepalive = proto1_oracle.last_end + 0x100;
    size_t distinct = 0;
    enum stream_end end;

    world_init(&proto1, &proto1_oracle);
    w.policy = policy;
    w.rng = seed;
    script_fixture();
    script_tail(keepalive);
    end = world_run(log_file);
    check_complete_run(end, keepalive);
    for (size_t i = 1; i < w.nstatus; i++)
        distinct += w.status[i].flush != w.status[i - 1].flush;
    CHECK(distinct >= 3); /* it confirmed as it went, not only at the end */
    if (check_failed > 0 && policy == REPORT_RANDOM)
        fprintf(stderr, "  (seed %u)\n", seed);
    fclose(log_file);
}

static void test_reports_in_order(void)
{
    if (load_proto1())
        run_policy(REPORT_IN_ORDER, 0);
}

static void test_reports_newest_first(void)
{
    if (load_proto1())
        run_policy(REPORT_REVERSE, 0);
}

/* Reports in any order, spread over the turns of the loop. */
static void test_reports_in_random_order(void)
{
    if (!load_proto1())
        return;
    for (unsigned seed = 1; seed <= 40; seed++)
        run_policy(REPORT_RANDOM, seed);
}

/* A failed report of any one event: the stream rewinds (retriable) or stops
 * (permanent), and nothing from that event's transaction on is confirmed,
 * not even by the stop path. */
static void test_a_failed_report_is_never_confirmed(void)
{
    if (!load_proto1())
        return;
    for (int permanent = 0; permanent <= 1; permanent++)
        for (size_t f = 0; f < proto1_oracle.nevents; f++) {
            FILE *log_file = tmpfile();
            enum stream_end end;
            int failed = check_failed;

            world_init(&proto1, &proto1_oracle);
            w.policy = REPORT_RANDOM;
            w.rng = (unsigned)(f + 100);
            w.fail_event = (long)f;
            w.fail_permanent = permanent;
            script_fixture();
            script_tail(proto1_oracle.last_end + 0x100);
            end = world_run(log_file);
            CHECK_EQ_INT(end, permanent ? STREAM_FATAL : STREAM_REWIND);
            CHECK(last_flush() < proto1_oracle.ends[f]);
            CHECK(logged(log_file,
                         permanent ? "delivery failed permanently" : "delivery failed, rewinding"));
            CHECK_EQ_INT(w.bad_status, 0);
            if (check_failed != failed)
                fprintf(stderr, "  (event %zu fails, permanent %d)\n", f, permanent);
            fclose(log_file);
        }
}

/* A queue that stays full for 25 s: the loop stops reading WAL and keeps
 * sending status updates while it waits (R4), then goes on. */
static void test_full_queue_keeps_the_server_answered(void)
{
    FILE *log_file;
    uint64_t keepalive = proto1_oracle.last_end + 0x100;
    size_t while_full = 0;
    enum stream_end end;

    if (!load_proto1())
        return;
    log_file = tmpfile();
    world_init(&proto1, &proto1_oracle);
    w.policy = REPORT_IN_ORDER;
    w.capacity = 1;
    w.full_wait = 25 * SEC;
    script_fixture();
    script_tail(keepalive);
    end = world_run(log_file);
    check_complete_run(end, keepalive);
    for (size_t i = 0; i < w.nstatus; i++) {
        while_full += w.status[i].wait != 0;
        /* the source was not read during a wait */
        if (i > 0 && w.status[i].wait != 0 && w.status[i].wait == w.status[i - 1].wait)
            CHECK_EQ_INT(w.status[i].step, w.status[i - 1].step);
    }
    CHECK(w.waits >= 1); /* the fixture has one transaction of two events */
    /* 10 s status interval: at least two updates during each 25 s wait */
    CHECK(while_full >= 2);
    fclose(log_file);
}

/* A keepalive that asks for a reply is answered in the same turn (R4); one
 * that comes while events are in flight is confirmed only once they are
 * delivered (R3). */
static void test_keepalives(void)
{
    FILE *log_file;
    uint64_t keepalive = proto1_oracle.last_end + 0x100;
    size_t answered = 0, held_step = 0;
    enum stream_end end;

    if (!load_proto1())
        return;
    log_file = tmpfile();
    world_init(&proto1, &proto1_oracle);
    w.policy = REPORT_HOLD;
    w.hold_until = w.now + 30 * SEC; /* nothing delivered until the tail */
    script_fixture();
    /* right after the last Commit, with every event still in flight */
    add_step((struct step){.kind = STEP_KEEPALIVE, .lsn = keepalive, .reply = true});
    add_position(keepalive);
    held_step = w.nsteps + 1; /* what the source handed out at the end of that turn */
    turn(50 * MS);
    for (int i = 0; i < 40; i++)
        turn(SEC);
    add_step((struct step){.kind = STEP_STOP});
    end = world_run(log_file);
    CHECK_EQ_INT(end, STREAM_STOP);
    for (size_t i = 0; i < w.nstatus; i++) {
        if (w.status[i].step == held_step)
            answered++;
        if (w.status[i].flush == keepalive)
            CHECK(w.status[i].at >= w.hold_until); /* not while events were in flight */
    }
    CHECK(answered >= 1);
    CHECK_EQ_U64(last_flush(), keepalive);
    CHECK_EQ_INT(w.bad_status, 0);
    fclose(log_file);
}

/* Publication checks that answer late: nothing is confirmed past what the
 * last passed check covered when it started. */
static void test_slow_publication_checks(void)
{
    for (int delay = 0; delay <= 3; delay++) {
        FILE *log_file;
        uint64_t keepalive = proto1_oracle.last_end + 0x100;

        if (!load_proto1())
            return;
        log_file = tmpfile();
        world_init(&proto1, &proto1_oracle);
        w.policy = REPORT_RANDOM;
        w.rng = (unsigned)delay + 7;
        w.check_delay = delay;
        script_fixture();
        script_tail(keepalive);
        check_complete_run(world_run(log_file), keepalive);
        CHECK(w.checks_started >= 2);
        fclose(log_file);
    }
}

/* The table leaves the publication: the second check finds it gone, the
 * stream stops, and nothing past what the first check covered is confirmed. */
static void test_table_gone_from_the_publication(void)
{
    FILE *log_file;
    enum stream_end end;

    if (!load_proto1())
        return;
    log_file = tmpfile();
    world_init(&proto1, &proto1_oracle);
    w.policy = REPORT_IN_ORDER;
    w.gone_at_check = 2;
    script_fixture();
    script_tail(proto1_oracle.last_end + 0x100);
    end = world_run(log_file);
    CHECK_EQ_INT(end, STREAM_FATAL);
    CHECK(logged(log_file, "is no longer in publication"));
    CHECK(last_flush() <= w.verified);
    CHECK(last_flush() < proto1_oracle.last_end);
    CHECK_EQ_INT(w.bad_status, 0);
    fclose(log_file);
}

/* Columns in binary form cannot make an event: the first insert stops the
 * stream (exit 1), nothing of its transaction is confirmed. */
static void test_binary_columns_stop_the_stream(void)
{
    struct fixture fx;
    struct oracle o;
    FILE *log_file;
    enum stream_end end;

    CHECK(fixture_load(BINARY_FILE, &fx));
    if (fx.n == 0)
        return;
    oracle_build(&fx, &o);
    log_file = tmpfile();
    world_init(&fx, &o);
    script_fixture();
    script_tail(o.last_end + 0x100);
    end = world_run(log_file);
    CHECK_EQ_INT(end, STREAM_FATAL);
    CHECK(logged(log_file, "bad outbox row"));
    CHECK_EQ_INT(w.nev, 0);
    CHECK(last_flush() < o.txns[0].end_lsn);
    CHECK_EQ_INT(w.bad_status, 0);
    fclose(log_file);
    fixture_free(&fx);
}

/* A streamed (protocol 2) transaction is never asked for: its first message
 * is a protocol error, and nothing is confirmed. */
static void test_streamed_transactions_are_a_protocol_error(void)
{
    struct fixture fx;
    struct oracle o;
    FILE *log_file;
    enum stream_end end;

    CHECK(fixture_load(STREAM_FILE, &fx));
    if (fx.n == 0)
        return;
    memset(&o, 0, sizeof(o));
    log_file = tmpfile();
    world_init(&fx, &o);
    script_fixture();
    script_tail(UINT64_C(0x9000000));
    end = world_run(log_file);
    CHECK_EQ_INT(end, STREAM_FATAL);
    CHECK(logged(log_file, "protocol error: cannot decode pgoutput message"));
    CHECK(last_flush() <= START_LSN);
    CHECK_EQ_INT(w.bad_status, 0);
    fclose(log_file);
    fixture_free(&fx);
}

/* ---- a cdc-relay reemit request ------------------------------------------ */

static enum reemit_result reemit_serve_fake(void *arg, const struct reemit_request *req,
                                            const struct reemit_hooks *hooks, uint64_t *sent,
                                            uint64_t *skipped, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    w.reemit_served++;
    snprintf(w.reemit_ids[0], sizeof(w.reemit_ids[0]), "%s", req->first_id);
    snprintf(w.reemit_ids[1], sizeof(w.reemit_ids[1]), "%s", req->last_id);
    *sent = *skipped = 0;
    for (int i = 0; i < w.reemit_rows; i++) {
        char id[16];
        struct outbox_event ev = {
            .id = {id, (size_t)snprintf(id, sizeof(id), "again-%d", i)},
            .aggregate_type = {"order", 5},
            .aggregate_id = {"k", 1},
            .event_type = {"OrderCreated", 12},
            .payload = {"{}", 2},
        };

        if (!hooks->idle(hooks->arg) || !hooks->emit(hooks->arg, &ev, "2026-12-05T10:00:00Z"))
            return REEMIT_STOPPED;
        (*sent)++;
    }
    return REEMIT_DONE;
}

static const struct relay_reemit_ops fake_reemit = {reemit_serve_fake};

/* proto1, then one transaction holding a request for slot "s" (ids a..b),
 * its rows re-sent while reports are held past its Commit. */
static void test_reemit_request_is_produced_in_its_transaction(void)
{
    struct reemit_request req = {.kind = REEMIT_IDS, .slot = "s"};
    struct fixture fx = {0};
    struct oracle o = proto1_oracle;
    struct pgout_build b[3];
    uint64_t begin_lsn = proto1_oracle.last_end + 0x100;
    uint64_t msg_lsn = begin_lsn + 0x10, commit_lsn = begin_lsn + 0x80, end_lsn = commit_lsn + 0x30;
    uint64_t keepalive = end_lsn + 0x100;
    char request[LSN_STR_MAX];
    char *json;
    FILE *log_file = tmpfile();
    enum stream_end end;

    if (!load_proto1())
        return;
    snprintf(req.first_id, sizeof(req.first_id), "a");
    snprintf(req.last_id, sizeof(req.last_id), "b");
    req.snapshot = "100:100:";
    json = reemit_request_format(&req);
    CHECK(json != NULL);
    if (json == NULL)
        return;
    for (int i = 0; i < 3; i++)
        pgout_build_init(&b[i]);
    pgout_build_begin(&b[0], commit_lsn, 0, 900);
    pgout_build_message(&b[1], 0, 1, msg_lsn, REEMIT_PREFIX, (uint32_t)strlen(json), json);
    pgout_build_commit(&b[2], 0, commit_lsn, end_lsn, 0);
    fx.n = proto1.n + 3;
    fx.msgs = calloc(fx.n, sizeof(*fx.msgs));
    memcpy(fx.msgs, proto1.msgs, proto1.n * sizeof(*fx.msgs));
    for (int i = 0; i < 3; i++)
        fx.msgs[proto1.n + (size_t)i] = (struct fixture_msg){.lsn = i == 0   ? begin_lsn
                                                                    : i == 1 ? msg_lsn
                                                                             : commit_lsn,
                                                             .data = b[i].data,
                                                             .len = b[i].len};
    o.txns[o.ntxns++] = (struct txn){commit_lsn, end_lsn};
    o.last_end = end_lsn;

    world_init(&fx, &o);
    w.policy = REPORT_HOLD;
    w.hold_until = w.now + 60 * SEC; /* past the request's Commit and a few updates */
    w.reemit_end = end_lsn;
    w.reemit_rows = 3;
    script_fixture();
    script_tail(keepalive);
    end = world_run(log_file);

    lsn_format(msg_lsn, request, sizeof(request));
    CHECK_EQ_INT(end, STREAM_STOP);
    CHECK_EQ_INT(w.reemit_served, 1);
    CHECK_STR(w.reemit_ids[0], "a");
    CHECK_STR(w.reemit_ids[1], "b");
    CHECK_EQ_INT(w.nev, o.nevents + 3);
    for (size_t i = 0; i < w.nev; i++) {
        bool again = i >= o.nevents;

        CHECK_STR(w.ev[i].replay, again ? request : "");
        CHECK_STR(w.ev[i].topic, "order.events");
        CHECK_EQ_INT(w.ev[i].state, EV_DELIVERED);
        if (again)
            CHECK_EQ_U64(w.ev[i].end_lsn, end_lsn);
    }
    CHECK(logged(log_file, "3 events produced"));
    /* the request's transaction waited for its rows (src_send_status checks
     * every update), then everything was confirmed */
    CHECK_EQ_U64(last_flush(), keepalive);
    CHECK_EQ_INT(w.bad_status, 0);
    fclose(log_file);
    free(fx.msgs);
    for (int i = 0; i < 3; i++)
        pgout_build_fini(&b[i]);
    free(json);
}

int main(void)
{
    log_threshold = LOG_LEVEL_INFO;
    RUN(test_reports_in_order);
    RUN(test_reports_newest_first);
    RUN(test_reports_in_random_order);
    RUN(test_a_failed_report_is_never_confirmed);
    RUN(test_full_queue_keeps_the_server_answered);
    RUN(test_keepalives);
    RUN(test_slow_publication_checks);
    RUN(test_table_gone_from_the_publication);
    RUN(test_binary_columns_stop_the_stream);
    RUN(test_streamed_transactions_are_a_protocol_error);
    RUN(test_reemit_request_is_produced_in_its_transaction);
    fixture_free(&proto1);
    return check_summary();
}
