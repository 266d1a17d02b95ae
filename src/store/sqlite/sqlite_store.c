/*
 * store/sqlite/sqlite_store.c: the embedded SQLite back end of the store (camera health is in
 * sqlite_health.c beside it).
 *
 * One connection per handle, used by one thread at a time (store.h), so the connection is
 * opened without its own mutex. The database runs in WAL mode (readers never wait for the
 * importer), with foreign keys on and synchronous=NORMAL (a commit survives a crash of the
 * process; a power cut may lose the last commits but never corrupts the file).
 *
 * Every statement is prepared once, on first use, and cached on the handle; after each use it
 * is reset and its bindings cleared, because text is bound SQLITE_STATIC (no copy) from
 * records the caller owns and may free as soon as the call returns. SQL text is generated from
 * the record layouts of store_internal.h, so a column exists in one place only (plus the
 * migration that created it).
 *
 * Schema changes are migrations: SQL strings in an array, applied in order, each in its own
 * transaction, and recorded in schema_migrations (and PRAGMA user_version). Never edit a
 * migration that has shipped; add one.
 *
 * Imports: an upsert in a transaction on an empty (or nearly empty) table starts a bulk load,
 * which builds the table's indexes once at COMMIT instead of row by row (see "bulk loads").
 * Measured on a national-scale file (1.6 million cameras, 2 cores): about 7.5 s into an empty
 * database, of which 3.4 s are the index builds; about 3 s to upsert the same file again with
 * every row unchanged.
 *
 * Spatial index: a plain index on (lat, lon), not an R*Tree. Measured on 1.6 million cameras:
 * building the R*Tree took 14 s against 0.9 s for the index, while a city-sized box answers in
 * 6 ms with the index (0.7 ms with the R*Tree) and a street-sized box in 1 ms.
 */
#include "store/sqlite/sqlite_internal.h"

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODULE "store"

/* ---- schema -------------------------------------------------------------------------------- */

/*
 * Migration 1: agencies, cameras, devices.
 *
 * Ids are AUTOINCREMENT so that an id is never reused after a delete: grants, events and the
 * audit log refer to cameras by id, and a reused id would point old records at a new camera.
 *
 * Indexes: each secondary index in SQLite ends with the rowid, so an index on (purpose) is in
 * effect (purpose, id) and serves "purpose = ? AND id > ? ORDER BY id LIMIT ?" (the list order)
 * without a sort. source_key is UNIQUE (NULLs are distinct in SQLite, so records created by
 * the API, without a key, do not collide). The lat/lon index is partial: unlocated cameras
 * (lat = lon = 0) never match a bounding box and are left out, which keeps the index small.
 */
static const char migration_1[] =
    "CREATE TABLE agencies (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    name TEXT NOT NULL,\n"
    "    kind TEXT NOT NULL,\n"
    "    level TEXT NOT NULL,\n"
    "    type TEXT NOT NULL,\n"
    "    phone TEXT,\n"
    "    code TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE UNIQUE INDEX agencies_name ON agencies(name);\n"
    "CREATE TABLE cameras (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    agency_id INTEGER NOT NULL REFERENCES agencies(id),\n"
    "    name TEXT NOT NULL,\n"
    "    located INTEGER NOT NULL,\n"
    "    lat REAL NOT NULL,\n"
    "    lon REAL NOT NULL,\n"
    "    road_address TEXT,\n"
    "    lot_address TEXT,\n"
    "    purpose TEXT,\n"
    "    kind TEXT NOT NULL,\n"
    "    heading_deg REAL NOT NULL,\n"
    "    fov_deg REAL NOT NULL,\n"
    "    range_m REAL NOT NULL,\n"
    "    pixels INTEGER NOT NULL,\n"
    "    retention_days INTEGER NOT NULL,\n"
    "    installed_ym TEXT,\n"
    "    rtsp_url TEXT,\n"
    "    rtsp_username TEXT,\n"
    "    rtsp_password TEXT,\n"
    "    codec TEXT,\n"
    "    status TEXT NOT NULL,\n"
    "    direction TEXT,\n"
    "    note TEXT,\n"
    "    flags TEXT,\n"
    "    source_file TEXT,\n"
    "    source_line INTEGER NOT NULL,\n"
    "    source_key TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE UNIQUE INDEX cameras_source_key ON cameras(source_key);\n"
    "CREATE INDEX cameras_agency ON cameras(agency_id);\n"
    "CREATE INDEX cameras_purpose ON cameras(purpose);\n"
    "CREATE INDEX cameras_kind ON cameras(kind);\n"
    "CREATE INDEX cameras_status ON cameras(status);\n"
    "CREATE INDEX cameras_latlon ON cameras(lat, lon) WHERE located = 1;\n"
    "CREATE TABLE devices (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    agency_id INTEGER NOT NULL REFERENCES agencies(id),\n"
    "    name TEXT NOT NULL,\n"
    "    kind TEXT NOT NULL,\n"
    "    located INTEGER NOT NULL,\n"
    "    lat REAL NOT NULL,\n"
    "    lon REAL NOT NULL,\n"
    "    road_address TEXT,\n"
    "    lot_address TEXT,\n"
    "    status TEXT NOT NULL,\n"
    "    attrs TEXT,\n"
    "    flags TEXT,\n"
    "    source_file TEXT,\n"
    "    source_line INTEGER NOT NULL,\n"
    "    source_key TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE UNIQUE INDEX devices_source_key ON devices(source_key);\n"
    "CREATE INDEX devices_agency ON devices(agency_id);\n"
    "CREATE INDEX devices_kind ON devices(kind);\n"
    "CREATE INDEX devices_status ON devices(status);\n"
    "CREATE INDEX devices_latlon ON devices(lat, lon) WHERE located = 1;\n";

/* The audit index (see store.h): a pointer into the audit log by seq, rebuilt from the log
 * when lost. */
static const char migration_2[] =
    "CREATE TABLE audit_index (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    time_ns INTEGER NOT NULL,\n"
    "    actor TEXT,\n"
    "    action TEXT\n"
    ");\n"
    "CREATE INDEX audit_index_time ON audit_index(time_ns);\n"
    "CREATE INDEX audit_index_actor ON audit_index(actor);\n"
    "CREATE INDEX audit_index_action ON audit_index(action);\n"
    /* What each record is about: kind 1 camera, 2 agency, 3 event. */
    "CREATE TABLE audit_refs (\n"
    "    kind INTEGER NOT NULL,\n"
    "    id INTEGER NOT NULL,\n"
    "    seq INTEGER NOT NULL REFERENCES audit_index(seq) ON DELETE CASCADE,\n"
    "    PRIMARY KEY (kind, id, seq)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX audit_refs_seq ON audit_refs(seq);\n";

/* Accounts (users, API keys, sessions) and the audit outbox (see store.h). A user's
 * agency_id is 0 for the roles that have none, so it carries no foreign key; the API checks
 * the agency exists. Sessions go with their user. */
static const char migration_3[] =
    "CREATE TABLE users (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    name TEXT NOT NULL,\n"
    "    role TEXT NOT NULL,\n"
    "    agency_id INTEGER NOT NULL,\n"
    "    password_hash TEXT NOT NULL,\n"
    "    disabled INTEGER NOT NULL,\n"
    "    failed_logins INTEGER NOT NULL,\n"
    "    locked_until INTEGER NOT NULL,\n"
    "    last_login INTEGER NOT NULL,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE UNIQUE INDEX users_name ON users(name);\n"
    "CREATE TABLE api_keys (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    agency_id INTEGER NOT NULL REFERENCES agencies(id),\n"
    "    role TEXT NOT NULL,\n"
    "    secret_hash TEXT NOT NULL,\n"
    "    label TEXT,\n"
    "    revoked_at INTEGER NOT NULL,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX api_keys_agency ON api_keys(agency_id);\n"
    "CREATE TABLE sessions (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    token_hash TEXT NOT NULL,\n"
    "    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,\n"
    "    csrf TEXT NOT NULL,\n"
    "    expires_at INTEGER NOT NULL,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE UNIQUE INDEX sessions_token ON sessions(token_hash);\n"
    "CREATE INDEX sessions_user ON sessions(user_id);\n"
    "CREATE INDEX sessions_expiry ON sessions(expires_at);\n"
    "CREATE TABLE audit_outbox (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    actor TEXT NOT NULL,\n"
    "    action TEXT NOT NULL,\n"
    "    object TEXT,\n"
    "    details TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n";

/* Events and their grants (see store.h). Grants are read by event only (who saw a camera is
 * answered from the audit record), so they carry one index: every index is pages written
 * per event. */
static const char migration_4[] = "CREATE TABLE events (\n"
                                  "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                                  "    service TEXT NOT NULL,\n"
                                  "    agency_id INTEGER NOT NULL REFERENCES agencies(id),\n"
                                  "    status TEXT NOT NULL,\n"
                                  "    located INTEGER NOT NULL,\n"
                                  "    lat REAL NOT NULL,\n"
                                  "    lon REAL NOT NULL,\n"
                                  "    path TEXT,\n"
                                  "    incident TEXT,\n"
                                  "    reason TEXT,\n"
                                  "    case_name TEXT,\n"
                                  "    duration_s INTEGER NOT NULL,\n"
                                  "    expires_at INTEGER NOT NULL,\n"
                                  "    extensions INTEGER NOT NULL,\n"
                                  "    ptz INTEGER NOT NULL,\n"
                                  "    export_allowed INTEGER NOT NULL,\n"
                                  "    basis_code TEXT,\n"
                                  "    created_by TEXT NOT NULL,\n"
                                  "    decided_by TEXT,\n"
                                  "    decision_note TEXT,\n"
                                  "    closed_by TEXT,\n"
                                  "    close_reason TEXT,\n"
                                  "    closed_at INTEGER NOT NULL,\n"
                                  "    created_at INTEGER NOT NULL,\n"
                                  "    updated_at INTEGER NOT NULL\n"
                                  ");\n"
                                  "CREATE INDEX events_agency ON events(agency_id);\n"
                                  "CREATE INDEX events_status ON events(status);\n"
                                  "CREATE TABLE grants (\n"
                                  "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                                  "    event_id INTEGER NOT NULL REFERENCES events(id),\n"
                                  "    camera_id INTEGER NOT NULL,\n"
                                  "    agency_id INTEGER NOT NULL,\n"
                                  "    provider_id INTEGER NOT NULL,\n"
                                  "    status TEXT NOT NULL,\n"
                                  "    why TEXT,\n"
                                  "    expires_at INTEGER NOT NULL,\n"
                                  "    ended_at INTEGER NOT NULL,\n"
                                  "    ended_by TEXT,\n"
                                  "    end_reason TEXT,\n"
                                  "    created_at INTEGER NOT NULL,\n"
                                  "    updated_at INTEGER NOT NULL\n"
                                  ");\n"
                                  "CREATE INDEX grants_event ON grants(event_id);\n";

/*
 * Runs (see "runs" below): a camera row may hold the cameras of one imported site. site_count
 * is how many (ids id - site_count + 1 .. id), site_number the number ending the first one's
 * name and key; plain rows (API creates, older imports) have 1 and NULL.
 */
static const char migration_5[] =
    "ALTER TABLE cameras ADD COLUMN site_count INTEGER NOT NULL DEFAULT 1;\n"
    "ALTER TABLE cameras ADD COLUMN site_number INTEGER;\n"
    /* Totals add site_count: the agency index carries it, so that the total of a list by
     * agency, and of a list without filters (SQLite sums over the smallest index that has the
     * column), never reads the table. */
    "DROP INDEX cameras_agency;\n"
    "CREATE INDEX cameras_agency ON cameras(agency_id, site_count);\n";
/* Camera health (src/health): one row per state transition, kept when the camera goes. Read
 * by camera and time (a camera's history), by time (a month's report) and as the last row of
 * each camera (the states at start). The partial index lists the cameras with a stream URL
 * (the ones probed) without a scan of every imported camera; imported rows without a URL
 * cost it nothing. */
static const char migration_6[] = "CREATE TABLE camera_health_transitions (\n"
                                  "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
                                  "    camera_id INTEGER NOT NULL,\n"
                                  "    agency_id INTEGER NOT NULL,\n"
                                  "    at INTEGER NOT NULL,\n"
                                  "    old_state TEXT NOT NULL,\n"
                                  "    new_state TEXT NOT NULL,\n"
                                  "    reason TEXT\n"
                                  ");\n"
                                  "CREATE INDEX camera_health_camera ON "
                                  "camera_health_transitions(camera_id, at);\n"
                                  "CREATE INDEX cameras_stream ON cameras(id) "
                                  "WHERE rtsp_url IS NOT NULL;\n";

/* Alerts (src/alert/) and the device transitions the MQTT device watch sees (issue 8). */
static const char migration_7[] =
    "CREATE TABLE alerts (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    kind TEXT NOT NULL,\n"
    "    severity TEXT NOT NULL,\n"
    "    subject_type TEXT NOT NULL,\n"
    "    subject_id INTEGER NOT NULL,\n"
    "    agency_id INTEGER NOT NULL,\n"
    "    message TEXT NOT NULL,\n"
    "    details TEXT,\n"
    "    status TEXT NOT NULL,\n"
    "    raised_at INTEGER NOT NULL,\n"
    "    acked_by TEXT,\n"
    "    acked_at INTEGER NOT NULL,\n"
    "    note TEXT,\n"
    "    resolved_at INTEGER NOT NULL,\n"
    "    resolved_reason TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX alerts_status ON alerts(status);\n"
    "CREATE TABLE device_transitions (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    device_id INTEGER NOT NULL,\n"
    "    agency_id INTEGER NOT NULL,\n"
    "    from_state TEXT,\n"
    "    to_state TEXT NOT NULL,\n"
    "    at INTEGER NOT NULL,\n"
    "    reason TEXT,\n"
    "    created_at INTEGER NOT NULL,\n"
    "    updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX device_transitions_device ON device_transitions(device_id);\n";

/* When camera health was watching (one row per run of the hub with health on, its last sign of
 * life moved forward as it runs): reports count no camera's time outside these windows. The
 * history stored before this migration gets one window, from its first transition to now. */
static const char migration_8[] =
    "CREATE TABLE health_watch (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    started_at INTEGER NOT NULL,\n"
    "    seen_at INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO health_watch(started_at, seen_at)\n"
    "    SELECT min(at), CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)\n"
    "    FROM camera_health_transitions HAVING count(*) > 0;\n";

/* The audit log's latest checkpoint, kept beside the log (see store.h): one row. A log cut
 * at its end, with its checkpoints file deleted, no longer matches it. */
static const char migration_9[] = "CREATE TABLE audit_checkpoint (\n"
                                  "    id INTEGER PRIMARY KEY CHECK (id = 1),\n"
                                  "    size INTEGER NOT NULL,\n"
                                  "    root BLOB NOT NULL,\n"
                                  "    note TEXT NOT NULL,\n"
                                  "    updated_at INTEGER NOT NULL\n"
                                  ");\n";

