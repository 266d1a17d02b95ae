/*
 * api/alert_routes.c: /api/v1/alerts (list, one, acknowledge, the live WebSocket feed) and the
 * devices' live state and transitions (/api/v1/devices/{id}/state, .../transitions). The alert
 * engine (src/alert/) owns alerts; this file parses queries and bodies, puts each
 * acknowledgement on the audit record before it is answered, and hands the live feed's
 * connections over to the engine's WebSocket server.
 */
#include "api/api_ctx.h"
#include "alert/alert.h"
#include "health/health.h"

#include <stdio.h>
#include <string.h>

#define MAX_NOTE 1000

/* GET /api/v1/alerts: state, kind, agency_id, cursor, limit (100 by default: f->limit 0). */
static int alert_filter(api_ctx_t *c, ch_store_filter_t *f, ch_api__query_t *q)
{
    memset(f, 0, sizeof(*f));
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_CHOICE("state", &f->status, ch_store_alert_states)},
        {CH_API__QP_CHOICE("kind", &f->kind, ch_store_alert_kinds)},
        {CH_API__QP_ID("agency_id", &f->agency_id)},
        {CH_API__QP_CURSOR("cursor", &f->after_id)},
        {CH_API__QP_LIMIT("limit", &f->limit)},
        {CH_API__QP_END},
    };
    return ch_api__list_query(c, spec, q);
}

static void handle_list(api_ctx_t *c)
{
    ch_store_filter_t f;
    ch_api__query_t q;
    if (alert_filter(c, &f, &q) != 0) {
        ch_api__query_fini(&q);
        return;
    }
    ch_alert_list_t l;
    int rc = ch_store_alert_list(c->api->st, &f, &l);
    ch_api__query_fini(&q);
    if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "alerts could not be read");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++) {
        json_array_append_new(items, ch_alert_to_json(&l.items[i]));
    }
    ch_api__reply_page(c, items, l.total, l.next_id);
    ch_alert_list_free(&l);
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

static void handle_get(api_ctx_t *c, ch_slice_t id)
{
    int64_t aid;
    if (ch_api__reject_query(c) != 0 || parse_id_or_404(c, id, &aid, "alert") != 0) {
        return;
    }
    json_t *j = NULL;
    int rc = ch_alert_get(c->api->svc.alerts, aid, &j);
    if (rc == CH_ENOTFOUND) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such alert");
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the alert could not be read");
    } else {
        ch_api__reply_json(c, 200, NULL, j);
    }
}

/*
 * POST /api/v1/alerts/{id}/ack {"note": "..."}: the acknowledgement is written in a store
 * transaction that commits only once its audit record ("alert.ack") is durable, then pushed to
 * the live feed and the webhook.
 */
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
    char actor[96];
    snprintf(actor, sizeof(actor), "%s", c->who.actor);
    ch_store_t *st = c->api->st;
    if (ch_store_begin(st) != 0) {
        json_decref(body);
        ch_api__reply_error(c, 500, "internal", NULL, "the store is not available");
        return;
    }
    json_t *after = NULL;
    int rc = ch_alert_ack(c->api->svc.alerts, aid, actor, note, &after);
    if (rc != 0) {
        ch_store_rollback(st);
        json_decref(body);
        if (rc == CH_ENOTFOUND) {
            ch_api__reply_error(c, 404, "not_found", NULL, "no such alert");
        } else if (rc == CH_ECONFLICT) {
            ch_api__reply_error(c, 409, "conflict", NULL, "the alert is acknowledged already");
        } else {
            ch_api__reply_error(c, 500, "internal", NULL, "the alert could not be changed");
        }
        return;
    }
    char object[48];
    snprintf(object, sizeof(object), "alert:%lld", (long long)aid);
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
    json_decref(body);
    if (ch_api__audit(c, NULL, "alert.ack", object, "ok", details) != 0) {
        ch_store_rollback(st);
        json_decref(after);
        ch_api__reply_error(c, 503, "audit_unavailable", NULL,
                            "the alert was not acknowledged: it could not be put on the audit "
                            "record");
        return;
    }
    if (ch_store_commit(st) != 0) {
        ch_store_rollback(st);
        json_decref(after);
        ch_api__reply_error(c, 500, "internal", NULL, "the acknowledgement was not stored");
        return;
    }
    ch_alert_publish(c->api->svc.alerts, after);
    ch_api__reply_json(c, 200, NULL, after);
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
    if (ch_http_hand_over(c->req, &fd, &raw) != 0) {
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
    ch_alert_live_take(c->api->svc.alerts_live, fd, raw.data, raw.len);
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

/* GET /api/v1/devices/{id}/transitions?cursor=&limit=: its state changes, oldest first. */
static void handle_device_transitions(api_ctx_t *c, int64_t did)
{
    ch_api__query_t q;
    ch_store_filter_t f;
    memset(&f, 0, sizeof(f));
    f.device_id = did;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_CURSOR("cursor", &f.after_id)},
        {CH_API__QP_LIMIT("limit", &f.limit)},
        {CH_API__QP_END},
    };
    int rc = ch_api__list_query(c, spec, &q);
    ch_api__query_fini(&q);
    if (rc != 0) {
        return;
    }
    ch_device_transition_list_t l;
    if (ch_store_device_transition_list(c->api->st, &f, &l) != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "transitions could not be read");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++) {
        const ch_device_transition_t *t = &l.items[i];
        char at[32];
        ch_time_format_rfc3339(t->at, at);
        json_array_append_new(items, json_pack("{s:I, s:s?, s:s, s:s, s:s?}", "id",
                                               (json_int_t)t->id, "from", t->from_state, "to",
                                               t->to_state, "at", at, "reason", t->reason));
    }
    ch_api__reply_page(c, items, l.total, l.next_id);
    ch_device_transition_list_free(&l);
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
    ch_device_t d;
    int rc = ch_store_device_get(c->api->st, did, &d);
    if (rc == CH_ENOTFOUND) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such device");
        return;
    }
    if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the device could not be read");
        return;
    }
    ch_device_fini(&d);
    if (route == CH_API__R_DEVICE_STATE) {
        handle_device_state(c, did);
    } else {
        handle_device_transitions(c, did);
    }
}
