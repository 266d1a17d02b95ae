/*
 * registry: import of the national CCTV standard data (전국CCTV표준데이터), the national
 * emergency-bell standard data (전국안전비상벨위치표준데이터) and the Seoul Ansimi CCTV list into
 * the store, plus the pure pieces the import is built from (encoding detection, header mapping,
 * cell normalisation, direction reading, row to record conversion), which tests and the fuzzer
 * use without a database.
 *
 * An import reads one file (or one in-memory buffer), detects its encoding (UTF-8, UTF-8 with
 * BOM, CP949/EUC-KR, UTF-16 with BOM) and layout (by header names, wherever the header sits in
 * the first records), converts every row into cameras or devices and upserts them in ONE store
 * transaction: a file is imported entirely or not at all. Malformed rows are skipped and
 * reported with their line; suspicious but usable rows are imported and reported as flagged.
 * See docs in each function below and the rules in registry_cells.c.
 *
 * Threading: one import at a time per store handle (the store's rule). The pure functions are
 * reentrant.
 */
#ifndef CH_REGISTRY_H
#define CH_REGISTRY_H

#include "core/core.h"
#include "core/metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- options and report ------------------------------------------------------------------- */

/* Called now and then during an import with the bytes of input done so far and the total, so
 * that a terminal can draw a progress bar. Called a last time with done == total. */
typedef void (*ch_import_progress_fn)(void *user, uint64_t done, uint64_t total);

/* Which agencies an import may touch: who runs it decides (the API passes the caller's). */
typedef enum ch_import_scope {
    /* Any (an administrator, the command line): rows name their agency, unknown agencies are
     * created, and a row whose key another agency's record holds moves that record. */
    CH_IMPORT_ANY_AGENCY = 0,
    /* Only own_agency_id (a provider): an agency override naming another agency, or one that
     * does not exist, refuses the whole import (CH_EPERM, nothing read or stored); a row that
     * names another agency (CH_IMPORT_SKIP_OTHER_AGENCY) or an unknown one
     * (CH_IMPORT_SKIP_UNKNOWN_AGENCY), or whose key is held by another agency's camera or
     * device (CH_IMPORT_SKIP_OTHER_AGENCY_RECORD), is skipped and reported with that code. */
    CH_IMPORT_OWN_AGENCY = 1,
} ch_import_scope_t;

/* The reason codes of rows skipped for the scope (ch_import_issue_t.code). */
#define CH_IMPORT_SKIP_OTHER_AGENCY        "other-agency"
#define CH_IMPORT_SKIP_UNKNOWN_AGENCY      "unknown-agency"
#define CH_IMPORT_SKIP_OTHER_AGENCY_RECORD "other-agency-record"

typedef struct ch_import_options {
    /* The provider agency for every row, overriding 관리기관명; supplies it for lists without
     * one (the Ansimi list defaults to "서울특별시 <자치구>"). NULL: from the file. Borrowed. */
    const char *agency;
    ch_import_progress_fn progress; /* NULL: no progress reports */
    void *progress_user;
    /* "Now" for the future-date check, in ms since the epoch; 0 means the wall clock. Tests set
     * it to stay deterministic. (Not the row's 데이터기준일자: publishers leave it stale while
     * adding newer cameras, so it would flag good rows.) */
    int64_t now_ms;
    /* Which agencies the import may touch (see ch_import_scope_t), and with
     * CH_IMPORT_OWN_AGENCY the one it may (an id <= 0 allows none). The scope is enforced
     * against the store: a dry run (no store) reports every row. */
    ch_import_scope_t scope;
    int64_t own_agency_id;
} ch_import_options_t;

/* One reported row: the physical line (1-based, the header's line counted) where the row
 * starts, and why it was flagged or skipped. flags is NULL for skipped rows, else the
 * comma-separated codes also stored on the records ("unlocated,bad-date"). code is a skipped
 * row's reason code when it has one (CH_IMPORT_SKIP_*), else NULL. */
typedef struct ch_import_issue {
    int line;
    char *reason;
    char *flags;
    char *code;
} ch_import_issue_t;

/* The outcome of importing one file. Zero it (or ch_import_report_init) before an import;
 * release with ch_import_report_fini. Counts of records are per camera / device, not per row. */