/* The change log: what handles without watchers committed, for the watching handle of the
 * same database to read (sqlite_feed.c). seq is the rowid: the newest row is never deleted,
 * so numbers follow one another. */
static const char migration_10[] = "CREATE TABLE store_changes (\n"
                                   "    seq INTEGER PRIMARY KEY,\n"
                                   "    tbl TEXT NOT NULL,\n"
                                   "    row_id INTEGER NOT NULL,\n"
                                   "    op INTEGER NOT NULL\n"
                                   ");\n";

/* Mutual TLS: an API key may be bound to its agency's client certificate (its key). */
static const char migration_11[] = "ALTER TABLE api_keys ADD COLUMN tls_key TEXT;\n";

/* A camera's pinned TLS key (rtsps:// with a self-signed certificate): the SPKI fingerprint,
 * "sha256:" and 64 hex; NULL for a chain checked against tls.ca_bundle (issue 17). */
static const char migration_12[] = "ALTER TABLE cameras ADD COLUMN tls_pin TEXT;\n";

/* An agency's systems' client certificate key (issue 17): "sha256:" and 64 hex of its SPKI, or
 * NULL. With it the relay admits the agency's viewers over RTSPS with that certificate only. */
static const char migration_13[] = "ALTER TABLE agencies ADD COLUMN tls_key TEXT;\n";

static const char *const migrations[] = {
    migration_1, migration_2, migration_3,  migration_4,  migration_5,  migration_6,  migration_7,
    migration_8, migration_9, migration_10, migration_11, migration_12, migration_13,
};

#define SCHEMA_VERSION ((int)CH_ARRAY_SIZE(migrations))

/* ---- the handle ---------------------------------------------------------------------------- */

#define NMASKS (1u << CH_STORE__F_COUNT)

/* The cached statements of one table. */
typedef struct sq_table {
    char *cols;             /* "agency_id,name,...": the column list, for SQL text */
    sqlite3_stmt *insert;   /* plain insert */
    sqlite3_stmt *insert_k; /* insert that does nothing when the source_key exists */
    sqlite3_stmt *update;   /* by id, RETURNING created_at */
    /* By id, for upserts (created_at known): the columns the upsert keeps are not set, one
     * statement per set of kept groups (a file's layout; few per process), used in turn. */
    struct sq_update_kept {
        unsigned keep;
        sqlite3_stmt *stmt;
    } update_k[4];
    unsigned update_k_next;
    sqlite3_stmt *get;           /* by id */
    sqlite3_stmt *by_key;        /* by source_key */
    sqlite3_stmt *remove;        /* by id */
    sqlite3_stmt *count;         /* all rows */
    sqlite3_stmt *get_run;       /* the row holding an id (tables with runs) */
    sqlite3_stmt *insert_run;    /* a new run with its id, count and number */
    sqlite3_stmt *run_set;       /* a run's count, number, name and key, by id */
    sqlite3_stmt *run_copy;      /* a copy of a run's row with another id, count, number, ... */
    sqlite3_stmt *key_run;       /* the runs that may hold a numbered key */
    sqlite3_stmt *key_any;       /* whether any key starts with a prefix */
    int64_t next_id;             /* the highest id given (runs), or 0 when not known */
    sqlite3_stmt *list[NMASKS];  /* a page, per combination of filters */
    sqlite3_stmt *total[NMASKS]; /* the count of matches, per combination of filters */
    /* Which path an upsert tries first: insert (1), which costs one index probe when the key
     * is new, or lookup (0), which avoids a failed insert when it is not. Set from the last
     * outcome, so a fresh import and a re-import each run their cheap path. */
    int insert_first;
    /* Bulk load (see sq_bulk_begin): whether this transaction looked at the table yet; the
     * CREATE INDEX statements of the indexes it dropped, to run before COMMIT; and, while the
     * unique key index is dropped (bulk set), the keys of the table's rows in memory. */
    int bulk_checked;
    int bulk;
    char **deferred;
    int ndeferred;
    struct sq_slot *map; /* open addressing, map_cap a power of two; id 0 marks a free slot */
    size_t map_cap;
    size_t map_count;
} sq_table_t;

/* One key of a bulk load: the hash of the key text and the row holding it. */
typedef struct sq_slot {
    uint64_t hash;
    int64_t id;
} sq_slot_t;

typedef struct sq_store {
    ch_store_t base; /* first: the handle callers hold */
    sqlite3 *db;
    int version;
    sq_table_t tab[CH_STORE__NTABLES];
    sqlite3_stmt *agency_by_name;
    sqlite3_stmt *begin, *begin_read, *commit, *rollback;
    sqlite3_stmt *audit_add, *audit_ref, *audit_last;
    sqlite3_stmt *data_version;
    int bulk_cache; /* the page cache is a bulk load's (sq_bulk_cache) */
} sq_store_t;

static sq_store_t *sq(ch_store_t *st)
{
    return (sq_store_t *)(void *)st;
}

static sq_table_t *sq_tab(sq_store_t *s, const ch_store__table_t *t)
{
    ptrdiff_t i = t - ch_store__tables;
    assert(i >= 0 && i < CH_STORE__NTABLES);
    return &s->tab[i];
}

/*
 * Turns the connection's last error into a store error code and records the message. Unique
 * and primary-key violations are CH_EEXIST, foreign-key violations CH_ECONFLICT, anything else
 * CH_EDB. SQLite's messages name the constraint, never the values, so no secret can leak into
 * the message (and from there into a log).
 */
static int sq_fail(sq_store_t *s, const char *what)
{
    int ext = sqlite3_extended_errcode(s->db);
    int rc = CH_EDB;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
        rc = CH_EEXIST;
    } else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
        rc = CH_ECONFLICT;
    }
    return ch_store__fail(&s->base, rc, "%s: %s", what, sqlite3_errmsg(s->db));
}

/*
 * Returns the statement cached in *slot, preparing sql into it on first use. The statement is
 * prepared "persistent", telling SQLite it will be reused many times.
 */
static int sq_prepare(sq_store_t *s, sqlite3_stmt **slot, const char *sql, sqlite3_stmt **out)
{
    if (*slot == NULL) {
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK) {
            *slot = NULL;
            return sq_fail(s, "prepare");
        }
    }
    *out = *slot;
    return 0;
}

/* Makes a used statement ready for its next use, and drops its bindings so that it keeps no
 * pointer into the caller's memory. */
static void sq_done(sqlite3_stmt *stmt)
{
    if (stmt != NULL) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
}

/* Runs a statement that returns no row (BEGIN, COMMIT, ...) and resets it. */
static int sq_exec_stmt(sq_store_t *s, sqlite3_stmt **slot, const char *sql, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sq_prepare(s, slot, sql, &stmt);
    if (rc != 0) {
        return rc;
    }
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        rc = sq_fail(s, what);
        sq_done(stmt);
        return rc;
    }
    sq_done(stmt);
    return 0;
}

/* ---- SQL text ------------------------------------------------------------------------------ */

/* SELECT id, <cols>, created_at, updated_at FROM <table> (the shape sq_read_row reads), then
 * site_count and site_number for a table with runs. */
static void sql_select(ch_buf_t *b, const ch_store__table_t *t, const sq_table_t *tab)
{
    ch_buf_appendf(b, "SELECT id,%s,created_at,updated_at%s FROM %s", tab->cols,
                   t->runs ? ",site_count,site_number" : "", t->name);
}

/* The columns of a run after sql_select's. */
#define RUN_COUNT_COL(t)  ((t)->ncols + 3)
#define RUN_NUMBER_COL(t) ((t)->ncols + 4)

/* INSERT with ?1..?n for the columns, then created_at and updated_at. */
static void sql_insert(ch_buf_t *b, const ch_store__table_t *t, const sq_table_t *tab)
{
    ch_buf_appendf(b, "INSERT INTO %s(%s,created_at,updated_at) VALUES(", t->name, tab->cols);
    for (int i = 1; i <= t->ncols + 2; i++) {
        ch_buf_appendf(b, "%s?%d", i > 1 ? "," : "", i);
    }
    ch_buf_append_char(b, ')');
}

/* UPDATE of every column and updated_at (?n+2) by id (?n+3). */
/* Whether an upsert leaves column c as stored: the API's own columns (local), and the groups
 * the file has no column for (keep). */
static int sq_col_kept(const ch_store__col_t *c, unsigned keep)
{
    return c->local || (c->group & keep) != 0;
}

/* The index of a table's column that a maintenance status keeps (a camera's status), or -1. */
static int sq_maintenance_col(const ch_store__table_t *t)
{
    for (int i = 0; i < t->ncols; i++) {
        if (t->cols[i].group & CH_STORE__KEEP_MAINTENANCE) {
            return i;
        }
    }
    return -1;
}

/*
 * The keep of an upsert for one found record whose stored status is stored: keep, plus
 * CH_STORE__KEEP_MAINTENANCE when an operator put the camera in "maintenance" and the file
 * says only "active". A public file knows nothing of maintenance, so re-importing its next
 * edition must not bring a camera under repair back into service (and into emergency grants);
 * the file's "inactive" (deleted) and "unlocated" still win: the camera is gone or cannot be
 * placed. The stored status comes from the row the upsert read anyway: no query is added.
 */
static unsigned sq_keep_for(const ch_store__table_t *t, unsigned keep, const char *stored,
                            const void *rec)
{
    int i = sq_maintenance_col(t);
    if (i < 0 || stored == NULL || strcmp(stored, "maintenance") != 0) {
        return keep;
    }
    const char *next = *(const char *const *)(const void *)((const char *)rec + t->cols[i].offset);
    return next != NULL && strcmp(next, "active") == 0 ? keep | CH_STORE__KEEP_MAINTENANCE : keep;
}

/* As sq_keep_for, with the stored status read from the current row of stmt (sql_select's
 * columns). */
static unsigned sq_keep_for_row(sqlite3_stmt *stmt, const ch_store__table_t *t, unsigned keep,
                                const void *rec)
{
    int i = sq_maintenance_col(t);
    if (i < 0) {
        return keep;
    }
    return sq_keep_for(t, keep, (const char *)sqlite3_column_text(stmt, i + 1), rec);
}

/* UPDATE of every column by id; an upsert's (upsert set) leaves out the columns it keeps. Their
 * parameters are still bound (by sq_bind_record), unused. */
static void sql_update(ch_buf_t *b, const ch_store__table_t *t, int upsert, unsigned keep)
{
    ch_buf_appendf(b, "UPDATE %s SET ", t->name);
    for (int i = 0; i < t->ncols; i++) {
        if (!(upsert && sq_col_kept(&t->cols[i], keep))) {
            ch_buf_appendf(b, "%s=?%d,", t->cols[i].name, i + 1);
        }
    }
    ch_buf_appendf(b, "updated_at=?%d WHERE id=?%d", t->ncols + 2, t->ncols + 3);
}

/*
 * Parameter numbers of the list filters. They are fixed whatever filters are present, so
 * binding does not depend on the statement's text; parameters a statement does not use are
 * simply not bound.
 */
enum {
    P_AFTER = 1,
    P_AGENCY,
    P_PURPOSE,
    P_KIND,
    P_STATUS,
    P_TYPE,
    P_LEVEL,
    P_TEXT,
    P_MIN_LAT,
    P_MAX_LAT,
    P_MIN_LON,
    P_MAX_LON,
    P_LIMIT,
    P_EVENT,
    P_DEVICE,
};

/* The WHERE terms of a list for the filters in mask (after "WHERE 1"). */
static void sql_filters(ch_buf_t *b, const ch_store__table_t *t, unsigned mask)
{
    static const struct {
        unsigned bit;
        const char *col;
        int param;
    } eq[] = {
        {CH_STORE__F_AGENCY, "agency_id", P_AGENCY}, {CH_STORE__F_PURPOSE, "purpose", P_PURPOSE},
        {CH_STORE__F_KIND, "kind", P_KIND},          {CH_STORE__F_STATUS, "status", P_STATUS},
        {CH_STORE__F_TYPE, "type", P_TYPE},          {CH_STORE__F_LEVEL, "level", P_LEVEL},
        {CH_STORE__F_EVENT, "event_id", P_EVENT},    {CH_STORE__F_DEVICE, "device_id", P_DEVICE},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(eq); i++) {
        if (mask & eq[i].bit) {
            ch_buf_appendf(b, " AND %s=?%d", eq[i].col, eq[i].param);
        }
    }
    if (mask & CH_STORE__F_TEXT) {
        /* LIKE with an escaped pattern, not instr(): ASCII case does not matter to people
         * searching for "CCTV" or "cctv"; Korean text is matched byte for byte. */
        ch_buf_append_str(b, " AND (");
        for (int i = 0; t->text_col[i] != NULL; i++) {
            ch_buf_appendf(b, "%s%s LIKE ?%d ESCAPE '\\'", i > 0 ? " OR " : "", t->text_col[i],
                           P_TEXT);
        }
        ch_buf_append_char(b, ')');
    }
    if (mask & CH_STORE__F_BBOX) {
        /* "located = 1" lets SQLite use the partial lat/lon index. */
        ch_buf_appendf(b, " AND located=1 AND lat BETWEEN ?%d AND ?%d AND lon BETWEEN ?%d AND ?%d",
                       P_MIN_LAT, P_MAX_LAT, P_MIN_LON, P_MAX_LON);
    }
}

/* ---- rows and records ---------------------------------------------------------------------- */

/* Binds the columns of rec to ?1..?n, then created_at and updated_at to ?n+1, ?n+2. Text is
 * bound without a copy: the caller keeps rec alive until the statement is reset. */
static int sq_bind_record(sqlite3_stmt *stmt, const ch_store__table_t *t, const void *rec,
                          int64_t created_at, int64_t updated_at)
{
    int rc = SQLITE_OK;
    for (int i = 0; i < t->ncols && rc == SQLITE_OK; i++) {
        const ch_store__col_t *c = &t->cols[i];
        const void *p = (const char *)rec + c->offset;
        switch (c->type) {
        case CH_STORE__TEXT: {
            const char *v = *(const char *const *)p;
            rc = v != NULL ? sqlite3_bind_text(stmt, i + 1, v, -1, SQLITE_STATIC)
                           : sqlite3_bind_null(stmt, i + 1);
            break;
        }
        case CH_STORE__INT64:
            rc = sqlite3_bind_int64(stmt, i + 1, *(const int64_t *)p);
            break;
        case CH_STORE__INT:
            rc = sqlite3_bind_int(stmt, i + 1, *(const int *)p);
            break;
        case CH_STORE__DOUBLE:
            rc = sqlite3_bind_double(stmt, i + 1, *(const double *)p);
            break;
        }
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(stmt, t->ncols + 1, created_at);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(stmt, t->ncols + 2, updated_at);
    }
    return rc;
}

/* Reads the current row of a statement built by sql_select into a zeroed record, copying
 * strings (the record owns them). */
