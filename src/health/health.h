/*
 * health: the health of cameras (issue 8, part A). docs/internals/health.md has the contract.
 *
 * Two layers in one object:
 *
 *  - the state machine and the scheduler, pure memory driven with explicit times (so unit tests
 *    run them with an injected clock): the set of cameras with a stream URL, each with its
 *    state (online, degraded, offline, auth-failed, unknown), since when, its last probe and
 *    latency, its codec and the relay's live figures; when each is probed next (spread over
 *    the interval with jitter, at most `concurrency` at once); the transitions that follow
 *    from probe results and live pulls; counts per state and a probe latency histogram;
 *
 *  - the runner on the control loop (ch_health_start): a timer that picks the camera set up
 *    again from the store, starts due probes (RTSP OPTIONS then DESCRIBE over non-blocking
 *    libuv sockets, with proto's parsers and Digest/Basic answers), asks the relay for its
 *    live pulls, and writes every transition to the store (camera_health_transitions) in one
 *    transaction per tick.
 *
 * Threading: everything here runs on one thread, the control loop (the listener is called
 * there too). Nothing blocks but the store writes of the transitions (a few rows per tick).
 */
#ifndef CH_HEALTH_H
#define CH_HEALTH_H

#include "core/core.h"
#include "core/metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum ch_health_state {
    CH_HEALTH_UNKNOWN = 0,     /* not probed yet (or no evidence since the hub started) */
    CH_HEALTH_ONLINE = 1,      /* answered OPTIONS and DESCRIBE, or a live pull plays well */
    CH_HEALTH_DEGRADED = 2,    /* a live pull plays, below health.min_fps or without keyframes */
    CH_HEALTH_OFFLINE = 3,     /* health.fail_threshold probes in a row failed */
    CH_HEALTH_AUTH_FAILED = 4, /* 401 after credentials, or credentials asked and none set */
} ch_health_state_t;

#define CH_HEALTH_NSTATES 5

/* "unknown", "online", "degraded", "offline", "auth-failed". */
const char *ch_health_state_name(ch_health_state_t s);
/* The same words in state order, NULL-terminated (for a query parameter's choices). */
extern const char *const ch_health_state_names[CH_HEALTH_NSTATES + 1];
/* 0 and *out, or CH_EINVAL for another word. */
int ch_health_state_parse(const char *s, ch_health_state_t *out) CH_MUST_CHECK;

/* One change of a camera's state. reason is borrowed for the call only. */
typedef struct ch_health_transition {
    int64_t camera_id;
    int64_t agency_id; /* the provider */
    ch_health_state_t old_state, new_state;
    int64_t at_ms; /* wall clock */
    const char *reason;
} ch_health_transition_t;

/* Called on the control loop at every transition (the alerts engine's input). */
typedef void (*ch_health_listener_fn)(void *ud, const ch_health_transition_t *t);

typedef struct ch_health_config {
    unsigned probe_interval_s; /* 0: no probes (live pulls still count) */
    unsigned concurrency;      /* most probes at once; 0 = 64 */
    unsigned timeout_s;        /* one probe's deadline; 0 = 5 */
    unsigned fail_threshold;   /* failed probes in a row before offline; 0 = 3 */
    unsigned min_fps;          /* a live pull under this is degraded; 0 = off */
    unsigned keyframe_max_s;   /* a live pull without a keyframe this long is degraded; 0 = 10 */
    unsigned rescan_s;         /* the camera set is read again this often; 0 = 30 */
    uint64_t seed;             /* jitter; 0 = random */
    /* A camera at an rtsps:// URL is probed over TLS with this client context (net's
     * ch_net_tls_client_new: the CAs of tls.ca_bundle; a reference is kept until
     * ch_health_free), its certificate checked against them and the URL's host, or, when the
     * camera has a tls_pin, only its key against the pin; the handshake ends within
     * tls_handshake_ms (0: the probe's deadline alone). NULL: such a probe fails. */
    struct ch_net_tls *tls;
    uint64_t tls_handshake_ms;
} ch_health_config_t;

typedef struct ch_health ch_health_t;

/* A new, empty health object (never NULL); cfg is copied. */
ch_health_t *ch_health_new(const ch_health_config_t *cfg);
/* Frees it; ch_health_stop first when it was started. NULL is fine. */
void ch_health_free(ch_health_t *h);
/* Sets the listener (NULL: none). */
void ch_health_set_listener(ch_health_t *h, ch_health_listener_fn fn, void *ud);

