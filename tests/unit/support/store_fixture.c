/*
 * A temporary SQLite store for unit tests. See fixture.h.
 */
#include "support/fixture.h"

#include <stdio.h>
#include <string.h>

int ch_test_store_open(ch_test_store_t *ts, const char *prefix, ch_store_t **st)
{
    memset(ts, 0, sizeof(*ts));
    *st = NULL;
    if (ch_test_tmpdir(ts->dir, sizeof(ts->dir), prefix) != 0) {
        return -1;
    }
    snprintf(ts->path, sizeof(ts->path), "%s/store.db", ts->dir);
    char url[320];
    snprintf(url, sizeof(url), "sqlite:%s", ts->path);
    char *err = NULL;
    if (ch_store_open(url, st, &err) != 0) {
        fprintf(stderr, "open: %s\n", err != NULL ? err : "?");
        ch_free(err);
        (void)ch_test_rmtree(ts->dir);
        return -1;
    }
    return 0;
}

int ch_test_store_close(ch_test_store_t *ts, ch_store_t *st)
{
    ch_store_close(st);
    return ch_test_rmtree(ts->dir);
}

int64_t ch_test_store_agency(ch_store_t *st, const char *name, const char *kind)
{
    ch_agency_t a = {0};
    a.name = (char *)name;
    a.kind = (char *)kind;
    a.level = "district";
    a.type = "district-center";
    if (ch_store_agency_create(st, &a) != 0) {
        fprintf(stderr, "agency: %s\n", ch_store_errmsg(st));
        return 0;
    }
    return a.id;
}
