/*
 * api: the REST API of cctvhub (/api/v1/...), JSON in and out through jansson.
 *
 * The module is one HTTP handler for the net server: ch_api_handle() routes a request, checks
 * and converts its JSON body into a store record, calls the store on the control loop, and
 * answers. Imports of CSV files run on the libuv thread pool with a store handle of their own
 * (opened from ch_api_config_t.store_url), so the loop keeps answering while a file loads.
 *
 * Errors are answered as {"error":{"code":"...","message":"...","field":"..."}}, "field" being
 * present when one input field (of the body or of the query) is at fault. Every request is
 * logged as one logfmt line (method, path without query, status, duration_ms); no query
 * string, body or credential ever reaches the log. RTSP URLs and credentials of cameras are
 * accepted on create and update but never returned: answers say "rtsp_configured" instead.
 *
 * docs/openapi.yaml documents every route (a unit test holds it to ch_api_routes()) and is
 * served, as built, at GET /api/v1/openapi.yaml.
 *
 * Threading: everything here runs on the loop given to ch_api_new(), except the import work.
 */
#ifndef CH_API_H
#define CH_API_H

#include "core/core.h"
#include "core/metrics.h"
#include "net/net.h"
#include "audit/audit.h"
#include "policy/policy.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ch_api ch_api_t;

typedef struct ch_api_config {
    const char *store_url;   /* to open a second store handle for imports on the thread pool */
    size_t max_import_bytes; /* body limit of POST /api/v1/imports; 0 = 256 MiB */
    int64_t started_at_ms;   /* for /health uptime */
    /* Accounts (0 = the default in brackets): a session ends after session_idle_ms unused
     * [30 min] and session_max_ms after login [12 h]; max_failed_logins failures of one user
     * name from one client address [5] lock that name out from that address (only) for
     * lockout_ms [15 min]; max_failures_per_address failed logins from one address within 5
     * minutes [20] refuse that address for the rest of them; cookie_secure adds Secure to
     * the session cookie (set it when TLS is in front). Passwords are hashed on hash_threads
     * threads of their own [2], with at most max_hashes_in_flight hashes queued or running [16] and
     * max_hashes_per_address of them for one client address [2]: a login beyond either answers 429
     * at once. */
    int64_t session_idle_ms;
    int64_t session_max_ms;
    int max_failed_logins;
    int64_t lockout_ms;
    int max_failures_per_address;
    int cookie_secure;
    unsigned hash_threads;
    unsigned max_hashes_in_flight;
    unsigned max_hashes_per_address;
    /* The base of the grants' ws_url ("ws://10.0.0.5:8080"; NULL: same origin only), which
     * the console's Content-Security-Policy names. Copied. */
    const char *ws_base;
    /* The operator console: the directory of its files, served at / and /console/ to anyone
     * (NULL: none, those paths answer 404), and the base map's tile URL template it is given
     * at /console/config.json (NULL: a plain background). Both copied. */
    const char *web_root;
    const char *tile_url;
} ch_api_config_t;

struct ch_event_engine;
struct ch_geo;
struct ch_registry;
struct ch_registry_counts;
struct ch_health;
struct ch_health_device_state;
struct ch_health_devices_stats;
struct ch_alert_engine;
struct ch_alert_live;

/*
 * What the API answers from, given once at creation by whoever builds the hub (serve.c):
 * the parts it reads or calls, all borrowed (they outlive the API) unless said otherwise, and
 * the callbacks into the media relay and the device watch. The API builds none of them.
 */
