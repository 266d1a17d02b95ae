/*
 * api/events_routes.c: /api/v1/events and /api/v1/grants, the adapter of the event engine.
 * This file maps roles, parses ids and queries, turns request bodies into the engine's typed
 * requests (checking their shape: unknown keys, types, text lengths) and answers the engine's
 * refusals (core's ch_fault_t) through api/faults.c's table (a denial carries the policy rule
 * that denied). The engine decides and records; it answers with typed views, which
 * api/event_json.c writes as JSON.
 */
#include "api/api_ctx.h"
#include "api/event_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 1000 /* bytes of a free-text field (incident, reason, note...) */

static ch_event_role_t event_role(unsigned role)
{
    switch (role) {
    case CH_AUTH_ADMIN:
        return CH_EVENT_ROLE_ADMIN;
    case CH_AUTH_OPERATOR:
        return CH_EVENT_ROLE_OPERATOR;
    case CH_AUTH_AGENCY:
        return CH_EVENT_ROLE_AGENCY;
    case CH_AUTH_PROVIDER:
        return CH_EVENT_ROLE_PROVIDER;
    default:
        return CH_EVENT_ROLE_AUDITOR;
    }
}

/* ---- request bodies -> typed requests -------------------------------------------------- */

static int invalid(ch_fault_t *err, const char *field, const char *message)
{
    return ch_fault_set(err, CH_EINVAL, CH_FAULT_INVALID, NULL, field, "%s", message);
}

/* Every key of body must be one of keys (NULL-terminated). */
static int check_keys(const json_t *body, const char *const *keys, ch_fault_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        int known = 0;
        for (size_t i = 0; keys[i] != NULL; i++) {
            known |= strcmp(k, keys[i]) == 0;
        }
        if (!known) {
            return invalid(err, k, "unknown field");
        }
    }
    return 0;
}

/* An optional text field of at most MAX_TEXT bytes; blank is none. *out borrows from body. */
static int opt_text(const json_t *body, const char *key, const char **out, ch_fault_t *err)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) > MAX_TEXT) {
        return ch_fault_set(err, CH_EINVAL, CH_FAULT_INVALID, NULL, key,
                            "%s must be text of at most %d bytes", key, MAX_TEXT);
    }
    const char *s = json_string_value(v);
    while (*s == ' ') {
        s++;
    }
    *out = *s != '\0' ? json_string_value(v) : NULL;
    return 0;
}

static int opt_bool(const json_t *body, const char *key, int *out, ch_fault_t *err)
{
    json_t *v = json_object_get(body, key);
    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        return ch_fault_set(err, CH_EINVAL, CH_FAULT_INVALID, NULL, key, "%s must be true or false",
                            key);
    }
    *out = json_is_true(v);
    return 0;
}

/* An optional positive integer (duration_s); 0 when absent or null. */
static int opt_duration(const json_t *body, int64_t *out, ch_fault_t *err)
{
    json_t *v = json_object_get(body, "duration_s");
    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        return invalid(err, "duration_s", "duration_s must be a positive integer");
    }
    *out = json_integer_value(v);
    return 0;
}

/* {"lat": number, "lon": number} and nothing else (the engine checks the place). */
static int parse_point(const json_t *loc, const char *field, double *lat, double *lon,
                       ch_fault_t *err)
{
    json_t *la = json_object_get(loc, "lat"), *lo = json_object_get(loc, "lon");
    if (!json_is_object(loc) || !json_is_number(la) || !json_is_number(lo) ||
        json_object_size(loc) != 2) {
        return ch_fault_set(err, CH_EINVAL, CH_FAULT_INVALID, NULL, field,
                            "%s must be {\"lat\": number, \"lon\": number}", field);
    }
    *lat = json_number_value(la);
    *lon = json_number_value(lo);
    return 0;
}

/* An open request and what it owns: the parsed path and its text. */
typedef struct open_body {
    ch_event_open_req_t req;
    ch_geo_line_t line;
    char *path_text;
} open_body_t;

