/*
 * api/api.c: the handler. Routes a request (routes.c), converts bodies and queries (json.c,
 * query.c), calls the store on the loop, answers, and logs one line per request. Imports run
 * on the libuv thread pool with their own store handle.
 */
#include "api/api_internal.h"
#include "api/api_ctx.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "health/health.h"
#include "registry/registry.h"

#ifndef CH_VERSION
#define CH_VERSION "0.0.0"
#endif
#ifndef CH_GIT_REV
#define CH_GIT_REV "unknown"
#endif

/* The document compiled in from docs/openapi.yaml (cmake/embed.cmake). */
extern const unsigned char ch_api_openapi_doc[];
extern const size_t ch_api_openapi_doc_len;

#define DEFAULT_MAX_IMPORT_BYTES ((size_t)256 * 1024 * 1024)
#define JSON_TYPE                "application/json"
/* Twelve significant digits keep coordinates to well under a metre without printing the
 * binary noise of %.17g ("37.566499999999998"). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

/* ---- answering and logging ---------------------------------------------------------------- */

/* Appends at most max bytes of s as a logfmt value. */
static void log_append_slice(ch_buf_t *b, ch_slice_t s, size_t max)
{
    char tmp[257];
    size_t n = s.len < max ? s.len : max;
    if (n > sizeof(tmp) - 1) {
        n = sizeof(tmp) - 1;
    }
    memcpy(tmp, s.ptr, n);
    tmp[n] = '\0';
    ch_log_quote(b, tmp);
}

/*
 * Logs the access line of a request. Only method, path (never the query: it may carry a
 * search text or, some day, a token), status and duration are written; bodies never are.
 * Must run before ch_http_respond(), which invalidates req.
 */
static void log_request(const api_ctx_t *c, int status, uint64_t now_ns)
{
    if (c->log_level < ch_log_get_level()) {
        return;
    }
    double ms = (double)(now_ns - c->t0_ns) / 1e6;
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, "method=");
    log_append_slice(&b, c->req->method, 16);
    ch_buf_append_str(&b, " path=");
    log_append_slice(&b, c->req->path, 256);
    ch_log(c->log_level, "api", "msg=request %s status=%d duration_ms=%.3f peer=%s", b.data, status,
           ms, c->req->peer);
    ch_buf_fini(&b);
}

void ch_api__reply(api_ctx_t *c, int status, const char *content_type, const char *extra_headers,
                   const void *body, size_t len)
{
    /* One clock read serves the metrics and the access line. */
    uint64_t now = ch_time_mono_ns();
    ch_api__count_request(c, status, now);
    log_request(c, status, now);
    ch_http_respond(c->req, status, content_type, extra_headers, body, len);
}

