/*
 * media: the relay's hot path (issue 6): the fan-out store of one camera (fanout.c), and the
 * relay around it (relay.c, pull.c, viewer.c; declared at the end of this header).
 *
 * The fan-out store:
 *
 *  - each RTP packet is stored once, with its 4-byte interleaved header ('$', channel,
 *    length) in front, in a buffer taken from the stream's own free list: no allocation per
 *    packet once the stream is warm, and no copy per viewer;
 *  - the stream keeps a window of packets, numbered from 0, that reaches back to the first
 *    packet of the access unit holding the latest keyframe: the GOP cache. A viewer that joins
 *    starts there at once, and then follows live;
 *  - a viewer is a cursor into the window (packet number and offset inside it);
 *    ch_media_viewer_iov() gathers what it has not written yet as iovecs for one writev, and
 *    ch_media_viewer_advance() moves the cursor by what the socket took;
 *  - backpressure: a viewer further behind than its byte budget skips to the latest GOP start
 *    (one skip); one that falls behind again while its skip is still unwritten is to be closed.
 *    A slow viewer never holds the camera: when the window is full, the viewers still at its
 *    oldest packet are moved to the GOP start or marked for closing.
 *
 * Sockets, loops and RTSP are the caller's: this file is pure memory, so tests can drive it
 * packet by packet. One stream and its viewers belong to one thread.
 */
#ifndef CH_MEDIA_H
#define CH_MEDIA_H

#include "core/core.h"
#include "net/net.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define CH_MEDIA_MAX_PACKET 65535 /* an interleaved frame's length field is 16 bits */

typedef struct ch_media_stream ch_media_stream_t;

typedef struct ch_media_stream_config {
    size_t window;    /* most packets kept (GOP cache and viewers' backlog); 0 = 8192 */
    size_t pkt_bytes; /* buffer size for ordinary packets; larger ones get their own; 0 = 1600 */
    int whole_frames; /* viewers get only whole access units (see ch_media_stream_drop_partial) */
} ch_media_stream_config_t;

/* Flags of a pushed packet (the codec module's CH_CODEC_PKT_* have the same values). */
#define CH_MEDIA_AU_START 0x01u
#define CH_MEDIA_AU_END   0x02u
#define CH_MEDIA_KEYFRAME 0x04u

/* A viewer's cursor; the caller embeds it in its connection and keeps it zeroed until join. */
typedef struct ch_media_viewer {
    uint64_t next;       /* number of the next packet to write */
    size_t off;          /* bytes of it already written */
    size_t budget;       /* most bytes it may lag behind the head before a skip */
    uint64_t skipped_to; /* where its last skip went (0: never skipped) */
    unsigned skips;      /* how many times it skipped */
    int doomed;          /* 1: too slow even after a skip, or lost its window: close it */
    int wait_key;        /* joined before any keyframe: starts at the next one */
    uint64_t bytes;      /* bytes written so far */
    int held;            /* the caller's: a write in flight still reads its packets from next on
                            (it counts as mid-packet) */
    /* The caller's, set after join: a held viewer was doomed because its packets are going now;
     * the caller must stop the write reading them before it returns (close its socket). */
    void (*lost)(struct ch_media_viewer *v);
    struct ch_media_viewer *prev_v, *next_v; /* the stream's list */
    ch_media_stream_t *stream;
} ch_media_viewer_t;

/* A new stream (never NULL). */
ch_media_stream_t *ch_media_stream_new(const ch_media_stream_config_t *cfg);
/* Frees the stream; its viewers must have left. NULL is fine. */
void ch_media_stream_free(ch_media_stream_t *s);

/*
 * Stores one RTP packet (len 1..CH_MEDIA_MAX_PACKET) for interleaved channel `channel`, with
 * flags CH_MEDIA_AU_START / CH_MEDIA_KEYFRAME as the depacketizer reported them. A keyframe
 * moves the GOP start to the first packet of its access unit. Returns the packet's number, or
 * CH_ETOOBIG / CH_EINVAL.
 */
int64_t ch_media_stream_push(ch_media_stream_t *s, uint8_t channel, const uint8_t *rtp, size_t len,
                             unsigned flags);

