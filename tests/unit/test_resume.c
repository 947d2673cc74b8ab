/*
 * Where a stream starts and which starts are refused (cdc/resume.c,
 * docs/protocol.md#r9, #p8): every combination of the state file, the slot,
 * --start-lsn and the checkpoint that a first start can meet, the reconnect
 * checks and the checkpoint check, each row with its expected reason and plan.
 */
#include "cdc/resume.h"
#include "unit/check.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum file { NO_FILE, FILE_MISSING, FILE_OURS, FILE_OTHER_SLOT, FILE_OTHER_CLUSTER };

static const struct {
    const char *what;
    enum file file;
    uint64_t saved; /* the file's position (FILE_OURS...) */
    bool created;
    uint64_t slot;   /* confirmed_flush */
    uint64_t server; /* WAL end */
    uint64_t start_lsn;
    uint64_t checkpoint;
    /* expected */
    enum resume_reason why;
    uint64_t start;
    uint64_t plan_saved;
    enum resume_note note;
} first_rows[] = {
    {"no state file kept: the slot", NO_FILE, 0, false, 500, 900, 0, 0, RESUME_OK, 500, 0,
     RESUME_NOTE_NONE},
    {"no state file kept, new slot", NO_FILE, 0, true, 500, 900, 0, 0, RESUME_OK, 500, 0,
     RESUME_NOTE_NONE},
    {"state file not written yet", FILE_MISSING, 0, false, 500, 900, 0, 0, RESUME_OK, 500, 0,
     RESUME_NOTE_NO_STATE_YET},
    {"state file not written yet, new slot: nothing to say", FILE_MISSING, 0, true, 500, 900, 0, 0,
     RESUME_OK, 500, 0, RESUME_NOTE_NONE},
    {"saved ahead of a slot that moved back", FILE_OURS, 700, false, 500, 900, 0, 0, RESUME_OK, 700,
     700, RESUME_NOTE_SAVED},
    {"saved equal to the slot", FILE_OURS, 500, false, 500, 900, 0, 0, RESUME_OK, 500, 500,
     RESUME_NOTE_SAVED},
    {"saved at the server's end", FILE_OURS, 900, false, 500, 900, 0, 0, RESUME_OK, 900, 900,
     RESUME_NOTE_SAVED},
    {"another slot's file", FILE_OTHER_SLOT, 700, false, 500, 900, 0, 0, RESUME_STATE_OTHER_SLOT,
     500, 0, RESUME_NOTE_NONE},
    {"another cluster's file", FILE_OTHER_CLUSTER, 700, false, 500, 900, 0, 0,
     RESUME_STATE_OTHER_CLUSTER, 500, 0, RESUME_NOTE_NONE},
    {"slot dropped and created again", FILE_OURS, 700, true, 800, 900, 0, 0, RESUME_SLOT_DROPPED,
     800, 0, RESUME_NOTE_NONE},
    {"slot advanced past the saved position", FILE_OURS, 400, false, 500, 900, 0, 0,
     RESUME_SLOT_PAST_STATE, 500, 0, RESUME_NOTE_NONE},
    {"server restored to before the saved position", FILE_OURS, 950, false, 500, 900, 0, 0,
     RESUME_STATE_PAST_SERVER, 500, 0, RESUME_NOTE_NONE},
    {"other slot wins over other cluster", FILE_OTHER_SLOT, 950, true, 500, 900, 0, 0,
     RESUME_STATE_OTHER_SLOT, 500, 0, RESUME_NOTE_NONE},
    /* --start-lsn */
    {"start-lsn between slot and server", NO_FILE, 0, false, 500, 900, 600, 0, RESUME_OK, 600, 0,
     RESUME_NOTE_NONE},
    {"start-lsn at the slot", NO_FILE, 0, false, 500, 900, 500, 0, RESUME_OK, 500, 0,
     RESUME_NOTE_NONE},
    {"start-lsn at the server's end", NO_FILE, 0, false, 500, 900, 900, 0, RESUME_OK, 900, 0,
     RESUME_NOTE_NONE},
    {"start-lsn past the server's end", NO_FILE, 0, false, 500, 900, 901, 0,
     RESUME_START_PAST_SERVER, 500, 0, RESUME_NOTE_NONE},
    {"start-lsn before the slot", NO_FILE, 0, false, 500, 900, 499, 0, RESUME_START_BEFORE_SLOT,
     500, 0, RESUME_NOTE_NONE},
    {"start-lsn replaces the saved position", FILE_OURS, 700, false, 500, 900, 600, 0, RESUME_OK,
     600, 700, RESUME_NOTE_SAVED},
    {"start-lsn checked after the state file", FILE_OURS, 700, false, 500, 900, 950, 0,
     RESUME_START_PAST_SERVER, 700, 700, RESUME_NOTE_SAVED},
    {"start-lsn with no file yet", FILE_MISSING, 0, false, 500, 900, 400, 0,
     RESUME_START_BEFORE_SLOT, 500, 0, RESUME_NOTE_NO_STATE_YET},
    /* --exactly-once checkpoint */
    {"checkpoint ahead of the slot", NO_FILE, 0, false, 500, 900, 0, 800, RESUME_OK, 800, 0,
     RESUME_NOTE_NONE},
    {"checkpoint behind the slot", NO_FILE, 0, false, 500, 900, 0, 300, RESUME_OK, 500, 0,
     RESUME_NOTE_NONE},
    {"checkpoint ahead of the saved position", FILE_OURS, 600, false, 500, 900, 0, 700, RESUME_OK,
     700, 600, RESUME_NOTE_SAVED},
    {"checkpoint ahead of start-lsn", NO_FILE, 0, false, 500, 900, 600, 650, RESUME_OK, 650, 0,
     RESUME_NOTE_NONE},
    {"checkpoint behind start-lsn", NO_FILE, 0, false, 500, 900, 600, 550, RESUME_OK, 600, 0,
     RESUME_NOTE_NONE},
};

