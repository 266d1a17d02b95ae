/*
 * event/event_expiry.c: expiry, release, and the grants of cameras taken away.
 */
#include "event/event_internal.h"

#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "event"

/* ---- expiry -------------------------------------------------------------------------------- */

/* Expires one event whose time is up, by its row: its live grants "expired", itself
 * "expired"; an event the row shows over already, or extended meanwhile (a request whose
 * answer the loop has not finished yet), only tells the live map. */
static int expire_event(const ch_event__ctx_t *cx, int64_t id, ch_event__after_t *after)
{
    ch_event_t ev;
    ch_fault_t err;
    int rc = ch_store_event_get(cx->st, id, &ev);
    if (rc != 0 || !ch_event__is_live(&ev) || ev.expires_at > cx->now) {
        *after = (ch_event__after_t){.committed = 1,
                                     .event_id = id,
                                     .event_live = rc == 0 && ch_event__is_live(&ev),
                                     .expires_at = rc == 0 ? ev.expires_at : 0};
        if (after->event_live) {
            /* Its grants' live expiries follow their rows too. */
            (void)ch_event__grants_of(cx->st, id, "active", &after->grants);
        }
        ch_event_fini(&ev);
        return rc != 0 ? CH_EDB : 0;
    }
    char due[32];
    ch_time_format_rfc3339(ev.expires_at, due);
    json_t *d =
        json_pack("{s:s, s:I}", "due", due, "late_ms", (json_int_t)(cx->now - ev.expires_at));
    rc = ch_event__end_event_in(cx, &ev, "expired", "expired", "system", "the granted time is over",
                                "event.expire", d, after, &err);
    ch_event_fini(&ev);
    return rc != 0 ? CH_EIO : 0;
}

/* Releases the grants a moving subject left behind, once their grace is over. */
static int release_grants(const ch_event__ctx_t *cx, int64_t event_id, ch_event__after_t *after)
{
    ch_event_t ev;
    ch_fault_t err;
    ch_grant_list_t g;
    int64_t now = cx->now;
    memset(&g, 0, sizeof(g));
    int rc = ch_store_event_get(cx->st, event_id, &ev);
    if (rc == 0) {
        rc = ch_store_begin(cx->st);
    }
    if (rc == 0) {
        rc = ch_event__grants_of(cx->st, event_id, "active", &g);
    }
    json_t *cams = json_array();
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        if (g.items[i].expires_at <= now) {
            json_array_append_new(cams, json_integer(g.items[i].camera_id));
            rc = ch_event__end_grant(cx->st, &g.items[i], "released", "system",
                                     "the subject moved out of the camera's view", now);
        }
    }
    if (rc == 0 && json_array_size(cams) == 0) {
        /* None is due by its row (a move or an extension the loop has not finished yet):
         * nothing to record; the live expiries follow the rows. */
        (void)ch_store_rollback(cx->st);
        json_decref(cams);
        after->committed = 1;
        after->grants = g;
        ch_event_fini(&ev);
        return 0;
    }
    if (rc != 0) {
        json_decref(cams);
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        (void)ch_store_rollback(cx->st);
        return CH_EDB;
    }
    char object[48];
    ch_event__object_name(object, "event", event_id);
    json_t *d = json_pack("{s:I, s:o}", "agency_id", (json_int_t)ev.agency_id, "cameras", cams);
    rc = ch_event__record_and_commit(cx, "system", "grant.release", object, &ev, d, &err);
    if (rc == 0) {
        /* The released leave the live map; the others (active) keep their expiries. */
        after->committed = 1;
        after->grants = g;
        memset(&g, 0, sizeof(g));
    }
    ch_grant_list_free(&g);
    ch_event_fini(&ev);
    return rc != 0 ? CH_EIO : 0;
}

/*
 * One pass of the expiry, as the loop saw it due: the events to expire and the events whose
 * grants are to release (their ids), the store half (any thread, the handle given) and what
 * the live map learns of each. Made and applied on the loop; run on the loop's handle in the
 * call, or on the store worker (ch_event_set_store_worker).
 */
