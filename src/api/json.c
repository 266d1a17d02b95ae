/*
 * api/json.c: request bodies to store records (with validation that names the field at
 * fault) and records back to JSON. Pure functions: no HTTP, no store handle.
 */
#include "api/api_internal.h"
#include "registry/registry.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The limits and rules of a record's fields are the registry's (registry.h): this file reads
 * JSON into records and names the field a rule refuses. */

/* ---- errors ------------------------------------------------------------------------------- */

/*
 * Makes s valid UTF-8 in place, so jansson accepts it as a JSON string: first drops a
 * sequence cut short by truncation at the end, then, if still invalid (a parser's message
 * quoting raw input bytes), replaces every non-ASCII byte with '?'.
 */
static void make_utf8(char *s)
{
    size_t n = strlen(s);
    if (ch_api__utf8_valid(s, n)) {
        return;
    }
    for (size_t cut = 1; cut <= 3 && cut <= n; cut++) {
        if (ch_api__utf8_valid(s, n - cut)) {
            s[n - cut] = '\0';
            return;
        }
    }
    for (char *p = s; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            *p = '?';
        }
    }
}

void ch_api__err_set(ch_api__err_t *e, int status, const char *code, const char *field,
                     const char *fmt, ...)
{
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    make_utf8(e->message);
    make_utf8(e->field);
}

json_t *ch_api__err_to_json(const ch_api__err_t *e)
{
    json_t *inner = json_object();
    json_object_set_new(inner, "code", json_string(e->code ? e->code : "internal"));
    json_object_set_new(inner, "message", json_string(e->message));
    if (e->field[0] != '\0') {
        json_object_set_new(inner, "field", json_string(e->field));
    }
    json_t *outer = json_object();
    json_object_set_new(outer, "error", inner);
    return outer;
}

/*
 * Parses a body as one JSON object. Duplicate keys are rejected because which of two values
 * wins is a guess, and guesses in validation are where bypasses hide.
 */
