/*
 * alert/alert.c: the rules engine. It keeps, in memory, what the rules need (which cameras are
 * down and since when, how many per provider, which alert is open for which subject) and, in
 * the store, the alerts themselves. See alert.h and docs/internals/alert.md.
 */
#include "alert/alert.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTENERS 8

/* ---- a small map from an id to three numbers ------------------------------------------------ */

/* Open addressing with linear probing; key 0 marks a free slot (ids start at 1). Entries are
 * never removed: a camera, provider or device stays known once heard of, which at city scale
 * is tens of thousands of 32-byte slots. */
typedef struct slot {
    int64_t key;
    int64_t a, b, c;
} slot_t;

typedef struct idmap {
    slot_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
} idmap_t;

static size_t idmap_hash(int64_t key, size_t cap)
{
    uint64_t x = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 17) & (cap - 1);
}

/* The slot of key, created (zeroed) when absent. */
static slot_t *idmap_get(idmap_t *m, int64_t key)
{
    assert(key != 0);
    if (m->count * 2 >= m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        slot_t *ns = ch_calloc(ncap, sizeof(*ns));
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slots[i].key != 0) {
                size_t j = idmap_hash(m->slots[i].key, ncap);
                while (ns[j].key != 0) {
                    j = (j + 1) & (ncap - 1);
                }
                ns[j] = m->slots[i];
            }
        }
        ch_free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t i = idmap_hash(key, m->cap);
    while (m->slots[i].key != 0 && m->slots[i].key != key) {
        i = (i + 1) & (m->cap - 1);
    }
    if (m->slots[i].key == 0) {
        m->slots[i].key = key;
        m->count++;
    }
    return &m->slots[i];
}

/* ---- the engine ----------------------------------------------------------------------------- */

/* A rule's slot while its alert's create is on the store worker: no second alert is raised,
 * and a resolve waits in the create's request (alert_req_t.resolve_after). */
#define PENDING ((int64_t)-1)

typedef enum req_kind {
    REQ_CREATE,  /* an alert raised */
    REQ_RESOLVE, /* an alert's cause cleared */
    REQ_READ,    /* an alert another handle changed, read to tell the listeners */
} req_kind_t;

/*
 * One write (or read) of the engine, on the store worker or, without one, at once on the
 * loop's handle. The worker's thread touches only rec, id, changed and err (work); everything
 * else is the loop's. A create stays in the engine's list of creates until its id is known, so
 * that a resolve arriving meanwhile finds it.
 */
typedef struct alert_req {
    struct alert_req *next; /* in eng->creates, while a create is in flight */
    ch_alert_engine_t *eng;
    req_kind_t kind;
    idmap_t *map;      /* create: the rule's map, its subject's slot PENDING; NULL: the bell */
    int64_t id;        /* resolve, read: the alert */
    ch_alert_t rec;    /* create: the alert; resolve, read: the row as read (and written) */
    char *reason;      /* resolve, or a create resolved before it was written */
    int64_t at_ms;     /* the resolve's time */
    int resolve_after; /* create: its cause cleared while it was in flight */
    int changed;       /* resolve: the row was changed (it was not resolved already) */
    int heard;         /* the feed told the change, and the listeners heard it */
    int async;         /* on the worker (counted in eng->in_flight) */
    int64_t *id_out;   /* create, or NULL: where its id goes when written at once */
    char err[200];     /* the store's message when work failed */
} alert_req_t;

struct ch_alert_engine {
    ch_store_t *st;
    ch_alert_config_t cfg;
    ch_store_worker_t *worker; /* NULL: every write on st, at once */
    ch_store_watch_t *watch;   /* the alerts' feed on st */
    /* cameras: a = provider id, b = down since (ms; 0 = not down), c = open camera-offline
     * alert id. providers: a = cameras down, c = open provider-down alert id. devices: c = open
     * device-offline alert id. An id is PENDING while its create is on the worker. */
    idmap_t cams, providers, devices;
    struct {
        ch_alert_listener_fn fn;
        void *ud;
    } listeners[MAX_LISTENERS];
    int nlisteners;
    uint64_t raised, resolved;
    int64_t cameras_down;
    alert_req_t *creates; /* creates in flight whose id is not known yet */
    alert_req_t *cur;     /* the request whose change the feed tells now */
    json_t *written;      /* ch_alert_written: the alert the next change of it is */
    int64_t mute_id;      /* ch_alert_ack: its own change is not published */
    size_t in_flight;     /* requests on the worker */
    /* Unresolved alerts by state (open, acknowledged), for metrics: counted at start and again
     * after each change the feed tells (on the worker, one count at a time). */
    int64_t unresolved[2];
    int counting; /* a count is on the worker */
    int recount;  /* a change came while it ran: count again after it */
    int freeing;  /* ch_alert_free with requests in flight: the last one frees */
};

