/*
 * auth/principals.c: the principals cache. Valid sessions and API keys resolved to principals,
 * in a bounded hash table (chains over a fixed array of entries, clock eviction), kept true by
 * the store's change feed; a miss read on the store worker while its request waits; the
 * sessions' slides batched and written off the request path.
 */
#include "auth/auth.h"
#include "auth/auth_internal.h"

#include <errno.h>
#include <sodium.h>
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

/* Slides being written on the store worker. */
typedef struct slide_batch {
    ch_auth_principals_t *p;  /* NULL once the cache is freed */
    struct slide_batch *next; /* the cache's batches in flight */
    slide_t *v;
    size_t n;
} slide_batch_t;

/* A credential as the table finds it: its kind, the hash it is found by (a session's token
 * hash, a key's secret hash), a key's id, and the table's hash of those. */
typedef struct cred {
    ch_auth_kind_t kind;
    char hash[CH_AUTH_SHA256_HEX];
    int64_t id;
    uint64_t h;
} cred_t;

/* A miss being read on the store worker, and the requests waiting for it (the first one's
 * and any later one's of the same credential). */
typedef struct lookup_job {
    ch_auth_principals_t *p; /* NULL once the cache is freed: the read ends unused */
    struct lookup_job *next; /* the cache's lookups in flight */
    cred_t k;
    ch_auth_config_t cfg;
    int64_t now_ms;
    uint64_t epoch; /* the feed's count of changes when the read was queued */
    ch_auth__resolved_t r;
    const char *why;
    ch_auth_lookup_t *first, **last;
} lookup_job_t;

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
    int flushing; /* our own slides' commit is being told (on st, or the worker's): their
                   * changes are ours, the entries hold them already */
    slide_batch_t *batches;
    slide_t *slides;
    size_t nslides;
    uint64_t misses;
    /* Changes (updates, deletions) of users, sessions and keys told so far: a read on the
     * worker that began before one answers its requests but is not kept (it may predate the
     * change). */
    uint64_t epoch;
    lookup_job_t *lookups;
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
    /* What can make a read in flight stale: a row changed or gone (a new one cannot), other
     * than our own slides. */
    if (c->op != CH_STORE_INSERT &&
        !(p->flushing && c->table == CH_STORE_T_SESSIONS && c->op == CH_STORE_UPDATE)) {
        p->epoch++;
    }
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
        p->epoch++;
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

/* Back on the loop, just before the worker's commit of the batch is told. */
static void batch_telling(void *ud, int rc)
{
    slide_batch_t *b = ud;
    (void)rc;
    if (b->p != NULL) {
        b->p->flushing = 1;
    }
}

