/*
 * store/sqlite/sqlite_feed.c: the change log through which other handles' commits reach a
 * watching handle (store_watch.c; docs/internals/store.md, "The change feed"). Rows of
 * store_changes (migration 10) are written in the publishing transaction; a follower notices
 * with the foreign version (PRAGMA data_version, sqlite_store.c), which moves when another
 * connection commits and costs no I/O, and reads what follows its mark. Statements are prepared per
 * call: a publish is once per commit of a handle without watchers, a read once per poll that found
 * the version moved.
 */
#include "store/sqlite/sqlite_internal.h"

#include <sqlite3.h>
#include <string.h>

static int feed_err(ch_store_t *st, sqlite3 *db, const char *what)
{
    return ch_store__fail(st, CH_EDB, "feed: %s: %s", what, sqlite3_errmsg(db));
}

static int prepare(ch_store_t *st, sqlite3 *db, const char *sql, sqlite3_stmt **s, const char *what)
{
    return sqlite3_prepare_v2(db, sql, -1, s, NULL) == SQLITE_OK ? 0 : feed_err(st, db, what);
}

int ch_store__sq_feed_put(ch_store_t *st, const ch_store_change_t *c, size_t n)
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    /* A savepoint: the changes and the pruning are one, inside a transaction or outside. */
    if (sqlite3_exec(db, "SAVEPOINT ch_feed", NULL, NULL, NULL) != SQLITE_OK) {
        return feed_err(st, db, "savepoint");
    }
    int rc = prepare(st, db, "INSERT INTO store_changes(tbl, row_id, op) VALUES(?1, ?2, ?3)", &s,
                     "prepare");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_bind_text(s, 1, ch_store_table_name(c[i].table), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, c[i].id);
        sqlite3_bind_int(s, 3, (int)c[i].op);
        if (sqlite3_step(s) != SQLITE_DONE) {
            rc = feed_err(st, db, "insert");
        }
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc == 0) {
        rc = prepare(st, db, "DELETE FROM store_changes WHERE seq <= ?1", &s, "prune");
    }
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, sqlite3_last_insert_rowid(db) - CH_STORE__LOG_KEEP);
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : feed_err(st, db, "prune");
    }
    sqlite3_finalize(s);
    if (rc != 0) {
        (void)sqlite3_exec(db, "ROLLBACK TO ch_feed", NULL, NULL, NULL);
    }
    if (sqlite3_exec(db, "RELEASE ch_feed", NULL, NULL, NULL) != SQLITE_OK && rc == 0) {
        rc = feed_err(st, db, "release");
    }
    return rc;
}

/* The one integer a statement answers. */
static int one_int(ch_store_t *st, sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, db, sql, &s, sql);
    if (rc == 0 && sqlite3_step(s) != SQLITE_ROW) {
        rc = feed_err(st, db, sql);
    } else if (rc == 0) {
        *out = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return rc;
}

int ch_store__sq_feed_mark(ch_store_t *st, int64_t *seq)
{
    return one_int(st, ch_store__sqlite_db(st), "SELECT coalesce(max(seq), 0) FROM store_changes",
                   seq);
}

/* The CH_STORE_T_* bit of a table's name, or 0. */
static unsigned table_bit(const char *name)
{
    for (unsigned i = 0; name != NULL && (1u << i) <= CH_STORE_T_ALL; i++) {
        const char *t = ch_store_table_name(1u << i);
        if (t != NULL && strcmp(t, name) == 0) {
            return 1u << i;
        }
    }
    return 0;
}

int ch_store__sq_feed_read(ch_store_t *st, int64_t *seq, int *gap,
                           void (*fn)(ch_store_t *st, const ch_store_change_t *c))
{
    sqlite3 *db = ch_store__sqlite_db(st);
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, db,
                     "SELECT seq, tbl, row_id, op FROM store_changes WHERE seq > ?1 ORDER BY seq",
                     &s, "read");
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_int64(s, 1, *seq);
    *gap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(s, 0);
        /* Numbers follow one another (the newest row is never pruned): a jump is a loss. */
        if (n != *seq + 1) {
            *gap = 1;
        }
        *seq = n;
        ch_store_change_t c = {
            .table = table_bit((const char *)sqlite3_column_text(s, 1)),
            .id = sqlite3_column_int64(s, 2),
            .op = (ch_store_op_t)sqlite3_column_int(s, 3),
        };
        if (c.table != 0 && c.op >= CH_STORE_INSERT && c.op <= CH_STORE_DELETE) {
            fn(st, &c);
        }
    }
    rc = step == SQLITE_DONE ? 0 : feed_err(st, db, "read");
    sqlite3_finalize(s);
    return rc;
}
