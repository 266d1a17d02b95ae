/*
 * event/event.c: the engine (see event.h). Layout: helpers; JSON views; camera selection;
 * the in-memory live set; the operations; expiry.
 *
 * Every operation is one store transaction holding the change and, before COMMIT, its durable
 * audit record. Grants live in the store (the truth) and, while active, in a small in-memory
 * table (id, event, camera, agency, expiry) that the expiry tick scans, so the timer never
 * queries the database unless something is due.
 */
#include "event/event.h"

#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE          "event"
#define MAX_SUBSCRIBERS 8
#define DEFAULT_GRACE   (30LL * 1000)
#define MAX_TEXT        1000

typedef struct live_grant {
    int64_t id, event_id, camera_id, agency_id;
    int64_t expires_at;
} live_grant_t;

typedef struct live_event {
    int64_t id;
    int64_t expires_at; /* 0 while pending */
    int64_t placed_at;  /* when the subject was at the event's position (the speed check) */
} live_event_t;

/* Opens of one service by outcome, for GET /metrics (services come from the services file,
 * so the list stays as short as the file). */
enum { OUT_OPENED, OUT_PENDING, OUT_DENIED, OUT_FAILED, OUT_COUNT };
static const char *const outcome_names[OUT_COUNT] = {"opened", "pending_approval", "denied",
                                                     "failed"};

typedef struct service_count {
    char service[72];
    uint64_t n[OUT_COUNT];
} service_count_t;

struct ch_event_engine {
    ch_event_config_t cfg;
    char *rtsp_base, *ws_base;
    uint8_t sk[64];
    int has_sk;
    const ch_policy_t *policy;
    const ch_geo_t *geo;
    live_grant_t *grants;
    size_t ngrants, gcap;
    uint32_t *map; /* grant id -> position + 1 (see live_add_grant) */
    int batch;     /* a batch transaction of opens is open (ch_event_batch_begin) */
    size_t mcap;
    live_event_t *events;
    size_t nevents, ecap;
    struct {
        ch_event_notice_fn fn;
        void *ud;
    } subs[MAX_SUBSCRIBERS];
    size_t nsubs;
    service_count_t *counts; /* opens by service and outcome */
    size_t ncounts, ccounts;
    char crash_at[64]; /* a test-only crash point (crash_point); empty: none */
};

/* ---- helpers ------------------------------------------------------------------------------- */

/* Counts an open of service (a service of the services file) with outcome. */
static void count_open(ch_event_engine_t *eng, const char *service, int outcome)
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

static int64_t now_ms(const ch_event_engine_t *eng)
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
static void crash_point(const ch_event_engine_t *eng, const char *action, const char *when)
{
#ifndef NDEBUG
    char name[96];
    if (eng->crash_at[0] == '\0') {
        return;
    }
    snprintf(name, sizeof(name), "%s.%s", action, when);
    if (strcmp(name, eng->crash_at) == 0) {
        ch_log(CH_LOG_WARN, MODULE, "msg=\"test crash point: killing the process\" at=%s", name);
        raise(SIGKILL);
    }
#else
    (void)eng;
    (void)action;
    (void)when;
#endif
}

/* The negative code a refusal of this kind returns. */
static int fault_rc(ch_fault_kind_t kind)
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
                   const char *fmt, ...) CH_PRINTF(5, 6);

int ch_event__fail(ch_fault_t *e, ch_fault_kind_t kind, const char *code, const char *field,
                   const char *fmt, ...)
{
    e->kind = kind;
    e->code = code;
    e->rule = NULL;
    e->rc = 0;
    snprintf(e->field, sizeof(e->field), "%s", field != NULL ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return fault_rc(kind);
}

static int fail_store(ch_event_engine_t *eng, ch_fault_t *e)
{
    ch_log(CH_LOG_ERROR, MODULE, "msg=\"store failed\" error=\"%s\"", ch_store_errmsg(eng->cfg.st));
    (void)ch_store_rollback(eng->cfg.st);
    return ch_event__fail(e, CH_FAULT_INTERNAL, NULL, NULL, "the store failed");
}

static json_t *time_json(int64_t ms)
{
    if (ms <= 0) {
        return json_null();
    }
    char ts[32];
    ch_time_format_rfc3339(ms, ts);
    return json_string(ts);
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
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

/* Appends one record; details is stolen. 0 when recorded (or no log). */
static int record(ch_event_engine_t *eng, const char *actor, const char *action, const char *object,
                  const char *outcome, const ch_event_t *ev, json_t *details)
{
    if (eng->cfg.audit == NULL) {
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
    int rc = ends_access(action) ? ch_audit_append_ending(eng->cfg.audit, &a, NULL)
                                 : ch_audit_append(eng->cfg.audit, &a, NULL);
    json_decref(details);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"audit append failed\" action=%s rc=%d error=\"%s\"",
               action, rc, ch_strerror(rc));
    }
    return rc;
}

/* Commits after the record; rolls back and refuses (CH_FAULT_AUDIT) when it could not be made
 * durable. */
static int record_and_commit(ch_event_engine_t *eng, const char *actor, const char *action,
                             const char *object, const ch_event_t *ev, json_t *details,
                             ch_fault_t *err)
{
    if (record(eng, actor, action, object, "ok", ev, details) != 0) {
        (void)ch_store_rollback(eng->cfg.st);
        return ch_event__fail(
            err, CH_FAULT_AUDIT, NULL, NULL,
            "nothing was changed: the decision could not be put on the audit record");
    }
    /* A crash here leaves a durable record of a change the store does not hold:
     * ch_event_restore settles it from the record at the next start. */
    crash_point(eng, action, "after_audit");
    if (ch_store_commit(eng->cfg.st) != 0) {
        return fail_store(eng, err);
    }
    return 0;
}

static void notify(ch_event_engine_t *eng, ch_event_notice_kind_t kind, const ch_grant_t *g)
{
    ch_event_notice_t n = {kind, g->id, g->event_id, g->camera_id, g->agency_id, g->status};
    for (size_t i = 0; i < eng->nsubs; i++) {
        eng->subs[i].fn(eng->subs[i].ud, &n);
    }
}

static const ch_policy_service_t *service_of(const ch_event_engine_t *eng, const char *id)
{
    return eng->policy != NULL ? ch_policy_find(eng->policy, id) : NULL;
}

static void object_name(char out[48], const char *kind, int64_t id)
{
    snprintf(out, 48, "%s:%lld", kind, (long long)id);
}

/* ---- the live set -------------------------------------------------------------------------- */

/*
 * The live grants: an array (scanned by the expiry tick) and an index from grant id to array
 * position (open addressing, linear probing, backward-shift deletion; slot value 0 = free,
 * else position + 1), so that looking a grant up or dropping it does not scan 100,000 grants.
 */
static size_t slot_of(const ch_event_engine_t *eng, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (eng->mcap - 1);
}

static void map_put(ch_event_engine_t *eng, int64_t id, size_t pos)
{
    size_t i = slot_of(eng, id);
    while (eng->map[i] != 0 && eng->grants[eng->map[i] - 1].id != id) {
        i = (i + 1) & (eng->mcap - 1);
    }
    eng->map[i] = (uint32_t)(pos + 1);
}

static size_t *map_find(const ch_event_engine_t *eng, int64_t id, size_t *slot)
{
    if (eng->mcap == 0) {
        return NULL;
    }
    size_t i = slot_of(eng, id);
    while (eng->map[i] != 0) {
        if (eng->grants[eng->map[i] - 1].id == id) {
            *slot = i;
            return slot;
        }
        i = (i + 1) & (eng->mcap - 1);
    }
    return NULL;
}

static void map_del_slot(ch_event_engine_t *eng, size_t i)
{
    size_t mask = eng->mcap - 1;
    size_t j = i;
    eng->map[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (eng->map[j] == 0) {
            return;
        }
        size_t k = slot_of(eng, eng->grants[eng->map[j] - 1].id);
        /* Move j back to i unless its home k lies cyclically in (i, j]. */
        if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
            eng->map[i] = eng->map[j];
            eng->map[j] = 0;
            i = j;
        }
    }
}

static void map_grow(ch_event_engine_t *eng)
{
    ch_free(eng->map);
    eng->mcap = eng->mcap ? eng->mcap * 2 : 256;
    eng->map = ch_calloc(eng->mcap, sizeof(*eng->map));
    for (size_t i = 0; i < eng->ngrants; i++) {
        map_put(eng, eng->grants[i].id, i);
    }
}

static void live_add_grant(ch_event_engine_t *eng, const ch_grant_t *g)
{
    if (eng->ngrants == eng->gcap) {
        eng->gcap = eng->gcap ? eng->gcap * 2 : 64;
        eng->grants = ch_realloc(eng->grants, eng->gcap * sizeof(*eng->grants));
    }
    eng->grants[eng->ngrants++] =
        (live_grant_t){g->id, g->event_id, g->camera_id, g->agency_id, g->expires_at};
    if ((eng->ngrants + 1) * 2 > eng->mcap) {
        map_grow(eng); /* puts every grant, the new one too */
    } else {
        map_put(eng, g->id, eng->ngrants - 1);
    }
}

static live_grant_t *live_grant(ch_event_engine_t *eng, int64_t id)
{
    size_t slot;
    if (map_find(eng, id, &slot) == NULL) {
        return NULL;
    }
    return &eng->grants[eng->map[slot] - 1];
}

/* Removes the grant at position pos (the last one takes its place). */
static void live_remove_at(ch_event_engine_t *eng, size_t pos)
{
    size_t slot;
    if (map_find(eng, eng->grants[pos].id, &slot) != NULL) {
        map_del_slot(eng, slot);
    }
    size_t last = --eng->ngrants;
    if (pos != last) {
        eng->grants[pos] = eng->grants[last];
        if (map_find(eng, eng->grants[pos].id, &slot) != NULL) {
            eng->map[slot] = (uint32_t)(pos + 1);
        }
    }
}

static void live_drop_grant(ch_event_engine_t *eng, int64_t id)
{
    size_t slot;
    if (map_find(eng, id, &slot) != NULL) {
        live_remove_at(eng, eng->map[slot] - 1);
    }
}

static live_event_t *live_event(ch_event_engine_t *eng, int64_t id)
{
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].id == id) {
            return &eng->events[i];
        }
    }
    return NULL;
}

