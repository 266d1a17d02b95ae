/*
 * api/event_json.c: the event engine's views as the REST API's JSON. Times are RFC 3339 UTC
 * text or null; the grant's reason and the event's path are JSON texts the store keeps, put in
 * as they are.
 */
#include "api/event_json.h"
#include "api/api_ctx.h"

#include <string.h>

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* A JSON text the store keeps (a grant's why, an event's path), or null. */
static json_t *text_json(const char *text)
{
    json_t *j = text != NULL ? json_loads(text, 0, NULL) : NULL;
    return j != NULL ? j : json_null();
}

json_t *ch_api__grant_json(const ch_event_grant_view_t *v)
{
    const ch_grant_t *g = &v->grant;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(g->id));
    json_object_set_new(o, "camera_id", json_integer(g->camera_id));
    json_object_set_new(o, "provider_id", json_integer(g->provider_id));
    json_object_set_new(o, "status", json_string(g->status));
    json_object_set_new(o, "expires_at", ch_api__time_or_null(g->expires_at));
    json_object_set_new(o, "reason", text_json(g->why));
    if (g->ended_at > 0) {
        json_object_set_new(o, "ended_at", ch_api__time_or_null(g->ended_at));
        json_object_set_new(o, "ended_by", str_or_null(g->ended_by));
        json_object_set_new(o, "end_reason", str_or_null(g->end_reason));
    }
    if (v->token != NULL) {
        json_object_set_new(o, "token", json_string(v->token));
        json_object_set_new(o, "rtsp_url", json_string(v->rtsp_url));
        json_object_set_new(o, "ws_url", json_string(v->ws_url));
    }
    return o;
}

json_t *ch_api__event_json(const ch_event_view_t *v)
{
    const ch_event_t *ev = &v->event;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(ev->id));
    json_object_set_new(o, "service", json_string(ev->service));
    json_object_set_new(o, "agency_id", json_integer(ev->agency_id));
    json_object_set_new(o, "status", json_string(ev->status));
    json_object_set_new(o, "location",
                        ev->located ? json_pack("{s:f, s:f}", "lat", ev->lat, "lon", ev->lon)
                                    : json_null());
    json_object_set_new(o, "path", text_json(ev->path));
    json_object_set_new(o, "incident", str_or_null(ev->incident));
    json_object_set_new(o, "reason", str_or_null(ev->reason));
    json_object_set_new(o, "case", str_or_null(ev->case_name));
    json_object_set_new(o, "duration_s", json_integer(ev->duration_s));
    json_object_set_new(o, "expires_at", ch_api__time_or_null(ev->expires_at));
    json_object_set_new(o, "extensions", json_integer(ev->extensions));
    json_object_set_new(o, "ptz", json_boolean(ev->ptz));
    json_object_set_new(o, "export", json_boolean(ev->export_allowed));
    json_object_set_new(o, "legal_basis",
                        json_pack("{s:o, s:o}", "code", str_or_null(ev->basis_code), "text",
                                  str_or_null(v->basis_text)));
    json_object_set_new(o, "created_by", json_string(ev->created_by));
    json_object_set_new(o, "decided_by", str_or_null(ev->decided_by));
    json_object_set_new(o, "decision_note", str_or_null(ev->decision_note));
    json_object_set_new(o, "closed_by", str_or_null(ev->closed_by));
    json_object_set_new(o, "close_reason", str_or_null(ev->close_reason));
    json_object_set_new(o, "closed_at", ch_api__time_or_null(ev->closed_at));
    json_object_set_new(o, "created_at", ch_api__time_or_null(ev->created_at));
    json_t *a = json_array();
    for (size_t i = 0; i < v->ngrants; i++) {
        json_array_append_new(a, ch_api__grant_json(&v->grants[i]));
    }
    json_object_set_new(o, "grants", a);
    return o;
}

json_t *ch_api__event_items_json(const ch_event_page_t *p)
{
    json_t *items = json_array();
    for (size_t i = 0; i < p->count; i++) {
        json_array_append_new(items, ch_api__event_json(&p->items[i]));
    }
    return items;
}