/* Answers j (the reference is taken) as JSON with status. */
void ch_api__reply_json(api_ctx_t *c, int status, const char *extra_headers, json_t *j)
{
    char *text = json_dumps(j, DUMP_FLAGS);
    json_decref(j);
    if (text == NULL) {
        static const char oops[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the answer\"}}";
        ch_api__reply(c, 500, JSON_TYPE, NULL, oops, sizeof(oops) - 1);
        return;
    }
    ch_api__reply(c, status, JSON_TYPE, extra_headers, text, strlen(text));
    free(text);
}

void ch_api__reply_err(api_ctx_t *c, const ch_api__err_t *e, const char *extra_headers)
{
    ch_api__reply_json(c, e->status, extra_headers, ch_api__err_to_json(e));
}

void ch_api__reply_error(api_ctx_t *c, int status, const char *code, const char *field,
                         const char *message)
{
    ch_api__err_t e;
    ch_api__err_set(&e, status, code, field, "%s", message);
    ch_api__reply_err(c, &e, NULL);
}

/* ---- request helpers ---------------------------------------------------------------------- */

/* 1 when the request says its body is JSON ("application/json", any parameters, any case;
 * "application/merge-patch+json" too, for PATCH). */
static int is_json_body(const ch_http_request_t *req)
{
    const ch_slice_t *ct = ch_http_request_header(req, "Content-Type");
    if (ct == NULL) {
        return 0;
    }
    size_t n = ct->len;
    const char *semi = memchr(ct->ptr, ';', n);
    if (semi != NULL) {
        n = (size_t)(semi - ct->ptr);
    }
    while (n > 0 && (ct->ptr[n - 1] == ' ' || ct->ptr[n - 1] == '\t')) {
        n--;
    }
    ch_slice_t type = {ct->ptr, n};
    return ch_slice_eq_nocase(type, "application/json") ||
           ch_slice_eq_nocase(type, "application/merge-patch+json");
}

/* Reads the JSON object body of req; NULL after answering the error. */
json_t *ch_api__read_body(api_ctx_t *c)
{
    if (!is_json_body(c->req)) {
        ch_api__reply_error(c, 415, "unsupported_media_type", NULL,
                            "send the body as Content-Type: application/json");
        return NULL;
    }
    ch_api__err_t e;
    json_t *body = ch_api__parse_body(c->req->body, c->req->body_len, &e);
    if (body == NULL) {
        ch_api__reply_err(c, &e, NULL);
    }
    return body;
}

/* Requests without a query take no parameters: a typo such as ?limt=5 should not be ignored. */
int ch_api__reject_query(api_ctx_t *c)
{
    if (c->req->query.len == 0) {
        return 0;
    }
    ch_api__reply_error(c, 400, "invalid", "query", "this endpoint takes no query parameters");
    return -1;
}

/*
 * The prologue of every list: reads the query against spec (ch_api__query_read) or answers
 * its 400. 0, or -1 after answering (q then holds nothing). The caller calls
 * ch_api__query_fini(q) either way, once done with the strings the destinations borrow.
 */
int ch_api__list_query(api_ctx_t *c, const ch_api__qparam_t *spec, ch_api__query_t *q)
{
    ch_api__err_t e;
    if (ch_api__query_read(c->req->query, spec, q, &e) != 0) {
        ch_api__query_fini(q);
        ch_api__reply_err(c, &e, NULL);
        return -1;
    }
    return 0;
}

/* ---- resources: the registry's records as JSON -------------------------------------------- */

/* The JSON side of one record type; its changes are the registry's use cases (registry.h). */
typedef struct api_resource {
    const char *singular; /* "agency", for messages */
    const char *collection;
    ch_registry_kind_t kind;
    int (*from_json)(const json_t *body, ch_registry_record_t *r, ch_api__err_t *err);
    /* Appends the matches of f to items; sets total and the next page's after_id (0: none). */
    int (*list)(ch_store_t *st, const ch_store_filter_t *f, json_t *items, int64_t *total,
                int64_t *next);
} api_resource_t;

/* Generates the adapters from the typed calls to the table's signatures. */
#define RESOURCE_ADAPTERS(T, prefix)                                                               \
    static int prefix##_from_json(const json_t *b, ch_registry_record_t *r, ch_api__err_t *e)      \
    {                                                                                              \
        return ch_api__##prefix##_from_json(b, &r->prefix, e);                                     \
    }                                                                                              \
    static int prefix##_list(ch_store_t *st, const ch_store_filter_t *f, json_t *items,            \
                             int64_t *total, int64_t *next)                                        \
    {                                                                                              \
        T##_list_t l;                                                                              \
        memset(&l, 0, sizeof(l));                                                                  \
        int rc = ch_store_##prefix##_list(st, f, &l);                                              \
        if (rc == 0) {                                                                             \
            for (size_t i = 0; i < l.count; i++) {                                                 \
                json_array_append_new(items, ch_api__##prefix##_to_json(&l.items[i]));             \
            }                                                                                      \
            *total = l.total;                                                                      \
            *next = l.next_id;                                                                     \
        }                                                                                          \
        ch_##prefix##_list_free(&l);                                                               \
        return rc;                                                                                 \
    }

RESOURCE_ADAPTERS(ch_agency, agency)
RESOURCE_ADAPTERS(ch_camera, camera)
RESOURCE_ADAPTERS(ch_device, device)

/* Indexed by ch_api__resource_t, whose values are ch_registry_kind_t's. */
static const api_resource_t resources[] = {
    {"agency", "agencies", CH_REGISTRY_AGENCY, agency_from_json, agency_list},
    {"camera", "cameras", CH_REGISTRY_CAMERA, camera_from_json, camera_list},
    {"device", "devices", CH_REGISTRY_DEVICE, device_from_json, device_list},
};

/* ---- registry changes: JSON to a typed request, the use case, a fault to an answer -------- */

/* Parses the {id} of the path; answers 404 (a malformed id names no record) when it is bad. */
static int path_id(api_ctx_t *c, const api_resource_t *res, ch_slice_t s, int64_t *id)
{
    if (ch_api__parse_id(s, id) == 0) {
        return 0;
    }
    ch_api__err_t e;
    ch_api__err_set(&e, 404, "not_found", NULL, "no such %s", res->singular);
    ch_api__reply_err(c, &e, NULL);
    return -1;
}

static void reply_record(api_ctx_t *c, const api_resource_t *res, int status,
                         const ch_registry_record_t *r)
{
    char location[128];
    const char *extra = NULL;
    if (status == 201) {
        int64_t id = res->kind == CH_REGISTRY_AGENCY   ? r->agency.id
                     : res->kind == CH_REGISTRY_CAMERA ? r->camera.id
                                                       : r->device.id;
        snprintf(location, sizeof(location), "Location: /api/v1/%s/%" PRId64 "\r\n",
                 res->collection, id);
        extra = location;
    }
    ch_api__reply_json(c, status, extra, ch_registry_record_to_json(res->kind, r));
}

/* A list of agencies, cameras or devices: parsed here, read on the store worker (a filtered
 * page and its total are the heaviest registry reads), answered in list_done. */
typedef struct list_read {
    const api_resource_t *res;
    ch_api__query_t q; /* f's strings point into it */
    ch_store_filter_t f;
    json_t *items;
    int64_t total, next;
} list_read_t;

static int list_work(ch_store_t *st, void *job)
{
    list_read_t *l = job;
    return l->res->list(st, &l->f, l->items, &l->total, &l->next);
}

static void list_done(api_ctx_t *c, void *job, int rc)
{
    list_read_t *l = job;
    ch_api__query_fini(&l->q);
    if (c == NULL || rc != 0) {
        json_decref(l->items);
    }
    if (c != NULL && rc != 0) {
        ch_fault_t fault;
        (void)ch_registry_store_fault(c->api->svc.registry, l->res->kind, rc, 0, &fault);
        ch_api__reply_fault(c, &fault);
    } else if (c != NULL) {
        ch_api__reply_page(c, l->items, l->total, l->next);
    }
    ch_free(l);
}

static void handle_list(api_ctx_t *c, const api_resource_t *res, ch_api__resource_t which)
{
    list_read_t *l = ch_calloc(1, sizeof(*l));
    ch_api__err_t e;
    if (ch_api__query_parse(c->req->query, &l->q, &e) != 0 ||
        ch_api__filter_from_query(&l->q, which, &l->f, &e) != 0) {
        ch_api__reply_err(c, &e, NULL);
        ch_api__query_fini(&l->q);
        ch_free(l);
        return;
    }
    l->res = res;
    l->items = json_array();
    ch_api__store_read(c, list_work, list_done, l);
}

void ch_api__reply_page(api_ctx_t *c, json_t *items, int64_t total, int64_t next)
{
    json_t *o = json_object();
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "total", json_integer(total));
    if (next > 0) {
        char cursor[CH_API__CURSOR_MAX];
        ch_api__cursor_encode(next, cursor);
        json_object_set_new(o, "next", json_string(cursor));
    } else {
        json_object_set_new(o, "next", json_null());
    }
    ch_api__reply_json(c, 200, NULL, o);
}

/* ---- audit -------------------------------------------------------------------------------- */

/* The actor of a request: its principal, or the peer on a public route. */
static void request_actor(const api_ctx_t *c, char out[96])
{
    if (c->who.kind != CH_AUTH_NONE) {
        snprintf(out, 96, "%s", c->who.actor);
    } else {
        snprintf(out, 96, "http:%s", c->req->peer);
    }
}

