/*
 * store: the schema, described once (store_internal.h, "table descriptors").
 *
 * Every table the migrations of every back end leave behind: its columns in order with their
 * type, nullability, default and reference, its primary key and its secondary indexes. The
 * SQLite migrations (sqlite/sqlite_store.c) are text written and shipped long ago and never
 * edited; tests/unit/store/test_store_schema.c opens a fresh store and checks what they made
 * against this table, column by column and index by index, and checks the record layouts
 * (ch_store__tables) against it too. The PostgreSQL back end derives its DDL from here.
 *
 * A new migration therefore comes with its change here, or the unit test fails.
 */
#include "store/store_internal.h"

#include <string.h>

/* A column: C (nullable), N (NOT NULL), R (NOT NULL, references table(col)), K (primary key). */
#define C(name, type)                                                                              \
    {                                                                                              \
        name, CH_STORE__SQL_##type, 0, 0, NULL, NULL, 0                                            \
    }
#define N(name, type)                                                                              \
    {                                                                                              \
        name, CH_STORE__SQL_##type, 1, 0, NULL, NULL, 0                                            \
    }
#define R(name, ref)                                                                               \
    {                                                                                              \
        name, CH_STORE__SQL_INTEGER, 1, 0, NULL, ref, 0                                            \
    }
#define RC(name, ref)                                                                              \
    {                                                                                              \
        name, CH_STORE__SQL_INTEGER, 1, 0, NULL, ref, 1                                            \
    }
#define K(name)                                                                                    \
    {                                                                                              \
        name, CH_STORE__SQL_INTEGER, 1, 1, NULL, NULL, 0                                           \
    }
#define D(name, type, dfl)                                                                         \
    {                                                                                              \
        name, CH_STORE__SQL_##type, 1, 0, dfl, NULL, 0                                             \
    }
/* An index: I (plain), U (unique), P (partial, with its WHERE). */
#define I(name, cols)                                                                              \
    {                                                                                              \
        name, cols, 0, NULL                                                                        \
    }
#define U(name, cols)                                                                              \
    {                                                                                              \
        name, cols, 1, NULL                                                                        \
    }
#define P(name, cols, where)                                                                       \
    {                                                                                              \
        name, cols, 0, where                                                                       \
    }
#define STAMPS N("created_at", INTEGER), N("updated_at", INTEGER)
#define TABLE(nm, c, ix, fl)                                                                       \
    {                                                                                              \
        .name = nm, .cols = c, .ncols = (int)CH_ARRAY_SIZE(c), .indexes = ix,                      \
        .nindexes = (int)CH_ARRAY_SIZE(ix), .flags = fl                                            \
    }
#define TABLE_NOIDX(nm, c, fl)                                                                     \
    {                                                                                              \
        .name = nm, .cols = c, .ncols = (int)CH_ARRAY_SIZE(c), .flags = fl                         \
    }

static const ch_store__column_desc_t agencies_c[] = {
    K("id"),
    N("name", TEXT),
    N("kind", TEXT),
    N("level", TEXT),
    N("type", TEXT),
    C("phone", TEXT),
    C("code", TEXT),
    STAMPS,
    /* The agency's systems' client certificate key (migration 13). */
    C("tls_key", TEXT),
};
static const ch_store__index_desc_t agencies_i[] = {U("agencies_name", "name")};

static const ch_store__column_desc_t cameras_c[] = {
    K("id"),
    R("agency_id", "agencies(id)"),
    N("name", TEXT),
    N("located", INTEGER),
    N("lat", REAL),
    N("lon", REAL),
    C("road_address", TEXT),
    C("lot_address", TEXT),
    C("purpose", TEXT),
    N("kind", TEXT),
    N("heading_deg", REAL),
    N("fov_deg", REAL),
    N("range_m", REAL),
    N("pixels", INTEGER),
    N("retention_days", INTEGER),
    C("installed_ym", TEXT),
    C("rtsp_url", TEXT),
    C("rtsp_username", TEXT),
    C("rtsp_password", TEXT),
    C("codec", TEXT),
    N("status", TEXT),
    C("direction", TEXT),
    C("note", TEXT),
    C("flags", TEXT),
    C("source_file", TEXT),
    N("source_line", INTEGER),
    C("source_key", TEXT),
    STAMPS,
    /* A run of a site's cameras (migration 5; docs/internals/store.md, "Runs"). */
    D("site_count", INTEGER, "1"),
    C("site_number", INTEGER),
    /* The pinned key of a camera's self-signed certificate (migration 12). */
    C("tls_pin", TEXT),
};
static const ch_store__index_desc_t cameras_i[] = {
    U("cameras_source_key", "source_key"),
    I("cameras_agency", "agency_id, site_count"),
    I("cameras_purpose", "purpose"),
    I("cameras_kind", "kind"),
    I("cameras_status", "status"),
    P("cameras_latlon", "lat, lon", "located = 1"),
    P("cameras_stream", "id", "rtsp_url IS NOT NULL"),
};