typedef struct ch_import_report {
    char *file;     /* the name given (the path's last component for import_file) */
    char *encoding; /* "UTF-8", "UTF-8-BOM", "CP949", "UTF-16LE", "UTF-16BE", or NULL */
    char *layout;   /* "cctv-standard", "emergency-bell", "seoul-ansimi", or NULL */
    int ok;         /* 1 when the file was imported (committed), 0 when rejected or failed */
    char *error;    /* why it was rejected or failed, or NULL */
    uint64_t bytes; /* input size */
    int header_line;
    long rows;    /* data rows after the header (blank lines not counted) */
    long sites;   /* rows converted into records (rows - skipped) */
    long cameras; /* camera records produced by the conversion */
    long devices; /* device records produced by the conversion */
    long cameras_created, cameras_updated, cameras_unchanged;
    long devices_created, devices_updated, devices_unchanged;
    long agencies_created;
    long unlocated;     /* records stored with located = 0 */
    long invalid_bytes; /* bytes that were not valid in the detected encoding (now U+FFFD) */
    ch_import_issue_t *flagged;
    size_t flagged_count, flagged_cap;
    ch_import_issue_t *skipped;
    size_t skipped_count, skipped_cap;
    double duration_s;
} ch_import_report_t;

void ch_import_report_init(ch_import_report_t *rep);
void ch_import_report_fini(ch_import_report_t *rep); /* NULL is fine; leaves rep zeroed */

/* The report as a JSON object (new reference): file, encoding, layout, ok, error, bytes,
 * header_line, rows, sites, cameras, devices, cameras_created/updated/unchanged,
 * devices_created/updated/unchanged, agencies_created, unlocated, invalid_bytes,
 * flagged and skipped (lists of {"line", "reason"[, "flags"][, "code"]}) and duration_s. */
json_t *ch_import_report_to_json(const ch_import_report_t *rep);

/* The report as the audit record holds it: every field of ch_import_report_to_json but the
 * flagged and skipped lists (their counts stay) and the duration. New reference. */
json_t *ch_import_report_to_audit_json(const ch_import_report_t *rep);

/* ---- import into a store ------------------------------------------------------------------ */

/*
 * Imports one file into st, all-or-nothing, and fills rep (which the caller initialised and
 * later finalises). Returns 0 when the file was imported (rows may still have been skipped or
 * flagged: see rep), or a negative code: CH_EPARSE / CH_EUNSUPP when the file cannot be read as
 * a CCTV list at all (binary, spreadsheet, no recognizable header), CH_EIO / -errno when it
 * cannot be read, CH_ENOMEM, CH_EDB when the store failed. On failure nothing in the store has
 * changed and *err (when err is not NULL) holds a message for a person; free it with ch_free.
 * st may be NULL for a dry run: everything is read, checked and counted, nothing stored.
 */
int ch_registry_import_file(ch_store_t *st, const char *path, const ch_import_options_t *opt,
                            ch_import_report_t *rep, char **err) CH_MUST_CHECK;

/* As ch_registry_import_file for bytes in memory (the body of POST /api/v1/imports). name is
 * the file name for the report and the records' source_file. data is borrowed. */
int ch_registry_import_buffer(ch_store_t *st, const char *name, const char *data, size_t len,
                              const ch_import_options_t *opt, ch_import_report_t *rep,
                              char **err) CH_MUST_CHECK;

/* ---- conversion without a store (tests, fuzzing, dry runs) -------------------------------- */

/* One converted row, handed to a ch_import_row_fn. Everything in it is borrowed and valid only
 * during the call; the callback may change the records (it sets agency_id before storing). */
typedef struct ch_import_row {
    int line;                 /* first physical line of the row */
    const char *agency_name;  /* the provider agency (override, 관리기관명, or derived) */
    const char *agency_phone; /* 관리기관전화번호, or NULL */
    const char *agency_code;  /* 개방자치단체코드, or NULL */
    /* CCTV layouts: the site's first camera (agency_id 0; its name and source_key end in
     * "#1"); the site's camera_count cameras are it with "#1" .. "#<camera_count>" there (see
     * ch_store_camera_upsert_site). NULL for devices. */
    ch_camera_t *camera;
    size_t camera_count;
    ch_device_t *device; /* one device (agency_id 0) for the emergency-bell layout, else NULL */
    /* The CH_STORE_F_* groups of fields the file's header has no column for: their values in
     * the records are unknowns, and the import leaves a stored record's as they are. */
    unsigned keep;
} ch_import_row_t;

/* Returns 0 to go on, or a negative code to stop the whole conversion with it. */
typedef int (*ch_import_row_fn)(void *user, ch_import_row_t *row);