static int api_audit(api_ctx_t *c, const char *actor, const char *action, const char *object,
                     const char *outcome, json_t *details, int ending)
{
    if (c->api->svc.audit == NULL) {
        json_decref(details);
        return 0;
    }
    char who[96];
    if (actor == NULL) {
        request_actor(c, who);
        actor = who;
    }
    ch_audit_entry_t e = {
        .actor = actor, .action = action, .object = object, .outcome = outcome, .details = details};
    int rc = ending ? ch_audit_append_ending(c->api->svc.audit, &e, NULL)
                    : ch_audit_append(c->api->svc.audit, &e, NULL);
    json_decref(details);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "api", "msg=\"audit append failed\" action=%s rc=%d error=\"%s\"",
               action, rc, ch_strerror(rc));
    }
    return rc;
}

int ch_api__audit(api_ctx_t *c, const char *actor, const char *action, const char *object,
                  const char *outcome, json_t *details)
{
    return api_audit(c, actor, action, object, outcome, details, 0);
}

int ch_api__audit_ending(api_ctx_t *c, const char *actor, const char *action, const char *object,
                         const char *outcome, json_t *details)
{
    return api_audit(c, actor, action, object, outcome, details, 1);
}

int ch_api__audit_refusal(api_ctx_t *c, const char *action, int status, json_t *details)
{
    if (c->api->svc.audit == NULL) {
        json_decref(details);
        return 0;
    }
    /* Who was refused: the principal, else "anonymous" (details name the address; a
     * per-connection actor would make every try a new one to count). */
    const char *who = c->who.kind != CH_AUTH_NONE ? c->who.actor : "anonymous";
    ch_audit_entry_t e = {.actor = who, .action = action, .outcome = "denied", .details = details};
    int rc = ch_audit_refusal(c->api->svc.audit, c->req->peer, status, &e);
    json_decref(details);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "api", "msg=\"audit append failed\" action=%s rc=%d error=\"%s\"",
               action, rc, ch_strerror(rc));
    }
    return rc;
}

/* The registry's recorder for a request: its principal is the actor. */
static int record_change(void *data, const char *action, const char *object, const char *outcome,
                         json_t *details)
{
    return ch_api__audit(data, NULL, action, object, outcome, details);
}

/* The actor and recorder of a request's change. */
static void change_actor(api_ctx_t *c, ch_registry_actor_t *who, ch_registry_recorder_t *rec)
{
    who->name = c->who.actor;
    who->scope = c->who.role == CH_AUTH_PROVIDER ? CH_IMPORT_OWN_AGENCY : CH_IMPORT_ANY_AGENCY;
    who->agency_id = c->who.agency_id;
    rec->record = record_change;
    rec->data = c;
}

/* The edit of an update: the body read over the stored record (PUT), or merged into the
 * record's own JSON first (PATCH, RFC 7396 at the top level) and then read exactly as PUT
 * would, so the two cannot disagree on what is valid. Both start from the stored record, so
 * fields the server owns (import source, flags) and credentials the client was never shown
 * survive. It runs with the use case, on the store worker's thread: it uses only its own. */
typedef struct api_edit {
    const api_resource_t *res;
    const json_t *body;
    int patch;
    int refused; /* the body was refused: answer err as json.c filled it */
    ch_api__err_t err;
} api_edit_t;

static int edit_from_body(void *ud, ch_registry_record_t *r, ch_fault_t *f)
{
    const api_edit_t *ed = ud;
    json_t *merged = NULL;
    const json_t *input = ed->body;
    if (ed->patch) {
        merged = ch_registry_record_to_json(ed->res->kind, r);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)ed->body, key, v)
        {
            json_object_set(merged, key, v);
        }
        input = merged;
    }
    api_edit_t *out = ud;
    int rc = ed->res->from_json(input, r, &out->err);
    json_decref(merged);
    if (rc != 0) {
        out->refused = 1;
        return ch_fault_set(f, rc, CH_FAULT_INVALID, NULL, NULL, "the body was refused");
    }
    return 0;
}

/*
 * One request of the registry on the store worker (ch_api__store_write), a change or a read of
 * one record: the request's own copy of the context (the recorder's actor and address), the
 * use case's request, and for an update the body and its edit. The answer is sent when the
 * transaction and its audit record are done; a client gone meanwhile gets nothing, the change is
 * made and recorded all the same.
 */
typedef struct api_change {
    api_ctx_t ctx; /* the recorder's: read on the worker's thread, never changed */
    const api_resource_t *res;
    ch_registry_req_t q;
    json_t *body; /* an update's */
    api_edit_t ed;
} api_change_t;

static api_change_t *change_new(api_ctx_t *c, const api_resource_t *res, ch_registry_verb_t verb)
{
    api_change_t *ch = ch_calloc(1, sizeof(*ch));
    ch->ctx = *c;
    ch->res = res;
    ch_registry_actor_t who;
    ch_registry_recorder_t rec;
    change_actor(&ch->ctx, &who, &rec);
    ch_registry_req_init(&ch->q, c->api->svc.registry, verb, res->kind, &who, &rec);
    return ch;
}

static int change_work(ch_store_t *st, void *job)
{
    return ch_registry_req_work(st, &((api_change_t *)job)->q);
}

static void change_telling(void *job, int rc)
{
    ch_registry_req_telling(&((api_change_t *)job)->q, rc);
}

static void change_done(api_ctx_t *c, void *job, int rc)
{
    api_change_t *ch = job;
    ch_registry_req_told(&ch->q);
    if (c == NULL) {
        /* Nobody to answer (a full worker answered busy, or the API is being freed). */
    } else if (rc != 0 && ch->ed.refused) {
        ch_api__reply_err(c, &ch->ed.err, NULL);
    } else if (rc != 0) {
        ch_api__reply_fault(c, &ch->q.fault);
    } else if (ch->q.verb == CH_REGISTRY_DELETE) {
        ch_api__reply(c, 204, NULL, NULL, NULL, 0);
    } else {
        reply_record(c, ch->res, ch->q.verb == CH_REGISTRY_CREATE ? 201 : 200, &ch->q.rec);
    }
    ch_registry_req_fini(&ch->q);
    json_decref(ch->body);
    ch_free(ch);
}

