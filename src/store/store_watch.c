/*
 * store: the change feed (ch_store_watch, store.h).
 *
 * Back-end neutral: the store's own write calls know what they write, so each successful
 * write of a record notes (table, id, op) here, and the transaction calls of store.c tell the
 * watchers at commit or drop the notes at rollback. No back-end hook is used (SQLite's update
 * hook would see a run of cameras as one row and the PostgreSQL back end has none); a back end
 * therefore needs nothing to feed watchers.
 *
 * Nothing is kept for a table no watcher asked for.
 *
 * Other handles of the same database (an import's thread, the store worker, a command run
 * beside the hub) reach the watchers through a change log in the database: a handle without
 * watchers publishes its changes of the shared tables (CH_STORE_T_SHARED) into it inside the
 * transaction that made them (one row per change, or one per table past CH_STORE__LOG_MAX),
 * and a handle with watchers reads what follows its mark when ch_store_feed_poll finds the back
 * end's data version moved (ops->foreign_version; SQLite's PRAGMA data_version: no I/O, so a
 * poll of an idle store costs one pragma). A handle with watchers does not publish: its own
 * watchers hear its writes at commit, and one handle per database follows (the hub's control loop).
 * docs/internals/ store.md says why this and not a hook, and what PostgreSQL will use
 * (LISTEN/NOTIFY).
 */
#include "store/store_internal.h"

#include <assert.h>
#include <string.h>

struct ch_store_watch {
    ch_store_watch_t *next;
    unsigned tables; /* 0 once ended while delivering (then unlinked by sweep) */
    ch_store_watch_fn fn;
    void *ud;
};

/* The CH_STORE_T_* bit of a record table is its index in ch_store__tables; camera health is
 * the bit after them. */
_Static_assert(CH_STORE_T_AGENCIES == 1u << CH_STORE__AGENCIES, "feed bit");
_Static_assert(CH_STORE_T_CAMERAS == 1u << CH_STORE__CAMERAS, "feed bit");
_Static_assert(CH_STORE_T_DEVICES == 1u << CH_STORE__DEVICES, "feed bit");
_Static_assert(CH_STORE_T_USERS == 1u << CH_STORE__USERS, "feed bit");
_Static_assert(CH_STORE_T_API_KEYS == 1u << CH_STORE__APIKEYS, "feed bit");
_Static_assert(CH_STORE_T_SESSIONS == 1u << CH_STORE__SESSIONS, "feed bit");
_Static_assert(CH_STORE_T_OUTBOX == 1u << CH_STORE__OUTBOX, "feed bit");
_Static_assert(CH_STORE_T_EVENTS == 1u << CH_STORE__EVENTS, "feed bit");
_Static_assert(CH_STORE_T_GRANTS == 1u << CH_STORE__GRANTS, "feed bit");
_Static_assert(CH_STORE_T_ALERTS == 1u << CH_STORE__ALERTS, "feed bit");
_Static_assert(CH_STORE_T_DEVICE_TRANSITIONS == 1u << CH_STORE__DEVICE_TRANSITIONS, "feed bit");
_Static_assert(CH_STORE_T_CAMERA_HEALTH == 1u << CH_STORE__NTABLES, "feed bit");

unsigned ch_store__table_bit(const ch_store__table_t *t)
{
    return 1u << (unsigned)(t - ch_store__tables);
}

const char *ch_store_table_name(unsigned table)
{
    for (unsigned i = 0; i < CH_STORE__NTABLES; i++) {
        if (table == 1u << i) {
            return ch_store__tables[i].name;
        }
    }
    return table == CH_STORE_T_CAMERA_HEALTH ? "camera_health_transitions" : NULL;
}

int ch_store_watch(ch_store_t *st, unsigned tables, ch_store_watch_fn fn, void *ud,
                   ch_store_watch_t **out)
{
    *out = NULL;
    if (fn == NULL || tables == 0 || (tables & ~(unsigned)CH_STORE_T_ALL) != 0) {
        return ch_store__fail(st, CH_EINVAL, "watch: tables 0x%x or no callback", tables);
    }
    ch_store_watch_t *w = ch_calloc(1, sizeof(*w));
    w->tables = tables;
    w->fn = fn;
    w->ud = ud;
    if (!st->feed.following) {
        /* From now on the handle follows the others' changes made after this mark. */
        int rc = st->ops->feed_mark(st, &st->feed.seq);
        if (rc == 0) {
            rc = st->ops->foreign_version(st, &st->feed.version);
        }
        if (rc != 0) {
            ch_free(w);
            return rc;
        }
        st->feed.following = 1;
    }
    w->next = st->feed.watchers;
    st->feed.watchers = w;
    st->feed.mask |= tables;
    *out = w;
    return 0;
}