/*
 * Detects encoding and layout, parses the CSV and converts every row, calling row_fn for each
 * converted row. Fills rep's file, encoding, layout, bytes, header_line, rows, sites, cameras,
 * devices, unlocated, invalid_bytes, flagged and skipped (not the store outcomes). Returns 0,
 * the first negative code row_fn returned, or an error as ch_registry_import_buffer does
 * (then *err says why). row_fn may be NULL (conversion and checks only).
 */
int ch_registry_convert_buffer(const char *name, const char *data, size_t len,
                               const ch_import_options_t *opt, ch_import_row_fn row_fn, void *user,
                               ch_import_report_t *rep, char **err) CH_MUST_CHECK;

/* ---- pure helpers --------------------------------------------------------------------------- */

typedef enum ch_import_encoding {
    CH_IMPORT_ENC_UTF8 = 1,
    CH_IMPORT_ENC_UTF8_BOM,
    CH_IMPORT_ENC_CP949,
    CH_IMPORT_ENC_UTF16LE,
    CH_IMPORT_ENC_UTF16BE,
} ch_import_encoding_t;

/* "UTF-8", "UTF-8-BOM", "CP949", "UTF-16LE", "UTF-16BE"; never NULL. */
const char *ch_import_encoding_name(ch_import_encoding_t enc);

/*
 * Decides how a file's bytes are encoded. A BOM decides (UTF-8, UTF-16); otherwise bytes that
 * are (almost all) well-formed UTF-8 are UTF-8, and other text is CP949 (of which EUC-KR is a
 * subset). Rejects, with CH_EUNSUPP and a message in *err: empty input, a ZIP file (xlsx, "PK"),
 * an OLE compound file (old xls), and binary data (NUL bytes or control characters in the
 * first 64 KiB).
 */
int ch_registry_detect_encoding(const char *data, size_t len, ch_import_encoding_t *out,
                                char **err) CH_MUST_CHECK;

/* What 촬영방면정보 says about a camera. kind is "fixed", "ptz" or "unknown" (static);
 * the doubles are CH_STORE_UNKNOWN_DOUBLE when not said; keep_as_note is 1 when the text holds
 * more than the recognised forms (landmarks: "주택 앞 삼거리", "특정방면"), so that the caller
 * keeps the text as the camera's note. */
typedef struct ch_direction {
    const char *kind;
    double fov_deg;
    double heading_deg;
    double range_m;
    int keep_as_note;
} ch_direction_t;

/*
 * Reads 촬영방면정보 (UTF-8, len bytes, need not be NUL-terminated):
 * blank -> unknown; 고정 -> fixed; 회전 -> ptz; 360도 전방면 / 360도전방면 / 360도다방면 /
 * 360도 전방향 / 360 / 360° -> ptz, fov 360; "90도 정면", "60도 단방향" -> fixed with that fov;
 * a bare angle ("130", "45°") -> that fov (kind unknown); 반경 2~3m -> range 3 m; a compass word
 * alone (북, 북측, 남동, 북서쪽, 동향, NE ...) -> heading (N = 0, NE = 45, ... clockwise);
 * anything else -> unknown, kept as note (with whatever of the above it contains).
 */
void ch_registry_parse_direction(const char *text, size_t len, ch_direction_t *out);

/*
 * Normalises 설치연월 (YYYY-MM, YYYYMM, YYYY.MM, YYYY/MM, YYYY-MM-DD, YYYYMMDD, "YYYY년 M월",
 * a bare YYYY) into out as "YYYY-MM" or "YYYY". ref_ym is the latest acceptable year*100+month
 * (the month of the import). Returns 0 (out set), 1 for a blank cell (out empty), or
 * CH_EPARSE with *why set to a static reason: unparseable ("11-Dec"), impossible year (before
 * 1990, such as 1900), impossible month, or in the future.
 */
int ch_registry_normalize_installed(const char *text, size_t len, int ref_ym, char out[8],
                                    const char **why);

/* Coordinate checks. */
typedef enum ch_coord_verdict {
    CH_COORD_OK = 0,      /* inside 33..39.5 N, 124..132 E */
    CH_COORD_COARSE,      /* inside, but both published with two decimals or fewer (~1 km) */
    CH_COORD_SWAPPED,     /* valid once latitude and longitude are swapped (done) */
    CH_COORD_BLANK,       /* a cell is blank */
    CH_COORD_UNPARSEABLE, /* not a number */
    CH_COORD_ZERO,        /* 0,0 */
    CH_COORD_SENTINEL,    /* 99.999999, 999.999999 and such fill values */
    CH_COORD_OUTSIDE,     /* a number outside Korea */
    CH_COORD_TOO_COARSE,  /* one decimal or none on both (±5 km or worse): unusable */
} ch_coord_verdict_t;

