/*
 * media_internal.h: what relay.c, pull.c and viewer.c share. Everything here belongs to one
 * media loop's thread, except the fields marked otherwise.
 */
#ifndef CH_MEDIA_INTERNAL_H
#define CH_MEDIA_INTERNAL_H

#include "codec/codec.h"
#include "media/media.h"
#include "net/net.h"
#include "proto/proto.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct ch_media__loop ch_media__loop_t;
typedef struct ch_media__cam ch_media__cam_t;
typedef struct ch_media__conn ch_media__conn_t;
typedef struct ch_media__ws ch_media__ws_t;

/* A socket watched by a uv_poll_t. The handle is closed (and the fd with it, unless keep_fd)
 * asynchronously; the owner frees nothing of it itself. */
typedef struct ch_media__sock {
    uv_poll_t poll;
    int fd;
    int events; /* UV_READABLE | UV_WRITABLE now watched */
    int keep_fd;
    void *owner;
    void (*on_event)(struct ch_media__sock *s, int status, int events);
    void (*on_closed)(struct ch_media__sock *s); /* after the handle is closed, or NULL */
} ch_media__sock_t;

ch_media__sock_t *ch_media__sock_new(ch_media__loop_t *l, int fd, void *owner,
                                     void (*on_event)(ch_media__sock_t *, int, int));
void ch_media__sock_want(ch_media__sock_t *s, int events);
void ch_media__sock_close(ch_media__sock_t *s);

typedef enum ch_media__pull_state {
    PULL_STOPPED = 0,
    PULL_CONNECTING,
    PULL_OPTIONS,
    PULL_DESCRIBE,
    PULL_SETUP,
    PULL_PLAY,
    PULL_PLAYING,
    PULL_BACKOFF,
} ch_media__pull_state_t;

#define CH_MEDIA__PULL_IN (2 * (CH_MEDIA_MAX_PACKET + 4) + 8192)

/* The camera side of one stream (pull.c). */
typedef struct ch_media__pull {
    ch_media__pull_state_t state;
    ch_media__sock_t *sock;
    void *resolving;              /* a name lookup in flight */
    struct sockaddr_storage peer; /* the camera's address (UDP packets must come from it) */
    ch_media__sock_t *udp[2];     /* RTP and RTCP over UDP (relay.pull_transport = udp) */
    uint16_t udp_port;
    ch_media_source_t src;
    char url[1024]; /* the URL asked now (after redirects), with its userinfo */
    /* The exchange with the camera (proto's RTSP client session): the URL as on a request
     * line, credentials, challenge, redirects, controls, Session, Transport, a 461 to UDP. */
    ch_proto_rtsp_client_t rtsp;
    uint8_t *in;
    size_t in_len;
    ch_buf_t out;
    size_t out_off;
    uint8_t pt; /* the video payload type */
    ch_codec_stream_t codec;
    int64_t state_since_ms; /* wall clock */
    int64_t connect_mono_ms;
    int64_t last_rx_ms;   /* monotonic: the last video packet accepted */
    uint64_t bad_packets; /* on the video channel since then, refused by the codec module */
    int64_t next_keepalive_ms;
    int64_t retry_at_ms;
    int64_t backoff_ms;
    int got_key_this_session;
    int64_t first_key_ms;
    unsigned reconnects;
    char last_error[160];
    /* Continuity of what viewers get across reconnects. */
    int have_out, new_session;
    uint16_t seq_delta, out_seq;
    uint32_t ts_delta, out_ts, ssrc;
    uint32_t in_ssrc;   /* the camera's SSRC in this session */
    int confirmed;      /* in_ssrc is taken (three packets in sequence) */
    uint32_t cand_ssrc; /* a source not yet taken: its SSRC, last seq, packets in sequence */
    uint16_t cand_seq;
    unsigned cand_count;
    ch_buf_t pend; /* its packets meanwhile: [u32 length][bytes]... */
    int64_t out_mono_ms;
} ch_media__pull_t;

/* One camera's stream on its loop. */
struct ch_media__cam {
    int64_t id;
    ch_media__loop_t *loop;
    ch_media__cam_t *next;
    ch_media_stream_t *store;
    ch_media__pull_t pull;
    char *sdp; /* what viewers' DESCRIBE gets, NULL until the camera's is known */
    ch_codec_kind_t kind;
    ch_media__conn_t *conns; /* viewers bound to this camera (list through cam_next) */
    size_t nplaying;
    unsigned holds;
    int no_source;         /* the camera has no stream URL: dropped despite holds */
    int64_t idle_since_ms; /* monotonic; 0 while it has viewers or holds */
    /* figures */
    uint64_t bytes_in, packets_in, frames, keyframes;
    uint64_t last_frames, last_bytes;
    int64_t last_rate_ms;
    double fps;
    uint64_t bitrate_bps;
    uint64_t frames_at_key;
    uint32_t gop_frames;
    ch_media__ws_t *ws; /* the stream for browsers (ws.c), from the first WebSocket viewer */
    size_t unflushed;   /* bytes stored since viewers were last written to */
    int flush_due;      /* a frame ended since */
};

/* A command from another thread. */
typedef struct ch_media__cmd {
    enum { CMD_HOLD = 1, CMD_END_GRANT, CMD_CONN, CMD_STOP, CMD_RESTART, CMD_SWEEP } kind;
    int64_t id;
    int delta;
    ch_media__conn_t *conn; /* CMD_CONN: a viewer handed over, its socket closed on the sender */
    struct ch_media__cmd *next;
} ch_media__cmd_t;