static int64_t now_ms(const ch_alert_engine_t *eng)
{
    return eng->cfg.clock != NULL ? eng->cfg.clock(eng->cfg.clock_ud) : ch_time_now_ms();
}

int64_t ch_alert_now(const ch_alert_engine_t *eng)
{
    return now_ms(eng);
}

static void rfc3339_or_null(json_t *o, const char *key, int64_t ms)
{
    if (ms <= 0) {
        json_object_set_new(o, key, json_null());
        return;
    }
    char t[32];
    ch_time_format_rfc3339(ms, t);
    json_object_set_new(o, key, json_string(t));
}

json_t *ch_alert_to_json(const ch_alert_t *a)
{
    json_t *details = NULL;
    if (a->details != NULL) {
        details = json_loads(a->details, 0, NULL);
    }
    json_t *o = json_pack("{s:I, s:s, s:s, s:{s:s, s:I}, s:I, s:s, s:o, s:s}", "id",
                          (json_int_t)a->id, "kind", a->kind, "severity", a->severity, "subject",
                          "type", a->subject_type, "id", (json_int_t)a->subject_id, "agency_id",
                          (json_int_t)a->agency_id, "message", a->message, "details",
                          details != NULL ? details : json_object(), "state", a->status);
    rfc3339_or_null(o, "raised_at", a->raised_at);
    json_object_set_new(o, "acked_by", a->acked_by ? json_string(a->acked_by) : json_null());
    rfc3339_or_null(o, "acked_at", a->acked_at);
    json_object_set_new(o, "note", a->note ? json_string(a->note) : json_null());
    rfc3339_or_null(o, "resolved_at", a->resolved_at);
    json_object_set_new(o, "resolved_reason",
                        a->resolved_reason ? json_string(a->resolved_reason) : json_null());
    return o;
}

void ch_alert_publish(ch_alert_engine_t *eng, const json_t *alert)
{
    for (int i = 0; i < eng->nlisteners; i++) {
        eng->listeners[i].fn(eng->listeners[i].ud, alert);
    }
}

static void publish_record(ch_alert_engine_t *eng, const ch_alert_t *a)
{
    json_t *j = ch_alert_to_json(a);
    ch_alert_publish(eng, j);
    json_decref(j);
}

void ch_alert_unlisten(ch_alert_engine_t *eng, ch_alert_listener_fn fn, void *ud)
{
    for (int i = 0; i < eng->nlisteners; i++) {
        if (eng->listeners[i].fn == fn && eng->listeners[i].ud == ud) {
            memmove(&eng->listeners[i], &eng->listeners[i + 1],
                    (size_t)(eng->nlisteners - i - 1) * sizeof(eng->listeners[0]));
            eng->nlisteners--;
            return;
        }
    }
}

int ch_alert_listen(ch_alert_engine_t *eng, ch_alert_listener_fn fn, void *ud)
{
    if (eng->nlisteners == MAX_LISTENERS) {
        return CH_ETOOBIG;
    }
    eng->listeners[eng->nlisteners].fn = fn;
    eng->listeners[eng->nlisteners].ud = ud;
    eng->nlisteners++;
    return 0;
}

/* The map of the rule whose alerts are of kind (bell-pressed has none: NULL). */
static idmap_t *rule_map(ch_alert_engine_t *eng, const char *kind)
{
    if (strcmp(kind, "camera-offline") == 0) {
        return &eng->cams;
    }
    if (strcmp(kind, "provider-down") == 0) {
        return &eng->providers;
    }
    if (strcmp(kind, "device-offline") == 0) {
        return &eng->devices;
    }
    return NULL;
}