/*
 * Reads the published latitude and longitude cells. Sets *lat and *lon (swapped back when the
 * verdict is CH_COORD_SWAPPED) and returns the verdict; the position is usable (located) for
 * CH_COORD_OK, CH_COORD_COARSE and CH_COORD_SWAPPED only.
 */
ch_coord_verdict_t ch_registry_check_coords(const char *lat_text, size_t lat_len,
                                            const char *lon_text, size_t lon_len, double *lat,
                                            double *lon);

/*
 * Reads 카메라화소수. The standard's unit is 만 화소 (10,000 pixels): "200" is 2,000,000 pixels,
 * "41" is 410,000. The rule: blank or 0 -> 0 (unknown, no complaint); a whole number 10..9999 ->
 * n x 10,000; a single digit 1..9 -> n megapixels (nobody sells 50,000-pixel cameras: "2" is
 * 2 MP); a decimal ("2.1") -> megapixels; 100,000 or more -> already pixels; "200만", "2MP" and
 * thousands separators are understood. Returns 0 with *pixels set, or CH_EPARSE for text that
 * is none of these or a result outside 100,000..100,000,000 (then *pixels = 0).
 */
int ch_registry_parse_pixels(const char *text, size_t len, int64_t *pixels);

/* Most cameras one site may declare; a larger 카메라대수 is taken as a typo (one camera made,
 * row flagged). */
#define CH_REGISTRY_MAX_CAMERAS_PER_SITE CH_STORE_MAX_SITE

/* ---- the rules of a record's fields (registry_camera.c) ------------------------------------ */

/* Longest strings a change may set, in bytes: generous for real data, small enough that one
 * request cannot make a row the size of the request limit. */
#define CH_REGISTRY_NAME_MAX  256   /* names, purpose, stream user name and password */
#define CH_REGISTRY_TEXT_MAX  1024  /* addresses, direction, note */
#define CH_REGISTRY_URL_MAX   2048  /* rtsp_url */
#define CH_REGISTRY_ATTRS_MAX 16384 /* a device's attrs, as compact JSON */

/* Bounds of a camera's numbers. */
#define CH_REGISTRY_MAX_DEGREES        360.0 /* heading_deg, fov_deg */
#define CH_REGISTRY_MAX_RANGE_M        1e6
#define CH_REGISTRY_MAX_PIXELS_SET     INT64_C(1000000000000) /* what a change may set */
#define CH_REGISTRY_MAX_RETENTION_DAYS 3650 /* ten years; an import flags more as bad-retention */

/* 1 when s is "YYYY" or "YYYY-MM" (month 01..12), the granularity the national data
 * publishes for a camera's installation. */
int ch_registry_valid_year_month(const char *s);

/* 1 when s is an RTSP URL a camera may hold: rtsp:// or rtsps://, something after it, no
 * spaces or control bytes (they would break the request line of the RTSP client). */
int ch_registry_valid_rtsp_url(const char *s);

/* A camera's TLS pin (tls_pin): the SPKI fingerprint of the key of its self-signed certificate,
 * as ch_net_tls_spki writes it. 1 when pin is "sha256:" and 64 hex digits (the prefix and the
 * digits in any case), which are then lowercased in place, the one form the TLS check compares;
 * else 0. A pin means something only for an rtsps:// URL (ch_registry_is_rtsps). */
int ch_registry_canon_tls_pin(char *pin);
/* 1 when url is an rtsps:// URL (the scheme in any case). */
int ch_registry_is_rtsps(const char *url);

/*
 * The rule for a camera's stream credentials when the camera changes (registry_camera.c): they
 * belong to the place they were given for. When next->rtsp_url sends a client elsewhere than
 * old_url (another scheme, host or port; a URL where there was none, or none any more; a URL
 * that does not parse and differs), next's rtsp_username is dropped unless user_sent and its
 * rtsp_password unless password_sent (the same change gave them again). Otherwise whoever may
 * change the URL could point the camera at a host of their own and collect the password the
 * health probe or the relay's pull would send there (Basic auth sends it in clear). The path
 * and query may change freely. Returns 1 when something was dropped, else 0.
 */
int ch_registry_camera_credentials_follow(const char *old_url, ch_camera_t *next, int user_sent,
                                          int password_sent);

