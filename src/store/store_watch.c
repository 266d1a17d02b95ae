/*
 * store: the change feed (ch_store_watch, store.h).
 *
 * Back-end neutral: the store's own write calls know what they write, so each successful
 * write of a record notes (table, id, op) here, and the transaction calls of store.c tell the
 * watchers at commit or drop the notes at rollback. No back-end hook is used (SQLite's update
 * hook would see a run of cameras as one row and the PostgreSQL back end has none); a back end
 * therefore needs nothing to feed watchers.
 *
 * Nothing is kept for a table no watcher asked for, so a handle without watchers pays one test
 * of a mask per write.
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

/* Tells every pending change, then the tables changed beyond the cap, and empties the list.
 * Changes the callbacks make are appended and told by the same loop. */
static void deliver(ch_store__feed_t *f)
{
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

void ch_store__changed(ch_store_t *st, unsigned table, int64_t id, ch_store_op_t op)
{
    ch_store__feed_t *f = &st->feed;
    if ((f->mask & table) == 0) {
        return;
    }
    if (f->n >= CH_STORE__FEED_MAX) {
        f->many |= table;
    } else {
        if (f->n == f->cap) {
            f->cap = f->cap == 0 ? 16 : f->cap * 2;
            f->pending = ch_realloc(f->pending, f->cap * sizeof(*f->pending));
        }
        f->pending[f->n++] = (ch_store_change_t){.table = table, .id = id, .op = op};
    }
    if (!f->in_tx) {
        deliver(f);
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
    deliver(&st->feed);
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
