/*
 * Unit tests of the schema's descriptors (store_internal.h, store_schema.c): the tables the
 * SQLite migrations make on a fresh file are exactly the ones described, column by column
 * (order, name, type, NOT NULL, default, primary key, reference) and index by index (name,
 * columns, unique, partial condition); and the record layouts name only described columns of
 * the matching type. The PostgreSQL back end derives its DDL from the descriptors, so these
 * tests are what keeps the two back ends' schemas one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "support/fixture.h"

typedef struct fixture {
    ch_test_store_t ts;
    sqlite3 *db; /* a plain connection to the file the store migrated */
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    ch_store_t *st = NULL;
    if (ch_test_store_open(&fx->ts, "ch_store_schema", &st) != 0) {
        return -1;
    }
    ch_store_close(st);
    if (sqlite3_open_v2(fx->ts.path, &fx->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    sqlite3_close(fx->db);
    int rc = ch_test_store_close(&fx->ts, NULL);
    ch_free(fx);
    return rc;
}

/* Prepares head, arg and tail put together (arg is a table or index name of ours). */
static sqlite3_stmt *prepare(sqlite3 *db, const char *head, const char *arg, const char *tail)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "%s%s%s", head, arg, tail);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    return stmt;
}

static const char *text(sqlite3_stmt *stmt, int col)
{
    const char *s = (const char *)sqlite3_column_text(stmt, col);
    return s != NULL ? s : "";
}

static const char *sql_type(ch_store__sqltype_t t)
{
    switch (t) {
    case CH_STORE__SQL_INTEGER:
        return "INTEGER";
    case CH_STORE__SQL_REAL:
        return "REAL";
    case CH_STORE__SQL_TEXT:
        return "TEXT";
    case CH_STORE__SQL_BLOB:
        return "BLOB";
    }
    return "?";
}

/* Every table of the file (SQLite's own aside) is described, and every described table is
 * there. */
static void test_every_table_migrated_is_described_and_every_described_one_exists(void **state)
{
    fixture_t *fx = *state;
    sqlite3_stmt *stmt = prepare(fx->db,
                                 "SELECT name FROM sqlite_master WHERE type = 'table' AND name "
                                 "NOT LIKE 'sqlite_%' ORDER BY name",
                                 "", "");
    int n = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *name = text(stmt, 0);
        if (ch_store__schema_table(name) == NULL) {
            fail_msg("table %s is not described in store_schema.c", name);
        }
        n++;
    }
    sqlite3_finalize(stmt);
    assert_int_equal(n, ch_store__schema_ntables);
}

/* Columns in order with type, NOT NULL, default and primary key, then the foreign keys. */
static void check_columns(sqlite3 *db, const ch_store__table_desc_t *t)
{
    sqlite3_stmt *stmt = prepare(db, "PRAGMA table_info(\"", t->name, "\")");
    int i = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        if (i >= t->ncols) {
            fail_msg("%s: column %s is not described", t->name, text(stmt, 1));
        }
        const ch_store__column_desc_t *c = &t->cols[i];
        if (strcmp(text(stmt, 1), c->name) != 0) {
            fail_msg("%s: column %d is %s, described %s", t->name, i, text(stmt, 1), c->name);
        }
        if (strcmp(text(stmt, 2), sql_type(c->type)) != 0) {
            fail_msg("%s.%s: type %s, described %s", t->name, c->name, text(stmt, 2),
                     sql_type(c->type));
        }
        /* SQLite reports an INTEGER PRIMARY KEY (the rowid) as nullable; it never is. */
        int rowid_alias = c->pk == 1 && !(t->flags & CH_STORE__WITHOUT_ROWID);
        if (!rowid_alias && sqlite3_column_int(stmt, 3) != c->not_null) {
            fail_msg("%s.%s: NOT NULL differs", t->name, c->name);
        }
        if (strcmp(text(stmt, 4), c->dflt != NULL ? c->dflt : "") != 0) {
            fail_msg("%s.%s: default '%s', described '%s'", t->name, c->name, text(stmt, 4),
                     c->dflt != NULL ? c->dflt : "");
        }
        if (sqlite3_column_int(stmt, 5) != c->pk) {
            fail_msg("%s.%s: primary key position differs", t->name, c->name);
        }
        i++;
    }
    sqlite3_finalize(stmt);
    if (i != t->ncols) {
        fail_msg("%s: %d columns, %d described", t->name, i, t->ncols);
    }

    int refs = 0;
    for (int k = 0; k < t->ncols; k++) {
        refs += t->cols[k].references != NULL;
    }
    stmt = prepare(db, "PRAGMA foreign_key_list(\"", t->name, "\")");
    int found = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        /* id, seq, table, from, to, on_update, on_delete, match */
        char ref[128];
        snprintf(ref, sizeof(ref), "%s(%s)", text(stmt, 2), text(stmt, 4));
        int matched = 0;
        for (int k = 0; k < t->ncols; k++) {
            const ch_store__column_desc_t *c = &t->cols[k];
            if (strcmp(c->name, text(stmt, 3)) == 0 && c->references != NULL &&
                strcmp(c->references, ref) == 0 &&
                c->cascade == (strcmp(text(stmt, 6), "CASCADE") == 0)) {
                matched = 1;
            }
        }
        if (!matched) {
            fail_msg("%s.%s: reference %s (on delete %s) not as described", t->name, text(stmt, 3),
                     ref, text(stmt, 6));
        }
        found++;
    }
    sqlite3_finalize(stmt);
    assert_int_equal(found, refs);
}

