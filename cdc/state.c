/*
 * State file format, one "key=value" per line so an operator can read it:
 *   slot=cdc_outbox_slot
 *   systemid=7441234567890123456
 *   lsn=0/1A2B3C4
 *   timeline=1
 * Unknown keys are ignored (room to grow); the first three are required,
 * timeline is optional (files written before it existed lack it: 0).
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lsn.h"

int state_load(const char *path, struct relay_state *st, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int have = 0;

    memset(st, 0, sizeof(*st));
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read state file %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *eq = strchr(line, '=');
        size_t n = strcspn(line, "\r\n");

        line[n] = '\0';
        if (eq == NULL || line[0] == '#')
            continue;
        *eq = '\0';
        if (strcmp(line, "slot") == 0) {
            snprintf(st->slot, sizeof(st->slot), "%s", eq + 1);
            have |= 1;
        } else if (strcmp(line, "systemid") == 0) {
            snprintf(st->systemid, sizeof(st->systemid), "%s", eq + 1);
            have |= 2;
        } else if (strcmp(line, "timeline") == 0) {
            st->timeline = (uint32_t)strtoul(eq + 1, NULL, 10);
        } else if (strcmp(line, "lsn") == 0) {
            if (!lsn_parse(eq + 1, &st->lsn)) {
                snprintf(err, errlen, "state file %s: lsn '%s' is not X/Y", path, eq + 1);
                fclose(f);
                return -1;
            }
            have |= 4;
        }
    }
    fclose(f);
    if (have != 7) {
        snprintf(err, errlen, "state file %s lacks slot, systemid or lsn", path);
        return -1;
    }
    return 1;
}

static int fsync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd, rc;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int state_save(const char *path, const struct relay_state *st, char *err, size_t errlen)
{
    char tmp[4096], body[512];
    int fd, n;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    n = snprintf(body, sizeof(body), "slot=%s\nsystemid=%s\nlsn=" LSN_FMT "\ntimeline=%u\n",
                 st->slot, st->systemid, LSN_ARGS(st->lsn), (unsigned)st->timeline);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write state file %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write(fd, body, (size_t)n) != n || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write state file %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    /* rename is the commit point; the directory fsync makes it durable. */
    if (rename(tmp, path) != 0 || fsync_dir(path) != 0) {
        snprintf(err, errlen, "cannot replace state file %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