static void sq_read_row(sqlite3_stmt *stmt, const ch_store__table_t *t, void *rec)
{
    CH_STORE__ID(rec) = sqlite3_column_int64(stmt, 0);
    for (int i = 0; i < t->ncols; i++) {
        const ch_store__col_t *c = &t->cols[i];
        void *p = CH_STORE__FIELD(rec, c);
        int col = i + 1;
        switch (c->type) {
        case CH_STORE__TEXT: {
            const unsigned char *v = sqlite3_column_text(stmt, col);
            *(char **)p = v != NULL
                              ? ch_strndup((const char *)v, (size_t)sqlite3_column_bytes(stmt, col))
                              : NULL;
            break;
        }
        case CH_STORE__INT64:
            *(int64_t *)p = sqlite3_column_int64(stmt, col);
            break;
        case CH_STORE__INT:
            *(int *)p = sqlite3_column_int(stmt, col);
            break;
        case CH_STORE__DOUBLE:
            *(double *)p = sqlite3_column_double(stmt, col);
            break;
        }
    }
    CH_STORE__I64_AT(rec, t->created_off) = sqlite3_column_int64(stmt, t->ncols + 1);
    CH_STORE__I64_AT(rec, t->updated_off) = sqlite3_column_int64(stmt, t->ncols + 2);
}

/* Whether the current row (built by sql_select) holds the columns of rec that an import sets
 * (provenance and the columns it keeps aside: upserts only). Compares in place, without copying a
 * string. Doubles compare exactly: SQLite stores them bit for bit. */
static int sq_row_equals(sqlite3_stmt *stmt, const ch_store__table_t *t, const void *rec,
                         unsigned keep)
{
    for (int i = 0; i < t->ncols; i++) {
        const ch_store__col_t *c = &t->cols[i];
        const void *p = (const char *)rec + c->offset;
        int col = i + 1;
        if (c->provenance || sq_col_kept(c, keep)) {
            continue;
        }
        switch (c->type) {
        case CH_STORE__TEXT: {
            const char *v = *(const char *const *)p;
            const unsigned char *have = sqlite3_column_text(stmt, col);
            if (v == NULL || have == NULL) {
                if ((v == NULL) != (have == NULL)) {
                    return 0;
                }
                break;
            }
            size_t n = (size_t)sqlite3_column_bytes(stmt, col);
            if (strncmp(v, (const char *)have, n) != 0 || v[n] != '\0') {
                return 0;
            }
            break;
        }
        case CH_STORE__INT64:
            if (sqlite3_column_int64(stmt, col) != *(const int64_t *)p) {
                return 0;
            }
            break;
        case CH_STORE__INT:
            if (sqlite3_column_int64(stmt, col) != *(const int *)p) {
                return 0;
            }
            break;
        case CH_STORE__DOUBLE:
            if (sqlite3_column_double(stmt, col) != *(const double *)p) {
                return 0;
            }
            break;
        }
    }
    return 1;
}

/* ---- statements per table ------------------------------------------------------------------ */

/* Which of a table's fixed statements to get. */
typedef enum sq_which {
    SQ_INSERT,
    SQ_INSERT_K,
    SQ_UPDATE,
    SQ_GET,
    SQ_BY_KEY,
    SQ_REMOVE,
    SQ_COUNT,
    SQ_GET_RUN,
    SQ_INSERT_RUN,
    SQ_RUN_SET,
    SQ_RUN_COPY,
    SQ_KEY_RUN,
    SQ_KEY_ANY,
} sq_which_t;

/* Returns one of table t's fixed statements, building its SQL and preparing it on first use. */
static int sq_table_stmt(sq_store_t *s, const ch_store__table_t *t, sq_which_t which,
                         sqlite3_stmt **out)
{
    sq_table_t *tab = sq_tab(s, t);
    sqlite3_stmt **slot = NULL;
    ch_buf_t b;
    int rc;

    switch (which) {
    case SQ_INSERT:
        slot = &tab->insert;
        break;
    case SQ_INSERT_K:
        slot = &tab->insert_k;
        break;
    case SQ_UPDATE:
        slot = &tab->update;
        break;
    case SQ_GET:
        slot = &tab->get;
        break;
    case SQ_BY_KEY:
        slot = &tab->by_key;
        break;
    case SQ_REMOVE:
        slot = &tab->remove;
        break;
    case SQ_COUNT:
        slot = &tab->count;
        break;
    case SQ_GET_RUN:
        slot = &tab->get_run;
        break;
    case SQ_INSERT_RUN:
        slot = &tab->insert_run;
        break;
    case SQ_RUN_SET:
        slot = &tab->run_set;
        break;
    case SQ_RUN_COPY:
        slot = &tab->run_copy;
        break;
    case SQ_KEY_RUN:
        slot = &tab->key_run;
        break;
    case SQ_KEY_ANY:
        slot = &tab->key_any;
        break;
    }
    if (*slot != NULL) {
        *out = *slot;
        return 0;
    }
    ch_buf_init(&b);
    switch (which) {
    case SQ_INSERT:
        sql_insert(&b, t, tab);
        break;
    case SQ_INSERT_K:
        assert(t->key_col >= 0);
        sql_insert(&b, t, tab);
        ch_buf_appendf(&b, " ON CONFLICT(%s) DO NOTHING", t->cols[t->key_col].name);
        break;
    case SQ_UPDATE:
        sql_update(&b, t, 0, 0);
        ch_buf_append_str(&b, " RETURNING created_at");
        break;
    case SQ_GET:
        sql_select(&b, t, tab);
        ch_buf_append_str(&b, " WHERE id=?1");
        break;
    case SQ_BY_KEY:
        assert(t->key_col >= 0);
        sql_select(&b, t, tab);
        ch_buf_appendf(&b, " WHERE %s=?1", t->cols[t->key_col].name);
        break;
    case SQ_REMOVE:
        ch_buf_appendf(&b, "DELETE FROM %s WHERE id=?1", t->name);
        break;
    case SQ_COUNT:
        ch_buf_appendf(
            &b, t->runs ? "SELECT coalesce(sum(site_count),0) FROM %s" : "SELECT count(*) FROM %s",
            t->name);
        break;
    case SQ_GET_RUN:
        sql_select(&b, t, tab);
        ch_buf_append_str(&b, " WHERE id>=?1 ORDER BY id LIMIT 1");
        break;
    case SQ_INSERT_RUN:
        ch_buf_appendf(&b,
                       "INSERT INTO %s(%s,created_at,updated_at,site_count,site_number,id) VALUES(",
                       t->name, tab->cols);
        for (int i = 1; i <= t->ncols + 5; i++) {
            ch_buf_appendf(&b, "%s?%d", i > 1 ? "," : "", i);
        }
        ch_buf_append_char(&b, ')');
        break;
    case SQ_RUN_SET:
        ch_buf_appendf(&b, "UPDATE %s SET site_count=?2,site_number=?3,name=?4,%s=?5 WHERE id=?1",
                       t->name, t->cols[t->key_col].name);
        break;
    case SQ_RUN_COPY:
        ch_buf_appendf(
            &b, "INSERT INTO %s(id,%s,created_at,updated_at,site_count,site_number) SELECT ?1",
            t->name, tab->cols);
        for (int i = 0; i < t->ncols; i++) {
            const char *c = t->cols[i].name;
            ch_buf_appendf(&b, ",%s", i == t->key_col ? "?5" : strcmp(c, "name") == 0 ? "?4" : c);
        }
        ch_buf_appendf(&b, ",created_at,updated_at,?2,?3 FROM %s WHERE id=?6", t->name);
        break;
    case SQ_KEY_RUN:
        sql_select(&b, t, tab);
        ch_buf_appendf(&b,
                       " WHERE %s>=?1 AND %s<?2 AND site_number<?3 AND site_number+site_count>?3",
                       t->cols[t->key_col].name, t->cols[t->key_col].name);
        break;
    case SQ_KEY_ANY:
        ch_buf_appendf(&b, "SELECT 1 FROM %s WHERE %s>=?1 AND %s<?2 LIMIT 1", t->name,
                       t->cols[t->key_col].name, t->cols[t->key_col].name);
        break;
    }
    rc = sq_prepare(s, slot, b.data, out);
    ch_buf_fini(&b);
    return rc;
}

/* The UPDATE of an upsert that keeps the groups keep (and the local columns) as stored. */
static int sq_update_kept(sq_store_t *s, const ch_store__table_t *t, unsigned keep,
                          sqlite3_stmt **out)
{
    sq_table_t *tab = sq_tab(s, t);
    size_t n = CH_ARRAY_SIZE(tab->update_k);
    for (size_t i = 0; i < n; i++) {
        if (tab->update_k[i].stmt != NULL && tab->update_k[i].keep == keep) {
            *out = tab->update_k[i].stmt;
            return 0;
        }
    }
    struct sq_update_kept *slot = &tab->update_k[tab->update_k_next++ % n];
    sqlite3_finalize(slot->stmt);
    slot->stmt = NULL;
    slot->keep = keep;
    ch_buf_t b;
    ch_buf_init(&b);
    sql_update(&b, t, 1, keep);
    int rc = sq_prepare(s, &slot->stmt, b.data, out);
    ch_buf_fini(&b);
    return rc;
}

/* ---- bulk loads ---------------------------------------------------------------------------- */

/*
 * An initial import (upserts into a table that is empty or nearly so, in one transaction) is
 * the one write that is large: a national file makes 1.6 million cameras. Inserting them one by
 * one into the table's indexes is what costs most, for two reasons measured on such a file:
 *
 *  - The source_key index is keyed by hashes, so every insert lands at a random place in a
 *    50 MB tree: a cache miss per level, the largest single cost of the import.
 *  - Indexes on columns with few values (kind, status, purpose) take every insert in the middle
 *    of the tree, where SQLite splits pages in half.
 *
 * So on the first upsert into such a table in a transaction, sq_bulk_begin drops the table's
 * indexes and remembers their CREATE statements; upserts then find keys in an in-memory hash
 * map (sq_slot_t) and append rows; sq_bulk_end builds the indexes again before COMMIT, by
 * sorting, which writes packed pages. The result is the same rows and the same schema.
 *
 * Callers cannot tell: DDL is transactional in SQLite, so a rollback restores the indexes and
 * other connections never see the table without them. Inside the transaction every query still
 * answers correctly, only without those indexes; a create, update or delete on the table ends
 * the bulk load first (the indexes are rebuilt at once), so that the unique index is there to
 * check the key it may write. Index definitions are read from sqlite_schema, so indexes added
 * by later migrations are handled too.
 */

/* Below this many rows a table counts as empty enough for a bulk load. Rebuilding indexes over
 * that many rows costs milliseconds, and the map is filled with their keys first. */
#define BULK_MAX_ROWS 10000

/* FNV-1a, 64 bits, of the first n bytes of a key. */
static uint64_t sq_key_hash_n(const char *key, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)key; n > 0; p++, n--) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t sq_key_hash(const char *key)
{
    return sq_key_hash_n(key, strlen(key));
}

/* The map entry saying "some key starts with this site's prefix" (runs): the prefix's hash,
 * turned so that it never reads as a whole key's. */
static uint64_t sq_prefix_hash(const char *key, size_t prefix_len)
{
    return sq_key_hash_n(key, prefix_len) ^ 0x9e3779b97f4a7c15ULL;
}

/* The first slot to look at for hash in a map of cap slots (a power of two). The hash's high
 * bits after a Fibonacci multiply: FNV-1a's low bits alone cluster for keys that differ only in
 * a few hex digits, and with linear probing the clusters made each new key walk long chains
 * (nearly a tenth of a national import's store time). */
static size_t sq_map_slot(uint64_t hash, size_t cap)
{
    unsigned bits = (unsigned)__builtin_ctzll((unsigned long long)cap);
    return (size_t)((hash * 0x9e3779b97f4a7c15ULL) >> (64 - bits));
}

/* Makes room for one more key in the map, doubling it past half full (new keys probe until a
 * free slot: at half full that is two or three slots). Uses the fallible allocator: an import
 * of a huge file must not abort the daemon, and without the map the upsert simply goes on the
 * slower way (see sq_upsert). Returns 0 or CH_ENOMEM. */
static int sq_map_reserve(sq_table_t *tab)
{
    if (tab->map != NULL && (tab->map_count + 1) * 2 <= tab->map_cap) {
        return 0;
    }
    size_t cap = tab->map_cap == 0 ? 4096 : tab->map_cap * 2;
    sq_slot_t *map = ch_table_alloc(cap * sizeof(*map));
    if (map == NULL) {
        return CH_ENOMEM;
    }
    for (size_t i = 0; i < tab->map_cap; i++) {
        if (tab->map[i].id != 0) {
            size_t j = sq_map_slot(tab->map[i].hash, cap);
            while (map[j].id != 0) {
                j = (j + 1) & (cap - 1);
            }
            map[j] = tab->map[i];
        }
    }
    ch_table_free(tab->map, tab->map_cap * sizeof(*tab->map));
    tab->map = map;
    tab->map_cap = cap;
    return 0;
}

/* Adds a key's hash and row id; room was reserved. */
static void sq_map_add(sq_table_t *tab, uint64_t hash, int64_t id)
{
    size_t j = sq_map_slot(hash, tab->map_cap);
    assert(tab->map_count < tab->map_cap);
    while (tab->map[j].id != 0) {
        j = (j + 1) & (tab->map_cap - 1);
    }
    tab->map[j].hash = hash;
    tab->map[j].id = id;
    tab->map_count++;
}

/*
 * The page cache of a bulk load: the table's new rows are read again by every index build
 * before COMMIT; in a 64 MiB cache they would already have gone out to the WAL and come back
 * from it page by page, which measured as long as the index builds' own work. 512 MiB holds a
 * national file's cameras (about 100 MB as runs) and their indexes; SQLite allocates the cache
 * only as it fills, and it goes back to 64 MiB after the transaction. The sorter gets a second
 * thread too.
 */
static void sq_bulk_cache(sq_store_t *s, int on)
{
    if (s->bulk_cache != on) {
        sqlite3_exec(s->db,
                     on ? "PRAGMA cache_size = -524288; PRAGMA threads = 2"
                        : "PRAGMA cache_size = -65536; PRAGMA threads = 0",
                     NULL, NULL, NULL);
        s->bulk_cache = on;
    }
}

/*
 * Finds key in a bulk load's map: each row under the key's hash is read by id and its key
 * compared, so a collision of hashes costs a read, never a wrong answer. Returns 1 with *out
 * positioned on the row (read with sql_select's columns; the caller resets it), 0 when the key
 * is not there, or a negative code.
 */
