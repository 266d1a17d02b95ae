/*
 * store/store_health.c: camera health transitions, health watch windows and the camera reads
 * the probes need (see store.h): argument checks, then the back end's ops. The SQLite side is
 * store/sqlite/sqlite_health.c. The health module owns the meaning of the rows
 * (docs/internals/health.md).
 */
#include "store/store_internal.h"

/* ---- dispatch ------------------------------------------------------------------------------ */

int ch_store_health_add(ch_store_t *st, const ch_store_health_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].camera_id <= 0 || rows[i].old_state == NULL || rows[i].new_state == NULL) {
            return ch_store__fail(st, CH_EINVAL, "health: camera_id and states are required");
        }
    }
    if (n == 0) {
        return 0;
    }
    int rc = st->ops->health_add(st, rows, n);
    if (rc == 0) {
        ch_store__changed(st, CH_STORE_T_CAMERA_HEALTH, 0, CH_STORE_INSERT);
    }
    return rc;
}

int ch_store_health_last(ch_store_t *st, int64_t before_ms, ch_store_health_fn fn, void *ud)
{
    return st->ops->health_last(st, before_ms, fn, ud);
}

int ch_store_health_range(ch_store_t *st, int64_t camera_id, int64_t from_ms, int64_t to_ms,
                          int desc, int limit, ch_store_health_fn fn, void *ud)
{
    if (camera_id < 0 || limit < 0) {
        return ch_store__fail(st, CH_EINVAL, "health: bad camera_id or limit");
    }
    return st->ops->health_range(st, camera_id, from_ms, to_ms, desc, limit, fn, ud);
}

int ch_store_camera_scan_streams(ch_store_t *st,
                                 int (*fn)(void *ud, const ch_store_stream_row_t *r), void *ud)
{
    return st->ops->camera_streams(st, fn, ud);
}

int ch_store_camera_count_by_agency(ch_store_t *st,
                                    int (*fn)(void *ud, int64_t agency_id, int64_t cameras),
                                    void *ud)
{
    return st->ops->camera_counts(st, fn, ud);
}

int ch_store_health_watch_begin(ch_store_t *st, int64_t now_ms, int64_t *id)
{
    return st->ops->watch_begin(st, now_ms, id);
}

int ch_store_health_watch_seen(ch_store_t *st, int64_t id, int64_t now_ms)
{
    if (id <= 0) {
        return ch_store__fail(st, CH_EINVAL, "health watch: no window");
    }
    return st->ops->watch_seen(st, id, now_ms);
}

int ch_store_health_watch_list(ch_store_t *st, int64_t from_ms, int64_t to_ms,
                               ch_store_window_fn fn, void *ud)
{
    return st->ops->watch_list(st, from_ms, to_ms, fn, ud);
}