/* Adds or updates a live event; a new one's subject is placed now (see ch_event_restore). */
static void live_set_event(ch_event_engine_t *eng, int64_t id, int64_t expires_at)
{
    live_event_t *e = live_event(eng, id);
    if (e != NULL) {
        e->expires_at = expires_at;
        return;
    }
    if (eng->nevents == eng->ecap) {
        eng->ecap = eng->ecap ? eng->ecap * 2 : 32;
        eng->events = ch_realloc(eng->events, eng->ecap * sizeof(*eng->events));
    }
    eng->events[eng->nevents++] = (live_event_t){id, expires_at, now_ms(eng)};
}

static void live_drop_event(ch_event_engine_t *eng, int64_t id)
{
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].id == id) {
            eng->events[i] = eng->events[--eng->nevents];
            return;
        }
    }
}

int64_t ch_event_next_due(const ch_event_engine_t *eng)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < eng->ngrants; i++) {
        if (eng->grants[i].expires_at > 0 && eng->grants[i].expires_at < due) {
            due = eng->grants[i].expires_at;
        }
    }
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].expires_at > 0 && eng->events[i].expires_at < due) {
            due = eng->events[i].expires_at;
        }
    }
    return due;
}

size_t ch_event_live_grants(const ch_event_engine_t *eng)
{
    return eng->ngrants;
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

void ch_event_each_live_grant(const ch_event_engine_t *eng, ch_event_notice_fn fn, void *ud)
{
    for (size_t i = 0; i < eng->ngrants; i++) {
        const live_grant_t *g = &eng->grants[i];
        ch_event_notice_t n = {CH_EVENT_GRANT_STARTED, g->id,        g->event_id,
                               g->camera_id,           g->agency_id, "active"};
        fn(ud, &n);
    }
}

/* ---- loading -------------------------------------------------------------------------------- */

/* Every grant of an event (in id order) into *l. */
static int grants_of(ch_event_engine_t *eng, int64_t event_id, const char *status,
                     ch_grant_list_t *l)
{
    ch_store_filter_t f = {.event_id = event_id, .status = status, .limit = 1000};
    memset(l, 0, sizeof(*l));
    for (;;) {
        ch_grant_list_t page;
        int rc = ch_store_grant_list(eng->cfg.st, &f, &page);
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

/* ---- JSON views ---------------------------------------------------------------------------- */

static json_t *grant_json(const ch_event_engine_t *eng, const ch_event_t *ev, const ch_grant_t *g,
                          int with_token)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(g->id));
    json_object_set_new(o, "camera_id", json_integer(g->camera_id));
    json_object_set_new(o, "provider_id", json_integer(g->provider_id));
    json_object_set_new(o, "status", json_string(g->status));
    json_object_set_new(o, "expires_at", time_json(g->expires_at));
    json_t *why = g->why != NULL ? json_loads(g->why, 0, NULL) : NULL;
    json_object_set_new(o, "reason", why != NULL ? why : json_null());
    if (g->ended_at > 0) {
        json_object_set_new(o, "ended_at", time_json(g->ended_at));
        json_object_set_new(o, "ended_by", str_or_null(g->ended_by));
        json_object_set_new(o, "end_reason", str_or_null(g->end_reason));
    }
    if (with_token && eng->has_sk && strcmp(g->status, "active") == 0) {
        ch_event_claims_t c = {g->id, ev->id, g->camera_id, g->agency_id,
                               (g->expires_at + 999) / 1000};
        char token[CH_EVENT_TOKEN_MAX];
        ch_event_token_make(eng->sk, &c, token);
        char url[600];
        json_object_set_new(o, "token", json_string(token));
        snprintf(url, sizeof(url), "%s/cameras/%lld?token=%s", eng->rtsp_base,
                 (long long)g->camera_id, token);
        json_object_set_new(o, "rtsp_url", json_string(url));
        snprintf(url, sizeof(url), "%s/api/v1/cameras/%lld/live?token=%s", eng->ws_base,
                 (long long)g->camera_id, token);
        json_object_set_new(o, "ws_url", json_string(url));
    }
    return o;
}

/* The event as answered; tokens only for the agency the event is for. grants may be NULL. */
static json_t *event_json(const ch_event_engine_t *eng, const ch_event_t *ev,
                          const ch_grant_list_t *grants, const ch_event_actor_t *who)
{
    const ch_policy_service_t *svc = service_of(eng, ev->service);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(ev->id));
    json_object_set_new(o, "service", json_string(ev->service));
    json_object_set_new(o, "agency_id", json_integer(ev->agency_id));
    json_object_set_new(o, "status", json_string(ev->status));
    json_object_set_new(o, "location",
                        ev->located ? json_pack("{s:f, s:f}", "lat", ev->lat, "lon", ev->lon)
                                    : json_null());
    json_t *path = ev->path != NULL ? json_loads(ev->path, 0, NULL) : NULL;
    json_object_set_new(o, "path", path != NULL ? path : json_null());
    json_object_set_new(o, "incident", str_or_null(ev->incident));
    json_object_set_new(o, "reason", str_or_null(ev->reason));
    json_object_set_new(o, "case", str_or_null(ev->case_name));
    json_object_set_new(o, "duration_s", json_integer(ev->duration_s));
    json_object_set_new(o, "expires_at", time_json(ev->expires_at));
    json_object_set_new(o, "extensions", json_integer(ev->extensions));
    json_object_set_new(o, "ptz", json_boolean(ev->ptz));
    json_object_set_new(o, "export", json_boolean(ev->export_allowed));
    json_object_set_new(o, "legal_basis",
                        json_pack("{s:o, s:o}", "code", str_or_null(ev->basis_code), "text",
                                  str_or_null(svc != NULL ? svc->basis_text : NULL)));
    json_object_set_new(o, "created_by", json_string(ev->created_by));
    json_object_set_new(o, "decided_by", str_or_null(ev->decided_by));
    json_object_set_new(o, "decision_note", str_or_null(ev->decision_note));
    json_object_set_new(o, "closed_by", str_or_null(ev->closed_by));
    json_object_set_new(o, "close_reason", str_or_null(ev->close_reason));
    json_object_set_new(o, "closed_at", time_json(ev->closed_at));
    json_object_set_new(o, "created_at", time_json(ev->created_at));
    if (grants != NULL) {
        int with_token = who != NULL && who->agency_id == ev->agency_id &&
                         (who->role == CH_EVENT_ROLE_AGENCY || who->role == CH_EVENT_ROLE_OPERATOR);
        json_t *a = json_array();
        for (size_t i = 0; i < grants->count; i++) {
            json_array_append_new(a, grant_json(eng, ev, &grants->items[i], with_token));
        }
        json_object_set_new(o, "grants", a);
    }
    return o;
}

/* ---- camera selection ---------------------------------------------------------------------- */

typedef struct choice {
    ch_geo_result_t r;
    int64_t provider_id;
} choice_t;

/* The agency types of providers met during one selection (a handful). */
typedef struct type_cache {
    int64_t id[32];
    char type[32][32];
    size_t n;
} type_cache_t;

static const char *provider_type(ch_event_engine_t *eng, type_cache_t *tc, int64_t id)
{
    for (size_t i = 0; i < tc->n; i++) {
        if (tc->id[i] == id) {
            return tc->type[i];
        }
    }
    ch_agency_t a;
    if (ch_store_agency_get(eng->cfg.st, id, &a) != 0) {
        ch_agency_fini(&a);
        return NULL;
    }
    size_t k = tc->n < 32 ? tc->n++ : 31;
    tc->id[k] = id;
    snprintf(tc->type[k], sizeof(tc->type[k]), "%s", a.type);
    ch_agency_fini(&a);
    return tc->type[k];
}

/*
 * The cameras the service may draw on that see the place (or path), best first, at most
 * max_cameras: the geo module's answer filtered by the service's providers, purposes and
 * opt-outs. Offline cameras are left out.
 */
static int select_cameras(ch_event_engine_t *eng, const ch_policy_service_t *svc, int located,
                          double lat, double lon, const ch_geo_line_t *line, double radius_m,
                          int max_cameras, choice_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (eng->geo == NULL) {
        return 0;
    }
    ch_geo_results_t res;
    memset(&res, 0, sizeof(res));
    ch_geo_filter_t gf = {.exclude_offline = 1};
    double radius = radius_m > CH_GEO_MAX_RADIUS_M ? CH_GEO_MAX_RADIUS_M : radius_m;
    int rc = located ? ch_geo_near(eng->geo, lat, lon, radius, CH_GEO_MAX_LIMIT, &gf, &res)
                     : ch_geo_path(eng->geo, line, radius, &gf, &res);
    if (rc != 0) {
        return rc;
    }
    type_cache_t tc;
    tc.n = 0;
    choice_t *c = ch_calloc(res.count + 1, sizeof(*c));
    size_t k = 0;
    for (size_t i = 0; i < res.count && k < (size_t)max_cameras; i++) {
        const ch_geo_result_t *r = &res.items[i];
        const char *type = provider_type(eng, &tc, r->agency_id);
        const char *purpose = ch_geo_purpose_of(eng->geo, r->camera_id);
        if (type == NULL || !ch_policy_camera_allowed(svc, type, r->agency_id, purpose, NULL)) {
            continue;
        }
        c[k].r = *r;
        c[k].provider_id = r->agency_id;
        k++;
    }
    ch_geo_results_fini(&res);
    *out = c;
    *n = k;
    return 0;
}