/* The rule state follows an alert as stored, whoever wrote it: an unresolved alert is its
 * subject's open one when the subject has none (an earlier run's, another node's); a resolved
 * one is no longer open. */
static void key_alert(ch_alert_engine_t *eng, const ch_alert_t *a)
{
    idmap_t *map = rule_map(eng, a->kind);
    if (map == NULL || a->subject_id == 0) {
        return;
    }
    slot_t *s = idmap_get(map, a->subject_id);
    if (strcmp(a->status, "resolved") == 0) {
        if (s->c == a->id) {
            s->c = 0;
        }
    } else if (s->c == 0) {
        s->c = a->id;
        if (map == &eng->cams && s->a == 0) {
            s->a = a->agency_id;
        }
    }
}

/* ---- writes: on the store worker, or at once ------------------------------------------------ */

static void req_free(alert_req_t *r)
{
    ch_alert_fini(&r->rec);
    ch_free(r->reason);
    ch_free(r);
}

/* An alert's resolution on the handle st: the row read, changed unless resolved already. */
static int resolve_row(ch_store_t *st, alert_req_t *r)
{
    int rc = ch_store_alert_get(st, r->id, &r->rec);
    if (rc != 0 || strcmp(r->rec.status, "resolved") == 0) {
        return rc;
    }
    ch_free(r->rec.status);
    r->rec.status = ch_strdup("resolved");
    r->rec.resolved_at = r->at_ms;
    ch_free(r->rec.resolved_reason);
    r->rec.resolved_reason = ch_strdup(r->reason);
    rc = ch_store_alert_update(st, &r->rec);
    if (rc == 0) {
        r->changed = 1;
    }
    return rc;
}

/* The worker's thread (or the loop, without one): the request's store work on st. */
static int req_work(ch_store_t *st, void *ud)
{
    alert_req_t *r = ud;
    int rc;
    switch (r->kind) {
    case REQ_CREATE:
        rc = ch_store_alert_create(st, &r->rec);
        break;
    case REQ_RESOLVE:
        rc = resolve_row(st, r);
        break;
    default:
        rc = ch_store_alert_get(st, r->id, &r->rec);
        break;
    }
    if (rc != 0) {
        snprintf(r->err, sizeof(r->err), "%s", ch_store_errmsg(st));
    }
    return rc;
}

static void unlink_create(ch_alert_engine_t *eng, alert_req_t *r)
{
    for (alert_req_t **p = &eng->creates; *p != NULL; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            r->next = NULL;
            return;
        }
    }
}

/* The loop, before the feed tells what work committed: a create's id goes into its rule's
 * slot (unless its cause cleared meanwhile), and the change about to be told is this one's. */
static void req_telling(void *ud, int rc)
{
    alert_req_t *r = ud;
    ch_alert_engine_t *eng = r->eng;
    if (eng->freeing) {
        return;
    }
    if (r->kind == REQ_CREATE) {
        unlink_create(eng, r);
        slot_t *s =
            r->map != NULL && !r->resolve_after ? idmap_get(r->map, r->rec.subject_id) : NULL;
        if (rc == 0) {
            eng->raised++;
            ch_log(CH_LOG_WARN, "alert",
                   "msg=raised id=%" PRId64 " kind=%s severity=%s subject=%s:%" PRId64, r->rec.id,
                   r->rec.kind, r->rec.severity, r->rec.subject_type, r->rec.subject_id);
            if (s != NULL && s->c == PENDING) {
                s->c = r->rec.id;
            }
        } else {
            /* Lost (an alerting system must not stop on a full disk): a time rule tries again
             * at its next tick, an edge rule's input is gone. */
            ch_log(CH_LOG_ERROR, "alert",
                   "msg=\"alert not stored\" kind=%s subject=%s:%" PRId64 " error=\"%s\"",
                   r->rec.kind, r->rec.subject_type, r->rec.subject_id, r->err);
            if (s != NULL && s->c == PENDING) {
                s->c = 0;
            }
        }
    }
    if (rc == 0 && (r->kind == REQ_CREATE || r->changed)) {
        eng->cur = r;
    }
}

static void submit(ch_alert_engine_t *eng, alert_req_t *r);