/* ---- changes for an actor: create, update, delete (registry_change.c) ---------------------- */

/*
 * The registry's use cases: an agency, camera or device created, changed or deleted for an
 * actor. Each applies every rule of a change here (a provider changes only its own agency's
 * cameras and devices; stream credentials stay with their place), writes the store and the
 * audit record in one transaction (a change the record does not hold is undone), answers a
 * refusal as core's ch_fault_t (never an HTTP status) and, once a camera change is committed,
 * tells the subscribers of the registry's "cameras changed" notification. The API's routes are
 * their adapters (JSON to a record, a fault to an answer). Each runs on the thread of the store
 * handle it is given: the control loop's (the calls below), or the store worker's
 * (ch_registry_req_t).
 */
typedef enum ch_registry_kind {
    CH_REGISTRY_AGENCY = 0,
    CH_REGISTRY_CAMERA = 1,
    CH_REGISTRY_DEVICE = 2,
} ch_registry_kind_t;

/* One record of any kind; which member is live is the request's kind. */
typedef union ch_registry_record {
    ch_agency_t agency;
    ch_camera_t camera;
    ch_device_t device;
} ch_registry_record_t;

/* Zeroes r and initialises the member of kind (ch_camera_init, ch_device_init); _fini frees it
 * (and leaves r zeroed). */
void ch_registry_record_init(ch_registry_kind_t kind, ch_registry_record_t *r);
void ch_registry_record_fini(ch_registry_kind_t kind, ch_registry_record_t *r);

/* A record as the registry shows it (new reference): every field but the camera's stream
 * credentials, which never leave the hub (only whether a URL is set: rtsp_configured). The
 * API answers it and the audit record holds it. */
json_t *ch_registry_agency_to_json(const ch_agency_t *a);
json_t *ch_registry_camera_to_json(const ch_camera_t *c);
json_t *ch_registry_device_to_json(const ch_device_t *d);
json_t *ch_registry_record_to_json(ch_registry_kind_t kind, const ch_registry_record_t *r);

/* Who asks for a change: name is the audit record's actor ("user:kim", "apikey:3"); scope
 * CH_IMPORT_OWN_AGENCY (a provider) changes only agency_id's cameras and devices (the import's
 * rule too), CH_IMPORT_ANY_AGENCY any record. */
typedef struct ch_registry_actor {
    const char *name;
    ch_import_scope_t scope;
    int64_t agency_id;
} ch_registry_actor_t;

/*
 * Where a change puts its audit record ("camera.create" on "camera:12" with outcome "ok" and
 * the record as details), and a provider's refusal ("auth.forbidden", object NULL, outcome
 * "denied"). A change's record is written inside its store transaction, before the commit: a
 * non-zero return undoes the change (CH_FAULT_AUDIT). details is stolen. data NULL and record
 * NULL: nothing is recorded.
 */
typedef struct ch_registry_recorder {
    int (*record)(void *data, const char *action, const char *object, const char *outcome,
                  json_t *details);
    void *data;
} ch_registry_recorder_t;

/* ---- the "cameras changed" notification ---- */

/* What a committed camera change did (bits of ch_registry_change_t.what). */
#define CH_REGISTRY_CAMERA_CREATED  1u
#define CH_REGISTRY_CAMERA_UPDATED  2u
#define CH_REGISTRY_CAMERA_DELETED  4u
#define CH_REGISTRY_CAMERA_INACTIVE 8u  /* not "active" after the change: its grants end */
#define CH_REGISTRY_CAMERA_SOURCE   16u /* its stream URL or credentials changed */
/* Many cameras changed at once (ids NULL, count 0: reread them): a site of cameras upserted as
 * one, or many changes in one transaction (an import's). With _CREATED and _UPDATED. */
#define CH_REGISTRY_CAMERAS_MANY 32u

/*
 * Who waits until the subscribers have followed a change (an import's answer waits for the geo
 * index to hold its cameras): a subscriber whose following ends later (on the thread pool)
 * holds it during the call and releases it once done; the last release calls settled. Owned
 * by the registry (ch_registry_follow waits for every one it told).
 */
typedef struct ch_registry_settle {
    unsigned holds;
    void (*settled)(void *ud);
    void *ud;
} ch_registry_settle_t;

/* Holds s (NULL is fine: nobody waits). */
void ch_registry_settle_hold(ch_registry_settle_t *s);
/* Releases a hold; the last one calls settled and frees s. NULL is fine. */
void ch_registry_settle_release(ch_registry_settle_t *s);

