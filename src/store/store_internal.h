/*
 * store internals: what the dispatch layer (store.c and the neutral store_*.c beside it) and the
 * back ends (store/sqlite/, later store/pg/) share, and nothing that callers of store.h may see.
 * A back end's own internals stay in its folder (store/sqlite/sqlite_internal.h).
 *
 *  - ch_store_ops_t, the table of functions a back end provides. store.c checks arguments,
 *    validates records and fills in defaults, then calls through it; a back end may assume
 *    that what it receives is valid (required strings set, enumerations known, numbers finite).
 *  - struct ch_store, the common head of every back end's handle (the back end embeds it as its
 *    first member and casts), holding the ops and the last error message.
 *  - record layouts (ch_store__table_t): the columns of each record type with their C type and
 *    offset, so that SQL text, binding, reading and comparing are written once for all tables
 *    and every back end, instead of once per field per table per back end.
 */
#ifndef CH_STORE_INTERNAL_H
#define CH_STORE_INTERNAL_H

#include "store/store.h"

#include <stddef.h>

/* ---- record layouts ------------------------------------------------------------------------ */

typedef enum ch_store__coltype {
    CH_STORE__TEXT = 1,   /* char *, NULL is SQL NULL */
    CH_STORE__INT64 = 2,  /* int64_t */
    CH_STORE__INT = 3,    /* int */
    CH_STORE__DOUBLE = 4, /* double, always finite */
} ch_store__coltype_t;

/* One stored column of a record (id, created_at and updated_at are handled apart). */
typedef struct ch_store__col {
    const char *name;
    ch_store__coltype_t type;
    size_t offset;
    /* Where the record came from (source_file, source_line), not what it says: an upsert
     * whose only difference is here is "unchanged", so a newer file from the same publisher
     * reports only the cameras whose data changed. */
    int provenance;
    /* Set through the API only, never by an import (a camera's stream settings: rtsp_url, its
     * credentials, codec): an upsert neither compares nor writes it, so re-importing a newer
     * edition of a file keeps what an operator configured. */
    int local;
    /* The CH_STORE_F_* group the column belongs to (0: none): an upsert whose file has no
     * column for the group (ch_store_upsert_opts_t.keep) leaves it as stored. A camera's
     * status also has CH_STORE__KEEP_MAINTENANCE. */
    unsigned group;
} ch_store__col_t;

/* In a column's group and an upsert's keep, set by the back end for one found camera: a
 * status an operator set to "maintenance" stays when the file says only "active" (the file
 * knows nothing of maintenance); "inactive" (deleted, 데이터갱신구분 D) and "unlocated" from
 * the file still replace it. Never a CH_STORE_F_* bit. */
#define CH_STORE__KEEP_MAINTENANCE (1u << 31)

/* Which filters of ch_store_filter_t apply to a table; a bit per filter. The list statement for
 * one combination of filters is built once and cached under this mask. */
enum {
    CH_STORE__F_AGENCY = 1 << 0,
    CH_STORE__F_PURPOSE = 1 << 1,
    CH_STORE__F_KIND = 1 << 2,
    CH_STORE__F_STATUS = 1 << 3,
    CH_STORE__F_TYPE = 1 << 4,
    CH_STORE__F_LEVEL = 1 << 5,
    CH_STORE__F_TEXT = 1 << 6,
    CH_STORE__F_BBOX = 1 << 7,
    CH_STORE__F_EVENT = 1 << 8,
    CH_STORE__F_DEVICE = 1 << 9,
    CH_STORE__F_COUNT = 10, /* number of filter bits */
};

typedef enum ch_store__table_id {
    CH_STORE__AGENCIES = 0,
    CH_STORE__CAMERAS = 1,
    CH_STORE__DEVICES = 2,
    CH_STORE__USERS = 3,
    CH_STORE__APIKEYS = 4,
    CH_STORE__SESSIONS = 5,
    CH_STORE__OUTBOX = 6,
    CH_STORE__EVENTS = 7,
    CH_STORE__GRANTS = 8,
    CH_STORE__ALERTS = 9,
    CH_STORE__DEVICE_TRANSITIONS = 10,
    CH_STORE__NTABLES = 11,
} ch_store__table_id_t;