static int sq_bulk_find(sq_store_t *s, const ch_store__table_t *t, sq_table_t *tab, const char *key,
                        sqlite3_stmt **out)
{
    uint64_t hash = sq_key_hash(key);
    size_t mask = tab->map_cap - 1;
    sqlite3_stmt *stmt = NULL;
    int rc;
    for (size_t j = sq_map_slot(hash, tab->map_cap); tab->map[j].id != 0; j = (j + 1) & mask) {
        if (tab->map[j].hash != hash) {
            continue;
        }
        if ((rc = sq_table_stmt(s, t, SQ_GET, &stmt)) != 0) {
            return rc;
        }
        sqlite3_bind_int64(stmt, 1, tab->map[j].id);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            const char *have = (const char *)sqlite3_column_text(stmt, t->key_col + 1);
            if (have != NULL && strcmp(have, key) == 0) {
                *out = stmt;
                return 1;
            }
        } else if (rc != SQLITE_DONE) {
            rc = sq_fail(s, "upsert");
            sq_done(stmt);
            return rc;
        }
        /* Another key with the same hash, or a row deleted since: look on. */
        sq_done(stmt);
    }
    return 0;
}

/* Frees the bulk state of every table without touching the database: after a rollback (which
 * restored the indexes itself), before a new transaction, and on close. */
static void sq_bulk_reset(sq_store_t *s)
{
    for (int i = 0; i < CH_STORE__NTABLES; i++) {
        sq_table_t *tab = &s->tab[i];
        for (int j = 0; j < tab->ndeferred; j++) {
            sqlite3_free(tab->deferred[j]);
        }
        ch_free(tab->deferred);
        tab->deferred = NULL;
        tab->ndeferred = 0;
        ch_table_free(tab->map, tab->map_cap * sizeof(*tab->map));
        tab->map = NULL;
        tab->map_cap = 0;
        tab->map_count = 0;
        tab->bulk = 0;
        tab->bulk_checked = 0;
        tab->next_id = 0;
    }
    sq_bulk_cache(s, 0);
}

/* Builds the indexes a bulk load dropped on one table, in the open transaction, and leaves
 * bulk mode. On failure the definitions not yet built are kept: the caller rolls back (which
 * restores them all) or tries to commit again. */
static int sq_bulk_end(sq_store_t *s, sq_table_t *tab)
{
    while (tab->ndeferred > 0) {
        char *sql = tab->deferred[0];
        uint64_t t0 = ch_time_mono_ns();
        if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            return sq_fail(s, "bulk load: index build");
        }
        ch_log(CH_LOG_DEBUG, MODULE, "msg=\"bulk load: index built\" ms=%.1f sql=\"%.60s\"",
               (double)(ch_time_mono_ns() - t0) / 1e6, sql);
        sqlite3_free(sql);
        memmove(tab->deferred, tab->deferred + 1, (size_t)(tab->ndeferred - 1) * sizeof(char *));
        tab->ndeferred--;
    }
    ch_table_free(tab->map, tab->map_cap * sizeof(*tab->map));
    tab->map = NULL;
    tab->map_cap = 0;
    tab->map_count = 0;
    tab->bulk = 0;
    return 0;
}

/* Loads the keys of the rows already in table t into the map. */
static int sq_bulk_load_keys(sq_store_t *s, const ch_store__table_t *t, sq_table_t *tab)
{
    const char *key = t->cols[t->key_col].name;
    char *sql = sqlite3_mprintf("SELECT id, \"%w\" FROM \"%w\" WHERE \"%w\" IS NOT NULL", key,
                                t->name, key);
    sqlite3_stmt *stmt = NULL;
    int rc;
    if ((rc = sq_map_reserve(tab)) != 0) {
        goto out;
    }
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        rc = sq_fail(s, "bulk load");
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (sq_map_reserve(tab) != 0) {
            rc = CH_ENOMEM;
            goto out;
        }
        const char *k = (const char *)sqlite3_column_text(stmt, 1);
        int64_t id = sqlite3_column_int64(stmt, 0);
        size_t plen;
        sq_map_add(tab, sq_key_hash(k), id);
        if (t->runs && ch_store__run_number(k, &plen) > 0) {
            if (sq_map_reserve(tab) != 0) {
                rc = CH_ENOMEM;
                goto out;
            }
            sq_map_add(tab, sq_prefix_hash(k, plen), id);
        }
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, "bulk load");
out:
    sqlite3_finalize(stmt);
    sqlite3_free(sql);
    return rc;
}

/*
 * Called on the first upsert into table t in a transaction: when the table holds fewer than
 * BULK_MAX_ROWS rows, drops its indexes (all but unique indexes on other columns than the key)
 * and enters bulk mode. Returns 0 also when it decides against it, or when memory for the map
 * is short (then nothing is dropped and upserts take the ordinary path).
 */
static int sq_bulk_begin(sq_store_t *s, const ch_store__table_t *t, sq_table_t *tab)
{
    sqlite3_stmt *stmt = NULL;
    char *sql = NULL;
    char **drops = NULL;
    int ndrops = 0, dropped = 0;
    int rc = 0;

    tab->bulk_checked = 1;
    sql = sqlite3_mprintf("SELECT count(*) FROM (SELECT 1 FROM \"%w\" LIMIT %d)", t->name,
                          BULK_MAX_ROWS);
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        rc = sq_fail(s, "bulk load");
        goto out;
    }
    if (sqlite3_column_int64(stmt, 0) >= BULK_MAX_ROWS) {
        goto out;
    }
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (sq_bulk_load_keys(s, t, tab) != 0) {
        /* Out of memory, or the keys cannot be read: no bulk load, nothing changed. */
        ch_table_free(tab->map, tab->map_cap * sizeof(*tab->map));
        tab->map = NULL;
        tab->map_cap = 0;
        tab->map_count = 0;
        goto out;
    }

    /* Every index but unique ones on other columns than the key (those would go unchecked). */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT s.name, s.sql FROM sqlite_schema s"
                           " JOIN pragma_index_list(?1) p ON p.name = s.name"
                           " WHERE s.type = 'index' AND s.sql IS NOT NULL AND (p.\"unique\" = 0"
                           " OR (SELECT group_concat(name) FROM pragma_index_info(s.name)) = ?2)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        rc = sq_fail(s, "bulk load");
        goto out;
    }
    sqlite3_bind_text(stmt, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, t->cols[t->key_col].name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        tab->deferred = ch_realloc(tab->deferred, (size_t)(tab->ndeferred + 1) * sizeof(char *));
        drops = ch_realloc(drops, (size_t)(tab->ndeferred + 1) * sizeof(char *));
        drops[tab->ndeferred] =
            sqlite3_mprintf("DROP INDEX \"%w\"", (const char *)sqlite3_column_text(stmt, 0));
        tab->deferred[tab->ndeferred++] =
            sqlite3_mprintf("%s", (const char *)sqlite3_column_text(stmt, 1));
    }
    ndrops = tab->ndeferred;
    if (rc != SQLITE_DONE) {
        rc = sq_fail(s, "bulk load");
        goto out;
    }
    /* The reading statement must end before the schema changes. */
    sqlite3_finalize(stmt);
    stmt = NULL;
    rc = 0;
    for (dropped = 0; dropped < ndrops; dropped++) {
        if (sqlite3_exec(s->db, drops[dropped], NULL, NULL, NULL) != SQLITE_OK) {
            rc = sq_fail(s, "bulk load");
            break;
        }
    }
    if (dropped > 0) {
        ch_log(CH_LOG_DEBUG, MODULE, "msg=\"bulk load\" table=%s indexes_deferred=%d", t->name,
               dropped);
        sq_bulk_cache(s, 1);
    }

out:
    /* Keep the definitions of the indexes actually dropped, whatever happened: a caller that
     * commits after an error still gets them back. */
    for (int i = dropped; i < tab->ndeferred; i++) {
        sqlite3_free(tab->deferred[i]);
    }
    tab->ndeferred = dropped;
    /* Bulk mode needs the key index gone; the map is wrong once rows go in without it. */
    tab->bulk = rc == 0 && dropped == ndrops && dropped > 0 && tab->map != NULL;
    if (!tab->bulk) {
        ch_table_free(tab->map, tab->map_cap * sizeof(*tab->map));
        tab->map = NULL;
        tab->map_cap = 0;
        tab->map_count = 0;
    }
    for (int i = 0; i < ndrops; i++) {
        sqlite3_free(drops[i]);
    }
    ch_free(drops);
    sqlite3_finalize(stmt);
    sqlite3_free(sql);
    return rc;
}

/* Ends the bulk load of every table (before COMMIT). */
static int sq_bulk_finish(sq_store_t *s)
{
    int rc;
    for (int i = 0; i < CH_STORE__NTABLES; i++) {
        if ((rc = sq_bulk_end(s, &s->tab[i])) != 0) {
            return rc;
        }
    }
    return 0;
}

/* Ends a bulk load of table t before a write that needs its indexes (create, update, delete).
 * Cheap when there is none. */
static int sq_bulk_leave(sq_store_t *s, const ch_store__table_t *t)
{
    sq_table_t *tab = sq_tab(s, t);
    return tab->ndeferred > 0 || tab->bulk ? sq_bulk_end(s, tab) : 0;
}

/* ---- transactions -------------------------------------------------------------------------- */

/* BEGIN IMMEDIATE takes the write lock at once: an import that began deferred could otherwise
 * fail with SQLITE_BUSY at its first write, after work was done, if another connection wrote
 * in between. */
static int sq_begin(ch_store_t *st)
{
    sq_store_t *s = sq(st);
    if (!sqlite3_get_autocommit(s->db)) {
        return ch_store__fail(st, CH_EINVAL, "begin: a transaction is already open");
    }
    sq_bulk_reset(s);
    return sq_exec_stmt(s, &s->begin, "BEGIN IMMEDIATE", "begin");
}

static int sq_commit(ch_store_t *st)
{
    sq_store_t *s = sq(st);
    if (sqlite3_get_autocommit(s->db)) {
        return ch_store__fail(st, CH_EINVAL, "commit: no transaction is open");
    }
    int rc = sq_bulk_finish(s);
    if (rc == 0) {
        rc = sq_exec_stmt(s, &s->commit, "COMMIT", "commit");
    }
    if (rc == 0) {
        sq_bulk_reset(s);
    }
    return rc;
}

static int sq_rollback(ch_store_t *st)
{
    sq_store_t *s = sq(st);
    /* Dropped indexes come back with the rollback; forget their definitions. */
    sq_bulk_reset(s);
    if (sqlite3_get_autocommit(s->db)) {
        return 0;
    }
    return sq_exec_stmt(s, &s->rollback, "ROLLBACK", "rollback");
}

/* ---- runs ---------------------------------------------------------------------------------- */

/*
 * A national import makes 1.6 million cameras from 250,000 rows: the cameras of a site differ
 * only in the number ending their name ("... #3") and key ("...#3"). Writing one indexed row per
 * camera was nine tenths of the import's time, so the cameras of a site are stored as ONE row
 * while they stay alike: a run. The row's id is the run's LAST camera id, site_count says how
 * many cameras it holds (ids id - site_count + 1 .. id) and site_number is the number ending
 * its first camera's name and key (the ones stored).
 *
 *  - Ids stay one per camera, given in file order, never reused: AUTOINCREMENT's sequence
 *    follows the highest rowid ever inserted, which is a run's last camera.
 *  - The camera with id X is in the first row whose id is >= X, when that row reaches down to
 *    X (one index probe, like a plain row's).
 *  - Lists and scans expand runs into cameras, in id order, with the row's fields; totals and
 *    counts add site_count.
 *  - A change to one camera of a run (update, delete, an import that differs) first splits the
 *    run so that the camera gets a row of its own (sq_run_split); the cameras before and after
 *    it keep theirs, with their names and keys. Callers never see a run.
 *  - Plain rows (API creates, older stores' imports) have site_count 1 and site_number NULL.
 */

static int sq_create(ch_store_t *st, const ch_store__table_t *t, void *rec);

/* After sq_read_row of a row built by sql_select on a table with runs: makes rec the camera
 * cam_id of that row (its id, and its name and key when it is not the first). */
static void sq_run_pick(sqlite3_stmt *stmt, const ch_store__table_t *t, void *rec, int64_t cam_id)
{
    ch_camera_t *c = rec;
    int64_t count = sqlite3_column_int64(stmt, RUN_COUNT_COL(t));
    int64_t number = sqlite3_column_int64(stmt, RUN_NUMBER_COL(t));
    int64_t j = cam_id - (c->id - count + 1);
    c->id = cam_id;
    if (j > 0 && number > 0) {
        char *name = ch_store__run_text(c->name, number, j);
        char *key = c->source_key ? ch_store__run_text(c->source_key, number, j) : NULL;
        if (name != NULL) {
            ch_free(c->name);
            c->name = name;
        }
        if (key != NULL) {
            ch_free(c->source_key);
            c->source_key = key;
        }
    }
}

/* The first id of the row stmt is on. */
static int64_t sq_run_first(sqlite3_stmt *stmt, const ch_store__table_t *t)
{
    return sqlite3_column_int64(stmt, 0) - sqlite3_column_int64(stmt, RUN_COUNT_COL(t)) + 1;
}

/* Sets a run's count, number, name and key (SQ_RUN_SET), or inserts a copy of run `from` under
 * id with them (SQ_RUN_COPY). */
static int sq_run_write(sq_store_t *s, const ch_store__table_t *t, sq_which_t which, int64_t id,
                        int64_t count, int64_t number, const char *name, const char *key,
                        int64_t from)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sq_table_stmt(s, t, which, &stmt);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, count);
    sqlite3_bind_int64(stmt, 3, number);
    sqlite3_bind_text(stmt, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, key, -1, SQLITE_STATIC);
    if (which == SQ_RUN_COPY) {
        sqlite3_bind_int64(stmt, 6, from);
    }
    rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : sq_fail(s, "split a run");
    sq_done(stmt);
    return rc;
}

/*
 * Gives camera id a row of its own when it shares one (a run). The run's row keeps its id (the
 * last camera's) for the cameras after id, or for id itself when it is the last; id gets a copy
 * when others follow it, and the cameras before it a copy under id - 1. In one savepoint.
 * CH_ENOTFOUND when no row holds id.
 */