/* A committed change of cameras: their ids, what happened to them, who did it, and, when one
 * camera was created or updated, the record as stored now (else NULL: a subscriber that needs
 * the records reads them). settle: who waits for the followers to be done (NULL: nobody).
 * Borrowed for the call. */
typedef struct ch_registry_change {
    unsigned what;
    const int64_t *ids;
    size_t count;
    const ch_camera_t *camera;
    const char *actor;
    ch_registry_settle_t *settle;
} ch_registry_change_t;

typedef void (*ch_registry_cameras_fn)(void *ud, const ch_registry_change_t *change);

#define CH_REGISTRY_MAX_SUBSCRIBERS 8
#define CH_REGISTRY_MAX_EXPECTED    8

typedef struct ch_registry_waiter {
    void (*fn)(void *ud);
    void *ud;
} ch_registry_waiter_t;

/* What a change knows that the store's feed cannot say: its actor, for a camera's update the
 * stream before it (stream_known; the strings owned), and for a camera's create or update the
 * record as committed (read back by the work), so that the follower need not read it again on
 * the loop. */
typedef struct ch_registry_told {
    const char *actor;
    int stream_known;
    char *url, *username, *password, *tls_pin;
    const ch_camera_t *camera; /* borrowed from the request while it is told, or NULL */
} ch_registry_told_t;

/* The registry of one store handle: the store and who follows its camera changes (the geo
 * index, health, the live grants, the relay's sources). Embed it; ch_registry_init before
 * use; ch_registry_fini when it watched the store. */
typedef struct ch_registry {
    ch_store_t *st;
    struct {
        ch_registry_cameras_fn fn;
        void *ud;
    } subscribers[CH_REGISTRY_MAX_SUBSCRIBERS];
    size_t nsubscribers;
    ch_store_watch_t *watch; /* the store's change feed of cameras (ch_registry_watch) */
    /* What the use case whose changes are being told knows and the feed cannot say (its
     * request's told), or NULL. Set from ch_registry_req_telling to ch_registry_req_told: on
     * the loop around the telling of a worker's commit, around the whole of ch_registry_run. */
    const struct ch_registry_told *pending;
    /* Changes told and not yet followed, and who waits for none to be left (ch_registry_follow). */
    size_t following;
    ch_registry_waiter_t *waiters;
    size_t nwaiters;
    /* The actors of other handles' changes in flight (ch_registry_expect). */
    const char *expected[CH_REGISTRY_MAX_EXPECTED];
    size_t nexpected;
} ch_registry_t;

void ch_registry_init(ch_registry_t *reg, ch_store_t *st);

/*
 * Makes the store's change feed of the camera table (ch_store_watch on reg->st) the one source
 * of the "cameras changed" notification: after each commit of the handle, every camera it
 * created, updated or deleted is told to the subscribers (the record read back; _INACTIVE when
 * not active; _SOURCE when its stream changed, or when the writer was not a use case of this
 * registry and so cannot say), and a "reread the table" change as _CAMERAS_MANY. The use cases
 * add their actor ("system" otherwise). Without it the use cases tell nobody. 0 or a store code.
 */
int ch_registry_watch(ch_registry_t *reg) CH_MUST_CHECK;
/* Ends the watch (nothing is told from then on). */
void ch_registry_fini(ch_registry_t *reg);

/* Reads now what other store handles committed (ch_store_feed_poll on reg->st: an import's
 * thread, the store worker), told to the subscribers as any change with actor as its actor,
 * and calls settled(ud) (may be NULL) once every change told so far has been followed (the geo
 * index reloaded: a timer's poll may have told the import's changes already), before this
 * returns or later on the loop. Control loop, outside a transaction. */
void ch_registry_follow(ch_registry_t *reg, const char *actor, void (*settled)(void *ud), void *ud);

/* Says that another handle will commit changes on behalf of actor (an import on the thread
 * pool; actor stays valid until ch_registry_unexpect(reg, actor)). A poll that reads them
 * before the import's own ch_registry_follow (the event tick's, an authenticated request's)
 * tells them with actor when every change expected has that one ("system" otherwise). At most
 * CH_REGISTRY_MAX_EXPECTED at once; beyond, the changes are the system's. Control loop. */
void ch_registry_expect(ch_registry_t *reg, const char *actor);
/* Ends an expectation of ch_registry_expect (the same pointer); unknown ones are ignored. */
void ch_registry_unexpect(ch_registry_t *reg, const char *actor);