/* The secondary indexes made by CREATE INDEX: names, columns, unique, partial condition. */
static void check_indexes(sqlite3 *db, const ch_store__table_desc_t *t)
{
    sqlite3_stmt *stmt = prepare(db, "PRAGMA index_list(\"", t->name, "\")");
    int found = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        /* seq, name, unique, origin ("c": CREATE INDEX; "pk", "u": the table's own), partial */
        if (strcmp(text(stmt, 3), "c") != 0) {
            continue;
        }
        const char *name = text(stmt, 1);
        const ch_store__index_desc_t *ix = NULL;
        for (int k = 0; k < t->nindexes; k++) {
            if (strcmp(t->indexes[k].name, name) == 0) {
                ix = &t->indexes[k];
            }
        }
        if (ix == NULL) {
            fail_msg("%s: index %s is not described", t->name, name);
        }
        assert_int_equal(sqlite3_column_int(stmt, 2), ix->unique);
        assert_int_equal(sqlite3_column_int(stmt, 4), ix->where != NULL);

        char cols[256] = "";
        sqlite3_stmt *info = prepare(db, "PRAGMA index_info(\"", name, "\")");
        while (sqlite3_step(info) == SQLITE_ROW) {
            size_t len = strlen(cols);
            snprintf(cols + len, sizeof(cols) - len, "%s%s", len > 0 ? ", " : "", text(info, 2));
        }
        sqlite3_finalize(info);
        if (strcmp(cols, ix->columns) != 0) {
            fail_msg("%s: index %s on (%s), described (%s)", t->name, name, cols, ix->columns);
        }
        if (ix->where != NULL) {
            sqlite3_stmt *sql = prepare(
                db, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '", name, "'");
            assert_int_equal(sqlite3_step(sql), SQLITE_ROW);
            char tail[256];
            snprintf(tail, sizeof(tail), " WHERE %s", ix->where);
            const char *ddl = text(sql, 0);
            size_t dl = strlen(ddl), tl = strlen(tail);
            if (dl < tl || strcmp(ddl + dl - tl, tail) != 0) {
                fail_msg("%s: index %s is \"%s\", described WHERE %s", t->name, name, ddl,
                         ix->where);
            }
            sqlite3_finalize(sql);
        }
        found++;
    }
    sqlite3_finalize(stmt);
    if (found != t->nindexes) {
        fail_msg("%s: %d indexes, %d described", t->name, found, t->nindexes);
    }
}

static void test_migrated_columns_and_indexes_match_the_descriptors(void **state)
{
    fixture_t *fx = *state;
    for (int i = 0; i < ch_store__schema_ntables; i++) {
        check_columns(fx->db, &ch_store__schema[i]);
        check_indexes(fx->db, &ch_store__schema[i]);
    }
}

/* AUTOINCREMENT leaves a row in sqlite_sequence once used and the keyword in the DDL;
 * WITHOUT ROWID is in the DDL. */
static void test_table_flags_match_the_ddl(void **state)
{
    fixture_t *fx = *state;
    for (int i = 0; i < ch_store__schema_ntables; i++) {
        const ch_store__table_desc_t *t = &ch_store__schema[i];
        sqlite3_stmt *stmt =
            prepare(fx->db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '",
                    t->name, "'");
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        const char *ddl = text(stmt, 0);
        if ((strstr(ddl, "AUTOINCREMENT") != NULL) != !!(t->flags & CH_STORE__AUTOINCREMENT)) {
            fail_msg("%s: AUTOINCREMENT differs", t->name);
        }
        if ((strstr(ddl, "WITHOUT ROWID") != NULL) != !!(t->flags & CH_STORE__WITHOUT_ROWID)) {
            fail_msg("%s: WITHOUT ROWID differs", t->name);
        }
        sqlite3_finalize(stmt);
    }
}

/* The record layouts (how fields map to columns) name described columns of a matching type,
 * and id, created_at, updated_at. */
static void test_record_layouts_name_described_columns(void **state)
{
    (void)state;
    for (int i = 0; i < CH_STORE__NTABLES; i++) {
        const ch_store__table_t *t = &ch_store__tables[i];
        const ch_store__table_desc_t *d = ch_store__schema_table(t->name);
        if (d == NULL) {
            fail_msg("layout %s has no descriptor", t->name);
        }
        for (int k = 0; k < t->ncols; k++) {
            const ch_store__col_t *col = &t->cols[k];
            const ch_store__column_desc_t *c = NULL;
            for (int j = 0; j < d->ncols; j++) {
                if (strcmp(d->cols[j].name, col->name) == 0) {
                    c = &d->cols[j];
                }
            }
            if (c == NULL) {
                fail_msg("%s.%s: in the layout, not described", t->name, col->name);
            }
            ch_store__sqltype_t want = col->type == CH_STORE__TEXT     ? CH_STORE__SQL_TEXT
                                       : col->type == CH_STORE__DOUBLE ? CH_STORE__SQL_REAL
                                                                       : CH_STORE__SQL_INTEGER;
            if (c->type != want) {
                fail_msg("%s.%s: the layout's type is not the column's", t->name, col->name);
            }
        }
        static const char *const implicit[] = {"id", "created_at", "updated_at"};
        for (size_t k = 0; k < CH_ARRAY_SIZE(implicit); k++) {
            int have = 0;
            for (int j = 0; j < d->ncols; j++) {
                have |= strcmp(d->cols[j].name, implicit[k]) == 0;
            }
            if (!have) {
                fail_msg("%s: no %s column", t->name, implicit[k]);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_every_table_migrated_is_described_and_every_described_one_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrated_columns_and_indexes_match_the_descriptors,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_flags_match_the_ddl, setup, teardown),
        cmocka_unit_test(test_record_layouts_name_described_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