static const ch_store__column_desc_t devices_c[] = {
    K("id"),
    R("agency_id", "agencies(id)"),
    N("name", TEXT),
    N("kind", TEXT),
    N("located", INTEGER),
    N("lat", REAL),
    N("lon", REAL),
    C("road_address", TEXT),
    C("lot_address", TEXT),
    N("status", TEXT),
    C("attrs", TEXT),
    C("flags", TEXT),
    C("source_file", TEXT),
    N("source_line", INTEGER),
    C("source_key", TEXT),
    STAMPS,
};
static const ch_store__index_desc_t devices_i[] = {
    U("devices_source_key", "source_key"),
    I("devices_agency", "agency_id"),
    I("devices_kind", "kind"),
    I("devices_status", "status"),
    P("devices_latlon", "lat, lon", "located = 1"),
};

static const ch_store__column_desc_t audit_index_c[] = {
    K("seq"),
    N("time_ns", INTEGER),
    C("actor", TEXT),
    C("action", TEXT),
};
static const ch_store__index_desc_t audit_index_i[] = {
    I("audit_index_time", "time_ns"),
    I("audit_index_actor", "actor"),
    I("audit_index_action", "action"),
};

/* What each record is about: kind 1 camera, 2 agency, 3 event; keyed (kind, id, seq). */
static const ch_store__column_desc_t audit_refs_c[] = {
    {"kind", CH_STORE__SQL_INTEGER, 1, 1, NULL, NULL, 0},
    {"id", CH_STORE__SQL_INTEGER, 1, 2, NULL, NULL, 0},
    {"seq", CH_STORE__SQL_INTEGER, 1, 3, NULL, "audit_index(seq)", 1},
};
static const ch_store__index_desc_t audit_refs_i[] = {I("audit_refs_seq", "seq")};

static const ch_store__column_desc_t users_c[] = {
    K("id"),
    N("name", TEXT),
    N("role", TEXT),
    N("agency_id", INTEGER), /* 0 for the roles without an agency: no reference */
    N("password_hash", TEXT),
    N("disabled", INTEGER),
    N("failed_logins", INTEGER),
    N("locked_until", INTEGER),
    N("last_login", INTEGER),
    STAMPS,
};
static const ch_store__index_desc_t users_i[] = {U("users_name", "name")};

static const ch_store__column_desc_t api_keys_c[] = {
    K("id"),          R("agency_id", "agencies(id)"), N("role", TEXT), N("secret_hash", TEXT),
    C("label", TEXT), N("revoked_at", INTEGER),       STAMPS,          C("tls_key", TEXT),
};
static const ch_store__index_desc_t api_keys_i[] = {I("api_keys_agency", "agency_id")};

static const ch_store__column_desc_t sessions_c[] = {
    K("id"),         N("token_hash", TEXT),    RC("user_id", "users(id)"),
    N("csrf", TEXT), N("expires_at", INTEGER), STAMPS,
};
static const ch_store__index_desc_t sessions_i[] = {
    U("sessions_token", "token_hash"),
    I("sessions_user", "user_id"),
    I("sessions_expiry", "expires_at"),
};

static const ch_store__column_desc_t audit_outbox_c[] = {
    K("id"), N("actor", TEXT), N("action", TEXT), C("object", TEXT), C("details", TEXT), STAMPS,
};

static const ch_store__column_desc_t events_c[] = {
    K("id"),
    N("service", TEXT),
    R("agency_id", "agencies(id)"),
    N("status", TEXT),
    N("located", INTEGER),
    N("lat", REAL),
    N("lon", REAL),
    C("path", TEXT),
    C("incident", TEXT),
    C("reason", TEXT),
    C("case_name", TEXT),
    N("duration_s", INTEGER),
    N("expires_at", INTEGER),
    N("extensions", INTEGER),
    N("ptz", INTEGER),
    N("export_allowed", INTEGER),
    C("basis_code", TEXT),
    N("created_by", TEXT),
    C("decided_by", TEXT),
    C("decision_note", TEXT),
    C("closed_by", TEXT),
    C("close_reason", TEXT),
    N("closed_at", INTEGER),
    STAMPS,
};
static const ch_store__index_desc_t events_i[] = {
    I("events_agency", "agency_id"),
    I("events_status", "status"),
};

static const ch_store__column_desc_t grants_c[] = {
    K("id"),
    R("event_id", "events(id)"),
    N("camera_id", INTEGER),
    N("agency_id", INTEGER),
    N("provider_id", INTEGER),
    N("status", TEXT),
    C("why", TEXT),
    N("expires_at", INTEGER),
    N("ended_at", INTEGER),
    C("ended_by", TEXT),
    C("end_reason", TEXT),
    STAMPS,
};
static const ch_store__index_desc_t grants_i[] = {I("grants_event", "event_id")};