static void test_first_start(void)
{
    for (size_t i = 0; i < NELEM(first_rows); i++) {
        struct relay_state st = {.slot = "s1", .systemid = "7000", .lsn = first_rows[i].saved};
        struct resume_first in = {
            .slot = "s1",
            .state_file = first_rows[i].file != NO_FILE,
            .state = first_rows[i].file >= FILE_OURS ? &st : NULL,
            .start_lsn = first_rows[i].start_lsn,
            .checkpoint = first_rows[i].checkpoint,
        };
        struct resume_slot slot = {
            .created = first_rows[i].created,
            .confirmed_flush = first_rows[i].slot,
            .server_wal_end = first_rows[i].server,
            .systemid = "7000",
        };
        struct resume_plan plan;
        enum resume_reason why;
        int failed = check_failed;

        if (first_rows[i].file == FILE_OTHER_SLOT)
            snprintf(st.slot, sizeof(st.slot), "s2");
        if (first_rows[i].file == FILE_OTHER_CLUSTER)
            snprintf(st.systemid, sizeof(st.systemid), "7001");
        why = resume_first_start(&in, &slot, &plan);
        CHECK_EQ_INT(why, first_rows[i].why);
        /* the plan is filled for a refusal too: its note is still logged */
        CHECK_EQ_U64(plan.start, first_rows[i].start);
        CHECK_EQ_U64(plan.saved, first_rows[i].plan_saved);
        CHECK_EQ_INT(plan.note, first_rows[i].note);
        CHECK(!plan.new_tracker);
        if (check_failed != failed)
            fprintf(stderr, "  in row \"%s\"\n", first_rows[i].what);
    }
}

static const struct {
    const char *what;
    uint64_t delivered;
    uint64_t checkpoint;
    const char *systemid; /* the server's now; the run started on "7000" */
    uint64_t slot;
    /* expected */
    enum resume_reason why;
    uint64_t start;
    bool new_tracker;
} again_rows[] = {
    {"slot where the relay confirmed", 700, 0, "7000", 700, RESUME_OK, 700, false},
    {"slot behind (server crash)", 700, 0, "7000", 600, RESUME_OK, 700, false},
    {"slot ahead of what was delivered", 700, 0, "7000", 701, RESUME_SLOT_PAST_DELIVERED, 700,
     false},
    {"another cluster (failover)", 700, 0, "7001", 700, RESUME_OTHER_CLUSTER, 700, false},
    {"another cluster and slot ahead: the cluster first", 700, 0, "7001", 900, RESUME_OTHER_CLUSTER,
     700, false},
    {"checkpoint ahead: fresh tracker there", 700, 800, "7000", 700, RESUME_OK, 800, true},
    {"checkpoint ahead covers the slot", 700, 800, "7000", 800, RESUME_OK, 800, true},
    {"checkpoint ahead, slot further", 700, 800, "7000", 850, RESUME_SLOT_PAST_DELIVERED, 800,
     true},
    {"checkpoint ahead, another cluster", 700, 800, "7001", 700, RESUME_OTHER_CLUSTER, 800, true},
    {"checkpoint behind: no fresh tracker", 700, 600, "7000", 700, RESUME_OK, 700, false},
    {"checkpoint equal", 700, 700, "7000", 700, RESUME_OK, 700, false},
};

static void test_reconnect(void)
{
    for (size_t i = 0; i < NELEM(again_rows); i++) {
        struct resume_slot slot = {
            .confirmed_flush = again_rows[i].slot,
            .server_wal_end = 5000,
            .systemid = again_rows[i].systemid,
        };
        struct resume_plan plan;
        int failed = check_failed;

        CHECK_EQ_INT(resume_reconnect(again_rows[i].delivered, again_rows[i].checkpoint, "7000",
                                      &slot, &plan),
                     again_rows[i].why);
        CHECK_EQ_U64(plan.start, again_rows[i].start);
        CHECK(plan.new_tracker == again_rows[i].new_tracker);
        CHECK_EQ_INT(plan.note, RESUME_NOTE_NONE);
        if (check_failed != failed)
            fprintf(stderr, "  in row \"%s\"\n", again_rows[i].what);
    }
}

static void test_checkpoint_against_the_server(void)
{
    struct resume_slot slot = {.confirmed_flush = 100, .server_wal_end = 900, .systemid = "7000"};

    CHECK_EQ_INT(resume_checkpoint(0, &slot), RESUME_OK);
    CHECK_EQ_INT(resume_checkpoint(900, &slot), RESUME_OK);
    CHECK_EQ_INT(resume_checkpoint(901, &slot), RESUME_CHECKPOINT_PAST_SERVER);
}

int main(void)
{
    RUN(test_first_start);
    RUN(test_reconnect);
    RUN(test_checkpoint_against_the_server);
    return check_summary();
}
