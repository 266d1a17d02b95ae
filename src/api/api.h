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
    /* The audit log (borrowed; thread-safe), or NULL for none. Every registry change (create,
     * update, delete, import) is put on it before its answer leaves: a change whose record
     * cannot be made durable is rolled back and answered 503. */
    ch_audit_t *audit;
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
    /* Events: the node's Ed25519 secret key that signs view tokens (64 bytes, copied; NULL:
     * no tokens), the bases of the grants' URLs (ch_api_set_urls may change them once the
     * listeners are bound), the area served (all zero: South Korea), a moving subject's grace
     * (0 = 30 s), and the clock (NULL: the wall clock). */
    const uint8_t *token_sk;
    const char *rtsp_base;
    const char *ws_base;
    double min_lat, min_lon, max_lat, max_lon;
    int64_t grace_ms;
    int64_t (*clock)(void *ud);
    void *clock_ud;
    /* The operator console: the directory of its files, served at / and /console/ to anyone
     * (NULL: none, those paths answer 404), and the base map's tile URL template it is given
     * at /console/config.json (NULL: a plain background). Both copied. */
    const char *web_root;
    const char *tile_url;
} ch_api_config_t;

/* Creates the API on loop, answering from st (borrowed: it must outlive the API and be used
 * only from this loop meanwhile). cfg is copied (strings too). store_url may be NULL: imports
 * then answer 503. 0 or CH_EINVAL; *out is NULL on failure. */
int ch_api_new(uv_loop_t *loop, ch_store_t *st, const ch_api_config_t *cfg,
               ch_api_t **out) CH_MUST_CHECK;

/* Replaces the services the API answers GET /api/v1/services from (and, in a later issue,
 * decides events by). Takes ownership of p (may be NULL: none loaded) and frees the previous
 * one. Loop thread only. */
void ch_api_set_policy(ch_api_t *api, ch_policy_t *p);

/* Ends the grants and events that are due (call it from a timer, a few times a second). Returns
 * the number of grants ended or a negative code. */
int ch_api_tick(ch_api_t *api);

/* Commits what the API holds in its store transaction (the batch of event opens of this loop
 * turn). Call it before using the store handle from elsewhere on the loop (timers). */
void ch_api_flush(ch_api_t *api);

/* Closes the API's loop handles (call it when stopping, before the loop's last run; also
 * done by ch_api_free). */
void ch_api_close(ch_api_t *api);

/* The bases of the grants' rtsp_url and ws_url ("rtsp://10.0.0.5:8554", "ws://10.0.0.5:8080"). */
void ch_api_set_urls(ch_api_t *api, const char *rtsp_base, const char *ws_base);

/* The events engine, for the media plane to subscribe to grant notices. */
struct ch_event_engine;
struct ch_event_engine *ch_api_events(ch_api_t *api);

/* What GET /api/v1/streams answers: fn(ud) returns a new JSON reference (the media relay's
 * pulls and viewers). Without one the route answers an empty list. Loop thread only. */
void ch_api_set_streams(ch_api_t *api, json_t *(*fn)(void *ud), void *ud);
/* The streams answer, {"items": [...], "total": N, "next": null}, rendered from the relay's
 * typed snapshot (media.h's ch_media_stream_info_t, n of them; borrowed). A new reference. */
struct ch_media_stream_info;
json_t *ch_api_streams_json(const struct ch_media_stream_info *streams, size_t n);

/* The camera health the health routes answer from and geo and event answers are marked with
 * (borrowed; NULL: none, the routes answer "unknown"). Loop thread only. */
struct ch_health;
void ch_api_set_health(ch_api_t *api, struct ch_health *h);

/* Who takes GET /api/v1/cameras/{id}/live (a browser's WebSocket for live video): fn gets the
 * connection's descriptor and the request's bytes (ch_http_hand_over) and owns them. Without
 * one the route answers 503. Loop thread only. */
void ch_api_set_live(ch_api_t *api, void (*fn)(void *ud, int fd, const void *raw, size_t len),
                     void *ud);

/* Who learns that a camera's stream URL or credentials changed (committed): the media relay,
 * which restarts the camera's running pull against them. Loop thread only. */
void ch_api_set_camera_source(ch_api_t *api, void (*fn)(void *ud, int64_t camera_id), void *ud);

/* GET /metrics renders m (borrowed: it must outlive the API or be replaced first; NULL: the
 * route answers 503). The API registers its own collectors in m (HTTP requests by route and
 * status and their duration; the events engine's grants and events) and removes them when
 * replaced or freed. token (copied; NULL or "": none) is metrics.token: a request whose
 * Authorization is "Bearer <token>" may scrape without an account; otherwise the route's
 * roles (admin, auditor) apply as everywhere. Loop thread only. */
void ch_api_set_metrics(ch_api_t *api, ch_metrics_t *m, const char *token);
/* The alert engine and its live feed (src/alert/alert.h), both borrowed: the routes under
 * /api/v1/alerts answer from them (503 while NULL). Loop thread only. */
struct ch_alert_engine;
struct ch_alert_live;
void ch_api_set_alerts(ch_api_t *api, struct ch_alert_engine *eng, struct ch_alert_live *live);

/* What GET /api/v1/devices/{id}/state answers: fn(ud, id) returns a new JSON reference (the
 * MQTT device watch's view), or NULL when it knows nothing of the device; and what GET
 * /api/v1/mqtt answers: stats(ud), a new reference, or NULL when MQTT is off. Loop thread
 * only. */
void ch_api_set_device_state(ch_api_t *api, json_t *(*fn)(void *ud, int64_t id),
                             json_t *(*stats)(void *ud), void *ud);

/* The geo index the API keeps in step with the cameras (borrowed; it may be replaced after an
 * import, so ask again each time). For the bell's cameras. Loop thread only. */
struct ch_geo;
const struct ch_geo *ch_api_geo(const ch_api_t *api);

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
