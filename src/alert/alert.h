/*
 * alert: rules that turn camera and device states into alerts for people, kept in the store,
 * pushed to the console over WebSocket and to a webhook.
 *
 * Inputs are calls the daemon makes on the control loop:
 *   ch_alert_camera_state   every camera state transition (the health module's listener);
 *   ch_alert_device_state   every device state transition (the MQTT device watch);
 *   ch_alert_bell           an emergency bell pressed, with the cameras that see it;
 *   ch_alert_tick           now and then (once a second): rules that fire on time.
 *
 * Rules (docs/internals/alert.md):
 *   camera-offline  a camera offline (or auth-failed) for more than offline_after_ms; resolves
 *                   when it is online or degraded again;
 *   provider-down   provider_down_count cameras of one provider down at once; resolves when
 *                   fewer are down;
 *   device-offline  a device went offline (silent past its heartbeat); resolves when it is
 *                   heard again;
 *   bell-pressed    an emergency bell was pressed; an operator acknowledges it.
 *
 * An alert is open, then acknowledged by an operator (ch_alert_ack), and resolved by itself
 * when its cause clears (recorded with the time and the reason). Each new or changed alert is
 * given, as JSON, to every listener (the WebSocket clients, the webhook) when its row is
 * committed, whoever wrote it: the engine follows the store's feed of alerts
 * (CH_STORE_T_ALERTS) on its handle, which tells its own writes, the store worker's and, at
 * ch_store_feed_poll, other handles'.
 *
 * Writes: with a store worker (ch_alert_use_worker) the engine's writes run there and the rule
 * state waits for them (a subject whose alert is being written raises no second one; its
 * resolve follows the create); without one, at once on the engine's handle.
 *
 * Threading: everything runs on the loop the engine was made for; the store handle is that
 * loop's. Ownership: strings passed in are borrowed; JSON returned is a new reference.
 */
#ifndef CH_ALERT_H
#define CH_ALERT_H

#include "core/core.h"
#include "core/metrics.h"
#include "net/net.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ch_alert_engine ch_alert_engine_t;

/* How alerts are written as text (the live feed, the webhook): as the API answers. */
#define CH_ALERT_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

typedef struct ch_alert_config {
    int64_t offline_after_ms; /* camera-offline after this long down; 0 = at once */
    int provider_down_count;  /* provider-down at this many cameras down; 0 = rule off */
    /* The clock (ms since the epoch); NULL: the wall clock. Unit tests inject one. */
    int64_t (*clock)(void *ud);
    void *clock_ud;
} ch_alert_config_t;

/* Creates the engine on st (borrowed; it must outlive the engine). Alerts left open or
 * acknowledged by an earlier run are taken up again, so that they still resolve by themselves.
 * 0 or a store code; *out is NULL on failure. */
int ch_alert_new(ch_store_t *st, const ch_alert_config_t *cfg,
                 ch_alert_engine_t **out) CH_MUST_CHECK;
/* Ends the engine (NULL is fine): it stops following the feed at once; with requests still on
 * the worker its memory goes when the last one is back (the hub closes the worker first). */
void ch_alert_free(ch_alert_engine_t *eng);

/* The engine's writes (raise, resolve) and its reads of alerts other handles changed go to w,
 * whose commits must be told to the engine's store (ch_store_worker_feed), from now on; NULL:
 * at once on the engine's store again (set it before closing the worker). A busy or closing
 * worker: written at once on the loop, never dropped. Loop thread. */
void ch_alert_use_worker(ch_alert_engine_t *eng, ch_store_worker_t *w);

/* A listener gets every new or changed alert as JSON (borrowed for the call). At most 8. */
typedef void (*ch_alert_listener_fn)(void *ud, const json_t *alert);
int ch_alert_listen(ch_alert_engine_t *eng, ch_alert_listener_fn fn, void *ud) CH_MUST_CHECK;
/* Removes the listener fn with ud (no-op when absent). */
void ch_alert_unlisten(ch_alert_engine_t *eng, ch_alert_listener_fn fn, void *ud);

/* ---- inputs --------------------------------------------------------------------------------- */

/* A camera went from old_state to new_state ("online", "degraded", "offline", "auth-failed",
 * "unknown") at at_ms; provider_id is its agency; reason may be NULL. */
