/*
 * store: the data API of cctvhub (agencies, cameras, devices; later users, events, grants),
 * one interface with interchangeable back ends. SQLite (WAL, foreign keys, versioned
 * migrations, prepared statements) is the embedded default; PostgreSQL follows behind the
 * same functions, so callers never see which one runs.
 *
 * Threading: a store handle is used from one thread at a time (the control loop, or one
 * worker of its pool holding it for an import). Open a second handle for a second thread.
 *
 * Ownership: records passed in are borrowed; records returned are owned by the caller and
 * released with the matching *_fini (which frees every string in them) or ch_store_*_list_free.
 * Every string field may be NULL (unknown). Numbers use the sentinels documented per field.
 */
#ifndef CH_STORE_H
#define CH_STORE_H

#include "core/core.h"

#include <stdint.h>

typedef struct ch_store ch_store_t;

/* ---- records ------------------------------------------------------------------------------ */

/* An agency: a provider of video (district center, city agency), a user of it (112, 119, ...)
 * or both. */
typedef struct ch_agency {
    int64_t id;         /* 0 before creation */
    char *name;         /* required, unique */
    char *kind;         /* required: "provider", "user", "both" */
    char *level;        /* required: "district", "city", "national" */
    char *type;         /* required: police-112, police-station, fire-119, moj-tracking,
                           disaster-room, mayor-office, ansimi, military, district-center,
                           city-agency, other */
    char *phone;        /* optional */
    char *code;         /* optional: public-body code (개방자치단체코드) */
    int64_t created_at; /* ms since epoch, set by the store */
    int64_t updated_at; /* ms since epoch, set by the store */
} ch_agency_t;

/* Sentinel for "unknown" in the double fields of a camera. */
#define CH_STORE_UNKNOWN_DOUBLE (-1.0)

typedef struct ch_camera {
    int64_t id;
    int64_t agency_id;   /* required: the provider agency */
    char *name;          /* required */
    int located;         /* 1 when lat/lon are usable, 0 for "unlocated" */
    double lat, lon;     /* WGS84 degrees; 0 when !located */
    char *road_address;  /* 소재지도로명주소 */
    char *lot_address;   /* 소재지지번주소 */
    char *purpose;       /* 설치목적구분, as published (생활방범, 어린이보호, ...) */
    char *kind;          /* required: "fixed", "ptz", "unknown" */
    double heading_deg;  /* 0..360 clockwise from north, or CH_STORE_UNKNOWN_DOUBLE */
    double fov_deg;      /* horizontal field of view, 0..360, or CH_STORE_UNKNOWN_DOUBLE */
    double range_m;      /* how far it usefully sees, or CH_STORE_UNKNOWN_DOUBLE */
    int64_t pixels;      /* pixels (2,000,000 for "200" = 200만 화소), or 0 when unknown */
    int retention_days;  /* 보관일수, or 0 when unknown */
    char *installed_ym;  /* "YYYY-MM" or "YYYY", NULL when unknown */
    char *rtsp_url;      /* never returned by the API, never logged */
    char *rtsp_username; /* never returned by the API, never logged */
    char *rtsp_password; /* never returned by the API, never logged */
    char *codec;         /* "h264", "h265" or NULL */
    char *status;        /* required: "active", "inactive", "unlocated", "maintenance" */
    char *direction;     /* 촬영방면정보 as published */
    char *note;          /* free text (landmark text from 촬영방면정보, ...) */
    char *flags;         /* comma-separated import flags ("unlocated,bad-date"), or NULL */
    char *source_file;   /* file name it was imported from, or NULL when created by API */
    int source_line;     /* line in that file, or 0 */
    char *source_key;    /* stable import key: same site and camera index -> same key */
    int64_t created_at;
    int64_t updated_at;
} ch_camera_t;

/* A smart-city device: emergency bell, public Wi-Fi access point, sensor. */
typedef struct ch_device {
    int64_t id;
    int64_t agency_id; /* required: the owner agency */
    char *name;        /* required */
    char *kind;        /* required: "emergency-bell", "wifi-ap", "sensor", "other" */
    int located;
    double lat, lon;
    char *road_address;
    char *lot_address;
    char *status; /* required: "active", "inactive", "unlocated", "fault" */
    char *attrs;  /* a JSON object text of further attributes, or NULL */
    char *flags;  /* as for cameras */
    char *source_file;
    int source_line;
    char *source_key;
    int64_t created_at;
    int64_t updated_at;
} ch_device_t;

/* The values the enumerated fields may take, NULL-terminated: the store checks records against
 * them, and the API checks bodies and filters against the same lists, so a new value is added
 * in one place. */