struct ch_media__loop {
    ch_media_relay_t *relay;
    unsigned index;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    pthread_t thread;
    pthread_mutex_t lock; /* guards inbox */
    ch_media__cmd_t *inbox, **inbox_tail;
    ch_media__sock_t *listener; /* loop 0 only */
    int listener_paused;        /* out of descriptors: resumed at the next tick */
    atomic_int sweep_posted;    /* a CMD_SWEEP is in the inbox (any thread) */
    ch_media__cam_t *cams;
    ch_media__conn_t *conns; /* every viewer connection of this loop */
    int stopping;
    int closed; /* guarded by lock: the wake handle is closed */
    int64_t last_snapshot_ms;
    /* Counters of what has gone (cameras freed, viewers closed) and of views started; the
     * snapshot adds the live ones and publishes the sum in the relay's totals. */
    uint64_t gone_bytes_in, gone_bytes_out[2], views[2];
};

struct ch_media_relay {
    ch_media_relay_config_t cfg;
    uint64_t nofile; /* RLIMIT_NOFILE's soft limit at start; 0: unlimited (no reserve band) */
    /* Connections not yet authorized: entered on accept (loop 0) or hand-over (the HTTP
     * thread), left on authorization or close on any loop (they move to their camera's loop
     * before they authorize). */
    ch_net_door_t door; /* net.h: the same rule as HTTP's; evicts the oldest */
    _Atomic uint64_t refused[CH_MEDIA_REFUSED__COUNT];
    unsigned nloops;
    ch_media__loop_t *loops;
    char host[64];
    int port;
    /* Guarded by lock: each loop's last snapshot, for ch_media_relay_each_stream. */
    pthread_mutex_t lock;
    ch_media_stream_info_t **snap; /* per loop: an array of nsnap[i] (viewers inside) */
    size_t *nsnap;
    ch_media_relay_totals_t *totals; /* per loop, as of its last snapshot */
};

/* Monotonic milliseconds. */
int64_t ch_media__now_ms(void);

/* relay.c */
ch_media__cam_t *ch_media__cam_find(ch_media__loop_t *l, int64_t id);
ch_media__cam_t *ch_media__cam_get(ch_media__loop_t *l, int64_t id); /* creates it */
void ch_media__cam_touch(ch_media__cam_t *c);                        /* viewers or holds changed */
void ch_media__post(ch_media__loop_t *l, ch_media__cmd_t *cmd);
ch_media__loop_t *ch_media__owner(ch_media_relay_t *r, int64_t camera_id);
/* The door evicted a connection: every loop closes its evicted ones soon (from any thread). */
void ch_media__sweep_soon(ch_media_relay_t *r);
/* Sends a record to the pool; done (may be NULL) runs on the loop with the result. */
void ch_media__record(ch_media__loop_t *l, const ch_media_record_t *rec, ch_media__conn_t *c,
                      void (*done)(ch_media__conn_t *c, int rc));

/* pull.c */
void ch_media__pull_start(ch_media__cam_t *c);
void ch_media__pull_stop(ch_media__cam_t *c);
/* The camera's stream settings changed: a running (or awaited) pull drops its session and
 * connects again at the next tick, asking the source callback anew; viewers stay. */
void ch_media__pull_restart(ch_media__cam_t *c);
void ch_media__pull_tick(ch_media__cam_t *c, int64_t now);
const char *ch_media__pull_state_name(ch_media__pull_state_t s);

/* ws.c */
void ch_media__ws_enable(ch_media__cam_t *c);
void ch_media__ws_free(ch_media__cam_t *c);
ch_media_stream_t *ch_media__ws_store(ch_media__cam_t *c);
/* In place of ch_codec_stream_push while c->ws exists; then drain after the packet is stored. */
int ch_media__ws_push(ch_media__cam_t *c, const ch_codec_rtp_t *rtp, ch_codec_pkt_t *info);
void ch_media__ws_drain(ch_media__cam_t *c);
void ch_media__ws_reset(ch_media__cam_t *c); /* the camera reconnects */

/* viewer.c */
void ch_media__listener_start(ch_media__loop_t *l, int fd);
void ch_media__conn_adopt(ch_media__loop_t *l, ch_media__conn_t *conn);
void ch_media__conn_close(ch_media__conn_t *conn, const char *why);
void ch_media__conn_tick(ch_media__conn_t *conn, int64_t now);
void ch_media__loop_sweep(ch_media__loop_t *l); /* closes the loop's evicted connections */
ch_media__conn_t *ch_media__conn_next(ch_media__conn_t *conn); /* the loop's list */
/* Media bytes a playing viewer was written so far, and its transport (0 RTSP, 1 WebSocket);
 * 0 for a viewer not playing. */
uint64_t ch_media__conn_bytes(const ch_media__conn_t *conn, int *ws);
void ch_media__cam_ready(ch_media__cam_t *c);  /* the SDP is known: answer waiting DESCRIBEs */
void ch_media__cam_failed(ch_media__cam_t *c); /* the camera cannot be reached now */
void ch_media__cam_flush(ch_media__cam_t *c);  /* new packets: write to every viewer */
void ch_media__cam_end_grant(ch_media__cam_t *c, int64_t grant_id);
size_t ch_media__cam_viewer_infos(ch_media__cam_t *c, ch_media_viewer_info_t *out, size_t max);

#endif /* CH_MEDIA_INTERNAL_H */
