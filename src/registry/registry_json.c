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

/* created_at and updated_at, the times the store keeps for every record. */
static void set_times(json_t *o, int64_t created_at, int64_t updated_at)
{
    json_object_set_new(o, "created_at", time_or_null(created_at));
    json_object_set_new(o, "updated_at", time_or_null(updated_at));
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
    /* A public key's fingerprint, not a secret: shown, and on the audit record of a change. */
    json_object_set_new(o, "tls_key", string_or_null(a->tls_key));
    set_times(o, a->created_at, a->updated_at);
    return o;
}

/* What a camera and a device both begin with: the record, its owner agency and its name. */
static json_t *owned_object(int64_t id, int64_t agency_id, const char *name)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "agency_id", json_integer(agency_id));
    json_object_set_new(o, "name", string_or_null(name));
    return o;
}

/* Where a camera or a device stands: its position (null when not located) and addresses. */
static void set_place(json_t *o, int located, double lat, double lon, const char *road_address,
                      const char *lot_address)
{
    json_object_set_new(o, "lat", located ? json_real(lat) : json_null());
    json_object_set_new(o, "lon", located ? json_real(lon) : json_null());
    json_object_set_new(o, "road_address", string_or_null(road_address));
    json_object_set_new(o, "lot_address", string_or_null(lot_address));
}

/* Where an imported camera or device came from (flags, file, line, stable key), and its
 * times. */
static void set_source(json_t *o, const char *flags, const char *file, int line, const char *key,
                       int64_t created_at, int64_t updated_at)
{
    json_object_set_new(o, "flags", string_or_null(flags));
    json_object_set_new(o, "source_file", string_or_null(file));
    json_object_set_new(o, "source_line", line > 0 ? json_integer(line) : json_null());
    json_object_set_new(o, "source_key", string_or_null(key));
    set_times(o, created_at, updated_at);
}

json_t *ch_registry_camera_to_json(const ch_camera_t *c)
{
    json_t *o = owned_object(c->id, c->agency_id, c->name);
    set_place(o, c->located, c->lat, c->lon, c->road_address, c->lot_address);
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
    /* A pin is a public key's fingerprint, not a secret: shown, so that a record read and
     * written back keeps it. */
    json_object_set_new(o, "tls_pin", string_or_null(c->tls_pin));
    json_object_set_new(o, "codec", string_or_null(c->codec));
    json_object_set_new(o, "status", string_or_null(c->status));
    json_object_set_new(o, "direction", string_or_null(c->direction));
    json_object_set_new(o, "note", string_or_null(c->note));
    set_source(o, c->flags, c->source_file, c->source_line, c->source_key, c->created_at,
               c->updated_at);
    return o;
}

json_t *ch_registry_device_to_json(const ch_device_t *d)
{
    json_t *o = owned_object(d->id, d->agency_id, d->name);
    json_object_set_new(o, "kind", string_or_null(d->kind));
    set_place(o, d->located, d->lat, d->lon, d->road_address, d->lot_address);
    json_object_set_new(o, "status", string_or_null(d->status));
    /* attrs is stored as JSON text; answer it as the object it is. Text that does not parse
     * (written by some other tool) answers null rather than failing the whole request. */
    json_t *attrs = NULL;
    if (d->attrs != NULL) {
        attrs = json_loads(d->attrs, 0, NULL);
    }
    json_object_set_new(o, "attrs", attrs ? attrs : json_null());
    set_source(o, d->flags, d->source_file, d->source_line, d->source_key, d->created_at,
               d->updated_at);
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