static void change_start(api_ctx_t *c, api_change_t *ch)
{
    ch_api__store_write(c, change_work, change_telling, change_done, ch);
}

static void handle_create(api_ctx_t *c, const api_resource_t *res)
{
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    json_t *body = ch_api__read_body(c);
    if (body == NULL) {
        return;
    }
    api_change_t *ch = change_new(c, res, CH_REGISTRY_CREATE);
    ch_api__err_t e;
    int rc = res->from_json(body, &ch->q.rec, &e); /* no store needed: on the loop */
    json_decref(body);
    if (rc != 0) {
        ch_api__reply_err(c, &e, NULL);
        change_done(NULL, ch, rc);
        return;
    }
    change_start(c, ch);
}

/* GET or DELETE of one record: all they need is its id. */
static void handle_by_id(api_ctx_t *c, const api_resource_t *res, ch_slice_t id_text,
                         ch_registry_verb_t verb)
{
    int64_t id;
    if (ch_api__reject_query(c) != 0 || path_id(c, res, id_text, &id) != 0) {
        return;
    }
    api_change_t *ch = change_new(c, res, verb);
    ch->q.id = id;
    change_start(c, ch);
}

static void handle_update(api_ctx_t *c, const api_resource_t *res, ch_slice_t id_text, int patch)
{
    int64_t id;
    if (ch_api__reject_query(c) != 0 || path_id(c, res, id_text, &id) != 0) {
        return;
    }
    json_t *body = ch_api__read_body(c);
    if (body == NULL) {
        return;
    }
    json_t *body_id = json_object_get(body, "id");
    if (body_id != NULL && !(json_is_integer(body_id) && json_integer_value(body_id) == id)) {
        ch_api__reply_error(c, 400, "invalid", "id", "id in the body differs from the path");
        json_decref(body);
        return;
    }
    api_change_t *ch = change_new(c, res, CH_REGISTRY_UPDATE);
    ch->body = body;
    ch->ed = (api_edit_t){.res = res, .body = body, .patch = patch};
    ch->q.id = id;
    ch->q.update = (ch_registry_update_t){
        .kind = res->kind,
        .id = id,
        .edit = edit_from_body,
        .edit_ud = &ch->ed,
        .rtsp_username_given = json_object_get(body, "rtsp_username") != NULL,
        .rtsp_password_given = json_object_get(body, "rtsp_password") != NULL,
    };
    change_start(c, ch);
}

/* ---- health, version, document ------------------------------------------------------------ */

/* Answers /health from a body rebuilt at most once a second: no store call, no allocation. */
static void handle_health(api_ctx_t *c)
{
    ch_api_t *api = c->api;
    int64_t now_ms = ch_time_now_ms();
    int64_t sec = now_ms / 1000;
    if (sec != api->health_sec || api->in_flight != api->health_in_flight || api->health_len == 0) {
        /* The audit log's state: a full disk (or a failed one) refuses new decisions. */
        char why[200] = "";
        int degraded =
            api->svc.audit != NULL && ch_audit_status(api->svc.audit, why, sizeof(why)) != 0;
        int64_t uptime = (now_ms - api->started_at_ms) / 1000;
        int n = snprintf(api->health_body, sizeof(api->health_body),
                         "{\"status\":\"%s\",%s%s%s\"uptime_s\":%" PRId64
                         ",\"version\":\"%s\",\"imports_in_flight\":%zu}",
                         degraded ? "degraded" : "ok", degraded ? "\"reason\":\"" : "",
                         degraded ? why : "", degraded ? "\"," : "", uptime < 0 ? 0 : uptime,
                         CH_VERSION, api->in_flight);
        assert(n > 0 && (size_t)n < sizeof(api->health_body));
        api->health_len = (size_t)n;
        api->health_sec = sec;
        api->health_in_flight = api->in_flight;
    }
    ch_api__reply(c, 200, JSON_TYPE, NULL, api->health_body, api->health_len);
}

static void handle_version(api_ctx_t *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string("cctvhub"));
    json_object_set_new(o, "version", json_string(CH_VERSION));
    json_object_set_new(o, "git", json_string(CH_GIT_REV));
    json_object_set_new(o, "schema", json_integer(c->api->schema));
    ch_api__reply_json(c, 200, NULL, o);
}

static void handle_openapi(api_ctx_t *c)
{
    ch_api__reply(c, 200, "application/yaml", NULL, ch_api_openapi_doc, ch_api_openapi_doc_len);
}

/* ---- imports ------------------------------------------------------------------------------ */

/* One import on the thread pool. The request (and so its body) stays valid until answered. */
typedef struct api_import {
    uv_work_t work;
    api_ctx_t ctx;
    char *name;
    char *agency;
    ch_import_scope_t scope; /* a provider's import stays inside its own agency */
    int64_t own_agency_id;
    char actor[96];
    ch_registry_t *expecting; /* the registry told to expect the import's changes by actor */
    int rc;
    int status; /* the pool's: UV_ECANCELED when it never ran */
    int store_failed;
    int audit_failed;     /* the start could not be recorded: nothing imported */
    int audit_end_failed; /* imported, but the result could not be recorded */
    char *err;
    ch_import_report_t rep;
} api_import_t;

/* Runs on a pool thread: opens a store handle of its own (a handle is single-threaded) and
 * imports the body in one transaction; SQLite WAL lets the loop's handle keep reading. */