typedef struct expiry {
    ch_event_engine_t *eng;
    ch_event_config_t cfg; /* the engine's, without its handle */
    char crash_at[64];
    int64_t now;
    int64_t *ids; /* nexpire events to expire, then the events to release grants of */
    size_t nexpire, n;
    ch_event__after_t *after; /* one per id */
    int *rc;                  /* one per id */
} expiry_t;

static void add_id(expiry_t *x, size_t *cap, int64_t id)
{
    for (size_t i = 0; i < x->n; i++) {
        if (x->ids[i] == id) {
            return;
        }
    }
    if (x->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        x->ids = ch_realloc(x->ids, *cap * sizeof(*x->ids));
    }
    x->ids[x->n++] = id;
}

/* What is due at now, or NULL when nothing is. */
static expiry_t *expiry_new(ch_event_engine_t *eng, int64_t now)
{
    expiry_t *x = ch_calloc(1, sizeof(*x));
    size_t cap = 0;
    /* Events first: their grants go with them. */
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].expires_at > 0 && eng->events[i].expires_at <= now) {
            add_id(x, &cap, eng->events[i].id);
        }
    }
    x->nexpire = x->n;
    for (size_t i = 0; i < eng->ngrants; i++) {
        if (eng->grants[i].expires_at <= now) {
            add_id(x, &cap, eng->grants[i].event_id);
        }
    }
    if (x->n == 0) {
        ch_free(x);
        return NULL;
    }
    x->eng = eng;
    x->cfg = eng->cfg;
    x->cfg.st = NULL;
    memcpy(x->crash_at, eng->crash_at, sizeof(x->crash_at));
    x->now = now;
    x->after = ch_calloc(x->n, sizeof(*x->after));
    x->rc = ch_calloc(x->n, sizeof(*x->rc));
    return x;
}

static void expiry_free(expiry_t *x)
{
    for (size_t i = 0; i < x->n; i++) {
        ch_event__after_fini(&x->after[i]);
    }
    ch_free(x->after);
    ch_free(x->rc);
    ch_free(x->ids);
    ch_free(x);
}

/* The store half, on st (any thread). */
static int expiry_run(ch_store_t *st, void *ud)
{
    expiry_t *x = ud;
    ch_event__ctx_t cx = {.st = st, .cfg = &x->cfg, .crash_at = x->crash_at, .now = x->now};
    for (size_t i = 0; i < x->n; i++) {
        x->rc[i] = i < x->nexpire ? expire_event(&cx, x->ids[i], &x->after[i])
                                  : release_grants(&cx, x->ids[i], &x->after[i]);
    }
    return 0;
}

/* The loop's half: the live map learns each; what failed leaves it (retried at the next
 * start, never in a loop). */
static void expiry_apply(expiry_t *x)
{
    ch_event_engine_t *eng = x->eng;
    int failed = 0;
    for (size_t i = 0; i < x->n; i++) {
        ch_event__after_apply(eng, &x->after[i]);
        if (x->rc[i] == 0) {
            continue;
        }
        failed = 1;
        if (i < x->nexpire) {
            ch_event__live_drop_event(eng, x->ids[i]);
            continue;
        }
        for (size_t k = 0; k < eng->ngrants;) {
            if (eng->grants[k].event_id == x->ids[i] && eng->grants[k].expires_at <= x->now) {
                ch_event__live_remove_at(eng, k);
            } else {
                k++;
            }
        }
    }
    if (failed) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"some expiries could not be recorded; they are retried "
               "at the next start\"");
    }
}

/* Back on the loop from the store worker. */
static void expiry_done(void *ud, int rc)
{
    expiry_t *x = ud;
    (void)rc;
    x->eng->expiring = 0;
    expiry_apply(x);
    expiry_free(x);
}

void ch_event_set_store_worker(ch_event_engine_t *eng, ch_store_worker_t *w)
{
    eng->worker = w;
}

