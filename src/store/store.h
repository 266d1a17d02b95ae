/*
 * store: the data API of cctvhub (agencies, cameras, devices; later users, events, grants),
 * one interface with interchangeable back ends. SQLite (WAL, foreign keys, versioned
 * migrations, prepared statements) is the embedded default; PostgreSQL follows behind the
 * same functions, so callers never see which one runs.
 *
 * Threading: a store handle is used from one thread at a time (the control loop, or one
 * worker of its pool holding it for an import). Open a second handle for a second thread; a
 * store worker (ch_store_async) is such a thread, whose requests complete on the loop.
 *
 * Records: each domain's in store/records_<domain>.h, which this header includes.
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

/* Each domain's records in a header of their own (the calls over them are below). */
#include "store/records_alert.h"
#include "store/records_audit.h"
#include "store/records_auth.h"
#include "store/records_event.h"
#include "store/records_health.h"
#include "store/records_registry.h"

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

/* ---- the change feed ----------------------------------------------------------------------- */

/*
 * What a handle's writes changed, told to the code that keeps something derived from the
 * store (the geo index, the live grants, health) so that it follows without rereading.
 *
 * ch_store_watch subscribes fn to the tables in the mask (CH_STORE_T_*). After a transaction of
 * this handle commits, fn is called once per change it made to those tables, in the order
 * made, on the thread that committed (the control loop for its handle); a write outside a
 * transaction is its own commit. A rollback (or a savepoint's) drops what it undid: nothing is
 * told. A change is (table, id, op); id 0 means "many rows of the table changed, reread it"
 * (a site of cameras upserted as one, sessions purged, camera health appended, or more
 * changes in one transaction than the feed keeps: 65,536).
 *
 * Other handles of the same database (an import's thread, the store worker, another process)
 * are seen too, for the shared tables (CH_STORE_T_SHARED): a handle without watchers writes
 * its changes of them to a change log in the database with its commit (more than 1,024 in one
 * transaction as one id 0 per table), and ch_store_feed_poll tells a watching handle's
 * watchers what other handles committed since its last poll (or since its first watch), as a
 * commit of its own. A handle with watchers does not publish: one handle per database follows
 * (the hub's control loop). Changes that fell out of the log (65,536 kept) are told as id 0.
 *
 * fn may read through the store and may write (those changes are told after the ones being
 * told); it may unwatch itself or others. *out is the subscription to pass to
 * ch_store_unwatch; ch_store_close ends every subscription of the handle. 0 or CH_EINVAL (an
 * empty or unknown mask, or no fn).
 */
enum {
    CH_STORE_T_AGENCIES = 1u << 0,
    CH_STORE_T_CAMERAS = 1u << 1,
    CH_STORE_T_DEVICES = 1u << 2,
    CH_STORE_T_USERS = 1u << 3,
    CH_STORE_T_API_KEYS = 1u << 4,
    CH_STORE_T_SESSIONS = 1u << 5,
    CH_STORE_T_OUTBOX = 1u << 6,
    CH_STORE_T_EVENTS = 1u << 7,
    CH_STORE_T_GRANTS = 1u << 8,
    CH_STORE_T_ALERTS = 1u << 9,
    CH_STORE_T_DEVICE_TRANSITIONS = 1u << 10,
    CH_STORE_T_CAMERA_HEALTH = 1u << 11, /* camera_health_transitions: always id 0 */
    CH_STORE_T_ALL = (1u << 12) - 1,
    /* What other handles' changes the feed carries (the logs nobody follows left out). */
    CH_STORE_T_SHARED = CH_STORE_T_AGENCIES | CH_STORE_T_CAMERAS | CH_STORE_T_DEVICES |
                        CH_STORE_T_USERS | CH_STORE_T_API_KEYS | CH_STORE_T_SESSIONS |
                        CH_STORE_T_EVENTS | CH_STORE_T_GRANTS | CH_STORE_T_ALERTS,
};

typedef enum ch_store_op {
    CH_STORE_INSERT = 1,
    CH_STORE_UPDATE = 2,
    CH_STORE_DELETE = 3,
} ch_store_op_t;

typedef struct ch_store_change {
    unsigned table; /* one CH_STORE_T_* bit */
    int64_t id;     /* the row's id, or 0: many rows, reread the table */
    ch_store_op_t op;
} ch_store_change_t;

typedef void (*ch_store_watch_fn)(void *ud, const ch_store_change_t *c);
typedef struct ch_store_watch ch_store_watch_t;

int ch_store_watch(ch_store_t *st, unsigned tables, ch_store_watch_fn fn, void *ud,
                   ch_store_watch_t **out) CH_MUST_CHECK;
