/*
 * api/alert_routes.c: /api/v1/alerts (list, one, acknowledge, the live WebSocket feed) and the
 * devices' live state and transitions (/api/v1/devices/{id}/state, .../transitions). The alert
 * engine (src/alert/) owns alerts; this file parses queries and bodies, puts each
 * acknowledgement on the audit record before it is answered, and hands the live feed's
 * connections over to the engine's WebSocket server. The store's reads and the acknowledgement's
 * transaction run on the store worker (ch_api__store_read, ch_api__store_write): the loop never
 * waits for the database here.
 */
#include "api/api_ctx.h"
#include "alert/alert.h"
#include "health/health.h"

#include <stdio.h>
#include <string.h>

#define MAX_NOTE 1000

/* GET /api/v1/alerts: state, kind, agency_id, cursor, limit (100 by default: f.limit 0), read on
 * the store worker. */
typedef struct alert_list {
    ch_api__query_t q; /* f's strings point into it */
    ch_store_filter_t f;
    ch_alert_list_t l;
} alert_list_t;

static int list_work(ch_store_t *st, void *job)
{
    alert_list_t *j = job;
    return ch_store_alert_list(st, &j->f, &j->l);
}

static void list_done(api_ctx_t *c, void *job, int rc)
{
    alert_list_t *j = job;
    if (c != NULL && rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "alerts could not be read");
    } else if (c != NULL) {
        json_t *items = json_array();
        for (size_t i = 0; i < j->l.count; i++) {
            json_array_append_new(items, ch_alert_to_json(&j->l.items[i]));
        }
        ch_api__reply_page(c, items, j->l.total, j->l.next_id);
    }
    if (rc == 0) {
        ch_alert_list_free(&j->l);
    }
    ch_api__query_fini(&j->q);
    ch_free(j);
}

static void handle_list(api_ctx_t *c)
{
    alert_list_t *j = ch_calloc(1, sizeof(*j));
    ch_store_filter_t *f = &j->f;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_CHOICE("state", &f->status, ch_store_alert_states)},
        {CH_API__QP_CHOICE("kind", &f->kind, ch_store_alert_kinds)},
        {CH_API__QP_ID("agency_id", &f->agency_id)},
        {CH_API__QP_CURSOR("cursor", &f->after_id)},
        {CH_API__QP_LIMIT("limit", &f->limit)},
        {CH_API__QP_END},
    };
    if (ch_api__list_query(c, spec, &j->q) != 0) {
        ch_api__query_fini(&j->q);
        ch_free(j);
        return;
    }
    ch_api__store_read(c, list_work, list_done, j);
}

static int parse_id_or_404(api_ctx_t *c, ch_slice_t id, int64_t *out, const char *what)
{
    if (ch_api__parse_id(id, out) != 0) {
        char msg[64];
        snprintf(msg, sizeof(msg), "no such %s", what);
        ch_api__reply_error(c, 404, "not_found", NULL, msg);
        return -1;
    }
    return 0;
}

/* GET /api/v1/alerts/{id}, read on the store worker. */
typedef struct alert_get {
    int64_t id;
    ch_alert_t a;
} alert_get_t;

static int get_work(ch_store_t *st, void *job)
{
    alert_get_t *j = job;
    return ch_store_alert_get(st, j->id, &j->a);
}

static void get_done(api_ctx_t *c, void *job, int rc)
{
    alert_get_t *j = job;
    if (c == NULL) {
        /* Nobody to answer. */
    } else if (rc == CH_ENOTFOUND) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such alert");
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the alert could not be read");
    } else {
        ch_api__reply_json(c, 200, NULL, ch_alert_to_json(&j->a));
    }
    ch_alert_fini(&j->a);
    ch_free(j);
}

static void handle_get(api_ctx_t *c, ch_slice_t id)
{
    int64_t aid;
    if (ch_api__reject_query(c) != 0 || parse_id_or_404(c, id, &aid, "alert") != 0) {
        return;
    }
    alert_get_t *j = ch_calloc(1, sizeof(*j));
    j->id = aid;
    ch_api__store_read(c, get_work, get_done, j);
}

/*
 * POST /api/v1/alerts/{id}/ack {"note": "..."}: on the store worker, the acknowledgement is
 * written in a transaction that commits only once its audit record ("alert.ack") is durable;
 * the commit reaches the live feed and the webhook through the engine's feed (the alert as
 * written handed to it first: ch_alert_written), then the request is answered.
 */
typedef enum ack_stage {
    ACK_BEGIN,  /* the transaction did not open */
    ACK_WRITE,  /* the alert was not changed (rc says why) */
    ACK_AUDIT,  /* the record could not be made durable */
    ACK_COMMIT, /* the commit failed */
    ACK_DONE,
} ack_stage_t;

