/*
 * auth/principals.c: the principals cache. Valid sessions and API keys resolved to principals,
 * in a bounded hash table (chains over a fixed array of entries, clock eviction), kept true by
 * the store's change feed; the sessions' slides batched and written off the request path.
 */
#include "auth/auth.h"
#include "auth/auth_internal.h"

#include <stdio.h>
#include <string.h>

#define MODULE "auth"

#define DEFAULT_MAX   4096
#define DEFAULT_FLUSH 5000
#define NIL           (-1)

typedef struct entry {
    int32_t next; /* the bucket's chain, or NIL; the free list's when unused */
    uint8_t used;
    uint8_t ref; /* the clock's bit: set by a hit, cleared by a pass of the hand */
    uint64_t h;  /* the key's hash */
    ch_auth__resolved_t r;
} entry_t;

/* A slide waiting to be written: the session as ch_auth__session_slide needs it. */
typedef struct slide {
    ch_auth__resolved_t r;
    int64_t expires_at;
} slide_t;

typedef struct slide_batch {
    slide_t *v;
    size_t n;
} slide_batch_t;

struct ch_auth_principals {
    ch_store_t *st;
    ch_store_worker_t *worker;
    ch_store_watch_t *watch;
    uv_timer_t *timer;
    size_t max, n;
    entry_t *e;
    int32_t *buckets;
    size_t nbuckets; /* a power of two */
    int32_t free_head;
    size_t hand;
    int flushing; /* our own slides are being committed on st: their changes are ours */
    slide_t *slides;
    size_t nslides;
    uint64_t misses;
};

/* ---- the table ------------------------------------------------------------------------------ */