typedef struct ch_api_services {
    /* The audit log (thread-safe), or NULL for none. Every registry change (create, update,
     * delete, import) is put on it before its answer leaves: a change whose record cannot be
     * made durable is rolled back and answered 503. */
    ch_audit_t *audit;
    /* The events engine (required): the event routes and the ledger. */
    struct ch_event_engine *events;
    /* Where the geo index of the cameras is (required): *geo, read at each request (the geo
     * routes, their queries on the pool take a reference). The slot is the hub's, which keeps
     * the index in step with the cameras' changes and may replace it; the API only reads. */
    struct ch_geo *const *geo;
    /* The registry's use cases (required): the API's camera, agency and device changes, and
     * the catch-up after an import (ch_registry_follow: its handle's changes, read from the
     * store's feed, which the hub's followers (geo, health, grants, the relay) hear as any
     * other change). */
    struct ch_registry *registry;
    /* Where the services in force are (GET /api/v1/services, the ledger): *policy, read at
     * each request, NULL when none is loaded. The slot is the hub's; a reload replaces what it
     * holds. NULL: none ever. */
    const ch_policy_t *const *policy;
    /* Camera health (the health routes; geo and event answers are marked with it), or NULL:
     * those routes answer "unknown". */
    struct ch_health *health;
    /* The alert engine and its live feed (the routes under /api/v1/alerts; 503 while NULL). */
    struct ch_alert_engine *alerts;
    struct ch_alert_live *alerts_live;
    /* GET /metrics renders metrics (NULL: 503). The API registers its own collector in it
     * (HTTP requests by route and status and their duration) and removes it when freed.
     * metrics_token (copied; NULL or "": none) is metrics.token: a request whose
     * Authorization is "Bearer <token>" may scrape without an account; otherwise the route's
     * roles (admin, auditor) apply as everywhere. */
    ch_metrics_t *metrics;
    const char *metrics_token;
    /* What GET /metrics reads from the store before it renders (the registry's cameras by
     * status): counted on the store worker, then left here, on the loop, for the collector
     * that renders it (ch_registry_collect_counts). NULL: nothing read first. */
    struct ch_registry_counts *metrics_counts;
    /* What GET /api/v1/streams answers: streams(streams_ud) returns a new JSON reference (the
     * media relay's pulls and viewers). NULL: the route answers an empty list. */
    json_t *(*streams)(void *ud);
    void *streams_ud;
    /* Who takes GET /api/v1/cameras/{id}/live (a browser's WebSocket for live video): live
     * gets the connection's descriptor and the request's bytes (ch_http_hand_over) and owns
     * them. NULL: the route answers 503. */
    void (*live)(void *ud, int fd, const void *raw, size_t len, ch_net_tls_conn_t *tls);
    void *live_ud;
    /* The MQTT device watch's views, which the API renders: device_state(ud, id, out) fills
     * what it knows of device id now (GET /api/v1/devices/{id}/state), 0 or CH_ENOENT when
     * nothing; mqtt_stats(ud, out) its counters (GET /api/v1/mqtt), 0 or CH_ENOENT when MQTT
     * is off. Either may be NULL. */
    int (*device_state)(void *ud, int64_t id, struct ch_health_device_state *out);
    int (*mqtt_stats)(void *ud, struct ch_health_devices_stats *out);
    void *device_state_ud;
    /* The hub's store worker (ch_store_worker_open on the same database): the heavy reads
     * (the audit index, the ledger, the availability report, the registry's lists) run on it,
     * and their answers leave from the loop when they are done, so that the loop never waits
     * for them. NULL: they run on the loop, on the API's store, as before. */
    ch_store_worker_t *store_worker;
} ch_api_services_t;

/* Creates the API on loop, answering from st (borrowed: it must outlive the API and be used
 * only from this loop meanwhile) and the services svc (copied; what they point to is
 * borrowed). cfg is copied
 * (strings too). store_url may be NULL: imports then answer 503. 0 or CH_EINVAL; *out is
 * NULL on failure. */
int ch_api_new(uv_loop_t *loop, ch_store_t *st, const ch_api_config_t *cfg,
               const ch_api_services_t *svc, ch_api_t **out) CH_MUST_CHECK;

/* Brings the store's index of the audit log (what GET /api/v1/audit and the ledger query) up
 * to the log: indexes the records it lacks, rebuilds it when it claims records the log does
 * not hold. The hub calls it at start, before the events engine restores from the index.
 * 0 or a store / audit code. */
int ch_api_audit_index_sync(ch_audit_t *audit, ch_store_t *st) CH_MUST_CHECK;

/* Ends the grants and events that are due (call it from a timer, a few times a second). Returns
 * the number of grants ended or a negative code. */
int ch_api_tick(ch_api_t *api);

/* Commits what the API holds in its store transaction (the batch of event opens of this loop
 * turn). Call it before using the store handle from elsewhere on the loop (timers). */
void ch_api_flush(ch_api_t *api);

/* Closes the API's loop handles (call it when stopping, before the loop's last run; also
 * done by ch_api_free). */
void ch_api_close(ch_api_t *api);

/* The streams answer, {"items": [...], "total": N, "next": null}, rendered from the relay's
 * typed snapshot (media.h's ch_media_stream_info_t, n of them; borrowed). A new reference. */
struct ch_media_stream_info;
json_t *ch_api_streams_json(const struct ch_media_stream_info *streams, size_t n);

/* Frees the API (NULL is fine). Call it once the HTTP server is shut down. When imports are
 * still running on the thread pool the memory is released by the last one to finish, so the
 * loop must keep running until ch_api_in_flight() reaches zero; their answers are dropped. */
void ch_api_free(ch_api_t *api);

/* The request handler (a ch_http_handler_fn); ud is the ch_api_t. */
void ch_api_handle(ch_http_request_t *req, void *ud);

/* The body limit callback (a ch_http_body_limit_fn); ud is the ch_api_t. POST /api/v1/imports
 * gets max_import_bytes; every other request 0 (the server default). */
size_t ch_api_body_limit(const ch_http_request_t *req, void *ud);

/* Number of imports still running (queued or on the thread pool). */
size_t ch_api_in_flight(const ch_api_t *api);

/* The route table, for the test that checks docs/openapi.yaml documents every route. */
typedef struct ch_api_route_info {
    const char *method;        /* "GET" */
    const char *path_template; /* "/api/v1/cameras/{id}" */
    const char *roles;         /* intended roles, comma-separated: "admin,operator"; "public" */
} ch_api_route_info_t;

/* The routes, in a static array of *count entries (never NULL). */
const ch_api_route_info_t *ch_api_routes(size_t *count);

#endif /* CH_API_H */