typedef struct alert_ack {
    api_ctx_t ctx; /* the audit record's: read on the worker's thread, never changed */
    ch_alert_engine_t *eng;
    int64_t id;
    char actor[96];
    json_t *body; /* holds note */
    const char *note;
    int64_t at_ms;
    json_t *after; /* the alert as acknowledged */
    ack_stage_t stage;
} alert_ack_t;

/* The audit record's details: kind, subject, state, note, agency_id, and camera_id for a
 * camera's alert (so that the audit search finds it by camera and agency). */
static json_t *ack_details(const json_t *after, const char *note)
{
    json_t *details = json_pack("{s:O, s:O, s:O, s:s?}", "kind", json_object_get(after, "kind"),
                                "subject", json_object_get(after, "subject"), "state",
                                json_object_get(after, "state"), "note", note);
    json_t *agency = json_object_get(after, "agency_id");
    if (json_integer_value(agency) > 0) {
        json_object_set(details, "agency_id", agency);
    }
    json_t *subject = json_object_get(after, "subject");
    const char *stype = json_string_value(json_object_get(subject, "type"));
    if (stype != NULL && strcmp(stype, "camera") == 0) {
        json_object_set(details, "camera_id", json_object_get(subject, "id"));
    }
    return details;
}

/* The worker's thread: the acknowledgement and its audit record, one transaction. */
static int ack_work(ch_store_t *st, void *job)
{
    alert_ack_t *j = job;
    j->stage = ACK_BEGIN;
    int rc = ch_store_begin(st);
    if (rc != 0) {
        return rc;
    }
    j->stage = ACK_WRITE;
    rc = ch_alert_ack_write(st, j->id, j->actor, j->note, j->at_ms, &j->after);
    if (rc != 0) {
        goto rollback;
    }
    char object[48];
    snprintf(object, sizeof(object), "alert:%lld", (long long)j->id);
    j->stage = ACK_AUDIT;
    rc = ch_api__audit(&j->ctx, NULL, "alert.ack", object, "ok", ack_details(j->after, j->note));
    if (rc != 0) {
        goto rollback;
    }
    j->stage = ACK_COMMIT;
    rc = ch_store_commit(st);
    if (rc != 0) {
        goto rollback;
    }
    j->stage = ACK_DONE;
    return 0;
rollback:
    ch_store_rollback(st);
    return rc;
}

/* The loop, before the commit is told: the engine's listeners hear the alert as written. */
static void ack_telling(void *job, int rc)
{
    alert_ack_t *j = job;
    if (rc == 0 && j->after != NULL) {
        ch_alert_written(j->eng, j->after);
    }
}

static void ack_done(api_ctx_t *c, void *job, int rc)
{
    alert_ack_t *j = job;
    if (c == NULL) {
        /* Nobody to answer (a busy worker answered already, or the API is being freed). */
    } else if (rc == 0) {
        ch_api__reply_json(c, 200, NULL, json_incref(j->after));
    } else if (j->stage == ACK_BEGIN) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store is not available");
    } else if (j->stage == ACK_WRITE && rc == CH_ENOTFOUND) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such alert");
    } else if (j->stage == ACK_WRITE && rc == CH_ECONFLICT) {
        ch_api__reply_error(c, 409, "conflict", NULL, "the alert is acknowledged already");
    } else if (j->stage == ACK_WRITE) {
        ch_api__reply_error(c, 500, "internal", NULL, "the alert could not be changed");
    } else if (j->stage == ACK_AUDIT) {
        ch_api__reply_error(c, 503, "audit_unavailable", NULL,
                            "the alert was not acknowledged: it could not be put on the audit "
                            "record");
    } else {
        ch_api__reply_error(c, 500, "internal", NULL, "the acknowledgement was not stored");
    }
    json_decref(j->after);
    json_decref(j->body);
    ch_free(j);
}

