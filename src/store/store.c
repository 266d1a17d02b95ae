/*
 * store: the back-end-neutral half of the data API.
 *
 * Everything here is the same whichever database runs: the record layouts (which column holds
 * which field), record init/fini, argument and record validation, and dispatch through the
 * back end's ops table. A back end therefore sees only valid records, and a new back end
 * (PostgreSQL) implements storage, not rules.
 */
#include "store/store_internal.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MODULE "store"

/* ---- record layouts ------------------------------------------------------------------------ */

#define COL(type, name, ctype)                                                                     \
    {                                                                                              \
#name, CH_STORE__##ctype, offsetof(type, name), 0, 0, 0                                    \
    }
/* A provenance column (see ch_store__col_t). */
#define PCOL(type, name, ctype)                                                                    \
    {                                                                                              \
#name, CH_STORE__##ctype, offsetof(type, name), 1, 0, 0                                    \
    }
/* A column imports leave alone (see ch_store__col_t). */
#define LCOL(type, name, ctype)                                                                    \
    {                                                                                              \
#name, CH_STORE__##ctype, offsetof(type, name), 0, 1, 0                                    \
    }
/* A column of a group a file may not carry (see ch_store__col_t). */
#define GCOL(type, name, ctype, grp)                                                               \
    {                                                                                              \
#name, CH_STORE__##ctype, offsetof(type, name), 0, 0, CH_STORE_F_##grp                     \
    }

static const ch_store__col_t agency_cols[] = {
    COL(ch_agency_t, name, TEXT),
    COL(ch_agency_t, kind, TEXT),
    COL(ch_agency_t, level, TEXT),
    COL(ch_agency_t, type, TEXT),
    COL(ch_agency_t, phone, TEXT),
    COL(ch_agency_t, code, TEXT),
    /* Added by migration 13 (the table has it after the stamps). */
    COL(ch_agency_t, tls_key, TEXT),
};

/* The order of columns is the order of the table in migration 1; keep them in step. */
static const ch_store__col_t camera_cols[] = {
    COL(ch_camera_t, agency_id, INT64),
    COL(ch_camera_t, name, TEXT),
    GCOL(ch_camera_t, located, INT, POSITION),
    GCOL(ch_camera_t, lat, DOUBLE, POSITION),
    GCOL(ch_camera_t, lon, DOUBLE, POSITION),
    GCOL(ch_camera_t, road_address, TEXT, ROAD_ADDRESS),
    GCOL(ch_camera_t, lot_address, TEXT, LOT_ADDRESS),
    GCOL(ch_camera_t, purpose, TEXT, PURPOSE),
    GCOL(ch_camera_t, kind, TEXT, DIRECTION),
    GCOL(ch_camera_t, heading_deg, DOUBLE, DIRECTION),
    GCOL(ch_camera_t, fov_deg, DOUBLE, DIRECTION),
    GCOL(ch_camera_t, range_m, DOUBLE, DIRECTION),
    GCOL(ch_camera_t, pixels, INT64, PIXELS),
    GCOL(ch_camera_t, retention_days, INT, RETENTION),
    GCOL(ch_camera_t, installed_ym, TEXT, INSTALLED),
    LCOL(ch_camera_t, rtsp_url, TEXT),
    LCOL(ch_camera_t, rtsp_username, TEXT),
    LCOL(ch_camera_t, rtsp_password, TEXT),
    LCOL(ch_camera_t, codec, TEXT),
    /* Written by a file with positions, except a maintenance status (CH_STORE__KEEP_MAINTENANCE).
     */
    {"status", CH_STORE__TEXT, offsetof(ch_camera_t, status), 0, 0,
     CH_STORE_F_POSITION | CH_STORE__KEEP_MAINTENANCE},
    GCOL(ch_camera_t, direction, TEXT, DIRECTION),
    GCOL(ch_camera_t, note, TEXT, DIRECTION),
    COL(ch_camera_t, flags, TEXT),
    PCOL(ch_camera_t, source_file, TEXT),
    PCOL(ch_camera_t, source_line, INT),
    /* Added by migration 12 (the table has it after the run columns); a stream setting like
     * rtsp_url. Before source_key, which stays last: the key column (key_col). */
    LCOL(ch_camera_t, tls_pin, TEXT),
    COL(ch_camera_t, source_key, TEXT),
};

static const ch_store__col_t device_cols[] = {
    COL(ch_device_t, agency_id, INT64),
    COL(ch_device_t, name, TEXT),
    COL(ch_device_t, kind, TEXT),
    GCOL(ch_device_t, located, INT, POSITION),
    GCOL(ch_device_t, lat, DOUBLE, POSITION),
    GCOL(ch_device_t, lon, DOUBLE, POSITION),
    GCOL(ch_device_t, road_address, TEXT, ROAD_ADDRESS),
    GCOL(ch_device_t, lot_address, TEXT, LOT_ADDRESS),
    GCOL(ch_device_t, status, TEXT, POSITION),
    COL(ch_device_t, attrs, TEXT),
    COL(ch_device_t, flags, TEXT),
    PCOL(ch_device_t, source_file, TEXT),
    PCOL(ch_device_t, source_line, INT),
    COL(ch_device_t, source_key, TEXT),
};