/*
 * With whole_frames, viewers read only up to the end of the last complete access unit (a
 * packet flagged AU_END, or the packet before one flagged AU_START), and this drops the packets
 * of an access unit that will never be complete (the camera's connection broke mid-frame, or
 * its source changed), so no viewer ever gets half a frame. No-op without whole_frames.
 */
void ch_media_stream_drop_partial(ch_media_stream_t *s);

/*
 * Stores one message as it will be written: hl header bytes (a WebSocket frame header) then
 * len bytes (an fMP4 fragment), up to CH_MEDIA_MAX_MESSAGE in all; flags as for a packet
 * (a message is a whole access unit: AU_START | AU_END, plus KEYFRAME for a keyframe's).
 * The packet number, or CH_ETOOBIG / CH_EINVAL.
 */
#define CH_MEDIA_MAX_MESSAGE (64u << 20)
int64_t ch_media_stream_push_message(ch_media_stream_t *s, const uint8_t *hdr, size_t hl,
                                     const uint8_t *data, size_t len, unsigned flags);

/* The number the next packet will get, and the first packet of the cached GOP (equal to the
 * head while no keyframe has been seen). */
uint64_t ch_media_stream_head(const ch_media_stream_t *s);
uint64_t ch_media_stream_gop_start(const ch_media_stream_t *s);
/* Packets held now, and buffers allocated so far (for tests and metrics). */
size_t ch_media_stream_held(const ch_media_stream_t *s);
size_t ch_media_stream_allocated(const ch_media_stream_t *s);
size_t ch_media_stream_viewers(const ch_media_stream_t *s);

/* A viewer joins: its cursor starts at the GOP start, so its first bytes are a keyframe's.
 * Before the stream's first keyframe it waits for one (it gets nothing until then). */
void ch_media_viewer_join(ch_media_stream_t *s, ch_media_viewer_t *v, size_t budget);
/* A viewer leaves (before its connection is freed). */
void ch_media_viewer_leave(ch_media_viewer_t *v);

/*
 * Gathers at most max iovecs of what v has not written, oldest first, and sets *bytes to their
 * total. Applies backpressure first (see above): a viewer that comes back doomed gets 0.
 */
size_t ch_media_viewer_iov(ch_media_viewer_t *v, struct iovec *iov, size_t max, size_t *bytes);

/* The socket took n bytes of what ch_media_viewer_iov gave. */
void ch_media_viewer_advance(ch_media_viewer_t *v, size_t n);

/* Bytes v is behind the head. */
size_t ch_media_viewer_lag(const ch_media_viewer_t *v);

/* ---- the relay ------------------------------------------------------------------------------
 *
 * One pull per camera (pull.c: RTSP client over TCP interleaved, Basic and Digest, redirects,
 * keep-alive, stall detection, reconnect with capped backoff; RTP sequence numbers, timestamps
 * and SSRC made continuous across reconnects), fanned out through the store above to every
 * authorized viewer (viewer.c: an RTSP server for viewers, TCP interleaved). Cameras are spread
 * over N media loops (threads with their own libuv loop), camera id modulo N; a viewer is
 * accepted by loop 0 and handed to its camera's loop once its first request names the camera.
 * Audio is never pulled (PIPA Art. 25): only the first video track is set up.
 *
 * What the relay does not know (the store, the events engine, the audit log) comes through the
 * callbacks of its configuration. A camera's source comes by message: the control loop pushes
 * it (ch_media_relay_source) and the relay keeps it in its camera table; a pull that needs one
 * it does not have asks the control loop (want_source, run there, never on a media thread) and
 * waits without blocking. No media thread waits on the database. authorize runs on media
 * threads and record on the libuv pool: they must be thread-safe.
 */

typedef struct ch_media_relay ch_media_relay_t;

/* Where a camera's stream comes from. */
typedef struct ch_media_source {
    char url[1024]; /* rtsp://[user:pass@]host[:port]/path, or rtsps:// (over TLS) */
    char user[128]; /* used when the URL has no userinfo; may be empty */
    char password[128];
    char tls_pin[CH_NET_TLS_SPKI_LEN]; /* rtsps://: the only key accepted ("sha256:..."); empty:
                                          the chain must lead to the relay's CAs (pull_tls) and
                                          carry the URL's host */
} ch_media_source_t;