static void handle_ack(api_ctx_t *c, ch_slice_t id)
{
    int64_t aid;
    if (ch_api__reject_query(c) != 0 || parse_id_or_404(c, id, &aid, "alert") != 0) {
        return;
    }
    const char *note = NULL;
    json_t *body = NULL;
    if (c->req->body_len > 0) {
        if ((body = ch_api__read_body(c)) == NULL) {
            return;
        }
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (strcmp(key, "note") == 0 && (json_is_null(v) || json_is_string(v))) {
                note = json_string_value(v);
                if (note != NULL && (json_string_length(v) > MAX_NOTE ||
                                     !ch_api__utf8_valid(note, json_string_length(v)) ||
                                     memchr(note, '\0', json_string_length(v)) != NULL)) {
                    json_decref(body);
                    ch_api__reply_error(c, 400, "invalid", "note",
                                        "note must be text of at most 1000 bytes");
                    return;
                }
            } else {
                int is_note = strcmp(key, "note") == 0;
                char field[64];
                snprintf(field, sizeof(field), "%s", key); /* key goes with body */
                json_decref(body);
                ch_api__reply_error(c, 400, "invalid", field,
                                    is_note ? "note must be a string"
                                            : "unknown field; takes note");
                return;
            }
        }
    }
    alert_ack_t *j = ch_calloc(1, sizeof(*j));
    j->ctx = *c;
    j->eng = c->api->svc.alerts;
    j->id = aid;
    snprintf(j->actor, sizeof(j->actor), "%s", c->who.actor);
    j->body = body;
    j->note = note;
    j->at_ms = ch_alert_now(j->eng);
    ch_api__store_write(c, ack_work, ack_telling, ack_done, j);
}

/* GET /api/v1/alerts/live: not an upgrade is 426; an upgrade is handed to the live feed. */
static void handle_live(api_ctx_t *c)
{
    const ch_slice_t *up = ch_http_request_header(c->req, "upgrade");
    if (up == NULL || !ch_slice_eq_nocase(*up, "websocket")) {
        ch_api__reply_error(c, 426, "upgrade_required", NULL,
                            "the live feed is a WebSocket: send Upgrade: websocket");
        return;
    }
    ch_buf_t raw;
    ch_buf_init(&raw);
    int fd = -1;
    char peer[64], actor[96];
    snprintf(peer, sizeof(peer), "%s", c->req->peer);
    snprintf(actor, sizeof(actor), "%s", c->who.actor);
    ch_net_tls_conn_t *tls = NULL;
    if (ch_http_hand_over(c->req, &fd, &raw, &tls) != 0) {
        ch_buf_fini(&raw);
        ch_api__reply_error(c, 503, "unavailable", NULL, "try again");
        return;
    }
    ch_buf_t a;
    ch_buf_init(&a);
    ch_log_quote(&a, actor);
    ch_log(CH_LOG_INFO, "api",
           "msg=request method=GET path=/api/v1/alerts/live status=101 actor=%s peer=%s", a.data,
           peer);
    ch_buf_fini(&a);
    ch_alert_live_take(c->api->svc.alerts_live, fd, raw.data, raw.len, tls);
    ch_buf_fini(&raw);
}

void ch_api__handle_alerts(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id)
{
    if (c->api->svc.alerts == NULL ||
        (route == CH_API__R_ALERTS_LIVE && c->api->svc.alerts_live == NULL)) {
        ch_api__reply_error(c, 503, "unavailable", NULL, "alerts are not running on this hub");
        return;
    }
    switch (route) {
    case CH_API__R_ALERTS_LIST:
        handle_list(c);
        break;
    case CH_API__R_ALERTS_GET:
        handle_get(c, id);
        break;
    case CH_API__R_ALERTS_ACK:
        handle_ack(c, id);
        break;
    case CH_API__R_ALERTS_LIVE:
        handle_live(c);
        break;
    default:
        ch_api__reply_error(c, 500, "internal", NULL, "unrouted");
        break;
    }
}

/* GET /api/v1/devices/{id}/state: what the MQTT device watch knows of the device now. */
static void handle_device_state(api_ctx_t *c, int64_t did)
{
    if (ch_api__reject_query(c) != 0) {
        return;
    }
    const ch_api_services_t *svc = &c->api->svc;
    ch_health_device_state_t st;
    json_t *j;
    if (svc->device_state != NULL && svc->device_state(svc->device_state_ud, did, &st) == 0) {
        j = json_pack("{s:I, s:I, s:s, s:I}", "device_id", (json_int_t)st.device_id, "agency_id",
                      (json_int_t)st.agency_id, "state", st.state, "heartbeat_s",
                      (json_int_t)(st.heartbeat_ms / 1000));
        json_object_set_new(j, "since", ch_api__time_or_null(st.since_ms));
        json_object_set_new(j, "last_seen", ch_api__time_or_null(st.last_seen_ms));
        json_object_set_new(j, "battery", st.has_battery ? json_real(st.battery) : json_null());
    } else {
        j = json_pack("{s:I, s:s, s:n, s:n, s:n}", "device_id", (json_int_t)did, "state", "unknown",
                      "since", "last_seen", "battery");
    }
    json_object_set_new(j, "watched", json_boolean(svc->device_state != NULL));
    ch_api__reply_json(c, 200, NULL, j);
}

