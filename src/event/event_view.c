/*
 * event/event_view.c: the answers (events and grants as JSON views).
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

/* ---- JSON views ---------------------------------------------------------------------------- */

json_t *ch_event__grant_json(const ch_event_engine_t *eng, const ch_event_t *ev,
                             const ch_grant_t *g, int with_token)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(g->id));
    json_object_set_new(o, "camera_id", json_integer(g->camera_id));
    json_object_set_new(o, "provider_id", json_integer(g->provider_id));
    json_object_set_new(o, "status", json_string(g->status));
    json_object_set_new(o, "expires_at", ch_event__time_json(g->expires_at));
    json_t *why = g->why != NULL ? json_loads(g->why, 0, NULL) : NULL;
    json_object_set_new(o, "reason", why != NULL ? why : json_null());
    if (g->ended_at > 0) {
        json_object_set_new(o, "ended_at", ch_event__time_json(g->ended_at));
        json_object_set_new(o, "ended_by", ch_event__str_or_null(g->ended_by));
        json_object_set_new(o, "end_reason", ch_event__str_or_null(g->end_reason));
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
json_t *ch_event__event_json(const ch_event_engine_t *eng, const ch_event_t *ev,
                             const ch_grant_list_t *grants, const ch_event_actor_t *who)
{
    const ch_policy_service_t *svc = ch_event__service_of(eng, ev->service);
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
    json_object_set_new(o, "incident", ch_event__str_or_null(ev->incident));
    json_object_set_new(o, "reason", ch_event__str_or_null(ev->reason));
    json_object_set_new(o, "case", ch_event__str_or_null(ev->case_name));
    json_object_set_new(o, "duration_s", json_integer(ev->duration_s));
    json_object_set_new(o, "expires_at", ch_event__time_json(ev->expires_at));
    json_object_set_new(o, "extensions", json_integer(ev->extensions));
    json_object_set_new(o, "ptz", json_boolean(ev->ptz));
    json_object_set_new(o, "export", json_boolean(ev->export_allowed));
    json_object_set_new(o, "legal_basis",
                        json_pack("{s:o, s:o}", "code", ch_event__str_or_null(ev->basis_code),
                                  "text",
                                  ch_event__str_or_null(svc != NULL ? svc->basis_text : NULL)));
    json_object_set_new(o, "created_by", json_string(ev->created_by));
    json_object_set_new(o, "decided_by", ch_event__str_or_null(ev->decided_by));
    json_object_set_new(o, "decision_note", ch_event__str_or_null(ev->decision_note));
    json_object_set_new(o, "closed_by", ch_event__str_or_null(ev->closed_by));
    json_object_set_new(o, "close_reason", ch_event__str_or_null(ev->close_reason));
    json_object_set_new(o, "closed_at", ch_event__time_json(ev->closed_at));
    json_object_set_new(o, "created_at", ch_event__time_json(ev->created_at));
    if (grants != NULL) {
        int with_token = who != NULL && who->agency_id == ev->agency_id &&
                         (who->role == CH_EVENT_ROLE_AGENCY || who->role == CH_EVENT_ROLE_OPERATOR);
        json_t *a = json_array();
        for (size_t i = 0; i < grants->count; i++) {
            json_array_append_new(a, ch_event__grant_json(eng, ev, &grants->items[i], with_token));
        }
        json_object_set_new(o, "grants", a);
    }
    return o;
}

json_t *ch_event__time_json(int64_t ms)
{
    if (ms <= 0) {
        return json_null();
    }
    char ts[32];
    ch_time_format_rfc3339(ms, ts);
    return json_string(ts);
}

json_t *ch_event__str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* Answers the event with its grants (status given to the caller). */
int ch_event__answer_event(ch_event_engine_t *eng, const ch_event_actor_t *who, int64_t id,
                           json_t **out, ch_fault_t *err)
{
    ch_event_t ev;
    ch_grant_list_t g;
    if (ch_store_event_get(eng->cfg.st, id, &ev) != 0) {
        ch_event_fini(&ev);
        return ch_event__fail_store(eng, err);
    }
    if (ch_event__grants_of(eng, id, NULL, &g) != 0) {
        ch_event_fini(&ev);
        return ch_event__fail_store(eng, err);
    }
    *out = ch_event__event_json(eng, &ev, &g, who);
    ch_event_fini(&ev);
    ch_grant_list_free(&g);
    return 0;
}