static void open_body_fini(open_body_t *b)
{
    ch_geo_line_fini(&b->line);
    free(b->path_text);
}

/* POST /api/v1/events: {service, location|path, incident, reason, duration_s, case, ptz,
 * export, agency_id}. Borrows from body; open_body_fini after use, whatever the result. */
static int open_request(const json_t *body, open_body_t *b, ch_fault_t *err)
{
    static const char *const keys[] = {"service", "location",   "path", "incident",
                                       "reason",  "duration_s", "case", "ptz",
                                       "export",  "agency_id",  NULL};
    ch_event_open_req_t *r = &b->req;
    memset(b, 0, sizeof(*b));
    if (check_keys(body, keys, err) != 0 || opt_text(body, "incident", &r->incident, err) != 0 ||
        opt_text(body, "reason", &r->reason, err) != 0 ||
        opt_text(body, "case", &r->case_name, err) != 0 ||
        opt_bool(body, "ptz", &r->ptz, err) != 0 ||
        opt_bool(body, "export", &r->export_allowed, err) != 0) {
        return CH_EINVAL;
    }
    r->service = json_string_value(json_object_get(body, "service"));
    if (r->service == NULL) {
        return invalid(err, "service", "service must be a service id (GET /api/v1/services)");
    }
    if (opt_duration(body, &r->duration_s, err) != 0) {
        return CH_EINVAL;
    }
    json_t *aj = json_object_get(body, "agency_id");
    if (aj != NULL && !json_is_null(aj)) {
        if (!json_is_integer(aj)) {
            return invalid(err, "agency_id", "agency_id must be an agency's id");
        }
        r->has_agency_id = 1;
        r->agency_id = json_integer_value(aj);
    }
    json_t *loc = json_object_get(body, "location");
    json_t *path = json_object_get(body, "path");
    if ((loc != NULL) == (path != NULL)) {
        return invalid(err, "location",
                       "give either location {lat, lon} or path (a GeoJSON LineString)");
    }
    if (loc != NULL) {
        r->located = 1;
        return parse_point(loc, "location", &r->lat, &r->lon, err);
    }
    char gerr[200];
    if (ch_geo_parse_linestring(path, &b->line, gerr, sizeof(gerr)) != 0) {
        return ch_fault_set(err, CH_EINVAL, CH_FAULT_INVALID, NULL, "path", "%s", gerr);
    }
    b->path_text = json_dumps(path, JSON_COMPACT | JSON_REAL_PRECISION(12));
    r->path = &b->line;
    r->path_geojson = b->path_text;
    return 0;
}

/* An optional body of one optional text field (note, reason). */
static int text_request(const json_t *body, const char *key, const char **out, ch_fault_t *err)
{
    const char *keys[] = {key, NULL};
    *out = NULL;
    if (body == NULL) {
        return 0;
    }
    if (check_keys(body, keys, err) != 0) {
        return CH_EINVAL;
    }
    return opt_text(body, key, out, err);
}

/* GET /api/v1/events: status, agency_id, cursor, limit (100 by default: f->limit 0). */
static int list_filter(api_ctx_t *c, ch_store_filter_t *f, ch_api__query_t *q)
{
    memset(f, 0, sizeof(*f));
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_CHOICE("status", &f->status, ch_store_event_statuses)},
        {CH_API__QP_ID("agency_id", &f->agency_id)},
        {CH_API__QP_CURSOR("cursor", &f->after_id)},
        {CH_API__QP_LIMIT("limit", &f->limit)},
        {CH_API__QP_END},
    };
    return ch_api__list_query(c, spec, q);
}

/* Answers an engine call: the JSON of its result (status on success, with the event's Location
 * when 201; the grants' cameras marked with their health) or its refusal. Takes out. */
static void reply_json(api_ctx_t *c, int rc, int status, json_t *out, const ch_fault_t *err)
{
    if (rc != 0) {
        json_decref(out);
        ch_api__reply_fault(c, err);
        return;
    }
    char loc[64];
    if (status == 201) {
        snprintf(loc, sizeof(loc), "Location: /api/v1/events/%lld\r\n",
                 (long long)json_integer_value(json_object_get(out, "id")));
    }
    ch_api__health_mark(c->api, json_object_get(out, "grants"), "camera_id");
    ch_api__reply_json(c, status, status == 201 ? loc : NULL, out);
}

