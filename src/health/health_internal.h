/*
 * health internals: the object behind ch_health_t and the probe, shared by health.c (state
 * machine, scheduler), probe.c (the RTSP probe), run.c (the runner on the loop) and report.c.
 */
#ifndef CH_HEALTH_INTERNAL_H
#define CH_HEALTH_INTERNAL_H

#include "health/health.h"
#include "net/net.h"
#include "proto/proto.h"

#include <assert.h>

/* One watched camera. */
typedef struct ch_health__cam {
    int64_t id, agency_id;
    char *url, *user, *password; /* never logged */
    char *tls_pin;               /* NULL: none */
    ch_health_state_t state;
    int64_t since_ms;
    int64_t next_ms; /* next probe; INT64_MAX while running or when probes are off */
    size_t heap_at;
    int running;
    int changed; /* URL or credentials changed at the last sync */
    uint64_t seen, live_seen;
    unsigned failures;
    int64_t last_probe_ms, last_ok_ms;
    int last_probe_ok;
    double latency_s;
    char codec[16];
    char reason[160];
    int has_live;
    ch_health_live_t live;
    int64_t last_frame_ms, last_keyframe_ms;
} ch_health__cam_t;

typedef struct ch_health__probe ch_health__probe_t;
struct ch_store;

struct ch_health {
    ch_health_config_t cfg;
    uint64_t rng;
    ch_health__cam_t **cams; /* sorted by id */
    size_t ncams, ccams;
    ch_health__cam_t **added; /* new cameras of the running sync */
    size_t nadded, cadded;
    ch_health__cam_t **heap; /* min-heap on next_ms */
    size_t nheap, cheap;
    uint64_t sync_gen, live_gen;
    uint64_t by_state[CH_HEALTH_NSTATES];
    uint64_t latency_le[CH_HEALTH_NBUCKETS];
    double latency_sum;
    uint64_t latency_count;
    uint64_t probes_ok, probes_failed, probes_auth_failed;
    uint64_t in_flight;
    ch_health_record_t *records; /* transitions not yet in the store */
    size_t nrecords, crecords;
    uint64_t records_dropped;
    ch_health_listener_fn listener;
    void *listener_ud;

    /* The runner (run.c). */
    uv_loop_t *loop;
    uv_timer_t *timer;
    struct ch_store *st;            /* the runner's own handle: at start, at stop, no worker */
    struct ch_store_worker *worker; /* the hub's store worker, or NULL (run.c) */
    int scanning;                   /* a rescan is on the worker */
    int watching;                   /* a watch window's write is on the worker */
    unsigned flushing;              /* flushes on the worker */
    ch_health_live_source_fn live_fn;
    void *live_ud;
    int64_t next_rescan_ms;
    int rescan_asked;
    /* This run's watch window (health_watch): 0 until opened; its end is moved forward every
     * WATCH_SEEN_MS, when the API reads the history, and at stop. */
    int64_t watch_id;
    int64_t watch_seen_ms;
    int starting;               /* start_due is running */
    ch_health__probe_t *probes; /* running, a list */
    int stopping;
};

ch_health__cam_t *ch_health__find(const ch_health_t *h, int64_t id);
/* At start: a camera whose last stored state is not unknown but that is no longer watched
 * (deleted, set in maintenance while the hub was down) gets a row to unknown at now, so its
 * observation ends for the reports. No-op for a watched camera. */
void ch_health__end_unwatched(ch_health_t *h, int64_t camera_id, int64_t agency_id,
                              ch_health_state_t last, int64_t now);

/* ---- the probe's RTSP session (probe_session.c) --------------------------------------------- */

#define CH_HEALTH__PROBE_IN                                                                        \
    65536 /* the read buffer: a head and an SDP; more is not a DESCRIBE                            \
             answer */

/* A probe's exchange with a camera, with no socket: proto's RTSP client session (OPTIONS,
 * DESCRIBE, one answer to a challenge, redirects) and the reading of its outcome. */
typedef struct ch_health__session {
    ch_proto_rtsp_client_t rtsp; /* state REDIRECTED: connect again to rtsp.redirect */
    int done;
    ch_health_outcome_t outcome;
    char codec[16];
    char reason[160];
} ch_health__session_t;

void ch_health__session_init(ch_health__session_t *s);
void ch_health__session_fini(ch_health__session_t *s);
/* Begins the exchange with url on a new connection (see ch_proto_rtsp_client_begin); ends the
 * session when the URL cannot be asked. 0 or -1. */
int ch_health__session_begin(ch_health__session_t *s, const char *url, const char *user,
                             const char *password);
/* in[0, len) are the bytes read and not yet used: reads the whole answers among them and
 * returns how many bytes it used (the caller drops them; all of them once the next request is
 * out, since what the camera sent before it is stale). Afterwards either done is set (outcome,
 * codec, reason), or rtsp.state is REDIRECTED, or rtsp.out holds the next request, or more bytes
 * are needed. CH_HEALTH__PROBE_IN bytes with no whole answer in them end the session. */
size_t ch_health__session_input(ch_health__session_t *s, const char *in, size_t len);
/* Ends the session with outcome (no-op when it ended already). */
void ch_health__session_end(ch_health__session_t *s, ch_health_outcome_t outcome, const char *codec,
                            const char *fmt, ...) CH_PRINTF(4, 5);

/* ---- the probe (probe.c) -------------------------------------------------------------------- */

typedef void (*ch_health__probe_cb)(void *ud, int64_t camera_id, const ch_health_probe_result_t *r);

/* Starts one probe of url on loop: connect, OPTIONS, DESCRIBE (answering Basic or Digest with
 * user/password or the URL's userinfo), within timeout_ms; over TLS for rtsps:// with the client
 * context tls (NULL: such a probe fails), the server's key checked against tls_pin when not NULL
 * (else its chain and name), the handshake within handshake_ms (0: none of its own). The
 * probe is on *list while it runs.
 * cb is called exactly once, maybe before this returns (a bad URL), also when aborted (outcome
 * FAILED, reason "aborted"); the probe leaves the list just before, and frees itself once its
 * handles are closed. Strings are copied. */
void ch_health__probe_start(uv_loop_t *loop, ch_health__probe_t **list, int64_t camera_id,
                            const char *url, const char *user, const char *password,
                            const char *tls_pin, ch_net_tls_t *tls, uint64_t handshake_ms,
                            uint64_t timeout_ms, ch_health__probe_cb cb, void *ud);
/* Aborts a running probe (its callback runs at once). */
void ch_health__probe_abort(ch_health__probe_t *p);

#endif /* CH_HEALTH_INTERNAL_H */