/* ---- read side: one camera, many cameras, the snapshot for metrics -------------------------- */

/* The live figures the relay reports for a camera it pulls. */
typedef struct ch_health_live {
    int64_t camera_id;
    int playing;      /* the pull is receiving video */
    int64_t since_ms; /* its state since (wall clock) */
    double fps;       /* measured */
    uint64_t bitrate_bps;
    uint32_t width, height;
    uint32_t gop_frames; /* frames between keyframes, 0 unknown */
    uint64_t keyframes;  /* count so far */
    uint64_t packets_in; /* count so far */
    char codec[48];      /* "avc1.640028" or empty */
    char last_error[160];
} ch_health_live_t;

/* One camera's health, as the API shows it. */
typedef struct ch_health_info {
    int64_t camera_id, agency_id;
    ch_health_state_t state;
    int64_t since_ms;      /* the last transition, or when the hub first saw it */
    int64_t last_probe_ms; /* 0: never */
    int64_t last_ok_ms;    /* 0: never */
    int last_probe_ok;     /* the last probe's outcome */
    double latency_s;      /* the last successful probe's, -1 when none */
    unsigned failures;     /* failed probes in a row */
    char codec[16];        /* from the SDP: "H264", "H265", ... or empty */
    char reason[160];      /* of the last transition or failure */
    int64_t next_probe_ms; /* 0: not scheduled */
    int has_live;          /* live holds the relay's figures */
    ch_health_live_t live;
    int64_t last_frame_ms;    /* when the pull's packet count last grew, 0 unknown */
    int64_t last_keyframe_ms; /* when its keyframe count last grew, 0 unknown */
} ch_health_info_t;

/* 0 and *out, or CH_ENOTFOUND when the camera is not watched (no stream URL). */
int ch_health_get(const ch_health_t *h, int64_t camera_id, ch_health_info_t *out) CH_MUST_CHECK;
/* The state of camera_id (CH_HEALTH_UNKNOWN for a camera not watched). */
ch_health_state_t ch_health_state_of(const ch_health_t *h, int64_t camera_id);
/* The states of n cameras into out[n]. */
void ch_health_states(const ch_health_t *h, const int64_t *ids, size_t n, ch_health_state_t *out);
/* Calls fn for every watched camera in id order (agency_id 0: all); stops when fn returns
 * non-zero. The info is valid during the call. */
void ch_health_each(const ch_health_t *h, int64_t agency_id,
                    int (*fn)(void *ud, const ch_health_info_t *i), void *ud);

/* Probe latency buckets, upper bounds in seconds (Prometheus' le). */
#define CH_HEALTH_NBUCKETS 11
extern const double ch_health_buckets[CH_HEALTH_NBUCKETS];

/* For metrics: plain numbers, no dependency on a metrics library. */
typedef struct ch_health_snapshot {
    uint64_t cameras;                     /* watched (with a stream URL) */
    uint64_t by_state[CH_HEALTH_NSTATES]; /* indexed by ch_health_state_t */
    /* Probe latency of successful probes: cumulative counts per bucket (le), +Inf = count. */
    uint64_t latency_buckets[CH_HEALTH_NBUCKETS];
    double latency_sum_s;
    uint64_t latency_count;
    uint64_t probes_ok, probes_failed, probes_auth_failed; /* totals since start */
    uint64_t in_flight;                                    /* probes running now */
} ch_health_snapshot_t;

void ch_health_snapshot(const ch_health_t *h, ch_health_snapshot_t *out);

/* Camera health's metrics from a snapshot (a ch_metrics_collect_fn; ud is the ch_health_t;
 * health_metrics.c): cctvhub_cameras{state}, cctvhub_probes_total{outcome},
 * cctvhub_probes_in_flight and the histogram cctvhub_probe_duration_seconds. */
void ch_health_collect(ch_metrics_writer_t *w, void *ud);

/* ---- driving the state machine (the runner calls these; tests call them directly) ------------ */

/* The camera set, read again: begin, then sync_camera for each camera to watch (any order),
 * then sync_end, which drops the cameras not named (a camera not in state unknown goes to
 * unknown first, a recorded transition: its observation ends) and schedules the new ones at a
 * random point of the next interval. A camera whose URL, credentials or TLS pin changed is probed
 * again soon. Strings are copied. */