extern const char *const ch_store_agency_kinds[];
extern const char *const ch_store_agency_levels[];
extern const char *const ch_store_agency_types[];
extern const char *const ch_store_camera_kinds[];
extern const char *const ch_store_camera_statuses[];
extern const char *const ch_store_device_kinds[];
extern const char *const ch_store_device_statuses[];

void ch_agency_fini(ch_agency_t *a);
void ch_camera_fini(ch_camera_t *c);
void ch_device_fini(ch_device_t *d);
/* A zeroed camera with every "unknown" sentinel set. */
void ch_camera_init(ch_camera_t *c);
void ch_device_init(ch_device_t *d);

/* ---- list queries ------------------------------------------------------------------------- */

/* Filters for lists. Zero/NULL fields do not filter. Strings are borrowed. */
typedef struct ch_store_filter {
    int64_t agency_id; /* 0 = any */
    const char *purpose;
    const char *kind;
    const char *status;
    const char *type;  /* agencies only */
    const char *level; /* agencies only */
    const char *text;  /* substring of name or addresses */
    int has_bbox;      /* when set: min_lat <= lat <= max_lat and min_lon <= lon <= max_lon */
    double min_lat, min_lon, max_lat, max_lon;
    int64_t event_id;  /* grants only; 0 = any */
    int64_t device_id; /* device transitions only; 0 = any */
    int64_t after_id;  /* cursor: items with id > after_id, in id order */
    int limit;         /* 1..1000; 0 means 100 */
} ch_store_filter_t;

typedef struct ch_agency_list {
    ch_agency_t *items;
    size_t count;
    int64_t total;   /* all matches of the filter, cursor aside */
    int64_t next_id; /* cursor for the next page (the last id), or 0 when no more */
} ch_agency_list_t;