json_t *ch_api__parse_body(const char *data, size_t len, ch_api__err_t *err)
{
    if (data == NULL || len == 0) {
        ch_api__err_set(err, 400, "bad_json", NULL,
                        "the request body is empty; send a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        ch_api__err_set(err, 400, "bad_json", NULL, "invalid JSON at line %d column %d: %s",
                        je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        ch_api__err_set(err, 400, "bad_json", NULL, "the request body must be a JSON object");
        return NULL;
    }
    return root;
}

/* ---- field readers ------------------------------------------------------------------------ */

/* The value of key, or NULL when absent or JSON null: both mean "unknown" for a field. */
static json_t *field_value(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static void replace_string(char **dst, char *s)
{
    ch_free(*dst);
    *dst = s;
}

/*
 * Reads an optional (or, with required, mandatory and non-empty) string field into *dst,
 * freeing what *dst held. Absent and null store NULL. Values are UTF-8 already (jansson
 * checks) and cannot hold NUL (jansson rejects \u0000 unless asked).
 */
static int read_string(const json_t *obj, const char *key, int required, size_t max_bytes,
                       char **dst, ch_api__err_t *err)
{
    json_t *v = field_value(obj, key);
    if (v == NULL) {
        if (required) {
            ch_api__err_set(err, 400, "invalid", key, "%s is required", key);
            return CH_EINVAL;
        }
        replace_string(dst, NULL);
        return 0;
    }
    if (!json_is_string(v)) {
        ch_api__err_set(err, 400, "invalid", key, "%s must be a string", key);
        return CH_EINVAL;
    }
    size_t n = json_string_length(v);
    if (required && n == 0) {
        ch_api__err_set(err, 400, "invalid", key, "%s must not be empty", key);
        return CH_EINVAL;
    }
    if (n > max_bytes) {
        ch_api__err_set(err, 400, "invalid", key, "%s is longer than %zu bytes", key, max_bytes);
        return CH_EINVAL;
    }
    replace_string(dst, ch_strndup(json_string_value(v), n));
    return 0;
}

/* Joins values[] as "a|b|c" into out, for error messages that list the choices. */
static void join_choices(const char *const *values, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; values[i] != NULL && used < size; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? "|" : "", values[i]);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
}

/* Returns the index of s in the NULL-terminated values[], or -1. */
static int choice_index(const char *const *values, const char *s)
{
    for (int i = 0; values[i] != NULL; i++) {
        if (strcmp(values[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

/*
 * Reads an enumerated string field. When absent or null: dflt when not NULL, else an error
 * "required". The stored string is a copy of the canonical choice.
 */
static int read_enum(const json_t *obj, const char *key, const char *const *values,
                     const char *dflt, char **dst, ch_api__err_t *err)
{
    json_t *v = field_value(obj, key);
    char choices[256];
    if (v == NULL) {
        if (dflt == NULL) {
            ch_api__err_set(err, 400, "invalid", key, "%s is required", key);
            return CH_EINVAL;
        }
        replace_string(dst, ch_strdup(dflt));
        return 0;
    }
    int i = json_is_string(v) ? choice_index(values, json_string_value(v)) : -1;
    if (i < 0) {
        join_choices(values, choices, sizeof(choices));
        ch_api__err_set(err, 400, "invalid", key, "%s must be one of %s", key, choices);
        return CH_EINVAL;
    }
    replace_string(dst, ch_strdup(values[i]));
    return 0;
}

/* Like read_enum for an optional field without default: absent or null store NULL. */
static int read_optional_enum(const json_t *obj, const char *key, const char *const *values,
                              char **dst, ch_api__err_t *err)
{
    if (field_value(obj, key) == NULL) {
        replace_string(dst, NULL);
        return 0;
    }
    return read_enum(obj, key, values, NULL, dst, err);
}

/*
 * Reads a number field within [min, max]; absent or null store unknown. Integers are numbers
 * too ("lat": 37 is fine).
 */
static int read_double(const json_t *obj, const char *key, double min, double max, double unknown,
                       double *dst, ch_api__err_t *err)
{
    json_t *v = field_value(obj, key);
    if (v == NULL) {
        *dst = unknown;
        return 0;
    }
    if (!json_is_number(v)) {
        ch_api__err_set(err, 400, "invalid", key, "%s must be a number", key);
        return CH_EINVAL;
    }
    double d = json_number_value(v);
    if (!isfinite(d) || d < min || d > max) {
        ch_api__err_set(err, 400, "invalid", key, "%s must be between %g and %g", key, min, max);
        return CH_EINVAL;
    }
    *dst = d;
    return 0;
}

/* Reads an integer field within [min, max]; absent or null store unknown. 2.0 is not an
 * integer here: a real where an integer belongs usually means a client bug worth naming. */
static int read_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t unknown,
                    int required, int64_t *dst, ch_api__err_t *err)
{
    json_t *v = field_value(obj, key);
    if (v == NULL) {
        if (required) {
            ch_api__err_set(err, 400, "invalid", key, "%s is required", key);
            return CH_EINVAL;
        }
        *dst = unknown;
        return 0;
    }
    if (!json_is_integer(v)) {
        ch_api__err_set(err, 400, "invalid", key, "%s must be an integer", key);
        return CH_EINVAL;
    }
    json_int_t i = json_integer_value(v);
    if (i < min || i > max) {
        ch_api__err_set(err, 400, "invalid", key, "%s must be between %" PRId64 " and %" PRId64,
                        key, min, max);
        return CH_EINVAL;
    }
    *dst = (int64_t)i;
    return 0;
}

/*
 * Reads the position: lat and lon both (located) or neither (unlocated). A lone coordinate
 * is an error naming the missing one, since storing half a position would place the camera
 * on the equator or the prime meridian.
 */
static int read_position(const json_t *obj, int *located, double *lat, double *lon,
                         ch_api__err_t *err)
{
    double la = 0, lo = 0;
    int rc = read_double(obj, "lat", -90.0, 90.0, NAN, &la, err);
    if (rc == 0) {
        rc = read_double(obj, "lon", -180.0, 180.0, NAN, &lo, err);
    }
    if (rc != 0) {
        return rc;
    }
    if (isnan(la) != isnan(lo)) {
        const char *missing = isnan(la) ? "lat" : "lon";
        ch_api__err_set(err, 400, "invalid", missing, "lat and lon must be given together");
        return CH_EINVAL;
    }
    *located = !isnan(la);
    *lat = *located ? la : 0.0;
    *lon = *located ? lo : 0.0;
    return 0;
}

/*
 * Rejects any key of obj that is neither in settable[] nor in readonly[] (both
 * NULL-terminated). Keys are checked in body order, so the first unknown one is named.
 */
static int check_fields(const json_t *obj, const char *const *settable, const char *const *readonly,
                        ch_api__err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        (void)v;
        if (choice_index(settable, key) < 0 && choice_index(readonly, key) < 0) {
            char field[64];
            /* Name a long key by its start; the field buffer is bounded anyway. */
            snprintf(field, sizeof(field), "%s", key);
            ch_api__err_set(err, 400, "invalid", field, "unknown field");
            return CH_EINVAL;
        }
    }
    return 0;
}

/* ---- agencies ----------------------------------------------------------------------------- */

static const char *const agency_settable[] = {"name",  "kind", "level",   "type",
                                              "phone", "code", "tls_key", NULL};
static const char *const agency_readonly[] = {"id", "created_at", "updated_at", NULL};

int ch_api__agency_from_json(const json_t *body, ch_agency_t *rec, ch_api__err_t *err)
{
    int rc = check_fields(body, agency_settable, agency_readonly, err);
    if (rc == 0) {
        rc = read_string(body, "name", 1, CH_REGISTRY_NAME_MAX, &rec->name, err);
    }
    if (rc == 0) {
        rc = read_enum(body, "kind", ch_store_agency_kinds, NULL, &rec->kind, err);
    }
    if (rc == 0) {
        rc = read_enum(body, "level", ch_store_agency_levels, NULL, &rec->level, err);
    }
    if (rc == 0) {
        rc = read_enum(body, "type", ch_store_agency_types, NULL, &rec->type, err);
    }
    if (rc == 0) {
        rc = read_string(body, "phone", 0, 64, &rec->phone, err);
    }
    if (rc == 0) {
        rc = read_string(body, "code", 0, 64, &rec->code, err);
    }
    if (rc == 0) {
        rc = read_string(body, "tls_key", 0, 64 + 7, &rec->tls_key, err);
        if (rc == 0 && rec->tls_key != NULL && !ch_store_valid_tls_key(rec->tls_key)) {
            ch_api__err_set(err, 400, "invalid", "tls_key",
                            "tls_key is a client certificate's key: sha256: and 64 lowercase hex "
                            "(cctvhub tls fingerprint CERT)");
            rc = CH_EINVAL;
        }
    }
    return rc;
}

/* ---- cameras ------------------------------------------------------------------------------ */

static const char *const camera_codecs[] = {"h264", "h265", NULL};
static const char *const camera_settable[] = {
    "agency_id",      "name",         "lat",      "lon",
    "road_address",   "lot_address",  "purpose",  "kind",
    "heading_deg",    "fov_deg",      "range_m",  "pixels",
    "retention_days", "installed_ym", "rtsp_url", "rtsp_username",
    "rtsp_password",  "codec",        "tls_pin",  "status",
    "direction",      "note",         NULL};
static const char *const camera_readonly[] = {
    "id",          "created_at", "updated_at", "rtsp_configured", "flags", "source_file",
    "source_line", "source_key", NULL};

/*
 * Reads a credential field. Unlike other fields, absent keeps the value held (see
 * api_internal.h); null clears. Messages never include the value.
 */
static int read_secret(const json_t *obj, const char *key, size_t max_bytes, char **dst,
                       ch_api__err_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    return read_string(obj, key, 0, max_bytes, dst, err);
}

int ch_api__camera_from_json(const json_t *body, ch_camera_t *rec, ch_api__err_t *err)
{
    int64_t i64 = 0;
    int rc = check_fields(body, camera_settable, camera_readonly, err);
    if (rc == 0) {
        rc = read_int(body, "agency_id", 1, INT64_MAX, 0, 1, &rec->agency_id, err);
    }
    if (rc == 0) {
        rc = read_string(body, "name", 1, CH_REGISTRY_NAME_MAX, &rec->name, err);
    }
    if (rc == 0) {
        rc = read_position(body, &rec->located, &rec->lat, &rec->lon, err);
    }
    if (rc == 0) {
        rc = read_string(body, "road_address", 0, CH_REGISTRY_TEXT_MAX, &rec->road_address, err);
    }
    if (rc == 0) {
        rc = read_string(body, "lot_address", 0, CH_REGISTRY_TEXT_MAX, &rec->lot_address, err);
    }
    if (rc == 0) {
        rc = read_string(body, "purpose", 0, CH_REGISTRY_NAME_MAX, &rec->purpose, err);
    }
    if (rc == 0) {
        rc = read_enum(body, "kind", ch_store_camera_kinds, "unknown", &rec->kind, err);
    }
    if (rc == 0) {
        rc = read_double(body, "heading_deg", 0.0, CH_REGISTRY_MAX_DEGREES, CH_STORE_UNKNOWN_DOUBLE,
                         &rec->heading_deg, err);
    }
    if (rc == 0) {
        rc = read_double(body, "fov_deg", 0.0, CH_REGISTRY_MAX_DEGREES, CH_STORE_UNKNOWN_DOUBLE,
                         &rec->fov_deg, err);
    }
    if (rc == 0) {
        rc = read_double(body, "range_m", 0.0, CH_REGISTRY_MAX_RANGE_M, CH_STORE_UNKNOWN_DOUBLE,
                         &rec->range_m, err);
    }
    if (rc == 0) {
        rc = read_int(body, "pixels", 0, CH_REGISTRY_MAX_PIXELS_SET, 0, 0, &rec->pixels, err);
    }
    if (rc == 0) {
        rc = read_int(body, "retention_days", 0, CH_REGISTRY_MAX_RETENTION_DAYS, 0, 0, &i64, err);
        rec->retention_days = (int)i64;
    }
    if (rc == 0) {
        rc = read_string(body, "installed_ym", 0, 7, &rec->installed_ym, err);
        if (rc == 0 && rec->installed_ym != NULL &&
            !ch_registry_valid_year_month(rec->installed_ym)) {
            ch_api__err_set(err, 400, "invalid", "installed_ym",
                            "installed_ym must be YYYY or YYYY-MM");
            rc = CH_EINVAL;
        }
    }
    if (rc == 0) {
        rc = read_secret(body, "rtsp_url", CH_REGISTRY_URL_MAX, &rec->rtsp_url, err);
        if (rc == 0 && json_object_get(body, "rtsp_url") != NULL && rec->rtsp_url != NULL &&
            !ch_registry_valid_rtsp_url(rec->rtsp_url)) {
            ch_api__err_set(err, 400, "invalid", "rtsp_url",
                            "rtsp_url must be an rtsp:// or rtsps:// URL without spaces");
            rc = CH_EINVAL;
        }
    }
    if (rc == 0) {
        rc = read_secret(body, "rtsp_username", CH_REGISTRY_NAME_MAX, &rec->rtsp_username, err);
    }
    if (rc == 0) {
        rc = read_secret(body, "rtsp_password", CH_REGISTRY_NAME_MAX, &rec->rtsp_password, err);
    }
    if (rc == 0) {
        rc = read_optional_enum(body, "codec", camera_codecs, &rec->codec, err);
    }
    if (rc == 0) {
        rc = read_string(body, "tls_pin", 0, CH_REGISTRY_NAME_MAX, &rec->tls_pin, err);
        if (rc == 0 && rec->tls_pin != NULL && !ch_registry_canon_tls_pin(rec->tls_pin)) {
            ch_api__err_set(err, 400, "invalid", "tls_pin",
                            "tls_pin must be \"sha256:\" and the 64 hex digits of the SHA-256 of "
                            "the camera certificate's public key (SubjectPublicKeyInfo, DER)");
            rc = CH_EINVAL;
        } else if (rc == 0 && rec->tls_pin != NULL && !ch_registry_is_rtsps(rec->rtsp_url)) {
            ch_api__err_set(err, 400, "invalid", "tls_pin",
                            "tls_pin pins the key of a camera that speaks TLS: its rtsp_url must "
                            "be rtsps://");
            rc = CH_EINVAL;
        }
    }
    if (rc == 0) {
        /* Without a position a camera cannot be "active" on a map: default accordingly. */
        rc = read_enum(body, "status", ch_store_camera_statuses,
                       rec->located ? "active" : "unlocated", &rec->status, err);
    }
    if (rc == 0) {
        rc = read_string(body, "direction", 0, CH_REGISTRY_TEXT_MAX, &rec->direction, err);
    }
    if (rc == 0) {
        rc = read_string(body, "note", 0, CH_REGISTRY_TEXT_MAX, &rec->note, err);
    }
    return rc;
}

/* ---- devices ------------------------------------------------------------------------------ */

static const char *const device_settable[] = {
    "agency_id",    "name",        "kind",   "lat",   "lon",
    "road_address", "lot_address", "status", "attrs", NULL};
static const char *const device_readonly[] = {"id",          "created_at",  "updated_at", "flags",
                                              "source_file", "source_line", "source_key", NULL};

int ch_api__device_from_json(const json_t *body, ch_device_t *rec, ch_api__err_t *err)
{
    int rc = check_fields(body, device_settable, device_readonly, err);
    if (rc == 0) {
        rc = read_int(body, "agency_id", 1, INT64_MAX, 0, 1, &rec->agency_id, err);
    }
    if (rc == 0) {
        rc = read_string(body, "name", 1, CH_REGISTRY_NAME_MAX, &rec->name, err);
    }
    if (rc == 0) {
        rc = read_enum(body, "kind", ch_store_device_kinds, NULL, &rec->kind, err);
    }
    if (rc == 0) {
        rc = read_position(body, &rec->located, &rec->lat, &rec->lon, err);
    }
    if (rc == 0) {
        rc = read_string(body, "road_address", 0, CH_REGISTRY_TEXT_MAX, &rec->road_address, err);
    }
    if (rc == 0) {
        rc = read_string(body, "lot_address", 0, CH_REGISTRY_TEXT_MAX, &rec->lot_address, err);
    }
    if (rc == 0) {
        rc = read_enum(body, "status", ch_store_device_statuses,
                       rec->located ? "active" : "unlocated", &rec->status, err);
    }
    if (rc == 0) {
        /* attrs is kept as JSON text; sorted keys make equal objects equal text, which the
         * import's "unchanged" detection relies on. */
        json_t *v = field_value(body, "attrs");
        if (v == NULL) {
            replace_string(&rec->attrs, NULL);
        } else if (!json_is_object(v)) {
            ch_api__err_set(err, 400, "invalid", "attrs", "attrs must be a JSON object");
            rc = CH_EINVAL;
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
            if (text == NULL || strlen(text) > CH_REGISTRY_ATTRS_MAX) {
                ch_api__err_set(err, 400, "invalid", "attrs", "attrs is longer than %d bytes",
                                CH_REGISTRY_ATTRS_MAX);
                rc = CH_EINVAL;
                free(text);
            } else {
                replace_string(&rec->attrs, ch_strdup(text));
                free(text);
            }
        }
    }
    return rc;
}

/* ---- records to JSON ---------------------------------------------------------------------- */

/* As the registry shows them (registry_json.c): the API answers the same text the audit record
 * holds. */
json_t *ch_api__agency_to_json(const ch_agency_t *a)
{
    return ch_registry_agency_to_json(a);
}

json_t *ch_api__camera_to_json(const ch_camera_t *c)
{
    return ch_registry_camera_to_json(c);
}

json_t *ch_api__device_to_json(const ch_device_t *d)
{
    return ch_registry_device_to_json(d);
}