void ch_alert_camera_state(ch_alert_engine_t *eng, int64_t camera_id, int64_t provider_id,
                           const char *old_state, const char *new_state, int64_t at_ms,
                           const char *reason);

/* A device went from old_state to new_state ("online", "fault", "offline"). name may be
 * NULL. */
void ch_alert_device_state(ch_alert_engine_t *eng, int64_t device_id, int64_t agency_id,
                           const char *name, const char *old_state, const char *new_state,
                           int64_t at_ms, const char *reason);

/* A bell pressed. cameras is the geo answer for the bell's position ({"cameras": [...]}, the
 * cameras whose field of view covers it, with distance and bearing), or NULL when the bell has
 * no position; it is stolen. Raises a bell-pressed alert; its id in *alert_id when not NULL
 * (0 when it is written on the worker: the id is known only then, or when it failed). */
void ch_alert_bell(ch_alert_engine_t *eng, int64_t device_id, int64_t agency_id, const char *name,
                   int located, double lat, double lon, int64_t at_ms, json_t *cameras,
                   int64_t *alert_id);

/* Fires the rules that depend on time (camera-offline). Call it about once a second. */
void ch_alert_tick(ch_alert_engine_t *eng);

/* ---- queries and acknowledgement ------------------------------------------------------------ */

/* One alert as JSON: {"id", "kind", "severity", "subject": {"type", "id"}, "agency_id",
 * "message", "details", "state", "raised_at", "acked_by", "acked_at", "note", "resolved_at",
 * "resolved_reason"} with times in RFC 3339. */
json_t *ch_alert_to_json(const ch_alert_t *a);

/* The alert id as JSON in *out; CH_ENOTFOUND or a store code. */
int ch_alert_get(ch_alert_engine_t *eng, int64_t id, json_t **out) CH_MUST_CHECK;

/* Acknowledges alert id on st (any handle, on its thread: the store worker's for the API, in
 * the caller's transaction with its audit record) for by (the actor) with note (may be NULL) at
 * at_ms (ch_alert_now): an open alert becomes acknowledged; a resolved one keeps its state and
 * records the acknowledgement. The listeners hear it when it is committed (the feed).
 * CH_ENOTFOUND; CH_ECONFLICT when already acknowledged; a store code. *out is the alert after
 * the change. */
int ch_alert_ack_write(ch_store_t *st, int64_t id, const char *by, const char *note, int64_t at_ms,
                       json_t **out) CH_MUST_CHECK;

/* As ch_alert_ack_write on the engine's store at once, outside a transaction (a command, the
 * tests), but the listeners are not told of this write: the caller calls ch_alert_publish(*out)
 * when it wants them to hear it. */
int ch_alert_ack(ch_alert_engine_t *eng, int64_t id, const char *by, const char *note,
                 json_t **out) CH_MUST_CHECK;

/* The alert (JSON, as ch_alert_ack_write made it) that another handle's commit, told to the
 * engine's store next, holds: the listeners hear this instead of a read of the row. Called by
 * the writer on the loop before its commit is told (ch_store_async_watched's telling). */
void ch_alert_written(ch_alert_engine_t *eng, const json_t *alert);

/* The engine's clock (ms since the epoch): the time of an acknowledgement. */
int64_t ch_alert_now(const ch_alert_engine_t *eng);

/* Gives alert (JSON) to every listener. */
void ch_alert_publish(ch_alert_engine_t *eng, const json_t *alert);

/* Counts for health and metrics: {"open", "acknowledged", "raised", "resolved",
 * "cameras_down"}, from memory: the unresolved alerts by state are counted at start and again
 * after each change the store's feed tells (on the store worker when the engine has one, so
 * a read queued there after a change sees it counted). */
json_t *ch_alert_stats(ch_alert_engine_t *eng);

/* ---- the console's live feed (alert_ws.c) --------------------------------------------------- */

typedef struct ch_alert_live ch_alert_live_t;

/* A WebSocket server for GET /api/v1/alerts/live on loop, fed by eng. Clients get every new or
 * changed alert as one JSON text message, a ping every ping_ms (0: 30 s); a client whose
 * unsent bytes pass max_queue bytes (0: 1 MiB) is dropped. */
int ch_alert_live_new(uv_loop_t *loop, ch_alert_engine_t *eng, uint64_t ping_ms, size_t max_queue,
                      ch_alert_live_t **out) CH_MUST_CHECK;