typedef struct ch_camera_list {
    ch_camera_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_camera_list_t;

typedef struct ch_device_list {
    ch_device_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_device_list_t;

void ch_agency_list_free(ch_agency_list_t *l);
void ch_camera_list_free(ch_camera_list_t *l);
void ch_device_list_free(ch_device_list_t *l);

/* ---- the store ---------------------------------------------------------------------------- */

/* Opens a store. url is "sqlite:PATH" (PATH created if missing, migrations applied) or a bare
 * path (SQLite). "postgresql://..." is reserved for the PostgreSQL back end.
 * On failure *out is NULL and, when err is not NULL, *err holds a message (free it). */
int ch_store_open(const char *url, ch_store_t **out, char **err) CH_MUST_CHECK;
void ch_store_close(ch_store_t *st); /* NULL is fine */

/* The schema version the store is at (number of migrations applied). */
int ch_store_schema_version(ch_store_t *st);

/* The last error message of this handle (for logs and 500 answers); never NULL. */
const char *ch_store_errmsg(ch_store_t *st);

/*
 * The back end's housekeeping, whatever it is (SQLite: copying its write-ahead log into the
 * database and syncing it), so that the hub decides where it runs. what is a set of:
 *  - CH_STORE_MAINTAIN_DEFER: from now on this handle's writes leave the housekeeping to
 *    maintain calls instead of doing it now and then themselves (SQLite: the commit that
 *    fills 1000 pages of log would copy it). A busy hub sets it on its loop's handle, so that
 *    no request waits for that copy and its fsync.
 *  - CH_STORE_MAINTAIN_NOW: do what can be done now without blocking writers (SQLite: a
 *    PASSIVE checkpoint; a busy database is not an error, the next call goes on). The hub
 *    calls it on a thread with a handle of its own, then on the loop's handle to finish.
 * Both may be given (DEFER applies first). 0, CH_EINVAL for an unknown bit, or CH_EDB.
 */
enum {
    CH_STORE_MAINTAIN_DEFER = 1 << 0,
    CH_STORE_MAINTAIN_NOW = 1 << 1,
};
int ch_store_maintain(ch_store_t *st, unsigned what) CH_MUST_CHECK;

/* One savepoint inside an open transaction (not nestable either): release keeps its changes
 * in the transaction, rollback_savepoint undoes them and keeps the transaction. Lets many
 * small changes share one COMMIT while each can fail alone. */
int ch_store_savepoint(ch_store_t *st) CH_MUST_CHECK;
int ch_store_release(ch_store_t *st) CH_MUST_CHECK;
int ch_store_rollback_savepoint(ch_store_t *st);

/* Transactions: all-or-nothing imports. Not nestable. */
int ch_store_begin(ch_store_t *st) CH_MUST_CHECK;
int ch_store_commit(ch_store_t *st) CH_MUST_CHECK;
int ch_store_rollback(ch_store_t *st); /* safe to call when no transaction is open */

/*
 * CRUD. Results: 0; CH_ENOTFOUND (no such id); CH_EEXIST (a unique key taken: agency name,
 * camera/device source_key); CH_ECONFLICT (agency_id refers to no agency, or an agency still
 * has cameras or devices on delete); CH_EINVAL (a record that fails the store's own checks:
 * a required field missing, an unknown enum value, a non-finite number, a position off the
 * globe; also a list limit outside 1..1000; see ch_store_errmsg); CH_EDB (anything else).
 * Ranges narrower than that (heading 0..360, ...) are the API's to check.
 * create sets id, created_at and updated_at in the record passed in. update replaces every
 * field but id and created_at.
 */
int ch_store_agency_create(ch_store_t *st, ch_agency_t *a) CH_MUST_CHECK;
int ch_store_agency_get(ch_store_t *st, int64_t id, ch_agency_t *out) CH_MUST_CHECK;
int ch_store_agency_find_by_name(ch_store_t *st, const char *name, ch_agency_t *out) CH_MUST_CHECK;
int ch_store_agency_update(ch_store_t *st, ch_agency_t *a) CH_MUST_CHECK;
int ch_store_agency_delete(ch_store_t *st, int64_t id) CH_MUST_CHECK;
int ch_store_agency_list(ch_store_t *st, const ch_store_filter_t *f,
                         ch_agency_list_t *out) CH_MUST_CHECK;

int ch_store_camera_create(ch_store_t *st, ch_camera_t *c) CH_MUST_CHECK;
int ch_store_camera_get(ch_store_t *st, int64_t id, ch_camera_t *out) CH_MUST_CHECK;
int ch_store_camera_update(ch_store_t *st, ch_camera_t *c) CH_MUST_CHECK;
int ch_store_camera_delete(ch_store_t *st, int64_t id) CH_MUST_CHECK;
int ch_store_camera_list(ch_store_t *st, const ch_store_filter_t *f,
                         ch_camera_list_t *out) CH_MUST_CHECK;

int ch_store_device_create(ch_store_t *st, ch_device_t *d) CH_MUST_CHECK;
int ch_store_device_get(ch_store_t *st, int64_t id, ch_device_t *out) CH_MUST_CHECK;
int ch_store_device_update(ch_store_t *st, ch_device_t *d) CH_MUST_CHECK;
int ch_store_device_delete(ch_store_t *st, int64_t id) CH_MUST_CHECK;
int ch_store_device_list(ch_store_t *st, const ch_store_filter_t *f,
                         ch_device_list_t *out) CH_MUST_CHECK;

/* Import upserts, keyed by source_key (required). The outcome says what happened:
 * created, updated (some field an import sets differed; the stored row now holds the ones
 * given, id and created_at kept) or unchanged (every such field equal but provenance,
 * source_file and source_line, which alone is no change: nothing is written and the stored
 * provenance stays). A camera's stream settings (rtsp_url, rtsp_username, rtsp_password,
 * codec) are set through the API only: an upsert neither compares nor writes them, so they
 * survive a re-import of a newer file. On return the record's id is set. Meant to run inside
 * ch_store_begin/commit. */
typedef enum ch_store_upsert {
    CH_STORE_CREATED = 1,
    CH_STORE_UPDATED = 2,
    CH_STORE_UNCHANGED = 3,
} ch_store_upsert_t;

int ch_store_camera_upsert(ch_store_t *st, ch_camera_t *c,
                           ch_store_upsert_t *outcome) CH_MUST_CHECK;
int ch_store_device_upsert(ch_store_t *st, ch_device_t *d,
                           ch_store_upsert_t *outcome) CH_MUST_CHECK;

/*
 * The cameras of one imported site, upserted as one: count cameras (1..CH_STORE_MAX_SITE)
 * that differ only in the number ending their name and source_key. first is camera number 1:
 * its name and source_key must end in "#1"; camera i (0-based) is the same record with
 * "#<i+1>" there. Each camera is its own camera for every other call (get, list, update,
 * delete, grants); the store only keeps a site's cameras together (see sqlite/sqlite_store.c,
 * "runs") while they are alike, which is what makes a national import cheap. Adds each camera's
 * outcome to *counts; sets first->id to camera 1's id. Meant to run inside
 * ch_store_begin/commit.
 */
#define CH_STORE_MAX_SITE 64

typedef struct ch_store_upsert_counts {
    long created, updated, unchanged;
} ch_store_upsert_counts_t;

int ch_store_camera_upsert_site(ch_store_t *st, ch_camera_t *first, int count,
                                ch_store_upsert_counts_t *counts) CH_MUST_CHECK;

/* Groups of fields an imported file may have no column for (ch_store_upsert_opts_t.keep). */
enum {
    CH_STORE_F_POSITION = 1u << 0,     /* located, lat, lon, status (WGS84위도, WGS84경도) */
    CH_STORE_F_ROAD_ADDRESS = 1u << 1, /* road_address */
    CH_STORE_F_LOT_ADDRESS = 1u << 2,  /* lot_address */
    CH_STORE_F_PURPOSE = 1u << 3,      /* a camera's purpose */
    CH_STORE_F_DIRECTION = 1u << 4,    /* a camera's kind, heading, fov, range, direction, note */
    CH_STORE_F_PIXELS = 1u << 5,       /* a camera's pixels */
    CH_STORE_F_RETENTION = 1u << 6,    /* a camera's retention_days */
    CH_STORE_F_INSTALLED = 1u << 7,    /* a camera's installed_ym */
};

/* How an import's upsert treats the record it finds. Zeroed: as the plain calls. */
typedef struct ch_store_upsert_opts {
    /* Confined to the record's agency (a provider's import): where the plain calls move a
     * record whose key they find to the agency given, refuse with CH_EPERM when a key of the
     * site (or the device's) is held by a record of another agency, and write nothing of the
     * site (device). The check rides on the lookups the upsert makes anyway. */
    int owned;
    /* CH_STORE_F_* groups the file has no column for: a found record keeps its stored values
     * there (neither compared nor written), so what the API set survives; a created record
     * takes the record's values (the unknowns). */
    unsigned keep;
} ch_store_upsert_opts_t;

/* ch_store_camera_upsert_site and ch_store_device_upsert with opts (NULL: zeroed). */
int ch_store_camera_upsert_site_with(ch_store_t *st, ch_camera_t *first, int count,
                                     const ch_store_upsert_opts_t *opts,
                                     ch_store_upsert_counts_t *counts) CH_MUST_CHECK;
int ch_store_device_upsert_with(ch_store_t *st, ch_device_t *d, const ch_store_upsert_opts_t *opts,
                                ch_store_upsert_t *outcome) CH_MUST_CHECK;

/* Calls fn for every located camera, in id order, with the fields a spatial index needs (id,
 * agency_id, located, lat, lon, purpose, kind, heading_deg, fov_deg, range_m, pixels,
 * status; every other field zero or NULL), read in one pass: at national scale this is
 * seconds faster than paging through lists. The camera and its strings are valid only during
 * the call. fn returns 0 to go on; anything else stops the scan and is returned. */
typedef int (*ch_store_camera_fn)(void *ud, const ch_camera_t *c);
int ch_store_camera_scan_located(ch_store_t *st, ch_store_camera_fn fn, void *ud) CH_MUST_CHECK;

/* Counts for health and tests. */
int ch_store_count(ch_store_t *st, const char *what, int64_t *out) CH_MUST_CHECK; /* "agencies",
                                     "cameras", "devices", "users", "api_keys", "sessions" */

/* ---- the audit index ------------------------------------------------------------------------ */

/* One audit record as the index knows it: enough to find records by camera, agency, event,
 * actor, action and time. The audit log is the truth; the index only points into it by seq,
 * and can be dropped and rebuilt from the log at any time. Strings are borrowed. */
typedef struct ch_store_audit_row {
    int64_t seq;
    int64_t time_ns;
    const char *actor;
    const char *action;
    /* What the record is about: any number of cameras, agencies and events (a grant names
     * several cameras). Borrowed arrays; NULL when the count is 0. */
    const int64_t *camera_ids;
    size_t n_camera_ids;
    const int64_t *agency_ids;
    size_t n_agency_ids;
    const int64_t *event_ids;
    size_t n_event_ids;
} ch_store_audit_row_t;

typedef struct ch_store_audit_filter {
    int64_t since_ns, until_ns;             /* 0 = open; since <= time_ns < until */
    int64_t camera_id, agency_id, event_id; /* 0 = any */
    const char *actor, *action;             /* exact; NULL = any */
    int64_t after_seq;                      /* cursor: seq > after_seq; -1 = from the start */
    int limit;                              /* 1..1000; 0 means 100 */
} ch_store_audit_filter_t;

/* Adds one row (CH_EEXIST when its seq is indexed already). */
int ch_store_audit_index_add(ch_store_t *st, const ch_store_audit_row_t *row) CH_MUST_CHECK;
/* The highest indexed seq, or -1 when the index is empty. */
int ch_store_audit_index_last(ch_store_t *st, int64_t *seq) CH_MUST_CHECK;
/* Drops every row (before a rebuild). */
int ch_store_audit_index_clear(ch_store_t *st) CH_MUST_CHECK;

/* The audit log's latest checkpoint, kept in the store too: a second place that whoever cuts
 * the log's end (and deletes its checkpoints file) must also find and change. One row. */
typedef struct ch_store_audit_checkpoint {
    int64_t size;     /* the tree size it signs */
    uint8_t root[32]; /* the root hash at that size */
    char *note;       /* the signed note (text); owned, free with ch_free */
} ch_store_audit_checkpoint_t;

/* Fills *out (out->note to free with ch_free): 0, CH_ENOTFOUND when none was kept yet, or a
 * store code. */
int ch_store_audit_checkpoint_get(ch_store_t *st, ch_store_audit_checkpoint_t *out) CH_MUST_CHECK;
/* Keeps cp (replacing the one kept before). 0 or a store code. */
int ch_store_audit_checkpoint_put(ch_store_t *st,
                                  const ch_store_audit_checkpoint_t *cp) CH_MUST_CHECK;
/* The seqs of matching records in ascending order (at most f->limit, into *seqs, free with
 * ch_free), the total count of matches cursor aside, and *next_seq: the cursor for the next
 * page (the last seq returned), or -1 when no more. */
int ch_store_audit_index_query(ch_store_t *st, const ch_store_audit_filter_t *f, int64_t **seqs,
                               size_t *count, int64_t *total, int64_t *next_seq) CH_MUST_CHECK;

/* ---- accounts ------------------------------------------------------------------------------ */

/* The roles of people and systems (see docs/internals/auth.md), NULL-terminated. */
extern const char *const ch_store_roles[];

/* A person who logs in with a password. */
typedef struct ch_user {
    int64_t id;
    char *name;           /* required, unique: the login name */
    char *role;           /* required: one of ch_store_roles */
    int64_t agency_id;    /* the agency the person works for, or 0 (admin, operator, auditor) */
    char *password_hash;  /* required: an Argon2id string ($argon2id$v=19$...) */
    int disabled;         /* 1: may not log in, sessions end */
    int failed_logins;    /* consecutive failures since the last success */
    int64_t locked_until; /* ms since epoch; logins are refused before it */
    int64_t last_login;   /* ms since epoch, 0 = never */
    int64_t created_at;
    int64_t updated_at;
} ch_user_t;

/* An API key of an agency's system: "chk_<id>_<secret>"; only SHA-256(secret) is stored. */
typedef struct ch_apikey {
    int64_t id;
    int64_t agency_id;  /* required */
    char *role;         /* required: "agency" or "provider" */
    char *secret_hash;  /* required: lowercase hex SHA-256 of the secret */
    char *label;        /* optional */
    int64_t revoked_at; /* ms since epoch, 0 = live */
    int64_t created_at;
    int64_t updated_at;
} ch_apikey_t;

/* A login session: the cookie holds the token; only SHA-256(token) is stored. */
typedef struct ch_session {
    int64_t id;
    char *token_hash;   /* required, unique: lowercase hex SHA-256 of the cookie token */
    int64_t user_id;    /* required */
    char *csrf;         /* required: the token state-changing requests must echo */
    int64_t expires_at; /* ms since epoch */
    int64_t created_at;
    int64_t updated_at;
} ch_session_t;

/*
 * An audit record waiting to be appended: written by commands that change the store while the
 * hub holds the audit log (cctvhub user ..., apikey ...), in the same transaction as their
 * change, and appended by whoever holds the log next (the hub drains it every second).
 */
typedef struct ch_outbox {
    int64_t id;
    char *actor;   /* required */
    char *action;  /* required */
    char *object;  /* optional */
    char *details; /* optional: a JSON object text */
    int64_t created_at;
    int64_t updated_at;
} ch_outbox_t;

typedef struct ch_user_list {
    ch_user_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_user_list_t;

typedef struct ch_apikey_list {
    ch_apikey_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_apikey_list_t;

typedef struct ch_outbox_list {
    ch_outbox_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_outbox_list_t;

void ch_user_fini(ch_user_t *u);
void ch_apikey_fini(ch_apikey_t *k);
void ch_session_fini(ch_session_t *s);
void ch_outbox_fini(ch_outbox_t *o);
void ch_user_list_free(ch_user_list_t *l);
void ch_apikey_list_free(ch_apikey_list_t *l);
void ch_outbox_list_free(ch_outbox_list_t *l);

/* Users: CH_EEXIST for a name taken; CH_EINVAL naming the field for a bad record (an unknown
 * role, an agency role without an agency_id). The list filter takes agency_id, text (name),
 * after_id and limit. */
int ch_store_user_create(ch_store_t *st, ch_user_t *u) CH_MUST_CHECK;
int ch_store_user_get(ch_store_t *st, int64_t id, ch_user_t *out) CH_MUST_CHECK;
int ch_store_user_find(ch_store_t *st, const char *name, ch_user_t *out) CH_MUST_CHECK;
int ch_store_user_update(ch_store_t *st, ch_user_t *u) CH_MUST_CHECK;
int ch_store_user_list(ch_store_t *st, const ch_store_filter_t *f,
                       ch_user_list_t *out) CH_MUST_CHECK;

/* API keys (the list filter takes agency_id, after_id, limit). */
int ch_store_apikey_create(ch_store_t *st, ch_apikey_t *k) CH_MUST_CHECK;
int ch_store_apikey_get(ch_store_t *st, int64_t id, ch_apikey_t *out) CH_MUST_CHECK;
int ch_store_apikey_update(ch_store_t *st, ch_apikey_t *k) CH_MUST_CHECK;
int ch_store_apikey_list(ch_store_t *st, const ch_store_filter_t *f,
                         ch_apikey_list_t *out) CH_MUST_CHECK;

/* Sessions. find looks a session up by token hash (CH_ENOTFOUND when none); end_user ends
 * every session of a user; purge drops the sessions that expired before now_ms. */
int ch_store_session_create(ch_store_t *st, ch_session_t *s) CH_MUST_CHECK;
int ch_store_session_find(ch_store_t *st, const char *token_hash, ch_session_t *out) CH_MUST_CHECK;
int ch_store_session_update(ch_store_t *st, ch_session_t *s) CH_MUST_CHECK;
int ch_store_session_delete(ch_store_t *st, int64_t id) CH_MUST_CHECK;
int ch_store_session_end_user(ch_store_t *st, int64_t user_id) CH_MUST_CHECK;
int ch_store_session_purge(ch_store_t *st, int64_t now_ms) CH_MUST_CHECK;

/* The audit outbox: add, the oldest rows (f: after_id, limit), and delete once appended. */
int ch_store_outbox_add(ch_store_t *st, ch_outbox_t *o) CH_MUST_CHECK;
int ch_store_outbox_list(ch_store_t *st, const ch_store_filter_t *f,
                         ch_outbox_list_t *out) CH_MUST_CHECK;
int ch_store_outbox_delete(ch_store_t *st, int64_t id) CH_MUST_CHECK;

/* ---- events and grants --------------------------------------------------------------------- */

/* Statuses, NULL-terminated (docs/internals/event.md). */
extern const char *const ch_store_event_statuses[]; /* pending active denied closed expired */
extern const char *const ch_store_grant_statuses[]; /* pending active denied expired closed
                                                       revoked released */

/* An event an agency raised: one service, one place (or path, or moving subject). */
typedef struct ch_event {
    int64_t id;
    char *service;     /* required: a service id of the services file */
    int64_t agency_id; /* required: the agency the event is for */
    char *status;      /* required: one of ch_store_event_statuses */
    int located;       /* 1 when lat/lon hold the place (or the subject's last position) */
    double lat, lon;
    char *path;          /* a GeoJSON LineString text, or NULL */
    char *incident;      /* the agency's incident number, or NULL */
    char *reason;        /* or NULL */
    char *case_name;     /* or NULL */
    int64_t duration_s;  /* granted length */
    int64_t expires_at;  /* ms since epoch; 0 while pending */
    int extensions;      /* extensions made */
    int ptz;             /* PTZ granted */
    int export_allowed;  /* export granted */
    char *basis_code;    /* the legal basis decided on */
    char *created_by;    /* required: the actor */
    char *decided_by;    /* the operator who approved or denied, or NULL */
    char *decision_note; /* or NULL */
    char *closed_by;     /* who closed or revoked it, or "system" for expiry; NULL while open */
    char *close_reason;
    int64_t closed_at;
    int64_t created_at;
    int64_t updated_at;
} ch_event_t;

/* One camera of an event. */
typedef struct ch_grant {
    int64_t id;
    int64_t event_id;    /* required */
    int64_t camera_id;   /* required */
    int64_t agency_id;   /* required: the agency that may watch */
    int64_t provider_id; /* the camera's agency */
    char *status;        /* required: one of ch_store_grant_statuses */
    char *why;           /* why the camera was chosen: a JSON object text */
    int64_t expires_at;  /* ms since epoch; 0 while pending */
    int64_t ended_at;    /* 0 while pending or active */
    char *ended_by;
    char *end_reason;
    int64_t created_at;
    int64_t updated_at;
} ch_grant_t;

typedef struct ch_event_list {
    ch_event_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_event_list_t;

typedef struct ch_grant_list {
    ch_grant_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_grant_list_t;

void ch_event_fini(ch_event_t *e);
void ch_grant_fini(ch_grant_t *g);
void ch_event_list_free(ch_event_list_t *l);
void ch_grant_list_free(ch_grant_list_t *l);

/* Events: the list filter takes agency_id, status, after_id, limit. */
int ch_store_event_create(ch_store_t *st, ch_event_t *e) CH_MUST_CHECK;
int ch_store_event_get(ch_store_t *st, int64_t id, ch_event_t *out) CH_MUST_CHECK;
int ch_store_event_update(ch_store_t *st, ch_event_t *e) CH_MUST_CHECK;
int ch_store_event_list(ch_store_t *st, const ch_store_filter_t *f,
                        ch_event_list_t *out) CH_MUST_CHECK;

/* Grants: the list filter takes event_id, agency_id, status, after_id, limit. */
int ch_store_grant_create(ch_store_t *st, ch_grant_t *g) CH_MUST_CHECK;
int ch_store_grant_get(ch_store_t *st, int64_t id, ch_grant_t *out) CH_MUST_CHECK;
int ch_store_grant_update(ch_store_t *st, ch_grant_t *g) CH_MUST_CHECK;
int ch_store_grant_list(ch_store_t *st, const ch_store_filter_t *f,
                        ch_grant_list_t *out) CH_MUST_CHECK;

/* ---- camera health (src/health) ------------------------------------------------------------ */

/* One transition of a camera's health state (camera_health_transitions). Strings borrowed. The
 * rows are kept when a camera is deleted: the outage history and monthly reports outlive it. */
typedef struct ch_store_health_row {
    int64_t id;
    int64_t camera_id;
    int64_t agency_id; /* the provider when it happened */
    int64_t at_ms;
    const char *old_state;
    const char *new_state;
    const char *reason; /* may be NULL */
} ch_store_health_row_t;

typedef int (*ch_store_health_fn)(void *ud, const ch_store_health_row_t *r);

/* Appends n rows in one transaction (its own, so call it outside one). Never waits for the
 * write lock: CH_EAGAIN when another writer holds it (try again later). 0, CH_EAGAIN, CH_EINVAL
 * or CH_EDB. */
int ch_store_health_add(ch_store_t *st, const ch_store_health_row_t *rows, size_t n) CH_MUST_CHECK;
/* Calls fn with the last transition of every camera before before_ms (INT64_MAX: the latest),
 * in camera order. fn returns 0 to go on; anything else stops and is returned. */
int ch_store_health_last(ch_store_t *st, int64_t before_ms, ch_store_health_fn fn,
                         void *ud) CH_MUST_CHECK;
/* Calls fn with the transitions in [from_ms, to_ms) of one camera (camera_id > 0) or of all
 * (0), in camera then time order; newest first with desc (then at most limit rows, 0 = all). */
int ch_store_health_range(ch_store_t *st, int64_t camera_id, int64_t from_ms, int64_t to_ms,
                          int desc, int limit, ch_store_health_fn fn, void *ud) CH_MUST_CHECK;

/* A camera with a stream URL, for the probes. Strings valid during the call only. */
typedef struct ch_store_stream_row {
    int64_t id, agency_id;
    const char *url, *user, *password; /* user and password may be NULL */
} ch_store_stream_row_t;

/* Calls fn for every camera with a stream URL that is not inactive or in maintenance (the
 * cameras health watches), in id order (one pass). */
int ch_store_camera_scan_streams(ch_store_t *st,
                                 int (*fn)(void *ud, const ch_store_stream_row_t *r),
                                 void *ud) CH_MUST_CHECK;
/* Calls fn with the number of cameras of each agency that has any, in agency order. */
int ch_store_camera_count_by_agency(ch_store_t *st,
                                    int (*fn)(void *ud, int64_t agency_id, int64_t cameras),
                                    void *ud) CH_MUST_CHECK;

/* The windows in which camera health was watching (health_watch): one per run of the hub with
 * health on, from its start to its last sign of life. Time outside every window (the hub down,
 * or health off) is nobody's observation, and reports count no camera's time there.
 * watch_begin opens a window at now_ms and sets *id (it may wait for the write lock, like any
 * write); watch_seen moves window id's end to now_ms and never waits (CH_EAGAIN when another
 * writer holds the lock: try again later); watch_list calls fn with every window overlapping
 * [from_ms, to_ms), clipped to it, in start order. 0, CH_EAGAIN, CH_EINVAL or CH_EDB. */
typedef int (*ch_store_window_fn)(void *ud, int64_t from_ms, int64_t to_ms);
int ch_store_health_watch_begin(ch_store_t *st, int64_t now_ms, int64_t *id) CH_MUST_CHECK;
int ch_store_health_watch_seen(ch_store_t *st, int64_t id, int64_t now_ms) CH_MUST_CHECK;
int ch_store_health_watch_list(ch_store_t *st, int64_t from_ms, int64_t to_ms,
                               ch_store_window_fn fn, void *ud) CH_MUST_CHECK;
/* ---- alerts and device transitions ---------------------------------------------------------- */

/* Values, NULL-terminated (docs/internals/alert.md). */
extern const char *const ch_store_alert_states[];     /* open acknowledged resolved */
extern const char *const ch_store_alert_kinds[];      /* camera-offline provider-down
                                                         device-offline bell-pressed */
extern const char *const ch_store_alert_severities[]; /* info warning critical */

/* An alert the rules raised (the alert module owns its meaning). The state is kept in the
 * column "status" so that the generic list filter applies; the API calls it "state". */
typedef struct ch_alert {
    int64_t id;
    char *kind;          /* required: one of ch_store_alert_kinds */
    char *severity;      /* required: one of ch_store_alert_severities */
    char *subject_type;  /* required: "camera", "device" or "agency" */
    int64_t subject_id;  /* required */
    int64_t agency_id;   /* the subject's provider or owner agency, 0 when none */
    char *message;       /* required: one English sentence for people */
    char *details;       /* a JSON object text (the bell's cameras, counts, ...), or NULL */
    char *status;        /* required: one of ch_store_alert_states */
    int64_t raised_at;   /* ms since epoch */
    char *acked_by;      /* the actor who acknowledged it, or NULL */
    int64_t acked_at;    /* 0 when not acknowledged */
    char *note;          /* the acknowledgement's note, or NULL */
    int64_t resolved_at; /* 0 while not resolved */
    char *resolved_reason;
    int64_t created_at;
    int64_t updated_at;
} ch_alert_t;

/* One change of a device's state, as the MQTT device watch saw it. */
typedef struct ch_device_transition {
    int64_t id;
    int64_t device_id; /* required */
    int64_t agency_id; /* required: the device's agency */
    char *from_state;  /* "unknown" for the first one seen */
    char *to_state;    /* required: "online", "fault", "offline" */
    int64_t at;        /* ms since epoch */
    char *reason;      /* "heartbeat missed", "status fault", ... or NULL */
    int64_t created_at;
    int64_t updated_at;
} ch_device_transition_t;

typedef struct ch_alert_list {
    ch_alert_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_alert_list_t;

typedef struct ch_device_transition_list {
    ch_device_transition_t *items;
    size_t count;
    int64_t total;
    int64_t next_id;
} ch_device_transition_list_t;

void ch_alert_fini(ch_alert_t *a);
void ch_device_transition_fini(ch_device_transition_t *t);
void ch_alert_list_free(ch_alert_list_t *l);
void ch_device_transition_list_free(ch_device_transition_list_t *l);

/* Alerts: the list filter takes agency_id, kind, status (the state), after_id, limit. */
int ch_store_alert_create(ch_store_t *st, ch_alert_t *a) CH_MUST_CHECK;
int ch_store_alert_get(ch_store_t *st, int64_t id, ch_alert_t *out) CH_MUST_CHECK;
int ch_store_alert_update(ch_store_t *st, ch_alert_t *a) CH_MUST_CHECK;
int ch_store_alert_list(ch_store_t *st, const ch_store_filter_t *f,
                        ch_alert_list_t *out) CH_MUST_CHECK;

/* Device transitions: the list filter takes device_id, agency_id, after_id, limit. */
int ch_store_device_transition_create(ch_store_t *st, ch_device_transition_t *t) CH_MUST_CHECK;
int ch_store_device_transition_list(ch_store_t *st, const ch_store_filter_t *f,
                                    ch_device_transition_list_t *out) CH_MUST_CHECK;

#endif /* CH_STORE_H */