/* Answers an engine call that answers with an event's view (released here). */
static void reply_event(api_ctx_t *c, int rc, int status, ch_event_view_t *v, const ch_fault_t *err)
{
    reply_json(c, rc, status, rc == 0 ? ch_api__event_json(v) : NULL, err);
    ch_event_view_fini(v);
}

/* An opened event whose audit record is being appended on the thread pool: appends from many
 * requests share one fdatasync (the audit log's group commit), and the loop never waits. */
typedef struct open_job {
    uv_work_t work;
    api_ctx_t ctx;
    ch_event_pending_t *p;
    int rc;
} open_job_t;

static void open_work(uv_work_t *w)
{
    open_job_t *j = w->data;
    j->rc = ch_audit_append(j->ctx.api->svc.audit, &j->p->entry, NULL);
}

/* A job of the pool is back on the loop: 0 to go on with it, or 1 when the API is closing
 * (free_job(job) freed it and, the last one back, the API too). */
static int job_back(ch_api_t *api, void (*free_job)(void *), void *job)
{
    api->in_flight--;
    if (!api->freeing) {
        return 0;
    }
    free_job(job);
    if (api->in_flight == 0) {
        ch_api_free(api);
    }
    return 1;
}

static void open_job_free(void *job)
{
    open_job_t *j = job;
    ch_event_pending_free(j->p);
    ch_free(j);
}

static void open_done(uv_work_t *w, int status)
{
    open_job_t *j = w->data;
    ch_api_t *api = j->ctx.api;
    if (job_back(api, open_job_free, j)) {
        return;
    }
    api_ctx_t *c = &j->ctx;
    ch_event_actor_t who = {c->who.actor, event_role(c->who.role), c->who.agency_id};
    ch_fault_t err;
    ch_event_view_t out;
    memset(&err, 0, sizeof(err));
    int rc = ch_event_open_finish(api->svc.events, &who, j->p,
                                  status == UV_ECANCELED ? CH_EIO : j->rc, &out, &err);
    reply_event(c, rc, 201, &out, &err);
    ch_free(j);
}

/* Queues the record of one opened event on the pool (or finishes at once without a log). */
static void open_queue(ch_api_t *api, open_job_t *j)
{
    api->in_flight++;
    if (api->svc.audit == NULL) {
        j->rc = 0;
        open_done(&j->work, 0);
    } else if (uv_queue_work(api->loop, &j->work, open_work, open_done) != 0) {
        j->rc = CH_EIO;
        open_done(&j->work, 0);
    }
}

/*
 * Ends the batch of opens of this loop turn: one COMMIT for all of them, then their records go
 * to the pool together (where they share an fdatasync). Runs from the loop's check phase
 * (after every ready socket was read), and before any other request or timer touches the
 * store.
 */
static void batch_done(ch_event_pending_t *p, int rc)
{
    open_job_t *j = p->ud;
    if (rc == 0) {
        open_queue(j->ctx.api, j);
    } else {
        ch_api__reply_error(&j->ctx, 500, "internal", NULL, "the store failed");
        ch_event_pending_free(j->p);
        ch_free(j);
    }
}

void ch_api__flush_events(ch_api_t *api)
{
    if (ch_event_in_batch(api->svc.events)) {
        (void)ch_event_batch_end(api->svc.events, batch_done); /* each open is answered */
    }
}

static void on_check(uv_check_t *h)
{
    ch_api__flush_events(h->data);
}

/* Opens (b checked): the open joins the engine's batch of this loop turn, which
 * ch_api__flush_events commits and hands back to be recorded. */