/* What a viewer's credential allows. */
typedef struct ch_media_access {
    int64_t grant_id, event_id, camera_id, agency_id;
} ch_media_access_t;

typedef enum ch_media_record_kind {
    CH_MEDIA_VIEW_START = 1,  /* a viewer's PLAY: it is answered once this is durable */
    CH_MEDIA_VIEW_END = 2,    /* bytes, duration, reason */
    CH_MEDIA_VIEW_REFUSE = 3, /* 401 or 403 at the door */
} ch_media_record_kind_t;

/* A record for the audit log. */
typedef struct ch_media_record {
    ch_media_record_kind_t kind;
    ch_media_access_t access; /* zero for a refusal without a valid credential */
    int64_t camera_id;
    char peer[64];         /* "127.0.0.1:50312" */
    int status;            /* refusals: 401 or 403 */
    const char *reason;    /* refusals: "no_credential", "bad_token", "other_camera", "expired",
                              "grant_ended", "client_certificate_required",
                              "client_certificate_mismatch"; ends: "teardown", "closed", "grant_ended",
                              "slow",    "timeout", "error", "shutdown" */
    uint64_t bytes;        /* ends */
    int64_t duration_ms;   /* ends */
    const char *transport; /* "rtsp" or "ws" */
} ch_media_record_t;

typedef struct ch_media_relay_config {
    const char *listen;     /* "127.0.0.1:8554" */
    unsigned loops;         /* media threads; 0: one per core */
    unsigned idle_stop_s;   /* a pull without viewers or holds stops after this; 0 = 10 */
    unsigned stall_s;       /* no packet for this long: reconnect; 0 = 5 */
    unsigned backoff_max_s; /* the longest wait between reconnects; 0 = 30 */
    unsigned describe_s;    /* a viewer's DESCRIBE waits this long for the camera; 0 = 10 */
    size_t viewer_budget;   /* bytes a viewer may lag before it skips; 0 = 4 MiB */
    size_t window;          /* packets kept per camera (see the store); 0 = 8192 */
    int pull_udp;           /* ask cameras for RTP over UDP (TCP interleaved when refused) */
    /* Pulls of rtsps:// cameras speak TLS with this client context (net's
     * ch_net_tls_client_new with tls.ca_bundle; the relay keeps a reference until it is
     * freed), each handshake within pull_handshake_ms (0: the pull's step deadline alone).
     * NULL: such a pull fails. */
    struct ch_net_tls *pull_tls;
    uint64_t pull_handshake_ms;
    /* The door (viewers' connections before their token is accepted; OPTIONS needs none):
     * at most max_unauthorized of them at once (0 = 256: a newcomer beyond closes the oldest),
     * max_unauthorized_per_addr from one address, an IPv6 /64 counting as one (0 = 32: a
     * newcomer beyond is closed); each closed auth_timeout_s after its
     * accept if not authorized by then, whatever it sent (0 = 10). No connection is taken on
     * one of the top fd_reserve descriptors of RLIMIT_NOFILE (0 = 128): they stay for HTTP,
     * the audit log, the store and the pulls. Connections refused or closed for these write
     * no record (ch_media_relay_totals counts them). The start checks that the descriptors
     * open, max_unauthorized and fd_reserve fit RLIMIT_NOFILE. */
    unsigned max_unauthorized;
    unsigned max_unauthorized_per_addr;
    unsigned auth_timeout_s;
    unsigned fd_reserve;
    /* The control loop (the caller's, where the store may be read) and what runs on it when a
     * pull needs a camera's source the relay does not have: want_source must answer with
     * ch_media_relay_source, at once or later. Without them every camera has no source. The
     * relay keeps an async handle on control (unreferenced: it keeps no loop alive) until
     * ch_media_relay_stop closes it; that loop must turn once more before it is closed. */
    struct uv_loop_s *control;
    void (*want_source)(void *ud, int64_t camera_id);
    /* RTSPS (rtsps://, RTSP inside TLS): with tls (a server context; the relay keeps its own
     * reference) the relay also listens on tls_listen ("127.0.0.1:322"; port 0: the kernel
     * picks, ch_media_relay_tls_port tells which), on loop 0 beside the plain listener. An
     * accepted connection speaks TLS at once (ch_net_conn_tls_accept, its handshake within
     * tls_handshake_ms, 0: none); it is at the door and under fd_reserve from its accept, as a
     * plain one, and moves to its camera's loop with its TLS session. A handshake that fails
     * (a bad client certificate, not TLS at all) or does not end in time closes that
     * connection only; both are counted (ch_media_relay_totals), and a failure is told to
     * tls_refused (may be NULL) with the peer and OpenSSL's reason. Pool thread. */
    const char *tls_listen;
    ch_net_tls_t *tls;
    uint64_t tls_handshake_ms;
    void (*tls_refused)(void *ud, const char *peer, const char *reason);
    /* 0 and *out; or 401 / 403 with *reason set (a static string). client_key is the key of
     * the client certificate the viewer showed at its TLS handshake ("sha256:...", RTSPS or a
     * wss:// upgrade with one), NULL when it showed none. A refusal of a valid token (the
     * agency's certificate not shown) may fill *out, so that its record names the grant.
     * Media thread. */
    int (*authorize)(void *ud, const char *token, size_t len, int64_t camera_id,
                     const char *client_key, ch_media_access_t *out, const char **reason);
    /* Appends a record and returns once it is durable: 0 or a negative code. Pool thread. */
    int (*record)(void *ud, const ch_media_record_t *r);
    void *ud;
} ch_media_relay_config_t;