/* Why a camera was chosen, as stored with its grant. */
static char *why_text(const ch_geo_result_t *r, int path)
{
    json_t *o =
        json_pack("{s:s, s:f, s:f, s:f}", "visibility", ch_geo_visibility_name(r->visibility),
                  "distance_m", round(r->distance_m * 10) / 10, "bearing_deg",
                  round(r->bearing_deg * 10) / 10, "score", round(r->score * 1000) / 1000);
    if (path) {
        json_object_set_new(o, "from_m", json_real(round(r->from_m)));
        json_object_set_new(o, "to_m", json_real(round(r->to_m)));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
    json_decref(o);
    char *copy = ch_strdup(s);
    free(s);
    return copy;
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
    sodium_memzero(eng->sk, sizeof(eng->sk));
    ch_free(eng->grants);
    ch_free(eng->counts);
    ch_free(eng->map);
    ch_free(eng->events);
    ch_free(eng->rtsp_base);
    ch_free(eng->ws_base);
    ch_free(eng);
}

void ch_event_set_policy(ch_event_engine_t *eng, const ch_policy_t *p)
{
    eng->policy = p;
}

void ch_event_set_geo(ch_event_engine_t *eng, const ch_geo_t *geo)
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

void ch_event_subscribe(ch_event_engine_t *eng, ch_event_notice_fn fn, void *ud)
{
    if (eng->nsubs < MAX_SUBSCRIBERS) {
        eng->subs[eng->nsubs].fn = fn;
        eng->subs[eng->nsubs].ud = ud;
        eng->nsubs++;
    }
}

static int end_event(ch_event_engine_t *eng, ch_event_t *ev, const char *status,
                     const char *gstatus, const char *by, const char *why, const char *action,
                     json_t *details, ch_fault_t *err);

/* Whether the audit log (through the store's index of it) holds any record of an event. */
static int recorded(ch_event_engine_t *eng, int64_t event_id)
{
    if (eng->cfg.audit == NULL) {
        return 1;
    }
    ch_store_audit_filter_t f = {.event_id = event_id, .after_seq = -1, .limit = 1};
    int64_t *seqs = NULL, total = 0, next = 0;
    size_t n = 0;
    if (ch_store_audit_index_query(eng->cfg.st, &f, &seqs, &n, &total, &next) != 0) {
        return 1; /* unknown: keep it, rather than end access on a read error */
    }
    ch_free(seqs);
    return total > 0;
}

static int end_grant(ch_event_engine_t *eng, ch_grant_t *g, const char *status, const char *by,
                     const char *why, int64_t when);

/* Whether object names exactly "<kind>:<id>"; *id (when not NULL) gets the id. */
static int object_is(const char *object, const char *kind, int64_t want, int64_t *id)
{
    size_t n = strlen(kind);
    int64_t v = 0;
    if (object == NULL || strncmp(object, kind, n) != 0 || object[n] != ':' ||
        ch_parse_int64(object + n + 1, strlen(object + n + 1), &v) != 0 || v <= 0) {
        return 0;
    }
    if (id != NULL) {
        *id = v;
    }
    return want == 0 || v == want;
}

/*
 * Decisions on the record that the store may not hold (ch_event_restore). Every decision is
 * recorded before its COMMIT, so a crash in between (or a power cut losing the last commits:
 * the store syncs its WAL lazily) leaves the log ahead of the store; an ending on the record
 * is final whatever the store says, and a revoked grant stays revoked. Such a record is newer
 * than its event's last write in the store (the decision wrote after it), so only records
 * since the oldest live event's last write are looked at, found by action through the store's
 * index of the log: never the view records, which may be thousands per event.
 */
typedef struct record_ref {
    int64_t event_id, seq;
} record_ref_t;

typedef struct ahead {
    record_ref_t *refs; /* endings and grant revocations with outcome ok, by event then seq */
    size_t n, cap;
} ahead_t;

/* What the record says about one live event. */
typedef struct last_word {
    json_t *decision; /* a record that ended it (close, revoke, expiry, denial, abort), or NULL */
    json_t *revokes;  /* its grant.revoke records (an array) */
} last_word_t;

static void last_word_fini(last_word_t *w)
{
    json_decref(w->decision);
    json_decref(w->revokes);
    memset(w, 0, sizeof(*w));
}

static int cmp_ref(const void *a, const void *b)
{
    const record_ref_t *x = a, *y = b;
    if (x->event_id != y->event_id) {
        return x->event_id < y->event_id ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Record seq as JSON, or NULL (*rc set on a read error, 0 for a record that is not JSON). */
static json_t *read_record(ch_event_engine_t *eng, int64_t seq, int *rc)
{
    char *text = NULL;
    size_t len = 0;
    if ((*rc = ch_audit_read(eng->cfg.audit, (uint64_t)seq, &text, &len)) != 0) {
        return NULL;
    }
    json_t *rec = json_loadb(text, len, 0, NULL);
    ch_free(text);
    return rec;
}

/* Collects the endings and grant revocations recorded since since_ns (outcome ok; a denied
 * approval is an "event.deny" with outcome "denied"). 0 or a store / audit code. */
static int scan_ahead(ch_event_engine_t *eng, int64_t since_ns, ahead_t *ah)
{
    static const char *const actions[] = {"event.close", "event.revoke", "event.expire",
                                          "event.deny",  "event.abort",  "grant.revoke"};
    int rc = 0;
    for (size_t a = 0; rc == 0 && a < CH_ARRAY_SIZE(actions); a++) {
        ch_store_audit_filter_t f = {
            .since_ns = since_ns, .action = actions[a], .after_seq = -1, .limit = 1000};
        for (;;) {
            int64_t *seqs = NULL, total = 0, next = -1;
            size_t k = 0;
            if ((rc = ch_store_audit_index_query(eng->cfg.st, &f, &seqs, &k, &total, &next)) != 0) {
                break;
            }
            for (size_t i = 0; rc == 0 && i < k; i++) {
                json_t *rec = read_record(eng, seqs[i], &rc);
                const char *outcome = json_string_value(json_object_get(rec, "outcome"));
                const char *object = json_string_value(json_object_get(rec, "object"));
                int64_t id = 0;
                if (outcome != NULL && strcmp(outcome, "ok") == 0) {
                    if (a + 1 == CH_ARRAY_SIZE(actions)) {
                        id = json_integer_value(
                            json_object_get(json_object_get(rec, "details"), "event_id"));
                    } else {
                        (void)object_is(object, "event", 0, &id);
                    }
                }
                json_decref(rec);
                if (id > 0) {
                    if (ah->n == ah->cap) {
                        ah->cap = ah->cap ? ah->cap * 2 : 64;
                        ah->refs = ch_realloc(ah->refs, ah->cap * sizeof(*ah->refs));
                    }
                    ah->refs[ah->n++] = (record_ref_t){id, seqs[i]};
                }
            }
            ch_free(seqs);
            if (rc != 0 || next < 0 || k == 0) {
                break;
            }
            f.after_seq = next;
        }
    }
    if (ah->n > 1) {
        qsort(ah->refs, ah->n, sizeof(*ah->refs), cmp_ref);
    }
    return rc;
}

/* What the scan found about one event. 0 or an audit code. */
static int last_word_of(ch_event_engine_t *eng, const ahead_t *ah, int64_t event_id, last_word_t *w)
{
    memset(w, 0, sizeof(*w));
    w->revokes = json_array();
    size_t lo = 0, hi = ah->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ah->refs[mid].event_id < event_id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    int rc = 0;
    for (size_t i = lo; rc == 0 && i < ah->n && ah->refs[i].event_id == event_id; i++) {
        json_t *rec = read_record(eng, ah->refs[i].seq, &rc);
        const char *action = json_string_value(json_object_get(rec, "action"));
        if (action != NULL && strcmp(action, "grant.revoke") == 0) {
            json_array_append(w->revokes, rec);
        } else if (action != NULL && w->decision == NULL) {
            w->decision = json_incref(rec);
        }
        json_decref(rec);
    }
    return rc;
}

/* When the oldest live event was last written in the store (ms), or 0 when none is live. */
static int oldest_live_write(ch_event_engine_t *eng, int64_t *out)
{
    static const char *const live[] = {"active", "pending"};
    *out = 0;
    for (size_t s = 0; s < 2; s++) {
        ch_store_filter_t f = {.status = live[s], .limit = 1000};
        for (;;) {
            ch_event_list_t l;
            int rc = ch_store_event_list(eng->cfg.st, &f, &l);
            if (rc != 0) {
                return rc;
            }
            for (size_t i = 0; i < l.count; i++) {
                int64_t t =
                    l.items[i].updated_at > 0 ? l.items[i].updated_at : l.items[i].created_at;
                t = t > 0 ? t : 1;
                *out = *out == 0 || t < *out ? t : *out;
            }
            f.after_id = l.next_id;
            ch_event_list_free(&l);
            if (f.after_id == 0) {
                break;
            }
        }
    }
    return 0;
}

/*
 * Makes the store say what the log says about a live event: when a decision on the record
 * ended it (close, revoke, expiry, denial, abort), the event and its live grants end as that
 * decision ended them (who, why, when from the record); live grants whose revocation is on
 * the record end "revoked". No record is written: the log already holds these decisions. *ended is
 * set when the event itself ended. 0 or a store code (rolled back).
 */
static int settle_from_record(ch_event_engine_t *eng, ch_event_t *ev, const last_word_t *w,
                              int *ended)
{
    static const struct {
        const char *action, *status, *gstatus;
    } endings[] = {{"event.close", "closed", "closed"},
                   {"event.revoke", "closed", "revoked"},
                   {"event.expire", "expired", "expired"},
                   {"event.deny", "denied", "denied"},
                   {"event.abort", "closed", "closed"}};
    *ended = 0;
    const char *action = json_string_value(json_object_get(w->decision, "action"));
    size_t e = CH_ARRAY_SIZE(endings);
    for (size_t i = 0; action != NULL && i < CH_ARRAY_SIZE(endings); i++) {
        e = strcmp(action, endings[i].action) == 0 ? i : e;
    }
    if (e == CH_ARRAY_SIZE(endings) && json_array_size(w->revokes) == 0) {
        return 0;
    }
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    int changed = 0;
    int rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = grants_of(eng, ev->id, NULL, &g);
    }
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        ch_grant_t *gr = &g.items[i];
        if (strcmp(gr->status, "active") != 0 && strcmp(gr->status, "pending") != 0) {
            continue;
        }
        json_t *by = e < CH_ARRAY_SIZE(endings) ? w->decision : NULL;
        size_t k;
        json_t *r;
        json_array_foreach(w->revokes, k, r)
        {
            if (object_is(json_string_value(json_object_get(r, "object")), "grant", gr->id, NULL)) {
                by = r;
            }
        }
        if (by == NULL) {
            continue;
        }
        const char *gstatus = by == w->decision ? endings[e].gstatus : "revoked";
        const char *actor = json_string_value(json_object_get(by, "actor"));
        rc = end_grant(eng, gr, gstatus, actor != NULL ? actor : "system",
                       json_string_value(json_object_get(json_object_get(by, "details"), "reason")),
                       json_integer_value(json_object_get(by, "time")) / 1000000);
        changed++;
    }
    if (rc == 0 && e < CH_ARRAY_SIZE(endings)) {
        const char *why =
            json_string_value(json_object_get(json_object_get(w->decision, "details"), "reason"));
        ch_free(ev->status);
        ev->status = ch_strdup(endings[e].status);
        const char *actor = json_string_value(json_object_get(w->decision, "actor"));
        ch_free(ev->closed_by);
        ev->closed_by = ch_strdup(actor != NULL ? actor : "system");
        ch_free(ev->close_reason);
        ev->close_reason = why != NULL ? ch_strdup(why) : NULL;
        ev->closed_at = json_integer_value(json_object_get(w->decision, "time")) / 1000000;
        rc = ch_store_event_update(eng->cfg.st, ev);
        *ended = rc == 0;
    }
    if (rc == 0) {
        rc = ch_store_commit(eng->cfg.st);
    }
    if (rc != 0) {
        (void)ch_store_rollback(eng->cfg.st);
        *ended = 0;
    } else if (*ended || changed > 0) {
        ch_log(CH_LOG_WARN, MODULE,
               "msg=\"the audit record was ahead of the store (a stop between a decision's "
               "record and its commit); the store now follows the record\" event=%lld "
               "decision=%s grants_ended=%d",
               (long long)ev->id, *ended ? endings[e].action : "grant.revoke", changed);
    }
    ch_grant_list_free(&g);
    return rc;
}

/* The slack for clocks that stepped back between a store write and a later record. */
#define AHEAD_SLACK_MS (10LL * 60 * 1000)

int ch_event_restore(ch_event_engine_t *eng)
{
    static const char *const live[] = {"active", "pending"};
    eng->ngrants = 0;
    eng->nevents = 0;
    if (eng->mcap > 0) {
        memset(eng->map, 0, eng->mcap * sizeof(*eng->map));
    }
    ahead_t ah = {NULL, 0, 0};
    int64_t oldest = 0;
    int arc = eng->cfg.audit != NULL ? oldest_live_write(eng, &oldest) : 0;
    if (arc == 0 && oldest > 0) {
        int64_t since = oldest > AHEAD_SLACK_MS ? oldest - AHEAD_SLACK_MS : 1;
        arc = scan_ahead(eng, since * 1000000, &ah);
    }
    if (arc != 0) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"the audit record could not be read back; live events kept as the store "
               "has them\" rc=%d",
               arc);
        ah.n = 0;
    }
    for (size_t s = 0; s < 2; s++) {
        ch_store_filter_t f = {.status = live[s], .limit = 1000};
        for (;;) {
            ch_event_list_t l;
            int rc = ch_store_event_list(eng->cfg.st, &f, &l);
            if (rc != 0) {
                ch_free(ah.refs);
                return rc;
            }
            for (size_t i = 0; i < l.count; i++) {
                ch_event_t *ev = &l.items[i];
                if (!recorded(eng, ev->id)) {
                    /* Written to the store, but the hub stopped before its record was
                     * durable: no token was ever answered; it must not stand. */
                    ch_fault_t err;
                    json_t *d = json_pack("{s:s}", "why", "its opening never reached the record");
                    if (end_event(eng, ev, "closed", "closed", "system",
                                  "the decision never reached the audit record", "event.abort", d,
                                  &err) != 0) {
                        ch_event_list_free(&l);
                        ch_free(ah.refs);
                        return CH_EIO;
                    }
                    continue;
                }
                /* The log's last word on the event: a decision whose record is durable but
                 * whose COMMIT never happened (the hub stopped in between) is carried out now,
                 * so that a close or revocation on the record never comes back live. */
                last_word_t w;
                int ended = 0;
                if (last_word_of(eng, &ah, ev->id, &w) != 0) {
                    ch_log(CH_LOG_ERROR, MODULE,
                           "msg=\"the record of a live event could not be read; kept as the "
                           "store has it\" event=%lld",
                           (long long)ev->id);
                } else if ((rc = settle_from_record(eng, ev, &w, &ended)) != 0) {
                    last_word_fini(&w);
                    ch_event_list_free(&l);
                    ch_free(ah.refs);
                    return rc;
                }
                last_word_fini(&w);
                if (ended) {
                    continue;
                }
                live_set_event(eng, ev->id, ev->expires_at);
                /* The speed check of a moving subject measures from when it was last placed:
                 * the event's last write (its last move, or a later extension: never earlier
                 * than the truth, so never more lenient), and never later than now. */
                live_event_t *le = live_event(eng, ev->id);
                int64_t now = now_ms(eng);
                int64_t placed = ev->updated_at > 0 ? ev->updated_at : ev->created_at;
                le->placed_at = placed > 0 && placed < now ? placed : now;
                if (s != 0) {
                    continue;
                }
                ch_grant_list_t g;
                if ((rc = grants_of(eng, ev->id, "active", &g)) != 0) {
                    ch_event_list_free(&l);
                    ch_free(ah.refs);
                    return rc;
                }
                for (size_t k = 0; k < g.count; k++) {
                    live_add_grant(eng, &g.items[k]);
                }
                ch_grant_list_free(&g);
            }
            f.after_id = l.next_id;
            ch_event_list_free(&l);
            if (f.after_id == 0) {
                break;
            }
        }
    }
    ch_free(ah.refs);
    ch_log(CH_LOG_INFO, MODULE, "msg=\"live events restored\" events=%zu grants=%zu", eng->nevents,
           eng->ngrants);
    int n = ch_event_tick(eng);
    return n < 0 ? n : 0;
}