static void open_start(api_ctx_t *c, const ch_event_actor_t *who, const open_body_t *b)
{
    ch_api_t *api = c->api;
    ch_fault_t err;
    memset(&err, 0, sizeof(err));
    if (api->check == NULL) {
        /* Made on the first open; closed by ch_api_close. */
        api->check = ch_calloc(1, sizeof(*api->check));
        uv_check_init(api->loop, api->check);
        api->check->data = api;
        uv_check_start(api->check, on_check);
    }
    if (ch_event_batch_begin(api->svc.events) != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
        return;
    }
    open_job_t *j = ch_calloc(1, sizeof(*j));
    j->ctx = *c;
    j->work.data = j;
    int rc = ch_event_open_begin(api->svc.events, who, &b->req, j, &j->p, &err);
    if (rc != 0) {
        ch_free(j);
        ch_api__reply_fault(c, &err);
    }
}

/* An open along a path whose cameras are being found on the thread pool (a path of thousands
 * of points takes up to a second: the loop does not wait for it). */
typedef struct path_job {
    uv_work_t work;
    api_ctx_t ctx;
    json_t *body; /* b's texts borrow from it */
    open_body_t b;
    ch_event_path_query_t *q;
} path_job_t;

static void path_job_free(void *job)
{
    path_job_t *j = job;
    ch_event_path_query_free(j->q);
    open_body_fini(&j->b);
    json_decref(j->body);
    ch_free(j);
}

static void path_work(uv_work_t *w)
{
    path_job_t *j = w->data;
    ch_event_path_query_run(j->q);
}

static void path_done(uv_work_t *w, int status)
{
    path_job_t *j = w->data;
    if (job_back(j->ctx.api, path_job_free, j)) {
        return;
    }
    if (status == UV_ECANCELED) {
        ch_event_path_query_run(j->q); /* not run: here, then */
    }
    api_ctx_t *c = &j->ctx;
    ch_event_actor_t who = {c->who.actor, event_role(c->who.role), c->who.agency_id};
    j->b.req.path_cameras = j->q;
    open_start(c, &who, &j->b); /* decides again: the services may have been reloaded */
    path_job_free(j);
}

static void open_event(api_ctx_t *c, const ch_event_actor_t *who, json_t *body)
{
    ch_api_t *api = c->api;
    ch_fault_t err;
    open_body_t b;
    ch_event_path_query_t *q = NULL;
    memset(&err, 0, sizeof(err));
    if (ch_event_may(who, CH_EVENT_OP_OPEN, &err) != 0) {
        ch_api__reply_fault(c, &err);
        return;
    }
    if (open_request(body, &b, &err) != 0) {
        (void)ch_event_open_refused(api->svc.events, who, &err); /* on the record too */
        open_body_fini(&b);
        ch_api__reply_fault(c, &err);
        return;
    }
    if (!b.req.located && ch_event_open_prepare(api->svc.events, who, &b.req, &q, &err) != 0) {
        open_body_fini(&b);
        ch_api__reply_fault(c, &err);
        return;
    }
    if (q == NULL) {
        open_start(c, who, &b);
        open_body_fini(&b);
        return;
    }
    path_job_t *j = ch_calloc(1, sizeof(*j));
    j->ctx = *c;
    j->body = json_incref(body);
    j->b = b;
    j->b.req.path = &j->b.line; /* pointed into b */
    j->q = q;
    j->work.data = j;
    api->in_flight++;
    if (uv_queue_work(api->loop, &j->work, path_work, path_done) != 0) {
        ch_event_path_query_run(q);
        path_done(&j->work, 0);
    }
}

/*
 * The operations on events other than opening run on the store worker (ch_api__store_write):
 * the request is made on the loop (who may, the body's shape, a snapshot of what the engine
 * reads), its store half runs on the worker's thread with the worker's handle (its reads, the
 * transaction, the audit record's fdatasync, the commit), and it is finished (the engine's live
 * map) and answered back on the loop, after the loop's feed has heard the commit (the gate and
 * the relay: a revocation cuts viewers as before). A busy worker answers 503 "busy" and
 * nothing of the request runs.
 */
static int event_work(ch_store_t *st, void *job)
{
    return ch_event_req_run(job, st);
}