/* A record type and the table that stores it. */
typedef struct ch_store__table {
    const char *name;            /* SQL table name */
    size_t record_size;          /* sizeof the record struct */
    const ch_store__col_t *cols; /* every stored column but id, created_at, updated_at */
    int ncols;
    int key_col;             /* index in cols of the unique upsert key (source_key), or -1 */
    unsigned filters;        /* CH_STORE__F_* that apply */
    const char *text_col[4]; /* columns the text filter searches, NULL-terminated */
    size_t created_off;      /* offsetof created_at */
    size_t updated_off;      /* offsetof updated_at */
    /* Whether a row may hold a run of records that differ only in the number ending their name
     * and key (the cameras of one imported site; see ch_store_camera_upsert_site). */
    int runs;
} ch_store__table_t;

extern const ch_store__table_t ch_store__tables[CH_STORE__NTABLES];

/* Every record struct starts with int64_t id. */
#define CH_STORE__ID(rec)          (*(int64_t *)(void *)(rec))
#define CH_STORE__FIELD(rec, col)  ((char *)(rec) + (col)->offset)
#define CH_STORE__I64_AT(rec, off) (*(int64_t *)(void *)((char *)(rec) + (off)))

/* Frees every string of a record of table t and zeroes it. */
void ch_store__record_fini(const ch_store__table_t *t, void *rec);

/* Checks that value is one of words (NULL-terminated); CH_EINVAL naming what and field. */
int ch_store__check_enum(ch_store_t *st, const char *what, const char *field, const char *value,
                         const char *const *words);

/*
 * The key or name of record j (0-based) of a run whose first record's text is first and whose
 * first number is number: first with its trailing decimal number (which must be number)
 * replaced by number + j. Returns a new string, or NULL when first does not end in number.
 */
char *ch_store__run_text(const char *first, int64_t number, int64_t j);

/* The number ending s after a '#' ("...#12" -> 12), or 0 when s does not end so. *prefix_len
 * is set to the length before the digits. */
int64_t ch_store__run_number(const char *s, size_t *prefix_len);

/* The effective page size of a filter (1..1000), or CH_EINVAL. */
int ch_store__filter_limit(const ch_store_filter_t *f);

/* ---- table descriptors --------------------------------------------------------------------- */

/*
 * The schema, described once (store_schema.c): every table the migrations leave, whatever the
 * back end. The SQLite migrations are tested against it (tests/unit/store/test_store_schema.c);
 * the PostgreSQL back end derives its DDL from it. The record layouts above say how a record's
 * fields map to columns; these say what the columns are.
 */
typedef enum ch_store__sqltype {
    CH_STORE__SQL_INTEGER = 1, /* 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT) */
    CH_STORE__SQL_REAL = 2,    /* double (REAL, DOUBLE PRECISION) */
    CH_STORE__SQL_TEXT = 3,    /* UTF-8 text (TEXT) */
    CH_STORE__SQL_BLOB = 4,    /* bytes (BLOB, BYTEA) */
} ch_store__sqltype_t;

typedef struct ch_store__column_desc {
    const char *name;
    ch_store__sqltype_t type;
    int not_null;
    int pk;                 /* position in the primary key (1-based), 0 when not in it */
    const char *dflt;       /* the default as SQL text ("1"), or NULL */
    const char *references; /* "table(column)" for a foreign key, or NULL */
    int cascade;            /* the reference is ON DELETE CASCADE */
} ch_store__column_desc_t;

/* A secondary index (the primary key's aside). */
typedef struct ch_store__index_desc {
    const char *name;
    const char *columns; /* "lat, lon" */
    int unique;
    const char *where; /* a partial index's condition ("located = 1"), or NULL */
} ch_store__index_desc_t;

enum {
    CH_STORE__AUTOINCREMENT = 1 << 0, /* ids never reused after a delete */
    CH_STORE__WITHOUT_ROWID = 1 << 1, /* SQLite: the table is its primary key's tree */
};