static const ch_store__col_t user_cols[] = {
    COL(ch_user_t, name, TEXT),          COL(ch_user_t, role, TEXT),
    COL(ch_user_t, agency_id, INT64),    COL(ch_user_t, password_hash, TEXT),
    COL(ch_user_t, disabled, INT),       COL(ch_user_t, failed_logins, INT),
    COL(ch_user_t, locked_until, INT64), COL(ch_user_t, last_login, INT64),
};

static const ch_store__col_t apikey_cols[] = {
    COL(ch_apikey_t, agency_id, INT64),  COL(ch_apikey_t, role, TEXT),
    COL(ch_apikey_t, secret_hash, TEXT), COL(ch_apikey_t, label, TEXT),
    COL(ch_apikey_t, revoked_at, INT64), COL(ch_apikey_t, tls_key, TEXT),
};

static const ch_store__col_t session_cols[] = {
    COL(ch_session_t, token_hash, TEXT),
    COL(ch_session_t, user_id, INT64),
    COL(ch_session_t, csrf, TEXT),
    COL(ch_session_t, expires_at, INT64),
};

static const ch_store__col_t outbox_cols[] = {
    COL(ch_outbox_t, actor, TEXT),
    COL(ch_outbox_t, action, TEXT),
    COL(ch_outbox_t, object, TEXT),
    COL(ch_outbox_t, details, TEXT),
};

static const ch_store__col_t event_cols[] = {
    COL(ch_event_t, service, TEXT),       COL(ch_event_t, agency_id, INT64),
    COL(ch_event_t, status, TEXT),        COL(ch_event_t, located, INT),
    COL(ch_event_t, lat, DOUBLE),         COL(ch_event_t, lon, DOUBLE),
    COL(ch_event_t, path, TEXT),          COL(ch_event_t, incident, TEXT),
    COL(ch_event_t, reason, TEXT),        COL(ch_event_t, case_name, TEXT),
    COL(ch_event_t, duration_s, INT64),   COL(ch_event_t, expires_at, INT64),
    COL(ch_event_t, extensions, INT),     COL(ch_event_t, ptz, INT),
    COL(ch_event_t, export_allowed, INT), COL(ch_event_t, basis_code, TEXT),
    COL(ch_event_t, created_by, TEXT),    COL(ch_event_t, decided_by, TEXT),
    COL(ch_event_t, decision_note, TEXT), COL(ch_event_t, closed_by, TEXT),
    COL(ch_event_t, close_reason, TEXT),  COL(ch_event_t, closed_at, INT64),
};

static const ch_store__col_t grant_cols[] = {
    COL(ch_grant_t, event_id, INT64),   COL(ch_grant_t, camera_id, INT64),
    COL(ch_grant_t, agency_id, INT64),  COL(ch_grant_t, provider_id, INT64),
    COL(ch_grant_t, status, TEXT),      COL(ch_grant_t, why, TEXT),
    COL(ch_grant_t, expires_at, INT64), COL(ch_grant_t, ended_at, INT64),
    COL(ch_grant_t, ended_by, TEXT),    COL(ch_grant_t, end_reason, TEXT),
};

static const ch_store__col_t alert_cols[] = {
    COL(ch_alert_t, kind, TEXT),         COL(ch_alert_t, severity, TEXT),
    COL(ch_alert_t, subject_type, TEXT), COL(ch_alert_t, subject_id, INT64),
    COL(ch_alert_t, agency_id, INT64),   COL(ch_alert_t, message, TEXT),
    COL(ch_alert_t, details, TEXT),      COL(ch_alert_t, status, TEXT),
    COL(ch_alert_t, raised_at, INT64),   COL(ch_alert_t, acked_by, TEXT),
    COL(ch_alert_t, acked_at, INT64),    COL(ch_alert_t, note, TEXT),
    COL(ch_alert_t, resolved_at, INT64), COL(ch_alert_t, resolved_reason, TEXT),
};

static const ch_store__col_t device_transition_cols[] = {
    COL(ch_device_transition_t, device_id, INT64), COL(ch_device_transition_t, agency_id, INT64),
    COL(ch_device_transition_t, from_state, TEXT), COL(ch_device_transition_t, to_state, TEXT),
    COL(ch_device_transition_t, at, INT64),        COL(ch_device_transition_t, reason, TEXT),
};

#undef COL
#undef PCOL