static int sq_run_split(sq_store_t *s, const ch_store__table_t *t, int64_t id)
{
    sqlite3_stmt *stmt = NULL;
    ch_camera_t run;
    char *name[3] = {NULL, NULL, NULL}, *key[3] = {NULL, NULL, NULL};
    int rc = sq_table_stmt(s, t, SQ_GET_RUN, &stmt);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_int64(stmt, 1, id);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW || sq_run_first(stmt, t) > id) {
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE
                 ? ch_store__fail(&s->base, CH_ENOTFOUND, "%s: no id %lld", t->name, (long long)id)
                 : sq_fail(s, "split a run");
        sq_done(stmt);
        return rc;
    }
    int64_t last = sqlite3_column_int64(stmt, 0);
    int64_t count = sqlite3_column_int64(stmt, RUN_COUNT_COL(t));
    int64_t number = sqlite3_column_int64(stmt, RUN_NUMBER_COL(t));
    if (count == 1) {
        sq_done(stmt);
        return 0;
    }
    memset(&run, 0, sizeof(run));
    sq_read_row(stmt, t, &run);
    sq_done(stmt);
    int64_t j = id - (last - count + 1);
    /* The names and keys of the first camera, of id, and of the one after id. */
    int64_t at[3] = {0, j, j + 1};
    for (int i = 0; i < 3; i++) {
        name[i] = ch_store__run_text(run.name, number, at[i]);
        key[i] = run.source_key ? ch_store__run_text(run.source_key, number, at[i]) : NULL;
        if (name[i] == NULL || key[i] == NULL) {
            rc = ch_store__fail(&s->base, CH_EDB, "%s: row %lld is a run without numbers", t->name,
                                (long long)last);
            goto out;
        }
    }
    if (sqlite3_exec(s->db, "SAVEPOINT ch_run", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_fail(s, "split a run");
        goto out;
    }
    /* The row keeps its key last of all the writes' keys, so no two rows ever hold one. */
    if (id < last) {
        rc =
            sq_run_write(s, t, SQ_RUN_SET, last, count - j - 1, number + j + 1, name[2], key[2], 0);
        if (rc == 0) {
            rc = sq_run_write(s, t, SQ_RUN_COPY, id, 1, number + j, name[1], key[1], last);
        }
    } else {
        rc = sq_run_write(s, t, SQ_RUN_SET, last, 1, number + j, name[1], key[1], 0);
    }
    if (rc == 0 && j > 0) {
        rc = sq_run_write(s, t, SQ_RUN_COPY, id - 1, j, number, name[0], key[0], last);
    }
    sqlite3_exec(s->db, rc == 0 ? "RELEASE ch_run" : "ROLLBACK TO ch_run; RELEASE ch_run", NULL,
                 NULL, NULL);
out:
    for (int i = 0; i < 3; i++) {
        ch_free(name[i]);
        ch_free(key[i]);
    }
    ch_camera_fini(&run);
    return rc;
}

/* The highest camera id ever given, cached for the transaction (an import's runs take ids one
 * after the other). */
static int sq_run_next_id(sq_store_t *s, const ch_store__table_t *t, int64_t *out)
{
    sq_table_t *tab = sq_tab(s, t);
    if (tab->next_id == 0) {
        sqlite3_stmt *stmt = NULL;
        char *sql = sqlite3_mprintf("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE "
                                    "name=%Q),0), coalesce((SELECT max(id) FROM \"%w\"),0))",
                                    t->name, t->name);
        int ok = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) == SQLITE_OK &&
                 sqlite3_step(stmt) == SQLITE_ROW;
        if (ok) {
            tab->next_id = sqlite3_column_int64(stmt, 0);
        }
        sqlite3_finalize(stmt);
        sqlite3_free(sql);
        if (!ok) {
            return sq_fail(s, "upsert");
        }
    }
    *out = tab->next_id;
    /* Outside a transaction another connection may write before the next call. */
    if (sqlite3_get_autocommit(s->db)) {
        tab->next_id = 0;
    }
    return 0;
}

/* The agency of a record of table t and of the row stmt is on (read with sql_select's columns):
 * agency_id is the first column of every table with an upsert key (cameras, devices). */
static int64_t sq_rec_agency(const ch_store__table_t *t, const void *rec)
{
    assert(t->key_col >= 0 && strcmp(t->cols[0].name, "agency_id") == 0);
    return CH_STORE__I64_AT(rec, t->cols[0].offset);
}

static int64_t sq_row_agency(sqlite3_stmt *stmt, const ch_store__table_t *t)
{
    assert(t->key_col >= 0 && strcmp(t->cols[0].name, "agency_id") == 0);
    return sqlite3_column_int64(stmt, 1);
}

/* The refusal of an owned upsert whose key is held by another agency's record. */
static int sq_not_owned(sq_store_t *s, const ch_store__table_t *t, int64_t holder)
{
    return ch_store__fail(&s->base, CH_EPERM, "%s: the key is held by a record of agency %lld",
                          t->name, (long long)holder);
}

/* Whether two cameras hold the same imported data (provenance and kept columns aside). */
static int sq_records_equal(const ch_store__table_t *t, const void *a, const void *b, unsigned keep)
{
    for (int i = 0; i < t->ncols; i++) {
        const ch_store__col_t *c = &t->cols[i];
        const void *pa = (const char *)a + c->offset;
        const void *pb = (const char *)b + c->offset;
        if (c->provenance || sq_col_kept(c, keep)) {
            continue;
        }
        switch (c->type) {
        case CH_STORE__TEXT: {
            const char *x = *(const char *const *)pa, *y = *(const char *const *)pb;
            if ((x == NULL) != (y == NULL) || (x != NULL && strcmp(x, y) != 0)) {
                return 0;
            }
            break;
        }
        case CH_STORE__INT64:
            if (*(const int64_t *)pa != *(const int64_t *)pb) {
                return 0;
            }
            break;
        case CH_STORE__INT:
            if (*(const int *)pa != *(const int *)pb) {
                return 0;
            }
            break;
        case CH_STORE__DOUBLE:
            if (*(const double *)pa != *(const double *)pb) {
                return 0;
            }
            break;
        }
    }
    return 1;
}

/* Binds ?1 and ?2 of stmt to the range of keys that start with key's first plen bytes (a
 * site's prefix, ending in '#'): from the prefix to the prefix with '#' turned into '$', the
 * next byte. Returns the upper bound's text, bound without a copy: free it after the reset. */
static char *sq_bind_prefix(sqlite3_stmt *stmt, const char *key, size_t plen)
{
    char *hi = ch_strndup(key, plen);
    hi[plen - 1] = '$';
    sqlite3_bind_text(stmt, 1, key, (int)plen, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, hi, (int)plen, SQLITE_STATIC);
    return hi;
}

/* Reads the camera whose key is key into a zeroed *out, looking inside runs: an exact key is a
 * row's first camera; "...#n" may be camera n of a run stored under a smaller number. 0, or
 * CH_ENOTFOUND (nothing written to *out). */
static int sq_run_find_key(sq_store_t *s, const ch_store__table_t *t, const char *key, void *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sq_table_stmt(s, t, SQ_BY_KEY, &stmt);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        int64_t first = sq_run_first(stmt, t);
        sq_read_row(stmt, t, out);
        sq_run_pick(stmt, t, out, first);
        sq_done(stmt);
        return 0;
    }
    sq_done(stmt);
    if (rc != SQLITE_DONE) {
        return sq_fail(s, "upsert");
    }
    size_t plen;
    int64_t n = ch_store__run_number(key, &plen);
    if (n <= 1) {
        return CH_ENOTFOUND;
    }
    /* Rows whose key starts with the prefix, holding number n. */
    if ((rc = sq_table_stmt(s, t, SQ_KEY_RUN, &stmt)) != 0) {
        return rc;
    }
    char *hi = sq_bind_prefix(stmt, key, plen);
    sqlite3_bind_int64(stmt, 3, n);
    rc = CH_ENOTFOUND;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t number = sqlite3_column_int64(stmt, RUN_NUMBER_COL(t));
        const char *first_key = (const char *)sqlite3_column_text(stmt, t->key_col + 1);
        char *k = first_key ? ch_store__run_text(first_key, number, n - number) : NULL;
        int match = k != NULL && strcmp(k, key) == 0;
        ch_free(k);
        if (match) {
            int64_t cam = sq_run_first(stmt, t) + (n - number);
            sq_read_row(stmt, t, out);
            sq_run_pick(stmt, t, out, cam);
            rc = 0;
            break;
        }
    }
    if (rc != 0 && step != SQLITE_DONE) {
        rc = sq_fail(s, "upsert");
    }
    sq_done(stmt);
    ch_free(hi);
    return rc;
}

/*
 * The upsert of one camera on a table with runs: found (inside a run or not) and equal ->
 * unchanged; found and different -> split off and updated; not found -> a plain row. Owned:
 * found on another agency's camera -> CH_EPERM, nothing written.
 */
static int sq_upsert_one(sq_store_t *s, const ch_store__table_t *t, void *rec, int64_t now,
                         const ch_store_upsert_opts_t *opts, ch_store_upsert_t *outcome)
{
    ch_camera_t have;
    const char *key = ((ch_camera_t *)rec)->source_key;
    sqlite3_stmt *stmt = NULL;
    int rc = sq_bulk_leave(s, t);
    if (rc != 0) {
        return rc;
    }
    memset(&have, 0, sizeof(have));
    rc = sq_run_find_key(s, t, key, &have);
    if (rc == CH_ENOTFOUND) {
        if ((rc = sq_create(&s->base, t, rec)) == 0) {
            *outcome = CH_STORE_CREATED;
        }
        return rc;
    }
    if (rc != 0) {
        return rc;
    }
    if (opts->owned && have.agency_id != sq_rec_agency(t, rec)) {
        rc = sq_not_owned(s, t, have.agency_id);
        ch_camera_fini(&have);
        return rc;
    }
    CH_STORE__ID(rec) = have.id;
    CH_STORE__I64_AT(rec, t->created_off) = have.created_at;
    unsigned keep = sq_keep_for(t, opts->keep, have.status, rec);
    if (sq_records_equal(t, rec, &have, keep)) {
        CH_STORE__I64_AT(rec, t->updated_off) = have.updated_at;
        *outcome = CH_STORE_UNCHANGED;
        ch_camera_fini(&have);
        return 0;
    }
    ch_camera_fini(&have);
    if ((rc = sq_run_split(s, t, CH_STORE__ID(rec))) != 0 ||
        (rc = sq_update_kept(s, t, keep, &stmt)) != 0) {
        return rc;
    }
    if (sq_bind_record(stmt, t, rec, 0, now) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, t->ncols + 3, CH_STORE__ID(rec)) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_DONE) {
        rc = sq_fail(s, "upsert");
    } else {
        CH_STORE__I64_AT(rec, t->updated_off) = now;
        *outcome = CH_STORE_UPDATED;
    }
    sq_done(stmt);
    return rc;
}

static void sq_count_outcome(ch_store_upsert_counts_t *counts, ch_store_upsert_t o, long n)
{
    if (o == CH_STORE_CREATED) {
        counts->created += n;
    } else if (o == CH_STORE_UPDATED) {
        counts->updated += n;
    } else {
        counts->unchanged += n;
    }
}

/* Owned upserts of a site: CH_EPERM when any of its cameras' keys is held by a camera of
 * another agency, checked before any is written so that a refused site changes nothing. */
static int sq_site_owned(sq_store_t *s, const ch_store__table_t *t, const ch_camera_t *first,
                         int count)
{
    int rc = sq_bulk_leave(s, t); /* the lookups need the key index */
    for (int i = 0; i < count && rc == 0; i++) {
        char *key = ch_store__run_text(first->source_key, 1, i);
        ch_camera_t have;
        memset(&have, 0, sizeof(have));
        rc = sq_run_find_key(s, t, key, &have);
        if (rc == CH_ENOTFOUND) {
            rc = 0;
        } else if (rc == 0 && have.agency_id != first->agency_id) {
            rc = sq_not_owned(s, t, have.agency_id);
        }
        ch_camera_fini(&have);
        ch_free(key);
    }
    return rc;
}

/* A site whose cameras are not one equal run: each camera upserted alone. */
static int sq_upsert_site_each(sq_store_t *s, const ch_store__table_t *t, ch_camera_t *first,
                               int count, int64_t now, const ch_store_upsert_opts_t *opts,
                               ch_store_upsert_counts_t *counts)
{
    int rc = opts->owned ? sq_site_owned(s, t, first, count) : 0;
    for (int i = 0; i < count && rc == 0; i++) {
        ch_camera_t c = *first;
        char *name = ch_store__run_text(first->name, 1, i);
        char *key = ch_store__run_text(first->source_key, 1, i);
        c.name = name;
        c.source_key = key;
        ch_store_upsert_t o;
        rc = sq_upsert_one(s, t, &c, now, opts, &o);
        if (rc == 0) {
            sq_count_outcome(counts, o, 1);
            if (i == 0) {
                first->id = c.id;
                first->created_at = c.created_at;
                first->updated_at = c.updated_at;
            }
        }
        ch_free(name);
        ch_free(key);
    }
    return rc;
}

/*
 * The cameras of one site (see ch_store_camera_upsert_site). The common cases cost what one
 * row costs: a new site is one new run (a plain append in a bulk load); a site stored as one
 * run of the same size and data is unchanged. Anything else (the data changed, the count
 * changed, an operator changed or deleted one of its cameras, a store from before runs) goes
 * camera by camera.
 */
static int sq_upsert_site(ch_store_t *st, const ch_store__table_t *t, void *rec, int count,
                          const ch_store_upsert_opts_t *opts, ch_store_upsert_counts_t *counts)
{
    sq_store_t *s = sq(st);
    sq_table_t *tab = sq_tab(s, t);
    ch_camera_t *first = rec;
    const char *key = first->source_key;
    sqlite3_stmt *stmt = NULL;
    int64_t now = ch_time_now_ms();
    size_t plen = 0;
    int rc, found = 0, exists = 0;

    (void)ch_store__run_number(key, &plen);
    if (!tab->bulk_checked && !sqlite3_get_autocommit(s->db) &&
        (rc = sq_bulk_begin(s, t, tab)) != 0) {
        return rc;
    }
    if (tab->bulk) {
        uint64_t phash = sq_prefix_hash(key, plen);
        size_t mask = tab->map_cap - 1;
        for (size_t j = sq_map_slot(phash, tab->map_cap); tab->map[j].id != 0; j = (j + 1) & mask) {
            if (tab->map[j].hash == phash) {
                exists = 1;
                break;
            }
        }
        if (exists && (found = sq_bulk_find(s, t, tab, key, &stmt)) < 0) {
            return found;
        }
    } else {
        if ((rc = sq_table_stmt(s, t, SQ_BY_KEY, &stmt)) != 0) {
            return rc;
        }
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            found = exists = 1;
        } else {
            sq_done(stmt);
            if (rc != SQLITE_DONE) {
                return sq_fail(s, "upsert");
            }
            if ((rc = sq_table_stmt(s, t, SQ_KEY_ANY, &stmt)) != 0) {
                return rc;
            }
            char *hi = sq_bind_prefix(stmt, key, plen);
            rc = sqlite3_step(stmt);
            exists = rc == SQLITE_ROW;
            sq_done(stmt);
            ch_free(hi);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                return sq_fail(s, "upsert");
            }
        }
    }

    if (found) {
        /* stmt is on the row holding camera 1. */
        if (opts->owned && sq_row_agency(stmt, t) != first->agency_id) {
            int64_t holder = sq_row_agency(stmt, t);
            sq_done(stmt);
            return sq_not_owned(s, t, holder);
        }
        int same = sqlite3_column_int64(stmt, RUN_COUNT_COL(t)) == count &&
                   sqlite3_column_int64(stmt, RUN_NUMBER_COL(t)) == 1 &&
                   sq_row_equals(stmt, t, rec, sq_keep_for_row(stmt, t, opts->keep, rec));
        if (same) {
            first->id = sq_run_first(stmt, t);
            first->created_at = sqlite3_column_int64(stmt, t->ncols + 1);
            first->updated_at = sqlite3_column_int64(stmt, t->ncols + 2);
            counts->unchanged += count;
        }
        sq_done(stmt);
        return same ? 0 : sq_upsert_site_each(s, t, first, count, now, opts, counts);
    }
    if (exists) {
        return sq_upsert_site_each(s, t, first, count, now, opts, counts);
    }

    /* A new site: one run, ids after every id ever given. */
    int64_t last = 0;
    if ((rc = sq_run_next_id(s, t, &last)) != 0 ||
        (rc = sq_table_stmt(s, t, SQ_INSERT_RUN, &stmt)) != 0) {
        return rc;
    }
    last += count;
    if (sq_bind_record(stmt, t, rec, now, now) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, t->ncols + 3, count) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, t->ncols + 4, 1) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, t->ncols + 5, last) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_DONE) {
        rc = sq_fail(s, "upsert");
        sq_done(stmt);
        tab->next_id = 0;
        return rc;
    }
    sq_done(stmt);
    if (!sqlite3_get_autocommit(s->db)) {
        tab->next_id = last;
    }
    first->id = last - count + 1;
    first->created_at = first->updated_at = now;
    counts->created += count;
    if (tab->bulk) {
        /* Without memory for the map the indexes are needed from here on. */
        if (sq_map_reserve(tab) != 0) {
            return sq_bulk_end(s, tab);
        }
        sq_map_add(tab, sq_key_hash(key), last);
        if (sq_map_reserve(tab) != 0) {
            return sq_bulk_end(s, tab);
        }
        sq_map_add(tab, sq_prefix_hash(key, plen), last);
    }
    return 0;
}