/* Binds the listener and starts the loops. 0, or a negative code with err filled (CH_EINVAL
 * for a configuration that cannot work: the caps above RLIMIT_NOFILE, naming the keys). */
int ch_media_relay_start(const ch_media_relay_config_t *cfg, ch_media_relay_t **out, char *err,
                         size_t errlen) CH_MUST_CHECK;
/* Takes a connection handed over by the HTTP server (a browser's WebSocket upgrade to
 * GET /api/v1/cameras/{id}/live?token=...): fd and the request's bytes as received (at most
 * 8 KiB; more closes it) and its TLS session (NULL: plaintext). From any thread; the relay
 * owns fd and tls from here. */
void ch_media_relay_adopt(ch_media_relay_t *r, int fd, const void *raw, size_t len,
                          ch_net_tls_conn_t *tls);

/* The port the relay listens on (the one picked when rtsp.listen asked for port 0). */
int ch_media_relay_port(const ch_media_relay_t *r);
/* The RTSPS port (the one picked for port 0), or 0 when the relay has no RTSPS listener. */
int ch_media_relay_tls_port(const ch_media_relay_t *r);
/* The context RTSPS connections accepted from now on speak TLS with, and their handshake
 * deadline (a reload: a renewed certificate). The relay takes its own reference; connections
 * already open keep theirs. tls NULL closes new RTSPS connections at once (never plaintext on
 * the RTSPS port). No-op without an RTSPS listener. From any thread. */
void ch_media_relay_set_tls(ch_media_relay_t *r, ch_net_tls_t *tls, uint64_t handshake_ms);
/* Closes every viewer (each recorded, reason "shutdown") and pull, joins the threads, frees.
 * NULL is fine. */
void ch_media_relay_stop(ch_media_relay_t *r);

/* From any thread. hold(+1) starts a camera's pull at once and keeps it while held (a live
 * grant's pre-warm); hold(-1) releases it. end_grant closes the viewers of a grant (reason
 * "grant_ended") and refuses it from then on. */
void ch_media_relay_hold(ch_media_relay_t *r, int64_t camera_id, int delta);
void ch_media_relay_end_grant(ch_media_relay_t *r, int64_t grant_id);
/* From any thread (the control loop's): the camera's source, src NULL or with an empty URL
 * for none; copied. The answer to want_source, or news that the camera's stream URL or
 * credentials changed: the camera table keeps it while the camera is held or viewed, and a
 * pull that runs or that viewers wait for under another source drops its session and connects
 * again at once; its viewers stay and go on with the new source's packets (renumbered as after
 * any reconnect). A camera the relay does not hold nor serve ignores it. */