/* ---- opening -------------------------------------------------------------------------------- */

static int end_grant(ch_event_engine_t *eng, ch_grant_t *g, const char *status, const char *by,
                     const char *why, int64_t when);

static int in_city(const ch_event_engine_t *eng, double lat, double lon)
{
    return lat >= eng->cfg.min_lat && lat <= eng->cfg.max_lat && lon >= eng->cfg.min_lon &&
           lon <= eng->cfg.max_lon;
}

/* A place must be in the area this hub serves. */
static int check_place(const ch_event_engine_t *eng, double lat, double lon, const char *field,
                       ch_fault_t *err)
{
    if (!isfinite(lat) || !isfinite(lon) || !in_city(eng, lat, lon)) {
        return ch_event__fail(err, CH_FAULT_INVALID, "outside", field,
                              "the place is outside the area this hub serves");
    }
    return 0;
}

int ch_event_may(const ch_event_actor_t *who, ch_event_op_t op, ch_fault_t *err)
{
    int operator= who->role == CH_EVENT_ROLE_OPERATOR || who->role == CH_EVENT_ROLE_ADMIN;
    int agency = who->role == CH_EVENT_ROLE_AGENCY;
    switch (op) {
    case CH_EVENT_OP_OPEN:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only agencies and operators open events");
    case CH_EVENT_OP_DECIDE:
        return operator? 0
                       : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                        "only operators approve or deny events");
    case CH_EVENT_OP_EXTEND:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only the agency or an operator extends");
    case CH_EVENT_OP_CLOSE:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only the agency or an operator closes an event");
    case CH_EVENT_OP_REVOKE:
        return operator? 0
                       : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                        "only operators revoke events (providers revoke grants)");
    case CH_EVENT_OP_MOVE:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only the agency or an operator moves an event");
    }
    return ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL, "not allowed");
}

/* Denials are audited (no store change) and refused (CH_FAULT_DENIED) with the rule. */
static int deny(ch_event_engine_t *eng, const ch_event_actor_t *who, const char *action,
                const char *object, const ch_policy_decision_t *d, const char *service,
                int64_t agency_id, ch_fault_t *err)
{
    json_t *details = json_pack("{s:s, s:s, s:s, s:I}", "rule", d->rule, "reason", d->reason,
                                "service", service, "agency_id", (json_int_t)agency_id);
    ch_audit_entry_t a = {.actor = who->actor,
                          .action = action,
                          .object = object,
                          .purpose = service,
                          .outcome = "denied",
                          .details = details};
    if (eng->cfg.audit != NULL && ch_audit_append(eng->cfg.audit, &a, NULL) != 0) {
        json_decref(details);
        return ch_event__fail(err, CH_FAULT_AUDIT, NULL, NULL,
                              "the request was denied, and the denial could not be recorded");
    }
    json_decref(details);
    int rc = ch_event__fail(err, CH_FAULT_DENIED, NULL, NULL, "%s", d->reason);
    err->rule = d->rule;
    return rc;
}

static ch_policy_role_t policy_role(const ch_event_actor_t *who)
{
    return who->role == CH_EVENT_ROLE_AGENCY ? CH_POLICY_ROLE_AGENCY : CH_POLICY_ROLE_OPERATOR;
}

/* Audits a request refused before the policy (bad place, unknown service...): the issue asks
 * that each is on the record. */
static int refuse(ch_event_engine_t *eng, const ch_event_actor_t *who, const char *action,
                  const char *object, ch_fault_t *err)
{
    json_t *d = json_pack("{s:s, s:s, s:s}", "code", ch_fault_code(err), "field", err->field,
                          "reason", err->message);
    ch_audit_entry_t a = {
        .actor = who->actor, .action = action, .object = object, .outcome = "denied", .details = d};
    if (eng->cfg.audit != NULL && ch_audit_append(eng->cfg.audit, &a, NULL) != 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"refusal not recorded\" action=%s", action);
    }
    json_decref(d);
    return fault_rc(err->kind);
}

/* Makes the grants of a new or approved event: store rows, live set, notices. */
static int make_grants(ch_event_engine_t *eng, ch_event_t *ev, const choice_t *c, size_t n,
                       const char *status, int path, json_t *cams)
{
    for (size_t i = 0; i < n; i++) {
        char *why = why_text(&c[i].r, path);
        ch_grant_t g = {.event_id = ev->id,
                        .camera_id = c[i].r.camera_id,
                        .agency_id = ev->agency_id,
                        .provider_id = c[i].provider_id,
                        .status = (char *)status,
                        .why = why,
                        .expires_at = strcmp(status, "active") == 0 ? ev->expires_at : 0};
        int rc = ch_store_grant_create(eng->cfg.st, &g);
        ch_free(why);
        if (rc != 0) {
            return rc;
        }
        json_array_append_new(cams, json_integer(g.camera_id));
    }
    return 0;
}

