/*
 * api internals: the pure parts of the API (no HTTP, no loop, no store handle), so unit tests
 * and the fuzz target can drive them directly.
 *
 *  - errors as the API answers them (status, code, message, field);
 *  - JSON body -> store record (with validation naming the field at fault) and back;
 *  - query strings: percent-decoding, parameters, list filters, cursors;
 *  - the route table and path matching.
 */
#ifndef CH_API_INTERNAL_H
#define CH_API_INTERNAL_H

#include "api/api.h"
#include "audit/audit.h"
#include "geo/geo.h"
#include "policy/policy.h"
#include "core/core.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------------------------- */

/* An error as answered: HTTP status, a stable code ("invalid", "not_found", ...), an English
 * message, and the input field at fault (empty when none). Messages never quote input values,
 * so a credential sent in the wrong place cannot come back in an answer or a log. */
typedef struct ch_api__err {
    int status;
    const char *code; /* static string */
    char message[256];
    char field[64];
} ch_api__err_t;

/* Fills e. field may be NULL. */
void ch_api__err_set(ch_api__err_t *e, int status, const char *code, const char *field,
                     const char *fmt, ...) CH_PRINTF(5, 6);

/* A domain use case's refusal (core's ch_fault_t) as the API answers it: the one table from
 * fault kinds to HTTP statuses is in faults.c. */
int ch_api__fault_status(const ch_fault_t *f);
void ch_api__err_from_fault(ch_api__err_t *e, const ch_fault_t *f);

/* The error body {"error":{"code":...,"message":...[,"field":...]}} as a new JSON value. */
json_t *ch_api__err_to_json(const ch_api__err_t *e);

/* ---- JSON <-> records --------------------------------------------------------------------- */

/*
 * Body -> record. The caller initialises rec first: zeroed / ch_camera_init() / ch_device_init()
 * for a create, or the stored record for a full update. Every field a client may set is then
 * overwritten from the body (absent or null = unknown, or the documented default), except the
 * camera's rtsp_url / rtsp_username / rtsp_password: absent keeps what rec holds (so a client
 * that read a camera and writes it back does not wipe credentials it was never shown), null
 * clears. Fields the server owns (id, created_at, updated_at, rtsp_configured, flags,
 * source_*) are accepted and ignored, so a record read can be written back as is; any other
 * unknown field is rejected.
 *
 * Returns 0, or CH_EINVAL with err filled (400 "invalid", field named). On error rec may be
 * partly overwritten; the caller releases it with the matching *_fini either way.
 */
int ch_api__agency_from_json(const json_t *body, ch_agency_t *rec, ch_api__err_t *err);
int ch_api__camera_from_json(const json_t *body, ch_camera_t *rec, ch_api__err_t *err);
int ch_api__device_from_json(const json_t *body, ch_device_t *rec, ch_api__err_t *err);

/* Record -> JSON, as answered (new reference). Never includes camera credentials. */
json_t *ch_api__agency_to_json(const ch_agency_t *rec);
json_t *ch_api__camera_to_json(const ch_camera_t *rec);
json_t *ch_api__device_to_json(const ch_device_t *rec);

/* Parses a request body as one JSON object (duplicate keys rejected). Returns the object
 * (new reference), or NULL with err filled (400 "bad_json" with line and column). */
json_t *ch_api__parse_body(const char *data, size_t len, ch_api__err_t *err);

/* ---- query strings ------------------------------------------------------------------------ */

/* Decodes application/x-www-form-urlencoded text: %XX to a byte and, when plus_is_space, '+'
 * to a space. Rejects a malformed escape, a NUL byte and text that is not valid UTF-8.
 * On success *out is a new NUL-terminated string (ch_free) and 0 is returned; else
 * CH_EPARSE and *out is NULL. */
int ch_api__percent_decode(const char *p, size_t n, int plus_is_space, char **out) CH_MUST_CHECK;

/* 1 when [p, p+n) is valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
int ch_api__utf8_valid(const char *p, size_t n);

typedef struct ch_api__param {
    char *name;  /* decoded */
    char *value; /* decoded; "" for "name" or "name=" */
} ch_api__param_t;

typedef struct ch_api__query {
    ch_api__param_t *items;
    size_t count;
} ch_api__query_t;

/* Splits and decodes a query string ("a=1&b=%EC%84%9C"). A parameter given twice, or one that
 * does not decode, is a 400 "invalid" naming it. On error q holds nothing; either way the
 * caller calls ch_api__query_fini(). */