static void import_work(uv_work_t *w)
{
    api_import_t *im = w->data;
    ch_audit_t *audit = im->ctx.api->svc.audit;
    ch_store_t *st = NULL;
    char object[300];
    snprintf(object, sizeof(object), "import:%s", im->name);
    /* The attempt is on the record before any change, its result after: an import the record
     * does not announce never starts. */
    if (audit != NULL) {
        json_t *d = json_pack("{s:s, s:s?, s:I}", "file", im->name, "agency", im->agency, "bytes",
                              (json_int_t)im->ctx.req->body_len);
        ch_audit_entry_t e = {.actor = im->actor,
                              .action = "import.start",
                              .object = object,
                              .outcome = "ok",
                              .details = d};
        int arc = ch_audit_append(audit, &e, NULL);
        json_decref(d);
        if (arc != 0) {
            im->audit_failed = 1;
            return;
        }
    }
    int rc = ch_store_open(im->ctx.api->store_url, &st, &im->err);
    if (rc != 0) {
        im->store_failed = 1;
        im->rc = rc;
        return;
    }
    ch_import_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.agency = im->agency;
    opt.scope = im->scope;
    opt.own_agency_id = im->own_agency_id;
    im->rc = ch_registry_import_buffer(st, im->name, im->ctx.req->body, im->ctx.req->body_len, &opt,
                                       &im->rep, &im->err);
    ch_store_close(st);
    if (audit != NULL) {
        json_t *d = ch_import_report_to_audit_json(&im->rep);
        ch_audit_entry_t e = {.actor = im->actor,
                              .action = "import",
                              .object = object,
                              .outcome = im->rc == 0          ? "ok"
                                         : im->rc == CH_EPERM ? "denied"
                                                              : "error",
                              .details = d};
        if (ch_audit_append(audit, &e, NULL) != 0) {
            im->audit_end_failed = 1;
        }
        json_decref(d);
    }
}

static void import_free(api_import_t *im)
{
    if (im->expecting != NULL) {
        ch_registry_unexpect(im->expecting, im->actor);
    }
    ch_import_report_fini(&im->rep);
    ch_free(im->err);
    ch_free(im->name);
    ch_free(im->agency);
    ch_free(im);
}

/* Answers 201 with the report, 403 when the import reached outside the caller's agency, 422
 * when the file was rejected, 500 when the store failed; once what follows the cameras' change
 * has followed it (the geo index holds the imported cameras). */
static void import_answer(void *ud)
{
    api_import_t *im = ud;
    ch_api_t *api = im->ctx.api;
    int status = im->status;
    api->in_flight--;
    if (api->freeing) {
        /* The API is gone as far as its owner knows; nobody is left to answer. */
        import_free(im);
        if (api->in_flight == 0) {
            ch_api_free(api);
        }
        return;
    }
    api_ctx_t *c = &im->ctx;
    if (im->audit_failed) {
        ch_api__reply_error(c, 503, "audit_unavailable", NULL,
                            "the change was not made: it could not be put on the audit record");
    } else if (im->audit_end_failed) {
        ch_log(CH_LOG_ERROR, "api",
               "msg=\"import done but its result is not on the audit record\"");
        ch_api__reply_error(
            c, 503, "audit_unavailable", NULL,
            "the import ran (its start is on the audit record) but its result could not "
            "be recorded; the hub takes no more changes until the audit log is repaired");
    } else if (status == UV_ECANCELED) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "the import was cancelled; try again");
    } else if (im->store_failed || im->rc == CH_EDB || im->rc == CH_ENOMEM) {
        ch_log(CH_LOG_ERROR, "api", "msg=\"import failed\" rc=%d", im->rc);
        ch_api__reply_error(c, 500, "internal", NULL,
                            im->store_failed ? "the database could not be opened"
                                             : "the import failed");
    } else if (im->rc == CH_EPERM) {
        ch_api__err_t e;
        ch_api__err_set(&e, 403, "forbidden", "agency", "%s",
                        im->err ? im->err : "a provider imports into its own agency only");
        ch_api__reply_err(c, &e, NULL);
    } else if (im->rc != 0) {
        ch_api__err_t e;
        ch_api__err_set(&e, 422, "import_rejected", NULL, "%s",
                        im->err ? im->err : ch_strerror(im->rc));
        json_t *o = ch_api__err_to_json(&e);
        json_object_set_new(o, "report", ch_import_report_to_json(&im->rep));
        ch_api__reply_json(c, 422, NULL, o);
    } else {
        ch_api__reply_json(c, 201, NULL, ch_import_report_to_json(&im->rep));
    }
    import_free(im);
}

/* Back on the loop. The import's handle published its changes to the store's feed: the
 * registry reads them now, and the hub's followers hear them as any other change (the geo index
 * places the cameras or reloads, health rescans; a re-import's cameras taken out of service, a
 * D row inactive or a row without a position unlocated, lose their grants as when an operator
 * changes a camera); the answer waits until they have followed. */
static void import_done(uv_work_t *w, int status)
{
    api_import_t *im = w->data;
    ch_api_t *api = im->ctx.api;
    im->status = status;
    if (api->freeing || im->rc != 0 || im->rep.cameras_created + im->rep.cameras_updated == 0) {
        import_answer(im);
        return;
    }
    ch_api__flush_events(api); /* grants end outside the batch of opens */
    ch_registry_follow(api->svc.registry, im->actor, import_answer, im);
}

