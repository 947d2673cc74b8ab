/* State file: round trip, missing file, malformed content. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cdc/state.h"
#include "unit/check.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_round_trip_and_malformed_files(void)
{
    char dir[] = "/tmp/test_state.XXXXXX";
    char path[256], err[512];
    struct relay_state st = {
        .slot = "cdc_outbox_slot", .systemid = "7441", .timeline = 3, .lsn = 0x16B374D848ULL};
    struct relay_state back;

    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp failed");
        return;
    }
    snprintf(path, sizeof(path), "%s/relay.state", dir);

    CHECK_EQ_INT(state_load(path, &back, err, sizeof(err)), 0);
    CHECK_EQ_INT(state_save(path, &st, err, sizeof(err)), 0);
    CHECK_EQ_INT(state_load(path, &back, err, sizeof(err)), 1);
    CHECK_STR(back.slot, "cdc_outbox_slot");
    CHECK_STR(back.systemid, "7441");
    CHECK_EQ_U64(back.lsn, 0x16B374D848ULL);
    CHECK_EQ_INT(back.timeline, 3);
    st.lsn = 0x16B374D900ULL;
    CHECK_EQ_INT(state_save(path, &st, err, sizeof(err)), 0); /* replaces */
    CHECK_EQ_INT(state_load(path, &back, err, sizeof(err)), 1);
    CHECK_EQ_U64(back.lsn, 0x16B374D900ULL);

    write_file(path, "slot=x\nsystemid=1\n");
    CHECK_EQ_INT(state_load(path, &back, err, sizeof(err)), -1);
    write_file(path, "slot=x\nsystemid=1\nlsn=nope\n");
    CHECK_EQ_INT(state_load(path, &back, err, sizeof(err)), -1);
    write_file(path, "# comment\nfuture=1\nslot=x\nsystemid=1\nlsn=0/10\n");
    CHECK_EQ_INT(state_load(path, &back, err, sizeof(err)), 1);
    CHECK_EQ_U64(back.lsn, 0x10);
    CHECK_EQ_INT(back.timeline, 0); /* a file from before the timeline was recorded */

    snprintf(path, sizeof(path), "%s/missing-dir/relay.state", dir);
    CHECK_EQ_INT(state_save(path, &st, err, sizeof(err)), -1);

    snprintf(path, sizeof(path), "rm -rf %s", dir);
    if (system(path) != 0)
        CHECK(0);
}

int main(void)
{
    RUN(test_round_trip_and_malformed_files);
    return check_summary();
}
