/*
 * store/sqlite/sqlite_health.c: the SQLite side of camera health transitions, health watch
 * windows and the camera reads the probes need (the dispatch and checks are in
 * store/store_health.c; store.h says what each call means). The health module owns the
 * meaning of the rows (docs/internals/health.md).
 */
#include "store/sqlite/sqlite_internal.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* These run a few times a minute at most (the inserts once per tick with transitions, the rest
 * on an API request or a rescan), so statements are prepared per call. */

static int sq_err(ch_store_t *st, sqlite3 *db, const char *what)
{
    return ch_store__fail(st, CH_EDB, "%s: %s", what, sqlite3_errmsg(db));
}

/* Steps s to its end calling fn with its two integer columns, then finalizes it. fn returns 0
 * to go on; anything else stops and is returned. */
static int sq_int_pairs(ch_store_t *st, sqlite3 *db, sqlite3_stmt *s,
                        int (*fn)(void *ud, int64_t a, int64_t b), void *ud, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int frc = fn(ud, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1));
        if (frc != 0) {
            sqlite3_finalize(s);
            return frc;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : sq_err(st, db, what);
    sqlite3_finalize(s);
    return rc;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

int ch_store__sq_health_add(ch_store_t *st, const ch_store_health_row_t *rows, size_t n)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *ins = NULL;
    int rc = 0;
    /* Never wait for the write lock: the caller is the control loop, and an import may hold
     * the lock for seconds. Busy now: the caller keeps the rows for its next try. */
    sqlite3_busy_timeout(db, 0);
    int brc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_busy_timeout(db, 5000);
    if ((brc & 0xff) == SQLITE_BUSY) {
        return ch_store__fail(st, CH_EAGAIN, "health: the database is busy (another writer)");
    }
    if (brc != SQLITE_OK) {
        return sq_err(st, db, "health begin");
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO camera_health_transitions"
                           "(camera_id, agency_id, at, old_state, new_state, reason) "
                           "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &ins, NULL) != SQLITE_OK) {
        rc = sq_err(st, db, "health prepare");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const ch_store_health_row_t *r = &rows[i];
        sqlite3_bind_int64(ins, 1, r->camera_id);
        sqlite3_bind_int64(ins, 2, r->agency_id);
        sqlite3_bind_int64(ins, 3, r->at_ms);
        sqlite3_bind_text(ins, 4, r->old_state, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, r->new_state, -1, SQLITE_STATIC);
        if (r->reason != NULL) {
            sqlite3_bind_text(ins, 6, r->reason, -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(ins, 6);
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            rc = sq_err(st, db, "health insert");
            goto out;
        }
        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins);
    }
out:
    sqlite3_finalize(ins);
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_err(st, db, "health commit");
    }
    if (rc != 0) {
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

/* Steps stmt to its end, calling fn for each row of (id, camera_id, agency_id, at, old_state,
 * new_state, reason). */
static int sq_health_rows(ch_store_t *st, sqlite3 *db, sqlite3_stmt *s, ch_store_health_fn fn,
                          void *ud)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ch_store_health_row_t r = {
            .id = sqlite3_column_int64(s, 0),
            .camera_id = sqlite3_column_int64(s, 1),
            .agency_id = sqlite3_column_int64(s, 2),
            .at_ms = sqlite3_column_int64(s, 3),
            .old_state = col_text(s, 4),
            .new_state = col_text(s, 5),
            .reason = col_text(s, 6),
        };
        int frc = fn(ud, &r);
        if (frc != 0) {
            return frc;
        }
    }
    return rc == SQLITE_DONE ? 0 : sq_err(st, db, "health read");
}

#define HEALTH_COLS "t.id, t.camera_id, t.agency_id, t.at, t.old_state, t.new_state, t.reason"

int ch_store__sq_health_last(ch_store_t *st, int64_t before_ms, ch_store_health_fn fn, void *ud)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    /* The row with the highest id below the time, per camera: rows are appended in time order,
     * so that is the latest; the (camera_id, at) index serves the grouping. */
    if (sqlite3_prepare_v2(db,
                           "SELECT " HEALTH_COLS " FROM camera_health_transitions t JOIN "
                           "(SELECT max(id) AS mid FROM camera_health_transitions WHERE at < ?1 "
                           "GROUP BY camera_id) m ON t.id = m.mid ORDER BY t.camera_id",
                           -1, &s, NULL) != SQLITE_OK) {
        return sq_err(st, db, "health prepare");
    }
    sqlite3_bind_int64(s, 1, before_ms);
    int rc = sq_health_rows(st, db, s, fn, ud);
    sqlite3_finalize(s);
    return rc;
}