static void handle_import(api_ctx_t *c)
{
    ch_api_t *api = c->api;
    ch_api__query_t q;
    ch_api__err_t e;
    if (ch_api__query_parse(c->req->query, &q, &e) != 0) {
        ch_api__reply_err(c, &e, NULL);
        goto out;
    }
    for (size_t i = 0; i < q.count; i++) {
        if (strcmp(q.items[i].name, "agency") != 0 && strcmp(q.items[i].name, "name") != 0) {
            ch_api__err_set(&e, 400, "invalid", q.items[i].name, "unknown query parameter");
            ch_api__reply_err(c, &e, NULL);
            goto out;
        }
    }
    const char *name = ch_api__query_get(&q, "name");
    const char *agency = ch_api__query_get(&q, "agency");
    if (name != NULL && (name[0] == '\0' || strlen(name) > 255 || strchr(name, '/') != NULL)) {
        ch_api__reply_error(c, 400, "invalid", "name", "name must be a file name of 1..255 bytes");
        goto out;
    }
    if (agency != NULL && (agency[0] == '\0' || strlen(agency) > 256)) {
        ch_api__reply_error(c, 400, "invalid", "agency",
                            "agency must be an agency name of 1..256 bytes");
        goto out;
    }
    if (c->req->body == NULL || c->req->body_len == 0) {
        ch_api__reply_error(c, 400, "invalid", NULL, "send the CSV file as the request body");
        goto out;
    }
    if (api->store_url == NULL) {
        ch_api__reply_error(c, 503, "unavailable", NULL,
                            "imports are not configured on this server");
        goto out;
    }
    api_import_t *im = ch_calloc(1, sizeof(*im));
    im->ctx = *c;
    im->name = ch_strdup(name ? name : "upload.csv");
    im->agency = ch_strdup(agency);
    /* The registry holds the rule; the API says whose import this is. Admins import for any
     * agency. */
    if (c->who.role == CH_AUTH_PROVIDER) {
        im->scope = CH_IMPORT_OWN_AGENCY;
        im->own_agency_id = c->who.agency_id;
    }
    request_actor(c, im->actor);
    ch_import_report_init(&im->rep);
    im->work.data = im;
    /* A poll before import_done's follow (the event tick's, a request's) may read the import's
     * changes first: they are still the caller's. */
    im->expecting = api->svc.registry;
    if (im->expecting != NULL) {
        ch_registry_expect(im->expecting, im->actor);
    }
    int rc = uv_queue_work(api->loop, &im->work, import_work, import_done);
    if (rc != 0) {
        import_free(im);
        ch_api__reply_error(c, 503, "unavailable", NULL, "the import could not be started");
        goto out;
    }
    api->in_flight++;
out:
    ch_api__query_fini(&q);
}

/* ---- geo ------------------------------------------------------------------------------------ */

/* One path, area or coverage request on the thread pool. The request stays valid until
 * answered; the job holds a reference to the index it was asked of. */
typedef struct api_geo_work {
    uv_work_t work;
    api_ctx_t ctx;
    ch_api__geo_job_t *job;
} api_geo_work_t;

static void geo_work(uv_work_t *w)
{
    api_geo_work_t *g = w->data;
    ch_api__geo_run(g->job);
}

static void geo_work_free(api_geo_work_t *g)
{
    ch_api__geo_job_free(g->job);
    ch_free(g);
}

static void geo_done(uv_work_t *w, int status)
{
    api_geo_work_t *g = w->data;
    ch_api_t *api = g->ctx.api;
    api->in_flight--;
    api->geo_jobs--;
    if (api->freeing) {
        geo_work_free(g);
        if (api->in_flight == 0) {
            ch_api_free(api);
        }
        return;
    }
    api_ctx_t *c = &g->ctx;
    char *text = NULL;
    ch_api__err_t e;
    if (status != UV_ECANCELED && ch_api__geo_mark(g->job, api->svc.health)) {
        /* The second pass: writing the answer, with the states read here. */
        if (uv_queue_work(api->loop, &g->work, geo_work, geo_done) == 0) {
            api->in_flight++;
            api->geo_jobs++;
            return;
        }
        ch_api__geo_run(g->job); /* the pool refused it: written here, then */
    }
    if (status == UV_ECANCELED) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "the query was cancelled; try again");
    } else if (ch_api__geo_finish(g->job, &text, &e) != 200) {
        ch_api__reply_err(c, &e, NULL);
    } else {
        ch_api__reply(c, 200, JSON_TYPE, NULL, text, strlen(text));
        free(text); /* json_dumps's */
    }
    geo_work_free(g);
}

static void handle_geo(api_ctx_t *c, ch_api__route_id_t route)
{
    ch_api_t *api = c->api;
    json_t *body = NULL;
    if (route != CH_API__R_GEO_NEAR) {
        /* Refused before the body is even parsed: the bound on heavy queries in flight. */
        if (api->geo_jobs >= CH_API__GEO_MAX_JOBS) {
            ch_api__err_t e;
            ch_api__err_set(&e, 503, "busy", NULL,
                            "%d path, area or coverage queries are running; try again shortly",
                            CH_API__GEO_MAX_JOBS);
            ch_api__reply_err(c, &e, "Retry-After: 1\r\n");
            return;
        }
        if ((body = ch_api__read_body(c)) == NULL) {
            return;
        }
    }
    json_t *json = NULL;
    ch_api__geo_job_t *job = NULL;
    ch_api__err_t e;
    int status = ch_api__geo_answer(*api->svc.geo, route, c->req->query, body, &json, &job, &e);
    json_decref(body);
    if (status == 202) {
        api_geo_work_t *g = ch_calloc(1, sizeof(*g));
        g->ctx = *c;
        g->job = job;
        g->work.data = g;
        if (uv_queue_work(api->loop, &g->work, geo_work, geo_done) != 0) {
            geo_work_free(g);
            ch_api__reply_error(c, 503, "unavailable", NULL, "the query could not be started");
            return;
        }
        api->in_flight++;
        api->geo_jobs++;
    } else if (status != 200) {
        ch_api__reply_err(c, &e, NULL);
    } else {
        ch_api__health_mark(api, json_object_get(json, "cameras"), "id");
        ch_api__reply_json(c, 200, NULL, json);
    }
}

/* ---- the handler -------------------------------------------------------------------------- */

/* GET /api/v1/cameras/{id}/live: not an upgrade is 426; an upgrade goes to the relay, which
 * checks the token, answers the handshake and sends the video. */
static void handle_live(api_ctx_t *c)
{
    const ch_slice_t *up = ch_http_request_header(c->req, "upgrade");
    if (up == NULL || !ch_slice_eq_nocase(*up, "websocket")) {
        ch_api__reply_error(c, 426, "upgrade_required", NULL,
                            "live video is a WebSocket: send Upgrade: websocket");
        return;
    }
    if (c->api->svc.live == NULL) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "the media relay is not running");
        return;
    }
    ch_buf_t raw;
    ch_buf_init(&raw);
    int fd = -1;
    char peer[64];
    snprintf(peer, sizeof(peer), "%s", c->req->peer);
    ch_net_tls_conn_t *tls = NULL;
    int rc = ch_http_hand_over(c->req, &fd, &raw, &tls);
    if (rc != 0) {
        ch_buf_fini(&raw);
        ch_api__reply_error(c, 503, "unavailable", NULL, "try again");
        return;
    }
    ch_api__count_request(c, 101, ch_time_mono_ns()); /* the relay answers the handshake */
    ch_log(CH_LOG_INFO, "api",
           "msg=request method=GET path=/api/v1/cameras/{id}/live status=101 "
           "handed_to=relay peer=%s",
           peer);
    c->api->svc.live(c->api->svc.live_ud, fd, raw.data, raw.len, tls);
    ch_buf_fini(&raw);
}