void ch_health_sync_begin(ch_health_t *h);
void ch_health_sync_camera(ch_health_t *h, int64_t camera_id, int64_t agency_id, const char *url,
                           const char *user, const char *password, const char *tls_pin);
void ch_health_sync_end(ch_health_t *h, int64_t now_ms);

/* The state a camera had when the hub stopped (from the store), so "since" survives restarts.
 * Call after the first sync; a camera not watched is ignored. No transition is made. */
void ch_health_restore(ch_health_t *h, int64_t camera_id, ch_health_state_t state,
                       int64_t since_ms);

/* A probe to run: copied strings, valid until the next call into h. */
typedef struct ch_health_probe_req {
    int64_t camera_id;
    const char *url, *user, *password;
    const char *tls_pin; /* NULL: none */
} ch_health_probe_req_t;

/* Takes up to max due probes (next_probe <= now, concurrency not exceeded), marks them running
 * and returns how many were put in out. */
size_t ch_health_due(ch_health_t *h, int64_t now_ms, ch_health_probe_req_t *out, size_t max);

typedef enum ch_health_outcome {
    CH_HEALTH_PROBE_OK = 0,
    CH_HEALTH_PROBE_FAILED = 1,      /* refused, unreachable, timeout, bad answer */
    CH_HEALTH_PROBE_AUTH_FAILED = 2, /* 401 after credentials / none configured */
} ch_health_outcome_t;

typedef struct ch_health_probe_result {
    ch_health_outcome_t outcome;
    double latency_s;  /* connect to the DESCRIBE answer */
    const char *codec; /* "H264", "H265", another rtpmap name, or NULL */
    const char *reason;
} ch_health_probe_result_t;

/* A probe ended (a camera dropped meanwhile is ignored). Schedules the next one: a full interval
 * (with jitter) after a success, a third of it after a failure short of the threshold. */
void ch_health_probe_done(ch_health_t *h, int64_t camera_id, const ch_health_probe_result_t *r,
                          int64_t now_ms);

/* The relay's pulls, each tick: live_begin, live for every stream, live_end. A playing pull is
 * evidence (online, or degraded below min_fps or without a keyframe for keyframe_max_s) and its
 * camera is not probed meanwhile. */
void ch_health_live_begin(ch_health_t *h);
void ch_health_live(ch_health_t *h, const ch_health_live_t *l, int64_t now_ms);
void ch_health_live_end(ch_health_t *h, int64_t now_ms);

/* Transitions not yet written to the store: moved into *out (free with ch_free, reasons
 * included: each record's reason points into the same allocation); returns how many. */
typedef struct ch_health_record {
    int64_t camera_id, agency_id;
    ch_health_state_t old_state, new_state;
    int64_t at_ms;
    char reason[160];
} ch_health_record_t;
size_t ch_health_take_records(ch_health_t *h, ch_health_record_t **out);

/* ---- the runner on the control loop --------------------------------------------------------- */

struct ch_store;

/* Where live figures come from: fn calls ch_health_live(h, ...) for each stream. */
typedef void (*ch_health_live_source_fn)(void *ud, ch_health_t *h, int64_t now_ms);

/*
 * Starts the runner on loop: opens its own store handle on store_url, reads the camera set and
 * the last state of each camera, then ticks (every 250 ms): rescan when due, live figures from
 * live_fn (may be NULL), due probes, transitions to the store. 0, or a negative code with err
 * filled.
 */
int ch_health_start(ch_health_t *h, uv_loop_t *loop, const char *store_url,
                    ch_health_live_source_fn live_fn, void *live_ud, char *err,
                    size_t errlen) CH_MUST_CHECK;
/* Writes the transitions not yet stored (each tick does; a reader of the store's history calls
 * it first, so what it reads includes the state it sees). NULL or not started: no-op. */
void ch_health_flush(ch_health_t *h);
/* From now on the camera set is read, and the transitions and the watch window written, on
 * the store worker w (the loop's thread; NULL: on the loop with the runner's own handle, as at
 * start). Requests on w complete in order, so a read queued on w after ch_health_flush sees
 * the transitions. The worker closes (its last requests completed) before ch_health_stop. */