static void event_done(api_ctx_t *c, void *job, int rc)
{
    ch_event_req_t *req = job;
    (void)rc; /* the request keeps its own outcome */
    if (c == NULL) {
        ch_event_req_free(req); /* not run (busy), or the API is going: nobody to answer */
        return;
    }
    ch_event_answer_t a;
    ch_fault_t err;
    memset(&err, 0, sizeof(err));
    rc = ch_event_req_finish(c->api->svc.events, req, &a, &err);
    switch (ch_event_req_kind(req)) {
    case CH_EVENT_REQ_LIST:
        if (rc == 0) {
            /* The engine pages by id; clients get the API's opaque cursor. */
            ch_api__reply_page(c, ch_api__event_items_json(&a.page), a.page.total,
                               a.page.next_after);
        } else {
            ch_api__reply_fault(c, &err);
        }
        break;
    case CH_EVENT_REQ_REVOKE_GRANT:
        reply_json(c, rc, 200, rc == 0 ? ch_api__grant_json(&a.grant) : NULL, &err);
        break;
    default:
        reply_json(c, rc, 200, rc == 0 ? ch_api__event_json(&a.event) : NULL, &err);
        break;
    }
    ch_event_answer_fini(&a);
    ch_event_req_free(req);
}

/* Makes the request (a refusal answered at once) and sends it to the worker. */
static void event_start(api_ctx_t *c, const ch_event_actor_t *who, const ch_event_req_args_t *args)
{
    ch_event_req_t *req;
    ch_fault_t err;
    memset(&err, 0, sizeof(err));
    if (ch_event_req_new(c->api->svc.events, who, args, &req, &err) != 0) {
        ch_api__reply_fault(c, &err);
        return;
    }
    ch_api__store_write(c, event_work, NULL, event_done, req);
}

void ch_api__handle_events(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id_text)
{
    ch_event_actor_t who = {c->who.actor, event_role(c->who.role), c->who.agency_id};
    ch_fault_t err;
    ch_event_req_args_t args;
    json_t *body = NULL;
    int64_t id = 0;
    int rc = CH_EINVAL;
    memset(&err, 0, sizeof(err));
    memset(&args, 0, sizeof(args));

    if (route == CH_API__R_EVENTS_LIST) {
        ch_store_filter_t f;
        ch_api__query_t q;
        if (list_filter(c, &f, &q) == 0) {
            args.kind = CH_EVENT_REQ_LIST;
            args.list = &f;
            event_start(c, &who, &args); /* the filter is copied */
        }
        ch_api__query_fini(&q);
        return;
    }
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    if (route != CH_API__R_EVENTS_OPEN && ch_api__parse_id(id_text, &id) != 0) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such record");
        return;
    }
    /* Bodies: required to open and move; optional ({} or none) for the others. */
    if (route != CH_API__R_EVENTS_GET && (c->req->body_len > 0 || route == CH_API__R_EVENTS_OPEN ||
                                          route == CH_API__R_EVENTS_MOVE)) {
        body = ch_api__read_body(c);
        if (body == NULL) {
            return;
        }
    }
    args.id = id;
    switch (route) {
    case CH_API__R_EVENTS_OPEN:
        open_event(c, &who, body); /* answers by itself, later */
        json_decref(body);
        return;
    case CH_API__R_EVENTS_GET:
        args.kind = CH_EVENT_REQ_GET;
        rc = 0;
        break;
    case CH_API__R_EVENTS_APPROVE:
    case CH_API__R_EVENTS_DENY:
        /* Who may decide is checked before the body. */
        args.kind = CH_EVENT_REQ_DECIDE;
        args.approve = route == CH_API__R_EVENTS_APPROVE;
        if ((rc = ch_event_may(&who, CH_EVENT_OP_DECIDE, &err)) == 0) {
            rc = text_request(body, "note", &args.text, &err);
        }
        break;
    case CH_API__R_EVENTS_EXTEND: {
        static const char *const keys[] = {"duration_s", NULL};
        args.kind = CH_EVENT_REQ_EXTEND;
        rc = 0;
        if (body != NULL && (rc = check_keys(body, keys, &err)) == 0) {
            rc = opt_duration(body, &args.duration_s, &err);
        }
        break;
    }
    case CH_API__R_EVENTS_CLOSE:
    case CH_API__R_EVENTS_REVOKE:
        args.kind = route == CH_API__R_EVENTS_CLOSE ? CH_EVENT_REQ_CLOSE : CH_EVENT_REQ_REVOKE;
        rc = text_request(body, "reason", &args.text, &err);
        break;
    case CH_API__R_EVENTS_MOVE:
        /* Who may move is checked before the body. */
        args.kind = CH_EVENT_REQ_MOVE;
        if ((rc = ch_event_may(&who, CH_EVENT_OP_MOVE, &err)) == 0) {
            rc = parse_point(body, "position", &args.lat, &args.lon, &err);
        }
        break;
    case CH_API__R_GRANTS_REVOKE:
        args.kind = CH_EVENT_REQ_REVOKE_GRANT;
        rc = text_request(body, "reason", &args.text, &err);
        break;
    default:
        ch_fault_set(&err, CH_EINVAL, CH_FAULT_INTERNAL, NULL, NULL, "no such operation");
        break;
    }
    if (rc != 0) {
        ch_api__reply_fault(c, &err);
    } else {
        event_start(c, &who, &args); /* the text is copied: the body may go */
    }
    json_decref(body);
}