static void resolve_id(ch_alert_engine_t *eng, int64_t id, const char *reason, int64_t at_ms)
{
    alert_req_t *r = ch_calloc(1, sizeof(*r));
    r->eng = eng;
    r->kind = REQ_RESOLVE;
    r->id = id;
    r->reason = ch_strdup(reason);
    r->at_ms = at_ms;
    submit(eng, r);
}

static void engine_free(ch_alert_engine_t *eng);

/* The loop, after the feed told what work committed. */
static void req_done(void *ud, int rc)
{
    alert_req_t *r = ud;
    ch_alert_engine_t *eng = r->eng;
    if (eng->cur == r) {
        eng->cur = NULL;
    }
    if (r->async) {
        assert(eng->in_flight > 0);
        eng->in_flight--;
    }
    if (eng->freeing) {
        req_free(r);
        if (eng->in_flight == 0) {
            engine_free(eng);
        }
        return;
    }
    if (rc == 0 && (r->kind == REQ_CREATE || r->changed) && !r->heard) {
        /* The feed did not tell it (a worker not fed to the engine's store): told here, once. */
        publish_record(eng, &r->rec);
    }
    switch (r->kind) {
    case REQ_CREATE:
        if (rc == 0 && !r->async && r->id_out != NULL) {
            *r->id_out = r->rec.id;
        }
        if (rc == 0 && r->resolve_after) {
            /* Its cause cleared before it was written: resolved now, behind its create. */
            resolve_id(eng, r->rec.id, r->reason, r->at_ms);
        }
        break;
    case REQ_RESOLVE:
        if (rc == 0 && r->changed) {
            eng->resolved++;
            ch_log(CH_LOG_INFO, "alert", "msg=resolved id=%" PRId64 " kind=%s", r->id, r->rec.kind);
        } else if (rc == CH_ENOTFOUND) {
            ch_log(CH_LOG_ERROR, "alert", "msg=\"alert to resolve not found\" id=%" PRId64, r->id);
        } else if (rc != 0) {
            ch_log(CH_LOG_ERROR, "alert", "msg=\"alert not resolved\" id=%" PRId64 " error=\"%s\"",
                   r->id, r->err);
        }
        break;
    case REQ_READ:
        if (rc == 0) {
            key_alert(eng, &r->rec);
            publish_record(eng, &r->rec);
        } else {
            ch_log(CH_LOG_ERROR, "alert",
                   "msg=\"changed alert not read\" id=%" PRId64 " error=\"%s\"", r->id, r->err);
        }
        break;
    }
    req_free(r);
}

/*
 * Runs r: on the worker when the engine has one (its done comes back on the loop), else, or
 * when the worker is busy or closing, at once on the loop's handle (an alert is never dropped
 * for a busy worker). Either way telling and done run in that order, and the feed's change of
 * r between them.
 */
static void submit(ch_alert_engine_t *eng, alert_req_t *r)
{
    if (eng->worker != NULL) {
        r->async = 1;
        if (ch_store_async_watched(eng->worker, req_work, req_telling, req_done, r) == 0) {
            eng->in_flight++;
            return;
        }
        r->async = 0;
        ch_log(CH_LOG_DEBUG, "alert", "msg=\"store worker busy: written on the loop\"");
    }
    alert_req_t *outer = eng->cur;
    eng->cur = r; /* the change is told inside work: the handle's own, outside a transaction */
    int rc = req_work(eng->st, r);
    req_telling(r, rc);
    req_done(r, rc);
    eng->cur = outer;
}

/*
 * Raises an alert: its subject's slot in map (NULL: none) is PENDING until the store has it,
 * the listeners hear it when its row is committed (the feed). details is stolen (may be NULL).
 * Returns the id when written at once, else 0 (on the worker, or the store failed).
 */
static int64_t raise_alert(ch_alert_engine_t *eng, idmap_t *map, const char *kind,
                           const char *severity, const char *subject_type, int64_t subject_id,
                           int64_t agency_id, const char *message, json_t *details, int64_t at_ms)
{
    alert_req_t *r = ch_calloc(1, sizeof(*r));
    r->eng = eng;
    r->kind = REQ_CREATE;
    r->map = map;
    ch_alert_t *a = &r->rec;
    a->kind = ch_strdup(kind);
    a->severity = ch_strdup(severity);
    a->subject_type = ch_strdup(subject_type);
    a->subject_id = subject_id;
    a->agency_id = agency_id;
    a->message = ch_strdup(message);
    if (details != NULL) {
        char *d = json_dumps(details, JSON_COMPACT);
        a->details = ch_strdup(d);
        free(d);
        json_decref(details);
    }
    a->status = ch_strdup("open");
    a->raised_at = at_ms;
    if (map != NULL) {
        idmap_get(map, subject_id)->c = PENDING;
    }
    r->next = eng->creates;
    eng->creates = r;
    int64_t id = 0;
    r->id_out = &id;
    submit(eng, r);
    return id;
}