static void batch_done(void *ud, int rc)
{
    slide_batch_t *b = ud;
    ch_auth_principals_t *p = b->p;
    if (p != NULL) {
        p->flushing = 0;
        for (slide_batch_t **link = &p->batches; *link != NULL; link = &(*link)->next) {
            if (*link == b) {
                *link = b->next;
                break;
            }
        }
    }
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
        b->p = p;
        b->n = p->nslides;
        b->v = ch_malloc(b->n * sizeof(*b->v));
        memcpy(b->v, p->slides, b->n * sizeof(*b->v));
        /* Told as our own (batch_telling), so that the sessions' entries stay. */
        if (ch_store_async_watched(p->worker, batch_work, batch_telling, batch_done, b) == 0) {
            b->next = p->batches;
            p->batches = b;
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
    /* Requests waiting for a read are answered now; the reads end unused (lookup_done). */
    while (p->lookups != NULL) {
        lookup_job_t *j = p->lookups;
        p->lookups = j->next;
        j->p = NULL;
        ch_auth_lookup_t *l = j->first;
        j->first = NULL;
        while (l != NULL) {
            ch_auth_lookup_t *next = l->next;
            l->cb(l, -ECANCELED);
            l = next;
        }
    }
    for (slide_batch_t *b = p->batches; b != NULL; b = b->next) {
        b->p = NULL; /* written all the same; nobody is left to tell */
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

/* An expired session's deletion on the worker: the request does not wait for it. */
static int end_work(ch_store_t *st, void *ud)
{
    ch_auth__session_end(st, *(int64_t *)ud, "expired session");
    return 0;
}

static void end_done(void *ud, int rc)
{
    (void)rc;
    ch_free(ud);
}

static void session_end(ch_auth_principals_t *p, int64_t session_id)
{
    if (p->worker != NULL) {
        int64_t *id = ch_malloc(sizeof(*id));
        *id = session_id;
        if (ch_store_async(p->worker, end_work, end_done, id) == 0) {
            return;
        }
        ch_free(id); /* busy or closing: here, then */
    }
    ch_auth__session_end(p->st, session_id, "expired session");
}

/* A session used at now_ms, judged on its known times: entry i of the table, or r when it is
 * not kept (i NIL). An expired one goes (and is deleted, on the worker when there is one); a
 * due slide moves the expiry at once and is written later. */
static int session_use(ch_auth_principals_t *p, const ch_auth_config_t *cfg, int32_t i,
                       ch_auth__resolved_t *r, int64_t now_ms, ch_auth_principal_t *out,
                       const char **why)
{
    if (i != NIL) {
        r = &p->e[i].r;
    }
    if (ch_auth__session_expired(cfg, r->created_at, r->expires_at, now_ms)) {
        int64_t id = r->who.session_id;
        if (i != NIL) {
            drop(p, i);
        }
        *why = "the session has expired";
        session_end(p, id);
        return CH_EPERM;
    }
    if (i != NIL) {
        p->e[i].ref = 1;
    }
    if (ch_auth__slide_due(r->slid_at, now_ms)) {
        /* At most one write a minute per session, not one per request; off the request. */
        r->slid_at = now_ms;
        r->expires_at = now_ms + ch_auth__idle_ms(cfg);
        queue_slide(p, r, r->expires_at);
    }
    *out = r->who;
    return 0;
}

#define MISS 1

/* The part of an authentication that needs no store: the credential of the headers, then the
 * table. Returns an answer (0 or CH_EPERM, with *out and *why), or MISS with k filled. */
static int lookup_cached(ch_auth_principals_t *p, const ch_auth_config_t *cfg,
                         const ch_slice_t *cookie, const ch_slice_t *authorization, int64_t now_ms,
                         cred_t *k, ch_auth_principal_t *out, const char **why)
{
    ch_slice_t token;
    memset(out, 0, sizeof(*out));
    memset(k, 0, sizeof(*k));
    *why = NULL;
    int rc = ch_auth__credential(cookie, authorization, &k->kind, &token, why);
    if (rc != 0 || k->kind == CH_AUTH_NONE) {
        return rc;
    }
    rc = k->kind == CH_AUTH_USER ? ch_auth__token_hash(token, k->hash, why)
                                 : ch_auth__apikey_parse(token, &k->id, k->hash, why);
    if (rc != 0) {
        return rc;
    }
    check_foreign(p);
    k->h = k->kind == CH_AUTH_USER ? hash_session(k->hash) : hash_key(k->id);
    int32_t i = find(p, k->kind, k->h, k->hash, k->id);
    if (i != NIL && k->kind == CH_AUTH_USER) {
        return session_use(p, cfg, i, NULL, now_ms, out, why);
    }
    if (i != NIL) {
        entry_t *e = &p->e[i];
        if (!ch_auth_secret_eq(k->hash, strlen(k->hash), e->r.hash, strlen(e->r.hash))) {
            *why = "unknown API key"; /* a wrong secret does not evict the right one */
            return CH_EPERM;
        }
        e->ref = 1;
        *out = e->r.who;
        return 0;
    }
    return MISS;
}

/* A request's answer from r, a valid credential read at a miss: through its entry when kept. */
static int miss_answer(ch_auth_principals_t *p, const ch_auth_config_t *cfg, const cred_t *k,
                       ch_auth__resolved_t *r, int64_t now_ms, ch_auth_principal_t *out,
                       const char **why)
{
    int32_t i = find(p, k->kind, k->h, k->hash, k->id);
    if (k->kind == CH_AUTH_USER) {
        return session_use(p, cfg, i, r, now_ms, out, why);
    }
    *out = r->who;
    return 0;
}

/* A miss read here, on the cache's handle (the loop's), and kept when valid. */
static int read_here(ch_auth_principals_t *p, const ch_auth_config_t *cfg, const cred_t *k,
                     int64_t now_ms, ch_auth_principal_t *out, const char **why)
{
    ch_auth__resolved_t r;
    p->misses++;
    int rc = k->kind == CH_AUTH_USER ? ch_auth__session_read(p->st, cfg, k->hash, now_ms, &r, why)
                                     : ch_auth__apikey_read(p->st, k->id, k->hash, &r, why);
    if (rc == 0) {
        add(p, k->h, &r);
        rc = miss_answer(p, cfg, k, &r, now_ms, out, why);
    }
    sodium_memzero(&r, sizeof(r));
    return rc;
}

int ch_auth_principals_authenticate(ch_auth_principals_t *p, const ch_auth_config_t *cfg,
                                    const ch_slice_t *cookie, const ch_slice_t *authorization,
                                    int64_t now_ms, ch_auth_principal_t *out, const char **why)
{
    cred_t k;
    int rc = lookup_cached(p, cfg, cookie, authorization, now_ms, &k, out, why);
    return rc == MISS ? read_here(p, cfg, &k, now_ms, out, why) : rc;
}

/* ---- misses on the store worker -------------------------------------------------------------- */

static int same_cred(const cred_t *a, const cred_t *b)
{
    return a->kind == b->kind && a->id == b->id &&
           ch_auth_secret_eq(a->hash, strlen(a->hash), b->hash, strlen(b->hash));
}

static void lookup_job_free(lookup_job_t *j)
{
    sodium_memzero(j, sizeof(*j)); /* the CSRF token and the hashes go */
    ch_free(j);
}

/* The worker's thread: ch_auth_authenticate's read, on the worker's handle. */
static int lookup_work(ch_store_t *st, void *ud)
{
    lookup_job_t *j = ud;
    return j->k.kind == CH_AUTH_USER
               ? ch_auth__session_read(st, &j->cfg, j->k.hash, j->now_ms, &j->r, &j->why)
               : ch_auth__apikey_read(st, j->k.id, j->k.hash, &j->r, &j->why);
}

/* Back on the loop, after the worker's commits before it were told: keeps what was read unless
 * a change was told since the read was queued, answers every request waiting (each at its own
 * time), then calls them back, the cache no longer touched. */
static void lookup_done(void *ud, int rc)
{
    lookup_job_t *j = ud;
    ch_auth_principals_t *p = j->p;
    if (p == NULL) {
        lookup_job_free(j); /* the cache is gone; its requests were answered then */
        return;
    }
    for (lookup_job_t **link = &p->lookups; *link != NULL; link = &(*link)->next) {
        if (*link == j) {
            *link = j->next;
            break;
        }
    }
    if (rc == 0 && j->epoch == p->epoch && find(p, j->k.kind, j->k.h, j->k.hash, j->k.id) == NIL) {
        add(p, j->k.h, &j->r);
    }
    for (ch_auth_lookup_t *l = j->first; l != NULL; l = l->next) {
        memset(&l->who, 0, sizeof(l->who));
        l->why = j->why;
        l->rc = rc == 0 ? miss_answer(p, &j->cfg, &j->k, &j->r, l->now_ms, &l->who, &l->why) : rc;
    }
    ch_auth_lookup_t *l = j->first;
    lookup_job_free(j);
    while (l != NULL) {
        ch_auth_lookup_t *next = l->next;
        l->cb(l, l->rc);
        l = next;
    }
}

int ch_auth_principals_lookup(ch_auth_principals_t *p, const ch_auth_config_t *cfg,
                              const ch_slice_t *cookie, const ch_slice_t *authorization,
                              int64_t now_ms, ch_auth_lookup_t *l, ch_auth_lookup_cb cb)
{
    cred_t k;
    l->cb = cb;
    l->now_ms = now_ms;
    l->rc = 0;
    l->next = NULL;
    int rc = lookup_cached(p, cfg, cookie, authorization, now_ms, &k, &l->who, &l->why);
    if (rc != MISS) {
        return rc;
    }
    if (p->worker == NULL) {
        return read_here(p, cfg, &k, now_ms, &l->who, &l->why);
    }
    /* The same credential read already, and no change told since: wait for that read. */
    for (lookup_job_t *j = p->lookups; j != NULL; j = j->next) {
        if (j->epoch == p->epoch && same_cred(&j->k, &k)) {
            *j->last = l;
            j->last = &l->next;
            return CH_EAGAIN;
        }
    }
    lookup_job_t *j = ch_calloc(1, sizeof(*j));
    j->p = p;
    j->k = k;
    j->cfg = cfg != NULL ? *cfg : (ch_auth_config_t){0};
    j->now_ms = now_ms;
    j->epoch = p->epoch;
    j->first = l;
    j->last = &l->next;
    rc = ch_store_async(p->worker, lookup_work, lookup_done, j);
    if (rc == 0) {
        p->misses++;
        j->next = p->lookups;
        p->lookups = j;
        return CH_EAGAIN;
    }
    lookup_job_free(j);
    if (rc == CH_EAGAIN) {
        return -EBUSY; /* nothing queued: the caller answers "busy" */
    }
    return read_here(p, cfg, &k, now_ms, &l->who, &l->why); /* the worker is closing */
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