int ch_api__query_parse(ch_slice_t query, ch_api__query_t *q, ch_api__err_t *err) CH_MUST_CHECK;
void ch_api__query_fini(ch_api__query_t *q);
/* The decoded value of name, or NULL when absent. */
const char *ch_api__query_get(const ch_api__query_t *q, const char *name);

/*
 * One parser for the query of every list and search: a handler declares what it takes as a
 * spec, an array of ch_api__qparam_t ended by CH_API__QP_END, each naming a parameter, its
 * kind and where its value goes, and ch_api__query_read() checks the query against it.
 * So every list answers the same mistake the same way, a 400 "invalid" whose field names the
 * parameter:
 *  - a parameter the spec does not name: "unknown query parameter; takes a, b, c";
 *  - a repeated parameter or one that does not decode (ch_api__query_parse);
 *  - a value its kind refuses: "limit must be an integer 1..1000", "cursor is not one this
 *    server handed out; ...", "state must be one of open, acknowledged, resolved", ...;
 *  - a required parameter left out: "month is required".
 * Unknown parameters are looked for first, then values are checked in the query's order, then
 * required ones; the first mistake is answered. A parameter not given leaves its destination
 * as the caller set it, so defaults are the caller's. Strings written to a destination borrow
 * from the query, which must outlive them.
 */
typedef enum ch_api__qkind {
    CH_API__Q_ID,     /* int64_t: a positive integer (ch_parse_int64, > 0) */
    CH_API__Q_INT,    /* int64_t: an integer in min..max */
    CH_API__Q_LIMIT,  /* int: a page size, 1..1000 */
    CH_API__Q_CURSOR, /* int64_t: the id of a cursor ch_api__cursor_encode wrote */
    CH_API__Q_CHOICE, /* const char *: one of the NULL-terminated list choices */
    CH_API__Q_TEXT,   /* const char *: any text, "" included */
    CH_API__Q_SEARCH, /* const char *: any text; "" (an empty search box) leaves NULL */
    CH_API__Q_TIME,   /* int64_t: ns since the epoch (ch_time_parse_ns: RFC 3339, date, epoch) */
    CH_API__Q_MONTH,  /* const char *: "YYYY-MM", 1970..9999, month 01..12 */
    CH_API__Q_BBOX,   /* ch_store_filter_t: has_bbox and min/max lon/lat */
    CH_API__Q_PARSE,  /* anything: parse(value, dest) == 0; expect says what it takes */
} ch_api__qkind_t;

typedef struct ch_api__qparam {
    const char *name; /* NULL ends a spec */
    ch_api__qkind_t kind;
    void *dest;                                  /* typed by kind; see the CH_API__QP_* macros */
    const char *const *choices;                  /* CH_API__Q_CHOICE */
    int64_t min, max;                            /* CH_API__Q_INT */
    int (*parse)(const char *value, void *dest); /* CH_API__Q_PARSE: 0 or non-zero */
    const char *expect;                          /* CH_API__Q_PARSE: "+HH:MM", for the message */
    int required;                                /* absent is a 400 "NAME is required" */
    int *seen;                                   /* when not NULL: set to 1 when given */
} ch_api__qparam_t;

/* Spec entries, one per kind: {CH_API__QP_LIMIT("limit", &f.limit)}; other members follow
 * inside the braces: {CH_API__QP_MONTH("month", &m), .required = 1}. Each checks the type of
 * its destination at compile time: a pointer of another type than type * makes the
 * conditional a "pointer type mismatch", which -Werror turns into an error. */
#define CH_API__QP_DEST(type, p) .dest = (void *)(1 ? (p) : (type *)0)
#define CH_API__QP_ID(n, p)      .name = (n), .kind = CH_API__Q_ID, CH_API__QP_DEST(int64_t, p)
#define CH_API__QP_INT(n, p, lo, hi)                                                               \
    .name = (n), .kind = CH_API__Q_INT, CH_API__QP_DEST(int64_t, p), .min = (lo), .max = (hi)
#define CH_API__QP_LIMIT(n, p)  .name = (n), .kind = CH_API__Q_LIMIT, CH_API__QP_DEST(int, p)
#define CH_API__QP_CURSOR(n, p) .name = (n), .kind = CH_API__Q_CURSOR, CH_API__QP_DEST(int64_t, p)
#define CH_API__QP_CHOICE(n, p, list)                                                              \
    .name = (n), .kind = CH_API__Q_CHOICE, CH_API__QP_DEST(const char *, p), .choices = (list)