/* No reference to cameras: a deleted camera's history stays. */
static const ch_store__column_desc_t health_c[] = {
    K("id"),           N("camera_id", INTEGER), N("agency_id", INTEGER),
    N("at", INTEGER),  N("old_state", TEXT),    N("new_state", TEXT),
    C("reason", TEXT),
};
static const ch_store__index_desc_t health_i[] = {I("camera_health_camera", "camera_id, at")};

static const ch_store__column_desc_t alerts_c[] = {
    K("id"),
    N("kind", TEXT),
    N("severity", TEXT),
    N("subject_type", TEXT),
    N("subject_id", INTEGER),
    N("agency_id", INTEGER),
    N("message", TEXT),
    C("details", TEXT),
    N("status", TEXT),
    N("raised_at", INTEGER),
    C("acked_by", TEXT),
    N("acked_at", INTEGER),
    C("note", TEXT),
    N("resolved_at", INTEGER),
    C("resolved_reason", TEXT),
    STAMPS,
};
static const ch_store__index_desc_t alerts_i[] = {I("alerts_status", "status")};

static const ch_store__column_desc_t device_transitions_c[] = {
    K("id"),
    N("device_id", INTEGER),
    N("agency_id", INTEGER),
    C("from_state", TEXT),
    N("to_state", TEXT),
    N("at", INTEGER),
    C("reason", TEXT),
    STAMPS,
};
static const ch_store__index_desc_t device_transitions_i[] = {
    I("device_transitions_device", "device_id"),
};

static const ch_store__column_desc_t health_watch_c[] = {
    K("id"),
    N("started_at", INTEGER),
    N("seen_at", INTEGER),
};

/* One row: its id is 1 (a CHECK in SQLite). */
static const ch_store__column_desc_t audit_checkpoint_c[] = {
    K("id"), N("size", INTEGER), N("root", BLOB), N("note", TEXT), N("updated_at", INTEGER),
};

/* The change log of the feed (store_watch.c): op is a ch_store_op_t. */
static const ch_store__column_desc_t store_changes_c[] = {
    K("seq"),
    N("tbl", TEXT),
    N("row_id", INTEGER),
    N("op", INTEGER),
};

static const ch_store__column_desc_t schema_migrations_c[] = {
    K("version"),
    N("applied_at", INTEGER),
};

const ch_store__table_desc_t ch_store__schema[] = {
    TABLE("agencies", agencies_c, agencies_i, CH_STORE__AUTOINCREMENT),
    TABLE("cameras", cameras_c, cameras_i, CH_STORE__AUTOINCREMENT),
    TABLE("devices", devices_c, devices_i, CH_STORE__AUTOINCREMENT),
    TABLE("audit_index", audit_index_c, audit_index_i, 0),
    TABLE("audit_refs", audit_refs_c, audit_refs_i, CH_STORE__WITHOUT_ROWID),
    TABLE("users", users_c, users_i, CH_STORE__AUTOINCREMENT),
    TABLE("api_keys", api_keys_c, api_keys_i, CH_STORE__AUTOINCREMENT),
    TABLE("sessions", sessions_c, sessions_i, CH_STORE__AUTOINCREMENT),
    TABLE_NOIDX("audit_outbox", audit_outbox_c, CH_STORE__AUTOINCREMENT),
    TABLE("events", events_c, events_i, CH_STORE__AUTOINCREMENT),
    TABLE("grants", grants_c, grants_i, CH_STORE__AUTOINCREMENT),
    TABLE("camera_health_transitions", health_c, health_i, CH_STORE__AUTOINCREMENT),
    TABLE("alerts", alerts_c, alerts_i, CH_STORE__AUTOINCREMENT),
    TABLE("device_transitions", device_transitions_c, device_transitions_i,
          CH_STORE__AUTOINCREMENT),
    TABLE_NOIDX("health_watch", health_watch_c, CH_STORE__AUTOINCREMENT),
    TABLE_NOIDX("audit_checkpoint", audit_checkpoint_c, 0),
    TABLE_NOIDX("store_changes", store_changes_c, 0),
    TABLE_NOIDX("schema_migrations", schema_migrations_c, 0),
};

const int ch_store__schema_ntables = (int)CH_ARRAY_SIZE(ch_store__schema);

const ch_store__table_desc_t *ch_store__schema_table(const char *name)
{
    for (int i = 0; i < ch_store__schema_ntables; i++) {
        if (strcmp(ch_store__schema[i].name, name) == 0) {
            return &ch_store__schema[i];
        }
    }
    return NULL;
}