int ch_event_tick(ch_event_engine_t *eng)
{
    int64_t now = ch_event__now_ms(eng);
    if (eng->expiring || ch_event_next_due(eng) > now) {
        return 0; /* nothing due, or a pass on the worker already (it ends what is due) */
    }
    expiry_t *x = expiry_new(eng, now);
    if (x == NULL) {
        return 0;
    }
    if (eng->worker != NULL) {
        int rc = ch_store_async(eng->worker, expiry_run, expiry_done, x);
        if (rc == 0) {
            eng->expiring = 1;
            return 0;
        }
        if (rc == CH_EAGAIN) {
            expiry_free(x); /* busy: the next tick tries again */
            return 0;
        }
        /* The worker is closing: here, then. */
    }
    /* Counted from before the run: the feed hears each commit on the engine's handle and lets
     * its ended grants go at once. */
    size_t before = eng->ngrants;
    (void)expiry_run(eng->cfg.st, x);
    expiry_apply(x);
    expiry_free(x);
    return before > eng->ngrants ? (int)(before - eng->ngrants) : 0;
}

/* ---- cameras taken away --------------------------------------------------------------------- */

/* A grant that a camera's change may end: id, camera, and why (NULL: it stays). */
typedef struct grant_ref {
    int64_t id, camera_id;
    const char *reason;
} grant_ref_t;

typedef struct grant_refs {
    grant_ref_t *v;
    size_t n, cap;
} grant_refs_t;

static void refs_add(grant_refs_t *r, int64_t id, int64_t camera_id)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = ch_realloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n++] = (grant_ref_t){id, camera_id, NULL};
}

/*
 * The grants of camera_id (0: of every camera) that still give or may give access: the live
 * ones (the live set) and the pending ones of events awaiting approval (the live set holds
 * those events, not their grants: one indexed query each, and they are few). Approving an
 * event turns its pending grants active, so a camera taken away must lose those too. 0 or a
 * store code.
 */
static int grants_on_cameras(ch_event_engine_t *eng, int64_t camera_id, grant_refs_t *r)
{
    for (size_t i = 0; i < eng->ngrants; i++) {
        if (camera_id == 0 || eng->grants[i].camera_id == camera_id) {
            refs_add(r, eng->grants[i].id, eng->grants[i].camera_id);
        }
    }
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].expires_at != 0) {
            continue; /* active: its grants are in the live set */
        }
        ch_grant_list_t l;
        int rc = ch_event__grants_of(eng->cfg.st, eng->events[i].id, "pending", &l);
        if (rc != 0) {
            return rc;
        }
        for (size_t k = 0; k < l.count; k++) {
            if (camera_id == 0 || l.items[k].camera_id == camera_id) {
                refs_add(r, l.items[k].id, l.items[k].camera_id);
            }
        }
        ch_grant_list_free(&l);
    }
    return 0;
}

/* Ends each grant of r that has a reason: "revoked", ended by actor, a grant.revoke record
 * saying why, then out of the live set. *count gets how many ended. 0, or the last failure (the
 * others were still tried). */
static int end_grant_refs(ch_event_engine_t *eng, const char *actor, const grant_refs_t *r,
                          int *count)
{
    int rc = 0;
    *count = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *reason = r->v[i].reason;
        if (reason == NULL) {
            continue;
        }
        ch_grant_t g;
        ch_event_t ev;
        ch_fault_t err;
        int x = ch_store_grant_get(eng->cfg.st, r->v[i].id, &g);
        if (x != 0 || (strcmp(g.status, "active") != 0 && strcmp(g.status, "pending") != 0)) {
            if (x == 0) {
                ch_event__ended(eng, &g); /* already over in the store: out of the live set too */
            }
            ch_grant_fini(&g);
            rc = x != 0 ? x : rc;
            continue;
        }
        x = ch_store_begin(eng->cfg.st);
        if (x == 0) {
            x = ch_store_event_get(eng->cfg.st, g.event_id, &ev);
            if (x != 0) {
                ch_event_fini(&ev);
            }
        }
        if (x == 0) {
            x = ch_event__end_grant(eng->cfg.st, &g, "revoked", actor, reason,
                                    ch_event__now_ms(eng));
            if (x != 0) {
                ch_event_fini(&ev);
            }
        }
        if (x != 0) {
            (void)ch_store_rollback(eng->cfg.st);
            ch_grant_fini(&g);
            rc = x;
            continue;
        }
        char object[48];
        ch_event__object_name(object, "grant", g.id);
        json_t *d =
            json_pack("{s:I, s:I, s:I, s:I, s:s}", "event_id", (json_int_t)g.event_id, "camera_id",
                      (json_int_t)g.camera_id, "agency_id", (json_int_t)g.agency_id, "provider_id",
                      (json_int_t)g.provider_id, "reason", reason);
        ch_event__ctx_t cx;
        ch_event__ctx_of(eng, &cx);
        if (ch_event__record_and_commit(&cx, actor, "grant.revoke", object, &ev, d, &err) != 0) {
            rc = CH_EIO;
        } else {
            ch_event__ended(eng, &g); /* the relay cuts its viewers (reason grant_ended) */
            (*count)++;
        }
        ch_event_fini(&ev);
        ch_grant_fini(&g);
    }
    return rc;
}