const ch_store__table_t ch_store__tables[CH_STORE__NTABLES] = {
    [CH_STORE__AGENCIES] =
        {
            .name = "agencies",
            .record_size = sizeof(ch_agency_t),
            .created_off = offsetof(ch_agency_t, created_at),
            .updated_off = offsetof(ch_agency_t, updated_at),
            .cols = agency_cols,
            .ncols = (int)CH_ARRAY_SIZE(agency_cols),
            .key_col = -1,
            .filters = CH_STORE__F_KIND | CH_STORE__F_TYPE | CH_STORE__F_LEVEL | CH_STORE__F_TEXT,
            .text_col = {"name", NULL},
        },
    [CH_STORE__CAMERAS] =
        {
            .name = "cameras",
            .record_size = sizeof(ch_camera_t),
            .created_off = offsetof(ch_camera_t, created_at),
            .updated_off = offsetof(ch_camera_t, updated_at),
            .cols = camera_cols,
            .ncols = (int)CH_ARRAY_SIZE(camera_cols),
            .key_col = (int)CH_ARRAY_SIZE(camera_cols) - 1,
            .filters = CH_STORE__F_AGENCY | CH_STORE__F_PURPOSE | CH_STORE__F_KIND |
                       CH_STORE__F_STATUS | CH_STORE__F_TEXT | CH_STORE__F_BBOX,
            .text_col = {"name", "road_address", "lot_address"},
            .runs = 1,
        },
    [CH_STORE__DEVICES] =
        {
            .name = "devices",
            .record_size = sizeof(ch_device_t),
            .created_off = offsetof(ch_device_t, created_at),
            .updated_off = offsetof(ch_device_t, updated_at),
            .cols = device_cols,
            .ncols = (int)CH_ARRAY_SIZE(device_cols),
            .key_col = (int)CH_ARRAY_SIZE(device_cols) - 1,
            .filters = CH_STORE__F_AGENCY | CH_STORE__F_KIND | CH_STORE__F_STATUS |
                       CH_STORE__F_TEXT | CH_STORE__F_BBOX,
            .text_col = {"name", "road_address", "lot_address"},
        },
    [CH_STORE__USERS] =
        {
            .name = "users",
            .record_size = sizeof(ch_user_t),
            .created_off = offsetof(ch_user_t, created_at),
            .updated_off = offsetof(ch_user_t, updated_at),
            .cols = user_cols,
            .ncols = (int)CH_ARRAY_SIZE(user_cols),
            .key_col = 0,
            .filters = CH_STORE__F_AGENCY | CH_STORE__F_TEXT,
            .text_col = {"name", NULL},
        },
    [CH_STORE__APIKEYS] =
        {
            .name = "api_keys",
            .record_size = sizeof(ch_apikey_t),
            .created_off = offsetof(ch_apikey_t, created_at),
            .updated_off = offsetof(ch_apikey_t, updated_at),
            .cols = apikey_cols,
            .ncols = (int)CH_ARRAY_SIZE(apikey_cols),
            .key_col = -1,
            .filters = CH_STORE__F_AGENCY,
            .text_col = {NULL},
        },
    [CH_STORE__SESSIONS] =
        {
            .name = "sessions",
            .record_size = sizeof(ch_session_t),
            .created_off = offsetof(ch_session_t, created_at),
            .updated_off = offsetof(ch_session_t, updated_at),
            .cols = session_cols,
            .ncols = (int)CH_ARRAY_SIZE(session_cols),
            .key_col = 0,
            .filters = 0,
            .text_col = {NULL},
        },
    [CH_STORE__EVENTS] =
        {
            .name = "events",
            .record_size = sizeof(ch_event_t),
            .created_off = offsetof(ch_event_t, created_at),
            .updated_off = offsetof(ch_event_t, updated_at),
            .cols = event_cols,
            .ncols = (int)CH_ARRAY_SIZE(event_cols),
            .key_col = -1,
            .filters = CH_STORE__F_AGENCY | CH_STORE__F_STATUS,
            .text_col = {NULL},
        },
    [CH_STORE__GRANTS] =
        {
            .name = "grants",
            .record_size = sizeof(ch_grant_t),
            .created_off = offsetof(ch_grant_t, created_at),
            .updated_off = offsetof(ch_grant_t, updated_at),
            .cols = grant_cols,
            .ncols = (int)CH_ARRAY_SIZE(grant_cols),
            .key_col = -1,
            .filters = CH_STORE__F_AGENCY | CH_STORE__F_STATUS | CH_STORE__F_EVENT,
            .text_col = {NULL},
        },
    [CH_STORE__ALERTS] =
        {
            .name = "alerts",
            .record_size = sizeof(ch_alert_t),
            .created_off = offsetof(ch_alert_t, created_at),
            .updated_off = offsetof(ch_alert_t, updated_at),
            .cols = alert_cols,
            .ncols = (int)CH_ARRAY_SIZE(alert_cols),
            .key_col = -1,
            .filters = CH_STORE__F_AGENCY | CH_STORE__F_KIND | CH_STORE__F_STATUS,
            .text_col = {NULL},
        },
    [CH_STORE__DEVICE_TRANSITIONS] =
        {
            .name = "device_transitions",
            .record_size = sizeof(ch_device_transition_t),
            .created_off = offsetof(ch_device_transition_t, created_at),
            .updated_off = offsetof(ch_device_transition_t, updated_at),
            .cols = device_transition_cols,
            .ncols = (int)CH_ARRAY_SIZE(device_transition_cols),
            .key_col = -1,
            .filters = CH_STORE__F_AGENCY | CH_STORE__F_DEVICE,
            .text_col = {NULL},
        },
    [CH_STORE__OUTBOX] =
        {
            .name = "audit_outbox",
            .record_size = sizeof(ch_outbox_t),
            .created_off = offsetof(ch_outbox_t, created_at),
            .updated_off = offsetof(ch_outbox_t, updated_at),
            .cols = outbox_cols,
            .ncols = (int)CH_ARRAY_SIZE(outbox_cols),
            .key_col = -1,
            .filters = 0,
            .text_col = {NULL},
        },
};