static uint64_t hash_session(const char *token_hash)
{
    /* SHA-256 is uniform already: its first 16 hex digits are the hash. */
    uint64_t h = 0;
    for (int i = 0; i < 16 && token_hash[i] != '\0'; i++) {
        char c = token_hash[i];
        h = (h << 4) | (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return h;
}

static uint64_t hash_key(int64_t id)
{
    return ((uint64_t)id * 0x9e3779b97f4a7c15ull) ^ 0x5bd1e995ull;
}

static int32_t *bucket_of(ch_auth_principals_t *p, uint64_t h)
{
    return &p->buckets[(h ^ (h >> 29)) & (p->nbuckets - 1)];
}

static void drop(ch_auth_principals_t *p, int32_t i)
{
    entry_t *e = &p->e[i];
    for (int32_t *link = bucket_of(p, e->h); *link != NIL; link = &p->e[*link].next) {
        if (*link == i) {
            *link = e->next;
            break;
        }
    }
    memset(&e->r, 0, sizeof(e->r)); /* the CSRF token goes with it */
    e->used = 0;
    e->next = p->free_head;
    p->free_head = i;
    p->n--;
}

/* Drops every entry of kind (CH_AUTH_NONE: all) whose id (a session's id for sessions when
 * by_session, else the principal's id) is id (0: all of that kind). */
static void drop_where(ch_auth_principals_t *p, ch_auth_kind_t kind, int by_session, int64_t id)
{
    for (size_t i = 0; i < p->max && p->n > 0; i++) {
        entry_t *e = &p->e[i];
        if (!e->used || (kind != CH_AUTH_NONE && e->r.who.kind != kind)) {
            continue;
        }
        int64_t eid = by_session ? e->r.who.session_id : e->r.who.id;
        if (id == 0 || eid == id) {
            drop(p, (int32_t)i);
        }
    }
}

static int32_t find(ch_auth_principals_t *p, ch_auth_kind_t kind, uint64_t h, const char *hash,
                    int64_t id)
{
    for (int32_t i = *bucket_of(p, h); i != NIL; i = p->e[i].next) {
        const entry_t *e = &p->e[i];
        if (e->h != h || e->r.who.kind != kind) {
            continue;
        }
        if (kind == CH_AUTH_USER ? strcmp(e->r.hash, hash) == 0 : e->r.who.id == id) {
            return i;
        }
    }
    return NIL;
}

static void add(ch_auth_principals_t *p, uint64_t h, const ch_auth__resolved_t *r)
{
    if (p->free_head == NIL) {
        /* Full: the clock's hand passes entries used since its last pass, takes the next. */
        for (;;) {
            entry_t *e = &p->e[p->hand];
            size_t i = p->hand;
            p->hand = (p->hand + 1) % p->max;
            if (!e->ref) {
                drop(p, (int32_t)i);
                break;
            }
            e->ref = 0;
        }
    }
    int32_t i = p->free_head;
    entry_t *e = &p->e[i];
    p->free_head = e->next;
    e->used = 1;
    e->ref = 0;
    e->h = h;
    e->r = *r;
    int32_t *b = bucket_of(p, h);
    e->next = *b;
    *b = i;
    p->n++;
}

/* ---- the change feed ------------------------------------------------------------------------ */

static void changed(void *ud, const ch_store_change_t *c)
{
    ch_auth_principals_t *p = ud;
    switch (c->table) {
    case CH_STORE_T_USERS: /* changed, disabled, deleted: its sessions are read again */
        drop_where(p, CH_AUTH_USER, 0, c->id);
        break;
    case CH_STORE_T_SESSIONS:
        if (p->flushing && c->op == CH_STORE_UPDATE) {
            break; /* our own slide: the entry has its expiry already */
        }
        drop_where(p, CH_AUTH_USER, 1, c->id);
        break;
    case CH_STORE_T_API_KEYS:
        drop_where(p, CH_AUTH_APIKEY, 0, c->id);
        break;
    default:
        break;
    }
}

/* Other handles' commits (a command beside the hub, another process) reach changed() through
 * the feed's poll, which reads the store's change log only when one committed (SQLite: one
 * PRAGMA otherwise). Inside a transaction of the loop's handle (the event engine's batch of
 * opens, which ends in this loop turn's check phase) the poll waits for the next lookup after
 * it (CH_EAGAIN): the entries stay. Any other failure leaves nothing held trusted. */
static void check_foreign(ch_auth_principals_t *p)
{
    int rc = ch_store_feed_poll(p->st);
    if (rc != 0 && rc != CH_EAGAIN) {
        drop_where(p, CH_AUTH_NONE, 0, 0);
    }
}

/* ---- the slides ----------------------------------------------------------------------------- */

static int write_slides(ch_store_t *st, const slide_t *v, size_t n)
{
    int rc = ch_store_begin(st);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = ch_auth__session_slide(st, &v[i].r, v[i].expires_at);
        if (rc == CH_ENOTFOUND) {
            rc = 0; /* ended meanwhile (logout, purge): nothing to move */
        }
    }
    if (rc == 0) {
        rc = ch_store_commit(st);
    } else {
        (void)ch_store_rollback(st);
    }
    return rc;
}

static int batch_work(ch_store_t *st, void *ud)
{
    slide_batch_t *b = ud;
    return write_slides(st, b->v, b->n);
}

static void batch_done(void *ud, int rc)
{
    slide_batch_t *b = ud;
    if (rc != 0) {
        ch_log(CH_LOG_WARN, MODULE, "msg=\"session expiries not moved\" sessions=%zu rc=%d", b->n,
               rc);
    }
    ch_free(b->v);
    ch_free(b);
}

static void flush_on_st(ch_auth_principals_t *p)
{
    p->flushing = 1;
    int rc = write_slides(p->st, p->slides, p->nslides);
    p->flushing = 0;
    if (rc != 0) {
        ch_log(CH_LOG_WARN, MODULE, "msg=\"session expiries not moved\" sessions=%zu error=\"%s\"",
               p->nslides, ch_store_errmsg(p->st));
    }
    p->nslides = 0;
}

void ch_auth_principals_flush(ch_auth_principals_t *p)
{
    if (p == NULL || p->nslides == 0) {
        return;
    }
    if (p->worker != NULL) {
        slide_batch_t *b = ch_calloc(1, sizeof(*b));
        b->n = p->nslides;
        b->v = ch_malloc(b->n * sizeof(*b->v));
        memcpy(b->v, p->slides, b->n * sizeof(*b->v));
        if (ch_store_async(p->worker, batch_work, batch_done, b) == 0) {
            p->nslides = 0;
            return;
        }
        ch_free(b->v); /* the worker is closing: write them here */
        ch_free(b);
    }
    flush_on_st(p);
}

static void queue_slide(ch_auth_principals_t *p, const ch_auth__resolved_t *r, int64_t expires_at)
{
    if (p->nslides == p->max) {
        ch_auth_principals_flush(p);
    }
    p->slides[p->nslides++] = (slide_t){*r, expires_at};
}

static void on_timer(uv_timer_t *t)
{
    ch_auth_principals_flush(t->data);
}

/* ---- the cache ------------------------------------------------------------------------------ */

int ch_auth_principals_new(ch_store_t *st, const ch_auth_principals_config_t *cfg,
                           ch_auth_principals_t **out)
{
    *out = NULL;
    if (st == NULL) {
        return CH_EINVAL;
    }
    ch_auth_principals_t *p = ch_calloc(1, sizeof(*p));
    p->st = st;
    p->max = cfg != NULL && cfg->max_entries > 0 ? cfg->max_entries : DEFAULT_MAX;
    p->worker = cfg != NULL ? cfg->worker : NULL;
    p->e = ch_calloc(p->max, sizeof(*p->e));
    p->slides = ch_calloc(p->max, sizeof(*p->slides));
    p->nbuckets = 1;
    while (p->nbuckets < 2 * p->max) {
        p->nbuckets <<= 1;
    }
    p->buckets = ch_malloc(p->nbuckets * sizeof(*p->buckets));
    for (size_t i = 0; i < p->nbuckets; i++) {
        p->buckets[i] = NIL;
    }
    for (size_t i = 0; i < p->max; i++) {
        p->e[i].next = i + 1 < p->max ? (int32_t)(i + 1) : NIL;
    }
    p->free_head = 0;
    if (ch_store_watch(st, CH_STORE_T_USERS | CH_STORE_T_SESSIONS | CH_STORE_T_API_KEYS, changed, p,
                       &p->watch) != 0) {
        p->watch = NULL;
        ch_auth_principals_free(p);
        return CH_EINVAL;
    }
    if (cfg != NULL && cfg->loop != NULL) {
        int64_t every = cfg->flush_ms > 0 ? cfg->flush_ms : DEFAULT_FLUSH;
        p->timer = ch_calloc(1, sizeof(*p->timer));
        uv_timer_init(cfg->loop, p->timer);
        p->timer->data = p;
        uv_timer_start(p->timer, on_timer, (uint64_t)every, (uint64_t)every);
        uv_unref((uv_handle_t *)p->timer);
    }
    *out = p;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    ch_free(h);
}

void ch_auth_principals_free(ch_auth_principals_t *p)
{
    if (p == NULL) {
        return;
    }
    if (p->nslides > 0) {
        flush_on_st(p);
    }
    if (p->timer != NULL) {
        uv_timer_stop(p->timer);
        p->timer->data = NULL;
        uv_close((uv_handle_t *)p->timer, timer_closed);
    }
    ch_store_unwatch(p->st, p->watch);
    if (p->e != NULL) {
        memset(p->e, 0, p->max * sizeof(*p->e));
    }
    ch_free(p->e);
    ch_free(p->slides);
    ch_free(p->buckets);
    ch_free(p);
}

/* A hit: the cached session judged on its cached times; its slide moved here, written later. */
static int session_hit(ch_auth_principals_t *p, const ch_auth_config_t *cfg, int32_t i,
                       int64_t now_ms, ch_auth_principal_t *out, const char **why)
{
    entry_t *e = &p->e[i];
    if (ch_auth__session_expired(cfg, e->r.created_at, e->r.expires_at, now_ms)) {
        int64_t id = e->r.who.session_id;
        drop(p, i);
        *why = "the session has expired";
        ch_auth__session_end(p->st, id, "expired session");
        return CH_EPERM;
    }
    e->ref = 1;
    if (ch_auth__slide_due(e->r.slid_at, now_ms)) {
        /* At most one write a minute per session, not one per request; off the request. */
        e->r.slid_at = now_ms;
        e->r.expires_at = now_ms + ch_auth__idle_ms(cfg);
        queue_slide(p, &e->r, e->r.expires_at);
    }
    *out = e->r.who;
    return 0;
}

int ch_auth_principals_authenticate(ch_auth_principals_t *p, const ch_auth_config_t *cfg,
                                    const ch_slice_t *cookie, const ch_slice_t *authorization,
                                    int64_t now_ms, ch_auth_principal_t *out, const char **why)
{
    ch_auth_kind_t kind;
    ch_slice_t token;
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth__resolved_t r;
    int64_t id = 0;
    memset(out, 0, sizeof(*out));
    *why = NULL;
    int rc = ch_auth__credential(cookie, authorization, &kind, &token, why);
    if (rc != 0 || kind == CH_AUTH_NONE) {
        return rc;
    }
    rc = kind == CH_AUTH_USER ? ch_auth__token_hash(token, hash, why)
                              : ch_auth__apikey_parse(token, &id, hash, why);
    if (rc != 0) {
        return rc;
    }
    check_foreign(p);
    uint64_t h = kind == CH_AUTH_USER ? hash_session(hash) : hash_key(id);
    int32_t i = find(p, kind, h, hash, id);
    if (i != NIL && kind == CH_AUTH_USER) {
        return session_hit(p, cfg, i, now_ms, out, why);
    }
    if (i != NIL) {
        entry_t *e = &p->e[i];
        if (!ch_auth_secret_eq(hash, strlen(hash), e->r.hash, strlen(e->r.hash))) {
            *why = "unknown API key"; /* a wrong secret does not evict the right one */
            return CH_EPERM;
        }
        e->ref = 1;
        *out = e->r.who;
        return 0;
    }
    /* A miss: read synchronously on this thread (the store's), and keep what is valid. */
    p->misses++;
    rc = kind == CH_AUTH_USER ? ch_auth__session_read(p->st, cfg, hash, now_ms, &r, why)
                              : ch_auth__apikey_read(p->st, id, hash, &r, why);
    if (rc != 0) {
        return rc;
    }
    add(p, h, &r);
    if (kind == CH_AUTH_USER) {
        return session_hit(p, cfg, find(p, kind, h, hash, id), now_ms, out, why);
    }
    *out = r.who;
    return 0;
}

size_t ch_auth_principals_count(const ch_auth_principals_t *p)
{
    return p->n;
}

size_t ch_auth_principals_pending(const ch_auth_principals_t *p)
{
    return p->nslides;
}

uint64_t ch_auth_principals_misses(const ch_auth_principals_t *p)
{
    return p->misses;
}