/* The cause of a rule's open alert (its slot's id: an alert's, or PENDING) cleared; the caller
 * then empties the slot. A create still in flight is resolved once it is written. */
static void resolve_alert(ch_alert_engine_t *eng, idmap_t *map, int64_t subject_id, int64_t id,
                          const char *reason, int64_t at_ms)
{
    if (id != PENDING) {
        resolve_id(eng, id, reason, at_ms);
        return;
    }
    for (alert_req_t *r = eng->creates; r != NULL; r = r->next) {
        if (r->map == map && r->rec.subject_id == subject_id && !r->resolve_after) {
            r->resolve_after = 1;
            r->reason = ch_strdup(reason);
            r->at_ms = at_ms;
            return;
        }
    }
    assert(!"a pending alert without its create");
}

/* ---- the feed: every committed change of an alert, whoever wrote it ------------------------- */

/* Takes up the alerts an earlier run (or another handle) left unresolved, so that their causes
 * can still clear them. */
static int load_unresolved(ch_alert_engine_t *eng)
{
    static const char *const states[] = {"open", "acknowledged"};
    for (size_t s = 0; s < CH_ARRAY_SIZE(states); s++) {
        ch_store_filter_t f;
        memset(&f, 0, sizeof(f));
        f.status = states[s];
        f.limit = 1000;
        for (;;) {
            ch_alert_list_t l;
            int rc = ch_store_alert_list(eng->st, &f, &l);
            if (rc != 0) {
                return rc;
            }
            for (size_t i = 0; i < l.count; i++) {
                key_alert(eng, &l.items[i]);
            }
            int64_t next = l.next_id;
            ch_alert_list_free(&l);
            if (next == 0) {
                break;
            }
            f.after_id = next;
        }
    }
    return 0;
}

/* ---- the counts for metrics ----------------------------------------------------------------- */

static int count_unresolved(ch_store_t *st, int64_t n[2])
{
    static const char *const states[] = {"open", "acknowledged"};
    for (size_t s = 0; s < CH_ARRAY_SIZE(states); s++) {
        ch_store_filter_t f;
        memset(&f, 0, sizeof(f));
        f.status = states[s];
        f.limit = 1;
        ch_alert_list_t l;
        int rc = ch_store_alert_list(st, &f, &l);
        if (rc != 0) {
            return rc;
        }
        n[s] = l.total;
        ch_alert_list_free(&l);
    }
    return 0;
}

typedef struct count_job {
    ch_alert_engine_t *eng;
    int64_t n[2];
} count_job_t;

static int count_work(ch_store_t *st, void *ud)
{
    count_job_t *j = ud;
    return count_unresolved(st, j->n);
}

static void counts_refresh(ch_alert_engine_t *eng);

static void count_done(void *ud, int rc)
{
    count_job_t *j = ud;
    ch_alert_engine_t *eng = j->eng;
    assert(eng->in_flight > 0);
    eng->in_flight--;
    eng->counting = 0;
    if (eng->freeing) {
        ch_free(j);
        if (eng->in_flight == 0) {
            engine_free(eng);
        }
        return;
    }
    if (rc == 0) {
        memcpy(eng->unresolved, j->n, sizeof(eng->unresolved));
    }
    ch_free(j);
    if (eng->recount) {
        eng->recount = 0;
        counts_refresh(eng);
    }
}

/* Counts the unresolved alerts again: on the worker (after the writes queued before it, so a
 * scrape queued on the worker after a change renders the count that includes it), else here. */