#define CH_API__QP_TEXT(n, p) .name = (n), .kind = CH_API__Q_TEXT, CH_API__QP_DEST(const char *, p)
#define CH_API__QP_SEARCH(n, p)                                                                    \
    .name = (n), .kind = CH_API__Q_SEARCH, CH_API__QP_DEST(const char *, p)
#define CH_API__QP_TIME(n, p) .name = (n), .kind = CH_API__Q_TIME, CH_API__QP_DEST(int64_t, p)
#define CH_API__QP_MONTH(n, p)                                                                     \
    .name = (n), .kind = CH_API__Q_MONTH, CH_API__QP_DEST(const char *, p)
#define CH_API__QP_BBOX(n, p)                                                                      \
    .name = (n), .kind = CH_API__Q_BBOX, CH_API__QP_DEST(ch_store_filter_t, p)
#define CH_API__QP_PARSE(n, p, fn, what)                                                           \
    .name = (n), .kind = CH_API__Q_PARSE, .dest = (p), .parse = (fn), .expect = (what)
#define CH_API__QP_END .name = NULL

/* Checks the parsed query q against spec and fills the destinations. 0, or CH_EINVAL with err
 * filled (400 "invalid", field naming the parameter); destinations may then be partly
 * written. */
int ch_api__query_check(const ch_api__query_t *q, const ch_api__qparam_t *spec,
                        ch_api__err_t *err) CH_MUST_CHECK;

/* ch_api__query_parse() then ch_api__query_check(): the whole prologue of a list handler.
 * Either way the caller calls ch_api__query_fini(q), after it is done with the strings the
 * destinations borrow. */
int ch_api__query_read(ch_slice_t query, const ch_api__qparam_t *spec, ch_api__query_t *q,
                       ch_api__err_t *err) CH_MUST_CHECK;

typedef enum ch_api__resource {
    CH_API__AGENCIES = 0,
    CH_API__CAMERAS = 1,
    CH_API__DEVICES = 2,
} ch_api__resource_t;

/* Fills f from the list parameters of resource res (agency_id, purpose, kind, status, type,
 * level, q, bbox, cursor, limit: each resource accepts its own subset; an unknown parameter
 * is a 400 naming it). The strings in f borrow from q, which must outlive f. 0 or CH_EINVAL. */
int ch_api__filter_from_query(const ch_api__query_t *q, ch_api__resource_t res,
                              ch_store_filter_t *f, ch_api__err_t *err) CH_MUST_CHECK;

/* Cursors are opaque to clients: "v1:<id>" in unpadded base64url. */
#define CH_API__CURSOR_MAX 48
void ch_api__cursor_encode(int64_t after_id, char out[CH_API__CURSOR_MAX]);
/* 0 and *after_id (>= 1), or CH_EPARSE for anything ch_api__cursor_encode would not write. */
int ch_api__cursor_decode(const char *s, int64_t *after_id) CH_MUST_CHECK;

/* ---- routes ------------------------------------------------------------------------------- */