typedef struct ch_store__table_desc {
    const char *name;
    const ch_store__column_desc_t *cols; /* in table order */
    int ncols;
    const ch_store__index_desc_t *indexes;
    int nindexes;
    unsigned flags; /* CH_STORE__AUTOINCREMENT, CH_STORE__WITHOUT_ROWID */
} ch_store__table_desc_t;

extern const ch_store__table_desc_t ch_store__schema[];
extern const int ch_store__schema_ntables;

/* The descriptor of table name, or NULL. */
const ch_store__table_desc_t *ch_store__schema_table(const char *name);

/* ---- back end interface -------------------------------------------------------------------- */

/* One list result, whatever the record type: items is an array of count records of the table's
 * record_size. The typed lists of store.h have this same layout (CH_STORE_LIST_TYPE declares them
 * all). */
typedef struct ch_store__list {
    void *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_store__list_t;

/* Runs a list of table t (page size and bounding box checked). */
int ch_store__list(ch_store_t *st, const ch_store__table_t *t, const ch_store_filter_t *f,
                   ch_store__list_t *l);

/* Frees count records of table t stored back to back in items, then the array. */
void ch_store__list_items_free(const ch_store__table_t *t, void *items, size_t count);

/* A record type's *_fini (store.h): its strings freed, the record zeroed. */
#define CH_STORE__FINI(fn, type, table)                                                            \
    void fn(type *rec)                                                                             \
    {                                                                                              \
        ch_store__record_fini(table, rec);                                                         \
    }

/* The typed list calls of store.h, one line each: the typed lists have the generic layout. */
#define CH_STORE__LIST_FREE(fn, type, table)                                                       \
    void fn(type *l)                                                                               \
    {                                                                                              \
        if (l != NULL) {                                                                           \
            ch_store__list_items_free(table, l->items, l->count);                                  \
            memset(l, 0, sizeof(*l));                                                              \
        }                                                                                          \
    }

#define CH_STORE__LIST(fn, type, table)                                                            \
    int fn(ch_store_t *st, const ch_store_filter_t *f, type *out)                                  \
    {                                                                                              \
        ch_store__list_t l;                                                                        \
        int rc = ch_store__list(st, table, f, &l);                                                 \
        out->items = l.items;                                                                      \
        out->count = l.count;                                                                      \
        out->total = l.total;                                                                      \
        out->next_id = l.next_id;                                                                  \
        return rc;                                                                                 \
    }

/* The get of a record type: out zeroed first, so a miss leaves nothing to free. */
#define CH_STORE__GET(fn, type, table)                                                             \
    int fn(ch_store_t *st, int64_t id, type *out)                                                  \
    {                                                                                              \
        memset(out, 0, sizeof(*out));                                                              \
        return st->ops->get(st, table, id, out);                                                   \
    }

/* The create and the update of a record type: check (ch_store_t *, const type *) refuses a
 * record the store would not keep, before the back end sees it. */
#define CH_STORE__WRITES(create_fn, update_fn, type, table, check)                                 \
    int create_fn(ch_store_t *st, type *rec)                                                       \
    {                                                                                              \
        int rc = check(st, rec);                                                                   \
        return rc != 0 ? rc : ch_store__create(st, table, rec);                                    \
    }                                                                                              \
    int update_fn(ch_store_t *st, type *rec)                                                       \
    {                                                                                              \
        int rc = check(st, rec);                                                                   \
        return rc != 0 ? rc : ch_store__update(st, table, rec);                                    \
    }

typedef struct ch_store_ops {
    const char *name; /* "sqlite", "postgresql" */
    void (*close)(ch_store_t *st);
    int (*schema_version)(ch_store_t *st);
    int (*begin)(ch_store_t *st);
    int (*commit)(ch_store_t *st);
    int (*rollback)(ch_store_t *st);
    /* what: CH_STORE_MAINTAIN_* bits, only known ones (store.c checks); see store.h. */
    int (*maintain)(ch_store_t *st, unsigned what);
    int (*savepoint)(ch_store_t *st, int op); /* 0 begin, 1 release, 2 rollback to */

    /* Generic CRUD over a record of table t. create sets id, created_at and updated_at; update
     * sets updated_at and created_at (read back). get fills a zeroed *out. */
    int (*create)(ch_store_t *st, const ch_store__table_t *t, void *rec);
    int (*get)(ch_store_t *st, const ch_store__table_t *t, int64_t id, void *out);
    int (*update)(ch_store_t *st, const ch_store__table_t *t, void *rec);
    int (*remove)(ch_store_t *st, const ch_store__table_t *t, int64_t id);
    /* mask holds the CH_STORE__F_* bits set in f (already limited to t->filters); limit is the
     * effective page size. */
    int (*list)(ch_store_t *st, const ch_store__table_t *t, const ch_store_filter_t *f,
                unsigned mask, int limit, ch_store__list_t *out);
    /* The record's key column is set (not NULL); o is never NULL (see ch_store_upsert_opts_t:
     * owned refuses with CH_EPERM, writing nothing; keep leaves column groups as stored). */
    int (*upsert)(ch_store_t *st, const ch_store__table_t *t, void *rec,
                  const ch_store_upsert_opts_t *o, ch_store_upsert_t *outcome);
    /* The cameras of one site (t->runs set; count and the "#1" endings checked); o as for
     * upsert, owned checked for every camera of the site before any is written. */
    int (*upsert_site)(ch_store_t *st, const ch_store__table_t *t, void *first, int count,
                       const ch_store_upsert_opts_t *o, ch_store_upsert_counts_t *counts);
    int (*agency_find_by_name)(ch_store_t *st, const char *name, ch_agency_t *out);
    /* The row whose key column (t->key_col >= 0) holds key; fills a zeroed *out. */
    int (*find_by_key)(ch_store_t *st, const ch_store__table_t *t, const char *key, void *out);
    /* DELETE FROM t WHERE col = v (below = 0) or col < v (below = 1). col is a column name of
     * t, never input. */
    int (*delete_where)(ch_store_t *st, const ch_store__table_t *t, const char *col, int below,
                        int64_t v);
    int (*count)(ch_store_t *st, const ch_store__table_t *t, int64_t *out);
    int (*camera_scan)(ch_store_t *st, ch_store_camera_fn fn, void *ud);
    int (*audit_add)(ch_store_t *st, const ch_store_audit_row_t *row);
    int (*audit_last)(ch_store_t *st, int64_t *seq);
    int (*audit_clear)(ch_store_t *st);
    int (*audit_cp_get)(ch_store_t *st, ch_store_audit_checkpoint_t *out);
    int (*audit_cp_put)(ch_store_t *st, const ch_store_audit_checkpoint_t *cp);
    int (*audit_query)(ch_store_t *st, const ch_store_audit_filter_t *f, int limit, int64_t **seqs,
                       size_t *count, int64_t *total, int64_t *next_seq);
    /* Camera health (store_health.c dispatches); see store.h. */
    int (*health_add)(ch_store_t *st, const ch_store_health_row_t *rows, size_t n);
    int (*health_last)(ch_store_t *st, int64_t before_ms, ch_store_health_fn fn, void *ud);
    int (*health_range)(ch_store_t *st, int64_t camera_id, int64_t from_ms, int64_t to_ms, int desc,
                        int limit, ch_store_health_fn fn, void *ud);
    int (*camera_streams)(ch_store_t *st, int (*fn)(void *ud, const ch_store_stream_row_t *r),
                          void *ud);
    int (*camera_counts)(ch_store_t *st, int (*fn)(void *ud, int64_t agency_id, int64_t cameras),
                         void *ud);
    int (*watch_begin)(ch_store_t *st, int64_t now_ms, int64_t *id);
    int (*watch_seen)(ch_store_t *st, int64_t id, int64_t now_ms);
    int (*watch_list)(ch_store_t *st, int64_t from_ms, int64_t to_ms, ch_store_window_fn fn,
                      void *ud);
    /* The change log that carries a handle's changes to the followers on other handles
     * (store_watch.c): feed_put appends changes (in the open transaction, or as their own) and
     * keeps the last CH_STORE__LOG_KEEP; feed_mark reads the last sequence number; feed_read
     * calls fn for every change after *seq in order, moving *seq, and sets *gap when changes
     * after *seq were already dropped. A poll reads them when foreign_version moved. */
    int (*feed_put)(ch_store_t *st, const ch_store_change_t *c, size_t n);
    int (*feed_mark)(ch_store_t *st, int64_t *seq);
    int (*feed_read)(ch_store_t *st, int64_t *seq, int *gap,
                     void (*fn)(ch_store_t *st, const ch_store_change_t *c));
    /* A number that moves when another handle commits, never for this one's own (SQLite: PRAGMA
     * data_version); ch_store_feed_poll reads the change log only when it moved. */
    int (*foreign_version)(ch_store_t *st, uint64_t *out);
} ch_store_ops_t;

/*
 * The change feed's state in a handle (store_watch.c); zero is a handle without watchers.
 * Changes wait in pending from the write to the commit; marks remember where the open
 * transaction and savepoint began, so that their rollbacks drop what they undid.
 */
typedef struct ch_store__feed {
    ch_store_watch_t *watchers;
    unsigned mask; /* the union of the watchers' tables: a write to another is not kept */
    ch_store_change_t *pending;
    size_t n, cap;
    unsigned many;     /* tables changed beyond CH_STORE__FEED_MAX: told as id 0 */
    int in_tx;         /* a transaction of this handle is open */
    size_t tx_n, sp_n; /* pending's length at begin and at the savepoint */
    unsigned tx_many, sp_many;
    int delivering; /* inside a watcher's call: writes append, the outer loop tells */
    int swept;      /* a watcher was ended while delivering: unlink it after */
    /* A handle with watchers follows the log of other handles' changes from seq, read again
     * when the back end's data version moves; a handle without publishes its own into it. */
    int following;
    int64_t seq;
    uint64_t version;
} ch_store__feed_t;

#define CH_STORE__FEED_MAX 65536
/* A transaction that changed more rows is published as one change of id 0 per table. */
#define CH_STORE__LOG_MAX 1024
/* The changes the log keeps for followers (a follower further behind rereads). */
#define CH_STORE__LOG_KEEP 65536

/* The common head of every back end's handle (allocated zeroed by the back end). */
struct ch_store {
    const ch_store_ops_t *ops;
    char errmsg[512];
    ch_store__feed_t feed;
};

/* The writes, through the ops table, that the change feed sees: each calls the back end and,
 * when it succeeds, notes its change. Every write of a record goes through them. */
int ch_store__create(ch_store_t *st, const ch_store__table_t *t, void *rec);
int ch_store__update(ch_store_t *st, const ch_store__table_t *t, void *rec);
int ch_store__remove(ch_store_t *st, const ch_store__table_t *t, int64_t id);
int ch_store__delete_where(ch_store_t *st, const ch_store__table_t *t, const char *col, int below,
                           int64_t v);

/* Notes a change of table (one CH_STORE_T_* bit): kept until the commit, or told now when no
 * transaction is open. */
void ch_store__changed(ch_store_t *st, unsigned table, int64_t id, ch_store_op_t op);
/* The CH_STORE_T_* bit of a record table. */
unsigned ch_store__table_bit(const ch_store__table_t *t);
/* The transaction hooks of the feed, called by store.c after the back end succeeded:
 * begin, commit (tells), rollback (drops); savepoint op 0 begin, 1 release, 2 rollback to. */
void ch_store__feed_begin(ch_store_t *st);
void ch_store__feed_commit(ch_store_t *st);
void ch_store__feed_rollback(ch_store_t *st);
void ch_store__feed_savepoint(ch_store_t *st, int op);
/* Before the back end's commit: a handle without watchers writes its changes to the log, in
 * the transaction. 0 or the back end's code. */
int ch_store__feed_publish(ch_store_t *st);
/* Ends every subscription and frees the feed (ch_store_close, before the back end's close). */
void ch_store__feed_free(ch_store_t *st);

/* Records a message as this handle's last error (printf-style) and returns rc, so that error
 * paths read "return ch_store__fail(st, CH_EINVAL, ...)". */
int ch_store__fail(ch_store_t *st, int rc, const char *fmt, ...) CH_PRINTF(3, 4);

/* Back-end constructors. path/url is what follows the scheme. */
int ch_store__sqlite_open(const char *path, ch_store_t **out, char **err);

#endif /* CH_STORE_INTERNAL_H */