void ch_media_relay_source(ch_media_relay_t *r, int64_t camera_id, const ch_media_source_t *src);

/* What GET /api/v1/streams shows, refreshed by each loop twice a second. */
typedef struct ch_media_viewer_info {
    int64_t grant_id, event_id, agency_id;
    char peer[64];
    int64_t since_ms; /* wall clock */
    uint64_t bytes;
    unsigned skips;
    uint64_t lag_bytes;
    const char *transport; /* "rtsp" or "ws" */
} ch_media_viewer_info_t;

typedef struct ch_media_stream_info {
    int64_t camera_id;
    unsigned loop;
    const char *state;     /* "connecting", "playing", "backoff", "stopped" */
    const char *transport; /* the pull's: "tcp" (interleaved) or "udp" */
    int64_t state_since_ms;
    char codec[48]; /* "avc1.640028", or empty until the first SPS */
    uint32_t width, height;
    double fps;
    uint64_t bitrate_bps;
    uint32_t gop_frames; /* frames from one keyframe to the next */
    uint64_t bytes_in, packets_in, keyframes;
    unsigned reconnects;
    unsigned holds;
    char last_error[160];
    size_t cached_packets; /* the GOP cache and viewers' backlog */
    int64_t first_key_ms;  /* from the pull's connect to its first keyframe, last connect */
    size_t nviewers;
    const ch_media_viewer_info_t *viewers;
} ch_media_stream_info_t;

/* The relay's counters since it started, as of the loops' last snapshots (twice a second):
 * bytes read from cameras (RTP as received), media bytes written to viewers and viewers that
 * started playing, by transport ([0] RTSP, [1] WebSocket). Each loop keeps its own figures
 * on its thread and publishes them with its snapshot: counting adds nothing to the packet
 * path. From any thread. */
typedef enum ch_media_refusal {
    CH_MEDIA_REFUSED_MAX_UNAUTHORIZED = 0, /* the oldest waiting, closed for a newcomer */
    CH_MEDIA_REFUSED_PER_ADDR,             /* so many from its address */
    CH_MEDIA_REFUSED_FD_RESERVE,           /* accepted on a descriptor of the reserve */
    CH_MEDIA_REFUSED_NO_DESCRIPTOR,        /* accept failed: out of descriptors (EMFILE) */
    CH_MEDIA_REFUSED_AUTH_TIMEOUT,         /* not authorized within auth_timeout_s: closed */
    CH_MEDIA_REFUSED__COUNT
} ch_media_refusal_t;

/* The words /metrics labels the refusals with ("max_unauthorized", ...), by ch_media_refusal_t. */
extern const char *const ch_media_refusal_names[CH_MEDIA_REFUSED__COUNT];

typedef struct ch_media_relay_totals {
    uint64_t bytes_in;
    uint64_t bytes_out[2];
    uint64_t views[2];
    /* Not from the snapshots: as of the call. */
    uint64_t unauthorized;                     /* connections waiting for authorization now */
    uint64_t refused[CH_MEDIA_REFUSED__COUNT]; /* connections refused at the door, since start */
    uint64_t tls_failed;                       /* RTSPS handshakes that failed, since start */
    uint64_t tls_timed_out; /* RTSPS handshakes that did not end within their deadline */
} ch_media_relay_totals_t;
void ch_media_relay_totals(ch_media_relay_t *r, ch_media_relay_totals_t *out);

/* A copy of every stream's line of the loops' last snapshots (viewers included), to read
 * outside the relay's lock: the count, and *out an array freed by ch_media_relay_streams_free
 * (NULL when there are none). From any thread. */
size_t ch_media_relay_streams(ch_media_relay_t *r, ch_media_stream_info_t **out);
void ch_media_relay_streams_free(ch_media_stream_info_t *streams, size_t n);

/* Calls fn for every stream, under the relay's lock (fn must not call the relay). */
void ch_media_relay_each_stream(ch_media_relay_t *r,
                                void (*fn)(void *ud, const ch_media_stream_info_t *s), void *ud);

#endif /* CH_MEDIA_H */