typedef enum ch_api__route_id {
    CH_API__R_HEALTH,
    CH_API__R_VERSION,
    CH_API__R_OPENAPI,
    CH_API__R_LIST,               /* GET    /api/v1/<resource> */
    CH_API__R_CREATE,             /* POST   /api/v1/<resource> */
    CH_API__R_GET,                /* GET    /api/v1/<resource>/{id} */
    CH_API__R_PUT,                /* PUT    /api/v1/<resource>/{id} */
    CH_API__R_PATCH,              /* PATCH  /api/v1/<resource>/{id} */
    CH_API__R_DELETE,             /* DELETE /api/v1/<resource>/{id} */
    CH_API__R_IMPORT,             /* POST   /api/v1/imports */
    CH_API__R_AUDIT_LIST,         /* GET /api/v1/audit */
    CH_API__R_AUDIT_CHECKPOINT,   /* GET /api/v1/audit/checkpoint */
    CH_API__R_AUDIT_PROOF,        /* GET /api/v1/audit/proof */
    CH_API__R_AUDIT_CONSISTENCY,  /* GET /api/v1/audit/consistency */
    CH_API__R_GEO_NEAR,           /* GET /api/v1/geo/near */
    CH_API__R_GEO_PATH,           /* POST /api/v1/geo/path */
    CH_API__R_GEO_AREA,           /* POST /api/v1/geo/area */
    CH_API__R_GEO_COVERAGE,       /* POST /api/v1/geo/coverage */
    CH_API__R_SERVICES,           /* GET /api/v1/services */
    CH_API__R_SESSION_LOGIN,      /* POST /api/v1/session */
    CH_API__R_SESSION_GET,        /* GET /api/v1/session */
    CH_API__R_SESSION_LOGOUT,     /* DELETE /api/v1/session */
    CH_API__R_USERS_LIST,         /* GET /api/v1/users */
    CH_API__R_USERS_CREATE,       /* POST /api/v1/users */
    CH_API__R_USERS_GET,          /* GET /api/v1/users/{id} */
    CH_API__R_USERS_PATCH,        /* PATCH /api/v1/users/{id} */
    CH_API__R_APIKEYS_LIST,       /* GET /api/v1/apikeys */
    CH_API__R_APIKEYS_CREATE,     /* POST /api/v1/apikeys */
    CH_API__R_APIKEYS_REVOKE,     /* DELETE /api/v1/apikeys/{id} */
    CH_API__R_EVENTS_OPEN,        /* POST /api/v1/events */
    CH_API__R_EVENTS_LIST,        /* GET /api/v1/events */
    CH_API__R_EVENTS_GET,         /* GET /api/v1/events/{id} */
    CH_API__R_EVENTS_APPROVE,     /* POST /api/v1/events/{id}/approve */
    CH_API__R_EVENTS_DENY,        /* POST /api/v1/events/{id}/deny */
    CH_API__R_EVENTS_EXTEND,      /* POST /api/v1/events/{id}/extend */
    CH_API__R_EVENTS_CLOSE,       /* POST /api/v1/events/{id}/close */
    CH_API__R_EVENTS_REVOKE,      /* POST /api/v1/events/{id}/revoke */
    CH_API__R_EVENTS_MOVE,        /* POST /api/v1/events/{id}/positions */
    CH_API__R_GRANTS_REVOKE,      /* POST /api/v1/grants/{id}/revoke */
    CH_API__R_LEDGER,             /* GET /api/v1/ledger */
    CH_API__R_STREAMS,            /* GET /api/v1/streams */
    CH_API__R_LIVE,               /* GET /api/v1/cameras/{id}/live (WebSocket) */
    CH_API__R_CONSOLE_INDEX,      /* GET / (the console's index.html) */
    CH_API__R_CONSOLE_CONFIG,     /* GET /console/config.json */
    CH_API__R_CONSOLE_FILE,       /* GET /console/{path} (a file of http.web_root) */
    CH_API__R_ALERTS_LIST,        /* GET /api/v1/alerts */
    CH_API__R_ALERTS_LIVE,        /* GET /api/v1/alerts/live (WebSocket) */
    CH_API__R_ALERTS_GET,         /* GET /api/v1/alerts/{id} */
    CH_API__R_ALERTS_ACK,         /* POST /api/v1/alerts/{id}/ack */
    CH_API__R_DEVICE_STATE,       /* GET /api/v1/devices/{id}/state */
    CH_API__R_DEVICE_TRANSITIONS, /* GET /api/v1/devices/{id}/transitions */
    CH_API__R_MQTT,               /* GET /api/v1/mqtt (the device watch's counters) */
    CH_API__R_METRICS,            /* GET /metrics (Prometheus text format) */
    CH_API__R_CAMERA_HEALTH,      /* GET /api/v1/cameras/{id}/health */
    CH_API__R_CAMERA_OUTAGES,     /* GET /api/v1/cameras/{id}/outages */
    CH_API__R_HEALTH_LIST,        /* GET /api/v1/camera-health */
    CH_API__R_AVAILABILITY,       /* GET /api/v1/reports/availability */
} ch_api__route_id_t;

typedef struct ch_api__match {
    ch_api__route_id_t route;
    ch_api__resource_t resource; /* for the resource routes */
    ch_slice_t id;               /* the {id} or {path} segment, undecoded; empty when none */
    unsigned roles;              /* who may call it: CH_AUTH_* bits (CH_AUTH_PUBLIC: anyone) */
    char allow[64];              /* on CH_EUNSUPP: the methods the path accepts, "GET, POST" */
    size_t index;                /* the route's place in ch_api_routes() (for metrics) */
} ch_api__match_t;