/* ---- CRUD ---------------------------------------------------------------------------------- */

/* Inserts rec, setting its id, created_at and updated_at. The bulk-load path uses it too, so
 * it does not end a bulk load; sq_create_op (the API's create) does. */
static int sq_create(ch_store_t *st, const ch_store__table_t *t, void *rec)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int64_t now = ch_time_now_ms();
    int rc = sq_table_stmt(s, t, SQ_INSERT, &stmt);
    if (rc != 0) {
        return rc;
    }
    if (sq_bind_record(stmt, t, rec, now, now) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE) {
        rc = sq_fail(s, "create");
        sq_done(stmt);
        return rc;
    }
    sq_done(stmt);
    CH_STORE__ID(rec) = sqlite3_last_insert_rowid(s->db);
    CH_STORE__I64_AT(rec, t->created_off) = now;
    CH_STORE__I64_AT(rec, t->updated_off) = now;
    sq_tab(s, t)->next_id = 0;
    return 0;
}

/* The API's create: ends a bulk load of the table first, so that the unique index is there to
 * check the key the new row may carry. */
static int sq_create_op(ch_store_t *st, const ch_store__table_t *t, void *rec)
{
    int rc = sq_bulk_leave(sq(st), t);
    return rc != 0 ? rc : sq_create(st, t, rec);
}

/* Reads the record with this id into a zeroed *out. */
static int sq_get(ch_store_t *st, const ch_store__table_t *t, int64_t id, void *out)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int rc = sq_table_stmt(s, t, t->runs ? SQ_GET_RUN : SQ_GET, &stmt);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_int64(stmt, 1, id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && (!t->runs || sq_run_first(stmt, t) <= id)) {
        sq_read_row(stmt, t, out);
        if (t->runs) {
            sq_run_pick(stmt, t, out, id);
        }
        rc = 0;
    } else if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        rc = ch_store__fail(st, CH_ENOTFOUND, "%s: no id %lld", t->name, (long long)id);
    } else {
        rc = sq_fail(s, "get");
    }
    sq_done(stmt);
    return rc;
}

/* Replaces every column of the row with rec's id; sets updated_at and reads back created_at. */
static int sq_update(ch_store_t *st, const ch_store__table_t *t, void *rec)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int64_t now = ch_time_now_ms();
    int64_t id = CH_STORE__ID(rec);
    int rc = sq_bulk_leave(s, t);
    if (rc == 0 && t->runs) {
        rc = sq_run_split(s, t, id);
    }
    if (rc != 0 || (rc = sq_table_stmt(s, t, SQ_UPDATE, &stmt)) != 0) {
        return rc;
    }
    if (sq_bind_record(stmt, t, rec, 0, now) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, t->ncols + 3, id) != SQLITE_OK) {
        rc = sq_fail(s, "update");
        goto out;
    }
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        CH_STORE__I64_AT(rec, t->created_off) = sqlite3_column_int64(stmt, 0);
        CH_STORE__I64_AT(rec, t->updated_off) = now;
        /* A RETURNING statement finishes its writes on the first step; step to the end so
         * that the statement completes before it is reset. */
        rc = sqlite3_step(stmt);
        rc = rc == SQLITE_DONE ? 0 : sq_fail(s, "update");
    } else if (rc == SQLITE_DONE) {
        rc = ch_store__fail(st, CH_ENOTFOUND, "%s: no id %lld", t->name, (long long)id);
    } else {
        rc = sq_fail(s, "update");
    }
out:
    sq_done(stmt);
    return rc;
}

static int sq_remove(ch_store_t *st, const ch_store__table_t *t, int64_t id)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int rc = sq_bulk_leave(s, t);
    if (rc == 0 && t->runs) {
        rc = sq_run_split(s, t, id);
    }
    if (rc != 0 || (rc = sq_table_stmt(s, t, SQ_REMOVE, &stmt)) != 0) {
        return rc;
    }
    sqlite3_bind_int64(stmt, 1, id);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        rc = sq_fail(s, "delete");
    } else if (sqlite3_changes(s->db) == 0) {
        rc = ch_store__fail(st, CH_ENOTFOUND, "%s: no id %lld", t->name, (long long)id);
    }
    sq_done(stmt);
    return rc;
}

static int sq_agency_find_by_name(ch_store_t *st, const char *name, ch_agency_t *out)
{
    sq_store_t *s = sq(st);
    const ch_store__table_t *t = &ch_store__tables[CH_STORE__AGENCIES];
    sqlite3_stmt *stmt = NULL;
    ch_buf_t b;
    int rc = 0;

    if (s->agency_by_name == NULL) {
        ch_buf_init(&b);
        sql_select(&b, t, sq_tab(s, t));
        ch_buf_append_str(&b, " WHERE name=?1");
        rc = sq_prepare(s, &s->agency_by_name, b.data, &stmt);
        ch_buf_fini(&b);
        if (rc != 0) {
            return rc;
        }
    }
    stmt = s->agency_by_name;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        sq_read_row(stmt, t, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = ch_store__fail(st, CH_ENOTFOUND, "agencies: no such name");
    } else {
        rc = sq_fail(s, "find agency");
    }
    sq_done(stmt);
    return rc;
}

static int sq_count(ch_store_t *st, const ch_store__table_t *t, int64_t *out)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int rc = sq_table_stmt(s, t, SQ_COUNT, &stmt);
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
    } else {
        rc = sq_fail(s, "count");
    }
    sq_done(stmt);
    return rc;
}

/* ---- upsert -------------------------------------------------------------------------------- */

/*
 * Tries to insert rec as a new row; *created says whether it did (0 when the key was taken,
 * which is not an error).
 */
static int sq_upsert_insert(sq_store_t *s, const ch_store__table_t *t, void *rec, int64_t now,
                            int *created)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sq_table_stmt(s, t, SQ_INSERT_K, &stmt);
    *created = 0;
    if (rc != 0) {
        return rc;
    }
    if (sq_bind_record(stmt, t, rec, now, now) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE) {
        rc = sq_fail(s, "upsert");
    } else if (sqlite3_changes(s->db) > 0) {
        *created = 1;
        CH_STORE__ID(rec) = sqlite3_last_insert_rowid(s->db);
        CH_STORE__I64_AT(rec, t->created_off) = now;
        CH_STORE__I64_AT(rec, t->updated_off) = now;
    }
    sq_done(stmt);
    return rc;
}

/*
 * The end of an upsert whose key matched a row: stmt is positioned on that row (read with
 * sql_select's columns). Owned and the row is another agency's -> CH_EPERM, nothing written.
 * Every column equal -> unchanged, nothing written; else the row is updated by id, keeping id
 * and created_at. Strings are compared in place in SQLite's row, so
 * an unchanged row costs no allocation. Resets stmt.
 */
static int sq_upsert_existing(sq_store_t *s, const ch_store__table_t *t, void *rec,
                              sqlite3_stmt *stmt, int64_t now, const ch_store_upsert_opts_t *opts,
                              ch_store_upsert_t *outcome)
{
    if (opts->owned && sq_row_agency(stmt, t) != sq_rec_agency(t, rec)) {
        int64_t holder = sq_row_agency(stmt, t);
        sq_done(stmt);
        return sq_not_owned(s, t, holder);
    }
    int64_t id = sqlite3_column_int64(stmt, 0);
    int64_t created_at = sqlite3_column_int64(stmt, t->ncols + 1);
    int64_t updated_at = sqlite3_column_int64(stmt, t->ncols + 2);
    unsigned keep = sq_keep_for_row(stmt, t, opts->keep, rec);
    int equal = sq_row_equals(stmt, t, rec, keep);
    int rc;

    sq_done(stmt);
    CH_STORE__ID(rec) = id;
    CH_STORE__I64_AT(rec, t->created_off) = created_at;
    if (equal) {
        CH_STORE__I64_AT(rec, t->updated_off) = updated_at;
        *outcome = CH_STORE_UNCHANGED;
        return 0;
    }
    if ((rc = sq_update_kept(s, t, keep, &stmt)) != 0) {
        return rc;
    }
    if (sq_bind_record(stmt, t, rec, 0, now) != SQLITE_OK ||
        sqlite3_bind_int64(stmt, t->ncols + 3, id) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_DONE) {
        rc = sq_fail(s, "upsert");
        sq_done(stmt);
        return rc;
    }
    sq_done(stmt);
    CH_STORE__I64_AT(rec, t->updated_off) = now;
    *outcome = CH_STORE_UPDATED;
    return 0;
}

/*
 * Upsert during a bulk load (the key index is dropped): the key's hash is looked up in the
 * map; each row under the same hash is read by id and its key compared, so a collision of
 * hashes costs a read, never a wrong answer. A new key is a plain INSERT, an append.
 */
static int sq_upsert_bulk(sq_store_t *s, const ch_store__table_t *t, sq_table_t *tab, void *rec,
                          const char *key, int64_t now, const ch_store_upsert_opts_t *opts,
                          ch_store_upsert_t *outcome)
{
    uint64_t hash = sq_key_hash(key);
    sqlite3_stmt *stmt = NULL;
    int rc = sq_bulk_find(s, t, tab, key, &stmt);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1) {
        return sq_upsert_existing(s, t, rec, stmt, now, opts, outcome);
    }

    if (sq_map_reserve(tab) != 0) {
        /* No memory for a bigger map: rebuild the indexes now and go on the ordinary way. */
        if ((rc = sq_bulk_end(s, tab)) != 0) {
            return rc;
        }
        return CH_EAGAIN;
    }
    if ((rc = sq_create(&s->base, t, rec)) != 0) {
        return rc;
    }
    sq_map_add(tab, hash, CH_STORE__ID(rec));
    *outcome = CH_STORE_CREATED;
    return 0;
}

/*
 * Upsert by the key column. In a bulk load, see sq_upsert_bulk. Otherwise two paths, chosen by
 * the previous outcome on this table:
 *  - insert first (after a "created"): INSERT ... ON CONFLICT DO NOTHING; when a row was
 *    inserted that is all, one probe of the key index. Otherwise fall through to the lookup.
 *    Measured 10% faster than lookup-then-insert for a fresh import into a non-empty table.
 *  - lookup first (after an "unchanged" or "updated"): read the row by key and go on as
 *    sq_upsert_existing says, or insert when there is none.
 */
static int sq_upsert(ch_store_t *st, const ch_store__table_t *t, void *rec,
                     const ch_store_upsert_opts_t *opts, ch_store_upsert_t *outcome)
{
    sq_store_t *s = sq(st);
    sq_table_t *tab = sq_tab(s, t);
    sqlite3_stmt *stmt = NULL;
    int64_t now = ch_time_now_ms();
    int created = 0;
    int rc;
    const char *key =
        *(const char *const *)(const void *)((const char *)rec + t->cols[t->key_col].offset);

    if (t->runs) {
        return sq_upsert_one(s, t, rec, now, opts, outcome);
    }
    if (!tab->bulk_checked && !sqlite3_get_autocommit(s->db) &&
        (rc = sq_bulk_begin(s, t, tab)) != 0) {
        return rc;
    }
    if (tab->bulk) {
        rc = sq_upsert_bulk(s, t, tab, rec, key, now, opts, outcome);
        if (rc != CH_EAGAIN) {
            return rc;
        }
    }
    if (tab->insert_first) {
        if ((rc = sq_upsert_insert(s, t, rec, now, &created)) != 0) {
            return rc;
        }
        if (created) {
            *outcome = CH_STORE_CREATED;
            return 0;
        }
    }

    if ((rc = sq_table_stmt(s, t, SQ_BY_KEY, &stmt)) != 0) {
        return rc;
    }
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        tab->insert_first = 0;
        return sq_upsert_existing(s, t, rec, stmt, now, opts, outcome);
    }
    if (rc != SQLITE_DONE) {
        rc = sq_fail(s, "upsert");
        sq_done(stmt);
        return rc;
    }
    sq_done(stmt);
    if ((rc = sq_upsert_insert(s, t, rec, now, &created)) != 0) {
        return rc;
    }
    if (!created) {
        /* The key appeared between the two statements: impossible on one connection. */
        return ch_store__fail(st, CH_EDB, "upsert: key appeared between lookup and insert");
    }
    tab->insert_first = 1;
    *outcome = CH_STORE_CREATED;
    return 0;
}

/* ---- lists --------------------------------------------------------------------------------- */

/* Appends s to b as the body of a LIKE pattern with '\' as the escape: %, _ and \ match
 * themselves. */
static void like_escape(ch_buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '%' || *s == '_' || *s == '\\') {
            ch_buf_append_char(b, '\\');
        }
        ch_buf_append_char(b, *s);
    }
}

/* Binds the filter parameters present in mask. pattern is the LIKE pattern for the text filter
 * (kept alive by the caller until the statement is reset). */