/* After COMMIT: the grants of ev with status "active" join the live set; notices go out. */
static void went_live(ch_event_engine_t *eng, const ch_event_t *ev, const ch_grant_list_t *g)
{
    live_set_event(eng, ev->id, ev->expires_at);
    for (size_t i = 0; i < g->count; i++) {
        if (strcmp(g->items[i].status, "active") == 0 && live_grant(eng, g->items[i].id) == NULL) {
            live_add_grant(eng, &g->items[i]);
            notify(eng, CH_EVENT_GRANT_STARTED, &g->items[i]);
        }
    }
}

/* Answers the event with its grants (status given to the caller). */
static int answer_event(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                        json_t **out, ch_fault_t *err)
{
    ch_event_t ev;
    ch_grant_list_t g;
    if (ch_store_event_get(eng->cfg.st, id, &ev) != 0) {
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    if (grants_of(eng, id, NULL, &g) != 0) {
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    *out = event_json(eng, &ev, &g, who);
    ch_event_fini(&ev);
    ch_grant_list_free(&g);
    return 0;
}

int ch_event_open_refused(ch_event_engine_t *eng, const ch_event_actor_t *who, ch_fault_t *err)
{
    int rc = ch_event_may(who, CH_EVENT_OP_OPEN, err);
    return rc != 0 ? rc : refuse(eng, who, "event.open", NULL, err);
}

int ch_event_open_begin(ch_event_engine_t *eng, const ch_event_actor_t *who,
                        const ch_event_open_req_t *req, ch_event_pending_t **pout, ch_fault_t *err)
{
    *pout = NULL;
    const char *incident = req->incident, *reason = req->reason, *case_name = req->case_name;
    const char *service = req->service;
    int located = req->located;
    double lat = req->lat, lon = req->lon;
    int64_t agency_id = who->agency_id;

    if (ch_event_may(who, CH_EVENT_OP_OPEN, err) != 0) {
        return fault_rc(err->kind);
    }
    if (service == NULL) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "service",
                       "service must be a service id (GET /api/v1/services)");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (req->duration_s < 0) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "duration_s",
                       "duration_s must be a positive integer");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (req->has_agency_id) {
        if (who->role == CH_EVENT_ROLE_AGENCY) {
            if (req->agency_id != who->agency_id) {
                ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id",
                               "an agency opens events for itself only");
                return refuse(eng, who, "event.open", NULL, err);
            }
        } else if (req->agency_id < 1) {
            ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id",
                           "agency_id must be an agency's id");
            return refuse(eng, who, "event.open", NULL, err);
        } else {
            agency_id = req->agency_id;
        }
    }
    if (agency_id <= 0) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id",
                       "say which agency the event is for (agency_id)");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (!located && (req->path == NULL || req->path_geojson == NULL)) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "location",
                       "give either location {lat, lon} or path (a GeoJSON LineString)");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (located && check_place(eng, lat, lon, "location", err) != 0) {
        return refuse(eng, who, "event.open", NULL, err);
    }
    for (size_t i = 0; !located && i < req->path->count; i++) {
        if (!in_city(eng, req->path->pts[i].lat, req->path->pts[i].lon)) {
            ch_event__fail(err, CH_FAULT_INVALID, "outside", "path",
                           "the path leaves the area this hub serves");
            return refuse(eng, who, "event.open", NULL, err);
        }
    }
    ch_agency_t ag;
    int rc = ch_store_agency_get(eng->cfg.st, agency_id, &ag);
    if (rc != 0) {
        ch_agency_fini(&ag);
        if (rc == CH_ENOTFOUND) {
            ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id", "no agency has this id");
            return refuse(eng, who, "event.open", NULL, err);
        }
        return fail_store(eng, err);
    }
    ch_policy_request_t pr = {.service = service,
                              .agency_type = ag.type,
                              .agency_id = agency_id,
                              .role = policy_role(who),
                              .action = CH_POLICY_OPEN,
                              .duration_s = req->duration_s,
                              .has_incident = incident != NULL,
                              .has_reason = reason != NULL,
                              .case_name = case_name,
                              .want_ptz = req->ptz,
                              .want_export = req->export_allowed};
    ch_policy_decision_t d;
    memset(&d, 0, sizeof(d));
    if (eng->policy == NULL) {
        ch_agency_fini(&ag);
        return ch_event__fail(err, CH_FAULT_UNAVAILABLE, NULL, NULL, "no services file is loaded");
    }
    if (ch_policy_decide(eng->policy, &pr, &d) != 0 || d.outcome == CH_POLICY_DENIED) {
        ch_agency_fini(&ag);
        if (d.rule != NULL && strcmp(d.rule, "unknown_service") == 0) {
            ch_event__fail(err, CH_FAULT_INVALID, NULL, "service", "%s", d.reason);
            return refuse(eng, who, "event.open", NULL, err);
        }
        count_open(eng, service, OUT_DENIED);
        return deny(eng, who, "event.deny", NULL, &d, service, agency_id, err);
    }
    ch_agency_fini(&ag);
    int pending = d.outcome == CH_POLICY_NEEDS_APPROVAL;
    choice_t *choices = NULL;
    size_t nchoices = 0;
    if (select_cameras(eng, d.service, located, lat, lon, req->path, d.radius_m, d.max_cameras,
                       &choices, &nchoices) != 0) {
        return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "camera selection failed");
    }
    int64_t now = now_ms(eng);
    ch_event_t ev = {.service = (char *)service,
                     .agency_id = agency_id,
                     .status = pending ? "pending" : "active",
                     .located = located,
                     .lat = lat,
                     .lon = lon,
                     .path = located ? NULL : (char *)req->path_geojson,
                     .incident = (char *)incident,
                     .reason = (char *)reason,
                     .case_name = (char *)case_name,
                     .duration_s = d.duration_s,
                     .expires_at = pending ? 0 : now + d.duration_s * 1000,
                     .ptz = d.ptz,
                     .export_allowed = d.export_allowed,
                     .basis_code = (char *)d.basis_code,
                     .created_by = (char *)who->actor};
    json_t *cams = json_array();
    /* In a batch (ch_event_batch_begin) the event is a savepoint of the batch's transaction:
     * it can fail alone, and many share one COMMIT. */
    int batched = eng->batch;
    rc = batched ? ch_store_savepoint(eng->cfg.st) : ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_store_event_create(eng->cfg.st, &ev);
    }
    if (rc == 0) {
        rc = make_grants(eng, &ev, choices, nchoices, pending ? "pending" : "active", !located,
                         cams);
    }
    ch_free(choices);
    if (rc != 0) {
        json_decref(cams);
        if (batched) {
            (void)ch_store_rollback_savepoint(eng->cfg.st);
            ch_log(CH_LOG_ERROR, MODULE, "msg=\"store failed\" error=\"%s\"",
                   ch_store_errmsg(eng->cfg.st));
            return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "the store failed");
        }
        return fail_store(eng, err);
    }
    json_t *details = json_pack(
        "{s:s, s:I, s:s, s:o, s:I, s:o, s:o, s:s, s:b, s:b}", "service", service, "agency_id",
        (json_int_t)agency_id, "status", ev.status, "cameras", cams, "duration_s",
        (json_int_t)ev.duration_s, "incident", str_or_null(incident), "location",
        located ? json_pack("{s:f, s:f}", "lat", lat, "lon", lon) : json_null(), "decision", d.rule,
        "ptz", ev.ptz, "export", ev.export_allowed);
    /* The store holds the event; the record goes next (ch_event_open_finish answers only once
     * it is durable, and undoes the event when it cannot be made so). */
    if ((batched ? ch_store_release(eng->cfg.st) : ch_store_commit(eng->cfg.st)) != 0) {
        json_decref(details);
        if (batched) {
            (void)ch_store_rollback_savepoint(eng->cfg.st);
            return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "the store failed");
        }
        return fail_store(eng, err);
    }
    ch_event_pending_t *p = ch_calloc(1, sizeof(*p));
    p->event_id = ev.id;
    p->pending = pending;
    snprintf(p->actor, sizeof(p->actor), "%s", who->actor);
    snprintf(p->action, sizeof(p->action), "%s", pending ? "event.request" : "event.open");
    object_name(p->object, "event", ev.id);
    snprintf(p->purpose, sizeof(p->purpose), "%s", service);
    snprintf(p->basis, sizeof(p->basis), "%s", d.basis_code != NULL ? d.basis_code : "");
    p->details = details;
    p->entry = (ch_audit_entry_t){.actor = p->actor,
                                  .action = p->action,
                                  .object = p->object,
                                  .purpose = p->purpose,
                                  .legal_basis = p->basis[0] ? p->basis : NULL,
                                  .outcome = "ok",
                                  .details = p->details};
    *pout = p;
    return 0;
}

int ch_event_batch_begin(ch_event_engine_t *eng)
{
    if (eng->batch) {
        return 0;
    }
    int rc = ch_store_begin(eng->cfg.st);
    eng->batch = rc == 0;
    return rc;
}

int ch_event_batch_end(ch_event_engine_t *eng)
{
    if (!eng->batch) {
        return 0;
    }
    eng->batch = 0;
    int rc = ch_store_commit(eng->cfg.st);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"batch commit failed\" error=\"%s\"",
               ch_store_errmsg(eng->cfg.st));
        (void)ch_store_rollback(eng->cfg.st);
    } else {
        /* The store holds the events, the log not yet: ch_event_restore aborts them. */
        crash_point(eng, "event.open", "after_commit");
    }
    return rc;
}

int ch_event_in_batch(const ch_event_engine_t *eng)
{
    return eng->batch;
}

void ch_event_pending_free(ch_event_pending_t *p)
{
    if (p != NULL) {
        json_decref(p->details);
        ch_free(p);
    }
}

/* The record of an opened event could not be made durable: the event must not stand. Its
 * grants end at once (no token was answered yet), in the store, whatever the log says now. */
static void undo_open(ch_event_engine_t *eng, const ch_event_pending_t *p)
{
    ch_event_t ev;
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    int64_t now = now_ms(eng);
    const char *why = "the decision could not be put on the audit record";
    int rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_store_event_get(eng->cfg.st, p->event_id, &ev);
    }
    if (rc == 0) {
        rc = grants_of(eng, p->event_id, NULL, &g);
        for (size_t i = 0; rc == 0 && i < g.count; i++) {
            rc = end_grant(eng, &g.items[i], "closed", "system", why, now);
        }
        ch_free(ev.status);
        ev.status = ch_strdup("closed");
        ev.closed_by = ch_strdup("system");
        ev.close_reason = ch_strdup(why);
        ev.closed_at = now;
        if (rc == 0) {
            rc = ch_store_event_update(eng->cfg.st, &ev);
        }
        ch_event_fini(&ev);
    }
    if (rc != 0 || ch_store_commit(eng->cfg.st) != 0) {
        (void)ch_store_rollback(eng->cfg.st);
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"an event without its record could not be undone; the next start closes "
               "it\" event=%lld",
               (long long)p->event_id);
    }
    ch_grant_list_free(&g);
}