int ch_store__sq_health_range(ch_store_t *st, int64_t camera_id, int64_t from_ms, int64_t to_ms,
                              int desc, int limit, ch_store_health_fn fn, void *ud)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    char sql[320];
    snprintf(sql, sizeof(sql),
             "SELECT " HEALTH_COLS " FROM camera_health_transitions t WHERE at >= ?1 AND at < ?2"
             "%s ORDER BY t.camera_id %s, t.at %s, t.id %s LIMIT ?4",
             camera_id > 0 ? " AND camera_id = ?3" : "", desc ? "DESC" : "", desc ? "DESC" : "",
             desc ? "DESC" : "");
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        return sq_err(st, db, "health prepare");
    }
    sqlite3_bind_int64(s, 1, from_ms);
    sqlite3_bind_int64(s, 2, to_ms);
    if (camera_id > 0) {
        sqlite3_bind_int64(s, 3, camera_id);
    }
    sqlite3_bind_int64(s, 4, limit > 0 ? limit : -1);
    int rc = sq_health_rows(st, db, s, fn, ud);
    sqlite3_finalize(s);
    return rc;
}

int ch_store__sq_camera_streams(ch_store_t *st, int (*fn)(void *ud, const ch_store_stream_row_t *r),
                                void *ud)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, agency_id, rtsp_url, rtsp_username, rtsp_password, tls_pin "
                           /* Imports never set a stream URL, and a camera given one
                            * has a row of its own: runs never match. */
                           "FROM cameras WHERE rtsp_url IS NOT NULL AND rtsp_url <> '' "
                           "AND status NOT IN ('inactive', 'maintenance') ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK) {
        return sq_err(st, db, "streams prepare");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ch_store_stream_row_t r = {
            .id = sqlite3_column_int64(s, 0),
            .agency_id = sqlite3_column_int64(s, 1),
            .url = col_text(s, 2),
            .user = col_text(s, 3),
            .password = col_text(s, 4),
            .tls_pin = col_text(s, 5),
        };
        int frc = fn(ud, &r);
        if (frc != 0) {
            sqlite3_finalize(s);
            return frc;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : sq_err(st, db, "streams read");
    sqlite3_finalize(s);
    return rc;
}

int ch_store__sq_camera_counts(ch_store_t *st,
                               int (*fn)(void *ud, int64_t agency_id, int64_t cameras), void *ud)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           /* A row may hold a run of a site's cameras (sqlite_store.c). */
                           "SELECT agency_id, sum(site_count) FROM cameras GROUP BY agency_id "
                           "ORDER BY agency_id",
                           -1, &s, NULL) != SQLITE_OK) {
        return sq_err(st, db, "counts prepare");
    }
    return sq_int_pairs(st, db, s, fn, ud, "counts read");
}

/* ---- health watch windows ------------------------------------------------------------------ */

int ch_store__sq_watch_begin(ch_store_t *st, int64_t now_ms, int64_t *id)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO health_watch(started_at, seen_at) VALUES(?1, ?1)", -1,
                           &s, NULL) != SQLITE_OK) {
        return sq_err(st, db, "health watch");
    }
    sqlite3_bind_int64(s, 1, now_ms);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sq_err(st, db, "health watch");
    sqlite3_finalize(s);
    if (rc == 0) {
        *id = sqlite3_last_insert_rowid(db);
    }
    return rc;
}

int ch_store__sq_watch_seen(ch_store_t *st, int64_t id, int64_t now_ms)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "UPDATE health_watch SET seen_at = max(seen_at, ?2) WHERE id = ?1",
                           -1, &s, NULL) != SQLITE_OK) {
        return sq_err(st, db, "health watch");
    }
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, now_ms);
    /* The control loop's call: never wait for an import's write lock. */
    sqlite3_busy_timeout(db, 0);
    int step = sqlite3_step(s);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_finalize(s);
    if ((step & 0xff) == SQLITE_BUSY) {
        return ch_store__fail(st, CH_EAGAIN, "health watch: the database is busy (another writer)");
    }
    return step == SQLITE_DONE ? 0 : sq_err(st, db, "health watch");
}

int ch_store__sq_watch_list(ch_store_t *st, int64_t from_ms, int64_t to_ms, ch_store_window_fn fn,
                            void *ud)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT max(started_at, ?1), min(seen_at, ?2) FROM health_watch"
                           " WHERE started_at < ?2 AND seen_at > ?1 ORDER BY started_at, id",
                           -1, &s, NULL) != SQLITE_OK) {
        return sq_err(st, db, "health watch");
    }
    sqlite3_bind_int64(s, 1, from_ms);
    sqlite3_bind_int64(s, 2, to_ms);
    return sq_int_pairs(st, db, s, fn, ud, "health watch");
}
