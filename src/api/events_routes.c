/*
 * api/events_routes.c: /api/v1/events and /api/v1/grants, handed to the event engine with the
 * request's principal. The engine decides, records and answers; this file maps roles, parses
 * ids and queries, and turns the engine's errors into the API's error bodies (a denial carries
 * the policy rule that denied).
 */
#include "api/api_ctx.h"

#include <stdio.h>
#include <string.h>

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

static void reply_event_err(api_ctx_t *c, const ch_event_err_t *e)
{
    json_t *err = json_pack("{s:s, s:s}", "code", e->code, "message", e->message);
    if (e->field[0] != '\0') {
        json_object_set_new(err, "field", json_string(e->field));
    }
    if (e->rule != NULL) {
        json_object_set_new(err, "rule", json_string(e->rule));
    }
    ch_api__reply_json(c, e->status, NULL, json_pack("{s:o}", "error", err));
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
    j->rc = ch_audit_append(j->ctx.api->audit, &j->p->entry, NULL);
}

static void open_done(uv_work_t *w, int status)
{
    open_job_t *j = w->data;
    ch_api_t *api = j->ctx.api;
    api->in_flight--;
    if (api->freeing) {
        ch_event_pending_free(j->p);
        ch_free(j);
        if (api->in_flight == 0) {
            ch_api_free(api);
        }
        return;
    }
    api_ctx_t *c = &j->ctx;
    ch_event_actor_t who = {c->who.actor, event_role(c->who.role), c->who.agency_id};
    ch_event_err_t err;
    json_t *out = NULL;
    memset(&err, 0, sizeof(err));
    int rc = ch_event_open_finish(api->events, &who, j->p, status == UV_ECANCELED ? CH_EIO : j->rc,
                                  &out, &err);
    if (rc > 0) {
        char loc[64];
        snprintf(loc, sizeof(loc), "Location: /api/v1/events/%lld\r\n",
                 (long long)json_integer_value(json_object_get(out, "id")));
        ch_api__health_mark(api, json_object_get(out, "grants"), "camera_id");
        ch_api__reply_json(c, rc, loc, out);
    } else {
        reply_event_err(c, &err);
    }
    ch_free(j);
}

/* Queues the record of one opened event on the pool (or finishes at once without a log). */
static void open_queue(ch_api_t *api, open_job_t *j)
{
    api->in_flight++;
    if (api->audit == NULL) {
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
void ch_api__flush_events(ch_api_t *api)
{
    if (api->nbatch == 0 && !ch_event_in_batch(api->events)) {
        return;
    }
    int rc = ch_event_batch_end(api->events);
    size_t n = api->nbatch;
    api->nbatch = 0;
    for (size_t i = 0; i < n; i++) {
        open_job_t *j = api->batch[i];
        if (rc == 0) {
            open_queue(api, j);
        } else {
            ch_api__reply_error(&j->ctx, 500, "internal", NULL, "the store failed");
            ch_event_pending_free(j->p);
            ch_free(j);
        }
    }
}

static void on_check(uv_check_t *h)
{
    ch_api__flush_events(h->data);
}

static void open_event(api_ctx_t *c, const ch_event_actor_t *who, const json_t *body)
{
    ch_api_t *api = c->api;
    ch_event_err_t err;
    ch_event_pending_t *p = NULL;
    memset(&err, 0, sizeof(err));
    if (api->check == NULL) {
        /* Made on the first open; closed by ch_api_close. */
        api->check = ch_calloc(1, sizeof(*api->check));
        uv_check_init(api->loop, api->check);
        api->check->data = api;
        uv_check_start(api->check, on_check);
    }
    if (ch_event_batch_begin(api->events) != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
        return;
    }
    if (ch_event_open_begin(api->events, who, body, &p, &err) != 0) {
        reply_event_err(c, &err);
        return;
    }
    open_job_t *j = ch_calloc(1, sizeof(*j));
    j->ctx = *c;
    j->p = p;
    j->work.data = j;
    if (api->nbatch == api->cbatch) {
        api->cbatch = api->cbatch ? api->cbatch * 2 : 64;
        api->batch = ch_realloc(api->batch, api->cbatch * sizeof(*api->batch));
    }
    api->batch[api->nbatch++] = j;
}

void ch_api__handle_events(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id_text)
{
    ch_event_engine_t *eng = c->api->events;
    ch_event_actor_t who = {c->who.actor, event_role(c->who.role), c->who.agency_id};
    ch_event_err_t err;
    json_t *out = NULL;
    json_t *body = NULL;
    int64_t id = 0;
    int status = -1;
    memset(&err, 0, sizeof(err));

    if (route == CH_API__R_EVENTS_LIST) {
        ch_store_filter_t f;
        ch_api__query_t q;
        if (list_filter(c, &f, &q) == 0) {
            status = ch_event_list(eng, &who, &f, &out, &err);
            if (status > 0) {
                /* The engine pages by id; clients get the API's opaque cursor. */
                json_t *after = json_object_get(out, "next_after");
                char cursor[CH_API__CURSOR_MAX];
                if (json_is_integer(after)) {
                    ch_api__cursor_encode(json_integer_value(after), cursor);
                    json_object_set_new(out, "next", json_string(cursor));
                } else {
                    json_object_set_new(out, "next", json_null());
                }
                json_object_del(out, "next_after");
                ch_api__reply_json(c, status, NULL, out);
            } else {
                reply_event_err(c, &err);
            }
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
    switch (route) {
    case CH_API__R_EVENTS_OPEN:
        open_event(c, &who, body); /* answers by itself, later */
        json_decref(body);
        return;
    case CH_API__R_EVENTS_GET:
        status = ch_event_get(eng, &who, id, &out, &err);
        break;
    case CH_API__R_EVENTS_APPROVE:
    case CH_API__R_EVENTS_DENY:
        status =
            ch_event_decide(eng, &who, id, route == CH_API__R_EVENTS_APPROVE, body, &out, &err);
        break;
    case CH_API__R_EVENTS_EXTEND:
        status = ch_event_extend(eng, &who, id, body, &out, &err);
        break;
    case CH_API__R_EVENTS_CLOSE:
        status = ch_event_close(eng, &who, id, body, &out, &err);
        break;
    case CH_API__R_EVENTS_REVOKE:
        status = ch_event_revoke(eng, &who, id, body, &out, &err);
        break;
    case CH_API__R_EVENTS_MOVE:
        status = ch_event_move(eng, &who, id, body, &out, &err);
        break;
    case CH_API__R_GRANTS_REVOKE:
        status = ch_event_revoke_grant(eng, &who, id, body, &out, &err);
        break;
    default:
        break;
    }
    json_decref(body);
    if (status > 0) {
        char loc[64];
        if (status == 201) {
            snprintf(loc, sizeof(loc), "Location: /api/v1/events/%lld\r\n",
                     (long long)json_integer_value(json_object_get(out, "id")));
        }
        ch_api__health_mark(c->api, json_object_get(out, "grants"), "camera_id");
        ch_api__reply_json(c, status, status == 201 ? loc : NULL, out);
    } else {
        reply_event_err(c, &err);
    }
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
    if (c->api->audit == NULL) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "this hub keeps no audit log");
        return;
    }
    json_t *ledger = NULL;
    if (ch_event_ledger(c->api->audit, c->api->st, *c->api->policy, &f, &ledger) != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the audit log could not be read");
        return;
    }
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