void ch_api_handle(ch_http_request_t *req, void *ud)
{
    ch_api_t *api = ud;
    api_ctx_t c = {api, req, ch_time_mono_ns(), CH_LOG_INFO, {0}, 0};
    ch_api__match_t m;
    int rc = ch_api__route_match(req->method, req->path, &m);
    if (rc == CH_ENOTFOUND) {
        ch_api__reply_error(&c, 404, "not_found", NULL, "no such path");
        return;
    }
    if (rc == CH_EUNSUPP) {
        char allow[96];
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", m.allow);
        ch_api__err_t e;
        ch_api__err_set(&e, 405, "method_not_allowed", NULL, "this path accepts %s", m.allow);
        ch_api__reply_err(&c, &e, allow);
        return;
    }
    c.route_slot = m.index + 1;
    if (m.route != CH_API__R_EVENTS_OPEN) {
        /* Everything else sees the store as committed, outside any batch of opens. */
        ch_api__flush_events(api);
    }
    /* A Prometheus server scrapes /metrics with metrics.token, not with an account. */
    int scraper = m.route == CH_API__R_METRICS && ch_api__metrics_token_ok(&c);
    if (!(m.roles & CH_AUTH_PUBLIC) && !scraper) {
        ch_api__authorize(&c, &m); /* which dispatches, at once or once the principal is read */
        return;
    }
    ch_api__dispatch(&c, &m);
}

void ch_api__dispatch(api_ctx_t *cp, const ch_api__match_t *mp)
{
    api_ctx_t c = *cp;
    const ch_api__match_t m = *mp;
    ch_api_t *api = c.api;
    if (m.route != CH_API__R_EVENTS_OPEN) {
        /* A request resumed after its principal was read: a batch may have opened meanwhile. */
        ch_api__flush_events(api);
    }
    const api_resource_t *res = &resources[m.resource];
    switch (m.route) {
    case CH_API__R_HEALTH:
        /* Polled by load balancers and the benchmark: logged at debug only. */
        c.log_level = CH_LOG_DEBUG;
        handle_health(&c);
        break;
    case CH_API__R_VERSION:
        handle_version(&c);
        break;
    case CH_API__R_OPENAPI:
        handle_openapi(&c);
        break;
    case CH_API__R_LIST:
        handle_list(&c, res, m.resource);
        break;
    case CH_API__R_CREATE:
        handle_create(&c, res);
        break;
    case CH_API__R_GET:
        handle_by_id(&c, res, m.id, CH_REGISTRY_GET);
        break;
    case CH_API__R_PUT:
        handle_update(&c, res, m.id, 0);
        break;
    case CH_API__R_PATCH:
        handle_update(&c, res, m.id, 1);
        break;
    case CH_API__R_DELETE:
        handle_by_id(&c, res, m.id, CH_REGISTRY_DELETE);
        break;
    case CH_API__R_IMPORT:
        handle_import(&c);
        break;
    case CH_API__R_AUDIT_LIST:
    case CH_API__R_AUDIT_CHECKPOINT:
    case CH_API__R_AUDIT_PROOF:
    case CH_API__R_AUDIT_CONSISTENCY:
        ch_api__handle_audit(&c, m.route);
        break;
    case CH_API__R_GEO_NEAR:
    case CH_API__R_GEO_PATH:
    case CH_API__R_GEO_AREA:
    case CH_API__R_GEO_COVERAGE:
        handle_geo(&c, m.route);
        break;
    case CH_API__R_SERVICES:
        if (ch_api__reject_query(&c) == 0) {
            ch_api__reply_json(&c, 200, NULL, ch_api__services_json(*api->svc.policy));
        }
        break;
    case CH_API__R_SESSION_LOGIN:
    case CH_API__R_SESSION_GET:
    case CH_API__R_SESSION_LOGOUT:
        ch_api__handle_session(&c, m.route);
        break;
    case CH_API__R_USERS_LIST:
    case CH_API__R_USERS_CREATE:
    case CH_API__R_USERS_GET:
    case CH_API__R_USERS_PATCH:
        ch_api__handle_users(&c, m.route, m.id);
        break;
    case CH_API__R_APIKEYS_LIST:
    case CH_API__R_APIKEYS_CREATE:
    case CH_API__R_APIKEYS_REVOKE:
        ch_api__handle_apikeys(&c, m.route, m.id);
        break;
    case CH_API__R_EVENTS_OPEN:
    case CH_API__R_EVENTS_LIST:
    case CH_API__R_EVENTS_GET:
    case CH_API__R_EVENTS_APPROVE:
    case CH_API__R_EVENTS_DENY:
    case CH_API__R_EVENTS_EXTEND:
    case CH_API__R_EVENTS_CLOSE:
    case CH_API__R_EVENTS_REVOKE:
    case CH_API__R_EVENTS_MOVE:
    case CH_API__R_GRANTS_REVOKE:
        ch_api__handle_events(&c, m.route, m.id);
        break;
    case CH_API__R_LEDGER:
        ch_api__handle_ledger(&c);
        break;
    case CH_API__R_LIVE:
        handle_live(&c);
        break;
    case CH_API__R_CONSOLE_INDEX:
    case CH_API__R_CONSOLE_CONFIG:
    case CH_API__R_CONSOLE_FILE:
        ch_api__handle_static(&c, m.route, m.id);
        break;
    case CH_API__R_METRICS:
        ch_api__handle_metrics(&c);
        break;
    case CH_API__R_CAMERA_HEALTH:
    case CH_API__R_CAMERA_OUTAGES:
    case CH_API__R_HEALTH_LIST:
    case CH_API__R_AVAILABILITY:
        ch_api__handle_health(&c, m.route, m.id);
        break;
    case CH_API__R_ALERTS_LIST:
    case CH_API__R_ALERTS_LIVE:
    case CH_API__R_ALERTS_GET:
    case CH_API__R_ALERTS_ACK:
        ch_api__handle_alerts(&c, m.route, m.id);
        break;
    case CH_API__R_DEVICE_STATE:
    case CH_API__R_DEVICE_TRANSITIONS:
    case CH_API__R_MQTT:
        ch_api__handle_device_health(&c, m.route, m.id);
        break;
    case CH_API__R_STREAMS:
        ch_api__reply_json(&c, 200, NULL,
                           api->svc.streams != NULL
                               ? api->svc.streams(api->svc.streams_ud)
                               : json_pack("{s:[], s:i, s:n}", "items", "total", 0, "next"));
        break;
    }
}