static void sq_bind_filters(sqlite3_stmt *stmt, const ch_store_filter_t *f, unsigned mask,
                            const char *pattern)
{
    if (mask & CH_STORE__F_AGENCY) {
        sqlite3_bind_int64(stmt, P_AGENCY, f->agency_id);
    }
    if (mask & CH_STORE__F_EVENT) {
        sqlite3_bind_int64(stmt, P_EVENT, f->event_id);
    }
    if (mask & CH_STORE__F_DEVICE) {
        sqlite3_bind_int64(stmt, P_DEVICE, f->device_id);
    }
    if (mask & CH_STORE__F_PURPOSE) {
        sqlite3_bind_text(stmt, P_PURPOSE, f->purpose, -1, SQLITE_STATIC);
    }
    if (mask & CH_STORE__F_KIND) {
        sqlite3_bind_text(stmt, P_KIND, f->kind, -1, SQLITE_STATIC);
    }
    if (mask & CH_STORE__F_STATUS) {
        sqlite3_bind_text(stmt, P_STATUS, f->status, -1, SQLITE_STATIC);
    }
    if (mask & CH_STORE__F_TYPE) {
        sqlite3_bind_text(stmt, P_TYPE, f->type, -1, SQLITE_STATIC);
    }
    if (mask & CH_STORE__F_LEVEL) {
        sqlite3_bind_text(stmt, P_LEVEL, f->level, -1, SQLITE_STATIC);
    }
    if (mask & CH_STORE__F_TEXT) {
        sqlite3_bind_text(stmt, P_TEXT, pattern, -1, SQLITE_STATIC);
    }
    if (mask & CH_STORE__F_BBOX) {
        sqlite3_bind_double(stmt, P_MIN_LAT, f->min_lat);
        sqlite3_bind_double(stmt, P_MAX_LAT, f->max_lat);
        sqlite3_bind_double(stmt, P_MIN_LON, f->min_lon);
        sqlite3_bind_double(stmt, P_MAX_LON, f->max_lon);
    }
}

/* Returns the cached page (total == 0) or count (total == 1) statement for a filter mask. */
static int sq_list_stmt(sq_store_t *s, const ch_store__table_t *t, unsigned mask, int total,
                        sqlite3_stmt **out)
{
    sq_table_t *tab = sq_tab(s, t);
    sqlite3_stmt **slot = total ? &tab->total[mask] : &tab->list[mask];
    ch_buf_t b;
    int rc;

    assert(mask < NMASKS);
    if (*slot != NULL) {
        *out = *slot;
        return 0;
    }
    ch_buf_init(&b);
    if (total) {
        ch_buf_appendf(&b,
                       t->runs ? "SELECT coalesce(sum(site_count),0) FROM %s WHERE 1"
                               : "SELECT count(*) FROM %s WHERE 1",
                       t->name);
        sql_filters(&b, t, mask);
    } else {
        sql_select(&b, t, tab);
        ch_buf_appendf(&b, " WHERE id>?%d", P_AFTER);
        sql_filters(&b, t, mask);
        ch_buf_appendf(&b, " ORDER BY id LIMIT ?%d", P_LIMIT);
    }
    rc = sq_prepare(s, slot, b.data, out);
    ch_buf_fini(&b);
    return rc;
}

/*
 * One page of a list plus the total. limit + 1 rows are asked for: the extra row only tells
 * that there is a next page. Outside a transaction, page and total are read in one read
 * transaction, so the total matches the page even while an import commits.
 */
static int sq_list(ch_store_t *st, const ch_store__table_t *t, const ch_store_filter_t *f,
                   unsigned mask, int limit, ch_store__list_t *out)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *page = NULL, *count = NULL;
    ch_buf_t pattern;
    size_t cap = 0;
    int own_tx = 0;
    int rc;

    ch_buf_init(&pattern);
    if (mask & CH_STORE__F_TEXT) {
        ch_buf_append_char(&pattern, '%');
        like_escape(&pattern, f->text);
        ch_buf_append_char(&pattern, '%');
    }
    if ((rc = sq_list_stmt(s, t, mask, 0, &page)) != 0 ||
        (rc = sq_list_stmt(s, t, mask, 1, &count)) != 0) {
        goto out;
    }
    if (sqlite3_get_autocommit(s->db)) {
        if ((rc = sq_exec_stmt(s, &s->begin_read, "BEGIN", "list")) != 0) {
            goto out;
        }
        own_tx = 1;
    }

    sqlite3_bind_int64(page, P_AFTER, f->after_id);
    sqlite3_bind_int(page, P_LIMIT, limit + 1);
    sq_bind_filters(page, f, mask, pattern.data);
    while ((rc = sqlite3_step(page)) == SQLITE_ROW) {
        if (t->runs) {
            /* Every camera of the row after the cursor; a row holds at least one. */
            int64_t last = sqlite3_column_int64(page, 0), first = sq_run_first(page, t);
            int64_t cam = first > f->after_id ? first : f->after_id + 1;
            for (; cam <= last && out->count < (size_t)limit; cam++) {
                if (out->count == cap) {
                    cap = cap == 0 ? 16 : cap * 2;
                    cap = cap > (size_t)limit ? (size_t)limit : cap;
                    out->items = ch_realloc(out->items, cap * t->record_size);
                }
                void *rec = (char *)out->items + out->count * t->record_size;
                memset(rec, 0, t->record_size);
                sq_read_row(page, t, rec);
                sq_run_pick(page, t, rec, cam);
                out->count++;
            }
            if (cam <= last || (out->count == (size_t)limit && sqlite3_step(page) == SQLITE_ROW)) {
                out->next_id = CH_STORE__ID((char *)out->items + (out->count - 1) * t->record_size);
                rc = SQLITE_DONE;
                break;
            }
            if (out->count == (size_t)limit) {
                rc = SQLITE_DONE;
                break;
            }
            continue;
        }
        if (out->count == (size_t)limit) {
            out->next_id = CH_STORE__ID((char *)out->items + (out->count - 1) * t->record_size);
            continue;
        }
        if (out->count == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            if (cap > (size_t)limit) {
                cap = (size_t)limit;
            }
            out->items = ch_realloc(out->items, cap * t->record_size);
        }
        void *rec = (char *)out->items + out->count * t->record_size;
        memset(rec, 0, t->record_size);
        sq_read_row(page, t, rec);
        out->count++;
    }
    if (rc != SQLITE_DONE) {
        rc = sq_fail(s, "list");
        goto out;
    }

    sq_bind_filters(count, f, mask, pattern.data);
    if (sqlite3_step(count) != SQLITE_ROW) {
        rc = sq_fail(s, "list");
        goto out;
    }
    out->total = sqlite3_column_int64(count, 0);
    rc = 0;

out:
    sq_done(page);
    sq_done(count);
    if (own_tx) {
        /* A read transaction: COMMIT only ends it. */
        (void)sq_exec_stmt(s, &s->commit, "COMMIT", "list");
    }
    ch_buf_fini(&pattern);
    if (rc != 0) {
        for (size_t i = 0; i < out->count; i++) {
            ch_store__record_fini(t, (char *)out->items + i * t->record_size);
        }
        ch_free(out->items);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ---- open, migrate, close ------------------------------------------------------------------ */

static int sq_schema_version(ch_store_t *st)
{
    return sq(st)->version;
}

static void sq_close(ch_store_t *st)
{
    sq_store_t *s = sq(st);
    for (int i = 0; i < CH_STORE__NTABLES; i++) {
        sq_table_t *tab = &s->tab[i];
        sqlite3_finalize(tab->insert);
        sqlite3_finalize(tab->insert_k);
        sqlite3_finalize(tab->update);
        for (size_t k = 0; k < CH_ARRAY_SIZE(tab->update_k); k++) {
            sqlite3_finalize(tab->update_k[k].stmt);
        }
        sqlite3_finalize(tab->get);
        sqlite3_finalize(tab->by_key);
        sqlite3_finalize(tab->remove);
        sqlite3_finalize(tab->count);
        sqlite3_finalize(tab->get_run);
        sqlite3_finalize(tab->insert_run);
        sqlite3_finalize(tab->run_set);
        sqlite3_finalize(tab->run_copy);
        sqlite3_finalize(tab->key_run);
        sqlite3_finalize(tab->key_any);
        for (unsigned m = 0; m < NMASKS; m++) {
            sqlite3_finalize(tab->list[m]);
            sqlite3_finalize(tab->total[m]);
        }
        ch_free(tab->cols);
    }
    sq_bulk_reset(s);
    sqlite3_finalize(s->agency_by_name);
    sqlite3_finalize(s->audit_add);
    sqlite3_finalize(s->audit_ref);
    sqlite3_finalize(s->audit_last);
    sqlite3_finalize(s->data_version);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->begin_read);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->rollback);
    if (s->db != NULL) {
        /* Let SQLite refresh its planner statistics for the queries this connection ran;
         * cheap, and it keeps list plans good after large imports. */
        sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
        sqlite3_close_v2(s->db);
    }
    ch_free(s);
}

/* Runs SQL without results; on failure records the message under what. */
static int sq_exec(sq_store_t *s, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = ch_store__fail(&s->base, CH_EDB, "%s: %s", what,
                                msg != NULL ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* Reads the applied schema version (0 for a new database) into *out. */
static int sq_read_version(sq_store_t *s, int *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                                -1, &stmt, NULL);
    *out = 0;
    if (rc != SQLITE_OK) {
        /* No such table: a database no migration has touched yet. */
        sqlite3_finalize(stmt);
        return 0;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *out = sqlite3_column_int(stmt, 0);
        rc = 0;
    } else {
        rc = sq_fail(s, "schema version");
    }
    sqlite3_finalize(stmt);
    return rc;
}

/*
 * Brings the schema up to SCHEMA_VERSION. Each missing migration runs in its own IMMEDIATE
 * transaction with its row in schema_migrations, so a crash leaves the database at one version
 * or the next, never between. The version is read again under the write lock, so two
 * processes opening a new file at once apply each migration once. A database newer than this
 * build is refused rather than written by code that does not know its schema.
 */
static int sq_migrate(sq_store_t *s)
{
    int version, rc;
    char sql[160];

    if ((rc = sq_read_version(s, &version)) != 0) {
        return rc;
    }
    while (version < SCHEMA_VERSION) {
        if ((rc = sq_exec(s, "BEGIN IMMEDIATE", "migrate")) != 0) {
            return rc;
        }
        if ((rc = sq_exec(s,
                          "CREATE TABLE IF NOT EXISTS schema_migrations ("
                          "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                          "migrate")) != 0 ||
            (rc = sq_read_version(s, &version)) != 0) {
            goto fail;
        }
        if (version >= SCHEMA_VERSION) {
            if ((rc = sq_exec(s, "COMMIT", "migrate")) != 0) {
                goto fail;
            }
            break;
        }
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_migrations(version, applied_at) VALUES(%d, %lld);"
                 "PRAGMA user_version = %d",
                 version + 1, (long long)ch_time_now_ms(), version + 1);
        if ((rc = sq_exec(s, migrations[version], "migrate")) != 0 ||
            (rc = sq_exec(s, sql, "migrate")) != 0 || (rc = sq_exec(s, "COMMIT", "migrate")) != 0) {
            goto fail;
        }
        ch_log(CH_LOG_INFO, MODULE, "msg=\"schema migrated\" version=%d", version + 1);
        version++;
    }
    if (version > SCHEMA_VERSION) {
        return ch_store__fail(&s->base, CH_EDB,
                              "open: database schema version %d is newer than this build (%d)",
                              version, SCHEMA_VERSION);
    }
    s->version = version;
    return 0;

fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Creates the file readable by its owner only when it does not exist yet: it holds camera
 * credentials. SQLite gives the -wal and -shm files the database file's permissions. */
static void sq_create_private(const char *path)
{
    struct stat sb;
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0 || stat(path, &sb) == 0) {
        return;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
    }
}

/* ---- the located-camera scan ---------------------------------------------------------------- */

static int sq_camera_scan(ch_store_t *st, ch_store_camera_fn fn, void *ud)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, agency_id, lat, lon, purpose, kind, heading_deg, fov_deg, "
                           "range_m, pixels, status, site_count FROM cameras WHERE located = 1 "
                           "ORDER BY id",
                           -1, &stmt, NULL) != SQLITE_OK) {
        return sq_fail(s, "camera scan");
    }
    int rc = 0, step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        ch_camera_t c;
        memset(&c, 0, sizeof(c));
        c.id = sqlite3_column_int64(stmt, 0);
        c.agency_id = sqlite3_column_int64(stmt, 1);
        c.located = 1;
        c.lat = sqlite3_column_double(stmt, 2);
        c.lon = sqlite3_column_double(stmt, 3);
        /* Borrowed from SQLite's row for the length of the call: no copy per camera. */
        c.purpose = (char *)sqlite3_column_text(stmt, 4);
        c.kind = (char *)sqlite3_column_text(stmt, 5);
        c.heading_deg = sqlite3_column_double(stmt, 6);
        c.fov_deg = sqlite3_column_double(stmt, 7);
        c.range_m = sqlite3_column_double(stmt, 8);
        c.pixels = sqlite3_column_int64(stmt, 9);
        c.status = (char *)sqlite3_column_text(stmt, 10);
        /* A run: every camera of it, in id order. */
        int64_t last = c.id, count = sqlite3_column_int64(stmt, 11);
        for (c.id = last - count + 1; c.id <= last && rc == 0; c.id++) {
            rc = fn(ud, &c);
        }
        if (rc != 0) {
            break;
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        rc = sq_fail(s, "camera scan");
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* ---- the audit index ------------------------------------------------------------------------ */

/* Adds the (kind, id) references of one record; duplicates within a record are harmless. */
static int sq_audit_refs(sq_store_t *s, int64_t seq, int kind, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *stmt = NULL;
        int rc =
            sq_prepare(s, &s->audit_ref,
                       "INSERT OR IGNORE INTO audit_refs(kind, id, seq) VALUES(?, ?, ?)", &stmt);
        if (rc != 0) {
            return rc;
        }
        sqlite3_bind_int(stmt, 1, kind);
        sqlite3_bind_int64(stmt, 2, ids[i]);
        sqlite3_bind_int64(stmt, 3, seq);
        rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : sq_fail(s, "audit index");
        sq_done(stmt);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int sq_audit_add(ch_store_t *st, const ch_store_audit_row_t *row)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int rc = sq_prepare(s, &s->audit_add,
                        "INSERT INTO audit_index(seq, time_ns, actor, action) VALUES(?, ?, ?, ?)",
                        &stmt);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_int64(stmt, 1, row->seq);
    sqlite3_bind_int64(stmt, 2, row->time_ns);
    sqlite3_bind_text(stmt, 3, row->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, row->action, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : sq_fail(s, "audit index");
    sq_done(stmt);
    if (rc == 0) {
        rc = sq_audit_refs(s, row->seq, 1, row->camera_ids, row->n_camera_ids);
    }
    if (rc == 0) {
        rc = sq_audit_refs(s, row->seq, 2, row->agency_ids, row->n_agency_ids);
    }
    if (rc == 0) {
        rc = sq_audit_refs(s, row->seq, 3, row->event_ids, row->n_event_ids);
    }
    return rc;
}

/* The one integer a cached statement answers (sql prepared into *slot on first use). */
static int sq_scalar(sq_store_t *s, sqlite3_stmt **slot, const char *sql, const char *what,
                     int64_t *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sq_prepare(s, slot, sql, &stmt);
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
    } else {
        rc = sq_fail(s, what);
    }
    sq_done(stmt);
    return rc;
}

static int sq_audit_last(ch_store_t *st, int64_t *seq)
{
    sq_store_t *s = sq(st);
    return sq_scalar(s, &s->audit_last, "SELECT coalesce(max(seq), -1) FROM audit_index",
                     "audit index", seq);
}

/* PRAGMA data_version: moves when another connection (thread, process) commits, never for this
 * connection's own writes; it reads the WAL index in shared memory, no file I/O. */
static int sq_foreign_version(ch_store_t *st, uint64_t *out)
{
    sq_store_t *s = sq(st);
    int64_t v = 0;
    int rc = sq_scalar(s, &s->data_version, "PRAGMA data_version", "data version", &v);
    *out = (uint64_t)v;
    return rc;
}

static int sq_audit_cp_get(ch_store_t *st, ch_store_audit_checkpoint_t *out)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT size, root, note FROM audit_checkpoint WHERE id = 1",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        return sq_fail(s, "audit checkpoint");
    }
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(stmt, 1) == (int)sizeof(out->root)) {
        out->size = sqlite3_column_int64(stmt, 0);
        memcpy(out->root, sqlite3_column_blob(stmt, 1), sizeof(out->root));
        const char *note = (const char *)sqlite3_column_text(stmt, 2);
        out->note = ch_strdup(note != NULL ? note : "");
        rc = 0;
    } else if (rc == SQLITE_ROW) {
        rc = ch_store__fail(st, CH_EDB, "audit checkpoint: the root is not 32 bytes");
    } else if (rc == SQLITE_DONE) {
        rc = CH_ENOTFOUND;
    } else {
        rc = sq_fail(s, "audit checkpoint");
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int sq_audit_cp_put(ch_store_t *st, const ch_store_audit_checkpoint_t *cp)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO audit_checkpoint(id, size, root, note, updated_at) "
                                "VALUES(1, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                                "size = excluded.size, root = excluded.root, note = excluded.note, "
                                "updated_at = excluded.updated_at",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        return sq_fail(s, "audit checkpoint");
    }
    sqlite3_bind_int64(stmt, 1, cp->size);
    sqlite3_bind_blob(stmt, 2, cp->root, (int)sizeof(cp->root), SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, cp->note != NULL ? cp->note : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, ch_time_now_ms());
    rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : sq_fail(s, "audit checkpoint");
    sqlite3_finalize(stmt);
    return rc;
}