#define AGENCIES (&ch_store__tables[CH_STORE__AGENCIES])
#define CAMERAS  (&ch_store__tables[CH_STORE__CAMERAS])
#define DEVICES  (&ch_store__tables[CH_STORE__DEVICES])

/* ---- records ------------------------------------------------------------------------------- */

void ch_store__record_fini(const ch_store__table_t *t, void *rec)
{
    if (rec == NULL) {
        return;
    }
    for (int i = 0; i < t->ncols; i++) {
        const ch_store__col_t *c = &t->cols[i];
        if (c->type == CH_STORE__TEXT) {
            char **p = (char **)(void *)CH_STORE__FIELD(rec, c);
            ch_free(*p);
        }
    }
    memset(rec, 0, t->record_size);
}

CH_STORE__FINI(ch_agency_fini, ch_agency_t, AGENCIES)

CH_STORE__FINI(ch_camera_fini, ch_camera_t, CAMERAS)

CH_STORE__FINI(ch_device_fini, ch_device_t, DEVICES)

void ch_camera_init(ch_camera_t *c)
{
    memset(c, 0, sizeof(*c));
    c->heading_deg = CH_STORE_UNKNOWN_DOUBLE;
    c->fov_deg = CH_STORE_UNKNOWN_DOUBLE;
    c->range_m = CH_STORE_UNKNOWN_DOUBLE;
}

void ch_device_init(ch_device_t *d)
{
    memset(d, 0, sizeof(*d));
}

void ch_store__list_items_free(const ch_store__table_t *t, void *items, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        ch_store__record_fini(t, (char *)items + i * t->record_size);
    }
    ch_free(items);
}

CH_STORE__LIST_FREE(ch_agency_list_free, ch_agency_list_t, AGENCIES)

CH_STORE__LIST_FREE(ch_camera_list_free, ch_camera_list_t, CAMERAS)

CH_STORE__LIST_FREE(ch_device_list_free, ch_device_list_t, DEVICES)

/* ---- validation ---------------------------------------------------------------------------- */

int ch_store__fail(ch_store_t *st, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
    va_end(ap);
    return rc;
}