size_t ch_api_body_limit(const ch_http_request_t *req, void *ud)
{
    const ch_api_t *api = ud;
    if (ch_slice_eq(req->method, "POST") && ch_slice_eq(req->path, "/api/v1/imports")) {
        return api->max_import_bytes;
    }
    return 0;
}

size_t ch_api_in_flight(const ch_api_t *api)
{
    return api->in_flight;
}

int ch_api_new(uv_loop_t *loop, ch_store_t *st, const ch_api_config_t *cfg,
               const ch_api_services_t *svc, ch_api_t **out)
{
    static const ch_policy_t *const no_policy = NULL;
    *out = NULL;
    if (loop == NULL || st == NULL || cfg == NULL || svc == NULL || svc->events == NULL ||
        svc->geo == NULL || *svc->geo == NULL || svc->registry == NULL) {
        return CH_EINVAL;
    }
    ch_api_t *api = ch_calloc(1, sizeof(*api));
    api->loop = loop;
    api->st = st;
    api->schema = ch_store_schema_version(st);
    api->store_url = ch_strdup(cfg->store_url);
    api->max_import_bytes =
        cfg->max_import_bytes ? cfg->max_import_bytes : DEFAULT_MAX_IMPORT_BYTES;
    api->started_at_ms = cfg->started_at_ms ? cfg->started_at_ms : ch_time_now_ms();
    api->health_sec = -1;
    api->http_stats = ch_api__http_stats_new();
    api->auth.session_idle_ms = cfg->session_idle_ms;
    api->auth.session_max_ms = cfg->session_max_ms;
    api->cookie_secure = cfg->cookie_secure;
    api->throttle = ch_auth_throttle_new(cfg->max_failures_per_address, 0);
    api->lockout = ch_auth_lockout_new(cfg->max_failed_logins, cfg->lockout_ms);
    ch_auth_hasher_config_t hcfg = {.threads = cfg->hash_threads,
                                    .max_in_flight = cfg->max_hashes_in_flight,
                                    .max_per_address = cfg->max_hashes_per_address};
    api->hasher = ch_auth_hasher_new(loop, &hcfg);
    ch_auth_principals_config_t pcfg = {.loop = loop, .worker = svc->store_worker};
    if (ch_auth_principals_new(st, &pcfg, &api->principals) != 0) {
        api->principals = NULL; /* every request then reads the store */
        ch_log(CH_LOG_WARN, "api", "msg=\"no principals cache: every request reads the store\"");
    }
    /* The services, once. */
    api->svc = *svc;
    if (api->svc.policy == NULL) {
        api->svc.policy = &no_policy; /* read at each request: never NULL here */
    }
    api->svc.metrics = NULL;       /* set by ch_api__metrics_attach */
    api->svc.metrics_token = NULL; /* copied there */
    ch_api__metrics_attach(api, svc->metrics, svc->metrics_token);
    api->web_root = cfg->web_root != NULL ? ch_strdup(cfg->web_root) : NULL;
    api->tile_url = cfg->tile_url != NULL ? ch_strdup(cfg->tile_url) : NULL;
    ch_api__console_csp(api, cfg->ws_base);
    if (api->web_root != NULL) {
        ch_buf_t q;
        ch_buf_init(&q);
        ch_log_quote(&q, api->web_root);
        ch_log(CH_LOG_INFO, "api", "msg=\"console served at /\" web_root=%s", q.data);
        ch_buf_fini(&q);
    }
    *out = api;
    return 0;
}

int ch_api_audit_index_sync(ch_audit_t *audit, ch_store_t *st)
{
    return ch_api__audit_sync_index(audit, st);
}

void ch_api_free(ch_api_t *api)
{
    if (api == NULL) {
        return;
    }
    ch_api_close(api);
    ch_api__metrics_attach(api, NULL, NULL); /* its collector leaves the registry at once */
    if (api->in_flight > 0) {
        /* Work on the pool still points here; the last import to finish frees. */
        api->freeing = 1;
        return;
    }
    ch_api__http_stats_free(api->http_stats);
    ch_auth_throttle_free(api->throttle);
    ch_auth_lockout_free(api->lockout);
    ch_auth_hasher_free(api->hasher);
    for (size_t i = 0; i < CH_ARRAY_SIZE(api->capabilities); i++) {
        json_decref(api->capabilities[i]);
    }
    ch_free(api->store_url);
    ch_free(api->web_root);
    ch_free(api->tile_url);
    ch_free(api->console_csp);
    ch_free(api);
}

int ch_api_tick(ch_api_t *api)
{
    ch_api__flush_events(api);
    return ch_event_tick(api->svc.events);
}

void ch_api_flush(ch_api_t *api)
{
    ch_api__flush_events(api);
}

static void free_handle(uv_handle_t *h)
{
    ch_free(h);
}

void ch_api_close(ch_api_t *api)
{
    ch_api__flush_events(api);
    if (api->check != NULL) {
        uv_close((uv_handle_t *)api->check, free_handle);
        api->check = NULL;
    }
    ch_auth_principals_free(api->principals); /* the slides waiting are written */
    api->principals = NULL;
    if (ch_auth_hasher_in_flight(api->hasher) == 0) {
        /* Its threads end and its handle closes while the loop still turns. */
        ch_auth_hasher_free(api->hasher);
        api->hasher = NULL;
    }
}