/* Adds fn to the subscribers, called in the order subscribed. 0, or CH_ETOOBIG when
 * CH_REGISTRY_MAX_SUBSCRIBERS are subscribed. */
int ch_registry_subscribe(ch_registry_t *reg, ch_registry_cameras_fn fn, void *ud) CH_MUST_CHECK;

/* Tells every subscriber of a committed camera change. The store's change feed calls it
 * (ch_registry_watch); so may whatever else learns of a change. */
void ch_registry_cameras_changed(const ch_registry_t *reg, const ch_registry_change_t *change);

/* ---- the use cases ---- */

/* Fills f with the refusal a store code means for a record of kind (deleting: the operation
 * was a delete) and returns rc: CH_ENOTFOUND "no such camera"; CH_EEXIST a name or source key
 * taken (conflict "exists"); CH_ECONFLICT a referenced agency on delete (conflict), an unknown
 * agency_id otherwise (invalid); anything else internal (logged with the store's message). */
int ch_registry_store_fault(const ch_registry_t *reg, ch_registry_kind_t kind, int rc, int deleting,
                            ch_fault_t *f);

/* Reads record id of kind into out (initialised here; the caller finis it either way). 0, or a
 * negative code with f filled (not found, internal). */
int ch_registry_get(const ch_registry_t *reg, ch_registry_kind_t kind, int64_t id,
                    ch_registry_record_t *out, ch_fault_t *f) CH_MUST_CHECK;

/*
 * Creates rec (of kind, its fields read and checked by the caller) for who: a provider only in
 * its own agency (CH_FAULT_FORBIDDEN, field agency_id, recorded as "auth.forbidden"). Writes
 * it and "<kind>.create" in one transaction; on success rec holds the stored record (id
 * included) and the cameras' subscribers are told. 0, or a negative code with f filled.
 */
int ch_registry_create(ch_registry_t *reg, const ch_registry_actor_t *who, ch_registry_kind_t kind,
                       ch_registry_record_t *rec, const ch_registry_recorder_t *audit,
                       ch_fault_t *f) CH_MUST_CHECK;

/* An update: the record to change, and how. edit applies the request to the record as stored
 * (for the API: a JSON body read over it, which keeps what the body leaves out); 0, or a
 * negative code with f filled. rtsp_username_given / rtsp_password_given: the request gives
 * them again (the credentials rule, ch_registry_camera_credentials_follow). */
typedef struct ch_registry_update {
    ch_registry_kind_t kind;
    int64_t id;
    int (*edit)(void *ud, ch_registry_record_t *rec, ch_fault_t *f);
    void *edit_ud;
    int rtsp_username_given;
    int rtsp_password_given;
} ch_registry_update_t;

/*
 * Updates a record for who: reads it (not found), a provider only its own agency's record both
 * before and after the edit (forbidden), applies the edit, the credentials rule, then writes
 * it and "<kind>.update" in one transaction. On success out (initialised here; the caller finis
 * it either way) holds the record as stored now and the cameras' subscribers are told (with
 * CH_REGISTRY_CAMERA_INACTIVE for a camera not active, _SOURCE for a changed stream).
 */
int ch_registry_update(ch_registry_t *reg, const ch_registry_actor_t *who,
                       const ch_registry_update_t *req, ch_registry_record_t *out,
                       const ch_registry_recorder_t *audit, ch_fault_t *f) CH_MUST_CHECK;

/* Deletes record id of kind for who (a provider only its own agency's) and records
 * "<kind>.delete" with what was deleted, in one transaction; the cameras' subscribers are told
 * (CH_REGISTRY_CAMERA_DELETED). 0, or a negative code with f filled. */
int ch_registry_delete(ch_registry_t *reg, const ch_registry_actor_t *who, ch_registry_kind_t kind,
                       int64_t id, const ch_registry_recorder_t *audit,
                       ch_fault_t *f) CH_MUST_CHECK;

/*
 * The same use cases as requests, for the hub's store worker (ch_store_async_watched), so that
 * the loop never waits for the store's round trips nor the audit record's sync:
 *
 *   ch_registry_req_init(q, reg, verb, kind, who, audit), then the request's input: for a
 *   create the record in q->rec, for an update q->update (and q->id), for a delete q->id;
 *   ch_store_async_watched(worker, ch_registry_req_work, ch_registry_req_telling, done, q);
 *   in done (the loop): ch_registry_req_told(q), then q->rec (create, update: as stored) or
 *   q->fault; ch_registry_req_fini(q).
 *
 * ch_registry_req_work (a ch_store_work_fn) runs the whole use case on the handle it is given
 * and uses nothing of reg but the request (the edit and the recorder run there too, on the
 * worker's thread: they must use only what they are given); ch_registry_req_telling (on the
 * loop, before the worker's commit is told) makes the request's told what reg's feed watcher
 * reads. ch_registry_run runs a request on reg's own handle, the loop's (the synchronous
 * ch_registry_create, _update and _delete above are it). who's name and the recorder's data
 * are borrowed until ch_registry_req_fini.
 */