/* Finds the route of method + path (path without query, not decoded); "{path}" at the end of
 * a template matches the non-empty rest of the path, slashes included. 0 and m filled;
 * CH_ENOTFOUND when no route has this path; CH_EUNSUPP when some route has the path but not
 * the method (m->allow then lists the methods for a 405 Allow header). */
int ch_api__route_match(ch_slice_t method, ch_slice_t path, ch_api__match_t *m);

/* What role (one CH_AUTH_* bit) may call: a new array of "METHOD /path/template" strings, one
 * per route of the table that role's mask allows, public routes left out (the session's
 * "capabilities"; the console shows what they allow). NULL when out of memory. */
json_t *ch_api__capabilities(unsigned role);
/* The same, built once per role and kept in api (a new reference to the shared array: read
 * it, do not change it). Loop thread. */
json_t *ch_api__capabilities_of(ch_api_t *api, unsigned role);

/* Parses an {id} segment: a decimal number 1..INT64_MAX without sign or leading zeros. */
int ch_api__parse_id(ch_slice_t s, int64_t *out) CH_MUST_CHECK;

/* ---- console files (static_routes.c) ------------------------------------------------------ */

/* 1 when rel (the undecoded rest of /console/...) names a file the console may serve: plain
 * segments of [A-Za-z0-9._-] separated by single slashes, none empty, none starting with a
 * dot (so no "..", no hidden file), not under node_modules/, at most 255 bytes, with an
 * extension of a known type. No percent-escapes: the console's own names never need them. */
int ch_api__static_path_ok(ch_slice_t rel);

/* The Content-Type of a file name by its extension, or NULL for a type not served. */
const char *ch_api__static_type(ch_slice_t name);

/* ---- audit routes (audit_routes.c) --------------------------------------------------------- */

/* Brings the store's audit index up to the log: indexes the records it lacks, and rebuilds it
 * from the log when it claims records the log does not hold. 0 or a store / audit code. */
int ch_api__audit_sync_index(ch_audit_t *audit, ch_store_t *st) CH_MUST_CHECK;

/* ---- services (services_routes.c) ---------------------------------------------------------- */

/* {"items": [service...], "total": n, "loaded": bool} for GET /api/v1/services; p may be
 * NULL (no services file loaded). */
json_t *ch_api__services_json(const ch_policy_t *p);

/* ---- geo routes (geo_routes.c) ------------------------------------------------------------- */

/* At most this many path, area and coverage requests run at once (each on a pool thread, up to
 * ~1 s); more are answered 503 with Retry-After, so that they can neither queue up nor take the
 * pool from the audit's appends. */
#define CH_API__GEO_MAX_JOBS 2

/* A path, area or coverage request, parsed and checked on the loop and computed on a pool
 * thread against a reference to the index (which the loop then no longer changes in place). */
typedef struct ch_api__geo_job ch_api__geo_job_t;

/*
 * Starts one of the CH_API__R_GEO_* routes: checks the query and the body (the parsed JSON of
 * the POST routes, a GeoJSON geometry or Feature; NULL for near) and returns the HTTP status:
 * 200 with *json (a new reference) when answered at once (near: microseconds), 202 with *job
 * when the answer is to be computed (ch_api__geo_run on a pool thread, then
 * ch_api__geo_finish), or an error status with err. Loop only; the job takes a reference to
 * geo.
 */
int ch_api__geo_answer(ch_geo_t *geo, ch_api__route_id_t route, ch_slice_t query,
                       const json_t *body, json_t **json, ch_api__geo_job_t **job,
                       ch_api__err_t *err);
/* Computes the answer, or on the second pass writes it: on a pool thread; touches nothing but
 * the job and its index. */
void ch_api__geo_run(ch_api__geo_job_t *job);
/* Back on the loop after the first pass: path and area answers carry each camera's health,
 * which only the loop may read; this reads the states (one lookup a camera) and returns 1 when
 * the job must go back to the pool for its second pass (writing the answer there: 100,000
 * cameras are megabytes of JSON), 0 when it is done. health may be NULL. */
struct ch_health;
int ch_api__geo_mark(ch_api__geo_job_t *job, const struct ch_health *health);
/* Back on the loop when done: 200 with *text (the serialised answer; the caller frees it with
 * free()), or an error status with err. */
int ch_api__geo_finish(ch_api__geo_job_t *job, char **text, ch_api__err_t *err);
/* Frees the job and drops its reference to the index; loop only. NULL is fine. */
void ch_api__geo_job_free(ch_api__geo_job_t *job);

#endif /* CH_API_INTERNAL_H */