/* Takes a connection handed over by the HTTP server after the request was authorized: fd and
 * the request's bytes, and its TLS session (NULL: plaintext; see ch_http_hand_over). The
 * handshake is answered here; a bad one gets 400 and is closed. */
void ch_alert_live_take(ch_alert_live_t *live, int fd, const void *raw, size_t len,
                        ch_net_tls_conn_t *tls);
size_t ch_alert_live_clients(const ch_alert_live_t *live);
/* Closes every client and the timer; the memory goes once the handles are closed (the loop
 * must run). NULL is fine. */
void ch_alert_live_close(ch_alert_live_t *live);

/* ---- the webhook (webhook.c) ---------------------------------------------------------------- */

typedef struct ch_alert_webhook ch_alert_webhook_t;

typedef struct ch_alert_webhook_config {
    const char *url;         /* http://host[:port]/path, or https:// (over TLS) */
    int max_tries;           /* then the alert is dropped with a log; 0: 8 */
    uint64_t first_retry_ms; /* the first wait, doubled each try; 0: 1000 */
    uint64_t max_retry_ms;   /* the cap of the wait; 0: 60000 */
    size_t max_queue;        /* alerts waiting; beyond, new ones are dropped with a log; 0: 1000 */
    uint64_t timeout_ms;     /* per try, connect to answer; 0: 10000 */
    /* NULL, or the shared secret that signs each try: headers X-Cctvhub-Timestamp (Unix
     * seconds at the try) and X-Cctvhub-Signature ("v1=" and the hex HMAC-SHA256, keyed with
     * the secret, of the timestamp, a ".", and the body). The receiver recomputes it and
     * refuses a timestamp older than it tolerates (a replayed post). Copied. */
    const char *secret;
    /* https://: the client context (net's ch_net_tls_client_new with tls.ca_bundle; referenced
     * while the webhook lives) whose CAs the receiver's chain must lead to, its certificate
     * naming the URL's host; each handshake within handshake_ms (0: the try's deadline alone).
     * An https:// URL without it is refused (CH_EINVAL). http:// to a host other than this
     * machine (localhost, 127.0.0.0/8) is logged as a warning: the alerts cross in clear. */
    struct ch_net_tls *tls;
    uint64_t handshake_ms;
} ch_alert_webhook_config_t;

/* POSTs each alert given by eng to url, one at a time in order, retrying with exponential
 * backoff; never blocks the loop. 0 or CH_EINVAL (a bad URL). */
int ch_alert_webhook_new(uv_loop_t *loop, ch_alert_engine_t *eng,
                         const ch_alert_webhook_config_t *cfg,
                         ch_alert_webhook_t **out) CH_MUST_CHECK;
/* {"queued", "delivered", "failed_tries", "dropped"}. */
json_t *ch_alert_webhook_stats(const ch_alert_webhook_t *wh);
/* Stops (what is queued is dropped with a log); memory goes once the handles are closed. */
void ch_alert_webhook_close(ch_alert_webhook_t *wh);

/* ---- metrics (alert_metrics.c) -------------------------------------------------------------- */

/* The parts whose figures /metrics shows, borrowed (live and webhook may be NULL). */
typedef struct ch_alert_parts {
    ch_alert_engine_t *eng;
    ch_alert_live_t *live;
    ch_alert_webhook_t *webhook;
} ch_alert_parts_t;

/* The alerts' metrics (a ch_metrics_collect_fn; ud is a ch_alert_parts_t): cctvhub_alerts{state},
 * cctvhub_alerts_raised_total, cctvhub_alerts_resolved_total, cctvhub_alert_live_clients and,
 * with a webhook, cctvhub_webhook_queued and cctvhub_webhook_posts_total{outcome}. Loop
 * thread. */
void ch_alert_collect(ch_metrics_writer_t *w, void *ud);

/* Reads an HTTP response head from buf[0, len): its status in *status. Returns the head's
 * length, CH_EAGAIN when incomplete, CH_EPARSE when it is not an HTTP/1.x response head.
 * (Exposed for the fuzz target.) */
int ch_alert_webhook_read_status(const char *buf, size_t len, int *status) CH_MUST_CHECK;

#endif /* CH_ALERT_H */
