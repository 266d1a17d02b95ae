/*
 * Temporary directories for unit tests. See fixture.h.
 */
#include "support/fixture.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int ch_test_tmpdir(char *dir, size_t cap, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    int n =
        snprintf(dir, cap, "%s/%s_XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", prefix);
    if (n < 0 || (size_t)n >= cap || mkdtemp(dir) == NULL) {
        fprintf(stderr, "setup: no temporary directory for %s\n", prefix);
        return -1;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int ch_test_rmtree(const char *dir)
{
    /* Depth first (children before their directory), not following links. */
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int ch_test_sh(const char *dir, const char *fmt, ...)
{
    char cmd[2048], full[2048 + 512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd)) {
        return -1;
    }
    n = snprintf(full, sizeof(full), "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
    if (n < 0 || (size_t)n >= sizeof(full)) {
        return -1;
    }
    int rc = system(full);
    if (rc != 0) {
        fprintf(stderr, "setup: %s: failed (%d)\n", cmd, rc);
        return -1;
    }
    return 0;
}