typedef enum ch_registry_verb {
    CH_REGISTRY_CREATE = 0,
    CH_REGISTRY_UPDATE = 1,
    CH_REGISTRY_DELETE = 2,
    CH_REGISTRY_GET = 3, /* no change: record q->id read into q->rec (ch_registry_get) */
} ch_registry_verb_t;

typedef struct ch_registry_req {
    ch_registry_t *reg;
    ch_registry_verb_t verb;
    ch_registry_kind_t kind;
    ch_registry_actor_t who;
    ch_registry_recorder_t audit;
    int64_t id;                  /* update, delete, get */
    ch_registry_update_t update; /* update */
    ch_registry_record_t rec;    /* create: in, then as stored; update, get: as stored */
    ch_fault_t fault;            /* the refusal, when the work returned non-zero */
    ch_registry_told_t told;     /* filled by the work */
} ch_registry_req_t;

void ch_registry_req_init(ch_registry_req_t *q, ch_registry_t *reg, ch_registry_verb_t verb,
                          ch_registry_kind_t kind, const ch_registry_actor_t *who,
                          const ch_registry_recorder_t *audit);
void ch_registry_req_fini(ch_registry_req_t *q);
int ch_registry_req_work(ch_store_t *st, void *q);
void ch_registry_req_telling(void *q, int rc);
void ch_registry_req_told(ch_registry_req_t *q);
/* Runs q on reg's own handle; 0, or a negative code with q->fault filled. */
int ch_registry_run(ch_registry_req_t *q) CH_MUST_CHECK;

/* ---- the import on the record (registry_import_recorded.c) --------------------------------- */

/* An import for the record: a file at path (the command line) or bytes in memory (an upload);
 * label names it in the records ("import:<label>", details.file): the path as given, or the
 * upload's name, which is also the report's file name for bytes. */
typedef struct ch_registry_import_req {
    const char *label;
    const char *path; /* NULL: data and len */
    const char *data;
    size_t len;
    ch_import_options_t options;
} ch_registry_import_req_t;

/*
 * The import use case: "import.start" on the record (details file, agency, and bytes for data
 * in memory) before any change, the import (ch_registry_import_file or _buffer: rep and *err
 * as they fill them), then "import" with the report (ch_import_report_to_audit_json) and the
 * outcome ok, denied (CH_EPERM) or error. audit NULL: nothing recorded (a dry run). Returns 0,
 * or a negative code and f: rule "start" (CH_FAULT_AUDIT: nothing imported), "result"
 * (CH_FAULT_AUDIT: the import ran, rep says how, its result is not on the record) or "import"
 * (the import's code in f->rc, refused or failed as *err says).
 */
int ch_registry_import_recorded(ch_store_t *st, const ch_registry_import_req_t *req,
                                const ch_registry_recorder_t *audit, ch_import_report_t *rep,
                                char **err, ch_fault_t *f) CH_MUST_CHECK;

/* ---- metrics (registry_metrics.c) --------------------------------------------------------- */

/* The registry's family for GET /metrics, cctvhub_cameras_registered{status}, in two halves so
 * that the store is read off the loop: ch_registry_count_statuses reads one count per status
 * with st (any thread; 0 or a store code, logged), ch_registry_collect_counts renders counts
 * (a ch_metrics_collect_fn; ud is a ch_registry_counts_t; no family while none was read).
 * ch_registry_collect is both at once (ud is a store handle; no family when the store fails). */
typedef struct ch_registry_counts {
    int known; /* read at least once */
    size_t n;  /* statuses counted (ch_store_camera_statuses' order) */
    int64_t totals[8];
} ch_registry_counts_t;
int ch_registry_count_statuses(ch_store_t *st, ch_registry_counts_t *out) CH_MUST_CHECK;
void ch_registry_collect_counts(ch_metrics_writer_t *w, void *ud);
void ch_registry_collect(ch_metrics_writer_t *w, void *ud);

#endif /* CH_REGISTRY_H */