int ch_event_end_camera_grants(ch_event_engine_t *eng, const char *actor, int64_t camera_id,
                               const char *reason)
{
    if (ch_event_in_batch(eng)) {
        return CH_EAGAIN; /* the API flushes its batch of opens before a camera changes */
    }
    if (camera_id <= 0) {
        return 0;
    }
    /* The ids first: each end reorders the live set. */
    grant_refs_t r = {NULL, 0, 0};
    int ended_count = 0;
    int rc = grants_on_cameras(eng, camera_id, &r);
    for (size_t i = 0; rc == 0 && i < r.n; i++) {
        r.v[i].reason = reason;
    }
    if (rc == 0) {
        rc = end_grant_refs(eng, actor, &r, &ended_count);
    }
    ch_free(r.v);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"some grants of a camera taken away could not be ended\" camera=%lld "
               "reason=%s ended=%d of=%zu",
               (long long)camera_id, reason, ended_count, r.n);
        return rc;
    }
    return ended_count;
}

static int cmp_ref_camera(const void *a, const void *b)
{
    const grant_ref_t *x = a, *y = b;
    return (x->camera_id > y->camera_id) - (x->camera_id < y->camera_id);
}

int ch_event_end_inactive_camera_grants(ch_event_engine_t *eng, const char *actor)
{
    if (ch_event_in_batch(eng)) {
        return CH_EAGAIN;
    }
    uint64_t t0 = ch_time_mono_ns();
    grant_refs_t r = {NULL, 0, 0};
    int ended_count = 0, to_end = 0;
    size_t cameras = 0;
    int rc = grants_on_cameras(eng, 0, &r);
    if (rc == 0 && r.n > 1) {
        qsort(r.v, r.n, sizeof(*r.v), cmp_ref_camera);
    }
    /* One read per granted camera, not per grant or per camera of the store. */
    for (size_t i = 0; rc == 0 && i < r.n;) {
        size_t j = i;
        while (j < r.n && r.v[j].camera_id == r.v[i].camera_id) {
            j++;
        }
        ch_camera_t cam;
        const char *reason = NULL;
        cameras++;
        int x = ch_store_camera_get(eng->cfg.st, r.v[i].camera_id, &cam);
        if (x == CH_ENOTFOUND) {
            reason = "camera_removed";
        } else if (x != 0) {
            rc = x;
        } else if (cam.status == NULL || strcmp(cam.status, "active") != 0) {
            reason = "camera_deactivated";
        }
        ch_camera_fini(&cam);
        for (; i < j; i++) {
            r.v[i].reason = reason;
            to_end += reason != NULL;
        }
    }
    if (rc == 0 && to_end > 0) {
        rc = end_grant_refs(eng, actor, &r, &ended_count);
    }
    ch_free(r.v);
    ch_log(CH_LOG_DEBUG, MODULE,
           "msg=\"granted cameras checked\" cameras=%zu grants=%zu ended=%d ms=%.1f", cameras, r.n,
           ended_count, (double)(ch_time_mono_ns() - t0) / 1e6);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"some grants of cameras out of service could not be ended\" ended=%d "
               "of=%d",
               ended_count, to_end);
        return rc;
    }
    return ended_count;
}