/* Whether s is one of the NULL-terminated list of words. */
static int one_of(const char *s, const char *const *words)
{
    for (; *words != NULL; words++) {
        if (strcmp(s, *words) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Checks a required enumerated string field: set, and one of words. */
int ch_store__check_enum(ch_store_t *st, const char *what, const char *field, const char *value,
                         const char *const *words)
{
    if (value == NULL) {
        return ch_store__fail(st, CH_EINVAL, "%s: %s is required", what, field);
    }
    if (!one_of(value, words)) {
        return ch_store__fail(st, CH_EINVAL, "%s: %s \"%.64s\" is not a known value", what, field,
                              value);
    }
    return 0;
}

/* Checks every double of a record is finite. SQLite would store NaN as NULL, and NaN never
 * equals itself, so an upsert of it would report "updated" forever. */
static int check_doubles(ch_store_t *st, const ch_store__table_t *t, const void *rec)
{
    for (int i = 0; i < t->ncols; i++) {
        const ch_store__col_t *c = &t->cols[i];
        if (c->type == CH_STORE__DOUBLE) {
            double v = *(const double *)(const void *)((const char *)rec + c->offset);
            if (!isfinite(v)) {
                return ch_store__fail(st, CH_EINVAL, "%s: %s is not a finite number", t->name,
                                      c->name);
            }
        }
    }
    return 0;
}

/* Checks lat/lon of a located record are on the globe. */
static int check_position(ch_store_t *st, const char *what, int located, double lat, double lon)
{
    if (located && (lat < -90.0 || lat > 90.0 || lon < -180.0 || lon > 180.0)) {
        return ch_store__fail(st, CH_EINVAL, "%s: lat/lon out of range", what);
    }
    return 0;
}

const char *const ch_store_agency_kinds[] = {"provider", "user", "both", NULL};
const char *const ch_store_agency_levels[] = {"district", "city", "national", NULL};
const char *const ch_store_agency_types[] = {"police-112",   "police-station", "fire-119",
                                             "moj-tracking", "disaster-room",  "mayor-office",
                                             "ansimi",       "military",       "district-center",
                                             "city-agency",  "other",          NULL};
const char *const ch_store_camera_kinds[] = {"fixed", "ptz", "unknown", NULL};
const char *const ch_store_camera_statuses[] = {"active", "inactive", "unlocated", "maintenance",
                                                NULL};
const char *const ch_store_device_kinds[] = {"emergency-bell", "wifi-ap", "sensor", "other", NULL};
const char *const ch_store_device_statuses[] = {"active", "inactive", "unlocated", "fault", NULL};

int ch_store_valid_tls_key(const char *key)
{
    uint8_t h[32];
    return key != NULL && strlen(key) == 7 + 64 && strncmp(key, "sha256:", 7) == 0 &&
           ch_hex_decode(key + 7, 64, h, sizeof(h), CH_HEX_LOWER_ONLY) == 0;
}

/* Validates an agency before it is written: required fields set, enumerations known. */
static int agency_check(ch_store_t *st, const ch_agency_t *a)
{
    int rc;
    if (a->name == NULL || a->name[0] == '\0') {
        return ch_store__fail(st, CH_EINVAL, "agency: name is required");
    }
    if ((rc = ch_store__check_enum(st, "agency", "kind", a->kind, ch_store_agency_kinds)) != 0 ||
        (rc = ch_store__check_enum(st, "agency", "level", a->level, ch_store_agency_levels)) != 0 ||
        (rc = ch_store__check_enum(st, "agency", "type", a->type, ch_store_agency_types)) != 0) {
        return rc;
    }
    if (a->tls_key != NULL && !ch_store_valid_tls_key(a->tls_key)) {
        return ch_store__fail(st, CH_EINVAL, "agency: tls_key must be sha256: and 64 hex");
    }
    return 0;
}

/* Validates a camera before it is written. The store keeps what the importer decided (flags,
 * status) and only refuses records that would break the schema or the comparison of upserts. */
static int camera_check(ch_store_t *st, const ch_camera_t *c)
{
    int rc;
    if (c->agency_id <= 0) {
        return ch_store__fail(st, CH_EINVAL, "camera: agency_id is required");
    }
    if (c->name == NULL) {
        return ch_store__fail(st, CH_EINVAL, "camera: name is required");
    }
    if ((rc = ch_store__check_enum(st, "camera", "kind", c->kind, ch_store_camera_kinds)) != 0 ||
        (rc = ch_store__check_enum(st, "camera", "status", c->status, ch_store_camera_statuses)) !=
            0 ||
        (rc = check_doubles(st, CAMERAS, c)) != 0 ||
        (rc = check_position(st, "camera", c->located, c->lat, c->lon)) != 0) {
        return rc;
    }
    return 0;
}

/* Validates a device before it is written. */
static int device_check(ch_store_t *st, const ch_device_t *d)
{
    int rc;
    if (d->agency_id <= 0) {
        return ch_store__fail(st, CH_EINVAL, "device: agency_id is required");
    }
    if (d->name == NULL) {
        return ch_store__fail(st, CH_EINVAL, "device: name is required");
    }
    if ((rc = ch_store__check_enum(st, "device", "kind", d->kind, ch_store_device_kinds)) != 0 ||
        (rc = ch_store__check_enum(st, "device", "status", d->status, ch_store_device_statuses)) !=
            0 ||
        (rc = check_doubles(st, DEVICES, d)) != 0 ||
        (rc = check_position(st, "device", d->located, d->lat, d->lon)) != 0) {
        return rc;
    }
    return 0;
}

int ch_store__filter_limit(const ch_store_filter_t *f)
{
    if (f == NULL || f->limit == 0) {
        return 100;
    }
    if (f->limit < 1 || f->limit > 1000) {
        return CH_EINVAL;
    }
    return f->limit;
}

/* The filter bits of f that apply to table t. Filters that do not apply to a table (purpose
 * for agencies, say) are ignored rather than refused, so that one filter struct can be parsed
 * from a query string and handed to any list. */
static unsigned filter_mask(const ch_store__table_t *t, const ch_store_filter_t *f)
{
    unsigned m = 0;
    if (f == NULL) {
        return 0;
    }
    if (f->agency_id != 0) {
        m |= CH_STORE__F_AGENCY;
    }
    if (f->purpose != NULL) {
        m |= CH_STORE__F_PURPOSE;
    }
    if (f->kind != NULL) {
        m |= CH_STORE__F_KIND;
    }
    if (f->status != NULL) {
        m |= CH_STORE__F_STATUS;
    }
    if (f->type != NULL) {
        m |= CH_STORE__F_TYPE;
    }
    if (f->level != NULL) {
        m |= CH_STORE__F_LEVEL;
    }
    if (f->text != NULL && f->text[0] != '\0') {
        m |= CH_STORE__F_TEXT;
    }
    if (f->has_bbox) {
        m |= CH_STORE__F_BBOX;
    }
    if (f->event_id != 0) {
        m |= CH_STORE__F_EVENT;
    }
    if (f->device_id != 0) {
        m |= CH_STORE__F_DEVICE;
    }
    return m & t->filters;
}

/* ---- open and close ------------------------------------------------------------------------ */

/* Whether s starts with prefix; *rest then points past it. */
static int has_prefix(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) == 0) {
        *rest = s + n;
        return 1;
    }
    return 0;
}

/*
 * Picks the back end from the URL's scheme. "sqlite:PATH" and a bare path open SQLite;
 * "postgresql://" and "postgres://" are reserved for the PostgreSQL back end, which is not
 * built yet, so they fail with CH_EUNSUPP rather than being taken for a file name.
 */
int ch_store_open(const char *url, ch_store_t **out, char **err)
{
    const char *rest = NULL;
    *out = NULL;
    if (err != NULL) {
        *err = NULL;
    }
    if (url == NULL || url[0] == '\0') {
        if (err != NULL) {
            *err = ch_strdup("store: empty database URL");
        }
        return CH_EINVAL;
    }
    if (has_prefix(url, "postgresql://", &rest) || has_prefix(url, "postgres://", &rest)) {
        if (err != NULL) {
            *err = ch_strdup("store: the PostgreSQL back end is not available in this build; "
                             "use sqlite:PATH");
        }
        return CH_EUNSUPP;
    }
    if (!has_prefix(url, "sqlite:", &rest)) {
        rest = url;
    }
    if (rest[0] == '\0') {
        if (err != NULL) {
            *err = ch_strdup("store: sqlite: needs a path");
        }
        return CH_EINVAL;
    }
    return ch_store__sqlite_open(rest, out, err);
}

void ch_store_close(ch_store_t *st)
{
    if (st != NULL) {
        ch_store__feed_free(st);
        st->ops->close(st);
    }
}

int ch_store_schema_version(ch_store_t *st)
{
    return st->ops->schema_version(st);
}

const char *ch_store_errmsg(ch_store_t *st)
{
    if (st == NULL) {
        return "no store";
    }
    return st->errmsg;
}

int ch_store_maintain(ch_store_t *st, unsigned what)
{
    if ((what & ~(unsigned)(CH_STORE_MAINTAIN_DEFER | CH_STORE_MAINTAIN_NOW)) != 0) {
        return ch_store__fail(st, CH_EINVAL, "maintain: unknown flags 0x%x", what);
    }
    return st->ops->maintain(st, what);
}

/* The transaction calls tell the change feed (store_watch.c) what the back end did. */
static int savepoint(ch_store_t *st, int op)
{
    int rc = st->ops->savepoint(st, op);
    if (rc == 0 || op == 2) {
        ch_store__feed_savepoint(st, op);
    }
    return rc;
}

int ch_store_savepoint(ch_store_t *st)
{
    return savepoint(st, 0);
}

int ch_store_release(ch_store_t *st)
{
    return savepoint(st, 1);
}

int ch_store_rollback_savepoint(ch_store_t *st)
{
    return savepoint(st, 2);
}

int ch_store_begin(ch_store_t *st)
{
    int rc = st->ops->begin(st);
    if (rc == 0) {
        ch_store__feed_begin(st);
    }
    return rc;
}

/* A failed commit leaves the changes pending: the transaction is still open (the caller rolls
 * it back, which drops them) or the back end has rolled it back (the next begin or rollback
 * drops them). */
int ch_store_commit(ch_store_t *st)
{
    int rc = ch_store__feed_publish(st);
    if (rc != 0) {
        return rc;
    }
    rc = st->ops->commit(st);
    if (rc == 0) {
        ch_store__feed_commit(st);
    }
    return rc;
}

int ch_store_rollback(ch_store_t *st)
{
    ch_store__feed_rollback(st);
    return st->ops->rollback(st);
}

/* ---- agencies ------------------------------------------------------------------------------ */

CH_STORE__GET(ch_store_agency_get, ch_agency_t, AGENCIES)

int ch_store_agency_find_by_name(ch_store_t *st, const char *name, ch_agency_t *out)
{
    memset(out, 0, sizeof(*out));
    if (name == NULL) {
        return ch_store__fail(st, CH_EINVAL, "agency: name is required");
    }
    return st->ops->agency_find_by_name(st, name, out);
}

CH_STORE__WRITES(ch_store_agency_create, ch_store_agency_update, ch_agency_t, AGENCIES,
                 agency_check)

int ch_store_agency_delete(ch_store_t *st, int64_t id)
{
    return ch_store__remove(st, AGENCIES, id);
}

/* Runs a list on table t and checks the page size; the caller copies the generic result into
 * its typed list. */
int ch_store__list(ch_store_t *st, const ch_store__table_t *t, const ch_store_filter_t *f,
                   ch_store__list_t *l)
{
    static const ch_store_filter_t none = {0};
    int limit = ch_store__filter_limit(f);
    memset(l, 0, sizeof(*l));
    if (limit < 0) {
        return ch_store__fail(st, CH_EINVAL, "list: limit must be 1..1000 (0 means 100)");
    }
    if (f == NULL) {
        f = &none;
    }
    if (f->has_bbox && (!isfinite(f->min_lat) || !isfinite(f->max_lat) || !isfinite(f->min_lon) ||
                        !isfinite(f->max_lon))) {
        return ch_store__fail(st, CH_EINVAL, "list: bounding box is not finite");
    }
    return st->ops->list(st, t, f, filter_mask(t, f), limit, l);
}

CH_STORE__LIST(ch_store_agency_list, ch_agency_list_t, AGENCIES)

/* ---- cameras ------------------------------------------------------------------------------- */

CH_STORE__GET(ch_store_camera_get, ch_camera_t, CAMERAS)

CH_STORE__WRITES(ch_store_camera_create, ch_store_camera_update, ch_camera_t, CAMERAS, camera_check)

int ch_store_camera_delete(ch_store_t *st, int64_t id)
{
    return ch_store__remove(st, CAMERAS, id);
}

CH_STORE__LIST(ch_store_camera_list, ch_camera_list_t, CAMERAS)

/* The options of the plain upserts (an administrator's import). */
static const ch_store_upsert_opts_t plain_upsert = {0, 0};

/* An upsert through the back end, told to the change feed unless nothing changed. */
static int upsert(ch_store_t *st, const ch_store__table_t *t, void *rec,
                  const ch_store_upsert_opts_t *o, ch_store_upsert_t *outcome)
{
    int rc = st->ops->upsert(st, t, rec, o, outcome);
    if (rc == 0 && *outcome != CH_STORE_UNCHANGED) {
        ch_store__changed(st, ch_store__table_bit(t), CH_STORE__ID(rec),
                          *outcome == CH_STORE_CREATED ? CH_STORE_INSERT : CH_STORE_UPDATE);
    }
    return rc;
}

int ch_store_camera_upsert(ch_store_t *st, ch_camera_t *c, ch_store_upsert_t *outcome)
{
    int rc = camera_check(st, c);
    if (rc != 0) {
        return rc;
    }
    if (c->source_key == NULL) {
        return ch_store__fail(st, CH_EINVAL, "camera: upsert needs a source_key");
    }
    return upsert(st, CAMERAS, c, &plain_upsert, outcome);
}

int ch_store_camera_upsert_site_with(ch_store_t *st, ch_camera_t *first, int count,
                                     const ch_store_upsert_opts_t *opts,
                                     ch_store_upsert_counts_t *counts)
{
    int rc = camera_check(st, first);
    if (rc != 0) {
        return rc;
    }
    if (count < 1 || count > CH_STORE_MAX_SITE) {
        return ch_store__fail(st, CH_EINVAL, "camera: a site holds 1 to %d cameras, not %d",
                              CH_STORE_MAX_SITE, count);
    }
    size_t n;
    if (first->source_key == NULL || ch_store__run_number(first->source_key, &n) != 1 ||
        ch_store__run_number(first->name, &n) != 1) {
        return ch_store__fail(st, CH_EINVAL,
                              "camera: a site's first camera needs a name and source_key "
                              "ending in #1");
    }
    ch_store_upsert_counts_t before = *counts;
    rc = st->ops->upsert_site(st, CAMERAS, first, count, opts ? opts : &plain_upsert, counts);
    /* The site's cameras are told as one change of the table: their ids are not returned. */
    if (rc == 0 && counts->created + counts->updated > before.created + before.updated) {
        ch_store__changed(st, CH_STORE_T_CAMERAS, 0,
                          counts->updated > before.updated ? CH_STORE_UPDATE : CH_STORE_INSERT);
    }
    return rc;
}

int ch_store_camera_upsert_site(ch_store_t *st, ch_camera_t *first, int count,
                                ch_store_upsert_counts_t *counts)
{
    return ch_store_camera_upsert_site_with(st, first, count, NULL, counts);
}

int64_t ch_store__run_number(const char *s, size_t *prefix_len)
{
    size_t len = strlen(s), i = len;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') {
        i--;
    }
    /* 1 to 18 digits after a '#', no leading zero. */
    if (i == len || len - i > 18 || i == 0 || s[i - 1] != '#' || s[i] == '0') {
        return 0;
    }
    int64_t v = 0;
    for (size_t k = i; k < len; k++) {
        v = v * 10 + (s[k] - '0');
    }
    *prefix_len = i;
    return v;
}