static void counts_refresh(ch_alert_engine_t *eng)
{
    if (eng->counting) {
        eng->recount = 1;
        return;
    }
    if (eng->worker != NULL) {
        count_job_t *j = ch_calloc(1, sizeof(*j));
        j->eng = eng;
        if (ch_store_async(eng->worker, count_work, count_done, j) == 0) {
            eng->counting = 1;
            eng->in_flight++;
            return;
        }
        ch_free(j);
    }
    int64_t n[2];
    if (count_unresolved(eng->st, n) == 0) {
        memcpy(eng->unresolved, n, sizeof(eng->unresolved));
    }
}

/*
 * The loop, for every committed change of the alerts table on the engine's store (its own
 * writes, the worker's at their completion, other handles' at the feed's poll): the listeners
 * hear each once, with the alert as committed. The engine's own request and an alert given by
 * ch_alert_written are told from memory; any other is read (on the worker when there is one)
 * and the rule state follows it.
 */
static void on_alert_change(void *ud, const ch_store_change_t *c)
{
    ch_alert_engine_t *eng = ud;
    counts_refresh(eng);
    alert_req_t *cur = eng->cur;
    if (cur != NULL && cur->kind != REQ_READ && c->id != 0 && cur->rec.id == c->id) {
        if (!cur->heard) {
            cur->heard = 1;
            publish_record(eng, &cur->rec);
        }
        return;
    }
    if (eng->mute_id != 0 && c->id == eng->mute_id) {
        return; /* ch_alert_ack's caller publishes */
    }
    if (eng->written != NULL) {
        json_t *j = eng->written;
        eng->written = NULL;
        if (c->id != 0 && json_integer_value(json_object_get(j, "id")) == c->id) {
            ch_alert_publish(eng, j);
            json_decref(j);
            return;
        }
        json_decref(j);
    }
    if (c->id == 0) {
        /* Many alerts changed at once elsewhere: the rule state follows the unresolved ones;
         * the listeners are not told each. */
        ch_log(CH_LOG_WARN, "alert", "msg=\"many alerts changed elsewhere: not told one by one\"");
        if (load_unresolved(eng) != 0) {
            ch_log(CH_LOG_ERROR, "alert", "msg=\"alerts not reread\" error=\"%s\"",
                   ch_store_errmsg(eng->st));
        }
        return;
    }
    if (c->op == CH_STORE_DELETE) {
        return;
    }
    alert_req_t *r = ch_calloc(1, sizeof(*r));
    r->eng = eng;
    r->kind = REQ_READ;
    r->id = c->id;
    submit(eng, r);
}

void ch_alert_written(ch_alert_engine_t *eng, const json_t *alert)
{
    json_decref(eng->written);
    eng->written = alert != NULL ? json_incref((json_t *)alert) : NULL;
}

void ch_alert_use_worker(ch_alert_engine_t *eng, ch_store_worker_t *w)
{
    eng->worker = w;
}

int ch_alert_new(ch_store_t *st, const ch_alert_config_t *cfg, ch_alert_engine_t **out)
{
    *out = NULL;
    if (st == NULL || cfg == NULL || cfg->offline_after_ms < 0 || cfg->provider_down_count < 0) {
        return CH_EINVAL;
    }
    ch_alert_engine_t *eng = ch_calloc(1, sizeof(*eng));
    eng->st = st;
    eng->cfg = *cfg;
    int rc = load_unresolved(eng);
    if (rc == 0) {
        rc = count_unresolved(st, eng->unresolved);
    }
    if (rc == 0) {
        rc = ch_store_watch(st, CH_STORE_T_ALERTS, on_alert_change, eng, &eng->watch);
    }
    if (rc != 0) {
        ch_alert_free(eng);
        return rc;
    }
    *out = eng;
    return 0;
}

static void engine_free(ch_alert_engine_t *eng)
{
    ch_free(eng->cams.slots);
    ch_free(eng->providers.slots);
    ch_free(eng->devices.slots);
    ch_free(eng);
}

void ch_alert_free(ch_alert_engine_t *eng)
{
    if (eng == NULL) {
        return;
    }
    ch_store_unwatch(eng->st, eng->watch);
    eng->watch = NULL;
    json_decref(eng->written);
    eng->written = NULL;
    if (eng->in_flight > 0) {
        eng->freeing = 1; /* the last request back frees it */
        return;
    }
    engine_free(eng);
}

/* ---- rules ---------------------------------------------------------------------------------- */

