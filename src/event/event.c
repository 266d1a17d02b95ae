/*
 * event/event.c: the engine (see event.h): its life, the helpers its files share (records,
 * the clock, refusals) and its metrics. The operations are in event_open.c,
 * event_lifecycle.c and event_expiry.c, the live map in event_live.c (event_internal.h lists
 * the files).
 *
 * Every operation is one store transaction holding the change and, before COMMIT, its durable
 * audit record. Grants live in the store (the truth) and, while active, in a small in-memory
 * table (id, event, camera, agency, expiry) that the expiry tick scans, so the timer never
 * queries the database unless something is due.
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

#define DEFAULT_GRACE (30LL * 1000)

static const char *const outcome_names[OUT_COUNT] = {"opened", "pending_approval", "denied",
                                                     "failed"};

/* ---- helpers ------------------------------------------------------------------------------- */

/* Counts an open of service (a service of the services file) with outcome. */
void ch_event__count_open(ch_event_engine_t *eng, const char *service, int outcome)
{
    if (service == NULL) {
        return;
    }
    size_t i = 0;
    while (i < eng->ncounts && strcmp(eng->counts[i].service, service) != 0) {
        i++;
    }
    if (i == eng->ncounts) {
        if (eng->ncounts == eng->ccounts) {
            eng->ccounts = eng->ccounts ? eng->ccounts * 2 : 16;
            eng->counts = ch_realloc(eng->counts, eng->ccounts * sizeof(*eng->counts));
        }
        memset(&eng->counts[i], 0, sizeof(eng->counts[i]));
        snprintf(eng->counts[i].service, sizeof(eng->counts[i].service), "%s", service);
        eng->ncounts++;
    }
    eng->counts[i].n[outcome]++;
}

int64_t ch_event__now_ms(const ch_event_engine_t *eng)
{
    return eng->cfg.clock != NULL ? eng->cfg.clock(eng->cfg.clock_ud) : ch_time_now_ms();
}

/*
 * Test-only fault injection (docs/internals/event.md, "Crash points"): in debug builds, when
 * CCTVHUB_TEST_CRASH_AT names "<action>.<when>" the process kills itself there with SIGKILL, as
 * a power cut would, so that an integration test can check deterministically what the next
 * start makes of the state at that point. Release builds (NDEBUG) compile it out and never
 * read the variable.
 */
void ch_event__crash_point(const char *crash_at, const char *action, const char *when)
{
#ifndef NDEBUG
    char name[96];
    if (crash_at[0] == '\0') {
        return;
    }
    snprintf(name, sizeof(name), "%s.%s", action, when);
    if (strcmp(name, crash_at) == 0) {
        ch_log(CH_LOG_WARN, MODULE, "msg=\"test crash point: killing the process\" at=%s", name);
        raise(SIGKILL);
    }
#else
    (void)crash_at;
    (void)action;
    (void)when;
#endif
}

/* The negative code a refusal of this kind returns. */
int ch_event__fault_rc(ch_fault_kind_t kind)
{
    switch (kind) {
    case CH_FAULT_INVALID:
        return CH_EINVAL;
    case CH_FAULT_FORBIDDEN:
    case CH_FAULT_DENIED:
        return CH_EPERM;
    case CH_FAULT_NOT_FOUND:
        return CH_ENOTFOUND;
    case CH_FAULT_CONFLICT:
        return CH_ECONFLICT;
    default:
        return CH_EIO;
    }
}

int ch_event__fail(ch_fault_t *e, ch_fault_kind_t kind, const char *code, const char *field,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_fault_vset(e, ch_event__fault_rc(kind), kind, code, field, fmt, ap);
    va_end(ap);
    return rc;
}

int ch_event__fail_store(ch_store_t *st, ch_fault_t *e)
{
    ch_log(CH_LOG_ERROR, MODULE, "msg=\"store failed\" error=\"%s\"", ch_store_errmsg(st));
    (void)ch_store_rollback(st);
    return ch_event__fail(e, CH_FAULT_INTERNAL, NULL, NULL, "the store failed");
}