static int sq_audit_clear(ch_store_t *st)
{
    return sq_exec(sq(st), "DELETE FROM audit_refs; DELETE FROM audit_index", "audit index");
}

/*
 * One page of matching seqs and the total. The WHERE clause is built from the filters that are
 * set, with every value bound (never spliced into the SQL). Queries are rare (an auditor's
 * search), so the statements are prepared per call rather than cached per filter mask.
 */
static int sq_audit_query(ch_store_t *st, const ch_store_audit_filter_t *f, int limit,
                          int64_t **seqs, size_t *count, int64_t *total, int64_t *next_seq)
{
    sq_store_t *s = sq(st);
    ch_buf_t where;
    ch_buf_init(&where);
    ch_buf_append_str(&where, " WHERE 1");
    if (f->since_ns != 0) {
        ch_buf_append_str(&where, " AND time_ns >= :since");
    }
    if (f->until_ns != 0) {
        ch_buf_append_str(&where, " AND time_ns < :until");
    }
    if (f->camera_id != 0) {
        ch_buf_append_str(&where, " AND seq IN (SELECT seq FROM audit_refs WHERE kind = 1 AND "
                                  "id = :camera)");
    }
    if (f->agency_id != 0) {
        ch_buf_append_str(&where, " AND seq IN (SELECT seq FROM audit_refs WHERE kind = 2 AND "
                                  "id = :agency)");
    }
    if (f->event_id != 0) {
        ch_buf_append_str(&where, " AND seq IN (SELECT seq FROM audit_refs WHERE kind = 3 AND "
                                  "id = :event)");
    }
    if (f->actor != NULL) {
        ch_buf_append_str(&where, " AND actor = :actor");
    }
    if (f->action != NULL) {
        ch_buf_append_str(&where, " AND action = :action");
    }
    ch_buf_t sql;
    ch_buf_init(&sql);
    sqlite3_stmt *stmt = NULL;
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        ch_buf_reset(&sql);
        if (pass == 0) {
            ch_buf_appendf(&sql, "SELECT count(*) FROM audit_index%s", where.data);
        } else {
            ch_buf_appendf(&sql,
                           "SELECT seq FROM audit_index%s AND seq > :after ORDER BY seq "
                           "LIMIT :limit",
                           where.data);
        }
        if (sqlite3_prepare_v2(s->db, sql.data, -1, &stmt, NULL) != SQLITE_OK) {
            rc = sq_fail(s, "audit query");
            break;
        }
        static const char *names[] = {":since", ":until", ":camera", ":agency", ":event"};
        const int64_t values[] = {f->since_ns, f->until_ns, f->camera_id, f->agency_id,
                                  f->event_id};
        for (size_t i = 0; i < CH_ARRAY_SIZE(names); i++) {
            int idx = sqlite3_bind_parameter_index(stmt, names[i]);
            if (idx > 0) {
                sqlite3_bind_int64(stmt, idx, values[i]);
            }
        }
        int idx = sqlite3_bind_parameter_index(stmt, ":actor");
        if (idx > 0) {
            sqlite3_bind_text(stmt, idx, f->actor, -1, SQLITE_STATIC);
        }
        idx = sqlite3_bind_parameter_index(stmt, ":action");
        if (idx > 0) {
            sqlite3_bind_text(stmt, idx, f->action, -1, SQLITE_STATIC);
        }
        if (pass == 0) {
            if (sqlite3_step(stmt) == SQLITE_ROW) {
                *total = sqlite3_column_int64(stmt, 0);
            } else {
                rc = sq_fail(s, "audit query");
            }
        } else {
            sqlite3_bind_int64(stmt, sqlite3_bind_parameter_index(stmt, ":after"), f->after_seq);
            /* One more than a page tells whether there is a next one. */
            sqlite3_bind_int(stmt, sqlite3_bind_parameter_index(stmt, ":limit"), limit + 1);
            int64_t *out = ch_malloc(sizeof(int64_t) * (size_t)(limit + 1));
            size_t n = 0;
            int step;
            while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
                out[n++] = sqlite3_column_int64(stmt, 0);
            }
            if (step != SQLITE_DONE) {
                ch_free(out);
                rc = sq_fail(s, "audit query");
            } else {
                if (n > (size_t)limit) {
                    n = (size_t)limit;
                    *next_seq = out[n - 1];
                }
                *seqs = out;
                *count = n;
            }
        }
        sqlite3_finalize(stmt);
        stmt = NULL;
    }
    ch_buf_fini(&sql);
    ch_buf_fini(&where);
    return rc;
}

static int sq_find_by_key(ch_store_t *st, const ch_store__table_t *t, const char *key, void *out)
{
    sq_store_t *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    if (t->runs) {
        int rc = sq_run_find_key(s, t, key, out);
        return rc == CH_ENOTFOUND
                   ? ch_store__fail(st, rc, "%s: no such %s", t->name, t->cols[t->key_col].name)
                   : rc;
    }
    int rc = sq_table_stmt(s, t, SQ_BY_KEY, &stmt);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        sq_read_row(stmt, t, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = ch_store__fail(st, CH_ENOTFOUND, "%s: no such %s", t->name, t->cols[t->key_col].name);
    } else {
        rc = sq_fail(s, "find");
    }
    sq_done(stmt);
    return rc;
}

/* Rare housekeeping (sessions of a user, expired sessions): prepared each time. */
static int sq_delete_where(ch_store_t *st, const ch_store__table_t *t, const char *col, int below,
                           int64_t v)
{
    sq_store_t *s = sq(st);
    char sql[160];
    sqlite3_stmt *stmt = NULL;
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s %s ?1", t->name, col, below ? "<" : "=");
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        return sq_fail(s, "delete");
    }
    sqlite3_bind_int64(stmt, 1, v);
    int rc = sqlite3_step(stmt) == SQLITE_DONE ? 0 : sq_fail(s, "delete");
    sqlite3_finalize(stmt);
    return rc;
}

/*
 * Housekeeping (ch_store_maintain) is the write-ahead log's: DEFER turns off the copy of the
 * WAL into the database that a commit otherwise makes every 1000 pages (with its fsync, on the
 * committing thread), and NOW copies what it can without blocking writers (a PASSIVE
 * checkpoint; a busy database is no failure, the next call goes on).
 */
static int sq_maintain(ch_store_t *st, unsigned what)
{
    sq_store_t *s = sq(st);
    if ((what & CH_STORE_MAINTAIN_DEFER) != 0 &&
        sqlite3_wal_autocheckpoint(s->db, 0) != SQLITE_OK) {
        return sq_fail(s, "autocheckpoint");
    }
    if ((what & CH_STORE_MAINTAIN_NOW) != 0) {
        int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            return sq_fail(s, "checkpoint");
        }
    }
    return 0;
}

static int sq_savepoint(ch_store_t *st, int op)
{
    sq_store_t *s = sq(st);
    static const char *const sql[] = {"SAVEPOINT ch_sp", "RELEASE ch_sp",
                                      "ROLLBACK TO ch_sp; RELEASE ch_sp"};
    if (sqlite3_get_autocommit(s->db)) {
        return ch_store__fail(st, CH_EINVAL, "savepoint: no transaction is open");
    }
    return sqlite3_exec(s->db, sql[op], NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                       : sq_fail(s, "savepoint");
}

static const ch_store_ops_t sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .maintain = sq_maintain,
    .savepoint = sq_savepoint,
    .create = sq_create_op,
    .get = sq_get,
    .update = sq_update,
    .remove = sq_remove,
    .list = sq_list,
    .upsert = sq_upsert,
    .upsert_site = sq_upsert_site,
    .agency_find_by_name = sq_agency_find_by_name,
    .find_by_key = sq_find_by_key,
    .delete_where = sq_delete_where,
    .count = sq_count,
    .camera_scan = sq_camera_scan,
    .audit_add = sq_audit_add,
    .audit_last = sq_audit_last,
    .audit_clear = sq_audit_clear,
    .audit_cp_get = sq_audit_cp_get,
    .audit_cp_put = sq_audit_cp_put,
    .audit_query = sq_audit_query,
    .health_add = ch_store__sq_health_add,
    .health_last = ch_store__sq_health_last,
    .health_range = ch_store__sq_health_range,
    .camera_streams = ch_store__sq_camera_streams,
    .camera_counts = ch_store__sq_camera_counts,
    .watch_begin = ch_store__sq_watch_begin,
    .watch_seen = ch_store__sq_watch_seen,
    .watch_list = ch_store__sq_watch_list,
    .feed_put = ch_store__sq_feed_put,
    .feed_mark = ch_store__sq_feed_mark,
    .feed_read = ch_store__sq_feed_read,
    .foreign_version = sq_foreign_version,
};

void *ch_store__sqlite_db(ch_store_t *st)
{
    return sq(st)->db;
}

/* Builds "a,b,c" from a table's column names. */
static char *cols_csv(const ch_store__table_t *t)
{
    ch_buf_t b;
    ch_buf_init(&b);
    for (int i = 0; i < t->ncols; i++) {
        ch_buf_appendf(&b, "%s%s", i > 0 ? "," : "", t->cols[i].name);
    }
    return ch_buf_steal(&b);
}

/*
 * Before SQLite's first use in the process: no memory statistics. With them (SQLite's default)
 * every sqlite3_malloc and free takes a process-wide mutex to count bytes the hub never asks
 * for: 4% of a re-import's storing thread was that lock and unlock.
 */
static void sq_global_init(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* refused once initialized: harmless */
    (void)sqlite3_initialize();
}

/*
 * Opens (creating if needed) the database at path, sets the connection up and migrates it.
 *
 * page_size (new files only; it must come before WAL mode): 4 KiB, SQLite's default. 16 KiB
 * pages measured about 20% less CPU for a national import, but every small transaction writes
 * whole pages to the WAL: an opened event touches some seven pages, 110 KB of WAL at 16 KiB,
 * and at 2,000 events a second the checkpoints' writes then delay the audit log's fdatasync
 * on the same disk by tens of milliseconds. Events are the hub's hot path; imports are rare.
 *
 * cache_size: 64 MiB. An import touches the source_key index at random places; with SQLite's
 * default 2 MiB cache those pages are evicted and re-read. 64 MiB holds the key index of a
 * national import; a larger cache measured no faster. The cache is allocated as it fills, so
 * small stores do not pay.
 *
 * journal_size_limit: after a checkpoint the WAL file is cut back to 64 MiB, instead of keeping
 * the size of the largest import ever committed (hundreds of MB) on disk for good.
 */
int ch_store__sqlite_open(const char *path, ch_store_t **out, char **err)
{
    sq_store_t *s = ch_calloc(1, sizeof(*s));
    const char *what = "open";
    int rc;

    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, sq_global_init);
    s->base.ops = &sq_ops;
    *out = NULL;
    sq_create_private(path);
    rc = sqlite3_open_v2(
        path, &s->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        rc = ch_store__fail(&s->base, CH_EDB, "open: %s: %s", path,
                            s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    /* mmap_size: reads of pages beyond the page cache map the file instead of copying it
     * with pread (writes still go through the WAL): a re-import of the national file, which
     * reads every row once, took 1.9 s and takes 1.6 s; lists and scans gain the same way. */
    if ((rc = sq_exec(s,
                      "PRAGMA page_size = 4096;"
                      "PRAGMA journal_mode = WAL;"
                      "PRAGMA foreign_keys = ON;"
                      "PRAGMA synchronous = NORMAL;"
                      "PRAGMA temp_store = MEMORY;"
                      "PRAGMA cache_size = -65536;"
                      "PRAGMA journal_size_limit = 67108864;"
                      "PRAGMA mmap_size = 268435456;",
                      what)) != 0) {
        goto fail;
    }
    if (!sqlite3_db_readonly(s->db, "main") && (rc = sq_migrate(s)) != 0) {
        goto fail;
    }
    for (int i = 0; i < CH_STORE__NTABLES; i++) {
        s->tab[i].cols = cols_csv(&ch_store__tables[i]);
    }
    *out = &s->base;
    return 0;

fail:
    if (err != NULL) {
        *err = ch_strdup(s->base.errmsg);
    }
    sq_close(&s->base);
    return rc;
}