static int camera_state_down(const char *s)
{
    return s != NULL && (strcmp(s, "offline") == 0 || strcmp(s, "auth-failed") == 0);
}

static void raise_camera_offline(ch_alert_engine_t *eng, int64_t camera_id, slot_t *c, int64_t now)
{
    char msg[160], since[32];
    ch_time_format_rfc3339(c->b, since);
    int64_t mins = (now - c->b) / 60000;
    snprintf(msg, sizeof(msg), "camera %" PRId64 " has been down for %" PRId64 " min (since %s)",
             camera_id, mins, since);
    json_t *d = json_pack("{s:s, s:I}", "down_since", since, "offline_after_s",
                          (json_int_t)(eng->cfg.offline_after_ms / 1000));
    raise_alert(eng, &eng->cams, "camera-offline", "warning", "camera", camera_id, c->a, msg, d,
                now);
}

void ch_alert_camera_state(ch_alert_engine_t *eng, int64_t camera_id, int64_t provider_id,
                           const char *old_state, const char *new_state, int64_t at_ms,
                           const char *reason)
{
    CH_UNUSED(old_state);
    if (camera_id <= 0 || new_state == NULL) {
        return;
    }
    slot_t *c = idmap_get(&eng->cams, camera_id);
    if (provider_id > 0) {
        c->a = provider_id;
    }
    int down = camera_state_down(new_state);
    int was_down = c->b != 0;
    if (strcmp(new_state, "unknown") == 0) {
        /* Nothing is known: neither a new outage nor the end of one. */
        return;
    }
    if (down && !was_down) {
        c->b = at_ms > 0 ? at_ms : 1;
        eng->cameras_down++;
        if (c->a > 0) {
            slot_t *p = idmap_get(&eng->providers, c->a);
            p->a++;
            if (eng->cfg.provider_down_count > 0 && p->a >= eng->cfg.provider_down_count &&
                p->c == 0) {
                char msg[160];
                snprintf(msg, sizeof(msg),
                         "%" PRId64 " cameras of provider %" PRId64 " are down at once", p->a,
                         c->a);
                json_t *d = json_pack("{s:I, s:I}", "cameras_down", (json_int_t)p->a, "threshold",
                                      (json_int_t)eng->cfg.provider_down_count);
                raise_alert(eng, &eng->providers, "provider-down", "critical", "agency", c->a, c->a,
                            msg, d, at_ms);
            }
        }
        if (eng->cfg.offline_after_ms == 0 && c->c == 0) {
            raise_camera_offline(eng, camera_id, c, at_ms);
        }
        ch_log(CH_LOG_DEBUG, "alert", "msg=\"camera down\" camera=%" PRId64 " reason=\"%s\"",
               camera_id, reason ? reason : "");
    } else if (!down && was_down) {
        c->b = 0;
        eng->cameras_down--;
        if (c->a > 0) {
            slot_t *p = idmap_get(&eng->providers, c->a);
            if (p->a > 0) {
                p->a--;
            }
            if (p->c != 0 && p->a < eng->cfg.provider_down_count) {
                resolve_alert(eng, &eng->providers, c->a, p->c,
                              "fewer cameras down than the threshold", at_ms);
                p->c = 0;
            }
        }
    }
    if (!down && c->c != 0) {
        /* Also after a restart: an alert left open by the last run clears here. */
        char why[64];
        snprintf(why, sizeof(why), "camera %s again", new_state);
        resolve_alert(eng, &eng->cams, camera_id, c->c, why, at_ms);
        c->c = 0;
    }
}

void ch_alert_device_state(ch_alert_engine_t *eng, int64_t device_id, int64_t agency_id,
                           const char *name, const char *old_state, const char *new_state,
                           int64_t at_ms, const char *reason)
{
    CH_UNUSED(old_state);
    if (device_id <= 0 || new_state == NULL) {
        return;
    }
    slot_t *d = idmap_get(&eng->devices, device_id);
    if (strcmp(new_state, "offline") == 0) {
        if (d->c == 0) {
            char msg[200];
            snprintf(msg, sizeof(msg), "device %" PRId64 "%s%.80s%s is offline (%s)", device_id,
                     name ? " (" : "", name ? name : "", name ? ")" : "",
                     reason ? reason : "no heartbeat");
            json_t *det = json_pack("{s:s?, s:s?}", "name", name, "reason", reason);
            raise_alert(eng, &eng->devices, "device-offline", "warning", "device", device_id,
                        agency_id, msg, det, at_ms);
        }
    } else if (d->c != 0) {
        char why[64];
        snprintf(why, sizeof(why), "device %s again", new_state);
        resolve_alert(eng, &eng->devices, device_id, d->c, why, at_ms);
        d->c = 0;
    }
}