/* Records that end access: on a full audit disk they may use its reserve, so that an event
 * can always be closed, revoked or expired and a grant revoked (ch_audit_append_ending). */
static int ends_access(const char *action)
{
    static const char *const ending[] = {"event.close", "event.revoke", "event.expire",
                                         "grant.revoke", "grant.release"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(ending); i++) {
        if (strcmp(action, ending[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Appends one record; details is stolen. 0 when recorded (or no log). Any thread: the log is
 * thread-safe. */
static int record(ch_audit_t *audit, const char *actor, const char *action, const char *object,
                  const char *outcome, const ch_event_t *ev, json_t *details)
{
    if (audit == NULL) {
        json_decref(details);
        return 0;
    }
    ch_audit_entry_t a = {.actor = actor,
                          .action = action,
                          .object = object,
                          .purpose = ev != NULL ? ev->service : NULL,
                          .legal_basis = ev != NULL ? ev->basis_code : NULL,
                          .outcome = outcome,
                          .details = details};
    int rc = ends_access(action) ? ch_audit_append_ending(audit, &a, NULL)
                                 : ch_audit_append(audit, &a, NULL);
    json_decref(details);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"audit append failed\" action=%s rc=%d error=\"%s\"",
               action, rc, ch_strerror(rc));
    }
    return rc;
}

/* Commits after the record; rolls back and refuses (CH_FAULT_AUDIT) when it could not be made
 * durable. */
int ch_event__record_and_commit(const ch_event__ctx_t *cx, const char *actor, const char *action,
                                const char *object, const ch_event_t *ev, json_t *details,
                                ch_fault_t *err)
{
    if (record(cx->cfg->audit, actor, action, object, "ok", ev, details) != 0) {
        (void)ch_store_rollback(cx->st);
        return ch_event__fail(
            err, CH_FAULT_AUDIT, NULL, NULL,
            "nothing was changed: the decision could not be put on the audit record");
    }
    /* A crash here leaves a durable record of a change the store does not hold:
     * ch_event_restore settles it from the record at the next start. */
    ch_event__crash_point(cx->crash_at, action, "after_audit");
    if (ch_store_commit(cx->st) != 0) {
        return ch_event__fail_store(cx->st, err);
    }
    return 0;
}

const ch_policy_service_t *ch_event__service_of(const ch_policy_t *policy, const char *id)
{
    return policy != NULL ? ch_policy_find(policy, id) : NULL;
}

int ch_event__begin(const ch_event__ctx_t *cx)
{
    return cx->in_write ? 0 : ch_store_begin(cx->st);
}

void ch_event__ctx_of(ch_event_engine_t *eng, ch_event__ctx_t *cx)
{
    *cx = (ch_event__ctx_t){.st = eng->cfg.st,
                            .cfg = &eng->cfg,
                            .crash_at = eng->crash_at,
                            .policy = eng->policy,
                            .geo = eng->geo,
                            .sk = eng->has_sk ? eng->sk : NULL,
                            .rtsp_base = eng->rtsp_base,
                            .ws_base = eng->ws_base,
                            .now = ch_event__now_ms(eng)};
}

void ch_event__object_name(char out[48], const char *kind, int64_t id)
{
    snprintf(out, 48, "%s:%lld", kind, (long long)id);
}

/* ---- loading -------------------------------------------------------------------------------- */

/* Every grant of an event (in id order) into *l. */
int ch_event__grants_of(ch_store_t *st, int64_t event_id, const char *status, ch_grant_list_t *l)
{
    ch_store_filter_t f = {.event_id = event_id, .status = status, .limit = 1000};
    memset(l, 0, sizeof(*l));
    for (;;) {
        ch_grant_list_t page;
        int rc = ch_store_grant_list(st, &f, &page);
        if (rc != 0) {
            ch_grant_list_free(l);
            return rc;
        }
        l->items = ch_realloc(l->items, (l->count + page.count + 1) * sizeof(ch_grant_t));
        if (page.count > 0) { /* an empty page may have no items array */
            memcpy(l->items + l->count, page.items, page.count * sizeof(ch_grant_t));
        }
        l->count += page.count;
        l->total = page.total;
        f.after_id = page.next_id;
        ch_free(page.items);
        if (f.after_id == 0) {
            return 0;
        }
    }
}

/* ---- engine life --------------------------------------------------------------------------- */

ch_event_engine_t *ch_event_engine_new(const ch_event_config_t *cfg)
{
    ch_event_engine_t *eng = ch_calloc(1, sizeof(*eng));
    eng->cfg = *cfg;
    eng->rtsp_base = ch_strdup(cfg->rtsp_base != NULL ? cfg->rtsp_base : "rtsp://127.0.0.1:8554");
    eng->ws_base = ch_strdup(cfg->ws_base != NULL ? cfg->ws_base : "ws://127.0.0.1:8080");
    eng->cfg.rtsp_base = eng->rtsp_base;
    eng->cfg.ws_base = eng->ws_base;
    if (cfg->sk != NULL) {
        memcpy(eng->sk, cfg->sk, sizeof(eng->sk));
        eng->has_sk = 1;
        eng->cfg.sk = NULL;
    }
    if (eng->cfg.min_lat == 0 && eng->cfg.max_lat == 0) {
        /* South Korea with its islands. */
        eng->cfg.min_lat = 33.0;
        eng->cfg.max_lat = 38.7;
        eng->cfg.min_lon = 124.5;
        eng->cfg.max_lon = 132.0;
    }
    if (eng->cfg.grace_ms <= 0) {
        eng->cfg.grace_ms = DEFAULT_GRACE;
    }
#ifndef NDEBUG
    const char *crash_at = getenv("CCTVHUB_TEST_CRASH_AT");
    snprintf(eng->crash_at, sizeof(eng->crash_at), "%s", crash_at != NULL ? crash_at : "");
#endif
    return eng;
}

void ch_event_engine_free(ch_event_engine_t *eng)
{
    if (eng == NULL) {
        return;
    }
    ch_store_unwatch(eng->cfg.st, eng->watch);
    sodium_memzero(eng->sk, sizeof(eng->sk));
    ch_free(eng->grants);
    ch_free(eng->counts);
    ch_free(eng->map);
    ch_free(eng->opens);
    ch_free(eng->events);
    ch_free(eng->rtsp_base);
    ch_free(eng->ws_base);
    ch_free(eng);
}

void ch_event_set_policy(ch_event_engine_t *eng, const ch_policy_t *p)
{
    eng->policy = p;
}

void ch_event_set_geo(ch_event_engine_t *eng, ch_geo_t *geo)
{
    eng->geo = geo;
}

void ch_event_set_urls(ch_event_engine_t *eng, const char *rtsp_base, const char *ws_base)
{
    ch_free(eng->rtsp_base);
    ch_free(eng->ws_base);
    eng->rtsp_base = ch_strdup(rtsp_base);
    eng->ws_base = ch_strdup(ws_base);
}

void ch_event_collect(ch_metrics_writer_t *w, void *ud)
{
    const ch_event_engine_t *eng = ud;
    if (ch_metrics_family(w, "cctvhub_grants_active", CH_METRICS_GAUGE,
                          "Grants live now: cameras an agency may watch.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, eng->ngrants);
    }
    if (ch_metrics_family(w, "cctvhub_events_live", CH_METRICS_GAUGE,
                          "Events open now (active or waiting for approval).") == 0) {
        ch_metrics_value_u64(w, NULL, 0, eng->nevents);
    }
    if (ch_metrics_family(w, "cctvhub_events_total", CH_METRICS_COUNTER,
                          "Events asked to open, by service and outcome (opened, "
                          "pending_approval, denied by the policy, failed to be recorded).") != 0) {
        return;
    }
    for (size_t i = 0; i < eng->ncounts; i++) {
        for (int k = 0; k < OUT_COUNT; k++) {
            ch_metrics_label_t l[] = {{"service", eng->counts[i].service},
                                      {"outcome", outcome_names[k]}};
            ch_metrics_value_u64(w, l, 2, eng->counts[i].n[k]);
        }
    }
}