struct ch_store_worker;
void ch_health_set_worker(ch_health_t *h, struct ch_store_worker *w);
/* Asks for an early rescan (a camera was created, changed or deleted). */
void ch_health_changed(ch_health_t *h);
/* Stops the timer, aborts running probes, writes the last transitions and closes the store
 * handle; the loop must run once more to close the handles before ch_health_free. */
void ch_health_stop(ch_health_t *h);

/* ---- the availability report ---------------------------------------------------------------- */

/* One provider's month. Minutes are whole-camera minutes; availability is online or degraded
 * time over observed (known-state) time, -1 when nothing was observed. */
typedef struct ch_health_report_row {
    int64_t agency_id;
    char agency_name[160];   /* filled by ch_health_report_load; empty for a deleted agency */
    uint64_t cameras;        /* registered */
    uint64_t probed_cameras; /* with a stream URL and a known state within the period */
    double observed_s, available_s, outage_s;
    uint64_t outages; /* periods offline or auth-failed that overlap the period */
    double availability_pct;
} ch_health_report_row_t;

typedef struct ch_health_report {
    int64_t from_ms, to_ms; /* [from, to), to clipped to now */
    double unwatched_s;     /* time of [from, to) outside every watch window: not observed */
    ch_health_report_row_t *rows;
    size_t nrows;
} ch_health_report_t;

/* The health watch windows (ch_store_health_watch_list): when camera health was watching.
 * Kept merged and in order; cover() is how much of [s, e) they hold, in ms, and with no window
 * at all the whole of it (stores and tests from before windows). */
typedef struct ch_health_window {
    int64_t from, to;
} ch_health_window_t;
typedef struct ch_health_windows {
    ch_health_window_t *w;
    size_t n, cap;
} ch_health_windows_t;
/* Adds [from, to) after the windows already there (in start order), merging an overlap. */
void ch_health_windows_add(ch_health_windows_t *ws, int64_t from_ms, int64_t to_ms);
int64_t ch_health_windows_cover(const ch_health_windows_t *ws, int64_t s_ms, int64_t e_ms);
/* Reads the windows overlapping [from, to), clipped to it. 0 or a store code. */
int ch_health_windows_load(struct ch_store *st, int64_t from_ms, int64_t to_ms,
                           ch_health_windows_t *ws) CH_MUST_CHECK;
void ch_health_windows_fini(ch_health_windows_t *ws);

/* Building a report: begin with the period, feed each camera's state at from (the last
 * transition before it, if any) and then its transitions inside, camera by camera and in time
 * order, then end. Pure arithmetic (tests drive it with fixed times). */
typedef struct ch_health_report_builder ch_health_report_builder_t;
ch_health_report_builder_t *ch_health_report_begin(int64_t from_ms, int64_t to_ms);
/* A window in which health was watching (the hub ran with health on), before any transition,
 * in start order. A camera's time counts only inside the windows; with none given, all of
 * [from, to) does (reports of stores from before windows were kept, and tests). */
void ch_health_report_window(ch_health_report_builder_t *b, int64_t from_ms, int64_t to_ms);
/* A camera's registration (cameras per provider, whatever their state). */
void ch_health_report_camera(ch_health_report_builder_t *b, int64_t agency_id, uint64_t cameras);
/* One transition of camera_id (in camera, then time order; the first one of a camera may be
 * before from: its state at from). */
void ch_health_report_transition(ch_health_report_builder_t *b, int64_t camera_id,
                                 int64_t agency_id, ch_health_state_t state, int64_t at_ms);
/* Ends, sorted by agency_id; free with ch_health_report_fini. */
void ch_health_report_end(ch_health_report_builder_t *b, ch_health_report_t *out);
void ch_health_report_fini(ch_health_report_t *r);

/* Reads the report of [from, to) from a store (any thread holding st), with the agencies'
 * names and the watch windows (ch_store_health_watch_list). 0 or a store code. */
int ch_health_report_load(struct ch_store *st, int64_t from_ms, int64_t to_ms,
                          ch_health_report_t *out) CH_MUST_CHECK;

/* The month "YYYY-MM" in local time at offset_min minutes east of UTC (540: Korea, which has
 * no daylight saving) as [from, to) in ms. 0 or CH_EPARSE. */
int ch_health_month_range(const char *month, int offset_min, int64_t *from_ms,
                          int64_t *to_ms) CH_MUST_CHECK;