int ch_event_open_finish(ch_event_engine_t *eng, const ch_event_actor_t *who, ch_event_pending_t *p,
                         int audit_rc, json_t **out, ch_fault_t *err)
{
    *out = NULL;
    int64_t id = p->event_id;
    if (audit_rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"audit append failed; event undone\" event=%lld rc=%d error=\"%s\"",
               (long long)id, audit_rc, ch_strerror(audit_rc));
        undo_open(eng, p);
        count_open(eng, p->purpose, OUT_FAILED);
        ch_event_pending_free(p);
        return ch_event__fail(
            err, CH_FAULT_AUDIT, NULL, NULL,
            "nothing was granted: the decision could not be put on the audit record");
    }
    int pending = p->pending;
    count_open(eng, p->purpose, pending ? OUT_PENDING : OUT_OPENED);
    ch_event_pending_free(p);
    ch_event_t ev;
    ch_grant_list_t g;
    if (ch_store_event_get(eng->cfg.st, id, &ev) != 0 || grants_of(eng, id, NULL, &g) != 0) {
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    went_live(eng, &ev, &g);
    if (pending) {
        live_set_event(eng, id, 0);
    }
    *out = event_json(eng, &ev, &g, who);
    ch_event_fini(&ev);
    ch_grant_list_free(&g);
    return 0;
}

int ch_event_open(ch_event_engine_t *eng, const ch_event_actor_t *who,
                  const ch_event_open_req_t *req, json_t **out, ch_fault_t *err)
{
    ch_event_pending_t *p = NULL;
    *out = NULL;
    int rc = ch_event_open_begin(eng, who, req, &p, err);
    if (rc != 0) {
        return rc;
    }
    rc = eng->cfg.audit != NULL ? ch_audit_append(eng->cfg.audit, &p->entry, NULL) : 0;
    return ch_event_open_finish(eng, who, p, rc, out, err);
}

/* ---- reading --------------------------------------------------------------------------------- */

/* Loads an event the actor may see: its agency's, or any for operators, admins, auditors; a
 * provider's when one of its cameras is in it. */
static int load_visible(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                        ch_event_t *ev, ch_fault_t *err)
{
    int rc = ch_store_event_get(eng->cfg.st, id, ev);
    if (rc == CH_ENOTFOUND) {
        return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such event");
    }
    if (rc != 0) {
        return fail_store(eng, err);
    }
    if (who->role == CH_EVENT_ROLE_AGENCY && ev->agency_id != who->agency_id) {
        ch_event_fini(ev);
        return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such event");
    }
    if (who->role == CH_EVENT_ROLE_PROVIDER) {
        ch_grant_list_t g;
        int mine = 0;
        if (grants_of(eng, id, NULL, &g) == 0) {
            for (size_t i = 0; i < g.count; i++) {
                mine |= g.items[i].provider_id == who->agency_id;
            }
            ch_grant_list_free(&g);
        }
        if (!mine) {
            ch_event_fini(ev);
            return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such event");
        }
    }
    return 0;
}

int ch_event_get(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id, json_t **out,
                 ch_fault_t *err)
{
    ch_event_t ev;
    *out = NULL;
    int rc = load_visible(eng, who, id, &ev, err);
    if (rc != 0) {
        return rc;
    }
    ch_event_fini(&ev);
    return answer_event(eng, who, id, out, err);
}

int ch_event_list(ch_event_engine_t *eng, const ch_event_actor_t *who, const ch_store_filter_t *f,
                  json_t **out, ch_fault_t *err)
{
    *out = NULL;
    ch_store_filter_t mine = *f;
    if (who->role == CH_EVENT_ROLE_PROVIDER) {
        return ch_event__fail(
            err, CH_FAULT_FORBIDDEN, NULL, NULL,
            "providers see the events of their cameras one by one (GET /events/{id})");
    }
    if (who->role == CH_EVENT_ROLE_AGENCY) {
        if (f->agency_id != 0 && f->agency_id != who->agency_id) {
            return ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, "agency_id",
                                  "an agency sees its own events only");
        }
        mine.agency_id = who->agency_id;
    }
    int known = f->status == NULL;
    for (size_t i = 0; !known && ch_store_event_statuses[i] != NULL; i++) {
        known = strcmp(f->status, ch_store_event_statuses[i]) == 0;
    }
    if (!known) {
        return ch_event__fail(err, CH_FAULT_INVALID, NULL, "status",
                              "status must be one of pending, active, "
                              "denied, closed, expired");
    }
    ch_event_list_t l;
    if (ch_store_event_list(eng->cfg.st, &mine, &l) != 0) {
        return fail_store(eng, err);
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++) {
        ch_grant_list_t g;
        if (grants_of(eng, l.items[i].id, NULL, &g) == 0) {
            json_array_append_new(items, event_json(eng, &l.items[i], &g, who));
            ch_grant_list_free(&g);
        }
    }
    *out = json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)l.total);
    json_object_set_new(*out, "next_after", l.next_id ? json_integer(l.next_id) : json_null());
    ch_event_list_free(&l);
    return 0;
}

/* ---- ending grants --------------------------------------------------------------------------- */

/* Ends one grant in the store (status, when, by whom, why); the caller commits, then calls
 * ended() for the live set and the notice. */
static int end_grant(ch_event_engine_t *eng, ch_grant_t *g, const char *status, const char *by,
                     const char *why, int64_t when)
{
    ch_free(g->status);
    g->status = ch_strdup(status);
    g->ended_at = when;
    ch_free(g->ended_by);
    g->ended_by = ch_strdup(by);
    ch_free(g->end_reason);
    g->end_reason = why != NULL ? ch_strdup(why) : NULL;
    return ch_store_grant_update(eng->cfg.st, g);
}

static void ended(ch_event_engine_t *eng, const ch_grant_t *g)
{
    if (live_grant(eng, g->id) != NULL) {
        live_drop_grant(eng, g->id);
        notify(eng, CH_EVENT_GRANT_ENDED, g);
    }
}

/* Ends an event and every live grant of it: status for the event ("closed", "expired",
 * "denied"), gstatus for the grants. Appends the record (action, details get "cameras") and
 * commits. */
static int end_event(ch_event_engine_t *eng, ch_event_t *ev, const char *status,
                     const char *gstatus, const char *by, const char *why, const char *action,
                     json_t *details, ch_fault_t *err)
{
    int64_t now = now_ms(eng);
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    int rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = grants_of(eng, ev->id, NULL, &g);
    }
    json_t *cams = json_array();
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        if (strcmp(g.items[i].status, "active") == 0 || strcmp(g.items[i].status, "pending") == 0) {
            json_array_append_new(cams, json_integer(g.items[i].camera_id));
            rc = end_grant(eng, &g.items[i], gstatus, by, why, now);
        }
    }
    if (rc == 0) {
        ch_free(ev->status);
        ev->status = ch_strdup(status);
        ch_free(ev->closed_by);
        ev->closed_by = ch_strdup(by);
        ch_free(ev->close_reason);
        ev->close_reason = why != NULL ? ch_strdup(why) : NULL;
        ev->closed_at = now;
        rc = ch_store_event_update(eng->cfg.st, ev);
    }
    if (rc != 0) {
        json_decref(cams);
        json_decref(details);
        ch_grant_list_free(&g);
        return fail_store(eng, err);
    }
    char object[48];
    object_name(object, "event", ev->id);
    json_object_set_new(details, "cameras", cams);
    json_object_set_new(details, "agency_id", json_integer(ev->agency_id));
    if (why != NULL) {
        json_object_set_new(details, "reason", json_string(why));
    }
    if ((rc = record_and_commit(eng, by, action, object, ev, details, err)) != 0) {
        ch_grant_list_free(&g);
        return rc;
    }
    for (size_t i = 0; i < g.count; i++) {
        ended(eng, &g.items[i]);
    }
    live_drop_event(eng, ev->id);
    ch_grant_list_free(&g);
    return 0;
}

static int is_live(const ch_event_t *ev)
{
    return strcmp(ev->status, "active") == 0 || strcmp(ev->status, "pending") == 0;
}

/* ---- approval ------------------------------------------------------------------------------ */

