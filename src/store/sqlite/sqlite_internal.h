/*
 * store/sqlite/sqlite_internal.h: what the SQLite back end's files (sqlite_store.c, the
 * connection, schema and generic tables; sqlite_health.c, camera health) share. Nothing
 * outside store/sqlite/ includes it: the dispatch layer reaches the back end only through
 * ch_store__sqlite_open and its ops table (store/store_internal.h).
 */
#ifndef CH_STORE_SQLITE_INTERNAL_H
#define CH_STORE_SQLITE_INTERNAL_H

#include "store/store_internal.h"

/* The back end's connection (a sqlite3 *) of a handle ch_store__sqlite_open made. */
void *ch_store__sqlite_db(ch_store_t *st);

/* The camera health calls (sqlite_health.c), for the ops table in sqlite_store.c. */
int ch_store__sq_health_add(ch_store_t *st, const ch_store_health_row_t *rows, size_t n);
int ch_store__sq_health_last(ch_store_t *st, int64_t before_ms, ch_store_health_fn fn, void *ud);
int ch_store__sq_health_range(ch_store_t *st, int64_t camera_id, int64_t from_ms, int64_t to_ms,
                              int desc, int limit, ch_store_health_fn fn, void *ud);
int ch_store__sq_camera_streams(ch_store_t *st, int (*fn)(void *ud, const ch_store_stream_row_t *r),
                                void *ud);
int ch_store__sq_camera_counts(ch_store_t *st,
                               int (*fn)(void *ud, int64_t agency_id, int64_t cameras), void *ud);
int ch_store__sq_watch_begin(ch_store_t *st, int64_t now_ms, int64_t *id);
int ch_store__sq_watch_seen(ch_store_t *st, int64_t id, int64_t now_ms);
int ch_store__sq_watch_list(ch_store_t *st, int64_t from_ms, int64_t to_ms, ch_store_window_fn fn,
                            void *ud);
/* The change log (sqlite_feed.c), for the ops table. */
int ch_store__sq_feed_put(ch_store_t *st, const ch_store_change_t *c, size_t n);
int ch_store__sq_feed_mark(ch_store_t *st, int64_t *seq);
int ch_store__sq_feed_read(ch_store_t *st, int64_t *seq, int *gap,
                           void (*fn)(ch_store_t *st, const ch_store_change_t *c));

#endif /* CH_STORE_SQLITE_INTERNAL_H */