/* The part of that month a report covers at now_ms: [from, to) with to capped at now_ms (the
 * current month counts up to now), never before from (a month not begun is empty: to ==
 * from). 0 or CH_EPARSE. */
int ch_health_month_so_far(const char *month, int offset_min, int64_t now_ms, int64_t *from_ms,
                           int64_t *to_ms) CH_MUST_CHECK;

/* A UTC offset "+09:00" or "-05:30" (hours up to 14) as minutes east of UTC. 0 or CH_EPARSE. */
int ch_health_utc_offset_parse(const char *v, int *minutes) CH_MUST_CHECK;

/* The report as CSV for spreadsheets: UTF-8 with a BOM (Excel then reads Korean names right),
 * CRLF lines, a header row, one row per provider, a total row. label names the period. */
void ch_health_report_csv(const ch_health_report_t *r, const char *label, ch_buf_t *out);

/* The report as JSON ({"period", "from", "to", "unwatched_minutes", "items": [...],
 * "total": {...}}), a new reference (jansson's json_t). */
struct json_t;
struct json_t *ch_health_report_json(const ch_health_report_t *r, const char *label);

/* ---- devices over MQTT ------------------------------------------------------------------- */

/*
 * The MQTT device watch. Smart-city devices (emergency bells, Wi-Fi access
 * points, sensors) publish their state, heartbeats and events to an MQTT broker; the hub
 * subscribes with libmosquitto driven by its own control loop (the socket on a uv_poll, the
 * keepalive on a timer, connects on the thread pool: no thread of libmosquitto's), keeps each
 * device's state, marks a device silent past its heartbeat interval offline, records every
 * transition in the store, and tells listeners (the alert rules) about transitions and bell
 * presses.
 *
 * Topics (docs/internals/health.md ("Devices over MQTT"), README "Devices over MQTT"):
 *   {prefix}/{agency id}/{device id}/state      {"status": "ok"|"fault"|"maintenance",
 *                                                "battery": 0..100, "heartbeat_s": n, ...}
 *   {prefix}/{agency id}/{device id}/heartbeat  empty, or {"time": ..., "battery": ...}
 *   {prefix}/{agency id}/{device id}/event      {"type": "bell-pressed", "time": ..., ...}
 * The ids are the registry's (GET /api/v1/devices): the device must exist and belong to that
 * agency. A message on another topic, with a malformed payload, or from an unknown device is
 * counted, logged at most every 10 s per reason, and dropped.
 *
 * Threading: the loop given to ch_health_devices_new only.
 */

/* ---- the message parser (pure; mqtt_msg.c) -------------------------------------------------- */

#define CH_HEALTH_MQTT_MAX_PAYLOAD 4096

typedef enum ch_health_mqtt_kind {
    CH_HEALTH_MQTT_STATE = 1,
    CH_HEALTH_MQTT_HEARTBEAT = 2,
    CH_HEALTH_MQTT_EVENT = 3,
} ch_health_mqtt_kind_t;

typedef struct ch_health_mqtt_msg {
    ch_health_mqtt_kind_t kind;
    int64_t agency_id;
    int64_t device_id;
    char status[16];     /* state: "ok", "fault", "maintenance" */
    int has_battery;     /* state, heartbeat */
    double battery;      /* percent, 0..100 */
    int64_t heartbeat_s; /* state: the device's heartbeat interval, 0 when not given */
    int64_t time_ms;     /* the device's own time of the message, 0 when not given */
    char event_type[32]; /* event: "bell-pressed" */
} ch_health_mqtt_msg_t;

/*
 * Parses one message: topic (NUL-terminated) under prefix ("cctvhub"), and its payload.
 * Returns 0 with out filled; CH_ENOENT when the topic is not one of the scheme's (another
 * prefix, a bad id, an unknown last level); CH_EPARSE when the payload is not what that topic
 * carries (not JSON, not an object, a duplicate or unknown key, a value of the wrong type or
 * out of range, over CH_HEALTH_MQTT_MAX_PAYLOAD bytes). why (why_len bytes) says what, for
 * logs; it never quotes the payload.
 */
int ch_health_mqtt_parse(const char *prefix, const char *topic, const void *payload, size_t len,
                         ch_health_mqtt_msg_t *out, char *why, size_t why_len) CH_MUST_CHECK;