void ch_alert_bell(ch_alert_engine_t *eng, int64_t device_id, int64_t agency_id, const char *name,
                   int located, double lat, double lon, int64_t at_ms, json_t *cameras,
                   int64_t *alert_id)
{
    json_t *items = cameras != NULL ? json_object_get(cameras, "cameras") : NULL;
    size_t n = json_is_array(items) ? json_array_size(items) : 0;
    char msg[240];
    snprintf(msg, sizeof(msg), "emergency bell %" PRId64 "%s%.80s%s pressed: %zu camera%s see%s it",
             device_id, name ? " (" : "", name ? name : "", name ? ")" : "", n, n == 1 ? "" : "s",
             n == 1 ? "s" : "");
    json_t *d = json_pack("{s:s?, s:b}", "name", name, "located", located);
    json_object_set_new(d, "cameras", json_is_array(items) ? json_incref(items) : json_array());
    if (located) {
        json_object_set_new(d, "lat", json_real(lat));
        json_object_set_new(d, "lon", json_real(lon));
    }
    json_decref(cameras);
    int64_t id = raise_alert(eng, NULL, "bell-pressed", "critical", "device", device_id, agency_id,
                             msg, d, at_ms > 0 ? at_ms : now_ms(eng));
    if (alert_id != NULL) {
        *alert_id = id;
    }
}

void ch_alert_tick(ch_alert_engine_t *eng)
{
    if (eng->cameras_down == 0) {
        return;
    }
    int64_t now = now_ms(eng);
    for (size_t i = 0; i < eng->cams.cap; i++) {
        slot_t *c = &eng->cams.slots[i];
        if (c->key != 0 && c->b != 0 && c->c == 0 && now - c->b > eng->cfg.offline_after_ms) {
            raise_camera_offline(eng, c->key, c, now);
        }
    }
}

/* ---- queries -------------------------------------------------------------------------------- */

int ch_alert_get(ch_alert_engine_t *eng, int64_t id, json_t **out)
{
    *out = NULL;
    ch_alert_t a;
    int rc = ch_store_alert_get(eng->st, id, &a);
    if (rc != 0) {
        return rc;
    }
    *out = ch_alert_to_json(&a);
    ch_alert_fini(&a);
    return 0;
}

int ch_alert_ack_write(ch_store_t *st, int64_t id, const char *by, const char *note, int64_t at_ms,
                       json_t **out)
{
    *out = NULL;
    ch_alert_t a;
    int rc = ch_store_alert_get(st, id, &a);
    if (rc != 0) {
        return rc;
    }
    if (a.acked_at != 0) {
        ch_alert_fini(&a);
        return CH_ECONFLICT;
    }
    if (strcmp(a.status, "open") == 0) {
        ch_free(a.status);
        a.status = ch_strdup("acknowledged");
    }
    a.acked_by = ch_strdup(by);
    a.acked_at = at_ms;
    ch_free(a.note);
    a.note = ch_strdup(note);
    rc = ch_store_alert_update(st, &a);
    if (rc == 0) {
        *out = ch_alert_to_json(&a);
    }
    ch_alert_fini(&a);
    return rc;
}

int ch_alert_ack(ch_alert_engine_t *eng, int64_t id, const char *by, const char *note, json_t **out)
{
    eng->mute_id = id; /* the caller publishes, once its record is durable */
    int rc = ch_alert_ack_write(eng->st, id, by, note, now_ms(eng), out);
    eng->mute_id = 0;
    return rc;
}

json_t *ch_alert_stats(ch_alert_engine_t *eng)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "open", (json_int_t)eng->unresolved[0],
                     "acknowledged", (json_int_t)eng->unresolved[1], "raised",
                     (json_int_t)eng->raised, "resolved", (json_int_t)eng->resolved, "cameras_down",
                     (json_int_t)eng->cameras_down);
}