/* GET /api/v1/mqtt: the device watch's counters, {"enabled": false} alone when MQTT is off. */
static json_t *mqtt_json(const ch_api_services_t *svc)
{
    ch_health_devices_stats_t s;
    if (svc->mqtt_stats == NULL || svc->mqtt_stats(svc->device_state_ud, &s) != 0) {
        return json_pack("{s:b}", "enabled", 0);
    }
    return json_pack("{s:b, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:b}", "connected",
                     s.connected, "connects", (json_int_t)s.connects, "received",
                     (json_int_t)s.received, "accepted", (json_int_t)s.accepted, "dropped", "topic",
                     (json_int_t)s.dropped_topic, "payload", (json_int_t)s.dropped_payload,
                     "device", (json_int_t)s.dropped_device, "devices", "online",
                     (json_int_t)s.online, "fault", (json_int_t)s.fault, "offline",
                     (json_int_t)s.offline, "enabled", 1);
}

/*
 * GET /api/v1/devices/{id}/state and .../transitions?cursor=&limit= (its state changes, oldest
 * first): the device (404 when none) and its transitions read on the store worker. The query's
 * 400 waits for the read, so that an unknown device is a 404 whatever its query.
 */
typedef struct device_read {
    ch_api__route_id_t route;
    int64_t id;
    ch_api__query_t q;
    ch_api__err_t qerr;
    int qbad; /* the transitions' query was refused: qerr */
    ch_store_filter_t f;
    int listed;      /* l holds the transitions */
    int list_failed; /* the device is there, its transitions could not be read */
    ch_device_transition_list_t l;
} device_read_t;

static int device_work(ch_store_t *st, void *job)
{
    device_read_t *j = job;
    ch_device_t d;
    int rc = ch_store_device_get(st, j->id, &d);
    if (rc != 0) {
        return rc;
    }
    ch_device_fini(&d);
    if (j->route == CH_API__R_DEVICE_STATE || j->qbad) {
        return 0;
    }
    rc = ch_store_device_transition_list(st, &j->f, &j->l);
    j->listed = rc == 0;
    j->list_failed = rc != 0;
    return rc;
}

static json_t *transitions_json(const ch_device_transition_list_t *l)
{
    json_t *items = json_array();
    for (size_t i = 0; i < l->count; i++) {
        const ch_device_transition_t *t = &l->items[i];
        char at[32];
        ch_time_format_rfc3339(t->at, at);
        json_array_append_new(items, json_pack("{s:I, s:s?, s:s, s:s, s:s?}", "id",
                                               (json_int_t)t->id, "from", t->from_state, "to",
                                               t->to_state, "at", at, "reason", t->reason));
    }
    return items;
}

static void device_done(api_ctx_t *c, void *job, int rc)
{
    device_read_t *j = job;
    if (c == NULL) {
        /* Nobody to answer. */
    } else if (rc == CH_ENOTFOUND) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such device");
    } else if (j->list_failed) {
        ch_api__reply_error(c, 500, "internal", NULL, "transitions could not be read");
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the device could not be read");
    } else if (j->route == CH_API__R_DEVICE_STATE) {
        handle_device_state(c, j->id);
    } else if (j->qbad) {
        ch_api__reply_err(c, &j->qerr, NULL);
    } else {
        ch_api__reply_page(c, transitions_json(&j->l), j->l.total, j->l.next_id);
    }
    if (j->listed) {
        ch_device_transition_list_free(&j->l);
    }
    ch_api__query_fini(&j->q);
    ch_free(j);
}

void ch_api__handle_device_health(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id)
{
    if (route == CH_API__R_MQTT) {
        if (ch_api__reject_query(c) != 0) {
            return;
        }
        json_t *s = mqtt_json(&c->api->svc);
        ch_api__reply_json(c, 200, NULL, s);
        return;
    }
    int64_t did;
    if (parse_id_or_404(c, id, &did, "device") != 0) {
        return;
    }
    device_read_t *j = ch_calloc(1, sizeof(*j));
    j->route = route;
    j->id = did;
    if (route != CH_API__R_DEVICE_STATE) {
        j->f.device_id = did;
        const ch_api__qparam_t spec[] = {
            {CH_API__QP_CURSOR("cursor", &j->f.after_id)},
            {CH_API__QP_LIMIT("limit", &j->f.limit)},
            {CH_API__QP_END},
        };
        j->qbad = ch_api__query_read(c->req->query, spec, &j->q, &j->qerr) != 0;
    }
    ch_api__store_read(c, device_work, device_done, j);
}