char *ch_store__run_text(const char *first, int64_t number, int64_t j)
{
    size_t prefix;
    if (ch_store__run_number(first, &prefix) != number) {
        return NULL;
    }
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append(&b, first, prefix);
    ch_buf_appendf(&b, "%lld", (long long)(number + j));
    return ch_buf_steal(&b);
}

/* ---- devices ------------------------------------------------------------------------------- */

CH_STORE__GET(ch_store_device_get, ch_device_t, DEVICES)

CH_STORE__WRITES(ch_store_device_create, ch_store_device_update, ch_device_t, DEVICES, device_check)

int ch_store_device_delete(ch_store_t *st, int64_t id)
{
    return ch_store__remove(st, DEVICES, id);
}

CH_STORE__LIST(ch_store_device_list, ch_device_list_t, DEVICES)

int ch_store_device_upsert_with(ch_store_t *st, ch_device_t *d, const ch_store_upsert_opts_t *opts,
                                ch_store_upsert_t *outcome)
{
    int rc = device_check(st, d);
    if (rc != 0) {
        return rc;
    }
    if (d->source_key == NULL) {
        return ch_store__fail(st, CH_EINVAL, "device: upsert needs a source_key");
    }
    return upsert(st, DEVICES, d, opts ? opts : &plain_upsert, outcome);
}