/* Ends a subscription (NULL is fine); fn is not called for it again, even for changes of the
 * commit being told. */
void ch_store_unwatch(ch_store_t *st, ch_store_watch_t *w);
/* Tells st's watchers the changes other handles committed since the last poll (SQLite: one
 * PRAGMA when none did). A handle without watchers has nothing to do. Not inside a
 * transaction (CH_EAGAIN: poll later). 0, CH_EAGAIN or CH_EDB. */
int ch_store_feed_poll(ch_store_t *st) CH_MUST_CHECK;
/* The SQL table name of a CH_STORE_T_* bit ("cameras"), or NULL. */
const char *ch_store_table_name(unsigned table);

/* ---- asynchronous requests ------------------------------------------------------------------ */

/*
 * A store worker: a thread with a handle of its own that runs store calls for the control loop,
 * so that the loop never waits for a query (microseconds with SQLite, a round trip with a
 * database over the network). ch_store_async queues work(st, ud), which runs on the worker's
 * thread with the worker's handle and returns a code; done(ud, rc) is then called on the
 * loop's thread (a uv_async wake-up), in the order the requests were queued.
 *
 * work must use only its st and what ud gives it, and leave in ud what done needs (work owns
 * nothing the loop touches meanwhile). work may write (a use case's transaction): what it
 * commits is told to the watchers of the loop's handle given to ch_store_worker_feed, on the
 * loop, just before done (as if that handle had committed it), so that what follows the store
 * (the geo index, the live grants, health) follows the worker's writes too.
 *
 * ch_store_worker_open opens url for the worker (the same URL as the loop's store) on the
 * calling thread, which must be the loop's; on failure *out is NULL and *err (when asked) holds
 * a message to free. ch_store_async: 0; CH_EAGAIN when CH_STORE_WORKER_MAX_WAITING requests (or
 * ch_store_worker_limit's number) are in flight already: the worker is busy, nothing was queued
 * and done will not be called (an API answers 503 "busy" with Retry-After); CH_EINVAL once the
 * worker is closing.
 * ch_store_worker_close (loop thread; NULL is fine) lets the worker finish what is queued,
 * calls the remaining done callbacks before it returns, then closes its handle; its memory
 * goes on the loop's next turn (uv_close), so run the loop once more before freeing the loop.
 * The worker keeps the loop alive only while a request is in flight.
 */
struct uv_loop_s;
typedef struct ch_store_worker ch_store_worker_t;
typedef int (*ch_store_work_fn)(ch_store_t *st, void *ud);
typedef void (*ch_store_done_fn)(void *ud, int rc);

int ch_store_worker_open(struct uv_loop_s *loop, const char *url, ch_store_worker_t **out,
                         char **err) CH_MUST_CHECK;
int ch_store_async(ch_store_worker_t *w, ch_store_work_fn work, ch_store_done_fn done,
                   void *ud) CH_MUST_CHECK;
/* As ch_store_async, and telling(ud, rc) (may be NULL) is called on the loop before the
 * changes work committed are told: it sets what the watchers read of the request (the registry's
 * actor); done follows them. */
int ch_store_async_watched(ch_store_worker_t *w, ch_store_work_fn work, ch_store_done_fn telling,
                           ch_store_done_fn done, void *ud) CH_MUST_CHECK;

/* The bound on requests in flight (queued, running, or done and not yet completed) by default;
 * debug builds read CCTVHUB_TEST_STORE_MAX_WAITING instead, for the tests. */
#define CH_STORE_WORKER_MAX_WAITING 256
/* Sets the bound (at least 1). Loop thread. */
void ch_store_worker_limit(ch_store_worker_t *w, size_t max_waiting);
/* The requests in flight now. Loop thread. */
size_t ch_store_worker_waiting(const ch_store_worker_t *w);
/* The worker's commits are told to st's watchers from now on (st: the loop's handle, which
 * must outlive the worker; NULL: told to nobody). Loop thread. */
void ch_store_worker_feed(ch_store_worker_t *w, ch_store_t *st);
void ch_store_worker_close(ch_store_worker_t *w);

/* ---- the audit index ------------------------------------------------------------------------ */

/* Adds one row (CH_EEXIST when its seq is indexed already). */
int ch_store_audit_index_add(ch_store_t *st, const ch_store_audit_row_t *row) CH_MUST_CHECK;
/* The highest indexed seq, or -1 when the index is empty. */
int ch_store_audit_index_last(ch_store_t *st, int64_t *seq) CH_MUST_CHECK;
/* Drops every row (before a rebuild). */
int ch_store_audit_index_clear(ch_store_t *st) CH_MUST_CHECK;

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