int ch_event_decide(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id, int approve,
                    const char *note, json_t **out, ch_fault_t *err)
{
    ch_event_t ev;
    *out = NULL;
    int rc = ch_event_may(who, CH_EVENT_OP_DECIDE, err);
    if (rc != 0 || (rc = load_visible(eng, who, id, &ev, err)) != 0) {
        return rc;
    }
    if (strcmp(ev.status, "pending") != 0) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL, "the event is %s, not pending",
                            ev.status);
        ch_event_fini(&ev);
        return rc;
    }
    ch_free(ev.decided_by);
    ev.decided_by = ch_strdup(who->actor);
    ch_free(ev.decision_note);
    ev.decision_note = note != NULL ? ch_strdup(note) : NULL;
    char object[48];
    object_name(object, "event", id);
    if (!approve) {
        json_t *d = json_pack("{s:s?}", "note", note);
        rc = end_event(eng, &ev, "denied", "denied", who->actor, note, "event.deny", d, err);
        ch_event_fini(&ev);
        return rc != 0 ? rc : answer_event(eng, who, id, out, err);
    }
    /* Approval: the policy again, as the operator approving; then the grants start now. */
    ch_agency_t ag;
    if (ch_store_agency_get(eng->cfg.st, ev.agency_id, &ag) != 0) {
        ch_agency_fini(&ag);
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    ch_policy_request_t pr = {.service = ev.service,
                              .agency_type = ag.type,
                              .agency_id = ev.agency_id,
                              .role = CH_POLICY_ROLE_OPERATOR,
                              .action = CH_POLICY_OPEN,
                              .duration_s = ev.duration_s,
                              .has_incident = ev.incident != NULL,
                              .has_reason = ev.reason != NULL,
                              .case_name = ev.case_name,
                              .want_ptz = ev.ptz,
                              .want_export = ev.export_allowed,
                              .approved = 1,
                              .self_approval = strcmp(ev.created_by, who->actor) == 0};
    ch_policy_decision_t d;
    memset(&d, 0, sizeof(d));
    rc = eng->policy != NULL ? ch_policy_decide(eng->policy, &pr, &d) : CH_EINVAL;
    ch_agency_fini(&ag);
    if (rc != 0 || d.outcome != CH_POLICY_ALLOWED) {
        /* pr points into ev: deny before releasing it. */
        rc = rc != 0 ? ch_event__fail(err, CH_FAULT_UNAVAILABLE, NULL, NULL,
                                      "no services file is loaded")
                     : deny(eng, who, "event.deny", object, &d, pr.service, pr.agency_id, err);
        ch_event_fini(&ev);
        return rc;
    }
    int64_t now = now_ms(eng);
    ch_free(ev.status);
    ev.status = ch_strdup("active");
    ev.expires_at = now + ev.duration_s * 1000;
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    json_t *cams = json_array();
    rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_store_event_update(eng->cfg.st, &ev);
    }
    if (rc == 0) {
        rc = grants_of(eng, id, "pending", &g);
    }
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        ch_free(g.items[i].status);
        g.items[i].status = ch_strdup("active");
        g.items[i].expires_at = ev.expires_at;
        rc = ch_store_grant_update(eng->cfg.st, &g.items[i]);
        json_array_append_new(cams, json_integer(g.items[i].camera_id));
    }
    if (rc != 0) {
        json_decref(cams);
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    json_t *details =
        json_pack("{s:I, s:o, s:s?, s:I}", "agency_id", (json_int_t)ev.agency_id, "cameras", cams,
                  "note", note, "duration_s", (json_int_t)ev.duration_s);
    if ((rc = record_and_commit(eng, who->actor, "event.approve", object, &ev, details, err)) !=
        0) {
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return rc;
    }
    went_live(eng, &ev, &g);
    ch_grant_list_free(&g);
    ch_event_fini(&ev);
    return answer_event(eng, who, id, out, err);
}

/* ---- extension ----------------------------------------------------------------------------- */

int ch_event_extend(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                    int64_t duration_s, json_t **out, ch_fault_t *err)
{
    ch_event_t ev;
    *out = NULL;
    if (duration_s < 0) {
        return ch_event__fail(err, CH_FAULT_INVALID, NULL, "duration_s",
                              "duration_s must be a positive integer");
    }
    int rc = ch_event_may(who, CH_EVENT_OP_EXTEND, err);
    if (rc != 0 || (rc = load_visible(eng, who, id, &ev, err)) != 0) {
        return rc;
    }
    if (strcmp(ev.status, "active") != 0) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL,
                            "the event is %s: only an active event is extended", ev.status);
        ch_event_fini(&ev);
        return rc;
    }
    ch_agency_t ag;
    if (ch_store_agency_get(eng->cfg.st, ev.agency_id, &ag) != 0) {
        ch_agency_fini(&ag);
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    ch_policy_request_t pr = {.service = ev.service,
                              .agency_type = ag.type,
                              .agency_id = ev.agency_id,
                              .role = policy_role(who),
                              .action = CH_POLICY_EXTEND,
                              .duration_s = duration_s,
                              .has_incident = ev.incident != NULL,
                              .has_reason = ev.reason != NULL,
                              .case_name = ev.case_name,
                              .approved = 1,
                              .extension_count = ev.extensions};
    ch_policy_decision_t d;
    memset(&d, 0, sizeof(d));
    char object[48];
    object_name(object, "event", id);
    rc = eng->policy != NULL ? ch_policy_decide(eng->policy, &pr, &d) : CH_EINVAL;
    ch_agency_fini(&ag);
    if (rc != 0 || d.outcome != CH_POLICY_ALLOWED) {
        /* pr points into ev: deny before releasing it. */
        rc = rc != 0 ? ch_event__fail(err, CH_FAULT_UNAVAILABLE, NULL, NULL,
                                      "no services file is loaded")
                     : deny(eng, who, "event.extend", object, &d, pr.service, pr.agency_id, err);
        ch_event_fini(&ev);
        return rc;
    }
    int64_t now = now_ms(eng);
    int64_t old = ev.expires_at;
    ev.expires_at = (old > now ? old : now) + d.duration_s * 1000;
    ev.extensions++;
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_store_event_update(eng->cfg.st, &ev);
    }
    if (rc == 0) {
        rc = grants_of(eng, id, "active", &g);
    }
    json_t *cams = json_array();
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        /* Cameras a moving subject left behind keep their short grace. */
        if (g.items[i].expires_at == old) {
            g.items[i].expires_at = ev.expires_at;
            rc = ch_store_grant_update(eng->cfg.st, &g.items[i]);
            json_array_append_new(cams, json_integer(g.items[i].camera_id));
        }
    }
    if (rc != 0) {
        json_decref(cams);
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    char was[32];
    ch_time_format_rfc3339(old, was);
    json_t *details = json_pack("{s:I, s:o, s:I, s:I, s:s}", "agency_id", (json_int_t)ev.agency_id,
                                "cameras", cams, "duration_s", (json_int_t)d.duration_s,
                                "extension", (json_int_t)ev.extensions, "expired_at_before", was);
    if ((rc = record_and_commit(eng, who->actor, "event.extend", object, &ev, details, err)) != 0) {
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return rc;
    }
    live_set_event(eng, id, ev.expires_at);
    for (size_t i = 0; i < g.count; i++) {
        live_grant_t *lg = live_grant(eng, g.items[i].id);
        if (lg != NULL) {
            lg->expires_at = g.items[i].expires_at;
        }
    }
    ch_grant_list_free(&g);
    ch_event_fini(&ev);
    return answer_event(eng, who, id, out, err);
}

/* ---- close and revoke ---------------------------------------------------------------------- */

static int close_or_revoke(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                           const char *why, int revoke, json_t **out, ch_fault_t *err)
{
    ch_event_t ev;
    *out = NULL;
    int rc = ch_event_may(who, revoke ? CH_EVENT_OP_REVOKE : CH_EVENT_OP_CLOSE, err);
    if (rc != 0 || (rc = load_visible(eng, who, id, &ev, err)) != 0) {
        return rc;
    }
    if (!is_live(&ev)) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL, "the event is already %s",
                            ev.status);
        ch_event_fini(&ev);
        return rc;
    }
    rc = end_event(eng, &ev, "closed", revoke ? "revoked" : "closed", who->actor, why,
                   revoke ? "event.revoke" : "event.close", json_object(), err);
    ch_event_fini(&ev);
    return rc != 0 ? rc : answer_event(eng, who, id, out, err);
}

int ch_event_close(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                   const char *reason, json_t **out, ch_fault_t *err)
{
    return close_or_revoke(eng, who, id, reason, 0, out, err);
}

int ch_event_revoke(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                    const char *reason, json_t **out, ch_fault_t *err)
{
    return close_or_revoke(eng, who, id, reason, 1, out, err);
}

int ch_event_revoke_grant(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t grant_id,
                          const char *why, json_t **out, ch_fault_t *err)
{
    *out = NULL;
    ch_grant_t g;
    int rc = ch_store_grant_get(eng->cfg.st, grant_id, &g);
    if (rc == CH_ENOTFOUND ||
        (rc == 0 && who->role == CH_EVENT_ROLE_PROVIDER && g.provider_id != who->agency_id)) {
        ch_grant_fini(&g);
        return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such grant");
    }
    if (rc != 0) {
        return fail_store(eng, err);
    }
    if (who->role != CH_EVENT_ROLE_OPERATOR && who->role != CH_EVENT_ROLE_ADMIN &&
        who->role != CH_EVENT_ROLE_PROVIDER) {
        ch_grant_fini(&g);
        return ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                              "operators and the camera's provider revoke");
    }
    if (strcmp(g.status, "active") != 0 && strcmp(g.status, "pending") != 0) {
        rc =
            ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL, "the grant is already %s", g.status);
        ch_grant_fini(&g);
        return rc;
    }
    ch_event_t ev;
    rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_store_event_get(eng->cfg.st, g.event_id, &ev);
    }
    if (rc == 0) {
        rc = end_grant(eng, &g, "revoked", who->actor, why, now_ms(eng));
    }
    if (rc != 0) {
        ch_grant_fini(&g);
        return fail_store(eng, err);
    }
    char object[48];
    object_name(object, "grant", grant_id);
    json_t *d =
        json_pack("{s:I, s:I, s:I, s:I, s:s?}", "event_id", (json_int_t)g.event_id, "camera_id",
                  (json_int_t)g.camera_id, "agency_id", (json_int_t)g.agency_id, "provider_id",
                  (json_int_t)g.provider_id, "reason", why);
    if ((rc = record_and_commit(eng, who->actor, "grant.revoke", object, &ev, d, err)) != 0) {
        ch_event_fini(&ev);
        ch_grant_fini(&g);
        return rc;
    }
    ended(eng, &g);
    ch_event_t view = ev;
    *out = grant_json(eng, &view, &g, 0);
    ch_event_fini(&ev);
    ch_grant_fini(&g);
    return 0;
}

/* ---- moving subjects ----------------------------------------------------------------------- */