int ch_store_device_upsert(ch_store_t *st, ch_device_t *d, ch_store_upsert_t *outcome)
{
    return ch_store_device_upsert_with(st, d, NULL, outcome);
}

/* ---- counts -------------------------------------------------------------------------------- */

int ch_store_count(ch_store_t *st, const char *what, int64_t *out)
{
    *out = 0;
    for (int i = 0; i < CH_STORE__NTABLES; i++) {
        if (what != NULL && strcmp(what, ch_store__tables[i].name) == 0) {
            return st->ops->count(st, &ch_store__tables[i], out);
        }
    }
    return ch_store__fail(st, CH_EINVAL, "count: unknown table \"%.32s\"",
                          what != NULL ? what : "(null)");
}

/* ---- the audit index ------------------------------------------------------------------------ */

int ch_store_audit_index_add(ch_store_t *st, const ch_store_audit_row_t *row)
{
    if (row == NULL || row->seq < 0) {
        return ch_store__fail(st, CH_EINVAL, "audit index: a row needs a seq >= 0");
    }
    return st->ops->audit_add(st, row);
}

int ch_store_audit_index_last(ch_store_t *st, int64_t *seq)
{
    return st->ops->audit_last(st, seq);
}

int ch_store_audit_checkpoint_get(ch_store_t *st, ch_store_audit_checkpoint_t *out)
{
    memset(out, 0, sizeof(*out));
    return st->ops->audit_cp_get(st, out);
}

int ch_store_audit_checkpoint_put(ch_store_t *st, const ch_store_audit_checkpoint_t *cp)
{
    if (cp == NULL || cp->size < 0) {
        return ch_store__fail(st, CH_EINVAL, "audit checkpoint: a size >= 0 is needed");
    }
    return st->ops->audit_cp_put(st, cp);
}

int ch_store_audit_index_clear(ch_store_t *st)
{
    return st->ops->audit_clear(st);
}

int ch_store_audit_index_query(ch_store_t *st, const ch_store_audit_filter_t *f, int64_t **seqs,
                               size_t *count, int64_t *total, int64_t *next_seq)
{
    *seqs = NULL;
    *count = 0;
    *total = 0;
    *next_seq = -1;
    int limit = f->limit == 0 ? 100 : f->limit;
    if (limit < 1 || limit > 1000) {
        return ch_store__fail(st, CH_EINVAL, "audit index: limit %d is not in 1..1000", limit);
    }
    return st->ops->audit_query(st, f, limit, seqs, count, total, next_seq);
}

int ch_store_camera_scan_located(ch_store_t *st, ch_store_camera_fn fn, void *ud)
{
    return st->ops->camera_scan(st, fn, ud);
}