/* GET /api/v1/ledger: the whole audit log is folded, and the recipients' names read, on the
 * store worker; the services are named, and the answer sent, back on the loop. */
typedef struct ledger_read {
    ch_audit_t *audit;
    ch_event_ledger_filter_t f;
    int csv;
    json_t *ledger;
} ledger_read_t;

static int ledger_work(ch_store_t *st, void *job)
{
    ledger_read_t *l = job;
    return ch_event_ledger_read(l->audit, st, &l->f, &l->ledger);
}

static void ledger_done(api_ctx_t *c, void *job, int rc)
{
    ledger_read_t *l = job;
    json_t *ledger = l->ledger;
    int csv = l->csv;
    ch_free(l);
    if (c == NULL) {
        json_decref(ledger);
        return;
    }
    if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the audit log could not be read");
        return;
    }
    ch_event_ledger_name_services(ledger, *c->api->svc.policy);
    if (!csv) {
        ch_api__reply_json(c, 200, NULL, ledger);
        return;
    }
    size_t len = 0;
    char *text = ch_event_ledger_csv(ledger, &len);
    json_decref(ledger);
    ch_api__reply(c, 200, "text/csv; charset=utf-8",
                  "Content-Disposition: attachment; filename=\"cctvhub-ledger.csv\"\r\n", text,
                  len);
    ch_free(text);
}

/* GET /api/v1/ledger: from, to (RFC 3339), agency_id, event_id, camera_id, format (json, csv). */
void ch_api__handle_ledger(api_ctx_t *c)
{
    static const char *const formats[] = {"json", "csv", NULL};
    ch_api__query_t q;
    ch_event_ledger_filter_t f;
    const char *format = "json";
    memset(&f, 0, sizeof(f));
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_TIME("from", &f.from_ns)},
        {CH_API__QP_TIME("to", &f.to_ns)},
        {CH_API__QP_ID("agency_id", &f.agency_id)},
        {CH_API__QP_ID("event_id", &f.event_id)},
        {CH_API__QP_ID("camera_id", &f.camera_id)},
        {CH_API__QP_CHOICE("format", &format, formats)},
        {CH_API__QP_END},
    };
    int rc = ch_api__list_query(c, spec, &q);
    int csv = strcmp(format, "csv") == 0;
    ch_api__query_fini(&q);
    if (rc != 0) {
        return;
    }
    if (c->api->svc.audit == NULL) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "this hub keeps no audit log");
        return;
    }
    ledger_read_t *l = ch_calloc(1, sizeof(*l));
    l->audit = c->api->svc.audit;
    l->f = f;
    l->csv = csv;
    ch_api__store_read(c, ledger_work, ledger_done, l);
}
