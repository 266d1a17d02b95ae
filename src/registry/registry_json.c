/*
 * registry: records as the registry shows them (registry.h): to the API's answers and to the
 * audit record of a change. A camera's stream credentials never leave the hub.
 */
#include "registry/registry.h"

/* ---- records to JSON ---------------------------------------------------------------------- */

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Unknown doubles (the store's sentinel, or any negative) answer null. */
static json_t *double_or_null(double d)
{
    return d < 0 ? json_null() : json_real(d);
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0) {
        return json_null();
    }
    char ts[32];
    ch_time_format_rfc3339(ms, ts);
    return json_string(ts);
}

json_t *ch_registry_agency_to_json(const ch_agency_t *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(a->id));
    json_object_set_new(o, "name", string_or_null(a->name));
    json_object_set_new(o, "kind", string_or_null(a->kind));
    json_object_set_new(o, "level", string_or_null(a->level));
    json_object_set_new(o, "type", string_or_null(a->type));
    json_object_set_new(o, "phone", string_or_null(a->phone));
    json_object_set_new(o, "code", string_or_null(a->code));
    json_object_set_new(o, "created_at", time_or_null(a->created_at));
    json_object_set_new(o, "updated_at", time_or_null(a->updated_at));
    return o;
}

static void set_position(json_t *o, int located, double lat, double lon)
{
    json_object_set_new(o, "lat", located ? json_real(lat) : json_null());
    json_object_set_new(o, "lon", located ? json_real(lon) : json_null());
}

json_t *ch_registry_camera_to_json(const ch_camera_t *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(c->id));
    json_object_set_new(o, "agency_id", json_integer(c->agency_id));
    json_object_set_new(o, "name", string_or_null(c->name));
    set_position(o, c->located, c->lat, c->lon);
    json_object_set_new(o, "road_address", string_or_null(c->road_address));
    json_object_set_new(o, "lot_address", string_or_null(c->lot_address));
    json_object_set_new(o, "purpose", string_or_null(c->purpose));
    json_object_set_new(o, "kind", string_or_null(c->kind));
    json_object_set_new(o, "heading_deg", double_or_null(c->heading_deg));
    json_object_set_new(o, "fov_deg", double_or_null(c->fov_deg));
    json_object_set_new(o, "range_m", double_or_null(c->range_m));
    json_object_set_new(o, "pixels", c->pixels > 0 ? json_integer(c->pixels) : json_null());
    json_object_set_new(o, "retention_days",
                        c->retention_days > 0 ? json_integer(c->retention_days) : json_null());
    json_object_set_new(o, "installed_ym", string_or_null(c->installed_ym));
    /* The credentials themselves never leave the hub; clients learn only whether a URL is
     * set, which is what a console needs to show "not configured". */
    json_object_set_new(o, "rtsp_configured", json_boolean(c->rtsp_url && c->rtsp_url[0]));
    json_object_set_new(o, "codec", string_or_null(c->codec));
    json_object_set_new(o, "status", string_or_null(c->status));
    json_object_set_new(o, "direction", string_or_null(c->direction));
    json_object_set_new(o, "note", string_or_null(c->note));
    json_object_set_new(o, "flags", string_or_null(c->flags));
    json_object_set_new(o, "source_file", string_or_null(c->source_file));
    json_object_set_new(o, "source_line",
                        c->source_line > 0 ? json_integer(c->source_line) : json_null());
    json_object_set_new(o, "source_key", string_or_null(c->source_key));
    json_object_set_new(o, "created_at", time_or_null(c->created_at));
    json_object_set_new(o, "updated_at", time_or_null(c->updated_at));
    return o;
}

json_t *ch_registry_device_to_json(const ch_device_t *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(d->id));
    json_object_set_new(o, "agency_id", json_integer(d->agency_id));
    json_object_set_new(o, "name", string_or_null(d->name));
    json_object_set_new(o, "kind", string_or_null(d->kind));
    set_position(o, d->located, d->lat, d->lon);
    json_object_set_new(o, "road_address", string_or_null(d->road_address));
    json_object_set_new(o, "lot_address", string_or_null(d->lot_address));
    json_object_set_new(o, "status", string_or_null(d->status));
    /* attrs is stored as JSON text; answer it as the object it is. Text that does not parse
     * (written by some other tool) answers null rather than failing the whole request. */
    json_t *attrs = NULL;
    if (d->attrs != NULL) {
        attrs = json_loads(d->attrs, 0, NULL);
    }
    json_object_set_new(o, "attrs", attrs ? attrs : json_null());
    json_object_set_new(o, "flags", string_or_null(d->flags));
    json_object_set_new(o, "source_file", string_or_null(d->source_file));
    json_object_set_new(o, "source_line",
                        d->source_line > 0 ? json_integer(d->source_line) : json_null());
    json_object_set_new(o, "source_key", string_or_null(d->source_key));
    json_object_set_new(o, "created_at", time_or_null(d->created_at));
    json_object_set_new(o, "updated_at", time_or_null(d->updated_at));
    return o;
}

json_t *ch_registry_record_to_json(ch_registry_kind_t kind, const ch_registry_record_t *r)
{
    switch (kind) {
    case CH_REGISTRY_AGENCY:
        return ch_registry_agency_to_json(&r->agency);
    case CH_REGISTRY_CAMERA:
        return ch_registry_camera_to_json(&r->camera);
    case CH_REGISTRY_DEVICE:
        return ch_registry_device_to_json(&r->device);
    }
    return json_null();
}