/* Unlinks the watchers ended while delivering and recomputes the mask. */
static void sweep(ch_store__feed_t *f)
{
    ch_store_watch_t **pp = &f->watchers;
    f->mask = 0;
    while (*pp != NULL) {
        ch_store_watch_t *w = *pp;
        if (w->tables == 0) {
            *pp = w->next;
            ch_free(w);
        } else {
            f->mask |= w->tables;
            pp = &w->next;
        }
    }
    f->following = f->watchers != NULL; /* watched again, it takes a new mark */
    f->swept = 0;
}

void ch_store_unwatch(ch_store_t *st, ch_store_watch_t *w)
{
    if (w == NULL) {
        return;
    }
    w->tables = 0; /* never called again, even by the delivery under way */
    if (st->feed.delivering) {
        st->feed.swept = 1;
    } else {
        sweep(&st->feed);
    }
}

static void tell(ch_store__feed_t *f, const ch_store_change_t *c)
{
    /* A watcher added by a callback goes in front and sees the rest too; one ended has
     * tables 0. */
    for (ch_store_watch_t *w = f->watchers; w != NULL; w = w->next) {
        if (w->tables & c->table) {
            w->fn(w->ud, c);
        }
    }
}

/* Writes the pending changes to the log and empties the list (a handle without watchers).
 * Past CH_STORE__LOG_MAX changes, each table changed is one change of id 0. */
static int publish(ch_store_t *st)
{
    ch_store__feed_t *f = &st->feed;
    if (f->n > CH_STORE__LOG_MAX) {
        for (size_t i = 0; i < f->n; i++) {
            f->many |= f->pending[i].table;
        }
        f->n = 0;
    }
    for (unsigned m = f->many; m != 0; m &= m - 1) {
        if (f->n == f->cap) {
            f->cap = f->cap == 0 ? 16 : f->cap * 2;
            f->pending = ch_realloc(f->pending, f->cap * sizeof(*f->pending));
        }
        f->pending[f->n++] = (ch_store_change_t){m & (~m + 1u), 0, CH_STORE_UPDATE};
    }
    int rc = f->n > 0 ? st->ops->feed_put(st, f->pending, f->n) : 0;
    f->n = 0;
    f->many = 0;
    return rc;
}

int ch_store__feed_publish(ch_store_t *st)
{
    ch_store__feed_t *f = &st->feed;
    if (!f->in_tx || f->watchers != NULL || (f->n == 0 && f->many == 0)) {
        return 0;
    }
    int rc = publish(st);
    f->tx_n = f->sp_n = 0; /* a failed commit's rollback has nothing more to drop */
    f->tx_many = f->sp_many = 0;
    return rc;
}

/* Tells every pending change, then the tables changed beyond the cap, and empties the list.
 * Changes the callbacks make are appended and told by the same loop. A handle without
 * watchers publishes instead (a write outside a transaction: just after it). */
static void deliver(ch_store_t *st)
{
    ch_store__feed_t *f = &st->feed;
    if (f->watchers == NULL) {
        if (publish(st) != 0) {
            ch_log(CH_LOG_WARN, "store", "msg=\"change not published\" error=\"%s\"", st->errmsg);
        }
        return;
    }
    if (f->delivering) {
        return;
    }
    f->delivering = 1;
    size_t i = 0;
    for (;;) {
        ch_store_change_t c;
        if (i < f->n) {
            c = f->pending[i++]; /* a copy: a callback's write may move pending */
        } else if (f->many != 0) {
            unsigned bit = f->many & (~f->many + 1u);
            f->many &= ~bit;
            c = (ch_store_change_t){.table = bit, .id = 0, .op = CH_STORE_UPDATE};
        } else {
            break;
        }
        tell(f, &c);
    }
    f->n = 0;
    f->delivering = 0;
    if (f->swept) {
        sweep(f);
    }
}

/* The tables whose changes a handle keeps: its watchers', or, watched by none, the shared
 * ones it publishes. */
static unsigned wanted(const ch_store__feed_t *f)
{
    return f->watchers != NULL ? f->mask : (unsigned)CH_STORE_T_SHARED;
}