int ch_event_move(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id, double lat,
                  double lon, json_t **out, ch_fault_t *err)
{
    ch_event_t ev;
    *out = NULL;
    int rc = ch_event_may(who, CH_EVENT_OP_MOVE, err);
    if (rc != 0 || (rc = check_place(eng, lat, lon, "position", err)) != 0 ||
        (rc = load_visible(eng, who, id, &ev, err)) != 0) {
        return rc;
    }
    if (strcmp(ev.status, "active") != 0 || !ev.located) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL,
                            "only an active event at a place moves (this one is %s%s)", ev.status,
                            ev.located ? "" : ", along a path");
        ch_event_fini(&ev);
        return rc;
    }
    const ch_policy_service_t *svc = service_of(eng, ev.service);
    if (svc == NULL) {
        ch_event_fini(&ev);
        return ch_event__fail(err, CH_FAULT_UNAVAILABLE, NULL, NULL,
                              "the event's service is no longer loaded");
    }
    int64_t now = now_ms(eng);
    char object[48];
    object_name(object, "event", id);
    /* Only a service that follows a subject moves, and only as fast as a subject can go. */
    live_event_t *le = live_event(eng, id);
    ch_policy_move_t pm = {.role = policy_role(who),
                           .distance_m = ch_geo_distance_m(ev.lat, ev.lon, lat, lon, NULL),
                           .elapsed_ms = le != NULL ? now - le->placed_at : 0};
    ch_policy_decision_t md;
    memset(&md, 0, sizeof(md));
    if (ch_policy_decide_move(svc, &pm, &md) != 0 || md.outcome != CH_POLICY_ALLOWED) {
        /* md points into the policy, not into ev: ev may go first. */
        int speed = md.rule != NULL && strcmp(md.rule, "implausible_speed") == 0;
        int64_t agency_id = ev.agency_id;
        ch_event_fini(&ev);
        rc = deny(eng, who, "event.move", object, &md, svc->id, agency_id, err);
        if (speed && err->kind == CH_FAULT_DENIED) {
            /* Well formed, but no subject moves so fast: not a denial by the policy. */
            err->kind = CH_FAULT_TOO_COMPLEX;
            err->code = "implausible";
        }
        return rc;
    }
    int override = strcmp(md.rule, "implausible_speed_override") == 0;
    choice_t *c = NULL;
    size_t n = 0;
    if (select_cameras(eng, svc, 1, lat, lon, NULL, svc->radius_m, svc->max_cameras, &c, &n) != 0) {
        ch_event_fini(&ev);
        return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "camera selection failed");
    }
    int64_t grace_until = now + eng->cfg.grace_ms;
    if (grace_until > ev.expires_at) {
        grace_until = ev.expires_at;
    }
    ch_grant_list_t g, gone;
    memset(&g, 0, sizeof(g));
    memset(&gone, 0, sizeof(gone));
    json_t *added = json_array(), *leaving = json_array(), *kept = json_array();
    rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = grants_of(eng, id, "active", &g);
    }
    if (rc == 0) {
        rc = grants_of(eng, id, "revoked", &gone);
    }
    /* Cameras that see the new position: kept (their full expiry back), or new; never one
     * whose grant in this event was revoked (by its provider or an operator). */
    choice_t *fresh = ch_calloc(n + 1, sizeof(*fresh));
    size_t nfresh = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int revoked = 0;
        for (size_t k = 0; k < gone.count; k++) {
            revoked |= gone.items[k].camera_id == c[i].r.camera_id;
        }
        if (revoked) {
            continue;
        }
        ch_grant_t *have = NULL;
        for (size_t k = 0; k < g.count; k++) {
            if (g.items[k].camera_id == c[i].r.camera_id) {
                have = &g.items[k];
            }
        }
        if (have == NULL) {
            fresh[nfresh++] = c[i];
        } else if (have->expires_at != ev.expires_at) {
            have->expires_at = ev.expires_at;
            rc = ch_store_grant_update(eng->cfg.st, have);
            json_array_append_new(kept, json_integer(have->camera_id));
        }
    }
    ch_grant_list_free(&gone);
    /* Cameras behind: a short grace, then released. */
    for (size_t k = 0; rc == 0 && k < g.count; k++) {
        int seen = 0;
        for (size_t i = 0; i < n; i++) {
            seen |= c[i].r.camera_id == g.items[k].camera_id;
        }
        if (!seen && g.items[k].expires_at > grace_until) {
            g.items[k].expires_at = grace_until;
            rc = ch_store_grant_update(eng->cfg.st, &g.items[k]);
            json_array_append_new(leaving, json_integer(g.items[k].camera_id));
        }
    }
    ev.lat = lat;
    ev.lon = lon;
    if (rc == 0) {
        rc = ch_store_event_update(eng->cfg.st, &ev);
    }
    if (rc == 0) {
        rc = make_grants(eng, &ev, fresh, nfresh, "active", 0, added);
    }
    ch_free(c);
    ch_free(fresh);
    if (rc != 0) {
        json_decref(added);
        json_decref(leaving);
        json_decref(kept);
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return fail_store(eng, err);
    }
    json_t *cams = json_copy(added);
    json_array_extend(cams, leaving);
    json_t *d = json_pack("{s:I, s:f, s:f, s:o, s:o, s:o, s:o}", "agency_id",
                          (json_int_t)ev.agency_id, "lat", lat, "lon", lon, "added", added,
                          "leaving", leaving, "back", kept, "cameras", cams);
    if (override) {
        /* An operator placed the subject beyond the plausible speed (a correction): allowed,
         * and said so on the record. */
        json_object_set_new(d, "override", json_string("implausible_speed"));
        json_object_set_new(d, "override_reason", json_string(md.reason));
        ch_log(CH_LOG_WARN, MODULE, "msg=\"implausible move by an operator\" event=%lld",
               (long long)id);
    }
    if ((rc = record_and_commit(eng, who->actor, "event.move", object, &ev, d, err)) != 0) {
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return rc;
    }
    for (size_t k = 0; k < g.count; k++) {
        live_grant_t *lg = live_grant(eng, g.items[k].id);
        if (lg != NULL) {
            lg->expires_at = g.items[k].expires_at;
        }
    }
    if ((le = live_event(eng, id)) != NULL) {
        le->placed_at = now;
    }
    ch_grant_list_free(&g);
    if (grants_of(eng, id, "active", &g) == 0) {
        went_live(eng, &ev, &g);
        ch_grant_list_free(&g);
    }
    ch_event_fini(&ev);
    return answer_event(eng, who, id, out, err);
}

/* ---- expiry -------------------------------------------------------------------------------- */

/* Expires one event whose time is up: its live grants "expired", itself "expired". */
static int expire_event(ch_event_engine_t *eng, int64_t id, int64_t now)
{
    ch_event_t ev;
    ch_fault_t err;
    if (ch_store_event_get(eng->cfg.st, id, &ev) != 0) {
        ch_event_fini(&ev);
        live_drop_event(eng, id);
        return CH_EDB;
    }
    if (!is_live(&ev)) {
        ch_event_fini(&ev);
        live_drop_event(eng, id);
        return 0;
    }
    char due[32];
    ch_time_format_rfc3339(ev.expires_at, due);
    json_t *d = json_pack("{s:s, s:I}", "due", due, "late_ms", (json_int_t)(now - ev.expires_at));
    int rc = end_event(eng, &ev, "expired", "expired", "system", "the granted time is over",
                       "event.expire", d, &err);
    ch_event_fini(&ev);
    return rc != 0 ? CH_EIO : 0;
}

/* Releases the grants a moving subject left behind, once their grace is over. */
static int release_grants(ch_event_engine_t *eng, int64_t event_id, int64_t now)
{
    ch_event_t ev;
    ch_fault_t err;
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    int rc = ch_store_event_get(eng->cfg.st, event_id, &ev);
    if (rc == 0) {
        rc = ch_store_begin(eng->cfg.st);
    }
    if (rc == 0) {
        rc = grants_of(eng, event_id, "active", &g);
    }
    json_t *cams = json_array();
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        if (g.items[i].expires_at <= now) {
            json_array_append_new(cams, json_integer(g.items[i].camera_id));
            rc = end_grant(eng, &g.items[i], "released", "system",
                           "the subject moved out of the camera's view", now);
        }
    }
    if (rc != 0) {
        json_decref(cams);
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        (void)ch_store_rollback(eng->cfg.st);
        return CH_EDB;
    }
    char object[48];
    object_name(object, "event", event_id);
    json_t *d = json_pack("{s:I, s:o}", "agency_id", (json_int_t)ev.agency_id, "cameras", cams);
    rc = record_and_commit(eng, "system", "grant.release", object, &ev, d, &err);
    if (rc == 0) {
        for (size_t i = 0; i < g.count; i++) {
            if (strcmp(g.items[i].status, "released") == 0) {
                ended(eng, &g.items[i]);
            }
        }
    }
    ch_grant_list_free(&g);
    ch_event_fini(&ev);
    return rc != 0 ? CH_EIO : 0;
}

int ch_event_tick(ch_event_engine_t *eng)
{
    int64_t now = now_ms(eng);
    if (ch_event_next_due(eng) > now) {
        return 0;
    }
    size_t before = eng->ngrants;
    int failed = 0;
    /* Events first: their grants go with them. Each step may reorder the arrays, so pick one
     * due item at a time. */
    for (;;) {
        int64_t due = 0;
        for (size_t i = 0; i < eng->nevents; i++) {
            if (eng->events[i].expires_at > 0 && eng->events[i].expires_at <= now) {
                due = eng->events[i].id;
                break;
            }
        }
        if (due == 0) {
            break;
        }
        if (expire_event(eng, due, now) != 0) {
            live_drop_event(eng, due); /* retried at the next restore, never in a loop */
            failed = 1;
        }
    }
    for (;;) {
        int64_t ev = 0;
        for (size_t i = 0; i < eng->ngrants; i++) {
            if (eng->grants[i].expires_at <= now) {
                ev = eng->grants[i].event_id;
                break;
            }
        }
        if (ev == 0) {
            break;
        }
        if (release_grants(eng, ev, now) != 0) {
            for (size_t i = 0; i < eng->ngrants;) {
                if (eng->grants[i].event_id == ev && eng->grants[i].expires_at <= now) {
                    live_remove_at(eng, i);
                } else {
                    i++;
                }
            }
            failed = 1;
        }
    }
    if (failed) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"some expiries could not be recorded; they are retried "
               "at the next start\"");
    }
    return (int)(before - eng->ngrants);
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
        int rc = grants_of(eng, eng->events[i].id, "pending", &l);
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
 * saying why, then GRANT_ENDED. *count gets how many ended. 0, or the last failure (the
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
                ended(eng, &g); /* already over in the store: out of the live set too */
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
            x = end_grant(eng, &g, "revoked", actor, reason, now_ms(eng));
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
        object_name(object, "grant", g.id);
        json_t *d =
            json_pack("{s:I, s:I, s:I, s:I, s:s}", "event_id", (json_int_t)g.event_id, "camera_id",
                      (json_int_t)g.camera_id, "agency_id", (json_int_t)g.agency_id, "provider_id",
                      (json_int_t)g.provider_id, "reason", reason);
        if (record_and_commit(eng, actor, "grant.revoke", object, &ev, d, &err) != 0) {
            rc = CH_EIO;
        } else {
            ended(eng, &g); /* the relay cuts its viewers (reason grant_ended) */
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