/* ---- the watch (mqtt.c) --------------------------------------------------------------------- */

typedef struct ch_health_devices ch_health_devices_t;

typedef struct ch_health_devices_config {
    const char *host; /* the broker */
    int port;
    int tls;                         /* 1: TLS (tls_ca, or the system's CAs when NULL) */
    const char *username, *password; /* or NULL */
    const char *tls_ca, *tls_cert, *tls_key;
    const char *client_id;
    const char *topic_prefix;
    int64_t heartbeat_ms;       /* a device that said none is offline after this much silence */
    int64_t (*clock)(void *ud); /* NULL: the wall clock */
    void *clock_ud;
} ch_health_devices_config_t;

/* A device's transition or bell press, as listeners get it (strings borrowed for the call). */
typedef struct ch_health_device_event {
    int64_t device_id;
    int64_t agency_id;
    const char *name;
    const char *kind;      /* "emergency-bell", ... */
    const char *old_state; /* "unknown", "online", "fault", "offline" */
    const char *new_state;
    int64_t at_ms;
    const char *reason;
    int located;
    double lat, lon;
} ch_health_device_event_t;

typedef void (*ch_health_device_fn)(void *ud, const ch_health_device_event_t *ev);

/* Creates the watch (nothing connects before ch_health_devices_start). st is borrowed: the
 * loop's store handle, whose change feed of devices the watch follows; the registry's devices
 * are read with it here, once, and kept in memory, so a message never waits for the store.
 * Strings are copied. 0, CH_EINVAL, or CH_EDB (the devices could not be read). */
int ch_health_devices_new(uv_loop_t *loop, ch_store_t *st, const ch_health_devices_config_t *cfg,
                          ch_health_devices_t **out) CH_MUST_CHECK;
/* From now on the feed's rereads of devices and the transitions' writes run on the store
 * worker w, in order (loop thread; NULL: on the loop with st). Requests in flight keep the
 * watch's memory until they complete (ch_store_worker_close completes them). */
void ch_health_devices_set_worker(ch_health_devices_t *d, struct ch_store_worker *w);
/* Who hears of transitions and of bell presses (one each; NULL fn: nobody). */
void ch_health_devices_on_state(ch_health_devices_t *d, ch_health_device_fn fn, void *ud);
void ch_health_devices_on_bell(ch_health_devices_t *d, ch_health_device_fn fn, void *ud);
/* Connects (on the thread pool), then keeps connecting with backoff (1 s doubling to 30 s)
 * whenever the broker is lost. */
void ch_health_devices_start(ch_health_devices_t *d);
/* The watch's counters now (ch_health_devices_stats). */
typedef struct ch_health_devices_stats {
    int connected; /* connected and subscribed to the broker */
    uint64_t connects, received, accepted;
    uint64_t dropped_topic, dropped_payload, dropped_device; /* messages dropped, by reason */
    uint64_t online, fault, offline;                         /* devices by state */
} ch_health_devices_stats_t;
void ch_health_devices_stats(const ch_health_devices_t *d, ch_health_devices_stats_t *out);

/* What the watch knows of one device now (ch_health_devices_state). */
typedef struct ch_health_device_state {
    int64_t device_id;
    int64_t agency_id;
    const char *state;    /* static: "unknown", "online", "fault", "offline" */
    int64_t since_ms;     /* 0: not known */
    int64_t last_seen_ms; /* 0: never */
    int64_t heartbeat_ms; /* its own, or the default */
    int has_battery;
    double battery;
} ch_health_device_state_t;
/* 0 with *out filled, or CH_ENOENT when the watch has not heard of device id. */
int ch_health_devices_state(const ch_health_devices_t *d, int64_t id,
                            ch_health_device_state_t *out) CH_MUST_CHECK;
/* The device watch's metrics from its counters (a ch_metrics_collect_fn; ud is the
 * ch_health_devices_t; health_metrics.c): cctvhub_mqtt_connected,
 * cctvhub_mqtt_messages_total{outcome} and cctvhub_devices{state}. Loop thread. */
void ch_health_devices_collect(ch_metrics_writer_t *w, void *ud);
/* Disconnects and closes; the memory goes once every handle is closed and a connect running
 * on the pool has returned (the loop must run). NULL is fine. */
void ch_health_devices_close(ch_health_devices_t *d);

#endif /* CH_HEALTH_H */