/* Keeps a change for the commit when its table is wanted. */
static void keep(ch_store__feed_t *f, const ch_store_change_t *c)
{
    if ((wanted(f) & c->table) == 0) {
        return;
    }
    /* A publisher keeps no order: a reread (a site of an import) needs no entry of its own. */
    if (f->n >= CH_STORE__FEED_MAX || (c->id == 0 && f->watchers == NULL)) {
        f->many |= c->table;
    } else {
        if (f->n == f->cap) {
            f->cap = f->cap == 0 ? 16 : f->cap * 2;
            f->pending = ch_realloc(f->pending, f->cap * sizeof(*f->pending));
        }
        f->pending[f->n++] = *c;
    }
}

void ch_store__changed(ch_store_t *st, unsigned table, int64_t id, ch_store_op_t op)
{
    ch_store__feed_t *f = &st->feed;
    if ((wanted(f) & table) == 0) {
        return;
    }
    keep(f, &(ch_store_change_t){.table = table, .id = id, .op = op});
    if (!f->in_tx) {
        deliver(st);
    }
}

void ch_store__feed_begin(ch_store_t *st)
{
    ch_store__feed_t *f = &st->feed;
    f->in_tx = 1;
    /* Changes of a callback's own transaction start after the ones being told. */
    f->tx_n = f->sp_n = f->n;
    f->tx_many = f->sp_many = f->many;
}

void ch_store__feed_commit(ch_store_t *st)
{
    st->feed.in_tx = 0;
    deliver(st);
}

/* A change another handle published, noted as if this handle had made it. */
static void note_read(ch_store_t *st, const ch_store_change_t *c)
{
    keep(&st->feed, c);
}

int ch_store_feed_poll(ch_store_t *st)
{
    ch_store__feed_t *f = &st->feed;
    if (!f->following || f->watchers == NULL) {
        return 0;
    }
    if (f->in_tx) {
        return ch_store__fail(st, CH_EAGAIN, "feed: poll inside a transaction");
    }
    uint64_t version = 0;
    int rc = st->ops->foreign_version(st, &version);
    if (rc != 0 || version == f->version) {
        return rc;
    }
    f->version = version;
    int gap = 0;
    f->in_tx = 1; /* the changes read are told together, as a commit's */
    rc = st->ops->feed_read(st, &f->seq, &gap, note_read);
    f->in_tx = 0;
    if (gap) {
        f->many |= f->mask; /* the log no longer holds what this handle missed: reread */
    }
    deliver(st);
    return rc;
}

void ch_store__feed_rollback(ch_store_t *st)
{
    ch_store__feed_t *f = &st->feed;
    if (f->in_tx) {
        f->n = f->tx_n;
        f->many = f->tx_many;
    }
    f->in_tx = 0;
}

void ch_store__feed_savepoint(ch_store_t *st, int op)
{
    ch_store__feed_t *f = &st->feed;
    if (op == 0) {
        f->sp_n = f->n;
        f->sp_many = f->many;
    } else if (op == 2) {
        f->n = f->sp_n;
        f->many = f->sp_many;
    }
}

void ch_store__feed_free(ch_store_t *st)
{
    ch_store__feed_t *f = &st->feed;
    assert(!f->delivering);
    while (f->watchers != NULL) {
        ch_store_watch_t *w = f->watchers;
        f->watchers = w->next;
        ch_free(w);
    }
    ch_free(f->pending);
    memset(f, 0, sizeof(*f));
}

/* ---- the writes the feed sees -------------------------------------------------------------- */

int ch_store__create(ch_store_t *st, const ch_store__table_t *t, void *rec)
{
    int rc = st->ops->create(st, t, rec);
    if (rc == 0) {
        ch_store__changed(st, ch_store__table_bit(t), CH_STORE__ID(rec), CH_STORE_INSERT);
    }
    return rc;
}

int ch_store__update(ch_store_t *st, const ch_store__table_t *t, void *rec)
{
    int rc = st->ops->update(st, t, rec);
    if (rc == 0) {
        ch_store__changed(st, ch_store__table_bit(t), CH_STORE__ID(rec), CH_STORE_UPDATE);
    }
    return rc;
}

int ch_store__remove(ch_store_t *st, const ch_store__table_t *t, int64_t id)
{
    int rc = st->ops->remove(st, t, id);
    if (rc == 0) {
        ch_store__changed(st, ch_store__table_bit(t), id, CH_STORE_DELETE);
    }
    return rc;
}

int ch_store__delete_where(ch_store_t *st, const ch_store__table_t *t, const char *col, int below,
                           int64_t v)
{
    int rc = st->ops->delete_where(st, t, col, below, v);
    if (rc == 0) {
        ch_store__changed(st, ch_store__table_bit(t), 0, CH_STORE_DELETE);
    }
    return rc;
}
